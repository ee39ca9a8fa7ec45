"""Broken object-level authorisation attempts and the two legal bundles, over mTLS.

An AMC never sees a suspicion it has no need-to-know relation with, nor learns it exists; the
AMC -> AMO direction is closed under current-law (CSS L.114-9) and open under fraud-bill-2025
(draft L.114-9-1); what leaves is always inside the decision's minimisation view.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from gateway._proto.vigie.v1 import claims_pb2, common_pb2
from gateway.server._policy import EnginePolicyHook
from policy import PolicyEngine, bundle_path
from tests.service._status import error_info, rich_status
from tests.service._suspicions_service_helpers import (
    CONTROL,
    TOKEN_B1,
    TOKEN_B2,
    Exchange,
    S,
    count,
    journal,
    rpc_error,
)
from tests.service.conftest import GatewayFactory


async def _exchange(gateway_factory: GatewayFactory, bundle: str) -> Exchange:
    return Exchange(
        await gateway_factory(policy=EnginePolicyHook.load(bundle), policy_bundle=bundle)
    )


@pytest.fixture
async def ex(gateway_factory: GatewayFactory) -> Exchange:
    return await _exchange(gateway_factory, "current-law")


@pytest.fixture
async def bill(gateway_factory: GatewayFactory) -> Exchange:
    return await _exchange(gateway_factory, "fraud-bill-2025")


async def test_amc_asking_by_id_for_a_suspicion_it_may_not_see_gets_not_found_like_a_missing_one(
    ex: Exchange,
) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    assert (await ex.get("mut-alpha", created.name)).name == created.name  # it covers B1
    hidden = await rpc_error(ex.get("mut-beta", created.name))
    missing = await rpc_error(ex.get("mut-beta", "suspicions/s_" + "a" * 26))
    assert hidden.code() == missing.code() == grpc.StatusCode.NOT_FOUND
    assert rich_status(hidden) == rich_status(missing)  # same message, same details
    assert error_info(hidden).metadata == {}  # no rule id: nothing hints at a decision
    events = journal(ex.env, "/GetSuspicion")
    assert [(e["member_id"], e["outcome"]) for e in events] == [
        ("mut-alpha", "OK"),
        ("mut-beta", "NOT_FOUND"),
        ("mut-beta", "NOT_FOUND"),
    ]
    assert events[1]["decision"] == "deny"


async def test_amc_never_reads_a_suspicion_before_qualification_even_if_it_covers_the_person(
    ex: Exchange,
) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    e = await rpc_error(ex.get("mut-alpha", created.name))
    assert e.code() == grpc.StatusCode.NOT_FOUND


async def test_listing_never_leaks_what_the_caller_may_not_see(ex: Exchange) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    ex.cover("mut-beta", TOKEN_B2)
    about_b1 = [await ex.create("cpam-75") for _ in range(3)]
    about_b2 = await ex.create("cpam-75", subject=S.SuspicionSubject(beneficiary_token=TOKEN_B2))
    unqualified_b1 = await ex.create("cpam-75")
    for s in [*about_b1, about_b2]:
        await ex.move("cpam-75", s.name, S.SUSPICION_STATUS_QUALIFIED)
    stub = ex.stub("mut-alpha")
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListSuspicions(
            S.ListSuspicionsRequest(purpose=CONTROL, page_size=1, page_token=token)
        )
        assert len(page.suspicions) <= 1
        seen.extend(s.name for s in page.suspicions)
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(s.name for s in about_b1)  # newest first, one per page
    assert about_b2.name not in seen and unqualified_b1.name not in seen
    beta = await ex.stub("mut-beta").ListSuspicions(S.ListSuspicionsRequest(purpose=CONTROL))
    assert [s.name for s in beta.suspicions] == [about_b2.name]
    # A page token of mut-alpha's listing means nothing to mut-beta.
    first = await stub.ListSuspicions(S.ListSuspicionsRequest(purpose=CONTROL, page_size=1))
    e = await rpc_error(
        ex.stub("mut-beta").ListSuspicions(
            S.ListSuspicionsRequest(purpose=CONTROL, page_size=1, page_token=first.next_page_token)
        )
    )
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_listing_filters_by_sector_status_level_and_date(ex: Exchange) -> None:
    optique = await ex.create("cpam-75")
    audio = await ex.create("cpam-75", sector=common_pb2.SECTOR_AUDIO, estimated_amount_cents=1000)
    await ex.move("cpam-75", audio.name, S.SUSPICION_STATUS_QUALIFIED)
    stub = ex.stub("cpam-75")

    async def names(**kw: Any) -> list[str]:
        page = await stub.ListSuspicions(S.ListSuspicionsRequest(purpose=CONTROL, **kw))
        return [s.name for s in page.suspicions]

    assert await names() == [audio.name, optique.name]  # newest first
    assert await names(sector=common_pb2.SECTOR_AUDIO) == [audio.name]
    assert await names(status=S.SUSPICION_STATUS_SUBMITTED) == [optique.name]
    assert await names(minimum_alert_level=common_pb2.ALERT_LEVEL_HIGH) == [optique.name]
    assert await names(minimum_alert_level=common_pb2.ALERT_LEVEL_LOW) == [
        audio.name,
        optique.name,
    ]
    window: dict[str, Any] = {"create_time_range": {"start_time": audio.create_time}}
    assert await names(**window) == [audio.name]
    window = {"create_time_range": {"end_time": audio.create_time}}
    assert await names(**window) == [optique.name]


async def test_an_amc_cannot_filter_on_a_level_its_view_does_not_include(ex: Exchange) -> None:
    e = await rpc_error(
        ex.stub("mut-alpha").ListSuspicions(
            S.ListSuspicionsRequest(
                purpose=CONTROL, minimum_alert_level=common_pb2.ALERT_LEVEL_HIGH
            )
        )
    )
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_another_amcs_notifications_never_arrive(ex: Exchange) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    alpha, beta = ex.stream("mut-alpha"), ex.stream("mut-beta")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_DISMISSED)
    assert [n.kind for n in await alpha.take(2)] == [
        S.NOTIFICATION_KIND_SHARED,
        S.NOTIFICATION_KIND_RETRACTED,
    ]
    # A marker in mut-beta's own feed: if anything of mut-alpha's had reached mut-beta's
    # stream, it would come first.
    marker = claims_pb2.Alert(name="alerts/a_marker", score=1)
    ex.enqueue_alert("mut-beta", marker)
    ex.wake("mut-beta")
    beta_stream = ex.stream("mut-beta")
    first = await beta_stream.next()
    assert first.kind == S.NOTIFICATION_KIND_ALERT and first.alert.name == marker.name
    [beta_first] = [await beta.next()]
    assert beta_first.alert.name == marker.name
    for feed in (alpha, beta, beta_stream):
        feed.cancel()
    # Acknowledging or naming another member's notification: not found.
    e = await rpc_error(ex.ack("mut-beta", f"members/mut-alpha/notifications/{1}"))
    assert e.code() == grpc.StatusCode.NOT_FOUND


async def test_amc_to_amo_report_is_closed_under_current_law_with_the_rule_id(
    ex: Exchange,
) -> None:
    e = await rpc_error(ex.create("mut-alpha", case_reference="MUTA-1"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_info(e)
    assert info.reason == "POLICY_DENIED"
    assert "cl-no-amc-to-amo-report" in info.metadata["rule_ids"].split(",")
    assert "L.114-9" in info.metadata["legal_refs"]
    assert count(ex.env, "suspicions") == 0 and count(ex.env, "idempotency_keys") == 0
    [event] = journal(ex.env, "/CreateSuspicion")
    assert (event["decision"], event["outcome"]) == ("deny", "PERMISSION_DENIED")
    assert "cl-no-amc-to-amo-report" in str(event["rule_ids"])


async def test_amc_report_reaches_the_insureds_fund_under_the_fraud_bill(bill: Exchange) -> None:
    bill.cover("cpam-75", TOKEN_B2)
    bill.cover("mut-beta", TOKEN_B2)  # covers the person too, but is another AMC
    created = await bill.create(
        "mut-alpha",
        subject=S.SuspicionSubject(beneficiary_token=TOKEN_B2),
        case_reference="MUTA-2026-3",
    )
    assert created.submitter == "members/mut-alpha"
    assert created.facts_summary == ""  # the AMC view of the bill has no free text
    fund = bill.stream("cpam-75")
    await bill.move("mut-alpha", created.name, S.SUSPICION_STATUS_QUALIFIED)
    shared = await fund.next()
    assert shared.kind == S.NOTIFICATION_KIND_SHARED and shared.suspicion.name == created.name
    read = await bill.get("cpam-75", created.name)
    assert read.facts_summary and read.submitter == "members/mut-alpha"
    assert read.case_reference != "MUTA-2026-3"  # never the submitter's own reference
    e = await rpc_error(bill.get("mut-beta", created.name))
    assert e.code() == grpc.StatusCode.NOT_FOUND  # another AMC's report: never visible
    fund.cancel()


async def test_amo_cannot_move_an_amc_report_it_received(bill: Exchange) -> None:
    bill.cover("cpam-75", TOKEN_B2)
    created = await bill.create("mut-alpha", subject=S.SuspicionSubject(beneficiary_token=TOKEN_B2))
    await bill.move("mut-alpha", created.name, S.SUSPICION_STATUS_QUALIFIED)
    e = await rpc_error(bill.move("cpam-75", created.name, S.SUSPICION_STATUS_CONFIRMED))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(e).metadata["rule_ids"] == "default-deny"


# -- minimisation: no allowed response carries a field outside its view -----------------------

# Proto field of Suspicion -> the view field it discloses (None: carries no record data).
SOURCES: dict[str, str | None] = {
    "name": "id",
    "status": "status",
    "sector": "sector",
    "fraud_type": "fraud_type",
    "facts_summary": "facts_summary",
    "estimated_amount_cents": "estimated_amount_cents",
    "alert_level": "estimated_amount_cents",
    "evidence_refs": "evidence_refs",
    "case_reference": "own_reference",
    "related_claim_references": "own_reference",
    "submitter": "submitter_member",
    "status_history": "transitions",
    "create_time": "created_at",
    "update_time": "updated_at",
    "expire_time": "status",
    "minimisation_view": None,
    "subject.beneficiary_concerned": "subject_beneficiary",
    "subject.provider_rpps": "subject_provider_rpps",
    "subject.provider_am_number": "subject_provider_am_number",
    "subject.provider_finess": "subject_provider_finess",
}


def disclosed(message: Any) -> set[str]:
    """The view fields a Suspicion message discloses (every set field, through SOURCES)."""
    out: set[str] = set()
    for field, _ in message.ListFields():
        if field.name == "subject":
            paths = [f"subject.{f.name}" for f, _ in message.subject.ListFields()]
        else:
            paths = [field.name]
        for path in paths:
            assert path in SOURCES, f"unmapped field {path}: extend the test's table"
            if SOURCES[path] is not None:
                out.add(str(SOURCES[path]))
    return out


@pytest.mark.parametrize("bundle", ["current-law", "fraud-bill-2025"])
async def test_no_allowed_response_carries_a_field_outside_its_view(
    gateway_factory: GatewayFactory, bundle: str
) -> None:
    ex = await _exchange(gateway_factory, bundle)
    engine = PolicyEngine.load(bundle_path(bundle))
    ex.cover("mut-alpha", TOKEN_B1)
    ex.cover("cpam-75", TOKEN_B2)
    responses: list[tuple[str, str, Any]] = []  # (reader kind, purpose, Suspicion)
    reports = [await ex.create("cpam-75")]
    responses.append(("AMO", "control", reports[0]))
    if bundle == "fraud-bill-2025":
        amc = await ex.create("mut-alpha", subject=S.SuspicionSubject(beneficiary_token=TOKEN_B2))
        responses.append(("AMC", "control", amc))
        reports.append(amc)
    feeds = {"mut-alpha": ex.stream("mut-alpha"), "cpam-75": ex.stream("cpam-75")}
    for report in reports:
        owner = report.submitter.removeprefix("members/")
        moved = await ex.move(owner, report.name, S.SUSPICION_STATUS_QUALIFIED)
        responses.append(("AMO" if owner == "cpam-75" else "AMC", "control", moved))
    for member, kind in (("mut-alpha", "AMC"), ("cpam-75", "AMO")):
        for purpose in (CONTROL, common_pb2.PURPOSE_COMPLAINT, common_pb2.PURPOSE_LITIGATION):
            page = await ex.stub(member).ListSuspicions(S.ListSuspicionsRequest(purpose=purpose))
            label = str(common_pb2.Purpose.Name(purpose)).removeprefix("PURPOSE_").lower()
            for s in page.suspicions:
                responses.append((kind, label, s))
                got = await ex.stub(member).GetSuspicion(
                    S.GetSuspicionRequest(purpose=purpose, name=s.name)
                )
                responses.append((kind, label, got))
    expected_shared = {
        "current-law": {"mut-alpha": 1},
        "fraud-bill-2025": {"mut-alpha": 1, "cpam-75": 1},
    }
    for member, n in expected_shared[bundle].items():
        for notification in await feeds[member].take(n):
            kind = "AMC" if member.startswith("mut") else "AMO"
            responses.append((kind, "control", notification.suspicion))
    for feed in feeds.values():
        feed.cancel()
    assert len(responses) >= 6
    for kind, purpose, message in responses:
        view = engine.view("suspicion", kind, purpose)
        assert disclosed(message) <= view, (kind, purpose, disclosed(message) - view)
        assert message.minimisation_view == f"{bundle}/suspicion/{kind}/{purpose}"
    # And the check bites: the AMO's full view would not fit an AMC's.
    amo_full = disclosed(reports[0])
    assert "facts_summary" in amo_full and not amo_full <= engine.view(
        "suspicion", "AMC", "control"
    )


async def test_create_under_a_purpose_the_bundle_does_not_allow_is_permission_denied(
    ex: Exchange,
) -> None:
    e = await rpc_error(
        ex.stub("cpam-75").CreateSuspicion(
            S.CreateSuspicionRequest(
                purpose=common_pb2.PURPOSE_FRAUD_DETECTION,
                request_id=str(uuid.uuid4()),
                suspicion=S.Suspicion(
                    subject=S.SuspicionSubject(beneficiary_token=TOKEN_B1),
                    sector=common_pb2.SECTOR_OPTIQUE,
                    fraud_type=common_pb2.FRAUD_TYPE_CLASS_SHIFT,
                    facts_summary="Classe B facturée en classe A.",
                    estimated_amount_cents=100,
                    case_reference="C-1",
                ),
            )
        )
    )
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(e).metadata["rule_ids"] == "default-deny"
    assert count(ex.env, "suspicions") == 0


def _claim_line(ex: Exchange, member: str, reference: str, token: str, rpps: str) -> None:
    """A claim line as the claims service stores it (only the columns relations read matter)."""
    import datetime as dt

    from gateway.store._claims_models import ClaimLineRow

    row = ClaimLineRow(
        member_id=member,
        member_reference=reference,
        side="AMC",
        sector="optique",
        beneficiary=ex.pseudonym(token),
        birth_year=2020,
        provider_rpps=rpps,
        provider_am_number="",
        provider_finess="",
        prescriber_rpps="",
        prescriber_specialty="",
        prescription_date=None,
        care_date=dt.date(2026, 3, 1),
        act_code="2290000",
        grouping_code="VERRE_COMPLEXE",
        product_class="B",
        laterality="",
        tooth=0,
        quantity=1,
        unit_price_cents=30000,
        amount_billed_cents=30000,
        amo_base_cents=5,
        amo_paid_cents=3,
        amo_claim_number="",
        amc_paid_cents=29997,
        amc_reference=reference,
        received_at=dt.datetime.now(dt.UTC),
        match_state="unmatched",
        matched_line_id=None,
    )
    ex.env.db.run_sync(lambda s: s.add(row))


async def test_each_amc_sees_only_its_own_claim_references_of_a_shared_suspicion(
    bill: Exchange,
) -> None:
    from tests.service._suspicions_service_helpers import RPPS_P

    _claim_line(bill, "mut-alpha", "MUTA-L1", TOKEN_B1, RPPS_P)
    _claim_line(bill, "mut-beta", "MUTB-L1", TOKEN_B1, RPPS_P)
    _claim_line(bill, "mut-beta", "MUTB-L2", TOKEN_B2, RPPS_P)  # another person, same provider
    created = await bill.create("cpam-75")  # about B1 billed by P
    await bill.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    alpha = await bill.get("mut-alpha", created.name)  # covers B1 through its claims
    beta = await bill.get("mut-beta", created.name)
    assert list(alpha.related_claim_references) == ["MUTA-L1"]
    assert list(beta.related_claim_references) == ["MUTB-L1"]
    assert alpha.case_reference != beta.case_reference  # each its own reference
    amo = await bill.get("cpam-75", created.name)
    assert list(amo.related_claim_references) == []  # the AMO has no claim line here
