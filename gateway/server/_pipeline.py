"""The call pipeline: one interceptor, five stages, in this order, for every member-facing call.

1. identity      -- the mTLS peer certificate is checked and mapped to a registered member
                    (UNAUTHENTICATED otherwise); then the serving gate: while the journal
                    cannot integrate events the call is refused (UNAVAILABLE, reason
                    JOURNAL_UNHEALTHY), before any handler runs (fail closed);
2. request context -- purpose (field 1 of every request), request id (writes), deadline, rate
                    limit (INVALID_ARGUMENT, RESOURCE_EXHAUSTED);
3. policy        -- the method-level decision, deny by default (PERMISSION_DENIED with rule ids);
4. journal       -- one event per call, allowed or refused, committed before any response data
                    leaves; writes commit their event in their own transaction
                    (``CallContext.write``); if the event cannot be committed the answer is
                    UNAVAILABLE and nothing leaves (fail closed);
5. error mapping -- Vigie exceptions become gRPC statuses with google.rpc details.

Health checking and reflection carry no member data and are not journaled.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import structlog

from gateway.errors import (
    InvalidArgumentError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    VigieError,
)
from gateway.server._context import CallContext, _reset_current, _set_current
from gateway.server._errors import status_code_for, to_rpc_status
from gateway.server._identity import IdentityResolver
from gateway.server._policy import METHOD_RESOURCES, PolicyHook
from gateway.server._ratelimit import RateLimiter
from gateway.store import Database, IdempotencyStore

__all__ = ["ACTIONS", "WRITE_ACTIONS", "CallPipeline"]

log = structlog.get_logger("vigie.pipeline")

# Action -> the resource type the method-level decision is about.
ACTIONS: Mapping[str, str] = {
    "GetSelf": "member",
    "ListMembers": "member",
    "CreateSuspicion": "suspicion",
    "GetSuspicion": "suspicion",
    "ListSuspicions": "suspicion",
    "TransitionSuspicion": "suspicion",
    "StreamNotifications": "notification",
    "AcknowledgeNotification": "notification",
    "UploadClaims": "claim",
    "CheckClaim": "claim_check",
    "ListAlerts": "alert",
    "GetAlert": "alert",
    "ListAccessEvents": "journal_event",
    "ListPersonAccesses": "journal_event",
    "GetCheckpoint": "journal",
    "GetInclusionProof": "journal",
    "GetConsistencyProof": "journal",
    "ExportJournal": "journal",
}
WRITE_ACTIONS = frozenset(
    {"CreateSuspicion", "TransitionSuspicion", "AcknowledgeNotification", "UploadClaims"}
)
_EXEMPT = re.compile(r"^/grpc\.(health\.v1\.Health|reflection\.v1(alpha)?\.ServerReflection)/")


def _purpose_of(request: Any) -> str:
    """Read and check field ``purpose`` (an enum ``PURPOSE_*``) of a request message."""
    field = request.DESCRIPTOR.fields_by_name.get("purpose")
    if field is None or field.enum_type is None:
        raise InvalidArgumentError.for_field("purpose", "the request has no purpose field")
    value = field.enum_type.values_by_number.get(request.purpose)
    if value is None or value.number == 0:
        raise InvalidArgumentError.for_field("purpose", "a declared purpose is required")
    return str(value.name).removeprefix("PURPOSE_").lower()


def _request_id_of(request: Any, action: str) -> str:
    if "request_id" not in request.DESCRIPTOR.fields_by_name:
        return ""
    raw = str(request.request_id)
    if not raw:
        if action in WRITE_ACTIONS:
            raise InvalidArgumentError.for_field("request_id", "required for writes (a UUID)")
        return ""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InvalidArgumentError.for_field("request_id", "must be a UUID") from None


class CallPipeline(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    def __init__(
        self,
        db: Database,
        identities: IdentityResolver,
        policy: PolicyHook,
        limiter: RateLimiter,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        self.db, self.identities, self.policy, self.limiter = db, identities, policy, limiter
        self.idempotency = idempotency
        # Why calls must not be served right now (None: serve); set by the server assembly to
        # the journal guard (gateway.journal.guard.JournalGuard.refusal).
        self.gate: Callable[[], str | None] | None = None

    # -- stages -----------------------------------------------------------------------------
    async def _admit(self, ctx: CallContext, context: Any, first_request: Any) -> None:
        # 1. Identity.
        auth = context.auth_context()
        pem = (auth.get("x509_pem_cert") or [None])[0]
        identity = await self.db.call(self.identities.resolve, self.db.run_sync, pem)
        ctx.member, ctx.principal = identity.member, identity.principal
        ctx.cert_fingerprint = identity.fingerprint
        # 1b. Serving gate (fail closed: no data while the journal cannot integrate events).
        refusal = self.gate() if self.gate is not None else None
        if refusal is not None:
            raise UnavailableError(f"not serving: {refusal}", reason="JOURNAL_UNHEALTHY")
        # 2. Request context: rate limit first (cheapest refusal), then purpose and request id.
        if not self.limiter.allow(identity.member.member_id):
            raise ResourceExhaustedError("member rate limit exceeded", reason="RATE_LIMITED")
        ctx.purpose = _purpose_of(first_request)
        ctx.request_id = _request_id_of(first_request, ctx.action)
        remaining = context.time_remaining()
        if remaining is not None:
            ctx.deadline = datetime.now(UTC) + timedelta(seconds=remaining)
        # 3. Policy: deny by default. Method-level resources are decided here; object-level
        #    ones by the handler (ctx.authorize), checked by _require_decision before data leaves.
        ctx.policy = self.policy
        target = METHOD_RESOURCES.get(ctx.action)
        if target is not None:
            rtype, rid = target
            ctx.authorize(rtype, identity.member.member_id if rid == "{self}" else rid)

    @staticmethod
    def _require_decision(ctx: CallContext) -> None:
        """No response data leaves without an allowed policy decision (fail closed)."""
        if not ctx.authorized:
            raise PermissionDeniedError(
                f"{ctx.action}: no policy decision allowed this response",
                rule_ids=("default-deny",),
            )

    async def _journal(self, ctx: CallContext, error: BaseException | None) -> None:
        """4. Journal: refused calls always; allowed calls unless the handler already did."""
        if error is None:
            if not ctx.journaled:
                await ctx.journal_now(outcome="OK")
            return
        outcome = status_code_for(error).name
        if isinstance(error, PermissionDeniedError):
            rules: tuple[str, ...] = error.rule_ids
        elif isinstance(error, UnauthenticatedError):
            rules = ("authentication",)
        elif isinstance(error, ResourceExhaustedError):
            rules = ("rate-limit",)
        else:
            rules = ctx.decision.rule_ids if ctx.decision else ()
        allowed = ctx.decision is not None and ctx.decision.allowed
        decision = "allow" if allowed and not isinstance(error, PermissionDeniedError) else "deny"
        event = ctx.event(decision=decision, outcome=outcome, rule_ids=rules)
        await self.db.run(lambda s: ctx.audit.append(s, event))

    async def _fail(self, ctx: CallContext, context: Any, error: BaseException) -> None:
        """5. Error mapping (after journaling the refusal; a journal failure wins: UNAVAILABLE)."""
        try:
            await self._journal(ctx, error)
        except Exception as journal_error:
            log.error("journal_write_failed", method=ctx.method, error=type(journal_error).__name__)
            error = UnavailableError("the journal is unavailable", reason="JOURNAL_UNAVAILABLE")
        if not isinstance(error, VigieError):
            log.error("unexpected_error", method=ctx.method, error=type(error).__name__)
        status = to_rpc_status(error)
        await context.abort(
            status_code_for(error),
            status.message,
            trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
        )

    def _new_context(self, method: str) -> CallContext:
        return CallContext(
            db=self.db,
            method=method,
            action=method.rsplit("/", 1)[-1],
            idempotency=self.idempotency,
        )

    # -- wrappers per RPC shape ---------------------------------------------------------------
    def _unary(self, method: str, behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def wrapped(request: Any, context: Any) -> Any:
            ctx = self._new_context(method)
            token = _set_current(ctx)
            try:
                await self._admit(ctx, context, request)
                response = await behaviour(request, context)
                self._require_decision(ctx)
                await self._journal(ctx, None)  # before the response leaves
                return response
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await self._fail(ctx, context, e)
            finally:
                _reset_current(token)

        return wrapped

    def _server_stream(
        self, method: str, behaviour: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., Any]:
        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            ctx = self._new_context(method)
            token = _set_current(ctx)
            try:
                await self._admit(ctx, context, request)
                if ctx.authorized:
                    await ctx.journal_now(outcome="STREAM_OPENED")  # handlers journal each item
                async for item in behaviour(request, context):
                    self._require_decision(ctx)
                    yield item
                await self._journal(ctx, None)
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await self._fail(ctx, context, e)
            finally:
                _reset_current(token)

        return wrapped

    def _client_stream(
        self, method: str, behaviour: Callable[..., Any], *, streaming_out: bool
    ) -> Callable[..., Any]:
        async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
            yield first
            async for item in rest:
                yield item

        async def _open(
            ctx: CallContext, request_iterator: Any, context: Any
        ) -> AsyncIterator[Any]:
            iterator = request_iterator.__aiter__()
            try:
                first = await iterator.__anext__()
            except StopAsyncIteration:
                raise InvalidArgumentError.for_field(
                    "purpose", "the stream sent no request"
                ) from None
            await self._admit(ctx, context, first)
            return _chain(first, iterator)

        if streaming_out:

            async def wrapped_bidi(request_iterator: Any, context: Any) -> AsyncIterator[Any]:
                ctx = self._new_context(method)
                token = _set_current(ctx)
                try:
                    requests = await _open(ctx, request_iterator, context)
                    async for item in behaviour(requests, context):
                        self._require_decision(ctx)
                        yield item
                    await self._journal(ctx, None)
                except grpc.aio.AbortError:
                    raise
                except Exception as e:
                    await self._fail(ctx, context, e)
                finally:
                    _reset_current(token)

            return wrapped_bidi

        async def wrapped_in(request_iterator: Any, context: Any) -> Any:
            ctx = self._new_context(method)
            token = _set_current(ctx)
            try:
                requests = await _open(ctx, request_iterator, context)
                response = await behaviour(requests, context)
                self._require_decision(ctx)
                await self._journal(ctx, None)
                return response
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await self._fail(ctx, context, e)
            finally:
                _reset_current(token)

        return wrapped_in

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or _EXEMPT.match(method):
            return handler
        action = method.rsplit("/", 1)[-1]
        if action not in ACTIONS:
            return handler  # not a Vigie method: grpc answers UNIMPLEMENTED itself
        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.request_streaming:
            fn = handler.stream_stream if handler.response_streaming else handler.stream_unary
            wrapped = self._client_stream(method, fn, streaming_out=handler.response_streaming)
            make = (
                grpc.stream_stream_rpc_method_handler
                if handler.response_streaming
                else grpc.stream_unary_rpc_method_handler
            )
            return make(wrapped, **kw)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._server_stream(method, handler.unary_stream), **kw
            )
        return grpc.unary_unary_rpc_method_handler(self._unary(method, handler.unary_unary), **kw)
