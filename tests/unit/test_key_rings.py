"""Key ring folders: owner-only files, rotation keeps old versions readable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.errors import FailedPreconditionError
from gateway.keys import init_ring, load_ring, rotate_ring


def test_init_creates_owner_only_folder_and_key(tmp_path: Path) -> None:
    folder = tmp_path / "ring"
    kid = init_ring(folder, kid="k1")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "k1.key").stat().st_mode) == 0o600
    ring = load_ring(folder)
    assert ring.current_id == kid == "k1"
    assert init_ring(folder) == "k1"  # idempotent: never replaces an existing ring


def test_rotation_adds_a_current_version_and_keeps_the_old(tmp_path: Path) -> None:
    folder = tmp_path / "ring"
    init_ring(folder, kid="k1")
    assert rotate_ring(folder, kid="k2") == "k2"
    ring = load_ring(folder)
    assert ring.current_id == "k2" and set(ring.ids()) == {"k1", "k2"}
    with pytest.raises(FailedPreconditionError, match="already exists"):
        rotate_ring(folder, kid="k2")


def test_loading_a_folder_that_is_not_a_ring_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FailedPreconditionError, match="not a key ring"):
        load_ring(tmp_path)
    (tmp_path / "CURRENT").write_text("k9\n")
    with pytest.raises(FailedPreconditionError, match="missing"):
        load_ring(tmp_path)
