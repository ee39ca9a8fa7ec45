"""Key material: minimum size, no leak through repr/str/pickle, key files' format and mode."""

from __future__ import annotations

import base64
import os
import pickle
import stat
from pathlib import Path

import pytest

from gateway.crypto import (
    Envelope,
    KeyMaterialError,
    KeyRing,
    Rekeyer,
    SecretKey,
    generate_key_file,
    load_key_file,
    load_key_ring,
)

MATERIAL = bytes(range(100, 132))


def _write(path: Path, content: bytes, mode: int) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, content)
    os.close(fd)
    os.chmod(path, mode)  # the test sets exact modes despite the umask
    return path


def test_repr_and_str_never_show_key_material() -> None:
    key = SecretKey(MATERIAL)
    ring = KeyRing({"k1": MATERIAL, "k2": bytes(32)}, "k1")
    shown = [repr(key), str(key), repr(ring), str(ring), repr(Rekeyer(ring)), repr(Envelope(ring))]
    shown.append(f"{key} {ring!r}")
    for text in shown:
        assert MATERIAL.hex() not in text
        assert base64.b64encode(MATERIAL).decode() not in text
        assert repr(MATERIAL) not in text
    assert "k1" in repr(ring) and "redacted" in repr(key)


def test_keys_refuse_pickling() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(SecretKey(MATERIAL))
    with pytest.raises(TypeError):
        pickle.dumps(KeyRing({"k1": MATERIAL}, "k1"))


@pytest.mark.parametrize("material", [b"", b"x" * 16, b"x" * 31, b"x" * 65])
def test_key_size_outside_32_to_64_bytes_is_refused(material: bytes) -> None:
    with pytest.raises(KeyMaterialError):
        SecretKey(material)


def test_key_compare_is_by_value() -> None:
    assert SecretKey(MATERIAL) == SecretKey(MATERIAL)
    assert SecretKey(MATERIAL) != SecretKey(bytes(32))


@pytest.mark.parametrize(
    ("keys", "current"),
    [
        ({}, "k1"),
        ({"k1": MATERIAL}, "k2"),
        ({"k:1": MATERIAL}, "k:1"),
        ({"": MATERIAL}, ""),
        ({"k1": MATERIAL, "k2": MATERIAL}, "k1"),
    ],
    ids=["empty", "current-missing", "colon-in-id", "empty-id", "reused-material"],
)
def test_inconsistent_key_ring_is_refused(keys: dict[str, bytes], current: str) -> None:
    with pytest.raises(KeyMaterialError):
        KeyRing(keys, current)


def test_key_ring_lists_current_first() -> None:
    ring = KeyRing({"old": bytes(32), "new": MATERIAL}, "new")
    assert ring.ids() == ("new", "old") and ring.current == SecretKey(MATERIAL)
    assert "old" in ring and len(ring) == 2


def test_generated_key_file_is_0600_from_creation_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "gw.key"
    key = generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(path) == key
    with pytest.raises(KeyMaterialError):
        generate_key_file(path)  # never overwrites


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o610, 0o601])
def test_group_or_world_accessible_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "k", base64.b64encode(MATERIAL) + b"\n", mode)
    with pytest.raises(KeyMaterialError, match="group or others"):
        load_key_file(path)


def test_owner_read_only_key_file_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "k", base64.b64encode(MATERIAL), 0o400)
    assert load_key_file(path) == SecretKey(MATERIAL)


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (base64.b64encode(b"x" * 16) + b"\n", "exactly 32"),
        (MATERIAL, "base64"),
        (MATERIAL.hex().encode(), "exactly 32"),
        (b"-----BEGIN KEY-----\n" + base64.b64encode(MATERIAL) + b"\n", "base64"),
        (base64.b64encode(MATERIAL) + b"\n\n", "base64"),
        (b" " + base64.b64encode(MATERIAL), "base64"),
        (base64.urlsafe_b64encode(b"\xff" * 32), "base64"),
        (b"", "exactly 32"),
        (base64.b64encode(b"x" * 48), "exactly 32"),
    ],
    ids=[
        "short",
        "raw-binary",
        "hex",
        "pem",
        "two-newlines",
        "leading-space",
        "urlsafe",
        "empty",
        "48-bytes",
    ],
)
def test_key_file_outside_the_allowlisted_format_is_refused(
    tmp_path: Path, content: bytes, rule: str
) -> None:
    path = _write(tmp_path / "k", content, 0o600)
    with pytest.raises(KeyMaterialError, match=rule) as info:
        load_key_file(path)
    assert MATERIAL.hex() not in str(info.value)


def test_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "real"
    generate_key_file(target)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(KeyMaterialError, match="cannot open"):
        load_key_file(link)


def test_missing_key_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match=r"missing\.key"):
        load_key_file(tmp_path / "missing.key")


def test_directory_is_not_a_key_file(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    with pytest.raises(KeyMaterialError):
        load_key_file(d)


def test_load_key_ring_from_files(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "a")
    b = generate_key_file(tmp_path / "b")
    ring = load_key_ring({"a": tmp_path / "a", "b": tmp_path / "b"}, "b")
    assert ring.current == b
