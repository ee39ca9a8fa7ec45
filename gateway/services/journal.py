"""JournalService: the compliance officers' read access to the journal (thin adapter).

The pipeline has already authenticated the caller, checked the purpose and taken the
method-level decision (compliance officers only; policy rules ``common-compliance-journal``
and ``common-compliance-list-events``). Here, for every event that would leave:

1. the event's relation facts for the caller (``gateway.journal.access``) go to the policy
   (``common-compliance-read-event``; an AMC never sees another AMC's accesses);
2. a denied event is skipped (lists) or withheld as its bare leaf hash (exports);
3. an allowed event leaves through the decision's minimisation view (``_journal_convert``).

``ListPersonAccesses`` turns the person's first-level token into the stored pseudonyms under
every live key version (``Rekeyer.rekey_all_versions``); the token itself is never stored,
logged or returned (page tokens bind a domain-separated hash of the pseudonym). The lookup is
journaled like any access: it names the person's pseudonym, so it appears in the person's own
list next time.

The servicer also owns the journal's fail-closed guard (``gateway.journal.guard``): it adds the
sequencer and its watcher to ``Deps.jobs`` and publishes the guard as
``Deps.extras["journal_guard"]``, which the server wires to the pipeline's gate and to gRPC
health.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from gateway._proto.vigie.v1 import journal_pb2, journal_pb2_grpc
from gateway.crypto import parse_token1
from gateway.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from gateway.journal import vkey_for
from gateway.journal.access import event_attributes
from gateway.journal.guard import JournalGuard
from gateway.journal.queries import (
    Disclosure,
    EventFilter,
    JournalRecord,
    StoredCheckpoint,
    checkpoint_at,
    consistency_proof,
    events_after,
    export_bundle,
    inclusion_proof,
    latest_checkpoint,
)
from gateway.server import CallContext, Decision, current_call
from gateway.services._deps import Deps
from gateway.services._journal_convert import (
    checkpoint_to_pb,
    event_to_pb,
    list_filter_from_pb,
    time_range_from_pb,
)
from gateway.services._paging import page_size

__all__ = ["GUARD_KEY", "JournalServicer"]

GUARD_KEY: Final = "journal_guard"
EXPORT_CHUNK_BYTES: Final = 1 << 20  # well under the 4 MiB message limit
_SCAN: Final = 200  # events read per batch while filling a page with visible events
_PERSON_DOMAIN: Final = b"vigie/v1/page-token/person\x00"

Decide = Callable[[dict[str, Any]], Decision]


def _decider(call: CallContext) -> Decide:
    """Object-level decisions on journal events, cached per call by attributes.

    The rules decide on the attributes and relation facts, never on an event's id, so the
    resource id is a constant and equal attributes give equal decisions.
    """
    cache: dict[tuple[tuple[str, Any], ...], Decision] = {}

    def decide(attributes: dict[str, Any]) -> Decision:
        key = tuple(sorted(attributes.items()))
        if key not in cache:
            cache[key] = call.check("journal_event", "event", attributes)
        return cache[key]

    return decide


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


def _visible(
    session: Session, call: CallContext, decide: Decide, records: Sequence[JournalRecord]
) -> list[Decision]:
    return [decide(a) for a in event_attributes(session, call.member_id, records)]


class JournalServicer(journal_pb2_grpc.JournalServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        settings, key = deps.settings, deps.keys.journal_key
        self.origin = settings.journal_origin
        self.vkey = vkey_for(self.origin, key.public_key())
        self.guard = JournalGuard(
            deps.db,
            key,
            self.origin,
            interval=settings.checkpoint_interval_s,
            batch_size=settings.journal_batch_size,
        )
        deps.extras[GUARD_KEY] = self.guard
        deps.jobs.extend([self.guard.run_sequencer, self.guard.watch])
        deps.on_stop.append(self.guard.stop)

    # -- lists -----------------------------------------------------------------------------------
    def _page(
        self,
        session: Session,
        call: CallContext,
        filters: EventFilter,
        after: int,
        size: int,
    ) -> tuple[list[tuple[JournalRecord, Decision]], bool]:
        """Up to ``size`` visible events after ``after``, and whether a visible one follows.

        The next page token is issued only when one more *visible* event exists, so a
        caller never learns from a token that hidden events follow.
        """
        decide = _decider(call)
        found: list[tuple[JournalRecord, Decision]] = []
        cursor = after
        while len(found) <= size:
            batch = events_after(session, filters, after=cursor, limit=max(size + 1, _SCAN))
            if not batch:
                break
            for record, decision in zip(batch, _visible(session, call, decide, batch), strict=True):
                if decision.allowed:
                    found.append((record, decision))
                    if len(found) > size:
                        break
            cursor = batch[-1].seq
        return found[:size], len(found) > size

    async def _list(
        self, call: CallContext, filters: EventFilter, bound: dict[str, Any], request: Any
    ) -> tuple[list[journal_pb2.AccessEvent], str]:
        size = page_size(request.page_size)
        bound = {"member": call.member_id, **bound}
        after = self.deps.page_tokens.read(request.page_token, bound) or 0
        if not isinstance(after, int) or after < 0:  # pragma: no cover - tokens are MACed
            raise InvalidArgumentError.for_field("page_token", "not a valid page token")
        page, more = await self.deps.db.run(lambda s: self._page(s, call, filters, after, size))
        call.records([f"journal/events/{r.event.event_id}" for r, _ in page], count=len(page))
        token = self.deps.page_tokens.issue(page[-1][0].seq, bound) if more else ""
        return [event_to_pb(r, d.view) for r, d in page], token

    async def ListAccessEvents(
        self, request: journal_pb2.ListAccessEventsRequest, context: Any
    ) -> journal_pb2.ListAccessEventsResponse:
        call = current_call()
        filters = list_filter_from_pb(request)
        events, token = await self._list(call, filters, {"filter": filters.digest()}, request)
        return journal_pb2.ListAccessEventsResponse(access_events=events, next_page_token=token)

    async def ListPersonAccesses(
        self, request: journal_pb2.ListPersonAccessesRequest, context: Any
    ) -> journal_pb2.ListPersonAccessesResponse:
        call = current_call()
        # 1. The first-level token, checked, then re-keyed under every live key version.
        parse_token1(request.beneficiary_token, field="beneficiary_token")
        pseudonyms = self.deps.keys.rekeyer.rekey_all_versions(request.beneficiary_token)
        since, until = time_range_from_pb(request)
        filters = EventFilter(pseudonyms=pseudonyms, since=since, until=until)
        person = hashlib.sha256(_PERSON_DOMAIN + pseudonyms[0].encode("ascii")).hexdigest()
        bound = {"person": person[:32], "range": [_iso(since), _iso(until)]}
        events, token = await self._list(call, filters, bound, request)
        # 2. The lookup is itself an access to the person's data (journaled, token-free).
        call.records(subjects=[pseudonyms[0]])
        return journal_pb2.ListPersonAccessesResponse(access_events=events, next_page_token=token)

    # -- checkpoint and proofs -------------------------------------------------------------------
    @staticmethod
    def _head(session: Session) -> StoredCheckpoint:
        head = latest_checkpoint(session)
        if head is None:
            raise FailedPreconditionError(
                "the journal has no signed checkpoint yet", reason="NO_CHECKPOINT"
            )
        return head

    async def GetCheckpoint(
        self, request: journal_pb2.GetCheckpointRequest, context: Any
    ) -> journal_pb2.Checkpoint:
        head = await self.deps.db.run(self._head)
        return checkpoint_to_pb(head)

    async def GetInclusionProof(
        self, request: journal_pb2.GetInclusionProofRequest, context: Any
    ) -> journal_pb2.InclusionProof:
        leaf, size = request.leaf_index, request.tree_size
        if size < 1:
            raise InvalidArgumentError.for_field("tree_size", "must be at least 1")
        if not 0 <= leaf < size:
            raise InvalidArgumentError.for_field("leaf_index", "must be in [0, tree_size)")

        def _proof(session: Session) -> list[bytes]:
            if size > self._head(session).size:
                raise InvalidArgumentError.for_field(
                    "tree_size", "must not exceed the latest checkpoint's tree size"
                )
            return inclusion_proof(session, leaf, size)

        hashes = await self.deps.db.run(_proof)
        return journal_pb2.InclusionProof(leaf_index=leaf, tree_size=size, hashes=hashes)

    async def GetConsistencyProof(
        self, request: journal_pb2.GetConsistencyProofRequest, context: Any
    ) -> journal_pb2.ConsistencyProof:
        first, second = request.first_tree_size, request.second_tree_size
        if first < 1:
            raise InvalidArgumentError.for_field("first_tree_size", "must be at least 1")
        if second < first:
            raise InvalidArgumentError.for_field(
                "second_tree_size", "must be at least first_tree_size"
            )

        def _proof(session: Session) -> list[bytes]:
            if second > self._head(session).size:
                raise InvalidArgumentError.for_field(
                    "second_tree_size", "must not exceed the latest checkpoint's tree size"
                )
            return consistency_proof(session, first, second)

        hashes = await self.deps.db.run(_proof)
        return journal_pb2.ConsistencyProof(
            first_tree_size=first, second_tree_size=second, hashes=hashes
        )

    # -- export ----------------------------------------------------------------------------------
    def _bundle(
        self, session: Session, call: CallContext, request: journal_pb2.ExportJournalRequest
    ) -> tuple[dict[str, Any], int]:
        head = self._head(session)
        earlier = None
        if request.HasField("consistency_from_tree_size"):
            old = request.consistency_from_tree_size
            if not 1 <= old <= head.size:
                raise InvalidArgumentError.for_field(
                    "consistency_from_tree_size", "must be in [1, latest checkpoint's tree size]"
                )
            kept = checkpoint_at(session, old)
            if kept is None:
                raise NotFoundError("no checkpoint was published at that tree size")
            earlier = kept.note
        since, until = time_range_from_pb(request)
        decide = _decider(call)
        shown = 0

        def disclose(records: Sequence[JournalRecord]) -> list[Disclosure]:
            nonlocal shown
            out: list[Disclosure] = []
            for d in _visible(session, call, decide, records):
                if not d.allowed:
                    out.append("withheld")
                    continue
                shown += 1
                out.append("personal" if "record_refs" in d.view else "event")
            return out

        bundle = export_bundle(
            session,
            self.vkey,
            filters=None
            if since is None and until is None
            else EventFilter(since=since, until=until),
            earlier_checkpoint=earlier,
            disclose=disclose,
        )
        return bundle, shown

    async def ExportJournal(
        self, request: journal_pb2.ExportJournalRequest, context: Any
    ) -> AsyncIterator[journal_pb2.ExportJournalResponse]:
        call = current_call()
        bundle, shown = await self.deps.db.run(lambda s: self._bundle(s, call, request))
        data = json.dumps(bundle, separators=(",", ":")).encode("utf-8")
        digest = hashlib.sha256(data).digest()
        call.records(count=shown)
        await call.journal_now(outcome="OK")  # committed before the first byte leaves
        for start in range(0, len(data), EXPORT_CHUNK_BYTES):
            chunk = data[start : start + EXPORT_CHUNK_BYTES]
            if start + EXPORT_CHUNK_BYTES >= len(data):
                yield journal_pb2.ExportJournalResponse(
                    chunk=chunk, sha256=digest, total_bytes=len(data)
                )
            else:
                yield journal_pb2.ExportJournalResponse(chunk=chunk)
