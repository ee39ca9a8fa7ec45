"""A sequencer process killed (SIGKILL) in the middle of an integration round.

The child process writes the round's nodes and leaf indices, then stops just before signing,
holding its transaction open; the parent kills it there. The database must roll the round
back (SQLite: the uncommitted WAL frames; PostgreSQL: the dead backend's transaction), and the
next sequencer must integrate every event exactly once, with checkpoints consistent.
"""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from journal_store_helpers import integrate_now, write_events

from gateway.journal import verify_consistency
from gateway.journal._sql import integrated_size
from gateway.journal.queries import consistency_proof
from gateway.store import Database

_CHILD = r"""
import sys, threading
sys.path.insert(0, sys.argv[2])
from journal_store_helpers import integrate_now
import gateway.journal.sequencer as sequencer
from gateway.store import Database

def stop_before_signing(*args, **kwargs):
    # Nodes and leaf indices are written (uncommitted); tell the parent, then hang here.
    print("READY", flush=True)
    threading.Event().wait()

sequencer.sign_checkpoint = stop_before_signing
integrate_now(Database.from_url(sys.argv[1], threads=1))
"""


def _counts(db: Database) -> tuple[int, int, int]:
    with db.engine.connect() as conn:
        nodes = conn.execute(sa.text("SELECT COUNT(*) FROM journal_nodes")).scalar_one()
        leaves = conn.execute(
            sa.text("SELECT COUNT(*) FROM journal_events WHERE leaf_index IS NOT NULL")
        ).scalar_one()
        heads = conn.execute(sa.text("SELECT COUNT(*) FROM journal_checkpoints")).scalar_one()
    return int(nodes), int(leaves), int(heads)


def test_sequencer_killed_mid_round_loses_and_duplicates_nothing(
    db_url: str, database: Database
) -> None:
    write_events(database, 5)
    integrate_now(database)
    before = _counts(database)
    write_events(database, 7, start=5)
    child = subprocess.Popen(  # our own interpreter and script
        [sys.executable, "-c", _CHILD, db_url, str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the child never reached the signing step"
        assert child.stdout is not None and child.stdout.readline().strip() == "READY"
        child.send_signal(signal.SIGKILL)  # the power cut, mid-transaction
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # Nothing of the killed round is visible.
    assert _counts(database) == before
    assert database.run_sync(integrated_size) == 5
    # The next sequencer (once the dead backend's lock is gone) integrates all 12, once.
    deadline = time.monotonic() + 30
    stored = integrate_now(database)
    while stored is None:  # PostgreSQL: SKIP LOCKED until the killed transaction is aborted
        assert time.monotonic() < deadline, "the killed round's lock was never released"
        time.sleep(0.05)  # polling the lock state, with the deadline above
        stored = integrate_now(database)
    assert stored.size == 12
    with database.engine.connect() as conn:
        leaves = [r[0] for r in conn.execute(sa.text("SELECT leaf_index FROM journal_events"))]
        heads = [
            (r[0], bytes(r[1]))
            for r in conn.execute(sa.text("SELECT tree_size, root_hash FROM journal_checkpoints"))
        ]
    assert sorted(leaves) == list(range(12))
    for (a, ra), (b, rb) in itertools.combinations(sorted(heads), 2):
        proof = database.run_sync(lambda s, a=a, b=b: consistency_proof(s, a, b))
        verify_consistency(a, b, ra, rb, proof)
