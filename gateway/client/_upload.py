"""Claims upload over the ``UploadClaims`` bidirectional stream, in bounded memory.

One upload is one logical operation with one request id (AIP-155). Steps of an attempt:

1. open the stream; a writer task reads the source lazily, converts each row to a
   ``ClaimLine`` (:func:`claim_line_from_mapping`), and writes batches (the first message also
   carries purpose, request id, side and mode). It never has more than ``max_in_flight`` lines
   written but not yet reported received by the gateway's progress messages, so memory stays
   bounded on both sides whatever the file size (HTTP/2's own windows grow with the
   bandwidth-delay product and would let megabytes sit in buffers);
2. meanwhile the progress messages are read and handed to the callback; the rejections they
   carry are mapped back to the source's line indexes (lines the SDK refused are not sent, so
   the server's indexes skip them);
3. the writer half-closes; the server answers its final summary (committed or rolled back).

A row the SDK cannot even convert is refused locally: in per-line mode it is reported and
skipped; in all-or-nothing mode the stream is cancelled before the half-close, so the gateway
commits nothing. A transient failure before the summary (``UNAVAILABLE``...) re-sends the whole
source with the same request id: lines are idempotent by ``member_reference`` and come back as
duplicates, so a retry stores nothing twice. One-shot iterators cannot be re-sent; pass a path,
a sequence or a zero-argument factory to have broken uploads retried.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import grpc

from gateway._proto.vigie.v1 import claims_pb2
from gateway.client._errors import (
    FieldViolation,
    InternalError,
    LocalValidationError,
    VigieClientError,
    error_from_rpc,
)
from gateway.client._lines import (
    FileFormat,
    UnreadableRow,
    claim_line_from_mapping,
    read_claim_rows,
)
from gateway.client._pseudonymise import Pseudonymiser
from gateway.client._retry import RetryEvent, RetryPolicy, retry_delay

__all__ = [
    "ClaimRow",
    "ClaimSource",
    "LineRejection",
    "UploadMode",
    "UploadProgress",
    "UploadResult",
    "Uploader",
]

ClaimRow = Mapping[str, Any] | claims_pb2.ClaimLine
ClaimSource = str | os.PathLike[str] | Iterable[ClaimRow] | Callable[[], Iterable[ClaimRow]]
UploadMode = Literal["per_line", "all_or_nothing"]

_MODES = {
    "per_line": claims_pb2.UPLOAD_MODE_PER_LINE,
    "all_or_nothing": claims_pb2.UPLOAD_MODE_ALL_OR_NOTHING,
}
_SIDES = {"AMO": claims_pb2.CLAIM_SIDE_AMO, "AMC": claims_pb2.CLAIM_SIDE_AMC}
_LINE_PATH = re.compile(r"^lines\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class LineRejection:
    """One refused line: its 0-based index in the source, its reference and what was wrong.

    ``local`` is true when the SDK refused it (it was never sent).
    """

    line_index: int
    member_reference: str
    field_violations: tuple[FieldViolation, ...]
    local: bool = False


@dataclass(frozen=True, slots=True)
class UploadProgress:
    """Counters of the current attempt, after one progress message (or a local refusal)."""

    attempt: int
    lines_sent: int
    lines_received: int
    lines_accepted: int
    lines_rejected: int
    lines_duplicate: int
    lines_refused_locally: int
    new_rejections: tuple[LineRejection, ...]
    final: bool


@dataclass(frozen=True, slots=True)
class UploadResult:
    """How an upload ended.

    ``lines_rejected`` counts the gateway's refusals and the SDK's local ones
    (``lines_refused_locally``, never sent); ``rejections``
    keeps the first ``max_rejections_kept`` of them (``rejections_truncated`` says if more).
    """

    request_id: str
    outcome: Literal["committed", "rolled_back"]
    lines_sent: int
    lines_received: int
    lines_accepted: int
    lines_rejected: int
    lines_duplicate: int
    lines_refused_locally: int
    rejections: tuple[LineRejection, ...]
    rejections_truncated: bool
    attempts: int

    @property
    def ok(self) -> bool:
        """Committed with no refused line."""
        return self.outcome == "committed" and self.lines_rejected == 0


@dataclass
class _Attempt:
    number: int
    sent: int = 0
    local_rejected: int = 0
    skipped: list[int] = field(default_factory=list)
    aborted_locally: bool = False
    last: claims_pb2.UploadClaimsResponse | None = None
    rejections: list[LineRejection] = field(default_factory=list)
    truncated: bool = False
    progressed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False

    @property
    def in_flight(self) -> int:
        """Lines written but not yet reported received by the gateway."""
        return self.sent - (self.last.lines_received if self.last is not None else 0)

    def end(self) -> None:
        """The call is over: release a writer waiting for room."""
        self.ended = True
        self.progressed.set()


def _rows(source: ClaimSource, fmt: FileFormat | None) -> tuple[Callable[[], Iterable[Any]], bool]:
    """A factory of fresh iterations of ``source`` and whether it can be re-sent."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return (lambda: read_claim_rows(path, fmt)), True
    if callable(source):
        return source, True
    if iter(source) is source:  # an iterator or generator: one pass only
        once = source
        return (lambda: once), False
    seq = source
    return (lambda: seq), True


def _reference(row: Any) -> str:
    if isinstance(row, claims_pb2.ClaimLine):
        return row.member_reference
    if isinstance(row, Mapping):
        ref = row.get("member_reference")
        return ref if isinstance(ref, str) else ""
    return ""


def _source_index(server_index: int, skipped: list[int]) -> int:
    """The source index of the ``server_index``-th line sent (lines in ``skipped`` were not)."""
    i = server_index
    while True:
        n = server_index + bisect_right(skipped, i)
        if n == i:
            return i
        i = n


def _peeked(rows: Iterator[Any]) -> Iterator[Any]:
    """Read the first row now (so a missing file or a bad header raises here), then the rest."""
    try:
        first = next(rows)
    except StopIteration:
        return iter(())
    return itertools.chain((first,), rows)


class Uploader:
    """Runs one upload (all attempts) for :meth:`VigieClient.upload_claims`."""

    def __init__(
        self,
        stub: Any,
        *,
        request_id: str,
        purpose: int,
        side: str,
        mode: UploadMode,
        pseudonymiser: Pseudonymiser | None,
        batch_size: int,
        max_batch_bytes: int,
        max_rejections_kept: int,
        max_in_flight: int | None,
        policy: RetryPolicy,
        on_progress: Callable[[UploadProgress], Any] | None,
        on_retry: Callable[[RetryEvent], None] | None,
        timeout: float | None,
    ) -> None:
        if side not in _SIDES:
            raise LocalValidationError(
                "invalid side: must be AMO or AMC (not sent)",
                field_violations=[FieldViolation("side", "must be AMO or AMC")],
            )
        if mode not in _MODES:
            raise LocalValidationError(
                "invalid mode: must be per_line or all_or_nothing (not sent)",
                field_violations=[FieldViolation("mode", "must be per_line or all_or_nothing")],
            )
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.stub, self.request_id, self.purpose = stub, request_id, purpose
        self.side, self.mode, self.pseudonymiser = side, mode, pseudonymiser
        self.batch_size, self.max_batch_bytes = batch_size, max_batch_bytes
        self.max_kept, self.policy = max_rejections_kept, policy
        # Room for at least two batches, so the gateway always has the next one at hand.
        self.max_in_flight = None if max_in_flight is None else max(max_in_flight, 2 * batch_size)
        self.on_progress, self.on_retry, self.timeout = on_progress, on_retry, timeout

    # -- one attempt ---------------------------------------------------------------------------
    def _header(self, lines: list[claims_pb2.ClaimLine], first: bool) -> Any:
        if not first:
            return claims_pb2.UploadClaimsRequest(lines=lines)
        return claims_pb2.UploadClaimsRequest(
            purpose=self.purpose,  # type: ignore[arg-type]
            request_id=self.request_id,
            side=_SIDES[self.side],
            mode=_MODES[self.mode],
            lines=lines,
        )

    def _keep(self, state: _Attempt, rejections: Iterable[LineRejection]) -> None:
        for r in rejections:
            if len(state.rejections) < self.max_kept:
                state.rejections.append(r)
            else:
                state.truncated = True

    async def _report(self, state: _Attempt, new: tuple[LineRejection, ...], final: bool) -> None:
        if self.on_progress is None:
            return
        last = state.last or claims_pb2.UploadClaimsResponse()
        progress = UploadProgress(
            attempt=state.number,
            lines_sent=state.sent,
            lines_received=last.lines_received,
            lines_accepted=last.lines_accepted,
            lines_rejected=last.lines_rejected + state.local_rejected,
            lines_duplicate=last.lines_duplicate,
            lines_refused_locally=state.local_rejected,
            new_rejections=new,
            final=final,
        )
        result = self.on_progress(progress)
        if inspect.isawaitable(result):
            await result

    def _convert(self, row: Any, index: int) -> claims_pb2.ClaimLine:
        if isinstance(row, claims_pb2.ClaimLine):
            return row
        if isinstance(row, UnreadableRow):
            raise LocalValidationError(
                f"invalid lines[{index}]: {row.description} (not sent)",
                field_violations=[FieldViolation(f"lines[{index}]", row.description)],
            )
        if not isinstance(row, Mapping):
            raise LocalValidationError(
                f"invalid lines[{index}]: must be a mapping or a ClaimLine (not sent)",
                field_violations=[FieldViolation(f"lines[{index}]", "must be a mapping")],
            )
        return claim_line_from_mapping(row, index=index, pseudonymiser=self.pseudonymiser)

    async def _room(self, state: _Attempt) -> bool:
        """Wait until fewer than ``max_in_flight`` lines await the gateway; false if it ended.

        The window is the SDK's own flow control, on top of HTTP/2's (whose windows grow with
        the bandwidth-delay product and would let a whole file sit in buffers): the gateway
        sends a progress message per chunk it processed (the contract of UploadClaims), each
        one opening room again.
        """
        while self.max_in_flight is not None and state.in_flight >= self.max_in_flight:
            if state.ended:
                return False
            state.progressed.clear()
            await state.progressed.wait()
        return not state.ended

    async def _write_all(self, call: Any, rows: Iterator[Any], state: _Attempt) -> None:
        first, batch, size = True, [], 0
        try:
            for index, row in enumerate(rows):
                try:
                    line = self._convert(row, index)
                except LocalValidationError as e:
                    rejection = LineRejection(index, _reference(row), e.field_violations, True)
                    state.local_rejected += 1
                    self._keep(state, [rejection])
                    await self._report(state, (rejection,), False)
                    if self.mode == "all_or_nothing":
                        state.aborted_locally = True
                        call.cancel()  # before the half-close: the gateway commits nothing
                        return
                    state.skipped.append(index)
                    continue
                batch.append(line)
                size += line.ByteSize() + 4
                if len(batch) >= self.batch_size or size >= self.max_batch_bytes:
                    if not await self._room(state):
                        return
                    await call.write(self._header(batch, first))
                    state.sent += len(batch)
                    first, batch, size = False, [], 0
            if batch or first:
                await call.write(self._header(batch, first))
                state.sent += len(batch)
            await call.done_writing()
        except (grpc.RpcError, asyncio.InvalidStateError):
            return  # the call ended; the reader reports its status
        except BaseException:
            call.cancel()
            raise

    def _server_rejections(
        self, resp: claims_pb2.UploadClaimsResponse, state: _Attempt
    ) -> tuple[LineRejection, ...]:
        out = []
        for r in resp.rejections:
            index = _source_index(int(r.line_index), state.skipped)
            violations = tuple(
                FieldViolation(_LINE_PATH.sub(f"lines[{index}]", v.field), v.description)
                for v in r.field_violations
            )
            out.append(LineRejection(index, r.member_reference, violations, False))
        return tuple(out)

    @staticmethod
    def _raise_writer_error(writer: asyncio.Task[None]) -> None:
        if not writer.cancelled() and writer.exception() is not None:
            raise writer.exception() from None  # type: ignore[misc]

    async def _attempt(self, rows: Iterator[Any], number: int) -> _Attempt:
        state = _Attempt(number=number)
        call = self.stub.UploadClaims(timeout=self.timeout)
        writer = asyncio.create_task(self._write_all(call, rows, state))
        try:
            try:
                async for resp in call:
                    state.last = resp
                    state.progressed.set()
                    new = self._server_rejections(resp, state)
                    self._keep(state, new)
                    await self._report(state, new, resp.final)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # our caller cancelled us
                # The writer cancelled the call: a local refusal (all-or-nothing) or a source error.
                state.end()
                await asyncio.wait([writer])
                self._raise_writer_error(writer)
                if state.aborted_locally:
                    return state
                raise InternalError("UploadClaims: the call was cancelled") from None
            except grpc.RpcError:
                state.end()
                await asyncio.wait([writer])
                self._raise_writer_error(writer)
                raise
            state.end()
            await writer
            return state
        finally:
            state.end()
            if not writer.done():
                writer.cancel()
                with suppress(BaseException):
                    await writer
                call.cancel()

    # -- all attempts --------------------------------------------------------------------------
    async def run(self, source: ClaimSource, fmt: FileFormat | None) -> UploadResult:
        """Upload ``source``, retrying transient failures by re-sending it.

        Raises:
            VigieClientError: The typed error of the last attempt (e.g. PERMISSION_DENIED).
            ClientConfigError: The file is missing, unreadable or has unknown columns.
        """
        factory, resendable = _rows(source, fmt)
        number = 0
        while True:
            number += 1
            rows = _peeked(iter(factory()))  # file errors surface before the stream opens
            try:
                state = await self._attempt(rows, number)
                break
            except grpc.RpcError as e:
                error: VigieClientError = error_from_rpc(e, request_id=self.request_id)
                cause = e
            delay = retry_delay(error, number, self.policy, idempotent=True, deadline_passed=False)
            if delay is None or not resendable:
                raise error from cause
            if self.on_retry is not None:
                self.on_retry(RetryEvent("UploadClaims", number, error, delay, self.request_id))
            await asyncio.sleep(delay)
        return self._result(state)

    def _result(self, state: _Attempt) -> UploadResult:
        last = state.last
        if state.aborted_locally:
            return UploadResult(
                request_id=self.request_id,
                outcome="rolled_back",
                lines_sent=state.sent,
                lines_received=last.lines_received if last else 0,
                lines_accepted=0,
                lines_rejected=(last.lines_rejected if last else 0) + state.local_rejected,
                lines_duplicate=0,
                lines_refused_locally=state.local_rejected,
                rejections=tuple(state.rejections),
                rejections_truncated=state.truncated,
                attempts=state.number,
            )
        if last is None or not last.final:
            raise InternalError(
                "UploadClaims: the stream ended without its final summary",
                request_id=self.request_id,
            )
        committed = last.outcome == claims_pb2.UPLOAD_OUTCOME_COMMITTED
        return UploadResult(
            request_id=self.request_id,
            outcome="committed" if committed else "rolled_back",
            lines_sent=state.sent,
            lines_received=last.lines_received,
            lines_accepted=last.lines_accepted,
            lines_rejected=last.lines_rejected + state.local_rejected,
            lines_duplicate=last.lines_duplicate,
            lines_refused_locally=state.local_rejected,
            rejections=tuple(state.rejections),
            rejections_truncated=state.truncated,
            attempts=state.number,
        )
