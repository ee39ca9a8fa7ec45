"""ClaimService and JournalService methods (upload, pre-payment check, alerts, journal)."""

# ruff: noqa: ASYNC109 - `timeout` is the gRPC deadline sent to the server, not a local timer

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gateway._proto.vigie.v1 import claims_pb2, journal_pb2
from gateway.client import _vocab
from gateway.client._api_suspicions import MembersAndSuspicionsAPI, Purpose
from gateway.client._base import UNSET, Timeout, follow_pages, new_request_id
from gateway.client._errors import InternalError
from gateway.client._lines import FileFormat, claim_line_from_mapping
from gateway.client._retry import call_with_retries
from gateway.client._upload import (
    ClaimSource,
    Uploader,
    UploadMode,
    UploadProgress,
    UploadResult,
)

__all__ = ["ExportedJournal", "VigieClient"]


@dataclass(frozen=True, slots=True)
class ExportedJournal:
    """An export bundle written to ``path`` (or kept in ``data``), checked against its digest."""

    total_bytes: int
    sha256: bytes
    path: Path | None = None
    data: bytes | None = None


class VigieClient(MembersAndSuspicionsAPI):
    """Async client of the Vigie gateway for a member's systems.

    Every method returns the API's protobuf messages (or a small result dataclass where the
    SDK computes something: :class:`UploadResult`, :class:`ExportedJournal`) and raises one of
    the :class:`~gateway.client.VigieClientError` classes. Writes carry a request id generated
    once per call (or given) and reused by every retry.

    Example::

        async with VigieClient(config, pseudonymiser=Pseudonymiser.from_key_file(key)) as c:
            me = await c.get_self()
    """

    # -- ClaimService ------------------------------------------------------------------------
    async def upload_claims(
        self,
        source: ClaimSource,
        *,
        side: str,
        mode: UploadMode = "per_line",
        purpose: Purpose = "fraud_detection",
        file_format: FileFormat | None = None,
        request_id: str | None = None,
        on_progress: Callable[[UploadProgress], Any] | None = None,
        batch_size: int = 500,
        max_in_flight: int | None = 4000,
        max_rejections_kept: int = 1000,
        timeout: float | None = None,
    ) -> UploadResult:
        """Upload one side of claim lines from a CSV/JSONL file or an iterable of rows.

        Args:
            source: A path (``.csv``/``.jsonl``), a sequence of rows (mappings of the shared
                claim record, or ``ClaimLine`` messages), or a zero-argument factory of an
                iterable. A one-shot iterator works too, but a broken upload of one cannot be
                re-sent.
            side: ``"AMO"`` or ``"AMC"`` (must match the certificate's kind).
            mode: ``"per_line"`` (valid lines stored, refused ones reported) or
                ``"all_or_nothing"``.
            request_id: The upload's id; generated if not given, reused by re-sends.
            on_progress: Sync or async callback fed by each progress message.
            batch_size: Lines per message (also capped at a quarter of the message limit).
            max_in_flight: Most lines written and not yet reported received by the gateway
                (the SDK's flow control: bounded memory on both sides); ``None`` leaves it to
                HTTP/2 alone. Raised to two batches if smaller.
            max_rejections_kept: Rejections kept in the result (all reach ``on_progress``).
            timeout: Deadline of one attempt in seconds (none by default).

        Returns:
            The summary (``result.ok`` is false when any line was refused).

        Raises:
            LocalValidationError: Bad side or mode (nothing sent).
            ClientConfigError: Missing or unreadable file, unknown columns.
            VigieClientError: The gateway's typed error (after retries for transient ones).
        """
        uploader = Uploader(
            self._claims,
            request_id=request_id or new_request_id(),
            purpose=_vocab.purpose(purpose),
            side=side,
            mode=mode,
            pseudonymiser=self.pseudonymiser,
            batch_size=batch_size,
            max_batch_bytes=self.config.max_message_bytes // 4,
            max_rejections_kept=max_rejections_kept,
            max_in_flight=max_in_flight,
            policy=self.config.retry,
            on_progress=on_progress,
            on_retry=self._on_retry,
            timeout=timeout,
        )
        return await uploader.run(source, file_format)

    async def check_claim(
        self,
        claim_line: claims_pb2.ClaimLine | Mapping[str, Any],
        *,
        nir: str | None = None,
        birth_date: dt.date | str | None = None,
        rank: int | None = None,
        purpose: Purpose = "fraud_detection",
        timeout: Timeout = UNSET,
    ) -> claims_pb2.CheckClaimResponse:
        """Score one claim line before paying it (not stored).

        Args:
            claim_line: The line, as a message or a row of the shared claim record.
            nir: The beneficiary's NIR, pseudonymised locally into ``beneficiary_token``.

        Raises:
            LocalValidationError: Invalid row or NIR (nothing sent).
            VigieClientError: The gateway's typed error.
        """
        if isinstance(claim_line, claims_pb2.ClaimLine):
            line = claims_pb2.ClaimLine()
            line.CopyFrom(claim_line)
        else:
            line = claim_line_from_mapping(claim_line, pseudonymiser=self.pseudonymiser)
        if nir is not None:
            self._pseudo().fill_claim_line(line, nir, birth_date=birth_date, rank=rank)
        request = claims_pb2.CheckClaimRequest(purpose=_vocab.purpose(purpose), claim_line=line)
        return await self._unary("CheckClaim", self._claims.CheckClaim, request, timeout=timeout)

    async def list_alerts(
        self,
        *,
        purpose: Purpose = "fraud_detection",
        sector: str | int | None = None,
        minimum_alert_level: str | int | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: Timeout = UNSET,
    ) -> claims_pb2.ListAlertsResponse:
        """One page of the alerts raised on the caller's own claims, newest first.

        Raises:
            VigieClientError: The typed error.
        """
        request = claims_pb2.ListAlertsRequest(
            purpose=_vocab.purpose(purpose),
            sector=_vocab.sector(sector),
            minimum_alert_level=_vocab.alert_level(minimum_alert_level),
            page_size=page_size,
            page_token=page_token,
        )
        window = _vocab.interval(created_after, created_before, "create_time_range")
        if window is not None:
            request.create_time_range.CopyFrom(window)
        return await self._unary("ListAlerts", self._claims.ListAlerts, request, timeout=timeout)

    async def iter_alerts(self, **filters: Any) -> AsyncIterator[claims_pb2.Alert]:
        """Every alert, following page tokens (filters of :meth:`list_alerts`)."""
        async for item in follow_pages(self.list_alerts, "alerts", **filters):
            yield item

    async def get_alert(
        self, name: str, *, purpose: Purpose = "fraud_detection", timeout: Timeout = UNSET
    ) -> claims_pb2.Alert:
        """One alert (NotFoundError if the caller may not see it).

        Raises:
            VigieClientError: The typed error.
        """
        request = claims_pb2.GetAlertRequest(purpose=_vocab.purpose(purpose), name=name)
        return await self._unary("GetAlert", self._claims.GetAlert, request, timeout=timeout)

    # -- JournalService ----------------------------------------------------------------------
    async def list_access_events(
        self,
        *,
        purpose: Purpose = "audit",
        member: str = "",
        principal: str = "",
        method: str = "",
        event_purpose: Purpose | None = None,
        decision: str | None = None,
        rule_id: str = "",
        after: dt.datetime | None = None,
        before: dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: Timeout = UNSET,
    ) -> journal_pb2.ListAccessEventsResponse:
        """One page of journal events, oldest first (compliance officers).

        Args:
            decision: ``"allow"``, ``"deny"`` or ``None`` for both.

        Raises:
            VigieClientError: The typed error.
        """
        request = journal_pb2.ListAccessEventsRequest(
            purpose=_vocab.purpose(purpose),
            member=member,
            principal=principal,
            method=method,
            rule_id=rule_id,
            page_size=page_size,
            page_token=page_token,
        )
        if event_purpose is not None:
            request.event_purpose = _vocab.purpose(event_purpose)
        if decision is not None:
            request.decision = _vocab.access_decision(decision)
        window = _vocab.interval(after, before, "event_time_range")
        if window is not None:
            request.event_time_range.CopyFrom(window)
        return await self._unary(
            "ListAccessEvents", self._journal.ListAccessEvents, request, timeout=timeout
        )

    async def iter_access_events(self, **filters: Any) -> AsyncIterator[journal_pb2.AccessEvent]:
        """Every visible access event, following page tokens (filters of
        :meth:`list_access_events`)."""
        async for item in follow_pages(self.list_access_events, "access_events", **filters):
            yield item

    async def list_person_accesses(
        self,
        nir: str | None = None,
        *,
        beneficiary_token: str = "",
        birth_date: dt.date | str | None = None,
        rank: int | None = None,
        after: dt.datetime | None = None,
        before: dt.datetime | None = None,
        purpose: Purpose = "data_subject_request",
        page_size: int = 0,
        page_token: str = "",
        timeout: Timeout = UNSET,
    ) -> journal_pb2.ListPersonAccessesResponse:
        """ "Who looked at this person's data?": the NIR is pseudonymised locally first.

        Raises:
            LocalValidationError: Invalid NIR (nothing sent).
            VigieClientError: The typed error.
        """
        token = beneficiary_token
        if nir is not None:
            token = self._pseudo().token(nir, birth_date=birth_date, rank=rank)
        request = journal_pb2.ListPersonAccessesRequest(
            purpose=_vocab.purpose(purpose),
            beneficiary_token=token,
            page_size=page_size,
            page_token=page_token,
        )
        window = _vocab.interval(after, before, "event_time_range")
        if window is not None:
            request.event_time_range.CopyFrom(window)
        return await self._unary(
            "ListPersonAccesses", self._journal.ListPersonAccesses, request, timeout=timeout
        )

    async def get_checkpoint(
        self, *, purpose: Purpose = "audit", timeout: Timeout = UNSET
    ) -> journal_pb2.Checkpoint:
        """The latest signed checkpoint (verify ``signed_note``, not the other fields).

        Raises:
            VigieClientError: The typed error.
        """
        request = journal_pb2.GetCheckpointRequest(purpose=_vocab.purpose(purpose))
        return await self._unary(
            "GetCheckpoint", self._journal.GetCheckpoint, request, timeout=timeout
        )

    async def get_inclusion_proof(
        self,
        leaf_index: int,
        tree_size: int,
        *,
        purpose: Purpose = "audit",
        timeout: Timeout = UNSET,
    ) -> journal_pb2.InclusionProof:
        """RFC 9162 §2.1.3 inclusion proof of one leaf.

        Raises:
            VigieClientError: The typed error.
        """
        request = journal_pb2.GetInclusionProofRequest(
            purpose=_vocab.purpose(purpose), leaf_index=leaf_index, tree_size=tree_size
        )
        return await self._unary(
            "GetInclusionProof", self._journal.GetInclusionProof, request, timeout=timeout
        )

    async def get_consistency_proof(
        self,
        first_tree_size: int,
        second_tree_size: int,
        *,
        purpose: Purpose = "audit",
        timeout: Timeout = UNSET,
    ) -> journal_pb2.ConsistencyProof:
        """RFC 9162 §2.1.4 consistency proof between two tree sizes.

        Raises:
            VigieClientError: The typed error.
        """
        request = journal_pb2.GetConsistencyProofRequest(
            purpose=_vocab.purpose(purpose),
            first_tree_size=first_tree_size,
            second_tree_size=second_tree_size,
        )
        return await self._unary(
            "GetConsistencyProof", self._journal.GetConsistencyProof, request, timeout=timeout
        )

    async def export_journal(
        self,
        destination: str | os.PathLike[str] | None = None,
        *,
        after: dt.datetime | None = None,
        before: dt.datetime | None = None,
        consistency_from_tree_size: int | None = None,
        purpose: Purpose = "audit",
        timeout: Timeout = UNSET,
    ) -> ExportedJournal:
        """Download an export bundle to ``destination`` (or into memory), checking its SHA-256.

        The bytes go to ``<destination>.partial``, renamed once complete and checked; a broken
        download is restarted from the beginning (reads are idempotent).

        Raises:
            InternalError: The bytes received do not match the announced digest or size.
            VigieClientError: The typed error.
        """
        request = journal_pb2.ExportJournalRequest(purpose=_vocab.purpose(purpose))
        window = _vocab.interval(after, before, "event_time_range")
        if window is not None:
            request.event_time_range.CopyFrom(window)
        if consistency_from_tree_size is not None:
            request.consistency_from_tree_size = consistency_from_tree_size
        path = Path(destination) if destination is not None else None

        partial = path.with_name(path.name + ".partial") if path is not None else None

        async def attempt(per_attempt: float | None) -> ExportedJournal:
            digest, total, chunks = hashlib.sha256(), 0, []
            out: IO[bytes] | None = partial.open("wb") if partial is not None else None
            try:
                final = None
                async for message in self._journal.ExportJournal(request, timeout=per_attempt):
                    digest.update(message.chunk)
                    total += len(message.chunk)
                    if out is not None:
                        out.write(message.chunk)
                    else:
                        chunks.append(message.chunk)
                    if message.sha256:
                        final = message
            finally:
                if out is not None:
                    out.close()
            if final is None or final.sha256 != digest.digest() or final.total_bytes != total:
                raise InternalError("ExportJournal: the bundle does not match its digest")
            if partial is not None and path is not None:
                partial.replace(path)  # only a complete, checked bundle takes the name
            return ExportedJournal(
                total, digest.digest(), path, None if path is not None else b"".join(chunks)
            )

        return await call_with_retries(
            attempt,
            method="ExportJournal",
            policy=self.config.retry,
            timeout=self._timeout(timeout),
            attempt_timeout=self.config.attempt_timeout,
            on_retry=self._on_retry,
        )
