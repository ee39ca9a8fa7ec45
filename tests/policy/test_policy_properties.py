"""Invariants over generated requests (hypothesis): the engine never raises, never returns a
field outside the declared view, keeps AMC need-to-know, and keeps L.114-9 one-way."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import BUNDLED, STATUSES, AccessRequest, PolicyEngine
from policy.testing import (
    access_requests,
    amc_need_to_know,
    amc_to_amo_closed,
    view_within_declared,
)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("bundle", BUNDLED)
@PROPERTY_SETTINGS
@given(req=access_requests())
def test_no_allowed_request_returns_a_field_outside_its_view(
    engines: dict[str, PolicyEngine], bundle: str, req: AccessRequest
) -> None:
    engine = engines[bundle]
    decision = engine.decide(req)  # never raises for any generated request
    assert view_within_declared(engine, req, decision) == []
    assert decision.bundle_hash == engine.bundle_hash
    assert decision.rule_ids
    assert len(decision.legal_refs) <= len(decision.rule_ids)
    if not decision.allowed:
        assert decision.view == frozenset()


@pytest.mark.parametrize("bundle", BUNDLED)
@PROPERTY_SETTINGS
@given(req=access_requests())
def test_amc_never_sees_beyond_need_to_know(
    engines: dict[str, PolicyEngine], bundle: str, req: AccessRequest
) -> None:
    engine = engines[bundle]
    assert amc_need_to_know(engine, req, engine.decide(req)) == []


@PROPERTY_SETTINGS
@given(req=access_requests())
def test_current_law_amc_to_amo_direction_is_closed(
    engines: dict[str, PolicyEngine], req: AccessRequest
) -> None:
    engine = engines["current-law"]
    assert amc_to_amo_closed(engine, req, engine.decide(req)) == []


_ROLES = st.frozensets(
    st.sampled_from(["submitter", "analyst", "compliance_officer", "operator"]), max_size=4
)
_FACTS = st.fixed_dictionaries(
    {
        "principal_covers_beneficiary": st.booleans(),
        "principal_paid_provider": st.booleans(),
        "principal_is_submitter": st.booleans(),
        "principal_is_recipient": st.booleans(),
    }
)
_SUSPICION_ACTIONS = [
    "CreateSuspicion",
    "GetSuspicion",
    "ListSuspicions",
    "TransitionSuspicion",
    "StreamNotifications",
    "AcknowledgeNotification",
]


@st.composite
def amc_submitted_suspicion_requests(draw: st.DrawFn) -> AccessRequest:
    """Every principal, action and purpose on a suspicion an AMC submitted (the dense corner)."""
    attrs: dict[str, Any] = {
        "submitter_member": draw(st.sampled_from(["mutuelle-a", "mutuelle-b"])),
        "submitter_kind": "AMC",
        "status": draw(st.sampled_from(STATUSES)),
        "sector": draw(st.sampled_from(["optique", "audio", "dentaire"])),
        "estimated_amount_cents": draw(st.integers(0, 10**9)),
        **draw(_FACTS),
    }
    return AccessRequest.model_validate(
        {
            "principal": {
                "member_id": draw(st.sampled_from(["cpam-75", "mutuelle-a", "mutuelle-b"])),
                "kind": draw(st.sampled_from(["AMO", "AMC"])),
                "roles": draw(_ROLES),
            },
            "action": draw(st.sampled_from(_SUSPICION_ACTIONS)),
            "purpose": draw(st.sampled_from(["control", "complaint", "litigation"])),
            "resource": {"type": "suspicion", "id": "s-9", "attributes": attrs},
        },
        strict=False,
    )


@PROPERTY_SETTINGS
@given(req=amc_submitted_suspicion_requests())
def test_current_law_denies_everything_on_amc_submitted_suspicions(
    engines: dict[str, PolicyEngine], req: AccessRequest
) -> None:
    decision = engines["current-law"].decide(req)
    assert not decision.allowed
    assert "cl-no-amc-submitted-suspicion" in decision.rule_ids


@PROPERTY_SETTINGS
@given(req=amc_submitted_suspicion_requests())
def test_fraud_bill_amc_reports_reach_only_the_submitter_and_the_amo(
    engines: dict[str, PolicyEngine], req: AccessRequest
) -> None:
    decision = engines["fraud-bill-2025"].decide(req)
    if decision.allowed and req.principal.kind == "AMC":
        # Another AMC's report (and so its identity as submitter) is never visible.
        assert req.resource.attributes["principal_is_submitter"] is True


@pytest.mark.parametrize("bundle", BUNDLED)
@PROPERTY_SETTINGS
@given(
    rtype=st.sampled_from(["suspicion", "alert", "claim_check", "journal_event", "member"]),
    kind=st.sampled_from(["AMO", "AMC"]),
    purpose=st.sampled_from(["fraud_detection", "control", "audit", "operations", "pricing"]),
    fields=st.dictionaries(st.text(min_size=1, max_size=24), st.integers(), max_size=12),
    extra=st.sampled_from(["facts_summary", "act_codes", "id", "status", "recipients"]),
)
def test_minimise_keeps_only_view_fields(
    engines: dict[str, PolicyEngine],
    bundle: str,
    rtype: str,
    kind: str,
    purpose: str,
    fields: dict[str, int],
    extra: str,
) -> None:
    engine = engines[bundle]
    record = {**fields, extra: 1}
    out = engine.minimise(rtype, kind, purpose, record)
    assert set(out) <= engine.view(rtype, kind, purpose)
    assert all(out[k] == record[k] for k in out)
