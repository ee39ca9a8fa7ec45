"""One ``UploadClaims`` stream: header checks, chunked transactions, journal, alert delivery.

Transactions and the journal (decision). A write and its journal event commit together
(``CallContext.write``), and memory stays bounded, so the unit of commit is the chunk:

* ``per_line``: each chunk (at most ``chunk_size`` lines of one request message) is one
  ``call.write`` transaction carrying its own journal event (the lines stored, their
  beneficiaries' pseudonyms as subjects). What was committed stays if the stream breaks; the
  client re-sends and the stored lines count as duplicates. Each progress message leaves after
  the chunk it reports on, and its event, are committed.
* ``all_or_nothing``: ONE ``call.write`` transaction for the whole upload, fed chunk by chunk.
  Its worker runs on a database thread and pulls the request messages from the event loop
  through a bounded :class:`_Bridge`, so the upload streams into the open transaction without
  being held in memory. Each chunk appends its own event (its subjects) inside the upload's
  SAVEPOINT, and the upload's event is appended by ``call.write`` outside it: a refused line
  rolls back the lines and their chunk events, and the event saying "nothing stored" commits.
  An event ``UPLOAD_STARTED`` is committed before the first progress message leaves. Price: the
  transaction is as long as the upload (SQLite: the database's write lock; PostgreSQL: row and
  beneficiary locks), and a worker that waits more than ``idle_timeout_s`` for the client is
  aborted (RESOURCE_EXHAUSTED, nothing stored).

Back-pressure: at most two request messages wait between the stream and the worker, and at
most two progress messages wait to be sent; a client that stops reading its responses is
stopped by gRPC flow control, never buffered.

Alert delivery: every alert a chunk raised or changed (outbox flag ``delivered`` false) is, in
the same transaction, put in its member's notification outbox as kind ``ALERT`` with the
``vigie.v1.Alert`` message (``MessageToDict``, proto field names) minimised by the policy's
decision for that member (action ``GetAlert``, purpose ``fraud_detection``); a member the
policy does not entitle gets nothing. Withdrawn alerts are below the threshold: not delivered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Literal, TypeVar

from google.protobuf import json_format
from sqlalchemy.orm import Session

from gateway._proto.vigie.v1 import claims_pb2
from gateway.domain import RuleSet
from gateway.domain._suspicion_exchange import enqueue_notification
from gateway.domain.ingestion import (
    BatchIngestion,
    BatchProgress,
    BatchReport,
    LineRejection,
    StoredClaim,
    UploadMode,
)
from gateway.errors import FieldViolation, InvalidArgumentError, ResourceExhaustedError
from gateway.ids import MemberId
from gateway.server import CallContext
from gateway.services._claims_convert import (
    alert_attributes,
    alert_to_pb,
    line_to_mapping,
    mode_from_pb,
    progress_to_pb,
    side_from_pb,
)
from gateway.services._deps import Deps
from gateway.store import Member
from gateway.store._claims import SessionClaimStore, SqlAlertStore
from gateway.store._history_sql import ProviderStatsCache

__all__ = ["Header", "UploadSettings", "run_upload"]

T = TypeVar("T")
Response = claims_pb2.UploadClaimsResponse
_HEADER_FIELDS = ("purpose", "request_id", "side", "mode")
DELIVERY_PURPOSE = "fraud_detection"


@dataclass(frozen=True, slots=True)
class UploadSettings:
    """Tunables of the upload (the servicer's; tests shrink them)."""

    chunk_size: int = 1000
    idle_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Header:
    """The first request message's header, checked."""

    side: Literal["AMO", "AMC"]
    mode: UploadMode
    first: claims_pb2.UploadClaimsRequest

    @classmethod
    def parse(cls, first: claims_pb2.UploadClaimsRequest) -> Header:
        """Side and mode are required on the first message (purpose and request id: pipeline).

        Raises:
            InvalidArgumentError: side or mode missing or unknown.
        """
        side, mode = side_from_pb(first.side), mode_from_pb(first.mode)
        problems = []
        if side is None:
            problems.append(FieldViolation("side", "required on the first message: AMO or AMC"))
        if mode is None:
            problems.append(FieldViolation("mode", "required on the first message"))
        if problems:
            fields = ", ".join(v.field for v in problems)
            raise InvalidArgumentError(f"invalid upload header: {fields}", problems)
        return cls(side=side, mode=mode, first=first)  # type: ignore[arg-type]

    def check(self, message: claims_pb2.UploadClaimsRequest) -> None:
        """A later message's header fields must be unset or equal to the first message's.

        Raises:
            InvalidArgumentError: the first differing field.
        """
        for name in _HEADER_FIELDS:
            value = getattr(message, name)
            if value and value != getattr(self.first, name):
                raise InvalidArgumentError.for_field(
                    name, "must be unset or equal to the first message's after the first message"
                )


class _Aborted(Exception):
    """The stream side gave up (client gone, bad message): the worker must roll back."""


class _Bridge:
    """Hands request batches from the event loop to a worker thread, and progress back.

    Both directions are bounded queues on the loop; the worker blocks on them through
    ``run_coroutine_threadsafe``. :meth:`abort` (loop side) wakes a blocked worker at once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, idle_timeout_s: float) -> None:
        self.loop, self.idle = loop, idle_timeout_s
        self.inbox: asyncio.Queue[list[dict[str, object]] | None] = asyncio.Queue(2)
        self.outbox: asyncio.Queue[BatchProgress] = asyncio.Queue(2)
        self._aborted = False
        self._pending: concurrent.futures.Future[Any] | None = None
        self._lock = threading.Lock()

    def _wait(self, make: Callable[[], Any]) -> Any:
        with self._lock:
            if self._aborted:
                raise _Aborted
            fut = asyncio.run_coroutine_threadsafe(make(), self.loop)
            self._pending = fut
        try:
            return fut.result(self.idle)
        except concurrent.futures.CancelledError:
            raise _Aborted from None
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise ResourceExhaustedError(
                f"all-or-nothing upload idle for more than {self.idle:g} s: rolled back",
                reason="UPLOAD_IDLE",
            ) from None
        finally:
            with self._lock:
                self._pending = None

    def next_batch(self) -> list[dict[str, object]] | None:
        """Worker side: the next batch of raw lines, ``None`` at the end of the stream."""
        batch: list[dict[str, object]] | None = self._wait(self.inbox.get)
        return batch

    def emit(self, progress: BatchProgress) -> None:
        """Worker side: hand one progress report to the stream."""
        self._wait(partial(self.outbox.put, progress))

    def abort(self) -> None:
        """Loop side: make the worker stop at its next (or current) wait."""
        with self._lock:
            self._aborted = True
            if self._pending is not None:
                self._pending.cancel()


class _Upload:
    """The state of one upload stream (see the module docstring)."""

    def __init__(
        self,
        deps: Deps,
        call: CallContext,
        header: Header,
        *,
        ruleset: RuleSet,
        stats: ProviderStatsCache,
        settings: UploadSettings,
        today: date,
    ) -> None:
        assert call.member is not None
        self.deps, self.call, self.header, self.settings = deps, call, header, settings
        self.member: Member = call.member
        self.ref = f"uploads/{call.request_id}"
        self.store = SessionClaimStore(
            stats_cache=stats, on_inserted=self._inserted, on_scored=self._deliver
        )
        self.alerts = SqlAlertStore()
        self.rejections: list[LineRejection] = []
        self._chunk_events = header.mode == "all_or_nothing"
        self._members: dict[str, Member | None] = {self.member.member_id: self.member}
        self.ingestion = BatchIngestion(
            member=MemberId(self.member.member_id),
            member_kind=header.side,
            mode=header.mode,
            store=self.store,
            rekeyer=deps.keys.rekeyer,
            today=today,
            ruleset=ruleset,
            chunk_size=settings.chunk_size,
            progress=self._progress,
        )
        self.bridge: _Bridge | None = None
        self._notified: set[str] = set()  # members whose feed this upload wrote to

    # -- hooks, on the database thread, inside the transaction --------------------------------

    def _progress(self, progress: BatchProgress) -> None:
        if self.bridge is not None:
            self.bridge.emit(progress)
        else:
            self.rejections.extend(progress.rejections)

    def _inserted(self, session: Session, stored: Sequence[StoredClaim]) -> None:
        """The journal records of a chunk: the upload, how many lines, whose (pseudonyms)."""
        subjects = sorted({c.record.line.beneficiary_token for c in stored})
        call = self.call
        if self._chunk_events:  # all-or-nothing: the chunk's own event, inside the savepoint
            call.records([self.ref], count=len(stored), subjects=subjects)
            call.audit.append(session, call.event(decision="allow", outcome="OK_CHUNK"))
            self._reset_records()
        else:  # per-line: the records of the event ``call.write`` appends for this chunk
            call.records([self.ref], count=len(stored), subjects=subjects)

    def _recipient(self, session: Session, member_id: str) -> Member | None:
        if member_id not in self._members:
            self._members[member_id] = self.deps.registry.get(session, MemberId(member_id))
        return self._members[member_id]

    def _deliver(self, session: Session, claim_line_ids: Sequence[int]) -> None:
        """Outbox every alert the chunk raised or changed, minimised for its member."""
        now = datetime.now(UTC)
        pending = self.alerts.pending_for_lines(session, claim_line_ids)
        for alert in pending:
            member = self._recipient(session, alert.member)
            if alert.withdrawn_at is not None or member is None or not member.active:
                continue
            decision = self.deps.policy.decide(
                member, "GetAlert", DELIVERY_PURPOSE, "alert", alert.name, alert_attributes(alert)
            )
            if not decision.allowed:
                continue
            payload = json_format.MessageToDict(
                alert_to_pb(alert, decision.view), preserving_proto_field_name=True
            )
            enqueue_notification(
                session, member.member_id, "ALERT", alert.name, payload,
                self.deps.keys.envelope, now,
            )  # fmt: skip
            self._notified.add(member.member_id)
        self.alerts.mark_delivered(session, [a.id for a in pending])

    def _wake(self) -> None:
        """Wake the notification streams of the members this upload's commits wrote to."""
        feed = self.deps.extras.get("notification_feed")
        if feed is not None and self._notified:
            feed.wake(set(self._notified))
        self._notified.clear()

    def _reset_records(self) -> None:
        self.call.record_refs.clear()
        self.call.subject_pseudonyms.clear()
        self.call.record_count = 0

    # -- per-line: one transaction per chunk ---------------------------------------------------

    def _chunk_tx(self, raws: list[dict[str, object]], session: Session) -> BatchProgress:
        self._reset_records()
        self.store.session = session
        try:
            return self.ingestion.add(raws)
        finally:
            self.store.session = None

    async def per_line(
        self, messages: AsyncIterator[claims_pb2.UploadClaimsRequest]
    ) -> AsyncIterator[Response]:
        size = self.settings.chunk_size
        with self.ingestion:
            async for message in messages:
                lines = message.lines
                for start in range(0, len(lines), size):
                    raws = [line_to_mapping(pb) for pb in lines[start : start + size]]
                    snapshot = await self.call.write(partial(self._chunk_tx, raws))
                    self._wake()  # committed: open streams may read the new alerts now
                    rejections, self.rejections = self.rejections, []
                    yield progress_to_pb(snapshot, rejections)
            report = self.ingestion.finish()
        self._reset_records()
        self.call.records([self.ref], count=0)
        yield progress_to_pb(report, final=True)

    # -- all-or-nothing: one transaction, fed through the bridge ---------------------------------

    def _upload_tx(self, session: Session) -> BatchReport:
        assert self.bridge is not None
        self.store.session = session
        try:
            with self.ingestion:
                while (batch := self.bridge.next_batch()) is not None:
                    self.ingestion.add(batch)
                report = self.ingestion.finish()
        finally:
            self.store.session = None
        self._reset_records()
        stored = report.accepted if report.outcome == "committed" else 0
        self.call.records([self.ref], count=stored)
        return report

    async def _feed(self, messages: AsyncIterator[claims_pb2.UploadClaimsRequest]) -> None:
        assert self.bridge is not None
        size = self.settings.chunk_size
        async for message in messages:
            lines = message.lines
            for start in range(0, len(lines), size):
                await self.bridge.inbox.put(
                    [line_to_mapping(pb) for pb in lines[start : start + size]]
                )
        await self.bridge.inbox.put(None)

    async def all_or_nothing(
        self, messages: AsyncIterator[claims_pb2.UploadClaimsRequest]
    ) -> AsyncIterator[Response]:
        self.call.records([self.ref], count=0)
        await self.call.journal_now(outcome="UPLOAD_STARTED")
        bridge = self.bridge = _Bridge(asyncio.get_running_loop(), self.settings.idle_timeout_s)
        feeder = asyncio.ensure_future(self._feed(messages))
        writer = asyncio.ensure_future(self.call.write(self._upload_tx))
        for task in (feeder, writer):
            task.add_done_callback(_retrieve)
        watched: set[asyncio.Future[Any]] = {feeder, writer}
        try:
            while True:
                getter = asyncio.ensure_future(bridge.outbox.get())
                done, _ = await asyncio.wait(
                    {getter, *watched}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    progress = getter.result()
                    yield progress_to_pb(progress, progress.rejections)
                    continue
                getter.cancel()
                if writer in done:
                    break
                watched.discard(feeder)
                error = feeder.exception()
                if error is not None:  # the stream failed: roll back first, then say why
                    bridge.abort()
                    await asyncio.wait({writer})
                    raise error
            while not bridge.outbox.empty():
                progress = bridge.outbox.get_nowait()
                yield progress_to_pb(progress, progress.rejections)
            report = writer.result()  # raises the worker's error (store, idle timeout)
            self._wake()
        finally:
            bridge.abort()
            feeder.cancel()
        yield progress_to_pb(report, final=True)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a background task's exception as seen (it is re-raised where it matters)."""
    if not task.cancelled():
        task.exception()


async def _messages(
    header: Header, requests: AsyncIterator[claims_pb2.UploadClaimsRequest]
) -> AsyncIterator[claims_pb2.UploadClaimsRequest]:
    yield header.first
    async for message in requests:
        header.check(message)
        yield message


async def run_upload(
    deps: Deps,
    call: CallContext,
    requests: AsyncIterator[claims_pb2.UploadClaimsRequest],
    *,
    ruleset: RuleSet,
    stats: ProviderStatsCache,
    settings: UploadSettings,
) -> AsyncIterator[Response]:
    """Serve one upload stream (see the module docstring).

    Raises:
        InvalidArgumentError: bad header (first message, or a later one that differs).
        PermissionDeniedError: the policy refuses this side for this member and purpose.
        ResourceExhaustedError: an all-or-nothing upload left idle too long.
        UnavailableError: the store or the journal failed (what was committed stays committed).
    """
    stream_in = aiter(requests)
    header = Header.parse(await anext(stream_in))
    # Object-level decision: the batch is the caller's own, of the side it declares.
    call.authorize(
        "claim_batch",
        f"uploads/{call.request_id}",
        {"claim_side": header.side, "principal_is_submitter": True},
    )
    upload = _Upload(
        deps, call, header, ruleset=ruleset, stats=stats, settings=settings,
        today=datetime.now(UTC).date(),
    )  # fmt: skip
    messages = _messages(header, stream_in)
    if header.mode == "per_line":
        stream = upload.per_line(messages)
    else:
        stream = upload.all_or_nothing(messages)
    async for response in stream:
        yield response
