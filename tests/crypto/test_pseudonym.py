"""Two-level pseudonyms: checked-in vectors, determinism, separation, rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto import (
    TOKEN1_LENGTH,
    KeyMaterialError,
    KeyRing,
    Rekeyer,
    SecretKey,
    first_level_message,
    first_level_token,
    parse_token1,
    split_pseudonym,
)
from gateway.errors import InvalidArgumentError

ROOT = Path(__file__).parents[2]
VECTORS: dict[str, Any] = json.loads(
    (ROOT / "tests" / "vectors" / "pseudonym" / "vectors.json").read_text(encoding="utf-8")
)
MEMBERS_KEY = bytes.fromhex(VECTORS["members_key_hex"])
GATEWAY_KEYS = {kid: bytes.fromhex(h) for kid, h in VECTORS["gateway_keys_hex"].items()}
NIR = "295109912611193"


def _ring(current: str = VECTORS["current_key_id"]) -> KeyRing:
    return KeyRing(GATEWAY_KEYS, current)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["case"])
def test_library_matches_independent_vectors(vector: dict[str, Any]) -> None:
    kwargs = {"birth_date": vector["birth_date"], "rank": vector["rank"]}
    assert first_level_message(vector["nir"], **kwargs).hex() == vector["message_hex"]
    token = first_level_token(vector["nir"], MEMBERS_KEY, **kwargs)
    assert token == vector["token1"]
    rekeyer = Rekeyer(_ring())
    for kid, expected in vector["pseudonyms"].items():
        assert rekeyer.rekey_with(token, kid) == expected


def test_vectors_file_is_what_the_script_makes() -> None:
    script = ROOT / "scripts" / "make_pseudonym_vectors.py"
    result = subprocess.run([sys.executable, str(script), "--check"], check=False)
    assert result.returncode == 0


def test_token_is_43_chars_unpadded_base64url_and_deterministic() -> None:
    a = first_level_token(NIR, MEMBERS_KEY)
    assert len(a) == TOKEN1_LENGTH and "=" not in a
    assert a == first_level_token("2 95 10 99 126 111 93", SecretKey(MEMBERS_KEY))
    assert len(parse_token1(a)) == 32


def test_token_depends_on_the_members_key() -> None:
    assert first_level_token(NIR, MEMBERS_KEY) != first_level_token(NIR, b"\x01" * 32)


def test_dependents_and_twins_get_distinct_tokens() -> None:
    holder = first_level_token(NIR, MEMBERS_KEY)
    child = first_level_token(NIR, MEMBERS_KEY, birth_date="2012-04-30")
    twin1 = first_level_token(NIR, MEMBERS_KEY, birth_date="2012-04-30", rank=1)
    twin2 = first_level_token(NIR, MEMBERS_KEY, birth_date="2012-04-30", rank=2)
    assert len({holder, child, twin1, twin2}) == 4


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"birth_date": "30/04/2012"}, "birth_date", "format"),
        ({"birth_date": "2012-02-30"}, "birth_date", "format"),
        ({"birth_date": "\uff12\uff10\uff11\uff12-04-30"}, "birth_date", "format"),
        ({"birth_date": "2012-04-30", "rank": 0}, "rank", "range"),
        ({"birth_date": "2012-04-30", "rank": 10}, "rank", "range"),
        ({"birth_date": "2012-04-30", "rank": True}, "rank", "range"),
        ({"rank": 1}, "rank", "requires birth_date"),
    ],
)
def test_bad_dependent_fields_are_refused(kwargs: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        first_level_token(NIR, MEMBERS_KEY, **kwargs)
    assert info.value.violations[0].field == field
    assert info.value.violations[0].description.startswith(rule)


def test_invalid_nir_is_refused_before_hashing() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        first_level_token("295109912611199", MEMBERS_KEY)
    assert info.value.violations[0].field == "nir"


@pytest.mark.parametrize("key", [b"", b"short", b"\x00" * 31])
def test_members_key_shorter_than_256_bits_is_refused(key: bytes) -> None:
    with pytest.raises(KeyMaterialError):
        first_level_token(NIR, key)


def test_rekey_differs_per_key_id_and_carries_it() -> None:
    token = first_level_token(NIR, MEMBERS_KEY)
    rekeyer = Rekeyer(_ring())
    p25, p26 = rekeyer.rekey_with(token, "gw-2025"), rekeyer.rekey_with(token, "gw-2026")
    assert p25 != p26
    assert split_pseudonym(p25)[0] == "gw-2025"
    assert split_pseudonym(p25)[1] != split_pseudonym(p26)[1]
    assert rekeyer.rekey(token) == p26


def test_rotation_lookup_finds_pseudonyms_stored_under_older_keys() -> None:
    """Rotation steps 2-4 of the ADR: old writes, new current key, lookup under every key."""
    token = first_level_token(NIR, MEMBERS_KEY)
    stored = Rekeyer(KeyRing({"gw-2025": GATEWAY_KEYS["gw-2025"]}, "gw-2025")).rekey(token)
    rotated = Rekeyer(_ring("gw-2026"))
    candidates = rotated.rekey_all_versions(token)
    assert candidates[0].startswith("gw-2026:")
    assert stored in candidates
    assert rotated.matches(token, stored)
    assert rotated.needs_migration(stored)
    migrated = rotated.migrate(token, stored)
    assert migrated == rotated.rekey(token) and not rotated.needs_migration(migrated)


def test_migrate_refuses_a_token_of_another_person() -> None:
    rekeyer = Rekeyer(_ring())
    stored = rekeyer.rekey_with(first_level_token(NIR, MEMBERS_KEY), "gw-2025")
    other = first_level_token("253072B07300470", MEMBERS_KEY)
    with pytest.raises(InvalidArgumentError):
        rekeyer.migrate(other, stored)


def test_retired_key_id_is_an_explicit_error() -> None:
    rekeyer = Rekeyer(KeyRing({"gw-2026": GATEWAY_KEYS["gw-2026"]}, "gw-2026"))
    token = first_level_token(NIR, MEMBERS_KEY)
    with pytest.raises(KeyMaterialError):
        rekeyer.rekey_with(token, "gw-2025")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "A" * 42,
        "A" * 44,
        "A" * 42 + "=",
        "+" * 43,
        "A" * 42 + "B",  # non-zero padding bits: not the canonical encoding
        "A" * 41 + "é" + "A",
    ],
)
def test_malformed_token1_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Rekeyer(_ring()).rekey(token)
    assert info.value.violations[0].field == "token1"
    assert token not in info.value.message or token == ""


@given(st.binary(min_size=32, max_size=32))
def test_any_32_byte_token_round_trips_and_rekeys_per_key(raw: bytes) -> None:
    import base64

    token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert parse_token1(token) == raw
    versions = Rekeyer(_ring()).rekey_all_versions(token)
    assert len(set(versions)) == 2


@pytest.mark.parametrize("pseudonym", ["", "gw", "gw:", "g w:" + "A" * 43, "gw:" + "A" * 42])
def test_malformed_pseudonym_is_refused(pseudonym: str) -> None:
    with pytest.raises(KeyMaterialError):
        split_pseudonym(pseudonym)
