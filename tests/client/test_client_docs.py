"""docs/sdk.md's examples run as written, as separate processes, against a real gateway."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.claims.claim_gen import amo_lines
from tests.client._support import NIR, cover, wait_until
from tests.client.conftest import Sdk

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sdk.md"
_EXAMPLE = re.compile(r"<!-- example: (\w+) member=([\w-]+) -->\n```python\n(.*?)```", re.DOTALL)
EXAMPLES = {name: (member, code) for name, member, code in _EXAMPLE.findall(DOC.read_text())}


def _env(sdk: Sdk, member: str) -> dict[str, str]:
    pki = sdk.env.pki_dir
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VIGIE_CLIENT_ADDRESS": sdk.env.target,
        "VIGIE_CLIENT_CERT": str(pki / "members" / f"{member}.crt"),
        "VIGIE_CLIENT_KEY": str(pki / "members" / f"{member}.key"),
        "VIGIE_CLIENT_CA": str(pki / "ca.crt"),
        "VIGIE_MEMBERS_KEY": str(sdk.key_file),
    }


async def _start(sdk: Sdk, name: str, cwd: Path) -> asyncio.subprocess.Process:
    member, code = EXAMPLES[name]
    script = cwd / f"example_{name}.py"
    script.write_text(code, encoding="utf-8")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=cwd,
        env=_env(sdk, member),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _run(sdk: Sdk, name: str, cwd: Path) -> str:
    process = await _start(sdk, name, cwd)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, f"example {name} failed:\n{err.decode()}"
    return out.decode()


def test_every_example_of_the_guide_is_run_here() -> None:
    assert set(EXAMPLES) == {
        "connect", "sync", "pseudonymise", "submit", "upload", "follow", "check", "errors"
    }  # fmt: skip


async def test_the_guides_examples_run_against_a_real_gateway(sdk: Sdk, tmp_path: Path) -> None:
    assert "members/mut-alpha" in await _run(sdk, "connect", tmp_path)
    assert "members/mut-alpha" in await _run(sdk, "sync", tmp_path)
    assert "checksum" in await _run(sdk, "pseudonymise", tmp_path)

    amo = sdk.client("cpam-75")
    assert amo.pseudonymiser is not None
    cover(sdk.env, "mut-alpha", amo.pseudonymiser.token(NIR))  # mut-alpha insures that person
    assert "suspicions/" in await _run(sdk, "submit", tmp_path)

    claims = tmp_path / "claims-cpam-75.jsonl"
    claims.write_text("".join(json.dumps(r) + "\n" for r in amo_lines(8, 20)), encoding="utf-8")
    assert "committed 20 accepted" in await _run(sdk, "upload", tmp_path)

    follower = await _start(sdk, "follow", tmp_path)
    cursor = tmp_path / "vigie-cursor.json"
    await wait_until(lambda: cursor.exists(), deadline_s=30)
    follower.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(follower.communicate(), 30)
    assert follower.returncode == 0, err.decode()
    assert "open a case for suspicions/" in out.decode() and "processed 1" in out.decode()
    assert json.loads(cursor.read_text())["after_sequence"] >= 1

    assert "v1" in await _run(sdk, "check", tmp_path)
    errors = await _run(sdk, "errors", tmp_path)
    assert "denied by ('default-deny',)" in errors and "no such suspicion" in errors
    assert "page_token:" in errors


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_import_only_the_public_sdk(name: str) -> None:
    code = EXAMPLES[name][1]
    private = re.findall(r"from gateway\.client\.(_\w+)", code)
    assert private == [], f"example {name} imports private modules {private}"
