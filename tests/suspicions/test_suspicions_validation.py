"""Strict validation of submitted suspicions and the lifecycle state machine (pure)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from suspicion_support import FACTS, NOW, RPPS_P, TOKEN_B1, draft_values

from gateway.domain.suspicions import (
    SUSPICION_STATUSES,
    TRANSITIONS,
    Suspicion,
    parse_suspicion_draft,
    transition,
)
from gateway.errors import FailedPreconditionError, InvalidArgumentError

NIR = "253072B07300470"  # DOMAIN.md test vector


def _fields(values: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidArgumentError) as info:
        parse_suspicion_draft(values)
    return [v.field for v in info.value.violations]


def test_valid_draft_is_accepted_and_never_shows_free_text() -> None:
    draft = parse_suspicion_draft(draft_values())
    assert draft.subject.beneficiary_token == TOKEN_B1
    assert draft.act_grouping_codes == ("VERRE_COMPLEXE", "MONTURE")
    assert FACTS not in repr(draft) and TOKEN_B1 not in str(draft)


def test_provider_only_subject_and_empty_optional_fields_are_accepted() -> None:
    draft = parse_suspicion_draft(
        draft_values(
            subject={"beneficiary_token": "", "provider_am_number": "751234567"},
            evidence_refs=[],
            act_grouping_codes=None,
            act_codes=None,
        )
    )
    assert draft.subject.beneficiary_token is None
    assert draft.subject.provider_am_number == "751234567"


BAD_RPPS = RPPS_P[:-1] + str((int(RPPS_P[-1]) + 1) % 10)

BAD_INPUT: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no-subject-at-all", {"subject": {}}, ["subject"]),
    ("subject-missing", {"subject": None}, ["subject"]),
    ("subject-not-an-object", {"subject": "x"}, ["subject"]),
    ("subject-unknown-field", {"subject": {"provider_rpps": RPPS_P, "nir": NIR}}, ["subject.nir"]),
    (
        "token-too-short",
        {"subject": {"beneficiary_token": TOKEN_B1[:-1]}},
        ["subject.beneficiary_token"],
    ),
    (
        "token-non-canonical-last-char",
        {"subject": {"beneficiary_token": TOKEN_B1[:-1] + "B"}},
        ["subject.beneficiary_token"],
    ),
    ("nir-sent-as-token", {"subject": {"beneficiary_token": NIR}}, ["subject.beneficiary_token"]),
    ("rpps-bad-luhn", {"subject": {"provider_rpps": BAD_RPPS}}, ["subject.provider_rpps"]),
    ("rpps-letters", {"subject": {"provider_rpps": "1234567890A"}}, ["subject.provider_rpps"]),
    (
        "am-number-8-digits",
        {"subject": {"provider_am_number": "75123456"}},
        ["subject.provider_am_number"],
    ),
    ("finess-bad", {"subject": {"provider_finess": "2C1234567"}}, ["subject.provider_finess"]),
    ("rpps-not-a-string", {"subject": {"provider_rpps": 12345678901}}, ["subject.provider_rpps"]),
    ("unknown-sector", {"sector": "pharmacie"}, ["sector"]),
    ("sector-missing", {"sector": None}, ["sector"]),
    ("unknown-fraud-type", {"fraud_type": "pricing"}, ["fraud_type"]),
    ("facts-empty", {"facts_summary": ""}, ["facts_summary"]),
    ("facts-blank", {"facts_summary": "   \n"}, ["facts_summary"]),
    ("facts-too-long", {"facts_summary": "x" * 4001}, ["facts_summary"]),
    ("facts-not-text", {"facts_summary": 42}, ["facts_summary"]),
    ("facts-control-char", {"facts_summary": "a\x00b"}, ["facts_summary"]),
    (
        "facts-with-a-nir",
        {"facts_summary": f"assuré {NIR} a reçu deux montures"},
        ["facts_summary"],
    ),
    (
        "facts-with-a-spaced-nir",
        {"facts_summary": "NIR 2 53 07 2B 073 004 70 vu"},
        ["facts_summary"],
    ),
    ("amount-negative", {"estimated_amount_cents": -1}, ["estimated_amount_cents"]),
    ("amount-too-large", {"estimated_amount_cents": 10**11 + 1}, ["estimated_amount_cents"]),
    ("amount-bool", {"estimated_amount_cents": True}, ["estimated_amount_cents"]),
    ("amount-text", {"estimated_amount_cents": "1500"}, ["estimated_amount_cents"]),
    ("amount-float", {"estimated_amount_cents": 1500.0}, ["estimated_amount_cents"]),
    ("evidence-not-a-list", {"evidence_refs": "doc"}, ["evidence_refs"]),
    ("evidence-too-many", {"evidence_refs": [f"d{i}" for i in range(21)]}, ["evidence_refs"]),
    ("evidence-item-empty", {"evidence_refs": ["ok", ""]}, ["evidence_refs[1]"]),
    ("evidence-item-too-long", {"evidence_refs": ["x" * 129]}, ["evidence_refs[0]"]),
    ("evidence-item-not-text", {"evidence_refs": ["ok", 3]}, ["evidence_refs[1]"]),
    ("evidence-with-a-nir", {"evidence_refs": [f"scan-{NIR}"]}, ["evidence_refs[0]"]),
    ("case-reference-missing", {"case_reference": None}, ["case_reference"]),
    ("case-reference-empty", {"case_reference": ""}, ["case_reference"]),
    ("case-reference-too-long", {"case_reference": "a" * 65}, ["case_reference"]),
    ("case-reference-space", {"case_reference": "CASE 1"}, ["case_reference"]),
    ("case-reference-is-a-nir", {"case_reference": NIR}, ["case_reference"]),
    (
        "grouping-code-of-another-sector",
        {"act_grouping_codes": ["COURONNE"]},
        ["act_grouping_codes[0]"],
    ),
    ("grouping-codes-not-a-list", {"act_grouping_codes": "MONTURE"}, ["act_grouping_codes"]),
    ("act-code-ccam-in-optique", {"act_codes": ["2290000", "HBLD680"]}, ["act_codes[1]"]),
    (
        "act-code-lpp-in-dentaire",
        {"sector": "dentaire", "act_grouping_codes": ["COURONNE"], "act_codes": ["2290000"]},
        ["act_codes[0]"],
    ),
    ("act-codes-too-many", {"act_codes": ["2290000"] * 51}, ["act_codes"]),
    ("unknown-top-level-field", {"beneficiary_nir": NIR}, ["beneficiary_nir"]),
]


@pytest.mark.parametrize(
    ("overrides", "expected"), [(o, e) for _, o, e in BAD_INPUT], ids=[n for n, _, _ in BAD_INPUT]
)
def test_bad_input_names_exactly_the_bad_field(
    overrides: dict[str, Any], expected: list[str]
) -> None:
    values = draft_values(**overrides)
    with pytest.raises(InvalidArgumentError) as info:
        parse_suspicion_draft(values)
    assert [v.field for v in info.value.violations] == expected
    # The rule is named, never the value.
    text = info.value.message + " ".join(v.description for v in info.value.violations)
    for secret in (NIR, TOKEN_B1, FACTS, "2 53 07 2B 073 004 70"):
        assert secret not in text


def test_every_bad_field_is_reported_at_once() -> None:
    fields = _fields(
        draft_values(
            subject={"provider_rpps": BAD_RPPS},
            sector="x",
            fraud_type="y",
            facts_summary="",
            estimated_amount_cents=-5,
            case_reference="",
        )
    )
    assert fields == [
        "subject.provider_rpps",
        "sector",
        "fraud_type",
        "facts_summary",
        "estimated_amount_cents",
        "case_reference",
    ]


@given(st.text(min_size=1, max_size=200))
def test_any_free_text_is_accepted_or_refused_with_a_field_violation(text: str) -> None:
    try:
        draft = parse_suspicion_draft(draft_values(facts_summary=text))
    except InvalidArgumentError as e:
        assert [v.field for v in e.violations] == ["facts_summary"]
        assert all(text not in v.description for v in e.violations if len(text) > 3)
    else:
        assert draft.facts_summary == text


def _suspicion(status: str) -> Suspicion:
    return Suspicion.model_validate(
        {
            "id": "s_test",
            "submitter_member": "cpam-75",
            "submitter_kind": "AMO",
            "status": status,
            "sector": "optique",
            "fraud_type": "class_shift",
            "subject_beneficiary": None,
            "subject_provider_rpps": RPPS_P,
            "subject_provider_am_number": None,
            "subject_provider_finess": None,
            "facts_sealed": None,
            "evidence_sealed": None,
            "estimated_amount_cents": 0,
            "case_reference": "c1",
            "act_grouping_codes": (),
            "act_codes": (),
            "created_at": NOW,
            "updated_at": NOW,
        }
    )


ALLOWED = {
    ("submitted", "qualified"), ("submitted", "dismissed"), ("submitted", "cleared"),
    ("qualified", "confirmed"), ("qualified", "dismissed"), ("qualified", "cleared"),
    ("confirmed", "closed"), ("dismissed", "closed"), ("cleared", "closed"),
}  # fmt: skip


def test_transition_table_is_exactly_the_common_brief() -> None:
    assert {(a, b) for a, tos in TRANSITIONS.items() for b in tos} == ALLOWED


@pytest.mark.parametrize(
    ("start", "to"), list(itertools.product(SUSPICION_STATUSES, SUSPICION_STATUSES))
)
def test_only_allowed_transitions_pass_and_illegal_ones_name_both_statuses(
    start: str, to: str
) -> None:
    s = _suspicion(start)
    if (start, to) in ALLOWED:
        moved, record = transition(s, to, "cpam-75", "AMO", "vu en commission", NOW)
        assert moved.status == to and record.from_status == start and record.to_status == to
        assert (record.actor_member, record.actor_kind, record.at) == ("cpam-75", "AMO", NOW)
        assert (moved.outcome == to) == (to in ("confirmed", "dismissed", "cleared"))
        assert (moved.cleared_at == NOW) == (to == "cleared")
    else:
        with pytest.raises(FailedPreconditionError) as info:
            transition(s, to, "cpam-75", "AMO", None, NOW)
        assert repr(start) in info.value.message and repr(to) in info.value.message


def test_unknown_target_status_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        transition(_suspicion("submitted"), "archived", "cpam-75", "AMO", None, NOW)
    assert [v.field for v in info.value.violations] == ["to_status"]


@pytest.mark.parametrize("reason", ["", " ", "x" * 1001, f"NIR {NIR}", "a\x07"])
def test_bad_transition_reason_is_refused(reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        transition(_suspicion("submitted"), "qualified", "cpam-75", "AMO", reason, NOW)
    assert [v.field for v in info.value.violations] == ["reason"]
