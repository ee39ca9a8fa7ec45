"""Claim-line validation at the upload boundary: every bad field is named with its rule."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.domain import CLAIM_FIELDS, ClaimLine, parse_claim_line
from gateway.errors import InvalidArgumentError

from .factories import PRESCRIBER, RPPS, TODAY, TOKEN, line, raw_line


def _violations(raw: dict[str, Any], index: int | None = 3) -> set[tuple[str, str]]:
    with pytest.raises(InvalidArgumentError) as info:
        parse_claim_line(raw, today=TODAY, index=index)
    return {(v.field, v.description) for v in info.value.violations}


@pytest.mark.parametrize("kind", ["lens", "frame", "aid", "followup", "crown"])
@pytest.mark.parametrize("side", ["AMO", "AMC"])
def test_valid_lines_of_every_sector_and_side_parse(kind: str, side: str) -> None:
    parsed = line(kind, side)
    assert parsed.side == side


def test_claim_line_has_exactly_the_spec_fields() -> None:
    assert CLAIM_FIELDS == (
        "member_reference", "side", "sector", "beneficiary_token", "birth_year",
        "provider_rpps", "provider_am_number", "provider_finess", "prescriber_rpps",
        "prescriber_specialty", "prescription_date", "care_date", "act_code", "grouping_code",
        "product_class", "laterality", "tooth", "quantity", "unit_price_cents",
        "amount_billed_cents", "amo_base_cents", "amo_paid_cents", "amo_claim_number",
        "amc_paid_cents", "amc_reference",
    )  # fmt: skip


def test_csv_text_values_are_accepted() -> None:
    raw = {k: ("" if v is None else str(v)) for k, v in raw_line().items()}
    parsed = parse_claim_line(raw, today=TODAY)
    assert parsed == line()
    assert parsed.amount_billed_cents == 12000
    assert parsed.care_date == date(2026, 1, 10)


def test_absent_optional_fields_take_their_defaults() -> None:
    raw = raw_line("crown")
    for name in ("provider_rpps", "provider_finess", "prescriber_rpps", "prescriber_specialty",
                 "prescription_date", "laterality", "amc_paid_cents", "amc_reference"):  # fmt: skip
        raw.pop(name)
    parsed = parse_claim_line(raw, today=TODAY)
    assert parsed.provider_rpps == "" and parsed.prescription_date is None


_FUTURE = TODAY + timedelta(days=1)
BAD_FIELDS: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (case, kind, overrides, field, rule)
    ("reference_charset", "lens", {"member_reference": "a b"}, "member_reference",
     "must be 1..64 characters of [A-Za-z0-9._:-]"),
    ("reference_too_long", "lens", {"member_reference": "x" * 65}, "member_reference",
     "must be 1..64 characters of [A-Za-z0-9._:-]"),
    ("reference_missing", "lens", {"member_reference": ""}, "member_reference", "required"),
    ("side_unknown", "lens", {"side": "AMX"}, "side", "must be AMO or AMC"),
    ("sector_unknown", "lens", {"sector": "pharmacie"}, "sector",
     "must be one of optique, audio, dentaire"),
    ("token_nir_shaped", "lens", {"beneficiary_token": "253072B07300470"}, "beneficiary_token",
     "must be a 43-character base64url first-level token"),
    ("token_padded", "lens", {"beneficiary_token": TOKEN[:42] + "="}, "beneficiary_token",
     "must be a 43-character base64url first-level token"),
    ("birth_year_too_old", "lens", {"birth_year": 1899}, "birth_year",
     "must be between 1900 and the current year"),
    ("birth_year_future", "lens", {"birth_year": TODAY.year + 1}, "birth_year",
     "must be between 1900 and the current year"),
    ("birth_year_text", "lens", {"birth_year": "19x0"}, "birth_year", "must be an integer"),
    ("birth_year_bool", "lens", {"birth_year": True}, "birth_year", "must be an integer"),
    ("rpps_luhn", "lens", {"provider_rpps": RPPS[:-1] + str((int(RPPS[-1]) + 1) % 10)},
     "provider_rpps", "must be 11 digits with a valid Luhn check digit"),
    ("rpps_length", "lens", {"provider_rpps": RPPS[:-1]}, "provider_rpps",
     "must be 11 digits with a valid Luhn check digit"),
    ("prescriber_luhn", "lens", {"prescriber_rpps": PRESCRIBER[:-1] + "x"}, "prescriber_rpps",
     "must be 11 digits with a valid Luhn check digit"),
    ("prescriber_missing_optique", "lens", {"prescriber_rpps": ""}, "prescriber_rpps",
     "required for optique and audio equipment"),
    ("prescriber_missing_audio", "aid", {"prescriber_rpps": ""}, "prescriber_rpps",
     "required for optique and audio equipment"),
    ("am_number_length", "lens", {"provider_am_number": "12345678"}, "provider_am_number",
     "must be 9 digits"),
    ("am_number_missing", "lens", {"provider_am_number": ""}, "provider_am_number", "required"),
    ("finess_luhn", "lens", {"provider_finess": "750000001"}, "provider_finess",
     "must be 9 characters (digits, 2A/2B prefix) with a Luhn check"),
    ("specialty_unknown", "lens", {"prescriber_specialty": "cardiologie"},
     "prescriber_specialty", "must be one of the prescriber specialties"),
    ("care_date_future", "lens", {"care_date": _FUTURE}, "care_date",
     "must not be in the future"),
    ("care_date_text", "lens", {"care_date": "10/01/2026"}, "care_date",
     "must be an ISO date YYYY-MM-DD"),
    ("care_date_impossible", "lens", {"care_date": "2026-02-30"}, "care_date",
     "must be an ISO date YYYY-MM-DD"),
    ("prescription_future", "lens", {"prescription_date": _FUTURE}, "prescription_date",
     "must not be in the future"),
    ("lpp_for_optique", "lens", {"act_code": "HBLD680"}, "act_code", "must be a 7-digit LPP code"),
    ("ccam_for_dentaire", "crown", {"act_code": "2203240"}, "act_code",
     "must be a CCAM code (4 uppercase letters, 3 digits)"),
    ("sui_outside_suivi", "aid", {"act_code": "SUI"}, "act_code",
     "SUI is the act code of, and only of, audio SUIVI lines"),
    ("suivi_without_sui", "followup", {"act_code": "2355084"}, "act_code",
     "SUI is the act code of, and only of, audio SUIVI lines"),
    ("grouping_other_sector", "lens", {"grouping_code": "COURONNE"}, "grouping_code",
     "must be in the sector's closed list of grouping codes"),
    ("class_other_sector", "lens", {"product_class": "I"}, "product_class",
     "must be a product class of the sector"),
    ("class_missing_equipment", "aid", {"product_class": ""}, "product_class",
     "must be a product class of the sector"),
    ("class_on_followup", "followup", {"product_class": "I"}, "product_class",
     "must be empty for a non-equipment grouping code"),
    ("laterality_missing_lens", "lens", {"laterality": ""}, "laterality",
     "required (left or right) for this grouping code"),
    ("laterality_missing_aid", "aid", {"laterality": ""}, "laterality",
     "required (left or right) for this grouping code"),
    ("laterality_on_frame", "frame", {"laterality": "left"}, "laterality",
     "must be empty for this grouping code"),
    ("laterality_unknown", "lens", {"laterality": "both"}, "laterality",
     "must be left, right or empty"),
    ("tooth_missing_crown", "crown", {"tooth": 0}, "tooth", "required for a dental prosthesis"),
    ("tooth_not_fdi", "crown", {"tooth": 19}, "tooth",
     "must be 0 or an FDI permanent tooth number 11..48"),
    ("tooth_outside_dentaire", "lens", {"tooth": 11}, "tooth", "must be 0 outside dentaire"),
    ("quantity_zero", "lens", {"quantity": 0, "amount_billed_cents": 0}, "quantity",
     "must be between 1 and 99"),
    ("quantity_100", "lens", {"quantity": 100, "amount_billed_cents": 1200000}, "quantity",
     "must be between 1 and 99"),
    ("price_negative", "lens", {"unit_price_cents": -1, "amount_billed_cents": 0},
     "unit_price_cents", "must be an integer number of cents in 0..1000000000"),
    ("price_float", "lens", {"unit_price_cents": 120.5, "amount_billed_cents": 12000},
     "unit_price_cents", "must be an integer"),
    ("billed_not_q_times_price", "lens", {"amount_billed_cents": 12001}, "amount_billed_cents",
     "must equal quantity * unit_price_cents"),
    ("amo_number_missing", "lens", {"amo_claim_number": ""}, "amo_claim_number",
     "required on the AMO side: 1..32 printable ASCII characters"),
    ("amo_number_too_long", "lens", {"amo_claim_number": "x" * 33}, "amo_claim_number",
     "required on the AMO side: 1..32 printable ASCII characters"),
    ("amc_paid_on_amo_side", "lens", {"amc_paid_cents": 10}, "amc_paid_cents",
     "must be 0 on the AMO side"),
    ("amc_reference_on_amo_side", "lens", {"amc_reference": "DRE-1"}, "amc_reference",
     "must be empty on the AMO side"),
    ("unknown_field", "lens", {"nir": "253072B07300470"}, "nir", "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "overrides", "field", "rule"),
    [c[1:] for c in BAD_FIELDS],
    ids=[c[0] for c in BAD_FIELDS],
)
def test_bad_field_is_refused_with_its_exact_path_and_rule(
    kind: str, overrides: dict[str, Any], field: str, rule: str
) -> None:
    assert _violations(raw_line(kind, **overrides)) == {(f"lines[3].{field}", rule)}


AMC_SIDE_CASES = [
    ("amo_base_cents", 5, "must be 0 on the AMC side"),
    ("amo_paid_cents", 5, "must be 0 on the AMC side"),
    ("amo_claim_number", "AMO-1", "must be empty on the AMC side"),
    ("amc_reference", "", "required on the AMC side: 1..32 printable ASCII characters"),
]


@pytest.mark.parametrize(("field", "value", "rule"), AMC_SIDE_CASES)
def test_amc_side_fields_present_or_absent(field: str, value: object, rule: str) -> None:
    assert _violations(raw_line("lens", "AMC", **{field: value})) == {(f"lines[3].{field}", rule)}


def test_missing_required_field_is_named() -> None:
    raw = raw_line()
    del raw["care_date"]
    assert _violations(raw) == {("lines[3].care_date", "required")}


def test_without_index_the_path_is_the_bare_field() -> None:
    assert _violations(raw_line(quantity=0, amount_billed_cents=0), index=None) == {
        ("quantity", "must be between 1 and 99")
    }


def test_every_bad_field_is_reported_at_once() -> None:
    fields = {f for f, _ in _violations(raw_line(quantity=0, tooth=11, side="X"))}
    assert fields == {"lines[3].quantity", "lines[3].tooth", "lines[3].side"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"beneficiary_token": "253072B07300470"},
        {"provider_rpps": "10000000001"},
        {"unit_price_cents": -123456, "amount_billed_cents": 0},
        {"nir": "253072B07300470"},
    ],
)
def test_error_messages_never_carry_the_value(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_claim_line(raw_line(**overrides), today=TODAY, index=0)
    err = info.value
    text = " ".join([str(err), err.message, *(v.description for v in err.violations)])
    for value in overrides.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in text
        elif isinstance(value, int) and value:
            assert str(abs(value)) not in text


def test_boundaries_that_are_valid() -> None:
    line(care_date=TODAY, prescription_date=TODAY)
    line(birth_year=1900)
    line(birth_year=TODAY.year)
    line(quantity=99, unit_price_cents=0, amount_billed_cents=0)
    line("crown", tooth=11)
    line("crown", tooth=48)
    line(provider_rpps="")  # optional when the AM number is present


def test_claim_line_is_frozen_and_strict() -> None:
    parsed = line()
    with pytest.raises(ValidationError):
        parsed.quantity = 2  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ClaimLine.model_validate({**raw_line(), "quantity": "1"})


def test_building_a_claim_line_directly_checks_the_rules() -> None:
    raw = raw_line(amount_billed_cents=1)
    with pytest.raises(ValidationError) as info:
        ClaimLine.model_validate(raw)
    assert "amount_billed_cents" in str(info.value)


def test_stored_line_may_carry_a_second_level_pseudonym() -> None:
    stored = ClaimLine.model_validate({**raw_line(), "beneficiary_token": "k1:" + TOKEN})
    assert stored.beneficiary_token.startswith("k1:")
