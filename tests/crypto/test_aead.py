"""AES-256-GCM envelope: round trip, key rotation, and every kind of tampering detected."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto import (
    Envelope,
    KeyMaterialError,
    KeyRing,
    Sealed,
    TamperedCiphertextError,
    field_aad,
)

K1, K2 = bytes(range(32)), bytes(range(32, 64))
AAD = field_aad("suspicion/42", "free_text")
TEXT = "Lunettes vendues deux fois au même assuré".encode()


def _env(current: str = "k2") -> Envelope:
    return Envelope(KeyRing({"k1": K1, "k2": K2}, current))


def test_round_trip_under_current_key_with_fresh_nonce() -> None:
    env = _env()
    a, b = env.seal(TEXT, AAD), env.seal(TEXT, AAD)
    assert a.key_id == "k2" and len(a.nonce) == 12
    assert a.nonce != b.nonce and a.ciphertext != b.ciphertext
    assert TEXT not in a.ciphertext
    assert env.open(a, AAD) == TEXT


def test_old_values_open_after_rotation() -> None:
    old = _env("k1").seal(TEXT, AAD)
    assert _env("k2").open(old, AAD) == TEXT


def test_retired_key_is_an_explicit_key_error() -> None:
    old = _env("k1").seal(TEXT, AAD)
    with pytest.raises(KeyMaterialError):
        Envelope(KeyRing({"k2": K2}, "k2")).open(old, AAD)


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


@pytest.mark.parametrize(
    "attack",
    [
        "flip-ciphertext-byte",
        "flip-tag-byte",
        "flip-nonce-byte",
        "truncate-tag",
        "append-byte",
        "other-record",
        "other-field",
        "swap-key-id",
        "empty-ciphertext",
    ],
)
def test_tampering_is_detected(attack: str) -> None:
    env = _env()
    sealed = env.seal(TEXT, AAD)
    aad = AAD
    if attack == "flip-ciphertext-byte":
        sealed = dataclasses.replace(sealed, ciphertext=_flip(sealed.ciphertext, 0))
    elif attack == "flip-tag-byte":
        sealed = dataclasses.replace(sealed, ciphertext=_flip(sealed.ciphertext, -1))
    elif attack == "flip-nonce-byte":
        sealed = dataclasses.replace(sealed, nonce=_flip(sealed.nonce, 5))
    elif attack == "truncate-tag":
        sealed = dataclasses.replace(sealed, ciphertext=sealed.ciphertext[:-1])
    elif attack == "append-byte":
        sealed = dataclasses.replace(sealed, ciphertext=sealed.ciphertext + b"\x00")
    elif attack == "other-record":
        aad = field_aad("suspicion/43", "free_text")
    elif attack == "other-field":
        aad = field_aad("suspicion/42", "comment")
    elif attack == "swap-key-id":
        sealed = dataclasses.replace(sealed, key_id="k1")  # type: ignore[arg-type]
    elif attack == "empty-ciphertext":
        sealed = dataclasses.replace(sealed, ciphertext=b"")
    with pytest.raises(TamperedCiphertextError):
        env.open(sealed, aad)


def test_field_aad_is_unambiguous() -> None:
    assert field_aad("a", "bc") != field_aad("ab", "c")
    with pytest.raises(ValueError):
        field_aad("", "x")


def test_text_form_round_trips_and_rejects_garbage() -> None:
    env = _env()
    sealed = env.seal(TEXT, AAD)
    assert env.open(Sealed.from_text(sealed.to_text()), AAD) == TEXT
    for bad in ["", "v2.k2.AAAA.AAAA", "v1.k:2.AAAA.AAAA", "v1.k2.@@@.AAAA", "v1.k2.AAAA"]:
        with pytest.raises(TamperedCiphertextError):
            Sealed.from_text(bad)


def test_repr_shows_neither_plaintext_nor_ciphertext() -> None:
    sealed = _env().seal(TEXT, AAD)
    assert sealed.ciphertext.hex() not in repr(sealed) and "k2" in repr(sealed)


def test_aead_keys_must_be_exactly_32_bytes() -> None:
    with pytest.raises(KeyMaterialError):
        Envelope(KeyRing({"k": b"x" * 48}, "k"))


def test_seal_requires_bytes() -> None:
    with pytest.raises(TypeError):
        _env().seal("text", AAD)  # type: ignore[arg-type]


@given(st.binary(max_size=512), st.binary(max_size=64), st.data())
def test_any_single_bit_flip_is_detected(plaintext: bytes, aad: bytes, data: st.DataObject) -> None:
    env = _env()
    sealed = env.seal(plaintext, aad)
    blob = sealed.nonce + sealed.ciphertext
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    flipped = bytearray(blob)
    flipped[bit // 8] ^= 1 << (bit % 8)
    mutated = Sealed(sealed.key_id, bytes(flipped[:12]), bytes(flipped[12:]))
    with pytest.raises(TamperedCiphertextError):
        env.open(mutated, aad)
    assert env.open(sealed, aad) == plaintext
