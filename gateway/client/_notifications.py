"""Following a member's notification feed: resume, acknowledge, reconnect.

Procedure of :func:`follow_notifications` (ADR 0005, "Notifications"):

1. load the resume cursor (the sequence of the last notification fully processed) from the
   caller's :class:`CursorStore`; without one, the gateway resumes at the first
   unacknowledged notification;
2. open ``StreamNotifications(after_sequence=cursor)``;
3. for each notification, in sequence order: skip it if its sequence is not above the cursor
   (a replay after a reconnect); run the handler; acknowledge it (a unary write with its own
   request id, retried with that id); save the cursor. A handler that raises stops the follow:
   the notification is neither acknowledged nor passed, and comes back next time;
4. when the stream breaks with a transient error (``UNAVAILABLE``: server restart, network)
   or simply ends, wait a jittered backoff and go back to 2 from the saved cursor; any other
   error (``PERMISSION_DENIED``, ``UNAUTHENTICATED``...) is raised;
5. stop when ``stop`` is set (between notifications, never inside a handler) or after
   ``max_notifications``.

Processing is therefore at-least-once: a crash between the handler and the acknowledgement
re-delivers the notification, so handlers should be idempotent (key on ``notification.name``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

import grpc

from gateway._proto.vigie.v1 import suspicions_pb2
from gateway.client._errors import ClientConfigError, ResourceExhaustedError, error_from_rpc
from gateway.client._retry import RetryEvent, RetryPolicy, is_transient

__all__ = [
    "CursorStore",
    "FileCursor",
    "MemoryCursor",
    "NotificationHandler",
    "follow_notifications",
]

NotificationHandler = Callable[[suspicions_pb2.Notification], "Awaitable[str | None] | str | None"]
"""Processes one notification; may return the member's own case reference for a SHARED one."""

Acknowledge = Callable[[suspicions_pb2.Notification, str], Awaitable[Any]]


class CursorStore(Protocol):
    """Where the sequence of the last fully processed notification is kept."""

    def load(self) -> int | None:
        """The saved sequence, or ``None`` when nothing was processed yet."""
        ...

    def save(self, sequence: int) -> None:
        """Durably record that ``sequence`` was processed and acknowledged."""
        ...


class MemoryCursor:
    """A cursor kept in memory (tests, or a caller that persists it itself)."""

    def __init__(self, sequence: int | None = None) -> None:
        self.sequence = sequence

    def load(self) -> int | None:
        return self.sequence

    def save(self, sequence: int) -> None:
        self.sequence = sequence


class FileCursor:
    """A cursor in a small JSON file, replaced atomically (write, fsync, rename).

    Format: ``{"after_sequence": <int>}``. A missing file means "nothing processed yet".
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> int | None:
        """The saved sequence.

        Raises:
            ClientConfigError: The file exists but is not a cursor file.
        """
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ClientConfigError(f"cursor file {self.path}: unreadable ({e})") from None
        value = data.get("after_sequence") if isinstance(data, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ClientConfigError(f"cursor file {self.path}: no after_sequence integer")
        return value

    def save(self, sequence: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cursor-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"after_sequence": sequence}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise


async def _next(call: Any, stop: asyncio.Event | None) -> Any:
    """The next message, ``grpc.aio.EOF`` at the end, or ``None`` when ``stop`` was set first."""
    read = asyncio.ensure_future(call.read())
    if stop is None:
        return await read
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({read, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if read.done():
        return read.result()
    call.cancel()
    read.cancel()
    with suppress(BaseException):
        await read
    return None


async def follow_notifications(
    stub: Any,
    handler: NotificationHandler,
    acknowledge: Acknowledge,
    *,
    purpose: int,
    cursor: CursorStore,
    policy: RetryPolicy,
    stop: asyncio.Event | None = None,
    max_notifications: int | None = None,
    max_reconnects: int | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> int:
    """Follow the caller's feed (module docstring, steps 1-5); returns how many were processed.

    Raises:
        VigieClientError: A non-transient error, or more than ``max_reconnects`` reconnects in
            a row without receiving anything.
        Exception: Whatever the handler raised (that notification is not acknowledged).
    """
    after = cursor.load()  # step 1
    processed, failures = 0, 0
    while not (stop is not None and stop.is_set()):
        request = suspicions_pb2.StreamNotificationsRequest(purpose=purpose)  # type: ignore[arg-type]
        if after is not None:
            request.after_sequence = after
        call = stub.StreamNotifications(request)  # step 2
        try:
            while True:
                message = await _next(call, stop)
                if message is None:
                    return processed  # step 5: stopped while waiting
                if message is grpc.aio.EOF:
                    break  # the server ended the stream: reconnect
                failures = 0
                if after is not None and message.sequence <= after:  # step 3
                    continue
                result = handler(message)
                if inspect.isawaitable(result):
                    result = await result
                await acknowledge(message, result or "")
                after = message.sequence
                cursor.save(after)
                processed += 1
                if max_notifications is not None and processed >= max_notifications:
                    return processed
                if stop is not None and stop.is_set():
                    return processed
            error = None
        except grpc.RpcError as e:  # step 4
            error = error_from_rpc(e)
            if not is_transient(error, idempotent=True):
                raise error from e
        finally:
            call.cancel()  # a no-op once the call has ended
        failures += 1
        if max_reconnects is not None and failures > max_reconnects:
            if error is not None:
                raise error
            return processed
        delay = policy.backoff(min(failures, 16))
        if isinstance(error, ResourceExhaustedError) and error.retry_after:
            delay = max(delay, error.retry_after)
        if on_retry is not None and error is not None:
            on_retry(RetryEvent("StreamNotifications", failures, error, delay, ""))
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return processed
