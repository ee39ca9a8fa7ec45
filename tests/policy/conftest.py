"""Fixtures for the policy layer tests: the shipped engines, loaded once, and bundle copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from policy import BUNDLED, PolicyEngine, bundle_path


@pytest.fixture(scope="session")
def engines() -> dict[str, PolicyEngine]:
    return {name: PolicyEngine.load(bundle_path(name)) for name in BUNDLED}


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    """A writable copy of current-law (same folder name, so it still loads)."""
    dst = tmp_path / "current-law"
    shutil.copytree(bundle_path("current-law"), dst)
    return dst
