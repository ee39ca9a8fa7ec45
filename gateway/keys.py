"""Key ring folders: how the gateway's secrets sit on disk and rotate.

A key ring folder holds one owner-only key file per version, ``<key id>.key`` (32 random bytes,
base64, written by :func:`gateway.crypto.generate_key_file`), and a ``CURRENT`` file naming the
version new writes use. Rotation adds a version and moves ``CURRENT``; older versions stay
readable (lookups try every live version) until an operator retires them
(``docs/operations.md``). The journal signing key is a single Ed25519 key file.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from gateway.crypto import KeyRing, generate_key_file, load_key_ring
from gateway.errors import FailedPreconditionError

__all__ = ["init_ring", "load_ring", "rotate_ring"]

_CURRENT = "CURRENT"
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _new_kid(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("k%Y%m%dT%H%M%S")


def _write_current(folder: Path, kid: str) -> None:
    tmp = folder / f".{_CURRENT}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(kid + "\n")
    os.replace(tmp, folder / _CURRENT)


def init_ring(folder: Path, *, kid: str | None = None) -> str:
    """Create a key ring folder (0700) with one fresh key, unless it already has one.

    Returns:
        The current key id.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (folder / _CURRENT).is_file():
        return (folder / _CURRENT).read_text().strip()
    kid = kid or _new_kid()
    generate_key_file(folder / f"{kid}.key")
    _write_current(folder, kid)
    return kid


def rotate_ring(folder: Path, *, kid: str | None = None) -> str:
    """Add a new key version and make it current; older versions stay readable.

    Raises:
        FailedPreconditionError: the folder is not a key ring, or the id already exists.
    """
    if not (folder / _CURRENT).is_file():
        raise FailedPreconditionError(f"{folder}: not a key ring (no {_CURRENT} file)")
    kid = kid or _new_kid()
    if (folder / f"{kid}.key").exists():
        raise FailedPreconditionError(f"{folder}: key id {kid} already exists")
    generate_key_file(folder / f"{kid}.key")
    _write_current(folder, kid)
    return kid


def load_ring(folder: Path) -> KeyRing:
    """Load every ``<id>.key`` of a key ring folder with its ``CURRENT`` version.

    Raises:
        FailedPreconditionError: missing folder, ``CURRENT`` file or current key.
        gateway.crypto.KeyMaterialError: a key file is unsafe or malformed.
    """
    current_file = folder / _CURRENT
    if not current_file.is_file():
        raise FailedPreconditionError(f"{folder}: not a key ring (no {_CURRENT} file)")
    current = current_file.read_text().strip()
    paths = {p.stem: p for p in sorted(folder.glob("*.key")) if _KID.match(p.stem)}
    if current not in paths:
        raise FailedPreconditionError(f"{folder}: the current key {current} is missing")
    return load_key_ring(paths, current)
