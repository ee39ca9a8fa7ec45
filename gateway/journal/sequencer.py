"""The journal's single logical sequencer: events into the Merkle tree, then a signed checkpoint.

One integration round is one database transaction (crash safety: all or nothing)::

    1. lock the sequencer's state row (FOR UPDATE SKIP LOCKED on PostgreSQL, so gateway
       replicas never integrate concurrently and a busy replica simply skips the round;
       SQLite's BEGIN IMMEDIATE serialises writers);
    2. recover the integrated size from the database and check it against the latest
       checkpoint (the restart point: nothing lost, nothing integrated twice);
    3. take the next committed events without a leaf index, in ``seq`` order, older than a
       grace period (PostgreSQL sequence values can commit out of order; a seq taken by a
       rolled-back transaction is a gap that is simply skipped: leaf indices are contiguous,
       sequence numbers need not be);
    4. append their leaves (RFC 9162 §2.1.1 leaf hash of the canonical entry) and write the new
       perfect-subtree nodes;
    5. set each event's leaf index (the only update the journal table's triggers allow);
    6. prove the new tree consistent with the previous checkpoint (RFC 9162 §2.1.4.2) and
       refuse to sign otherwise: the log never signs two inconsistent checkpoints;
    7. sign the C2SP checkpoint, store it and the new size.

A late committer (a transaction slower than the grace period) is integrated by a later round,
after events with higher sequence numbers: it is never lost, only placed later in the tree.

:func:`run_sequencer` repeats rounds on an interval as a server background task and keeps a
:class:`SequencerHealth` the gateway reads to fail closed (issue 3: "if events cannot be written
or integrated, the gateway stops serving data").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, TypeVar, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import CursorResult, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from gateway.journal._canonical import leaf_entry
from gateway.journal._checkpoint import sign_checkpoint
from gateway.journal._errors import JournalIntegrityError, JournalVerificationError
from gateway.journal._merkle import leaf_hash, verify_consistency
from gateway.journal._sql import (
    JournalCheckpointRow,
    JournalStateRow,
    SqlNodeStore,
    StoredCheckpoint,
    integrated_size,
    journal_event_of,
    latest_checkpoint,
)
from gateway.journal._tree import MerkleTree
from gateway.store._models import JournalEventRow

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_GRACE",
    "DEFAULT_LAG_LIMIT",
    "SequencerDb",
    "SequencerHealth",
    "StoredCheckpoint",
    "TransactionFactory",
    "catch_up",
    "integrate",
    "integrate_in",
    "integration_lag",
    "run_sequencer",
]

DEFAULT_BATCH: Final = 10_000
DEFAULT_GRACE: Final = timedelta(seconds=1)
DEFAULT_LAG_LIMIT: Final = timedelta(seconds=30)

_T = TypeVar("_T")


class TransactionFactory(Protocol):
    """Anything that opens one database transaction (``gateway.store.Database`` does)."""

    def transaction(self) -> AbstractContextManager[Session]:
        """A session in a transaction: commit on success, roll back on error."""
        ...


def _lock_state(session: Session) -> JournalStateRow | None:
    # Step 1. PostgreSQL: row lock, skip if another replica holds it. SQLite ignores FOR UPDATE
    # (BEGIN IMMEDIATE already holds the database's single write lock).
    stmt = select(JournalStateRow).where(JournalStateRow.id == 1)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).first()


def _recover(session: Session, state: JournalStateRow) -> StoredCheckpoint | None:
    # Step 2. The state, the latest checkpoint and the highest leaf index must agree.
    size = state.integrated_size
    previous = latest_checkpoint(session)
    if (previous.size if previous else 0) != size:
        raise JournalIntegrityError(f"integrated size {size} disagrees with the latest checkpoint")
    top = session.scalar(select(func.max(JournalEventRow.leaf_index)))
    if (-1 if top is None else top) != size - 1:
        raise JournalIntegrityError(f"integrated size {size} disagrees with the leaf indices")
    return previous


def integrate_in(
    session: Session,
    signing_key: Ed25519PrivateKey,
    origin: str,
    *,
    batch_size: int = DEFAULT_BATCH,
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
) -> StoredCheckpoint | None:
    """One integration round inside the caller's transaction (see the module docstring).

    Returns:
        The new signed checkpoint, or None when there was nothing to integrate or another
        sequencer holds the lock.

    Raises:
        JournalIntegrityError: the stored tree, state or checkpoints contradict each other, or
            the new tree is not consistent with the previous checkpoint (nothing is signed).
        JournalKeyError: the key is not Ed25519 or the origin is not a valid key name.
    """
    state = _lock_state(session)
    if state is None:
        if session.get_bind().dialect.name == "postgresql":
            return None  # another replica is integrating this very moment
        raise JournalIntegrityError("journal_state row is missing")
    previous = _recover(session, state)
    size = state.integrated_size
    # Step 3. Committed, unintegrated events past the grace period, by sequence number.
    moment = now or datetime.now(UTC)
    rows = session.scalars(
        select(JournalEventRow)
        .where(JournalEventRow.leaf_index.is_(None), JournalEventRow.time <= moment - grace)
        .order_by(JournalEventRow.seq)
        .limit(batch_size)
    ).all()
    if not rows:
        return None
    # Step 4. Leaves and nodes.
    leaves = [leaf_hash(leaf_entry(journal_event_of(r), r.personal_commitment)) for r in rows]
    tree = MerkleTree(SqlNodeStore(session), size)
    new_size = tree.append_many(leaves)
    # Step 5. Leaf indices, set once (the journal table's triggers refuse any other update).
    table = cast(Table, JournalEventRow.__table__)
    result = session.execute(
        update(table)
        .where(table.c.seq == bindparam("b_seq"), table.c.leaf_index.is_(None))
        .values(leaf_index=bindparam("b_leaf")),
        [{"b_seq": r.seq, "b_leaf": size + k} for k, r in enumerate(rows)],
        execution_options={"synchronize_session": False},
    )
    if cast(CursorResult[Any], result).rowcount not in (-1, len(rows)):
        raise JournalIntegrityError("an event was integrated concurrently")
    # Step 6. Never sign a checkpoint inconsistent with the previous one (RFC 9162 §2.1.4.2).
    root = tree.root()
    if previous is not None:
        proof = tree.consistency_proof(previous.size, new_size)
        try:
            verify_consistency(previous.size, new_size, previous.checkpoint.root_hash, root, proof)
        except JournalVerificationError as e:
            raise JournalIntegrityError(
                f"tree at size {new_size} is not consistent with checkpoint {previous.size}"
            ) from e
    # Step 7. Sign and record.
    note = sign_checkpoint(origin, new_size, root, signing_key)
    session.add(
        JournalCheckpointRow(
            tree_size=new_size, root_hash=bytes(root), note=note.decode("utf-8"), created_at=moment
        )
    )
    state.integrated_size = new_size
    state.updated_at = moment
    session.flush()
    stored = latest_checkpoint(session)
    assert stored is not None and stored.size == new_size
    return stored


def integrate(
    db: TransactionFactory,
    signing_key: Ed25519PrivateKey,
    origin: str,
    *,
    batch_size: int = DEFAULT_BATCH,
    grace: timedelta = DEFAULT_GRACE,
) -> StoredCheckpoint | None:
    """One integration round in its own transaction (nodes, leaf indices, checkpoint together).

    Args:
        db: opens the transaction (a ``gateway.store.Database``).
        signing_key: the journal's Ed25519 key.
        origin: the log's origin line, also the key name.
        batch_size: at most this many events per round.
        grace: only events at least this old are integrated (out-of-order commits).

    Returns:
        The new signed checkpoint, or None when nothing was integrated.

    Raises:
        JournalIntegrityError: the stored journal is inconsistent (nothing is signed).
        JournalKeyError: the key is not Ed25519 or the origin is not a valid key name.
        UnavailableError: the database failed (the round is rolled back).
    """
    with db.transaction() as session:
        return integrate_in(session, signing_key, origin, batch_size=batch_size, grace=grace)


def integration_lag(session: Session, now: datetime | None = None) -> timedelta:
    """Age of the oldest event not yet in the tree (zero when all are integrated)."""
    oldest = session.scalar(
        select(func.min(JournalEventRow.time)).where(JournalEventRow.leaf_index.is_(None))
    )
    if oldest is None:
        return timedelta(0)
    return max(timedelta(0), (now or datetime.now(UTC)) - oldest)


@dataclass
class SequencerHealth:
    """What health checks report about the journal; unhealthy means "stop serving data".

    Starts unhealthy ("not started") so that a gateway never serves before a first round.
    """

    healthy: bool = False
    reason: str = "journal sequencer not started"
    integrated_size: int = 0
    last_round: datetime | None = None
    lag: timedelta = field(default_factory=timedelta)

    def mark(self, healthy: bool, reason: str) -> None:
        """Record the outcome of a round."""
        self.healthy, self.reason = healthy, reason
        self.last_round = datetime.now(UTC)

    def status(
        self, *, stale_after: timedelta = DEFAULT_LAG_LIMIT, now: datetime | None = None
    ) -> tuple[bool, str]:
        """``(healthy, reason)`` for a health check, unhealthy too if no round ran lately.

        A sequencer task that died or hangs stops marking rounds: after ``stale_after`` the
        gateway fails closed even though the last recorded round was fine.
        """
        if self.last_round is None:
            return False, self.reason
        if (now or datetime.now(UTC)) - self.last_round > stale_after:
            return False, "journal sequencer stalled (no round recently)"
        return self.healthy, self.reason


class SequencerDb(TransactionFactory, Protocol):
    """A transaction factory that also runs blocking work off the event loop (``Database``)."""

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a blocking function off the event loop."""
        ...


_MAX_BATCHES_PER_ROUND: Final = 100


def catch_up(
    db: TransactionFactory,
    signing_key: Ed25519PrivateKey,
    origin: str,
    batch_size: int = DEFAULT_BATCH,
    grace: timedelta = DEFAULT_GRACE,
) -> tuple[int, timedelta]:
    """Integrate until caught up (at most 100 batches, one transaction each), then measure.

    Returns:
        The integrated tree size and the integration lag (age of the oldest event left out).

    Raises:
        JournalIntegrityError: the stored journal is inconsistent (nothing is signed).
        UnavailableError: the database failed (the batch in progress is rolled back).
    """
    for _ in range(_MAX_BATCHES_PER_ROUND):
        if integrate(db, signing_key, origin, batch_size=batch_size, grace=grace) is None:
            break
    with db.transaction() as session:
        return integrated_size(session), integration_lag(session)


async def run_sequencer(
    db: SequencerDb,
    signing_key: Ed25519PrivateKey,
    origin: str,
    *,
    interval: float = 1.0,
    stop_event: asyncio.Event,
    on_failure: Callable[[BaseException], None] | None = None,
    health: SequencerHealth | None = None,
    lag_limit: timedelta = DEFAULT_LAG_LIMIT,
    batch_size: int = DEFAULT_BATCH,
    grace: timedelta = DEFAULT_GRACE,
) -> SequencerHealth:
    """Integrate every ``interval`` seconds until ``stop_event`` is set.

    Every gateway replica may run it: on PostgreSQL one integrates while the others skip.
    The health turns unhealthy when a round fails (the error goes to ``on_failure``) or when the
    oldest unintegrated event is older than ``lag_limit`` at the end of two rounds in a row
    (whoever integrates has fallen behind); it turns healthy again after a successful round
    within the limit.

    Returns:
        The health object (the same as ``health`` when given), after the stop.
    """
    state = health if health is not None else SequencerHealth()
    behind = False  # the previous round ended beyond the lag limit too
    while not stop_event.is_set():
        try:
            size, lag = await db.call(catch_up, db, signing_key, origin, batch_size, grace)
        except Exception as e:  # any failure means "fail closed", reported below
            state.mark(False, f"journal integration failed: {type(e).__name__}")
            if on_failure is not None:
                on_failure(e)
        else:
            state.integrated_size, state.lag = size, lag
            # Lag is judged over two rounds: a late committer (an event stamped long before
            # its transaction committed) can arrive just after a round's last batch and is
            # integrated by the next round; only a lag that outlives a round means that
            # integration is really behind.
            if lag <= lag_limit:
                state.mark(True, "journal integrated")
            elif behind or not state.healthy:
                state.mark(False, f"journal integration behind by {int(lag.total_seconds())} s")
            else:
                state.mark(True, "journal integrated")  # one round's benefit of the doubt
            behind = lag > lag_limit
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), timeout=interval)
    return state
