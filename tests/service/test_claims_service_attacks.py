"""Named cross-AMC attacks on ClaimService over real mTLS (SQLite and PostgreSQL).

The invariant (DESIGN.md): an AMC never sees another AMC's data, nor learns which AMC holds a
claim, nor that another AMC's line exists beyond the reason "duplicate across AMCs". Each case
sets up a victim AMC (``mut-beta``) holding lines about the same beneficiary as the attacker
(``mut-alpha``), runs the attack, and checks every response the attacker got (CheckClaim,
ListAlerts, GetAlert, its upload reports, its notifications) for the victim's identity and
references, and that the answer is the same whatever the victim holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from gateway import pki
from gateway._proto.vigie.v1 import claims_pb2
from gateway.domain._suspicion_exchange import notifications_after
from tests.service.claims_support import (
    CPAM,
    FRAUD,
    MUT_A,
    MUT_B,
    SIDE_OF,
    pb_line,
    real_env,
    stub,
    upload,
)
from tests.service.conftest import GatewayEnv, GatewayFactory, register_members

SECRETS = ("mut-beta", "MUT-BETA", "mut-gamma", "B-SECRET", "C-SECRET", "DRE-B-SECRET")


def _add_member(env: GatewayEnv, member_id: str) -> None:
    """A third AMC (certificate from the test CA, registered with submitter/analyst roles)."""
    if not (env.pki_dir / "members" / f"{member_id}.crt").exists():
        pki.issue_member(env.pki_dir, member_id, "AMC", ["submitter", "analyst"])
    register_members(env.db, env.pki_dir, {member_id: ("AMC", ("submitter", "analyst"))})
    SIDE_OF[member_id] = "AMC"


def _victim(**kw: Any) -> claims_pb2.ClaimLine:
    values: dict[str, Any] = {"member_reference": "B-SECRET", "amc_reference": "DRE-B-SECRET"}
    values.update(kw)
    return pb_line("lens", "AMC", **values)


def _assert_clean(*messages: Any) -> None:
    for m in messages:
        raw = m.SerializeToString() if hasattr(m, "SerializeToString") else repr(m).encode()
        for secret in SECRETS:
            assert secret.encode() not in raw, secret


async def _check(env: GatewayEnv, **kw: Any) -> claims_pb2.CheckClaimResponse:
    line = pb_line("lens", "AMC", member_reference="A-1", **kw)
    reply: claims_pb2.CheckClaimResponse = await stub(env, MUT_A).CheckClaim(
        claims_pb2.CheckClaimRequest(purpose=FRAUD, claim_line=line)
    )
    return reply


def _answer(reply: claims_pb2.CheckClaimResponse) -> tuple[int, list[tuple[str, str, int]]]:
    return reply.score, [(r.code, r.explanation, r.contribution) for r in reply.reasons]


async def attack_probe_references_through_duplicates(env: GatewayEnv) -> None:
    """Upload a line under the victim's member reference: it must not count as 'already stored'."""
    await upload(env, MUT_B, [[_victim()]])
    final = (await upload(env, MUT_A, [[pb_line("lens", "AMC", member_reference="B-SECRET",
                                                 care_date="2025-06-01")]]))[-1]  # fmt: skip
    assert (final.lines_accepted, final.lines_duplicate) == (1, 0)


async def attack_count_other_insurers_through_the_check(env: GatewayEnv) -> None:
    """The double-billing reason is the same whether one or two other AMCs hold the item."""
    await upload(env, CPAM, [[pb_line("lens", "AMO")]])
    await upload(env, MUT_B, [[_victim()]])
    one = await _check(env)
    _add_member(env, "mut-gamma")
    await upload(env, "mut-gamma", [[_victim(member_reference="C-SECRET")]])
    two = await _check(env)
    assert [r.code for r in one.reasons] == ["DOUBLE_BILLING_AMC"]
    assert _answer(one) == _answer(two)
    _assert_clean(one, two)


async def attack_learn_another_amcs_previous_equipment_through_the_check(
    env: GatewayEnv,
) -> None:
    """The victim paid glasses a year ago (no AMO side uploaded): no EARLY_RENEWAL for A."""
    await upload(env, CPAM, [[pb_line("lens", "AMO")]])
    baseline = await _check(env)
    await upload(env, MUT_B, [[_victim(care_date="2025-03-01", prescription_date="2025-02-01")]])
    after = await _check(env)
    assert _answer(after) == _answer(baseline)
    _assert_clean(after)


async def attack_read_the_victims_alert_by_name(env: GatewayEnv) -> None:
    """The victim's alert is NOT_FOUND, exactly like an alert that does not exist."""
    await upload(env, MUT_B, [[_victim()]])
    listed = await stub(env, MUT_B).ListAlerts(claims_pb2.ListAlertsRequest(purpose=FRAUD))
    [alert] = listed.alerts
    answers = []
    for name in (alert.name, "alerts/al_" + "a" * 26):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub(env, MUT_A).GetAlert(claims_pb2.GetAlertRequest(purpose=FRAUD, name=name))
        answers.append((e.value.code(), e.value.details()))
    assert answers[0] == answers[1] and answers[0][0] == grpc.StatusCode.NOT_FOUND


async def attack_alert_names_count_other_members_alerts(env: GatewayEnv) -> None:
    """Alert names are random: two of A's alerts around B's do not tell how many B got."""
    await upload(env, MUT_A, [[pb_line("lens", "AMC", member_reference="A-1")]])
    await upload(env, MUT_B, [[_victim(care_date="2025-05-01", prescription_date="2025-04-01")]])
    await upload(env, MUT_A, [[pb_line("lens", "AMC", member_reference="A-2",
                                       care_date="2025-09-01")]])  # fmt: skip
    alerts = (await stub(env, MUT_A).ListAlerts(claims_pb2.ListAlertsRequest(purpose=FRAUD))).alerts
    ids = [a.name.removeprefix("alerts/al_") for a in alerts]
    assert len(ids) == 2 and not any(i.isdigit() for i in ids)
    assert len({i[:6] for i in ids}) == 2  # not a counter with a common prefix


async def attack_learn_the_double_biller_from_alerts_and_notifications(env: GatewayEnv) -> None:
    """A's alert and its notifications name no other AMC, reference or DRE."""
    await upload(env, MUT_A, [[pb_line("lens", "AMC", member_reference="A-1")]])
    reports = await upload(env, MUT_B, [[_victim()]])
    s = stub(env, MUT_A)
    listed = await s.ListAlerts(claims_pb2.ListAlertsRequest(purpose=FRAUD))
    [alert] = listed.alerts
    assert "DOUBLE_BILLING_AMC" in {r.code for r in alert.reasons}
    got = await s.GetAlert(claims_pb2.GetAlertRequest(purpose=FRAUD, name=alert.name))
    envelope = env.gateway.deps.keys.envelope
    notes = env.db.run_sync(lambda x: notifications_after(x, MUT_A, 0, 100, envelope))
    _assert_clean(listed, got, *(n.payload for n in notes))
    for r in reports:  # and the victim's own upload reports name nobody else
        assert b"mut-alpha" not in r.SerializeToString() and b"A-1" not in r.SerializeToString()


async def attack_page_through_the_victims_alerts_with_its_token(env: GatewayEnv) -> None:
    """A page token the victim got cannot be replayed by the attacker."""
    for i in range(2):
        await upload(env, MUT_B, [[_victim(member_reference=f"B-SECRET-{i}",
                                           care_date=f"2025-0{3 + i}-01")]])  # fmt: skip
    page = await stub(env, MUT_B).ListAlerts(claims_pb2.ListAlertsRequest(purpose=FRAUD,
                                                                          page_size=1))  # fmt: skip
    assert page.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub(env, MUT_A).ListAlerts(
            claims_pb2.ListAlertsRequest(purpose=FRAUD, page_token=page.next_page_token)
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def attack_read_the_value_back_from_a_refusal(env: GatewayEnv) -> None:
    """A refused line's violations name the field and the rule, never the value sent."""
    nir = "253072B07300470"
    responses = await upload(env, MUT_A, [[pb_line("lens", "AMC", beneficiary_token=nir)]])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub(env, MUT_A).CheckClaim(claims_pb2.CheckClaimRequest(
            purpose=FRAUD, claim_line=pb_line("lens", "AMC", beneficiary_token=nir)))  # fmt: skip
    assert responses[-1].lines_rejected == 1
    for r in responses:
        assert nir.encode() not in r.SerializeToString()
    assert nir not in (e.value.details() or "")
    assert all(nir.encode() not in v for _, v in e.value.trailing_metadata() or ())


ATTACKS: dict[str, Callable[[GatewayEnv], Awaitable[None]]] = {
    name.removeprefix("attack_"): fn for name, fn in dict(globals()).items()
    if name.startswith("attack_")
}  # fmt: skip


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_cross_amc_attack_fails(gateway_factory: GatewayFactory, attack: str) -> None:
    env = await real_env(gateway_factory)
    await ATTACKS[attack](env)
