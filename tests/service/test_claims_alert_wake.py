"""A new alert reaches an open notification stream as soon as its upload commits.

The stream also polls the database (for other replicas' writes); with that poll set to an hour,
only the upload's own wake-up can deliver the second alert within the test's deadline.
"""

from __future__ import annotations

import asyncio

from gateway._proto.vigie.v1 import suspicions_pb2, suspicions_pb2_grpc
from tests.service.claims_support import FRAUD, MUT_A, pb_line, real_env, upload
from tests.service.conftest import GatewayFactory

DEADLINE_S = 20.0  # far below the one-hour poll: only the wake-up can meet it


async def test_an_alert_wakes_the_open_stream_of_its_member(
    gateway_factory: GatewayFactory,
) -> None:
    env = await real_env(gateway_factory)
    env.gateway.deps.extras["notification_poll_s"] = 3600.0
    first = pb_line("lens", "AMC", member_reference="P1", care_date="2026-01-10")
    await upload(env, MUT_A, [[first]])  # a phantom complement: one ALERT in the outbox
    feed = suspicions_pb2_grpc.SuspicionServiceStub(env.channel(MUT_A))  # type: ignore[no-untyped-call]
    call = feed.StreamNotifications(
        suspicions_pb2.StreamNotificationsRequest(purpose=FRAUD, after_sequence=0)
    )
    try:
        backlog = await asyncio.wait_for(call.read(), DEADLINE_S)
        assert backlog.kind == suspicions_pb2.NOTIFICATION_KIND_ALERT
        # The stream now waits for more; a second phantom is uploaded and committed.
        second = pb_line("lens", "AMC", member_reference="P2", care_date="2026-02-10")
        await upload(env, MUT_A, [[second]])
        live = await asyncio.wait_for(call.read(), DEADLINE_S)
        assert live.kind == suspicions_pb2.NOTIFICATION_KIND_ALERT
        assert live.alert.name != backlog.alert.name
        assert live.alert.member_reference == "P2"
    finally:
        call.cancel()
