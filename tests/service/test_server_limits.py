"""Server limits and shutdown: oversized messages, in-flight calls drained, none admitted after."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.vigie.v1 import common_pb2, members_pb2, members_pb2_grpc
from gateway.services.members import MemberServicer
from tests.service.conftest import AllowList, GatewayFactory

OPS = common_pb2.PURPOSE_OPERATIONS


def _allow_members() -> AllowList:
    return AllowList(allowed={("*", "GetSelf", "operations"), ("*", "ListMembers", "operations")})


async def test_message_over_the_size_limit_is_resource_exhausted(
    gateway_factory: GatewayFactory,
) -> None:
    env = await gateway_factory(policy=_allow_members(), max_message_bytes=64 * 1024)
    stub = members_pb2_grpc.MemberServiceStub(env.channel("mut-alpha"))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.ListMembers(
            members_pb2.ListMembersRequest(purpose=OPS, page_token="x" * (80 * 1024)), timeout=5
        )
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The same call under the limit is served: the limit, not the call, refused it.
    reply = await stub.ListMembers(members_pb2.ListMembersRequest(purpose=OPS), timeout=5)
    assert reply.members


async def test_shutdown_drains_the_call_in_flight_and_admits_no_new_one(
    gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    original = MemberServicer.GetSelf

    async def slow_get_self(self: MemberServicer, request: Any, context: Any) -> Any:
        entered.set()
        await release.wait()
        return await original(self, request, context)

    monkeypatch.setattr(MemberServicer, "GetSelf", slow_get_self)
    env = await gateway_factory(policy=_allow_members())
    stub = members_pb2_grpc.MemberServiceStub(env.channel("mut-alpha"))
    health = health_pb2_grpc.HealthStub(env.channel("mut-alpha"))

    in_flight = asyncio.ensure_future(
        stub.GetSelf(members_pb2.GetSelfRequest(purpose=OPS), timeout=20)
    )
    await asyncio.wait_for(entered.wait(), timeout=10)
    stopping = asyncio.ensure_future(env.gateway.stop(grace=15))
    # 1. Health says NOT_SERVING as soon as the drain starts (load balancers stop routing).
    async with asyncio.timeout(10):
        while True:
            try:
                status = (await health.Check(health_pb2.HealthCheckRequest(), timeout=2)).status
            except grpc.aio.AioRpcError:
                break  # the listener is already closed: also "not serving"
            if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                break
            await asyncio.sleep(0)
    # 2. The call in flight completes normally once its handler finishes.
    release.set()
    reply = await asyncio.wait_for(in_flight, timeout=10)
    assert reply.name == "members/mut-alpha"
    await asyncio.wait_for(stopping, timeout=20)
    # 3. After the stop nothing is admitted.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetSelf(members_pb2.GetSelfRequest(purpose=OPS), timeout=2)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_page_token_from_one_replica_is_honoured_by_another(
    gateway_factory: GatewayFactory,
) -> None:
    # Two replicas on the same database and keys (as behind a load balancer).
    first_replica = await gateway_factory(policy=_allow_members())
    second_replica = await gateway_factory(policy=_allow_members())
    one = members_pb2_grpc.MemberServiceStub(first_replica.channel("cpam-75"))
    two = members_pb2_grpc.MemberServiceStub(second_replica.channel("cpam-75"))
    page = await one.ListMembers(members_pb2.ListMembersRequest(purpose=OPS, page_size=2))
    assert page.next_page_token
    rest = await two.ListMembers(
        members_pb2.ListMembersRequest(purpose=OPS, page_size=2, page_token=page.next_page_token)
    )
    names = [m.name for m in page.members] + [m.name for m in rest.members]
    assert len(names) == len(set(names)) == 4
