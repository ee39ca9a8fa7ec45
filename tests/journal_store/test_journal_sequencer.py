"""Sequencer and SQL node store on SQLite and PostgreSQL: order, crash safety, races, proofs."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from journal_store_helpers import (
    ORIGIN,
    SIGNING_KEY,
    VKEY,
    access_event,
    integrate_now,
    write_events,
)

import gateway.journal.sequencer as sequencer_module
from gateway.errors import InvalidArgumentError
from gateway.journal import (
    JournalIntegrityError,
    leaf_entry,
    leaf_hash,
    root_of,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from gateway.journal._sql import (
    JournalEventRow,
    SqlNodeStore,
    checkpoint_at,
    integrated_size,
    journal_event_of,
)
from gateway.journal.queries import consistency_proof, inclusion_proof, latest_checkpoint
from gateway.journal.sequencer import SequencerHealth, integrate, run_sequencer
from gateway.store import Database, SqlAuditStore


def _leaf_rows(db: Database) -> list[tuple[int, int | None]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT seq, leaf_index FROM journal_events ORDER BY seq"))
        return [(r[0], r[1]) for r in rows]


def _checkpoints(db: Database) -> list[tuple[int, bytes]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT tree_size, root_hash FROM journal_checkpoints ORDER BY tree_size")
        )
        return [(r[0], bytes(r[1])) for r in rows]


def _expected_root(db: Database, size: int) -> bytes:
    """The root recomputed from the event rows themselves (the naive baseline)."""

    def leaves(s: sa.orm.Session) -> list[bytes]:
        rows = s.scalars(
            sa.select(JournalEventRow)
            .where(JournalEventRow.leaf_index < size)
            .order_by(JournalEventRow.leaf_index)
        ).all()
        return [leaf_hash(leaf_entry(journal_event_of(r), r.personal_commitment)) for r in rows]

    return root_of(db.run_sync(leaves))


def _assert_all_pairs_consistent(db: Database) -> None:
    heads = _checkpoints(db)
    for (a, ra), (b, rb) in itertools.combinations(heads, 2):
        proof = db.run_sync(lambda s, a=a, b=b: consistency_proof(s, a, b))
        verify_consistency(a, b, ra, rb, proof)


def test_sequencer_integrates_in_seq_order_and_signs_a_checkpoint(database: Database) -> None:
    seqs = write_events(database, 5)
    stored = integrate_now(database)
    assert stored is not None and stored.size == 5
    head = verify_checkpoint(stored.note, VKEY)
    assert head.origin == ORIGIN and head.root_hash == _expected_root(database, 5)
    assert _leaf_rows(database) == [(s, k) for k, s in enumerate(seqs)]
    # Nothing new: no new checkpoint.
    assert integrate_now(database) is None
    assert [size for size, _ in _checkpoints(database)] == [5]


def test_every_inclusion_proof_from_the_sql_store_verifies(database: Database) -> None:
    write_events(database, 3)
    integrate_now(database)
    write_events(database, 8, start=3)
    stored = integrate_now(database)
    assert stored is not None and stored.size == 11
    rows = database.run_sync(
        lambda s: s.scalars(sa.select(JournalEventRow).order_by(JournalEventRow.leaf_index)).all()
    )
    for size in (3, 11):
        root = _expected_root(database, size)
        for row in rows[:size]:
            assert row.leaf_index is not None
            proof = database.run_sync(lambda s, i=row.leaf_index, n=size: inclusion_proof(s, i, n))
            leaf = leaf_hash(leaf_entry(journal_event_of(row), row.personal_commitment))
            verify_inclusion(row.leaf_index, size, leaf, proof, root)
    _assert_all_pairs_consistent(database)


def test_proof_requests_beyond_the_integrated_tree_are_refused(database: Database) -> None:
    write_events(database, 2)
    integrate_now(database)
    with pytest.raises(InvalidArgumentError):
        database.run_sync(lambda s: inclusion_proof(s, 0, 3))
    with pytest.raises(InvalidArgumentError):
        database.run_sync(lambda s: consistency_proof(s, 2, 1))


def test_node_store_is_write_once(database: Database) -> None:
    node = {(0, 0): b"\x01" * 32, (1, 0): b"\x02" * 32}
    database.run_sync(lambda s: SqlNodeStore(s).put_many(node))
    database.run_sync(lambda s: SqlNodeStore(s).put_many(node))  # identical re-put: no-op
    assert database.run_sync(lambda s: dict(SqlNodeStore(s).get_many([(0, 0), (0, 1)]))) == {
        (0, 0): b"\x01" * 32
    }
    with pytest.raises(JournalIntegrityError):
        database.run_sync(lambda s: SqlNodeStore(s).put_many({(1, 0): b"\x03" * 32}))


@pytest.mark.parametrize(
    "verb", ["UPDATE journal_nodes SET hash = :h", "DELETE FROM journal_nodes"]
)
def test_database_refuses_to_change_a_stored_node(database: Database, verb: str) -> None:
    write_events(database, 2)
    integrate_now(database)
    with pytest.raises(sa.exc.DBAPIError), database.engine.begin() as conn:
        conn.execute(sa.text(verb), {"h": b"\x00" * 32})


def test_gap_left_by_a_rolled_back_transaction_does_not_block(database: Database) -> None:
    write_events(database, 2)
    store = SqlAuditStore()

    def aborted(s: sa.orm.Session) -> None:
        store.append(s, access_event(99))
        raise RuntimeError("the caller's transaction fails after taking a seq")

    with pytest.raises(RuntimeError):
        database.run_sync(aborted)
    write_events(database, 2, start=2)
    stored = integrate_now(database)
    assert stored is not None and stored.size == 4
    seqs = [s for s, _ in _leaf_rows(database)]
    if database.dialect == "postgresql":  # SQLite reuses the rolled-back rowid: no gap there
        assert len(seqs) == 4 and seqs != list(range(seqs[0], seqs[0] + 4))
    assert [i for _, i in _leaf_rows(database)] == [0, 1, 2, 3]


def test_events_inside_the_grace_period_wait_for_the_next_round(database: Database) -> None:
    write_events(database, 2)
    write_events(database, 1, start=2, time=datetime.now(UTC) + timedelta(hours=1))
    stored = integrate(database, SIGNING_KEY, ORIGIN, grace=timedelta(seconds=5))
    assert stored is not None and stored.size == 2


def test_late_committer_is_integrated_later_never_lost(database: Database) -> None:
    """PostgreSQL can commit seq n+1 before seq n: the later one is placed later, not lost."""
    write_events(database, 1)
    write_events(database, 1, start=1, time=datetime.now(UTC) + timedelta(hours=1))
    write_events(database, 1, start=2)
    assert integrate(database, SIGNING_KEY, ORIGIN, grace=timedelta(0)) is not None
    stored = integrate(
        database, SIGNING_KEY, ORIGIN, grace=timedelta(hours=-2)
    )  # now the "slow" one
    assert stored is not None and stored.size == 3
    leaf_of = dict(_leaf_rows(database))
    first, slow, third = sorted(leaf_of)
    assert (leaf_of[first], leaf_of[third], leaf_of[slow]) == (0, 1, 2)
    _assert_all_pairs_consistent(database)


def test_crash_between_steps_rolls_back_and_restart_loses_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_events(database, 4)
    integrate_now(database)
    write_events(database, 6, start=4)

    def crash(*_args: object, **_kw: object) -> bytes:
        raise RuntimeError("power cut after nodes and leaf indices were written")

    monkeypatch.setattr(sequencer_module, "sign_checkpoint", crash)
    with pytest.raises(RuntimeError):
        integrate_now(database)
    # Nothing of the failed round remains.
    assert database.run_sync(integrated_size) == 4
    assert [i for _, i in _leaf_rows(database)] == [0, 1, 2, 3, None, None, None, None, None, None]
    monkeypatch.undo()
    stored = integrate_now(database)
    assert stored is not None and stored.size == 10
    assert [i for _, i in _leaf_rows(database)] == list(range(10))
    assert stored.checkpoint.root_hash == _expected_root(database, 10)
    _assert_all_pairs_consistent(database)


def test_sequencer_refuses_to_sign_over_a_tampered_node(database: Database) -> None:
    write_events(database, 3)
    integrate_now(database)
    write_events(database, 1, start=3)
    with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            conn.execute(sa.text("ALTER TABLE journal_nodes DISABLE TRIGGER ALL"))
        else:
            conn.execute(sa.text("DROP TRIGGER journal_nodes_no_update"))
        conn.execute(
            sa.text("UPDATE journal_nodes SET hash = :h WHERE level = 0 AND idx = 2"),
            {"h": b"\x07" * 32},
        )
    with pytest.raises(JournalIntegrityError, match="not consistent"):
        integrate_now(database)
    assert [size for size, _ in _checkpoints(database)] == [3]


def _unguard(conn: sa.Connection, dialect: str) -> None:
    """The database owner switches the append-only guards off (what an insider could do)."""
    if dialect == "postgresql":
        for table in ("journal_nodes", "journal_checkpoints", "journal_events"):
            conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
        return
    for trigger in (
        "journal_checkpoints_no_update",
        "journal_checkpoints_no_delete",
        "journal_events_no_update",
    ):
        conn.execute(sa.text(f"DROP TRIGGER {trigger}"))


STATE_TAMPERING = [
    ("state rolled back", "UPDATE journal_state SET integrated_size = 2", "latest checkpoint"),
    ("checkpoint root edited", "UPDATE journal_checkpoints SET root_hash = :h", "contradicts"),
    ("latest checkpoint deleted", "DELETE FROM journal_checkpoints", "latest checkpoint"),
    (
        "last leaf index cleared",
        "UPDATE journal_events SET leaf_index = NULL WHERE leaf_index = 3",
        "leaf indices",
    ),
]


@pytest.mark.parametrize(
    ("name", "statement", "message"), STATE_TAMPERING, ids=[t[0] for t in STATE_TAMPERING]
)
def test_sequencer_refuses_to_continue_from_tampered_state(
    database: Database, name: str, statement: str, message: str
) -> None:
    write_events(database, 4)
    integrate_now(database)
    write_events(database, 1, start=4)
    with database.engine.begin() as conn:
        _unguard(conn, database.dialect)
        conn.execute(sa.text(statement), {"h": b"\x07" * 32})
    with pytest.raises(JournalIntegrityError, match=message):
        integrate_now(database)


def test_two_racing_sequencers_never_sign_inconsistent_checkpoints(database: Database) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        for k in range(30):
            write_events(database, 2, start=2 * k)
        stop.set()

    def racer() -> None:
        try:
            while not stop.is_set():
                integrate_now(database)
            integrate_now(database)
        except BaseException as e:  # collected and re-raised by the test
            errors.append(e)

    threads = [threading.Thread(target=f) for f in (writer, racer, racer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    integrate_now(database)
    leaves = [i for _, i in _leaf_rows(database)]
    assert sorted(leaves) == list(range(60))  # every event once, none lost
    heads = _checkpoints(database)
    assert heads[-1][0] == 60 and heads[-1][1] == _expected_root(database, 60)
    _assert_all_pairs_consistent(database)


def test_restart_recovers_the_integrated_size_from_the_database(db_url: str) -> None:
    from gateway.store import migrate

    first = Database.from_url(db_url, threads=1)
    migrate(first.engine)
    write_events(first, 3)
    integrate_now(first)
    first.close()
    second = Database.from_url(db_url, threads=1)
    try:
        write_events(second, 2, start=3)
        stored = integrate_now(second)
        assert stored is not None and stored.size == 5
        assert second.run_sync(lambda s: checkpoint_at(s, 3)) is not None
        assert second.run_sync(latest_checkpoint) == stored
        _assert_all_pairs_consistent(second)
    finally:
        second.close()


async def test_run_sequencer_reports_health_and_fails_closed(database: Database) -> None:
    write_events(database, 3)
    health = SequencerHealth()
    assert not health.healthy  # never serve before a first round
    stop = asyncio.Event()
    failures: list[BaseException] = []
    task = asyncio.create_task(
        run_sequencer(
            database,
            SIGNING_KEY,
            ORIGIN,
            interval=0.05,
            stop_event=stop,
            on_failure=failures.append,
            health=health,
            grace=timedelta(0),
        )
    )
    for _ in range(100):
        await asyncio.sleep(0.05)
        if health.healthy:
            break
    assert health.healthy and health.integrated_size == 3 and failures == []
    # A tampered node makes integration fail: unhealthy, with a reason, and the error reported.
    with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            conn.execute(sa.text("ALTER TABLE journal_nodes DISABLE TRIGGER ALL"))
        else:
            conn.execute(sa.text("DROP TRIGGER journal_nodes_no_delete"))
        conn.execute(sa.text("DELETE FROM journal_nodes WHERE level = 0"))
    write_events(database, 1, start=3)
    for _ in range(100):
        await asyncio.sleep(0.05)
        if not health.healthy:
            break
    stop.set()
    await task
    assert not health.healthy and "failed" in health.reason
    assert failures and isinstance(failures[0], JournalIntegrityError)


async def test_run_sequencer_reports_lag_beyond_the_limit(database: Database) -> None:
    # An event older than the limit that the grace period keeps out: integration is "behind".
    write_events(database, 1, time=datetime.now(UTC) - timedelta(minutes=5))
    stop = asyncio.Event()
    stop_soon = asyncio.get_running_loop().call_later(0.3, stop.set)
    health = await run_sequencer(
        database,
        SIGNING_KEY,
        ORIGIN,
        interval=0.05,
        stop_event=stop,
        grace=timedelta(hours=1),
        lag_limit=timedelta(seconds=60),
    )
    stop_soon.cancel()
    assert not health.healthy and "behind" in health.reason


def test_health_status_fails_closed_when_the_sequencer_stalls() -> None:
    health = SequencerHealth()
    assert health.status() == (False, "journal sequencer not started")
    health.mark(True, "journal integrated")
    assert health.status() == (True, "journal integrated")
    later = datetime.now(UTC) + timedelta(minutes=5)
    healthy, reason = health.status(stale_after=timedelta(seconds=30), now=later)
    assert not healthy and "stalled" in reason
