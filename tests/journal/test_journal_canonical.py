"""The canonical event encoding (RFC 8785) and the salted commitment of personal fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.errors import InvalidArgumentError
from gateway.journal import (
    CommitmentError,
    JournalEvent,
    PersonalFields,
    commit_personal,
    event_time,
    leaf_entry,
    leaf_hash,
    verify_personal,
)

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "tests" / "vectors" / "merkle" / "generated.json").read_text(
        "utf-8"
    )
)["event"]
SALT = bytes.fromhex(VECTOR["salt_hex"])
EVENT = JournalEvent.model_validate(VECTOR["event"])
PERSONAL = PersonalFields.model_validate(VECTOR["personal"])


def test_event_leaf_matches_the_independent_vector() -> None:
    commitment = commit_personal(PERSONAL, SALT)
    assert commitment == VECTOR["personal_commitment"]
    entry = leaf_entry(EVENT, commitment)
    assert entry == VECTOR["leaf_entry"].encode()
    assert leaf_hash(entry).hex() == VECTOR["leaf_hash_hex"]


def test_leaf_does_not_contain_personal_fields() -> None:
    entry = leaf_entry(EVENT, commit_personal(PERSONAL, SALT))
    for value in (*PERSONAL.record_refs, *PERSONAL.subject_pseudonyms):
        assert value.encode() not in entry


def test_store_style_lists_are_accepted() -> None:
    """gateway.store builds PersonalFields from lists; the model keeps tuples (frozen)."""
    fields = PersonalFields(record_refs=["a"], subject_pseudonyms=["b"])  # type: ignore[arg-type]
    assert fields.record_refs == ("a",)


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 13},
        {"member_id": "cpam-76"},
        {"decision": "deny"},
        {"rule_ids": ["l114-9-1", "amo.read.own"]},  # order matters
        {"rule_ids": ["amo.read.own"]},
        {"record_count": 3},
        {"time": "2026-03-01T09:15:42.123457Z"},
        {"purpose": "litigation"},
    ],
)
def test_any_field_change_changes_the_leaf(change: dict[str, Any]) -> None:
    commitment = commit_personal(PERSONAL, SALT)
    altered = JournalEvent.model_validate({**VECTOR["event"], **change})
    assert leaf_entry(altered, commitment) != leaf_entry(EVENT, commitment)


def test_revealed_personal_fields_open_the_commitment() -> None:
    commitment = commit_personal(PERSONAL, SALT)
    verify_personal(PERSONAL, SALT, commitment)
    other = PersonalFields(record_refs=PERSONAL.record_refs, subject_pseudonyms=("gw-2026:B",))
    for fields, salt in [(other, SALT), (PERSONAL, bytes(32)), (PERSONAL, SALT[:16])]:
        with pytest.raises(CommitmentError):
            verify_personal(fields, salt, commitment)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=4), st.lists(st.text(max_size=12), max_size=4))
def test_distinct_personal_fields_give_distinct_commitments(
    refs: list[str], pseudonyms: list[str]
) -> None:
    fields = PersonalFields(record_refs=tuple(refs), subject_pseudonyms=tuple(pseudonyms))
    try:
        commitment = commit_personal(fields, SALT)
    except InvalidArgumentError:
        return  # lone surrogates are not representable in RFC 8785 JSON
    verify_personal(fields, SALT, commitment)
    swapped = PersonalFields(record_refs=tuple(pseudonyms), subject_pseudonyms=tuple(refs))
    if refs != pseudonyms:
        assert commit_personal(swapped, SALT) != commitment


@pytest.mark.parametrize("salt", [b"", b"\x00" * 31, b"\x00" * 33])
def test_salt_must_be_32_bytes(salt: bytes) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        commit_personal(PERSONAL, salt)
    assert info.value.violations[0].field == "salt"


@pytest.mark.parametrize("commitment", ["", "AB" * 32, "ab" * 31, "zz" * 32])
def test_commitment_must_be_lowercase_hex_sha256(commitment: str) -> None:
    with pytest.raises(InvalidArgumentError):
        leaf_entry(EVENT, commitment)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time": "2026-03-01T09:15:42Z"}, "time"),
        ({"time": "2026-03-01T09:15:42.123456+00:00"}, "time"),
        ({"time": "2026-13-01T09:15:42.123456Z"}, "time"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_id": "0B5E2A58-7C1E-4C0E-9A47-3F4F2F6B9D10"}, "event_id"),
        ({"decision": "maybe"}, "decision"),
        ({"seq": -1}, "seq"),
        ({"seq": 2**53}, "seq"),
        ({"seq": True}, "seq"),
        ({"record_count": "2"}, "record_count"),
        ({"extra": 1}, "extra"),
    ],
)
def test_malformed_events_are_refused(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        JournalEvent.model_validate({**VECTOR["event"], **change})
    assert info.value.errors()[0]["loc"][0] == field


def test_event_time_is_utc_with_microseconds() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 1, 10, 15, 42, 5, tzinfo=paris)
    assert event_time(moment) == "2026-03-01T09:15:42.000005Z"
    assert event_time(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03-01T00:00:00.000000Z"
    with pytest.raises(InvalidArgumentError):
        event_time(datetime(2026, 3, 1))


# -- the fast RFC 8785 path agrees with the reference implementation -----------------------------
_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)  # controls, quotes, emoji...
_SHAPES = st.dictionaries(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
    st.one_of(_TEXT, st.integers(0, 2**53 - 1), st.lists(_TEXT, max_size=4)),
    max_size=8,
)


@settings(max_examples=400)
@given(_SHAPES)
def test_fast_canonical_json_is_byte_identical_to_rfc8785(obj: dict[str, Any]) -> None:
    import rfc8785

    from gateway.journal._canonical import _jcs

    assert _jcs(obj, "event") == rfc8785.dumps(obj)


@pytest.mark.parametrize(
    "value", ["\x00\x1f\x7f", '"\\/', "\u2028\u2029", "é😀", "\ud800x", "a\udfffb"]
)
def test_fast_canonical_json_on_edge_strings(value: str) -> None:
    import rfc8785

    from gateway.journal._canonical import _jcs

    try:
        expected: bytes | None = rfc8785.dumps({"k": value, "l": [value]})
    except rfc8785.CanonicalizationError:
        expected = None
    if expected is None:  # lone surrogates: refused both ways
        with pytest.raises(InvalidArgumentError):
            _jcs({"k": value, "l": [value]}, "event")
    else:
        assert _jcs({"k": value, "l": [value]}, "event") == expected
