"""Format and check-digit rules of the identifiers a claim line carries, and makers of valid ones.

Pure functions, no I/O. The validators answer ``True``/``False``; callers turn a ``False`` into a
field violation that names the rule, never the value. The ``make_*`` helpers draw valid
identifiers from a :class:`random.Random` so synthetic data and tests share one definition.

Rules (DOMAIN.md §2 and the claim-line specification shared with proto and synth):

* RPPS: 11 digits, the last one a Luhn check digit (observed on the public directory).
* ADELI: 9 digits, Luhn (older directory, kept for completeness).
* AM number (numéro d'Assurance Maladie of the billing site): 9 digits, no check digit specified.
* FINESS: 9 characters, digits or a Corsican ``2A``/``2B`` département prefix; the Luhn check runs
  over the digits only (the Corsican letter is skipped).
* LPP code: 7 digits. CCAM code: 4 uppercase letters then 3 digits (``HBLD680``). ``SUI``: the
  audiology follow-up code.
* Beneficiary token (first level): unpadded base64url of a 32-byte HMAC-SHA-256, i.e. 43
  characters whose last one carries 4 significant bits (canonical encoding).
"""

from __future__ import annotations

import random
import re

__all__ = [
    "FOLLOW_UP_ACT_CODE",
    "is_ccam_code",
    "is_valid_adeli",
    "is_valid_am_number",
    "is_valid_finess",
    "is_valid_lpp",
    "is_valid_rpps",
    "is_valid_token",
    "luhn_complete",
    "luhn_is_valid",
    "make_adeli",
    "make_am_number",
    "make_ccam",
    "make_finess",
    "make_lpp",
    "make_rpps",
    "make_token",
]

FOLLOW_UP_ACT_CODE = "SUI"
"""Act code of the audiology follow-up (billed 0.01 €)."""

_DIGITS_11 = re.compile(r"[0-9]{11}")
_DIGITS_9 = re.compile(r"[0-9]{9}")
_DIGITS_7 = re.compile(r"[0-9]{7}")
_FINESS = re.compile(r"(?:[0-9]{2}|2A|2B)[0-9]{7}")
_CCAM = re.compile(r"[A-Z]{4}[0-9]{3}")
# 43 base64url characters; the last encodes 4 bits followed by two zero bits (32-byte input).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _luhn_sum(digits: str, *, has_check_digit: bool) -> int:
    """Luhn sum: double every second digit counting from the right (check digit excluded)."""
    total = 0
    double = not has_check_digit
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        double = not double
    return total


def luhn_is_valid(digits: str) -> bool:
    """Return whether a string of ASCII digits ends with a correct Luhn check digit."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    return _luhn_sum(digits, has_check_digit=True) % 10 == 0


def luhn_complete(digits: str) -> str:
    """Append the Luhn check digit to ``digits``.

    Raises:
        ValueError: ``digits`` is empty or not made of ASCII digits.
    """
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError("luhn_complete needs a non-empty string of ASCII digits")
    check = (10 - _luhn_sum(digits, has_check_digit=False) % 10) % 10
    return digits + str(check)


def is_valid_rpps(value: str) -> bool:
    """RPPS: 11 digits, Luhn-valid."""
    return _DIGITS_11.fullmatch(value) is not None and luhn_is_valid(value)


def is_valid_adeli(value: str) -> bool:
    """ADELI: 9 digits, Luhn-valid."""
    return _DIGITS_9.fullmatch(value) is not None and luhn_is_valid(value)


def is_valid_am_number(value: str) -> bool:
    """AM number of a billing site: 9 digits."""
    return _DIGITS_9.fullmatch(value) is not None


def is_valid_finess(value: str) -> bool:
    """FINESS: 9 characters (``2A``/``2B`` allowed as département), Luhn over the digits."""
    if _FINESS.fullmatch(value) is None:
        return False
    return luhn_is_valid(value.replace("A", "").replace("B", ""))


def is_valid_lpp(value: str) -> bool:
    """LPP code: 7 digits."""
    return _DIGITS_7.fullmatch(value) is not None


def is_ccam_code(value: str) -> bool:
    """CCAM code: 4 uppercase ASCII letters then 3 digits."""
    return _CCAM.fullmatch(value) is not None


def is_valid_token(value: str) -> bool:
    """First-level beneficiary token: canonical unpadded base64url of 32 bytes (43 chars)."""
    return _TOKEN.fullmatch(value) is not None


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_rpps(rng: random.Random) -> str:
    """Draw a valid RPPS (``1`` followed by 9 random digits and the Luhn digit)."""
    return luhn_complete("1" + _digits(rng, 9))


def make_adeli(rng: random.Random) -> str:
    """Draw a valid ADELI number."""
    return luhn_complete(_digits(rng, 8))


def make_am_number(rng: random.Random, departement: str | None = None) -> str:
    """Draw a valid 9-digit AM number, optionally starting with a 2-digit département."""
    dep = departement if departement is not None else f"{rng.randint(1, 95):02d}"
    if len(dep) != 2 or not dep.isdigit():
        raise ValueError("departement must be 2 digits for an AM number")
    return dep + _digits(rng, 7)


def make_finess(rng: random.Random, departement: str | None = None) -> str:
    """Draw a valid FINESS; ``departement`` may be ``2A``/``2B`` (Corsica) or 2 digits.

    Raises:
        ValueError: ``departement`` is not 2 digits nor ``2A``/``2B``.
    """
    dep = departement if departement is not None else f"{rng.randint(1, 95):02d}"
    if dep in ("2A", "2B"):
        return dep + luhn_complete("2" + _digits(rng, 6))[1:]
    if len(dep) != 2 or not dep.isdigit():
        raise ValueError("departement must be 2 digits, 2A or 2B for a FINESS")
    return luhn_complete(dep + _digits(rng, 6))


def make_lpp(rng: random.Random) -> str:
    """Draw a 7-digit LPP code."""
    return _digits(rng, 7)


def make_ccam(rng: random.Random) -> str:
    """Draw a CCAM-shaped code (4 uppercase letters, 3 digits)."""
    letters = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
    return letters + _digits(rng, 3)


def make_token(rng: random.Random) -> str:
    """Draw a canonical 43-character base64url token (stands in for an HMAC output)."""
    return "".join(rng.choice(_B64URL) for _ in range(42)) + rng.choice("AEIMQUYcgkosw048")
