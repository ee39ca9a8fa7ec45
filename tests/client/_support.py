"""Small helpers of the SDK tests: raw table reads, a valid suspicion, coverage, waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gateway.domain.suspicions import declare_coverage
from tests.service.conftest import GatewayEnv

NIR = "253072B07300470"
NIR_OTHER = "295109912611193"
RPPS = "12914177766"  # Luhn-valid (gateway.domain._identifiers.make_rpps, seed 1)
DEADLINE_S = 15.0
"""Longest a test waits for a state it expects (a deadline, never a pause)."""

SUSPICION: dict[str, Any] = {
    "purpose": "control",
    "sector": "optique",
    "fraud_type": "implausible_demography",
    "facts_summary": "Verres progressifs facturés pour un enfant de cinq ans.",
    "estimated_amount_cents": 150_000,
    "provider_rpps": RPPS,
    "evidence_refs": ["doc:2026/0001"],
    "case_reference": "CPAM75/2026:0042",
}


def count(env: GatewayEnv, table: str, where: str = "") -> int:
    with env.db.engine.connect() as conn:
        sql = f"select count(*) from {table}" + (f" where {where}" if where else "")
        return int(conn.execute(sa.text(sql)).scalar_one())


def rows(env: GatewayEnv, sql: str) -> list[dict[str, Any]]:
    with env.db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]


def outcomes(env: GatewayEnv, method: str) -> list[str]:
    """Journal outcomes of one method, oldest first."""
    events = rows(env, "select method, outcome from journal_events order by seq")
    return [e["outcome"] for e in events if e["method"].endswith(f"/{method}")]


def request_ids(env: GatewayEnv, method: str) -> list[str]:
    events = rows(env, "select method, request_id from journal_events order by seq")
    return [e["request_id"] for e in events if e["method"].endswith(f"/{method}")]


def cover(env: GatewayEnv, member: str, *tokens: str) -> None:
    """Declare that ``member`` covers these beneficiaries (as its coverage list would)."""
    rekeyer = env.gateway.deps.keys.rekeyer
    pseudonyms = [str(rekeyer.rekey(t)) for t in tokens]
    env.db.run_sync(lambda s: declare_coverage(s, member, pseudonyms, datetime.now(UTC)))


def dump(env: GatewayEnv) -> str:
    """Every row of every table, as text (to look for what must never be stored)."""
    out = []
    with env.db.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f"select * from {table}")).mappings():
                out.append(json.dumps({k: repr(v) for k, v in row.items()}))
    return "\n".join(out)


async def wait_until(predicate: Callable[[], bool], *, deadline_s: float = DEADLINE_S) -> None:
    """Poll a state until a deadline (never a fixed pause)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError("state not reached before the deadline")
        await asyncio.sleep(0.01)
