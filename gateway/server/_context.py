"""The per-call context the pipeline builds and handlers use (through a contextvar).

A handler never re-derives who is calling or why: it reads ``current_call()``. Writes go through
``CallContext.write`` so that the write and its journal event commit in one transaction.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from gateway.errors import NotFoundError, PermissionDeniedError, UnavailableError
from gateway.store import AccessEvent, Database, IdempotencyStore, Member, SqlAuditStore

__all__ = ["CallContext", "Decision", "current_call"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for this call (method level or object level)."""

    allowed: bool
    rule_ids: tuple[str, ...] = ()
    legal_refs: tuple[str, ...] = ()
    bundle_hash: str = ""
    view: frozenset[str] = frozenset()


class _Message(Protocol):
    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


@dataclass
class CallContext:
    """Who calls, why, and what the journal will say about it."""

    db: Database
    method: str
    action: str
    member: Member | None = None
    principal: str = ""
    cert_fingerprint: str = ""
    purpose: str = ""
    request_id: str = ""
    deadline: datetime | None = None
    decision: Decision | None = None
    record_refs: list[str] = field(default_factory=list)
    subject_pseudonyms: list[str] = field(default_factory=list)
    record_count: int | None = None
    journaled: bool = False
    authorized: bool = False
    policy: Any = None  # gateway.server._policy.PolicyHook (typed loosely: no import cycle)
    audit: SqlAuditStore = field(default_factory=SqlAuditStore)
    idempotency: IdempotencyStore | None = None  # set by the pipeline (it holds the data key)

    @property
    def member_id(self) -> str:
        return self.member.member_id if self.member else ""

    def records(
        self, refs: Sequence[str] = (), *, count: int | None = None, subjects: Sequence[str] = ()
    ) -> None:
        """Name the records this call touched (journaled as personal fields)."""
        self.record_refs.extend(refs)
        self.subject_pseudonyms.extend(subjects)
        if count is not None:
            self.record_count = count

    def event(
        self, *, decision: str, outcome: str, rule_ids: Sequence[str] | None = None
    ) -> AccessEvent:
        d = self.decision
        return AccessEvent(
            time=datetime.now(UTC),
            member_id=self.member_id,
            principal=self.principal,
            cert_fingerprint=self.cert_fingerprint,
            method=self.method,
            purpose=self.purpose,
            decision=decision,
            rule_ids=tuple(rule_ids if rule_ids is not None else (d.rule_ids if d else ())),
            bundle_hash=d.bundle_hash if d else "",
            request_id=self.request_id,
            outcome=outcome,
            record_count=(
                self.record_count if self.record_count is not None else len(self.record_refs)
            ),
            record_refs=tuple(self.record_refs),
            subject_pseudonyms=tuple(self.subject_pseudonyms),
        )

    def check(
        self, resource_type: str, resource_id: str, attributes: Mapping[str, Any] | None = None
    ) -> Decision:
        """Ask the policy about one object; never raises (streams skip what is denied)."""
        if self.policy is None or self.member is None:
            return Decision(allowed=False, rule_ids=("default-deny",))
        decision: Decision = self.policy.decide(
            self.member, self.action, self.purpose, resource_type, resource_id, attributes
        )
        return decision

    def authorize(
        self,
        resource_type: str,
        resource_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        hide_denial: bool = False,
    ) -> Decision:
        """Object-level decision for this call; records it for the journal.

        Args:
            hide_denial: answer NOT_FOUND instead of PERMISSION_DENIED, so that a member may
                not learn that a record it may not see exists (broken object-level
                authorisation attempts).

        Raises:
            PermissionDeniedError: denied, with the deciding rule ids.
            NotFoundError: denied and ``hide_denial``.
        """
        decision = self.check(resource_type, resource_id, attributes)
        self.decision = decision
        if not decision.allowed:
            self.authorized = False
            if hide_denial:
                raise NotFoundError(f"{resource_type} not found", reason="NOT_FOUND")
            raise PermissionDeniedError(
                f"{self.action} is not allowed on this {resource_type} for this purpose",
                rule_ids=decision.rule_ids,
                legal_refs=decision.legal_refs,
            )
        self.authorized = True
        return decision

    def _append(self, session: Session, outcome: str) -> None:
        """Append this call's allow event; any failure fails the whole transaction closed."""
        try:
            self.audit.append(session, self.event(decision="allow", outcome=outcome))
        except Exception as e:
            raise UnavailableError(
                "the journal is unavailable", reason="JOURNAL_UNAVAILABLE"
            ) from e

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run a write and append this call's journal event in the same transaction.

        Raises:
            UnavailableError: the write or its journal event could not be committed (both roll
                back: fail closed).
        """

        def _tx(session: Session) -> T:
            result = fn(session)
            self._append(session, "OK")
            return result

        result = await self.db.run(_tx)
        self.journaled = True
        return result

    async def idempotent_write(
        self,
        request: _Message,
        fn: Callable[[Session], _Message],
        parse: Callable[[bytes], T],
    ) -> T:
        """A write keyed by this call's request id (AIP-155): a retry returns the first answer.

        ``fn`` performs the write and returns the response message; the response, the write and
        the journal event commit together.

        Raises:
            FailedPreconditionError: the request id was used for a different request.
            UnavailableError: store or journal failure (nothing is committed).
        """
        digest = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
        store = self.idempotency
        if store is None:
            raise UnavailableError("idempotency store not configured", reason="NO_IDEMPOTENCY")

        def _tx(session: Session) -> bytes:
            stored = store.lookup(session, self.member_id, self.method, self.request_id, digest)
            if stored is None:
                response = fn(session)
                stored = response.SerializeToString(deterministic=True)
                store.store(
                    session,
                    self.member_id,
                    self.method,
                    self.request_id,
                    digest,
                    stored,
                    subject_ref=_subject_of(response),
                )
                outcome = "OK"
            else:
                outcome = "OK_REPLAYED"
            self._append(session, outcome)
            return stored

        raw = await self.db.run(_tx)
        self.journaled = True
        return parse(raw)

    async def journal_now(self, *, outcome: str = "OK") -> None:
        """Commit an event for what this call is about to send (streams: before each item).

        Raises:
            UnavailableError: the event could not be committed; the caller must not send.
        """

        def _tx(session: Session) -> None:
            self._append(session, outcome)

        await self.db.run(_tx)
        self.journaled = True
        self.record_refs.clear()
        self.subject_pseudonyms.clear()
        self.record_count = None


def _subject_of(message: Any) -> str | None:
    """The resource an answer is about: a notification's suspicion, else the answer's name."""
    fields = getattr(getattr(message, "DESCRIPTOR", None), "fields_by_name", {})
    if "suspicion" in fields and message.HasField("suspicion") and message.suspicion.name:
        return str(message.suspicion.name)
    if "name" in fields and message.name:
        return str(message.name)
    return None


_current: contextvars.ContextVar[CallContext] = contextvars.ContextVar("vigie_call")


def current_call() -> CallContext:
    """The context of the call being served.

    Raises:
        UnavailableError: called outside a call (a programming error; fail closed).
    """
    try:
        return _current.get()
    except LookupError:
        raise UnavailableError("no call context", reason="NO_CALL_CONTEXT") from None


def _set_current(ctx: CallContext) -> contextvars.Token[CallContext]:
    return _current.set(ctx)


def _reset_current(token: contextvars.Token[CallContext]) -> None:
    _current.reset(token)
