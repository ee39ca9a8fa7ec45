"""The journal guard and the sequencer's health rules, without a server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from journal_store_helpers import ORIGIN, SIGNING_KEY, write_events

from gateway.errors import UnavailableError
from gateway.journal.guard import JournalGuard
from gateway.journal.sequencer import SequencerHealth, run_sequencer
from gateway.store import Database

LATE = timedelta(minutes=5)
ON_TIME = timedelta(0)


class _ScriptedDb:
    """Rounds return scripted ``(size, lag)`` outcomes (or raise); stops after the script."""

    def __init__(self, outcomes: list[Any], health: SequencerHealth, stop: asyncio.Event):
        self.outcomes, self.health, self.stop = list(outcomes), health, stop
        self.seen: list[tuple[bool, str]] = []

    async def call(self, fn: Any, *args: Any) -> Any:
        if self.health.last_round is not None:
            self.seen.append((self.health.healthy, self.health.reason))
        outcome = self.outcomes.pop(0)
        if not self.outcomes:
            self.stop.set()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @contextmanager
    def transaction(self) -> Iterator[Any]:  # pragma: no cover - never opened by the script
        raise AssertionError("not used")
        yield


async def _run(outcomes: list[Any]) -> list[tuple[bool, str]]:
    health, stop = SequencerHealth(), asyncio.Event()
    db = _ScriptedDb(outcomes, health, stop)
    await run_sequencer(
        db, SIGNING_KEY, ORIGIN, interval=0, stop_event=stop, health=health,
        lag_limit=timedelta(seconds=30),
    )  # fmt: skip
    return [*db.seen, (health.healthy, health.reason)]


async def test_a_single_late_committer_does_not_fail_the_gateway_closed() -> None:
    seen = await _run([(1, ON_TIME), (1, LATE), (2, ON_TIME)])
    assert [healthy for healthy, _ in seen] == [True, True, True]


async def test_lag_beyond_the_limit_for_two_rounds_fails_closed_then_recovers() -> None:
    seen = await _run([(1, ON_TIME), (1, LATE), (1, LATE), (1, LATE), (3, ON_TIME)])
    assert [healthy for healthy, _ in seen] == [True, True, False, False, True]
    assert "behind by 300 s" in seen[2][1]


async def test_lag_on_the_first_round_fails_closed_at_once() -> None:
    seen = await _run([(1, LATE), (1, ON_TIME)])
    assert [healthy for healthy, _ in seen] == [False, True]


async def test_a_failed_round_fails_closed_and_names_the_error() -> None:
    seen = await _run([(1, ON_TIME), UnavailableError("down"), (1, ON_TIME)])
    assert seen == [
        (True, "journal integrated"),
        (False, "journal integration failed: UnavailableError"),
        (True, "journal integrated"),
    ]


def test_a_stalled_sequencer_closes_the_gate() -> None:
    guard = JournalGuard(None, SIGNING_KEY, ORIGIN, interval=5.0)  # type: ignore[arg-type]
    assert guard.refusal() == "journal sequencer not started"
    guard.health.mark(True, "journal integrated")
    assert guard.refusal() is None
    guard.health.last_round = datetime.now(UTC) - guard.stale_after - timedelta(seconds=1)
    assert guard.refusal() == "journal sequencer stalled (no round recently)"
    assert guard.stale_after == guard.lag_limit == timedelta(seconds=30)
    assert "key" not in repr(guard).lower()


async def test_listeners_hear_each_change_of_status_once() -> None:
    guard = JournalGuard(None, SIGNING_KEY, ORIGIN, interval=5.0)  # type: ignore[arg-type]
    heard: list[tuple[bool, str]] = []

    async def listener(serving: bool, reason: str) -> None:
        heard.append((serving, reason))

    guard.listeners.append(listener)
    await guard.notify()
    await guard.notify()
    guard.health.mark(True, "journal integrated")
    await guard.notify()
    await guard.notify()
    guard.health.mark(False, "journal integration failed: X")
    await guard.notify()
    assert heard == [
        (False, "journal sequencer not started"),
        (True, "journal integrated"),
        (False, "journal integration failed: X"),
    ]


async def test_prime_integrates_before_serving(database: Database) -> None:
    write_events(database, 3)  # written in the past (beyond the grace period)
    guard = JournalGuard(database, SIGNING_KEY, ORIGIN, interval=1.0)
    await guard.prime()
    assert guard.refusal() is None and guard.health.integrated_size == 3


async def test_prime_on_a_broken_journal_starts_failed_closed(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = JournalGuard(database, SIGNING_KEY, ORIGIN, interval=1.0)

    def broken(*_a: object, **_k: object) -> None:
        raise UnavailableError("the store is unavailable")

    monkeypatch.setattr("gateway.journal.sequencer.integrate", broken)
    await guard.prime()
    assert guard.refusal() == "journal integration failed: UnavailableError"
