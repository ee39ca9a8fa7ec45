"""Engine behaviour: deny by default, forbid overrides permit, evaluation errors deny without
leaking data, and the bundle's views, threshold and retention."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from policy import (
    DEFAULT_DENY,
    EVALUATION_ERROR,
    RETENTION_CATEGORIES,
    AccessRequest,
    EvaluationError,
    PolicyEngine,
)

SUSPICION = {
    "submitter_member": "cpam-75",
    "submitter_kind": "AMO",
    "status": "qualified",
    "sector": "optique",
    "estimated_amount_cents": 150_000,
}


def request(
    *,
    kind: str = "AMC",
    member: str = "mutuelle-a",
    roles: tuple[str, ...] = ("analyst",),
    action: str = "GetSuspicion",
    purpose: str = "control",
    rtype: str = "suspicion",
    rid: str = "s-1",
    **attributes: Any,
) -> AccessRequest:
    attrs = {**SUSPICION, "principal_covers_beneficiary": True} if rtype == "suspicion" else {}
    attrs.update(attributes)
    attrs = {k: v for k, v in attrs.items() if v is not None}
    return AccessRequest.model_validate(
        {
            "principal": {"member_id": member, "kind": kind, "roles": roles},
            "action": action,
            "purpose": purpose,
            "resource": {"type": rtype, "id": rid, "attributes": attrs},
        },
        strict=False,
    )


@pytest.fixture
def current_law(engines: dict[str, PolicyEngine]) -> PolicyEngine:
    return engines["current-law"]


@pytest.fixture
def fraud_bill(engines: dict[str, PolicyEngine]) -> PolicyEngine:
    return engines["fraud-bill-2025"]


def test_allowed_decision_names_rule_legal_ref_view_and_bundle(current_law: PolicyEngine) -> None:
    d = current_law.decide(request())
    assert d.allowed
    assert d.rule_ids == ("cl-amc-informed-of-procedure",)
    assert d.legal_refs == (current_law.bundle.legal_refs["cl-amc-informed-of-procedure"],)
    assert "L.114-9" in d.legal_refs[0]
    assert d.view == current_law.view("suspicion", "AMC", "control")
    assert (d.bundle_name, d.bundle_hash) == ("current-law", current_law.bundle_hash)
    assert d.errors == ()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"action": "DeleteSuspicion"}, "unknown action"),
        ({"purpose": "pricing"}, "unknown purpose"),
        ({"purpose": "premiums"}, "unknown purpose"),
        ({"purpose": "risk_selection"}, "unknown purpose"),
        ({"rtype": "person"}, "unknown resource type"),
    ],
)
def test_unknown_vocabulary_is_denied_by_default(
    current_law: PolicyEngine, change: dict[str, str], error: str
) -> None:
    d = current_law.decide(request(**change))
    assert not d.allowed
    assert d.rule_ids == (DEFAULT_DENY,)
    assert d.legal_refs == ()
    assert d.view == frozenset()
    assert error in d.errors


def test_no_matching_permit_is_default_deny(current_law: PolicyEngine) -> None:
    d = current_law.decide(request(roles=("submitter",)))
    assert (d.allowed, d.rule_ids, d.view, d.errors) == (False, (DEFAULT_DENY,), frozenset(), ())


def test_forbid_overrides_permit_and_is_reported(current_law: PolicyEngine) -> None:
    # The AMO's own suspicion would be readable, but an AMC submitter_kind triggers the forbid.
    d = current_law.decide(
        request(kind="AMO", member="cpam-75", submitter_kind="AMC", principal_is_submitter=True)
    )
    assert not d.allowed
    assert d.rule_ids == ("cl-no-amc-submitted-suspicion",)
    assert d.legal_refs == (current_law.bundle.legal_refs["cl-no-amc-submitted-suspicion"],)


def test_several_forbids_are_all_reported(current_law: PolicyEngine) -> None:
    d = current_law.decide(
        request(
            kind="AMC",
            roles=("submitter",),
            action="CreateSuspicion",
            submitter_kind="AMC",
            status="submitted",
        )
    )
    assert d.rule_ids == ("cl-no-amc-submitted-suspicion", "cl-no-amc-to-amo-report")


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"estimated_amount_cents": None}, "attributes: estimated_amount_cents"),
        ({"estimated_amount_cents": "150000"}, "attributes: estimated_amount_cents"),
        ({"colour": "red"}, "principal or resource does not conform"),
        (
            {"principal_is_recipient": "yes"},
            "relation fact 'principal_is_recipient' must be a bool",
        ),
    ],
)
def test_malformed_resource_is_an_evaluation_error_and_denied(
    current_law: PolicyEngine, attrs: dict[str, Any], expected: str
) -> None:
    d = current_law.decide(request(submitter_member="mutuelle-secret-7", **attrs))
    assert not d.allowed
    assert d.rule_ids == (EVALUATION_ERROR,)
    assert d.view == frozenset()
    assert any(expected in e for e in d.errors), d.errors
    # Errors name fields and rules, never data.
    for e in d.errors:
        assert "mutuelle-secret-7" not in e and "150000" not in e and "s-1" not in e


def test_resource_type_not_valid_for_action_is_an_evaluation_error(
    current_law: PolicyEngine,
) -> None:
    d = current_law.decide(request(action="GetAlert"))
    assert (d.allowed, d.rule_ids) == (False, (EVALUATION_ERROR,))
    assert "request does not conform" in d.errors[0]


def test_erroring_forbid_denies_even_when_cedar_allows(bundle_copy: Path) -> None:
    # Cedar skips a policy whose evaluation fails and may still say Allow; the engine must deny.
    policies = bundle_copy / "policies.cedar"
    policies.write_text(
        policies.read_text() + '\n@id("overflowing-forbid")\n@legal_ref("test")\n'
        "forbid (principal, action, resource is Suspicion)\n"
        "when { resource.estimated_amount_cents * 9223372036854775807 > 0 };\n"
    )
    engine = PolicyEngine.load(bundle_copy)
    d = engine.decide(request())
    assert not d.allowed
    assert d.rule_ids == (EVALUATION_ERROR,)
    assert d.errors == ("error while evaluating rule 'overflowing-forbid'",)


def test_relation_facts_default_to_false(current_law: PolicyEngine) -> None:
    d = current_law.decide(request(principal_covers_beneficiary=None))
    assert not d.allowed
    assert d.rule_ids == ("common-amc-need-to-know",)


def test_get_self_is_decided_by_engine_computed_identity(current_law: PolicyEngine) -> None:
    me = request(action="GetSelf", purpose="operations", rtype="member", rid="mutuelle-a")
    other = request(action="GetSelf", purpose="operations", rtype="member", rid="mutuelle-b")
    assert current_law.decide(me).allowed
    assert not current_law.decide(other).allowed


def test_request_model_is_frozen_and_closed() -> None:
    r = request()
    with pytest.raises(ValidationError):
        r.action = "GetSelf"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        AccessRequest.model_validate(
            {
                "principal": {"member_id": "m", "kind": "CPAM", "roles": []},
                "action": "GetSelf",
                "purpose": "operations",
                "resource": {"type": "member", "id": "m"},
            },
            strict=False,
        )
    with pytest.raises(ValidationError):
        AccessRequest.model_validate(
            {
                "principal": {"member_id": "m", "kind": "AMO", "roles": []},
                "action": "GetSelf",
                "purpose": "operations",
                "resource": {"type": "member", "id": "m", "attributes": {"x": 1.5}},
                "extra": 1,
            },
            strict=False,
        )


# ---- threshold ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "met"),
    [
        ("submitted", False),
        ("qualified", True),
        ("confirmed", True),
        ("dismissed", False),
        ("cleared", False),
        ("closed", False),
    ],
)
def test_sharing_threshold_is_qualified_or_later(
    engines: dict[str, PolicyEngine], status: str, met: bool
) -> None:
    for engine in engines.values():
        assert engine.sharing_threshold.min_status == "qualified"
        assert engine.threshold_met({**SUSPICION, "status": status}) is met


def test_sharing_threshold_minimum_amount(bundle_copy: Path) -> None:
    manifest = bundle_copy / "bundle.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "min_estimated_amount_cents: 0", "min_estimated_amount_cents: 100000"
        )
    )
    engine = PolicyEngine.load(bundle_copy)
    assert engine.decide(request(estimated_amount_cents=100_000)).allowed
    d = engine.decide(request(estimated_amount_cents=99_999))
    assert (d.allowed, d.rule_ids) == (False, (DEFAULT_DENY,))
    # A recipient keeps reading what it received (e.g. the retraction), whatever the amount.
    assert engine.decide(request(estimated_amount_cents=1, principal_is_recipient=True)).allowed


# ---- views, minimisation, retention -------------------------------------------------------


def test_minimise_drops_fields_outside_the_view(current_law: PolicyEngine) -> None:
    record = {
        "id": "s-1",
        "status": "qualified",
        "facts_summary": "free text",
        "estimated_amount_cents": 150_000,
        "act_codes": ["2243304"],
    }
    assert current_law.minimise("suspicion", "AMC", "control", record) == {
        "id": "s-1",
        "status": "qualified",
    }
    assert current_law.minimise("suspicion", "AMO", "control", record) == record
    assert current_law.minimise("suspicion", "AMC", "fraud_detection", record) == {}
    assert current_law.minimise("nothing", "AMC", "control", record) == {}


def test_current_law_never_shows_free_text_or_amounts_to_an_amc(
    current_law: PolicyEngine,
) -> None:
    for purpose in current_law.purposes:
        view = current_law.view("suspicion", "AMC", purpose)
        assert not view & {"facts_summary", "evidence_refs", "estimated_amount_cents", "act_codes"}


def test_fraud_bill_limits_health_data_to_grouping_codes(fraud_bill: PolicyEngine) -> None:
    for rtype in ("suspicion", "alert", "claim_check"):
        for kind in ("AMO", "AMC"):
            for purpose in fraud_bill.purposes:
                assert "act_codes" not in fraud_bill.view(rtype, kind, purpose)
    assert "act_grouping_codes" in fraud_bill.view("suspicion", "AMC", "control")
    assert "facts_summary" not in fraud_bill.view("suspicion", "AMC", "control")


def test_amc_journal_views_never_list_recipients(engines: dict[str, PolicyEngine]) -> None:
    for engine in engines.values():
        for purpose in ("audit", "data_subject_request"):
            assert "recipients" not in engine.view("journal_event", "AMC", purpose)


@pytest.mark.parametrize(
    ("category", "days"),
    [
        ("alert_not_qualified", 183),
        ("not_relevant_or_cleared", 0),
        ("closed_without_action", 365),
        ("final_decision", 1826),
        ("presumed_fraudster_list", 1826),
        ("access_logs", 365),
    ],
)
def test_retention_periods_follow_domain_table(
    engines: dict[str, PolicyEngine], category: str, days: int
) -> None:
    for engine in engines.values():
        assert engine.retention(category) == dt.timedelta(days=days)


def test_cleared_person_is_deleted_immediately_under_the_bill(fraud_bill: PolicyEngine) -> None:
    assert fraud_bill.retention("not_relevant_or_cleared") == dt.timedelta(0)
    spec = fraud_bill.bundle.manifest.retention["not_relevant_or_cleared"]
    assert "L.114-9-1" in spec.legal_ref


def test_unknown_retention_category_is_a_programming_error(current_law: PolicyEngine) -> None:
    assert "forever" not in RETENTION_CATEGORIES
    with pytest.raises(EvaluationError):
        current_law.retention("forever")
