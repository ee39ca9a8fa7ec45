"""File helpers for the PKI: private files are created 0600 and directories 0700.

Modes are set at creation (``os.open(..., 0o600)``, ``os.mkdir(..., 0o700)``), never widened
and never fixed afterwards with ``chmod``: a key is never readable by others, even for an
instant. The process umask can only remove bits from these modes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from gateway.errors import AlreadyExistsError, FailedPreconditionError

__all__ = ["ensure_private_dir", "locked", "write_file"]

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700, or accept an existing directory
    that is not writable by group or others.

    Raises:
        FailedPreconditionError: ``path`` exists and is not a directory, or is group/world
            writable.
    """
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise FailedPreconditionError(f"{path}: exists and is not a directory") from None
        if path.stat().st_mode & 0o022:
            raise FailedPreconditionError(
                f"{path}: directory is writable by group or others"
            ) from None
    return path


def write_file(path: Path, data: bytes, *, private: bool, replace: bool = False) -> Path:
    """Write ``data`` to a new file, 0600 if ``private`` else 0644, fsync-ed.

    With ``replace``, the data goes to a fresh temporary file (same mode from creation) that
    then atomically replaces ``path``.

    Raises:
        AlreadyExistsError: ``path`` exists and ``replace`` is false.
    """
    mode = PRIVATE_FILE_MODE if private else PUBLIC_FILE_MODE
    target = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp") if replace else path
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError:
        raise AlreadyExistsError(f"{path}: already exists") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(target, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if replace:
                target.unlink()
        raise
    return path


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``directory/.lock`` (serialises CRL updates)."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
