"""Fail closed on the journal: the sequencer as a server job, and the gate every call passes.

Issue 3: "if events cannot be written or integrated, the gateway stops serving data (like
X-Road when its time-stamps go stale) and says so in health checks". The :class:`JournalGuard`
owns the sequencer's :class:`~gateway.journal.sequencer.SequencerHealth` and::

    1. primes: one integration round before the server takes calls, so that a healthy
       journal serves from the first call and a broken one never does;
    2. runs the sequencer (:func:`~gateway.journal.sequencer.run_sequencer`) every
       ``interval`` seconds; a failed round, integration lagging beyond ``lag_limit`` or no
       round for ``stale_after`` (a dead or hung sequencer) makes the journal unhealthy;
    3. answers :meth:`JournalGuard.refusal` for every call (the pipeline refuses data-serving
       calls with UNAVAILABLE, reason named, while it returns a reason);
    4. watches the status and tells its listeners (the gRPC health service: NOT_SERVING /
       SERVING) whenever it changes, recovery included.

No gRPC here: listeners are plain async callables.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.journal._errors import JournalError
from gateway.journal.sequencer import (
    DEFAULT_BATCH,
    DEFAULT_GRACE,
    DEFAULT_LAG_LIMIT,
    SequencerDb,
    SequencerHealth,
    catch_up,
    run_sequencer,
)

__all__ = ["JournalGuard", "Listener"]

log = structlog.get_logger("vigie.journal")

Listener = Callable[[bool, str], Awaitable[None]]
"""Called with ``(serving, reason)`` whenever the journal's status changes."""

_LIMIT_ROUNDS: Final = 6  # lag and staleness limits: at least this many intervals


class JournalGuard:
    """The journal's health for the whole gateway (one per server process)."""

    def __init__(
        self,
        db: SequencerDb,
        signing_key: Ed25519PrivateKey,
        origin: str,
        *,
        interval: float,
        lag_limit: timedelta | None = None,
        stale_after: timedelta | None = None,
        batch_size: int = DEFAULT_BATCH,
        grace: timedelta = DEFAULT_GRACE,
    ) -> None:
        floor = max(DEFAULT_LAG_LIMIT, timedelta(seconds=interval * _LIMIT_ROUNDS))
        self._db, self._key, self._origin = db, signing_key, origin
        self.interval = interval
        self.lag_limit = lag_limit or floor
        self.stale_after = stale_after or floor
        self._batch, self._grace = batch_size, grace
        self.health = SequencerHealth()
        self.listeners: list[Listener] = []
        self._last: tuple[bool, str] | None = None
        self._stop = asyncio.Event()

    def __repr__(self) -> str:  # never the key
        return f"JournalGuard(origin={self._origin!r}, interval={self.interval})"

    # -- 3. the gate ---------------------------------------------------------------------------
    def status(self) -> tuple[bool, str]:
        """``(serving, reason)`` now (a stalled sequencer counts as unhealthy)."""
        return self.health.status(stale_after=self.stale_after)

    def refusal(self) -> str | None:
        """None while the journal is healthy, else why data-serving calls are refused."""
        healthy, reason = self.status()
        return None if healthy else reason

    # -- 1. prime --------------------------------------------------------------------------------
    async def prime(self) -> None:
        """One integration round now; its outcome is the status the server starts with."""
        try:
            size, lag = await self._db.call(
                catch_up, self._db, self._key, self._origin, self._batch, self._grace
            )
        except Exception as e:  # any failure: start failed closed (the job keeps retrying)
            self._failed(e)
            self.health.mark(False, f"journal integration failed: {type(e).__name__}")
            return
        self.health.integrated_size, self.health.lag = size, lag
        if lag > self.lag_limit:
            self.health.mark(False, f"journal integration behind by {int(lag.total_seconds())} s")
        else:
            self.health.mark(True, "journal integrated")

    # -- 2. the sequencer job, 4. the watcher job -----------------------------------------------
    async def run_sequencer(self) -> None:
        """Server job: integrate every ``interval`` until cancelled."""
        await run_sequencer(
            self._db,
            self._key,
            self._origin,
            interval=self.interval,
            stop_event=self._stop,
            on_failure=self._failed,
            health=self.health,
            lag_limit=self.lag_limit,
            batch_size=self._batch,
            grace=self._grace,
        )

    async def watch(self) -> None:
        """Server job: tell the listeners of every status change (checked each interval)."""
        while not self._stop.is_set():
            await self.notify()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)

    async def notify(self) -> None:
        """Tell the listeners the current status if it changed since the last time."""
        now = self.status()
        if now == self._last:
            return
        if self._last is not None and now[0] != self._last[0]:
            event = "journal_recovered" if now[0] else "journal_failing_closed"
            log.warning(event, reason=now[1])
        self._last = now
        for listener in self.listeners:
            await listener(*now)

    def stop(self) -> None:
        """Let both jobs return at their next check (the gateway also cancels them)."""
        self._stop.set()

    @staticmethod
    def _failed(error: BaseException) -> None:
        # Our own journal errors name sizes and checks, never data; others: their type only.
        detail: dict[str, Any] = {"error": type(error).__name__}
        if isinstance(error, JournalError):
            detail["detail"] = error.message
        log.error("journal_integration_failed", **detail)
