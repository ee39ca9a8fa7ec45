"""Fail closed on the journal, in the running server: health and the serving gate.

Issue 3: if events cannot be written or integrated the gateway stops serving data and says so
in health checks; it serves again once the journal recovers. And a crash during integration
loses and duplicates nothing across a restart.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.vigie.v1 import journal_pb2, members_pb2, members_pb2_grpc
from gateway.journal import sequencer as sequencer_module
from gateway.journal import verify_checkpoint, verify_consistency
from tests.service._journal_support import (
    AUDIT,
    OPS,
    access,
    full_rounds,
    journal_pki,
    pending,
    rows,
    settle,
    start_journal_gateway,
    stub,
    vkey,
    wait_for,
    write,
)
from tests.service._status import error_info
from tests.service.conftest import GatewayEnv, GatewayFactory

__all__ = ["journal_pki"]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def env(gateway_factory: GatewayFactory, journal_pki: Path) -> GatewayEnv:
    return await start_journal_gateway(gateway_factory, journal_pki)


async def _health(env: GatewayEnv) -> Any:
    reply = await health_pb2_grpc.HealthStub(env.channel("mut-alpha")).Check(
        health_pb2.HealthCheckRequest()
    )
    return reply.status


def _get_self(env: GatewayEnv, member: str = "mut-alpha") -> Any:
    ms = members_pb2_grpc.MemberServiceStub(env.channel(member))  # type: ignore[no-untyped-call]
    return ms.GetSelf(members_pb2.GetSelfRequest(purpose=OPS))


async def _health_is(env: GatewayEnv, status: Any) -> None:
    async def check() -> bool:
        return bool(await _health(env) == status)

    await wait_for(
        check, what=f"health {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
    )


async def _refused_unavailable(env: GatewayEnv) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await _get_self(env)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(e.value).reason == "JOURNAL_UNHEALTHY"
    return e.value


def _assert_every_event_integrated_once(env: GatewayEnv) -> None:
    journal = rows(env)
    assert sorted(r["leaf_index"] for r in journal) == list(range(len(journal)))
    assert len({r["event_id"] for r in journal}) == len(journal)


def _rename(env: GatewayEnv, old: str, new: str) -> None:
    with env.db.engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_failing_integration_turns_health_not_serving_and_refuses_data_until_recovery(
    env: GatewayEnv,
) -> None:
    assert await _health(env) == SERVING
    await _get_self(env)
    # Inject the failure: the sequencer's state table disappears (as a failed volume would).
    with structlog.testing.capture_logs() as logs:
        _rename(env, "journal_state", "journal_state_gone")
        await _health_is(env, NOT_SERVING)
        error = await _refused_unavailable(env)
    assert "journal integration failed" in (error.details() or "")
    assert any(line["event"] == "journal_integration_failed" for line in logs)
    refused = rows(env)[-1]  # the refusal itself is journaled (who tried, what they got)
    assert (refused["member_id"], refused["decision"], refused["outcome"]) == (
        "mut-alpha",
        "deny",
        "UNAVAILABLE",
    )
    # Recovery: the table is back, the next round integrates everything, serving resumes.
    _rename(env, "journal_state_gone", "journal_state")
    await _health_is(env, SERVING)
    await _get_self(env)
    await settle(env)
    _assert_every_event_integrated_once(env)


async def test_integration_lagging_beyond_its_limit_fails_closed_until_it_catches_up(
    env: GatewayEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Integration makes no progress (another replica holds the lock and is stuck) while an
    # event waits: past the lag limit (30 s here) the gateway stops serving.
    monkeypatch.setattr(sequencer_module, "integrate", lambda *_a, **_k: None)
    await full_rounds(env)  # no round that could still integrate is in flight
    write(env, access("cpam-75", time=datetime.now(UTC) - timedelta(minutes=5)))
    await _health_is(env, NOT_SERVING)
    error = await _refused_unavailable(env)
    assert "behind by" in (error.details() or "")
    monkeypatch.undo()
    await _health_is(env, SERVING)
    await _get_self(env)
    await settle(env)
    _assert_every_event_integrated_once(env)


async def test_a_replica_stuck_holding_the_sequencer_lock_fails_this_one_closed(
    env: GatewayEnv,
) -> None:
    if env.db.dialect != "postgresql":
        pytest.skip("replicas share the sequencer lock on PostgreSQL (SQLite: one writer)")
    stuck = sa.create_engine(env.db.engine.url)  # another gateway's connection
    conn = stuck.connect()
    try:
        # The other replica takes the lock first; then an event waits behind it.
        conn.execute(sa.text("SELECT * FROM journal_state WHERE id = 1 FOR UPDATE"))
        write(env, access("cpam-75", time=datetime.now(UTC) - timedelta(minutes=5)))
        await _health_is(env, NOT_SERVING)
        await _refused_unavailable(env)
    finally:
        conn.rollback()  # the stuck replica dies: its lock goes with it
        conn.close()
        stuck.dispose()
    await _health_is(env, SERVING)
    await _get_self(env)


async def test_a_gateway_started_on_a_broken_journal_never_serves_a_first_call(
    gateway_factory: GatewayFactory, journal_pki: Path
) -> None:
    first = await start_journal_gateway(gateway_factory, journal_pki)
    await _get_self(first)
    await settle(first)
    await first.gateway.stop(grace=0.5)
    with first.db.engine.begin() as conn:  # the state no longer matches the checkpoints
        conn.execute(sa.text("UPDATE journal_state SET integrated_size = integrated_size + 5"))
    second = await start_journal_gateway(gateway_factory, journal_pki)
    # No waiting: the very first call and health check already fail closed.
    await _refused_unavailable(second)
    assert await _health(second) == NOT_SERVING


async def test_crash_during_integration_in_the_server_then_restart_loses_and_duplicates_nothing(
    gateway_factory: GatewayFactory, journal_pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await start_journal_gateway(gateway_factory, journal_pki)
    for member in ("mut-alpha", "cpam-75", "cpam-audit"):
        await _get_self(first, member)
    await settle(first)
    integrated = len(rows(first))

    def power_cut(*_args: object, **_kw: object) -> bytes:
        raise RuntimeError("power cut after the nodes and leaf indices were written")

    monkeypatch.setattr(sequencer_module, "sign_checkpoint", power_cut)
    await full_rounds(first)  # no round that could still sign is in flight
    write(first, *(access("cpam-75") for _ in range(4)))
    await _health_is(first, NOT_SERVING)
    # The failed round left nothing: no leaf index, no node, no checkpoint of a new size.
    assert pending(first) == 4
    assert sum(r["leaf_index"] is not None for r in rows(first)) == integrated
    await first.gateway.stop(grace=0.5)
    monkeypatch.undo()
    # Restart on the same database and keys: the first round recovers from the database.
    second = await start_journal_gateway(gateway_factory, journal_pki)
    assert await _health(second) == SERVING
    await _get_self(second)
    size = await settle(second)
    _assert_every_event_integrated_once(second)
    assert size == len(rows(second))
    # Every checkpoint ever signed is consistent with every later one (checked over gRPC).
    with second.db.engine.connect() as conn:
        notes = [r[0] for r in conn.execute(sa.text("SELECT note FROM journal_checkpoints"))]
    heads = sorted(
        (verify_checkpoint(n.encode(), vkey(second)) for n in notes), key=lambda c: c.size
    )
    journal = stub(second, "cpam-audit")
    for old, new in itertools.combinations(heads, 2):
        proof = await journal.GetConsistencyProof(
            journal_pb2.GetConsistencyProofRequest(
                purpose=AUDIT, first_tree_size=old.size, second_tree_size=new.size
            )
        )
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, list(proof.hashes))
