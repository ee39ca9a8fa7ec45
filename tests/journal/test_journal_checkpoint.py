"""C2SP signed notes and tlog-checkpoints: Go reference vectors, our vector, attacks."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidArgumentError
from gateway.journal import (
    Checkpoint,
    JournalKeyError,
    NoteError,
    load_signing_key,
    open_note,
    parse_checkpoint_text,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    vkey_for,
)

VECTORS = Path(__file__).parents[2] / "tests" / "vectors" / "merkle"
GO: dict[str, Any] = json.loads((VECTORS / "signed_note_go.json").read_text("utf-8"))
OURS: dict[str, Any] = json.loads((VECTORS / "generated.json").read_text("utf-8"))["checkpoint"]
ORIGIN = "vigie.test/journal"
KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(OURS["seed_hex"]))
VKEY = vkey_for(ORIGIN, KEY.public_key())
ROOT = bytes.fromhex(OURS["root_hex"])


def _go_signing_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(GO["skey"].split("+", 4)[4])
    assert raw[0] == 1
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


# --- golang.org/x/mod/sumdb/note reference vectors ---------------------------------------


def test_go_vkey_parses_and_round_trips() -> None:
    verifier = parse_vkey(GO["vkey"])
    assert verifier.name == "PeterNeumann" and verifier.key_id.hex() == "c74f20a3"
    assert verifier.vkey == GO["vkey"]
    assert vkey_for("PeterNeumann", _go_signing_key().public_key()) == GO["vkey"]


def test_signing_reproduces_the_go_note_byte_for_byte() -> None:
    assert sign_note(GO["text"], "PeterNeumann", _go_signing_key()) == GO["note"].encode()


def test_go_note_opens_and_ignores_an_unknown_signer() -> None:
    verifier = parse_vkey(GO["vkey"])
    assert open_note(GO["note"].encode(), verifier) == GO["text"]
    both = GO["note"] + GO["other_signature_line"]
    assert open_note(both.encode(), verifier) == GO["text"]
    enoch = parse_vkey(GO["other_vkey"])
    assert open_note(both.encode(), enoch) == GO["text"]
    with pytest.raises(NoteError, match="no signature by trusted key"):
        open_note(GO["note"].encode(), enoch)


def test_every_substring_and_byte_increment_of_the_vkey_is_refused() -> None:
    """Go's TestNewVerifier manglings."""
    vkey = GO["vkey"]
    bad = [vkey[i:j] for i in range(len(vkey) + 1) for j in range(i + 1, len(vkey) + 1)]
    bad = [k for k in bad if k != vkey]
    bad += [vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :] for i in range(len(vkey))]
    bad += GO["bad_vkeys"]
    for k in bad:
        with pytest.raises(JournalKeyError):
            parse_vkey(k)


@pytest.mark.parametrize(
    ("name", "note"),
    [
        ("text only", GO["text"]),
        ("text and blank line", GO["text"] + "\n"),
        ("signature line without newline", GO["note"][:-1]),
        ("control character", "\x01" + GO["note"]),
        ("name with a space", GO["note"].replace("PeterNeumann", "Peter Neumann")),
        ("unexpected line", GO["note"] + "Unexpected line.\n"),
        ("101 signatures", GO["text"] + "\n" + GO["note"].split("\n\n")[1] * 101),
        ("non-canonical base64", GO["note"].replace("AM=\n", "AN=\n")),
        ("altered text", GO["note"].replace("cryptography", "cryptographY")),
        ("signature bytes changed", GO["note"].replace("x08go/ZJ", "x08go/ZK")),
        ("no em dash", GO["note"].replace("\u2014 ", "- ")),
    ],
)
def test_malformed_or_forged_notes_are_refused(name: str, note: str) -> None:
    with pytest.raises(NoteError):
        open_note(note.encode(), parse_vkey(GO["vkey"]))


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(NoteError):
        open_note(b"\xff" + GO["note"].encode(), parse_vkey(GO["vkey"]))


# --- Vigie checkpoints -------------------------------------------------------------------


def test_checkpoint_matches_the_independent_vector() -> None:
    assert VKEY == OURS["vkey"]
    note = sign_checkpoint(ORIGIN, OURS["size"], ROOT, KEY)
    assert note == OURS["note"].encode()
    cp = verify_checkpoint(note, VKEY)
    assert cp == Checkpoint(ORIGIN, OURS["size"], ROOT)  # type: ignore[arg-type]


def test_checkpoint_with_extension_lines_round_trips() -> None:
    note = sign_checkpoint(ORIGIN, 3, ROOT, KEY, ("ext one", "ext two"))
    assert verify_checkpoint(note, VKEY).extensions == ("ext one", "ext two")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("missing root", f"{ORIGIN}\n7\n"),
        ("leading zero", f"{ORIGIN}\n07\n{base64.b64encode(ROOT).decode()}\n"),
        ("signed size", f"{ORIGIN}\n+7\n{base64.b64encode(ROOT).decode()}\n"),
        ("non-ascii digit", f"{ORIGIN}\n\u0667\n{base64.b64encode(ROOT).decode()}\n"),
        ("short root", f"{ORIGIN}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n"),
        ("unpadded root", f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode().rstrip('=')}\n"),
        ("empty origin", f"\n7\n{base64.b64encode(ROOT).decode()}\n"),
        ("no final newline", f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode()}"),
    ],
)
def test_malformed_checkpoint_bodies_are_refused(name: str, text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint_text(text)


def test_checkpoint_of_another_origin_is_refused() -> None:
    other = "vigie.test/other"
    note = sign_note(f"{other}\n1\n{base64.b64encode(ROOT).decode()}\n", ORIGIN, KEY)
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(note, VKEY)


def test_checkpoint_signed_by_another_key_is_refused() -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, Ed25519PrivateKey.generate())
    with pytest.raises(NoteError):
        verify_checkpoint(note, VKEY)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_single_byte_change_of_a_checkpoint_is_detected(data: st.DataObject) -> None:
    note = bytearray(OURS["note"].encode())
    pos = data.draw(st.integers(0, len(note) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != note[pos]))
    note[pos] = new
    with pytest.raises((NoteError, JournalKeyError)):
        verify_checkpoint(bytes(note), VKEY)


def test_checkpoint_fields_that_cannot_be_written_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        sign_checkpoint(ORIGIN, -1, ROOT, KEY)
    with pytest.raises(InvalidArgumentError):
        sign_checkpoint(ORIGIN, 1, ROOT[:5], KEY)
    with pytest.raises(InvalidArgumentError):
        sign_checkpoint(ORIGIN, 1, ROOT, KEY, ("",))
    with pytest.raises(JournalKeyError):
        sign_checkpoint("vigie test", 1, ROOT, KEY)  # a key name holds no space


# --- key allowlist -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["ecdsa-p256", "rsa-2048"],
)
def test_non_ed25519_keys_are_refused(key: Any) -> None:
    with pytest.raises(JournalKeyError):
        sign_checkpoint(ORIGIN, 1, ROOT, key)
    with pytest.raises(JournalKeyError):
        vkey_for(ORIGIN, key.public_key())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(JournalKeyError):
        load_signing_key(pem)


def test_ed25519_pem_key_loads() -> None:
    pem = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert vkey_for(ORIGIN, load_signing_key(pem).public_key()) == VKEY
    with pytest.raises(JournalKeyError):
        load_signing_key(b"not a key")


def test_vkey_with_another_algorithm_byte_is_refused() -> None:
    """An ECDSA (type 0x02) verifier key with a correct key ID is still refused."""
    import hashlib

    raw = b"\x02" + b"\x04" * 65
    kid = hashlib.sha256(ORIGIN.encode() + b"\n" + raw).digest()[:4].hex()
    with pytest.raises(JournalKeyError, match="only Ed25519"):
        parse_vkey(f"{ORIGIN}+{kid}+{base64.b64encode(raw).decode()}")
