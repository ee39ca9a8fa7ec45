"""Support for the JournalService tests: members with a compliance officer of each kind, a
gateway on the real policy, events written as the pipeline writes them, and waiting for the
sequencer with a deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway import pki
from gateway._proto.vigie.v1 import common_pb2, journal_pb2_grpc
from gateway.crypto import first_level_token
from gateway.journal import vkey_for
from gateway.journal.sequencer import DEFAULT_BATCH, catch_up
from gateway.server._policy import EnginePolicyHook
from gateway.services._journal_convert import method_path
from gateway.services.journal import GUARD_KEY
from gateway.store import AccessEvent, SqlAuditStore
from gateway.store._models import JournalEventRow
from gateway.store._suspicions_models import MemberCoverageRow
from tests.service.conftest import GatewayEnv, GatewayFactory, make_pki, register_members

AUDIT = common_pb2.PURPOSE_AUDIT
DSR = common_pb2.PURPOSE_DATA_SUBJECT_REQUEST
OPS = common_pb2.PURPOSE_OPERATIONS
CONTROL = common_pb2.PURPOSE_CONTROL

# cpam-audit (from the shared PKI) is the AMO's compliance officer; mut-gamma is an AMC whose
# compliance officer role sits with its analysts.
EXTRA_MEMBERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mut-gamma": ("AMC", ("analyst", "compliance_officer")),
}
MEMBERS_KEY = bytes(range(32))  # the members' shared first-level key (test value)
NIR_P = "253072B07300470"  # DOMAIN.md test vectors
NIR_Q = "295109912611193"


@pytest.fixture(scope="session")
def journal_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = make_pki(tmp_path_factory.mktemp("journal-pki"))
    for member_id, (kind, roles) in EXTRA_MEMBERS.items():
        pki.issue_member(directory, member_id, kind, list(roles))
    return directory


async def start_journal_gateway(
    factory: GatewayFactory, journal_pki: Path, **overrides: Any
) -> GatewayEnv:
    """A gateway on the current-law bundle whose sequencer runs every 50 ms."""
    overrides.setdefault("checkpoint_interval_s", 0.05)
    policy = overrides.pop("policy", None) or EnginePolicyHook.load("current-law")
    env: GatewayEnv = await factory(policy=policy, pki=journal_pki, **overrides)
    register_members(env.db, journal_pki, EXTRA_MEMBERS)
    return env


def stub(env: GatewayEnv, member: str) -> journal_pb2_grpc.JournalServiceStub:
    return journal_pb2_grpc.JournalServiceStub(env.channel(member))  # type: ignore[no-untyped-call]


def vkey(env: GatewayEnv) -> str:
    """The journal's verifier key, as the officer obtains it out of band."""
    key = env.gateway.deps.keys.journal_key
    return vkey_for(env.gateway.settings.journal_origin, key.public_key())


def token1(nir: str) -> str:
    return first_level_token(nir, MEMBERS_KEY)


def pseudonym(env: GatewayEnv, nir: str) -> str:
    """What the gateway stores for this person (current key)."""
    return str(env.gateway.deps.keys.rekeyer.rekey(token1(nir)))


def cover(env: GatewayEnv, member_id: str, *pseudonyms: str) -> None:
    """Declare that ``member_id`` covers these beneficiaries (its insured)."""
    now = datetime.now(UTC)
    env.db.run_sync(
        lambda s: s.add_all(
            MemberCoverageRow(member_id=member_id, beneficiary=p, declared_at=now)
            for p in pseudonyms
        )
    )


def access(
    member_id: str,
    method: str = "GetSuspicion",
    *,
    purpose: str = "control",
    decision: str = "allow",
    rule_ids: Sequence[str] = ("cl-amo-read-own-suspicion",),
    subjects: Sequence[str] = (),
    refs: Sequence[str] = (),
    time: datetime | None = None,
    principal: str | None = None,
) -> AccessEvent:
    """One journaled call, as the pipeline would record it."""
    return AccessEvent(
        time=time or datetime.now(UTC) - timedelta(minutes=5),
        member_id=member_id,
        principal=principal or f"CN={member_id}",
        cert_fingerprint=os.urandom(32).hex(),
        method=method_path(method),
        purpose=purpose,
        decision=decision,  # type: ignore[arg-type]
        rule_ids=tuple(rule_ids),
        bundle_hash="ab" * 32,
        outcome="OK" if decision == "allow" else "PERMISSION_DENIED",
        record_count=len(refs),
        record_refs=tuple(refs),
        subject_pseudonyms=tuple(subjects),
    )


def write(env: GatewayEnv, *events: AccessEvent) -> list[int]:
    store = SqlAuditStore()
    return env.db.run_sync(lambda s: store.append_many(s, list(events)))


def pending(env: GatewayEnv) -> int:
    return int(
        env.db.run_sync(
            lambda s: s.scalar(
                sa.select(sa.func.count()).where(JournalEventRow.leaf_index.is_(None))
            )
        )
    )


async def settle(env: GatewayEnv, *, within: float = 20.0) -> int:
    """Integrate every event written so far (no grace period); returns the tree size.

    Runs rounds beside the gateway's own sequencer (they serialise on the state row lock) and
    polls, with a deadline, until no event waits.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    key, origin = env.gateway.deps.keys.journal_key, env.gateway.settings.journal_origin
    while True:
        size, _lag = await env.db.call(catch_up, env.db, key, origin, DEFAULT_BATCH, timedelta(0))
        if pending(env) == 0:
            return int(size)
        assert loop.time() < deadline, "the journal did not integrate in time"
        await asyncio.sleep(0.02)


def rows(env: GatewayEnv) -> list[dict[str, Any]]:
    with env.db.engine.connect() as conn:
        result = conn.execute(sa.text("select * from journal_events order by seq"))
        return [dict(r) for r in result.mappings()]


def unguard(env: GatewayEnv) -> None:
    """The database owner switches the journal's append-only guards off (an insider)."""
    with env.db.engine.begin() as conn:
        if env.db.dialect == "postgresql":
            conn.execute(sa.text("ALTER TABLE journal_events DISABLE TRIGGER ALL"))
            conn.execute(sa.text("ALTER TABLE journal_personal DISABLE TRIGGER ALL"))
        else:
            conn.execute(sa.text("DROP TRIGGER journal_events_no_update"))
            conn.execute(sa.text("DROP TRIGGER journal_events_no_delete"))


async def wait_for(predicate: Any, *, within: float = 20.0, what: str = "condition") -> None:
    """Poll an async predicate until it holds, with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def full_rounds(env: GatewayEnv, count: int = 2) -> None:
    """Wait until the gateway's sequencer has finished ``count`` more rounds.

    After a patch, the second round to finish started after the patch: no round that began
    before it is still in flight.
    """
    health = env.gateway.deps.extras[GUARD_KEY].health
    for _ in range(count):
        before = health.last_round

        async def moved(before: Any = before) -> bool:
            return bool(health.last_round != before)

        await wait_for(moved, what="a sequencer round")
