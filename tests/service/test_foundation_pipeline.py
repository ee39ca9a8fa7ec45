"""The call pipeline over real mTLS: identity, purpose, policy, journal, error mapping."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway import pki
from gateway._proto.vigie.v1 import (
    common_pb2,
    members_pb2,
    members_pb2_grpc,
    suspicions_pb2,
    suspicions_pb2_grpc,
)
from gateway.server._policy import EnginePolicyHook
from tests.service._status import error_info, field_violations
from tests.service.conftest import AllowList, GatewayEnv, GatewayFactory

OPS = common_pb2.PURPOSE_OPERATIONS


def journal(env: GatewayEnv) -> list[dict[str, object]]:
    with env.db.engine.connect() as conn:
        rows = conn.execute(sa.text("select * from journal_events order by seq")).mappings()
        return [dict(r) for r in rows]


def members(
    env: GatewayEnv, member: str | None = "mut-alpha", **kw: object
) -> members_pb2_grpc.MemberServiceStub:
    return members_pb2_grpc.MemberServiceStub(env.channel(member, **kw))  # type: ignore[arg-type]


@pytest.fixture
async def real_policy_env(gateway_factory: GatewayFactory) -> GatewayEnv:
    env: GatewayEnv = await gateway_factory(policy=EnginePolicyHook.load("current-law"))
    return env


async def test_get_self_returns_the_certificate_member_and_journals_it(
    real_policy_env: GatewayEnv,
) -> None:
    me = await members(real_policy_env).GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    assert me.name == "members/mut-alpha" and me.kind == common_pb2.MEMBER_KIND_AMC
    assert len(me.certificate_fingerprint) == 64
    events = journal(real_policy_env)
    assert [(e["method"], e["decision"], e["outcome"], e["member_id"]) for e in events] == [
        ("/vigie.v1.MemberService/GetSelf", "allow", "OK", "mut-alpha")
    ]
    assert events[0]["rule_ids"] in (["common-get-self"], '["common-get-self"]')
    assert events[0]["bundle_hash"] == real_policy_env.policy.bundle_hash


async def test_call_without_purpose_is_invalid_argument_and_journaled(
    real_policy_env: GatewayEnv,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await members(real_policy_env).GetSelf(members_pb2.GetSelfRequest())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(e.value) == [("purpose", "a declared purpose is required")]
    [event] = journal(real_policy_env)
    assert (event["decision"], event["outcome"]) == ("deny", "INVALID_ARGUMENT")


async def test_purpose_not_allowed_for_the_method_is_permission_denied_with_rule(
    real_policy_env: GatewayEnv,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await members(real_policy_env).GetSelf(
            members_pb2.GetSelfRequest(purpose=common_pb2.PURPOSE_LITIGATION)
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_info(e.value)
    assert info.reason == "POLICY_DENIED" and info.metadata["rule_ids"] == "default-deny"
    [event] = journal(real_policy_env)
    assert (event["decision"], event["outcome"], event["purpose"]) == (
        "deny",
        "PERMISSION_DENIED",
        "litigation",
    )


async def test_deny_by_default_when_no_rule_allows(gateway_factory: GatewayFactory) -> None:
    env: GatewayEnv = await gateway_factory(policy=AllowList())
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await members(env).GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_amc_lists_the_amos_and_itself_never_another_amc(
    real_policy_env: GatewayEnv,
) -> None:
    reply = await members(real_policy_env).ListMembers(members_pb2.ListMembersRequest(purpose=OPS))
    names = {m.name for m in reply.members}
    assert names == {"members/cpam-75", "members/cpam-audit", "members/mut-alpha"}
    assert all(m.certificate_fingerprint == "" for m in reply.members)
    amo = await members(real_policy_env, "cpam-75").ListMembers(
        members_pb2.ListMembersRequest(purpose=OPS)
    )
    assert "members/mut-beta" in {m.name for m in amo.members}


async def test_list_members_pages_with_tokens_bound_to_filters(real_policy_env: GatewayEnv) -> None:
    stub = members(real_policy_env, "cpam-75")
    first = await stub.ListMembers(members_pb2.ListMembersRequest(purpose=OPS, page_size=2))
    assert len(first.members) == 2 and first.next_page_token
    rest = await stub.ListMembers(
        members_pb2.ListMembersRequest(purpose=OPS, page_size=2, page_token=first.next_page_token)
    )
    assert len(rest.members) == 2 and not rest.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.ListMembers(
            members_pb2.ListMembersRequest(
                purpose=OPS, page_token=first.next_page_token, kind=common_pb2.MEMBER_KIND_AMO
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(e.value)[0][0] == "page_token"


async def test_method_allowed_by_a_test_hook_is_still_authenticated_decided_and_journaled(
    gateway_factory: GatewayFactory,
) -> None:
    # (ListSuspicions answered UNIMPLEMENTED before issue 4; it now lists, here nothing.)
    env: GatewayEnv = await gateway_factory(policy=AllowList({("*", "ListSuspicions", "control")}))
    stub = suspicions_pb2_grpc.SuspicionServiceStub(env.channel("cpam-75"))
    reply = await stub.ListSuspicions(
        suspicions_pb2.ListSuspicionsRequest(purpose=common_pb2.PURPOSE_CONTROL)
    )
    assert list(reply.suspicions) == [] and reply.next_page_token == ""
    assert [(ev["decision"], ev["outcome"]) for ev in journal(env)] == [("allow", "OK")]


# -- mutual TLS refusals ---------------------------------------------------------------------------
async def test_no_client_certificate_is_refused_at_the_handshake(
    real_policy_env: GatewayEnv,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await members(real_policy_env, None).GetSelf(
            members_pb2.GetSelfRequest(purpose=OPS), timeout=5
        )
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert journal(real_policy_env) == []  # never reached the application


async def test_certificate_from_another_ca_is_refused_at_the_handshake(
    real_policy_env: GatewayEnv, tmp_path: Path
) -> None:
    other = tmp_path / "other-pki"
    pki.init_ca(other, common_name="Rogue CA")
    pki.issue_member(other, "mut-alpha", "AMC", ["analyst"])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await members(real_policy_env, "mut-alpha", pki_dir=other).GetSelf(
            members_pb2.GetSelfRequest(purpose=OPS), timeout=5
        )
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert journal(real_policy_env) == []


async def test_expired_certificate_is_refused_at_the_handshake(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    import datetime as dt

    d = tmp_path / "pki"
    pki.init_ca(d)
    now = dt.datetime.now(dt.UTC)
    for member_id, kind in (
        ("mut-alpha", "AMC"),
        ("cpam-75", "AMO"),
        ("mut-beta", "AMC"),
        ("cpam-audit", "AMO"),
    ):
        pki.issue_member(d, member_id, kind, ["analyst"])
    pki.issue_member(
        d,
        "mut-alpha",
        "AMC",
        ["analyst"],
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
        replace=True,
    )
    env: GatewayEnv = await gateway_factory(policy=EnginePolicyHook.load("current-law"), pki=d)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await members(env, "mut-alpha").GetSelf(members_pb2.GetSelfRequest(purpose=OPS), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert journal(env) == []


async def test_revoked_certificate_is_unauthenticated_and_journaled(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    d = tmp_path / "pki"
    pki.init_ca(d)
    for member_id, kind in (
        ("mut-alpha", "AMC"),
        ("cpam-75", "AMO"),
        ("mut-beta", "AMC"),
        ("cpam-audit", "AMO"),
    ):
        pki.issue_member(d, member_id, kind, ["analyst"])
    env: GatewayEnv = await gateway_factory(policy=EnginePolicyHook.load("current-law"), pki=d)
    stub = members(env, "mut-beta")
    await stub.GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    pki.revoke(d, d / "members" / "mut-beta.crt")  # the server reloads the CRL on change
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(e.value).reason == "CERT_REVOKED"
    events = journal(env)
    assert [(ev["decision"], ev["outcome"]) for ev in events] == [
        ("allow", "OK"),
        ("deny", "UNAUTHENTICATED"),
    ]
    assert events[1]["rule_ids"] in (["authentication"], '["authentication"]')


async def test_valid_but_unregistered_member_is_unauthenticated(
    real_policy_env: GatewayEnv,
) -> None:
    pki.issue_member(real_policy_env.pki_dir, "mut-unknown", "AMC", ["analyst"], replace=True)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await members(real_policy_env, "mut-unknown").GetSelf(
            members_pb2.GetSelfRequest(purpose=OPS)
        )
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(e.value).reason == "UNKNOWN_MEMBER"
    [event] = journal(real_policy_env)
    assert (event["member_id"], event["decision"]) == ("", "deny")


# -- limits, journal failure, health, reflection ---------------------------------------------------
async def test_member_over_its_rate_is_resource_exhausted_others_are_not(
    gateway_factory: GatewayFactory,
) -> None:
    env: GatewayEnv = await gateway_factory(
        policy=EnginePolicyHook.load("current-law"), rate_limit_per_s=0.001, rate_limit_burst=2
    )
    stub = members(env, "mut-alpha")
    for _ in range(2):
        await stub.GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await members(env, "cpam-75").GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    assert journal(env)[2]["rule_ids"] in (["rate-limit"], '["rate-limit"]')


async def test_journal_failure_fails_closed_with_unavailable_and_no_data(
    real_policy_env: GatewayEnv,
) -> None:
    # Break the journal: the personal-fields table disappears (as a failed disk would).
    with real_policy_env.db.engine.begin() as conn:
        conn.execute(sa.text("alter table journal_personal rename to journal_personal_gone"))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await members(real_policy_env).GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(e.value).reason == "JOURNAL_UNAVAILABLE"


async def test_health_and_reflection_answer_without_member_data(
    real_policy_env: GatewayEnv,
) -> None:
    ch = real_policy_env.channel("mut-alpha")
    reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stream = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = set()
    async for resp in stream:
        services |= {s.name for s in resp.list_services_response.service}
    assert {
        "vigie.v1.MemberService",
        "vigie.v1.SuspicionService",
        "vigie.v1.ClaimService",
        "vigie.v1.JournalService",
        "grpc.health.v1.Health",
    } <= services
    assert journal(real_policy_env) == []


async def test_graceful_shutdown_reports_not_serving_then_stops(
    real_policy_env: GatewayEnv,
) -> None:
    stub = members(real_policy_env)
    await stub.GetSelf(members_pb2.GetSelfRequest(purpose=OPS))
    await real_policy_env.gateway.stop(grace=1.0)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetSelf(members_pb2.GetSelfRequest(purpose=OPS), timeout=2)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
