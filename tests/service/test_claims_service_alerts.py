"""CheckClaim, ListAlerts, GetAlert and alert delivery over real mTLS (SQLite and PostgreSQL),
with the current-law policy bundle: exact refusal codes, minimisation by the decision's view,
pagination (AIP-158), journal events, and the ALERT notifications in the members' outboxes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from gateway._proto.vigie.v1 import claims_pb2, common_pb2, suspicions_pb2, suspicions_pb2_grpc
from gateway.domain._suspicion_exchange import notifications_after
from gateway.server import Decision
from gateway.server._policy import EnginePolicyHook
from gateway.store import Member
from tests.domain.factories import TOKEN
from tests.service._status import field_violations
from tests.service.claims_support import (
    ATOMIC,
    CPAM,
    FRAUD,
    MUT_A,
    MUT_B,
    count,
    journal,
    pb_line,
    real_env,
    stub,
    upload,
)
from tests.service.conftest import GatewayEnv, GatewayFactory

CONTROL = common_pb2.PURPOSE_CONTROL


@pytest.fixture
async def env(gateway_factory: GatewayFactory) -> GatewayEnv:
    return await real_env(gateway_factory)


def check(line: claims_pb2.ClaimLine, purpose: int = FRAUD) -> claims_pb2.CheckClaimRequest:
    return claims_pb2.CheckClaimRequest(purpose=purpose, claim_line=line)


def list_req(**kw: Any) -> claims_pb2.ListAlertsRequest:
    return claims_pb2.ListAlertsRequest(purpose=kw.pop("purpose", FRAUD), **kw)


def get_req(name: str, purpose: int = FRAUD) -> claims_pb2.GetAlertRequest:
    return claims_pb2.GetAlertRequest(purpose=purpose, name=name)


async def _phantoms(env: GatewayEnv, member: str = MUT_A, n: int = 1) -> list[claims_pb2.Alert]:
    """``n`` AMC lines with no AMO side: each raises a PHANTOM_COMPLEMENT alert."""
    lines = [pb_line("lens", "AMC", member_reference=f"P{i}", care_date=f"2026-{1 + i:02d}-10")
             for i in range(n)]  # fmt: skip
    await upload(env, member, [lines])
    return list((await stub(env, member).ListAlerts(list_req())).alerts)


def _outbox(env: GatewayEnv, member: str) -> list[Any]:
    envelope = env.gateway.deps.keys.envelope
    return [n for n in env.db.run_sync(lambda s: notifications_after(s, member, 0, 1000, envelope))
            if n.kind == "ALERT"]  # fmt: skip


# -- CheckClaim ----------------------------------------------------------------------------------


async def test_check_claim_scores_one_line_before_payment_without_storing_it(
    env: GatewayEnv,
) -> None:
    before = count(env, "claim_lines"), count(env, "alerts")
    reply = await stub(env, MUT_A).CheckClaim(check(pb_line("lens", "AMC")))
    assert reply.score > 0 and reply.alert_level >= common_pb2.ALERT_LEVEL_LOW
    assert [r.code for r in reply.reasons] == ["PHANTOM_COMPLEMENT"]
    assert reply.reasons[0].explanation and reply.reasons[0].contribution == reply.score
    assert reply.ruleset_version == "v1" and len(reply.ruleset_hash) == 64
    assert reply.policy_decision.allowed
    assert list(reply.policy_decision.rule_ids) == ["common-amc-pre-payment-check"]
    assert (count(env, "claim_lines"), count(env, "alerts")) == before
    [event] = journal(env, "CheckClaim")
    assert (event["decision"], event["outcome"], event["record_count"]) == ("allow", "OK", 1)
    assert event["subject_pseudonyms"] == [env.gateway.deps.keys.rekeyer.rekey(TOKEN)]


async def test_check_claim_sees_the_amo_side_already_uploaded(env: GatewayEnv) -> None:
    await upload(env, CPAM, [[pb_line("lens", "AMO")]])
    reply = await stub(env, MUT_A).CheckClaim(check(pb_line("lens", "AMC")))
    assert (reply.score, list(reply.reasons)) == (0, [])
    assert reply.alert_level == common_pb2.ALERT_LEVEL_NONE


@pytest.mark.parametrize(
    ("member", "request_", "code"),
    [
        (CPAM, check(pb_line("lens", "AMO")), grpc.StatusCode.PERMISSION_DENIED),
        (MUT_A, check(pb_line("lens", "AMO")), grpc.StatusCode.PERMISSION_DENIED),
        (MUT_A, check(pb_line("lens", "AMC"), CONTROL), grpc.StatusCode.PERMISSION_DENIED),
        (MUT_A, check(pb_line("lens", "AMC"), common_pb2.PURPOSE_UNSPECIFIED),
         grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["amo-has-no-pre-payment-check", "amc-checks-the-amo-side", "control-purpose",
         "no-purpose"],
)  # fmt: skip
async def test_check_claim_refusals(
    env: GatewayEnv, member: str, request_: claims_pb2.CheckClaimRequest, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub(env, member).CheckClaim(request_)
    assert e.value.code() == code
    [event] = journal(env, "CheckClaim")
    assert (event["decision"], event["outcome"]) == ("deny", code.name)


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        (None, ["claim_line"]),
        (pb_line("lens", "AMC", side=""), ["claim_line.side"]),
        (pb_line("lens", "AMC", quantity=0), ["claim_line.quantity"]),
        (pb_line("lens", "AMC", tooth=11, act_code="123"),
         ["claim_line.act_code", "claim_line.tooth"]),
    ],
    ids=["missing-line", "missing-side", "quantity", "two-fields"],
)  # fmt: skip
async def test_check_claim_invalid_line_names_each_field(
    env: GatewayEnv, line: claims_pb2.ClaimLine | None, fields: list[str]
) -> None:
    request = claims_pb2.CheckClaimRequest(purpose=FRAUD)
    if line is not None:
        request.claim_line.CopyFrom(line)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub(env, MUT_A).CheckClaim(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(f for f, _ in field_violations(e.value)) == fields


class NarrowView:
    """The real bundle with some view fields removed (as a stricter bundle would)."""

    def __init__(self, drop: set[str]) -> None:
        self.inner, self.drop = EnginePolicyHook.load("current-law"), drop

    @property
    def bundle_hash(self) -> str:
        return self.inner.bundle_hash

    def decide(self, member: Member, action: str, purpose: str, rtype: str, rid: str,
               attributes: Mapping[str, Any] | None = None) -> Decision:  # fmt: skip
        d = self.inner.decide(member, action, purpose, rtype, rid, attributes)
        return replace(d, view=d.view - self.drop)


async def test_check_claim_answer_is_minimised_by_the_view(
    gateway_factory: GatewayFactory,
) -> None:
    env = await gateway_factory(policy=NarrowView({"reason_codes", "scoring_version"}))
    reply = await stub(env, MUT_A).CheckClaim(check(pb_line("lens", "AMC")))
    assert reply.score > 0 and reply.alert_level != common_pb2.ALERT_LEVEL_UNSPECIFIED
    assert (list(reply.reasons), reply.ruleset_version, reply.ruleset_hash) == ([], "", "")


# -- ListAlerts / GetAlert -----------------------------------------------------------------------


async def test_an_alert_is_listed_and_got_by_its_own_member_only(env: GatewayEnv) -> None:
    [alert] = await _phantoms(env)
    assert alert.name.startswith("alerts/al_") and alert.member_reference == "P0"
    assert alert.sector == common_pb2.SECTOR_OPTIQUE and alert.score > 0
    assert [r.code for r in alert.reasons] == ["PHANTOM_COMPLEMENT"]
    assert alert.ruleset_version == "v1" and alert.HasField("create_time")
    assert not alert.HasField("care_date")  # not in the bundle's alert view
    assert await stub(env, MUT_A).GetAlert(get_req(alert.name)) == alert
    assert list((await stub(env, MUT_B).ListAlerts(list_req())).alerts) == []
    assert list((await stub(env, CPAM).ListAlerts(list_req())).alerts) == []
    for member in (MUT_B, CPAM):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub(env, member).GetAlert(get_req(alert.name))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    events = journal(env, "GetAlert")
    assert [(e["member_id"], e["decision"], e["outcome"]) for e in events] == [
        (MUT_A, "allow", "OK"),
        (MUT_B, "deny", "NOT_FOUND"),
        (CPAM, "deny", "NOT_FOUND"),
    ]
    assert events[0]["record_refs"] == [alert.name] and len(events[0]["subject_pseudonyms"]) == 1
    listed = journal(env, "ListAlerts")
    assert listed[0]["record_refs"] == [alert.name] and listed[0]["record_count"] == 1


@pytest.mark.parametrize(
    ("name", "code", "fields"),
    [
        ("alerts/12", grpc.StatusCode.INVALID_ARGUMENT, ["name"]),
        ("suspicions/al_aaaaaaaaaaaaaaaaaaaaaaaaaa", grpc.StatusCode.INVALID_ARGUMENT, ["name"]),
        ("alerts/al_aaaaaaaaaaaaaaaaaaaaaaaaaa", grpc.StatusCode.NOT_FOUND, []),
    ],
)
async def test_get_alert_refusals(
    env: GatewayEnv, name: str, code: grpc.StatusCode, fields: list[str]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub(env, MUT_A).GetAlert(get_req(name))
    assert e.value.code() == code and [f for f, _ in field_violations(e.value)] == fields


@pytest.mark.parametrize(
    ("member", "purpose", "code"),
    [
        ("cpam-audit", FRAUD, grpc.StatusCode.PERMISSION_DENIED),  # no analyst role
        (MUT_A, common_pb2.PURPOSE_COMPLAINT, grpc.StatusCode.PERMISSION_DENIED),
        (MUT_A, common_pb2.PURPOSE_UNSPECIFIED, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_list_alerts_refusals(
    env: GatewayEnv, member: str, purpose: int, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub(env, member).ListAlerts(list_req(purpose=purpose))
    assert e.value.code() == code


async def test_list_alerts_pages_newest_first_with_tokens_bound_to_filters(
    env: GatewayEnv,
) -> None:
    every = await _phantoms(env, n=3)
    s = stub(env, MUT_A)
    first = await s.ListAlerts(list_req(page_size=2))
    second = await s.ListAlerts(list_req(page_size=2, page_token=first.next_page_token))
    assert [a.name for a in [*first.alerts, *second.alerts]] == [a.name for a in every]
    assert [a.member_reference for a in every] == ["P2", "P1", "P0"]  # newest first
    assert first.next_page_token and not second.next_page_token
    for bad in (
        list_req(page_token=first.next_page_token, sector=common_pb2.SECTOR_AUDIO),
        list_req(page_token=first.next_page_token[:-2] + "xx"),
        list_req(page_size=-1),
        list_req(sector=42),
        list_req(minimum_alert_level=42),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await s.ListAlerts(bad)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Another member cannot replay the token (the token is bound to its member).
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub(env, MUT_B).ListAlerts(list_req(page_token=first.next_page_token))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_alerts_filters_by_sector_level_and_creation_time(env: GatewayEnv) -> None:
    await _phantoms(env, n=2)
    s = stub(env, MUT_A)
    assert len((await s.ListAlerts(list_req(sector=common_pb2.SECTOR_OPTIQUE))).alerts) == 2
    assert len((await s.ListAlerts(list_req(sector=common_pb2.SECTOR_AUDIO))).alerts) == 0
    level = (await s.ListAlerts(list_req())).alerts[0].alert_level
    assert len((await s.ListAlerts(list_req(minimum_alert_level=level))).alerts) == 2
    if level < common_pb2.ALERT_LEVEL_HIGH:
        above = list_req(minimum_alert_level=level + 1)
        assert len((await s.ListAlerts(above)).alerts) == 0
    now = datetime.now(UTC)
    past, future = list_req(), list_req()
    past.create_time_range.end_time.FromDatetime(now - timedelta(days=1))
    future.create_time_range.start_time.FromDatetime(now + timedelta(days=1))
    assert len((await s.ListAlerts(past)).alerts) == 0
    assert len((await s.ListAlerts(future)).alerts) == 0
    around = list_req()
    around.create_time_range.start_time.FromDatetime(now - timedelta(hours=1))
    around.create_time_range.end_time.FromDatetime(now + timedelta(hours=1))
    assert len((await s.ListAlerts(around)).alerts) == 2


async def test_a_withdrawn_alert_is_neither_listed_nor_found(env: GatewayEnv) -> None:
    [alert] = await _phantoms(env)
    await upload(env, CPAM, [[pb_line("lens", "AMO", care_date="2026-01-10")]])  # the AMO side
    assert list((await stub(env, MUT_A).ListAlerts(list_req())).alerts) == []
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub(env, MUT_A).GetAlert(get_req(alert.name))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_amo_never_gets_an_alert_built_from_amc_data(env: GatewayEnv) -> None:
    # common-no-amc-data-in-amo-alerts: the AMO's line scores AMOUNT_MISMATCH from the AMC
    # side; its own class A frame above the cap is the AMO's own evidence.
    await upload(env, MUT_A, [[pb_line("lens", "AMC", unit_price_cents=12100, amc_paid_cents=100)]])
    frame = pb_line("frame", "AMO", member_reference="F", product_class="A",
                    unit_price_cents=3001)  # fmt: skip
    await upload(env, CPAM, [[pb_line("lens", "AMO"), frame]])
    alerts = (await stub(env, CPAM).ListAlerts(list_req())).alerts
    assert [(a.member_reference, [r.code for r in a.reasons]) for a in alerts] == [
        ("F", ["PRICE_ABOVE_CAP"])]  # fmt: skip
    assert [n.payload["member_reference"] for n in _outbox(env, CPAM)] == ["F"]


# -- delivery ---------------------------------------------------------------------------------


async def test_a_raised_alert_is_in_its_members_outbox_as_the_minimised_alert(
    env: GatewayEnv,
) -> None:
    [alert] = await _phantoms(env)
    [note] = _outbox(env, MUT_A)
    assert note.subject_ref == alert.name
    assert note.payload == json_format.MessageToDict(alert, preserving_proto_field_name=True)
    assert _outbox(env, MUT_B) == [] and _outbox(env, CPAM) == []


async def test_an_alert_changed_by_another_upload_is_delivered_again(env: GatewayEnv) -> None:
    [before] = await _phantoms(env)
    await upload(env, MUT_B, [[pb_line("lens", "AMC", member_reference="B-SECRET",
                                       amc_reference="DRE-B-SECRET")]])  # fmt: skip
    [after] = (await stub(env, MUT_A).ListAlerts(list_req())).alerts
    assert after.name == before.name and after.score > before.score
    assert {r.code for r in after.reasons} == {"PHANTOM_COMPLEMENT", "DOUBLE_BILLING_AMC"}
    first, second = _outbox(env, MUT_A)
    assert first.payload == json_format.MessageToDict(before, preserving_proto_field_name=True)
    assert second.payload == json_format.MessageToDict(after, preserving_proto_field_name=True)
    for secret in ("mut-beta", "B-SECRET", "DRE-B-SECRET"):
        assert secret not in repr(second.payload)
    [b_note] = _outbox(env, MUT_B)
    assert "mut-alpha" not in repr(b_note.payload) and "P0" not in repr(b_note.payload)


async def test_a_rolled_back_upload_delivers_nothing(env: GatewayEnv) -> None:
    lines = [pb_line("lens", "AMC", member_reference="P0"), pb_line("lens", "AMC", quantity=0)]
    final = (await upload(env, MUT_A, [lines], mode=ATOMIC))[-1]
    assert final.outcome == claims_pb2.UPLOAD_OUTCOME_ROLLED_BACK
    assert _outbox(env, MUT_A) == [] and count(env, "alerts") == 0


async def test_the_alert_reaches_the_member_on_its_notification_stream(env: GatewayEnv) -> None:
    [alert] = await _phantoms(env)
    feed = suspicions_pb2_grpc.SuspicionServiceStub(env.channel(MUT_A))  # type: ignore[no-untyped-call]
    call = feed.StreamNotifications(
        suspicions_pb2.StreamNotificationsRequest(purpose=FRAUD, after_sequence=0)
    )
    note = await asyncio.wait_for(call.read(), 30)
    call.cancel()
    assert note.kind == suspicions_pb2.NOTIFICATION_KIND_ALERT
    assert note.alert == alert
