"""Helpers of the SuspicionService tests: stubs per member, a valid suspicion, raw tables.

Tokens and provider numbers are drawn from a seeded generator (first-level tokens stand in for
the members' HMAC outputs; the gateway re-keys them). Coverage ("mut-alpha covers B1") is
declared the way a member's coverage list lands in the gateway: as second-level pseudonyms in
``member_coverage``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import sqlalchemy as sa
from google.protobuf import json_format

from gateway._proto.vigie.v1 import claims_pb2, common_pb2, suspicions_pb2, suspicions_pb2_grpc
from gateway.domain._identifiers import make_am_number, make_rpps, make_token
from gateway.domain.suspicions import declare_coverage, enqueue_notification
from tests.service.conftest import GatewayEnv, utcnow

CONTROL = common_pb2.PURPOSE_CONTROL
FRAUD_DETECTION = common_pb2.PURPOSE_FRAUD_DETECTION
S = suspicions_pb2
_RNG = random.Random(20261201)
TOKEN_B1 = make_token(_RNG)
TOKEN_B2 = make_token(_RNG)
RPPS_P = make_rpps(_RNG)
AM_P = make_am_number(_RNG)
FACTS = "Verres progressifs facturés pour un enfant de cinq ans; monture classe B."
EVIDENCE = ["doc:2026/0001", "facture-17"]
STREAM_DEADLINE_S = 30.0
"""Longest a test waits for a streamed item it expects (a deadline, not a pause)."""


def suspicion_pb(**overrides: Any) -> suspicions_pb2.Suspicion:
    subject = overrides.pop(
        "subject", S.SuspicionSubject(beneficiary_token=TOKEN_B1, provider_rpps=RPPS_P)
    )
    values: dict[str, Any] = {
        "subject": subject,
        "sector": common_pb2.SECTOR_OPTIQUE,
        "fraud_type": common_pb2.FRAUD_TYPE_IMPLAUSIBLE_DEMOGRAPHY,
        "facts_summary": FACTS,
        "estimated_amount_cents": 150_000,
        "evidence_refs": EVIDENCE,
        "case_reference": "CPAM75/2026:0042",
    }
    values.update(overrides)
    return S.Suspicion(**values)


def rows(env: GatewayEnv, sql: str, **params: Any) -> list[dict[str, Any]]:
    with env.db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def count(env: GatewayEnv, table: str) -> int:
    with env.db.engine.connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())


def journal(env: GatewayEnv, method_suffix: str = "") -> list[dict[str, Any]]:
    """Journal events (with their personal record refs), oldest first."""
    events = rows(
        env,
        "select e.seq, e.method, e.member_id, e.decision, e.outcome, e.rule_ids, e.purpose, "
        "p.record_refs from journal_events e left join journal_personal p on p.seq = e.seq "
        "order by e.seq",
    )
    return [e for e in events if e["method"].endswith(method_suffix)]


def as_list(value: Any) -> list[Any]:
    """A JSON column as a list on both dialects (SQLite hands back the text)."""
    import json

    return list(json.loads(value) if isinstance(value, str) else value or [])


@dataclass
class Exchange:
    """One running gateway seen from its members."""

    env: GatewayEnv

    def stub(self, member: str) -> suspicions_pb2_grpc.SuspicionServiceStub:
        return suspicions_pb2_grpc.SuspicionServiceStub(self.env.channel(member))  # type: ignore[no-untyped-call]

    def pseudonym(self, token: str) -> str:
        return str(self.env.gateway.deps.keys.rekeyer.rekey(token))

    def cover(self, member: str, *tokens: str) -> None:
        pseudonyms = [self.pseudonym(t) for t in tokens]
        self.env.db.run_sync(lambda s: declare_coverage(s, member, pseudonyms, utcnow()))

    async def create(
        self, member: str = "cpam-75", *, request_id: str | None = None, **overrides: Any
    ) -> suspicions_pb2.Suspicion:
        reply: suspicions_pb2.Suspicion = await self.stub(member).CreateSuspicion(
            S.CreateSuspicionRequest(
                purpose=overrides.pop("purpose", CONTROL),
                request_id=request_id or str(uuid.uuid4()),
                suspicion=suspicion_pb(**overrides),
            )
        )
        return reply

    async def move(
        self, member: str, name: str, status: int, reason: str = "Faits établis par contrôle."
    ) -> suspicions_pb2.Suspicion:
        reply: suspicions_pb2.Suspicion = await self.stub(member).TransitionSuspicion(
            S.TransitionSuspicionRequest(
                purpose=CONTROL,
                request_id=str(uuid.uuid4()),
                name=name,
                status=status,
                reason=reason,
            )
        )
        return reply

    async def get(self, member: str, name: str) -> suspicions_pb2.Suspicion:
        reply: suspicions_pb2.Suspicion = await self.stub(member).GetSuspicion(
            S.GetSuspicionRequest(purpose=CONTROL, name=name)
        )
        return reply

    async def ack(
        self, member: str, name: str, case_reference: str = ""
    ) -> suspicions_pb2.Notification:
        reply: suspicions_pb2.Notification = await self.stub(member).AcknowledgeNotification(
            S.AcknowledgeNotificationRequest(
                purpose=CONTROL,
                request_id=str(uuid.uuid4()),
                name=name,
                case_reference=case_reference,
            )
        )
        return reply

    def stream(self, member: str, *, purpose: int = CONTROL, after: int | None = None) -> Feed:
        request = S.StreamNotificationsRequest(purpose=purpose)
        if after is not None:
            request.after_sequence = after
        return Feed(self.stub(member).StreamNotifications(request))

    def enqueue_alert(self, member: str, alert: claims_pb2.Alert) -> int:
        """What the claims service does: an ALERT whose payload is the minimised Alert dict."""
        payload = json_format.MessageToDict(alert, preserving_proto_field_name=True)
        envelope = self.env.gateway.deps.keys.envelope
        return self.env.db.run_sync(
            lambda s: enqueue_notification(
                s, member, "ALERT", alert.name, payload, envelope, utcnow()
            )
        )

    def wake(self, *members: str) -> None:
        self.env.gateway.deps.extras["notification_feed"].wake(members)


class Feed:
    """A client's notification stream; ``next()`` waits for one item up to a deadline."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self._it: AsyncIterator[suspicions_pb2.Notification] = call.__aiter__()

    async def next(self) -> suspicions_pb2.Notification:
        item: suspicions_pb2.Notification = await asyncio.wait_for(
            self._it.__anext__(), timeout=STREAM_DEADLINE_S
        )
        return item

    async def take(self, n: int) -> list[suspicions_pb2.Notification]:
        return [await self.next() for _ in range(n)]

    def cancel(self) -> None:
        self.call.cancel()


async def rpc_error(coro: Any) -> grpc.aio.AioRpcError:
    """The error a call fails with (the test fails if it succeeds)."""
    try:
        await coro
    except grpc.aio.AioRpcError as e:
        return e
    raise AssertionError("the call succeeded")


async def wait_until(predicate: Any, *, deadline_s: float = STREAM_DEADLINE_S) -> None:
    """Poll a state the test waits for, until a deadline (never a fixed pause)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError("state not reached before the deadline")
        await asyncio.sleep(0.01)
