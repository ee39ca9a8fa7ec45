"""Lint, format and type checks run with the tests, so CI (which runs `make test`) keeps them.

STYLE.md: ruff (lint + format) everywhere, mypy --strict on gateway/ and policy/, every
ignore carrying its code and reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SOURCES = ["gateway", "policy", "tests", "bench", "scripts"]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["ruff", "check", *SOURCES], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", *SOURCES], id="ruff-format"),
        pytest.param(["mypy"], id="mypy-strict"),
    ],
)
def test_static_check_is_clean(argv: list[str]) -> None:
    tool = BIN / argv[0]
    if not tool.exists():
        pytest.fail(f"{argv[0]} is not installed in the virtual environment (make install)")
    result = _run(str(tool), *argv[1:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
