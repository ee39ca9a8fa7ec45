"""Format and check-digit rules of RPPS, AM number, FINESS, LPP, CCAM and tokens."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain._identifiers import (
    is_ccam_code,
    is_valid_adeli,
    is_valid_am_number,
    is_valid_finess,
    is_valid_lpp,
    is_valid_rpps,
    is_valid_token,
    luhn_complete,
    luhn_is_valid,
    make_adeli,
    make_am_number,
    make_ccam,
    make_finess,
    make_lpp,
    make_rpps,
    make_token,
)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("79927398713", True),  # the classic Luhn example
        ("79927398710", False),
        ("0", True),
        ("18", True),
        ("", False),
        ("12a4", False),
        ("١٢٣", False),  # non-ASCII digits
    ],
)
def test_luhn_known_vectors(digits: str, valid: bool) -> None:
    assert luhn_is_valid(digits) is valid


def test_luhn_complete_known_vector() -> None:
    assert luhn_complete("7992739871") == "79927398713"


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_luhn_complete_always_valid(digits: str) -> None:
    assert luhn_is_valid(luhn_complete(digits))


@given(st.text(alphabet="0123456789", min_size=2, max_size=20), st.data())
def test_luhn_detects_every_single_digit_substitution(digits: str, data: st.DataObject) -> None:
    full = luhn_complete(digits)
    i = data.draw(st.integers(0, len(full) - 1))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != full[i]]))
    assert not luhn_is_valid(full[:i] + new + full[i + 1 :])


@pytest.mark.parametrize("bad", ["", "12a", "1 2", "١٢"])
def test_luhn_complete_refuses_non_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        luhn_complete(bad)


@pytest.mark.parametrize("seed", range(50))
def test_generated_identifiers_are_valid(seed: int) -> None:
    rng = random.Random(seed)
    assert is_valid_rpps(make_rpps(rng))
    assert is_valid_adeli(make_adeli(rng))
    assert is_valid_am_number(make_am_number(rng))
    assert is_valid_finess(make_finess(rng))
    assert is_valid_finess(make_finess(rng, "2A"))
    assert is_valid_finess(make_finess(rng, "2B"))
    assert is_valid_lpp(make_lpp(rng))
    assert is_ccam_code(make_ccam(rng))
    assert is_valid_token(make_token(rng))


def test_generators_are_deterministic_with_a_seed() -> None:
    assert make_rpps(random.Random(7)) == make_rpps(random.Random(7))


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (is_valid_rpps, "1234567890"),  # 10 digits
        (is_valid_rpps, luhn_complete("1000000000")[:-1] + "x"),
        (is_valid_rpps, "10000000001"),  # wrong check digit
        (is_valid_am_number, "12345678"),
        (is_valid_am_number, "12345678A"),
        (is_valid_finess, "2C0000000"),
        (is_valid_finess, "750000000"[:-1] + "1"),
        (is_valid_finess, "A20000000"),
        (is_valid_lpp, "123456"),
        (is_valid_lpp, "12345678"),
        (is_ccam_code, "hbld680"),
        (is_ccam_code, "HBL6800"),
        (is_ccam_code, "HBLD68"),
        (is_valid_token, "A" * 42),
        (is_valid_token, "A" * 43 + "="),
        (is_valid_token, "A" * 42 + "B"),  # non-canonical last character
        (is_valid_token, "A" * 41 + "+A"),  # base64 (not url-safe) alphabet
    ],
)
def test_malformed_identifiers_are_refused(check: object, value: str) -> None:
    assert callable(check)
    assert check(value) is False


def test_finess_corsica_check_runs_over_digits_only() -> None:
    finess = make_finess(random.Random(3), "2A")
    assert finess.startswith("2A")
    assert luhn_is_valid(finess.replace("A", ""))
    assert is_valid_finess(finess.replace("2A", "2B"))


def test_make_finess_refuses_bad_departement() -> None:
    with pytest.raises(ValueError):
        make_finess(random.Random(1), "2C")
