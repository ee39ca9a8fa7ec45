"""NIR validation: vectors (DOMAIN.md §2 and public examples) and the single-change property."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crypto import nir_key, normalise_nir, validate_nir
from gateway.errors import InvalidArgumentError

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "nir" / "vectors.json").read_text(encoding="utf-8")
)
ALPHABET = "0123456789AB"


def _reference_key(first13: str) -> int:
    """Independent key computation (DOMAIN.md §2) to cross-check the vectors file."""
    digits = first13.replace("2A", "19", 1) if first13[5:7] == "2A" else first13
    digits = digits.replace("2B", "18", 1) if first13[5:7] == "2B" else digits
    return 97 - int(digits) % 97


@pytest.mark.parametrize(
    ("nir", "key"),
    [("253072B07300470", 70), ("253072A07300443", 43), ("295109912611193", 93)],
)
def test_domain_vectors_validate_with_their_key(nir: str, key: int) -> None:
    assert validate_nir(nir) == nir
    assert nir_key(nir[:13]) == key


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["case"])
def test_valid_vector_is_accepted_and_normalised(case: dict[str, str]) -> None:
    assert validate_nir(case["input"]) == case["normalised"]
    assert _reference_key(case["normalised"][:13]) == int(case["normalised"][13:])


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["case"])
def test_invalid_vector_is_refused_naming_the_rule_not_the_value(case: dict[str, str]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_nir(case["input"])
    (violation,) = info.value.violations
    assert violation.field == "nir"
    assert violation.description.startswith(case["rule"])
    compact = case["input"].replace(" ", "")
    for text in (str(info.value), info.value.message, violation.description):
        if len(compact) >= 4:
            assert compact not in text
            assert compact[:13] not in text


def test_error_names_the_caller_field_path() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_nir("295109912611199", field="suspicion.beneficiary.nir")
    assert info.value.violations[0].field == "suspicion.beneficiary.nir"


@pytest.mark.parametrize("value", [None, 295109912611193, b"295109912611193"])
def test_non_string_nir_is_refused(value: object) -> None:
    with pytest.raises(InvalidArgumentError):
        validate_nir(value)  # type: ignore[arg-type]


def test_huge_input_is_refused_as_length_without_work() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_nir("1" * 10_000)
    assert info.value.violations[0].description.startswith("length")


def test_normalise_only_strips_spaces_and_dots_and_upper_cases() -> None:
    assert normalise_nir(" 2.53 07 2b 073 004 70 ") == "253072B07300470"
    assert normalise_nir("2-53") == "2-53"


@st.composite
def valid_nirs(draw: st.DrawFn) -> str:
    sex = draw(st.sampled_from("125678"))
    year = draw(st.integers(0, 99))
    month = draw(
        st.one_of(st.integers(1, 12), st.integers(20, 42), st.integers(50, 99)),
    )
    department = draw(
        st.one_of(st.sampled_from(["2A", "2B"]), st.integers(1, 99).map(lambda d: f"{d:02d}"))
    )
    commune = draw(st.integers(0, 999))
    order = draw(st.integers(0, 999))
    first13 = f"{sex}{year:02d}{month:02d}{department}{commune:03d}{order:03d}"
    return f"{first13}{nir_key(first13):02d}"


@given(valid_nirs())
def test_generated_nir_validates(nir: str) -> None:
    assert validate_nir(nir) == nir


@settings(max_examples=500)
@given(valid_nirs(), st.integers(0, 14), st.sampled_from(ALPHABET + "CZ9-/"))
def test_any_single_character_substitution_is_refused(nir: str, pos: int, char: str) -> None:
    """97 is prime (no d*10^k is a multiple), 2A/2B -> 19/18 stay within 97 of any 2x, and a
    changed key digit changes the key: every single substitution is caught (module docstring).
    """
    if nir[pos] == char:
        return
    mutated = nir[:pos] + char + nir[pos + 1 :]
    with pytest.raises(InvalidArgumentError):
        validate_nir(mutated)


def test_single_substitution_exhaustively_on_domain_vectors() -> None:
    for nir in ("253072B07300470", "253072A07300443", "295109912611193"):
        for pos in range(15):
            for char in ALPHABET:
                if nir[pos] == char:
                    continue
                with pytest.raises(InvalidArgumentError):
                    validate_nir(nir[:pos] + char + nir[pos + 1 :])


def test_two_character_change_2a_to_19_is_not_detectable_by_the_key() -> None:
    """Documented limit: 2A and 19 (Corrèze) weigh the same in the key."""
    assert validate_nir("253071907300443") == "253071907300443"
    assert validate_nir("253072A07300443") == "253072A07300443"


def test_nir_key_refuses_wrong_length_and_alphabet() -> None:
    with pytest.raises(ValueError, match="13"):
        nir_key("12345")
    with pytest.raises(ValueError, match="digits"):
        nir_key("2530X2A073004")
