"""SuspicionService: thin adapter from protobuf to the suspicion exchange of the domain.

Every handler runs inside the call pipeline (identity, purpose, method-level policy, journal).
Here, per call:

1. bad input is refused before anything is read or written (INVALID_ARGUMENT, field paths);
2. each suspicion is decided on its own (``call.authorize`` / ``call.check``) with the relation
   facts the gateway computed (need-to-know); a suspicion the caller may not see is NOT_FOUND,
   exactly like one that does not exist;
3. what leaves is the decision's minimisation view, nothing else (``_suspicions_convert``);
4. writes and their journal event commit in one transaction (``call.idempotent_write``);
   streamed notifications are journaled one by one before they leave (``call.journal_now``).

Live notifications: writes made in this process wake the streams of the members they concern
(:class:`NotificationFeed`); every stream also polls the database every
:data:`NOTIFICATION_POLL_S` seconds for writes made by other gateway replicas. A waiting stream
holds no thread and spins no loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from google.protobuf import json_format
from sqlalchemy.orm import Session

from gateway._proto.vigie.v1 import suspicions_pb2, suspicions_pb2_grpc
from gateway.domain.retention import run_retention_journaled
from gateway.domain.suspicions import MAX_PAGE_SIZE as DOMAIN_MAX_PAGE_SIZE
from gateway.domain.suspicions import (
    Notification,
    Suspicion,
    acknowledge,
    apply_transition,
    create_suspicion,
    get_suspicion,
    list_suspicions,
    notification_of,
    notifications_after,
    own_reference,
    relation_facts,
    resume_position,
    suspicion_alert_level,
    suspicion_expiry,
    suspicion_view,
)
from gateway.errors import InvalidArgumentError, NotFoundError
from gateway.server import CallContext, Decision, current_call
from gateway.services import _suspicions_convert as conv
from gateway.services._deps import Deps
from gateway.services._paging import page_size
from gateway.store import Member
from gateway.store._suspicions import ProviderIds, member_claim_references
from policy import PolicyEngine, bundle_path

__all__ = ["NOTIFICATION_POLL_S", "RETENTION_INTERVAL_S", "NotificationFeed", "SuspicionServicer"]

log = structlog.get_logger("vigie.suspicions")

NOTIFICATION_POLL_S: Final = 1.0
"""How often a waiting stream looks for notifications written by other replicas."""
RETENTION_INTERVAL_S: Final = 3600.0
"""How often the server runs the retention purge (``vigie retention run`` runs it at once)."""
STREAM_BATCH: Final = 100
FEED_EXTRA: Final = "notification_feed"
"""``Deps.extras`` key of the :class:`NotificationFeed` (other services wake streams with it)."""


def _now() -> datetime:
    return datetime.now(UTC)


class NotificationFeed:
    """Wakes the streams of members whose feed this process just wrote to (event loop only)."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def subscribe(self, member_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``member_id``'s feed may have grown; clear it before reading."""
        event = asyncio.Event()
        self._waiters.setdefault(member_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(member_id, set())
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(member_id, None)

    def wake_all(self) -> None:
        """Wake every stream (after a write whose recipients are not known here)."""
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def wake(self, member_ids: Collection[str]) -> None:
        """Call after the transaction that wrote to these members' feeds has committed."""
        for member_id in member_ids:
            for event in self._waiters.get(member_id, ()):
                event.set()


def _engine_of(deps: Deps) -> PolicyEngine:
    """The bundle behind the decision point (views, threshold, retention).

    A test hook without an engine falls back to the configured bundle: its views and periods
    still apply to what leaves and what is kept.
    """
    engine = getattr(deps.policy, "engine", None)
    if isinstance(engine, PolicyEngine):
        return engine
    return PolicyEngine.load(bundle_path(deps.settings.policy_bundle))


@dataclass(frozen=True)
class _Item:
    """A streamed notification, what its journal event names, and the decision that allowed it."""

    message: suspicions_pb2.Notification
    refs: list[str]
    subjects: list[str] = field(default_factory=list)
    decision: Decision | None = None  # None: the feed's collection decision


def _attributes(s: Suspicion, facts: dict[str, bool]) -> dict[str, Any]:
    return {**s.policy_attributes(), **facts}


class SuspicionServicer(suspicions_pb2_grpc.SuspicionServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.engine = _engine_of(deps)
        self.feed = NotificationFeed()
        deps.extras[FEED_EXTRA] = self.feed
        deps.jobs.append(self._retention_job)

    # -- helpers -----------------------------------------------------------------------------
    def _view_name(self, kind: str, purpose: str) -> str:
        return f"{self.engine.bundle_name}/suspicion/{kind}/{purpose}"

    def _to_pb(
        self,
        session: Session,
        s: Suspicion,
        reader: Member,
        purpose: str,
        decision: Decision,
    ) -> suspicions_pb2.Suspicion:
        """The suspicion as ``reader`` may receive it under ``decision`` (its view only)."""
        fields = suspicion_view(
            session, s, reader, self.engine, purpose, self.deps.keys.envelope, view=decision.view
        )
        related: list[str] = []
        if "own_reference" in fields and s.erased_at is None:
            provider = ProviderIds(
                s.subject_provider_rpps, s.subject_provider_am_number, s.subject_provider_finess
            )
            related = member_claim_references(
                session, reader.member_id, s.subject_beneficiary, provider
            )
        return conv.suspicion_to_pb(
            fields,
            view_name=self._view_name(reader.kind, purpose),
            alert_level=suspicion_alert_level(s.estimated_amount_cents),
            expire_time=suspicion_expiry(s, self.engine),
            related_claim_references=related,
        )

    @staticmethod
    def _touched(call: CallContext, s: Suspicion) -> None:
        subjects = [s.subject_beneficiary] if s.subject_beneficiary else []
        call.records([conv.suspicion_name(s.id)], count=1, subjects=subjects)

    def _load_decided(
        self, session: Session, call: CallContext, suspicion_id: str
    ) -> tuple[Suspicion, Decision]:
        """Read a suspicion and decide this call on it; NOT_FOUND if it may not be seen.

        A caller that may read the suspicion but not do this action gets PERMISSION_DENIED
        with the rule ids; one that may not even read it gets NOT_FOUND (no hint it exists).
        """
        assert call.member is not None
        try:
            s = get_suspicion(session, suspicion_id)
        except NotFoundError:
            raise conv.suspicion_not_found() from None
        attrs = _attributes(s, relation_facts(session, s, call.member.member_id))
        visible = call.action != "GetSuspicion" and (
            self.deps.policy.decide(
                call.member, "GetSuspicion", call.purpose, "suspicion", s.id, attrs
            ).allowed
        )
        try:
            decision = call.authorize("suspicion", s.id, attrs, hide_denial=not visible)
        except NotFoundError:
            raise conv.suspicion_not_found() from None
        return s, decision

    # -- unary methods -------------------------------------------------------------------------
    async def CreateSuspicion(self, request: Any, context: Any) -> suspicions_pb2.Suspicion:
        call = current_call()
        member = call.member
        assert member is not None
        draft = conv.draft_from_pb(request)  # 1. nothing is read or written for bad input
        decision = call.authorize(  # 2. who may submit, for which purpose (CSS L.114-9/-1)
            "suspicion",
            "new",
            {
                "submitter_member": member.member_id,
                "submitter_kind": member.kind,
                "status": "submitted",
                "sector": draft.sector,
                "estimated_amount_cents": draft.estimated_amount_cents,
                "principal_is_submitter": True,
            },
        )
        keys = self.deps.keys

        def write(session: Session) -> suspicions_pb2.Suspicion:
            # 3. re-key the beneficiary token, seal the free text, store (one transaction).
            s = create_suspicion(session, draft, member, keys.rekeyer, keys.envelope, _now())
            self._touched(call, s)
            return self._to_pb(session, s, member, call.purpose, decision)

        result: suspicions_pb2.Suspicion = await call.idempotent_write(
            request, write, suspicions_pb2.Suspicion.FromString
        )
        return result

    async def GetSuspicion(self, request: Any, context: Any) -> suspicions_pb2.Suspicion:
        call = current_call()
        member = call.member
        assert member is not None
        suspicion_id = conv.parse_suspicion_name(request.name)

        def read(session: Session) -> suspicions_pb2.Suspicion:
            s, decision = self._load_decided(session, call, suspicion_id)
            self._touched(call, s)
            return self._to_pb(session, s, member, call.purpose, decision)

        # The read and its journal event commit together (one transaction, before it leaves).
        return await call.write(read)

    async def ListSuspicions(
        self, request: Any, context: Any
    ) -> suspicions_pb2.ListSuspicionsResponse:
        call = current_call()
        member, collection = call.member, call.decision
        assert member is not None and collection is not None
        size = min(page_size(request.page_size), DOMAIN_MAX_PAGE_SIZE)
        sector = conv.sector_filter(request.sector)
        status = conv.status_filter(request.status)
        minimum = conv.level_filter(request.minimum_alert_level)
        if minimum is not None and "estimated_amount_cents" not in collection.view:
            # The level derives from the amount: filtering on it would disclose the amount.
            raise InvalidArgumentError.for_field(
                "minimum_alert_level", "not available in the caller's minimisation view"
            )
        start, end = conv.interval_from_pb(request)
        filters = {
            "sector": sector,
            "status": status,
            "level": minimum,
            "from": start.isoformat() if start else None,
            "before": end.isoformat() if end else None,
            "size": size,
        }
        inner = self.deps.page_tokens.read(request.page_token, filters) or ""
        decisions: dict[str, Decision] = {}

        def may_see(s: Suspicion, facts: dict[str, bool]) -> bool:
            if minimum is not None and conv.level_rank(
                suspicion_alert_level(s.estimated_amount_cents)
            ) < conv.level_rank(minimum):
                return False
            d = call.check("suspicion", s.id, _attributes(s, facts))
            if d.allowed:
                decisions[s.id] = d
            return d.allowed

        def read(session: Session) -> suspicions_pb2.ListSuspicionsResponse:
            items, next_inner = list_suspicions(
                session,
                member.member_id,
                may_see=may_see,
                sector=sector,
                statuses=[status] if status else (),
                created_from=start,
                created_before=end,
                page_size=size,
                page_token=inner,
            )
            call.records(
                [conv.suspicion_name(s.id) for s in items],
                count=len(items),
                subjects=[s.subject_beneficiary for s in items if s.subject_beneficiary],
            )
            return suspicions_pb2.ListSuspicionsResponse(
                suspicions=[
                    self._to_pb(session, s, member, call.purpose, decisions[s.id]) for s in items
                ],
                next_page_token=(
                    self.deps.page_tokens.issue(next_inner, filters) if next_inner else ""
                ),
            )

        return await call.write(read)  # the page and its journal event in one transaction

    async def TransitionSuspicion(self, request: Any, context: Any) -> suspicions_pb2.Suspicion:
        call = current_call()
        member = call.member
        assert member is not None
        suspicion_id = conv.parse_suspicion_name(request.name)
        target = conv.status_from_pb(request.status)
        if target is None:
            raise InvalidArgumentError.for_field("status", "must be a target suspicion status")
        if not request.reason:
            raise InvalidArgumentError.for_field("reason", "required: why the status changes")
        # Decide first (outside the write), so that a retry replays under a recorded decision.
        _, decision = await self.deps.db.run(
            lambda session: self._load_decided(session, call, suspicion_id)
        )
        notified: list[str] = []

        def write(session: Session) -> suspicions_pb2.Suspicion:
            # Lifecycle, then distribution past the threshold or retraction (domain, locked row).
            moved, _, reached = apply_transition(
                session,
                suspicion_id,
                target,
                member,
                request.reason,
                engine=self.engine,
                members=self.deps.registry.all(session),
                envelope=self.deps.keys.envelope,
                now=_now(),
                purpose=call.purpose,
                actor_principal=call.principal,
            )
            notified.extend(reached)
            self._touched(call, moved)
            return self._to_pb(session, moved, member, call.purpose, decision)

        result: suspicions_pb2.Suspicion = await call.idempotent_write(
            request, write, suspicions_pb2.Suspicion.FromString
        )
        self.feed.wake(notified)  # committed: the recipients' streams may read them now
        return result

    async def AcknowledgeNotification(
        self, request: Any, context: Any
    ) -> suspicions_pb2.Notification:
        call = current_call()
        member = call.member
        assert member is not None
        sequence = conv.parse_notification_name(request.name, member.member_id)
        case_reference = request.case_reference or None

        def decide(session: Session) -> None:
            n = notification_of(session, member.member_id, sequence)
            refs = [request.name]
            if n.kind != "ALERT":
                refs.append(conv.suspicion_name(n.subject_ref))
            call.records(refs, count=1)
            try:
                s = get_suspicion(session, n.subject_ref) if n.kind != "ALERT" else None
            except NotFoundError:
                s = None  # purged since: the retraction is still acknowledged
            if s is None:
                call.authorize("collection", "suspicion")  # the member's own feed
            else:
                call.authorize(
                    "suspicion", s.id, _attributes(s, relation_facts(session, s, member.member_id))
                )

        await self.deps.db.run(decide)

        def write(session: Session) -> suspicions_pb2.Notification:
            n = acknowledge(
                session, member.member_id, sequence, _now(), case_reference=case_reference
            )
            return conv.notification_to_pb(n)

        result: suspicions_pb2.Notification = await call.idempotent_write(
            request, write, suspicions_pb2.Notification.FromString
        )
        return result

    # -- notification stream -----------------------------------------------------------------
    def _stream_item(self, session: Session, call: CallContext, n: Notification) -> _Item | None:
        """One feed entry minimised for this stream's purpose, or ``None`` to skip it."""
        member, purpose = call.member, call.purpose
        assert member is not None
        if n.kind == "ALERT":
            if not self.engine.view("alert", member.kind, purpose) or n.payload is None:
                return None
            try:
                alert = conv.alert_from_payload(n.payload)
            except json_format.ParseError:
                log.error("alert_payload_unreadable", sequence=n.sequence)
                return None
            return _Item(conv.notification_to_pb(n, alert=alert), [n.subject_ref])
        view = self.engine.view("suspicion", member.kind, purpose)
        if not view:
            return None  # e.g. fraud_detection: the feed carries alerts only
        name = conv.suspicion_name(n.subject_ref)
        if n.kind == "RETRACTED":
            body = suspicions_pb2.Suspicion(name=name, minimisation_view="retraction")
            status = (n.payload or {}).get("status")
            if status in conv.STATUS_PB:
                body.status = conv.STATUS_PB[status]
            return _Item(conv.notification_to_pb(n, suspicion=body), [name])
        try:
            s: Suspicion | None = get_suspicion(session, n.subject_ref)
        except NotFoundError:
            s = None
        fields: dict[str, Any] = {"id": n.subject_ref}
        decision: Decision | None = None
        if s is not None and n.payload is not None:
            facts = relation_facts(session, s, member.member_id)
            decision = call.check("suspicion", s.id, _attributes(s, facts))
            if not decision.allowed:
                return None
            allowed = view & decision.view
            fields = {k: v for k, v in n.payload.items() if k in allowed}
            if "own_reference" in fields:
                fields["own_reference"] = own_reference(session, s, member.member_id)
        body = conv.suspicion_to_pb(
            fields,
            view_name=self._view_name(member.kind, purpose),
            alert_level=(
                suspicion_alert_level(int(fields["estimated_amount_cents"]))
                if "estimated_amount_cents" in fields
                else None
            ),
        )
        subjects = [fields["subject_beneficiary"]] if fields.get("subject_beneficiary") else []
        return _Item(conv.notification_to_pb(n, suspicion=body), [name], subjects, decision)

    async def StreamNotifications(
        self, request: Any, context: Any
    ) -> AsyncIterator[suspicions_pb2.Notification]:
        call = current_call()
        member = call.member
        assert member is not None
        envelope = self.deps.keys.envelope
        if request.HasField("after_sequence"):
            if request.after_sequence < 0:
                raise InvalidArgumentError.for_field("after_sequence", "must be >= 0")
            after = request.after_sequence
        else:
            after = await self.deps.db.run(lambda s: resume_position(s, member.member_id))
        poll = float(self.deps.extras.get("notification_poll_s", NOTIFICATION_POLL_S))

        def batch(session: Session, cursor: int) -> list[tuple[int, _Item | None]]:
            entries = notifications_after(session, member.member_id, cursor, STREAM_BATCH, envelope)
            return [(n.sequence, self._stream_item(session, call, n)) for n in entries]

        collection = call.decision  # the feed's own decision (method level)
        with self.feed.subscribe(member.member_id) as grown:
            while True:
                grown.clear()  # before reading: a write committed after this wakes us
                items = await self.deps.db.run(functools.partial(batch, cursor=after))
                for sequence, item in items:
                    after = sequence
                    if item is None:
                        continue
                    call.decision = item.decision or collection  # its rules, in its event
                    call.records(item.refs, count=1, subjects=item.subjects)
                    await call.journal_now(outcome="OK")  # journaled before it leaves
                    yield item.message
                if len(items) < STREAM_BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(grown.wait(), timeout=poll)

    # -- retention ---------------------------------------------------------------------------
    async def run_retention_once(self) -> None:
        """One journaled retention run (what ``vigie retention run`` does), then wake feeds."""
        now = _now()
        report, _ = await self.deps.db.run(
            lambda s: run_retention_journaled(
                s, self.engine, self.deps.keys.envelope, now, principal="vigie-gateway"
            )
        )
        self.feed.wake_all()  # the run may have queued retractions
        log.info("retention_run", **report.counts())

    async def _retention_job(self) -> None:
        interval = float(self.deps.extras.get("retention_interval_s", RETENTION_INTERVAL_S))
        while True:
            await asyncio.sleep(interval)  # a schedule, not a synchronisation
            try:
                await self.run_retention_once()
            except Exception as e:  # keep serving; the next run retries
                log.error("retention_run_failed", error=type(e).__name__)
