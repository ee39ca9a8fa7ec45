"""Helpers of the ClaimService tests: proto lines, upload streams, journal and table reads."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import grpc
import sqlalchemy as sa

from gateway._proto.vigie.v1 import claims_pb2, claims_pb2_grpc, common_pb2
from gateway.client import claim_line_from_mapping
from gateway.server._policy import EnginePolicyHook
from tests.domain.factories import raw_line
from tests.service.conftest import GatewayEnv, GatewayFactory

FRAUD = common_pb2.PURPOSE_FRAUD_DETECTION
AMO, AMC = claims_pb2.CLAIM_SIDE_AMO, claims_pb2.CLAIM_SIDE_AMC
PER_LINE, ATOMIC = claims_pb2.UPLOAD_MODE_PER_LINE, claims_pb2.UPLOAD_MODE_ALL_OR_NOTHING
CPAM, MUT_A, MUT_B = "cpam-75", "mut-alpha", "mut-beta"
SIDE_OF = {CPAM: "AMO", MUT_A: "AMC", MUT_B: "AMC"}
METHOD = "/vigie.v1.ClaimService/"


def pb_line(kind: str = "lens", side: str = "AMO", /, **kw: Any) -> claims_pb2.ClaimLine:
    """A valid proto claim line (``tests.domain.factories.raw_line``), overridable."""
    return claim_line_from_mapping(raw_line(kind, side, **kw))


def stub(env: GatewayEnv, member: str) -> claims_pb2_grpc.ClaimServiceStub:
    return claims_pb2_grpc.ClaimServiceStub(env.channel(member))  # type: ignore[no-untyped-call]


def header(
    side: int, mode: int = PER_LINE, request_id: str | None = None, **kw: Any
) -> claims_pb2.UploadClaimsRequest:
    return claims_pb2.UploadClaimsRequest(
        purpose=kw.pop("purpose", FRAUD),
        request_id=str(uuid.uuid4()) if request_id is None else request_id,
        side=side, mode=mode, **kw,
    )  # fmt: skip


def requests(
    batches: Sequence[Sequence[claims_pb2.ClaimLine]],
    side: int,
    mode: int = PER_LINE,
    request_id: str | None = None,
) -> list[claims_pb2.UploadClaimsRequest]:
    """The messages of one upload: the header with the first batch, then one per batch."""
    first = header(side, mode, request_id, lines=list(batches[0]) if batches else [])
    return [first, *(claims_pb2.UploadClaimsRequest(lines=list(b)) for b in batches[1:])]


async def upload(
    env: GatewayEnv,
    member: str,
    batches: Sequence[Sequence[claims_pb2.ClaimLine]],
    *,
    mode: int = PER_LINE,
    request_id: str | None = None,
) -> list[claims_pb2.UploadClaimsResponse]:
    """Upload and collect every response (the last one is final)."""
    side = AMO if SIDE_OF[member] == "AMO" else AMC
    call = stub(env, member).UploadClaims(iter(requests(batches, side, mode, request_id)))
    return [r async for r in call]


async def lockstep(
    call: Any, messages: Iterable[claims_pb2.UploadClaimsRequest], wait_s: float = 30
) -> list[claims_pb2.UploadClaimsResponse]:
    """Send one message, wait for its progress, then the next: proves chunks are processed
    while the client is still sending (a server that waited for the end would time out)."""
    seen = []
    for message in messages:
        await call.write(message)
        seen.append(await asyncio.wait_for(call.read(), wait_s))
    await call.done_writing()
    seen.extend([r async for r in _rest(call)])
    return seen


async def _rest(call: Any) -> AsyncIterator[claims_pb2.UploadClaimsResponse]:
    while (r := await call.read()) is not grpc.aio.EOF:
        yield r


def journal(env: GatewayEnv, method: str | None = None) -> list[dict[str, Any]]:
    sql = (
        "select e.seq, e.member_id, e.method, e.decision, e.outcome, e.record_count, e.rule_ids,"
        " e.purpose, p.record_refs, p.subject_pseudonyms from journal_events e"
        " left join journal_personal p on p.seq = e.seq order by e.seq"
    )
    with env.db.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(sql)).mappings()]
    for r in rows:  # JSON columns come back as text on SQLite
        for key in ("rule_ids", "record_refs", "subject_pseudonyms"):
            if isinstance(r[key], str):
                r[key] = json.loads(r[key])
    return [r for r in rows if method is None or r["method"] == METHOD + method]


def rows(env: GatewayEnv, sql: str) -> list[dict[str, Any]]:
    with env.db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]


def count(env: GatewayEnv, table: str) -> int:
    with env.db.engine.connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())


async def real_env(gateway_factory: GatewayFactory, bundle: str = "current-law") -> GatewayEnv:
    env: GatewayEnv = await gateway_factory(policy=EnginePolicyHook.load(bundle))
    return env
