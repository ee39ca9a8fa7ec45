"""NIR (numéro d'inscription au répertoire) normalisation and validation.

The NIR is the French national health-insurance identifier of a person. It never leaves a
member's system in clear: members validate it, then turn it into a first-level token
(:mod:`gateway.crypto._pseudonym`). Validation errors name the field and the rule broken,
never the value.

Layout (15 characters, positions 1-based), sources: DOMAIN.md §2; INSEE "NIR" definition
(https://www.insee.fr/fr/metadonnees/definition/c1409); service-public.fr "numéro de sécurité
sociale"; Assurance Maladie's own validator (github.com/assurance-maladie-digital/nir-validation)::

    1      sex           1 male, 2 female; 7/8 provisional number (NIA/NNP);
                         5/6 provisional number of a migrant in transit (MIG)
    2-3    year          00-99, last two digits of the birth year
    4-5    month         01-12; 20-42 and 50-99 are "pseudo-months" given to people whose civil
                         record does not state the month (INSEE); 00, 13-19, 43-49 are refused
    6-7    département   01-99 or 2A/2B (Corsica, since 1976; "20" before). 97/98 (overseas)
                         use a 3-digit code 97x/98x in positions 6-8, leaving a 2-digit commune;
                         91-96 also code Algeria/Morocco/Tunisia before independence; 99 = born
                         abroad (positions 8-10 then hold the INSEE country code). "00" refused.
    8-10   commune       3 digits (or département digit + 2-digit commune overseas)
    11-13  order         3 digits
    14-15  key           97 - (first 13 digits mod 97), after 2A -> 19 and 2B -> 18

We check structure and key only. The commune and country codes are not checked against the
Code officiel géographique (it changes over time and old codes stay valid in old NIRs), and the
overseas third digit is not checked for the same reason. Three facts make the key detect every
single-character substitution: 97 is prime, so it divides no ``d * 10**k`` with ``0 < |d| < 10``;
``2A``/``2B`` map to 19/18, which differ from every other value ``2x`` by less than 97; and a
changed key digit changes the key.
"""

from __future__ import annotations

import re
from typing import Final

from gateway.errors import InvalidArgumentError

__all__ = ["NIR_LENGTH", "contains_nir", "nir_key", "normalise_nir", "validate_nir"]

NIR_LENGTH: Final = 15

_DIGITS: Final = frozenset("0123456789")
_SEPARATORS: Final = str.maketrans("", "", " .")
_SEX_DIGITS: Final = frozenset("125678")
_CORSICA: Final = {"2A": "19", "2B": "18"}
# Longest input we even look at: a NIR written with a separator between every character.
_MAX_RAW_LENGTH: Final = 64


def _month_allowed(month: int) -> bool:
    return 1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99


def normalise_nir(raw: str, *, field: str = "nir") -> str:
    """Strip spaces and dots and upper-case a NIR, without validating it.

    Args:
        raw: The NIR as typed or received, e.g. ``"2 53 07 2b 073 004 70"``.
        field: The field path named in errors.

    Returns:
        The compact upper-case form.

    Raises:
        InvalidArgumentError: ``raw`` is not a string or is absurdly long.
    """
    if not isinstance(raw, str):
        raise InvalidArgumentError.for_field(field, "must be a string")
    if len(raw) > _MAX_RAW_LENGTH:
        raise InvalidArgumentError.for_field(field, "length: must be 15 characters")
    return raw.strip().translate(_SEPARATORS).upper()


def nir_key(first13: str) -> int:
    """Compute the NIR control key of the first 13 characters.

    Args:
        first13: Normalised first 13 characters; ``2A``/``2B`` allowed at positions 6-7.

    Returns:
        The key, 1..97.

    Raises:
        ValueError: ``first13`` is not 13 characters of the NIR alphabet.
    """
    if len(first13) != 13:
        raise ValueError("the key is computed on exactly 13 characters")
    numeric = first13[:5] + _CORSICA.get(first13[5:7], first13[5:7]) + first13[7:]
    if not all(c in _DIGITS for c in numeric):
        raise ValueError("the key is computed on digits (and 2A/2B) only")
    return 97 - int(numeric) % 97


def validate_nir(raw: str, *, field: str = "nir") -> str:
    """Normalise and validate a NIR.

    Steps (DOMAIN.md §2; layout in the module docstring):
    1. normalise (strip spaces and dots, upper-case);
    2. length is 15;
    3. alphabet: ASCII digits everywhere, except ``2A``/``2B`` at positions 6-7;
    4. sex digit in 1, 2, 5, 6, 7, 8;
    5. month in 01-12, 20-42 or 50-99;
    6. département is not 00;
    7. key equals 97 - (first 13 digits mod 97), with 2A -> 19 and 2B -> 18.

    Args:
        raw: The NIR as typed or received.
        field: The field path named in errors (e.g. ``suspicion.beneficiary.nir``).

    Returns:
        The normalised NIR (15 characters).

    Raises:
        InvalidArgumentError: One violation on ``field`` naming the rule broken ("length",
            "format", "sex digit", "month", "département", "checksum"); never the value.
    """
    nir = normalise_nir(raw, field=field)  # step 1
    if len(nir) != NIR_LENGTH:  # step 2
        raise InvalidArgumentError.for_field(field, "length: must be 15 characters")
    department = nir[5:7]
    rest = nir[:5] + nir[7:]
    if not all(c in _DIGITS for c in rest) or not (  # step 3
        department in _CORSICA or all(c in _DIGITS for c in department)
    ):
        raise InvalidArgumentError.for_field(
            field, "format: digits only, except 2A/2B for Corsica at positions 6-7"
        )
    if nir[0] not in _SEX_DIGITS:  # step 4
        raise InvalidArgumentError.for_field(field, "sex digit: must be 1, 2, 5, 6, 7 or 8")
    if not _month_allowed(int(nir[3:5])):  # step 5
        raise InvalidArgumentError.for_field(field, "month: must be 01-12, 20-42 or 50-99")
    if department == "00":  # step 6
        raise InvalidArgumentError.for_field(field, "département: 00 does not exist")
    if int(nir[13:]) != nir_key(nir[:13]):  # step 7
        raise InvalidArgumentError.for_field(field, "checksum: the key does not match")
    return nir


# A run that might hold a NIR written with spaces or dots (15 significant characters).
_NIR_RUN = re.compile(r"[0-9][0-9ABab .]{13,44}[0-9]")


def contains_nir(text: str) -> bool:
    """Whether text holds something that validates as a NIR (spaces and dots allowed).

    Used on every free text and free identifier a member sends (facts, case and line
    references): a NIR there would be stored in clear, which the pseudonymisation forbids.
    """
    for run in _NIR_RUN.finditer(text):
        compact = run.group(0).replace(" ", "").replace(".", "").upper()
        for start in range(len(compact) - 14):
            window = compact[start : start + 15]
            if window[0] not in "125678":
                continue
            try:
                validate_nir(window)
            except InvalidArgumentError:
                continue
            return True
    return False
