"""deploy/Dockerfile and its ignore file: multi-stage, non-root, no secret can enter the image.

No Docker engine runs here: the Dockerfile is parsed as text (instructions, stages) and the
ignore file is checked against what the Dockerfile copies.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass

from deploy_files import DOCKERFILE, DOCKERIGNORE, ROOT


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def _instructions() -> list[Instruction]:
    text = DOCKERFILE.read_text("utf-8")
    joined = re.sub(r"\\\n", " ", text)  # line continuations
    result, stage = [], -1
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append(Instruction(stage, keyword, args.strip()))
    return result


def _final_stage() -> list[Instruction]:
    instructions = _instructions()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def test_image_is_built_in_several_stages() -> None:
    froms = [i for i in _instructions() if i.keyword == "FROM"]
    assert len(froms) >= 2
    assert froms[-1].args.endswith("AS runtime")


def test_base_image_is_python_311_slim_and_not_latest() -> None:
    (arg,) = [i for i in _instructions() if i.keyword == "ARG" and i.args.startswith("PYTHON_")]
    image = arg.args.partition("=")[2]
    assert image.startswith("python:3.11") and "slim" in image
    assert not image.endswith(":latest")
    for i in _instructions():
        if i.keyword == "FROM":
            assert ":latest" not in i.args


def test_final_stage_runs_as_a_non_root_numeric_user() -> None:
    (user,) = [i for i in _final_stage() if i.keyword == "USER"]
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) == 10001
    assert gid.isdigit() and int(gid) != 0
    # USER comes after every RUN of the final stage: nothing runs as root after it.
    stage = _final_stage()
    assert all(i.keyword != "RUN" for i in stage[stage.index(user) :])


def test_final_stage_installs_no_build_tools() -> None:
    runs = " ".join(i.args for i in _final_stage() if i.keyword == "RUN")
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "grpcio-tools"):
        assert tool not in runs, tool
    copies = [i.args for i in _final_stage() if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/vigie /opt/vigie"]


def test_entrypoint_command_port_and_healthcheck() -> None:
    final = {i.keyword: i.args for i in _final_stage()}
    assert json.loads(final["ENTRYPOINT"]) == ["vigie"]
    assert json.loads(final["CMD"]) == ["serve"]
    assert final["EXPOSE"] == "50051"
    assert "HEALTHCHECK" in final and "CMD" in final["HEALTHCHECK"]
    env = final["ENV"]
    assert "VIGIE_LISTEN=0.0.0.0:50051" in env
    assert "VIGIE_ENVIRONMENT=production" in env


def test_no_secret_is_copied_or_set_in_the_image() -> None:
    for i in _instructions():
        if i.keyword in {"COPY", "ADD"}:
            assert not re.search(r"\.(key|keys|pem|crt|db)\b|var/|\.vigie-demo|secrets", i.args)
        assert i.keyword != "ADD", "ADD can fetch URLs and unpack archives: use COPY"
        if i.keyword in {"ENV", "ARG"}:
            assert not re.search(r"(PASSWORD|TOKEN|SECRET)\w*=", i.args), i.args


def _ignore_rules() -> list[tuple[bool, str]]:
    rules = []
    for line in DOCKERIGNORE.read_text("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, line.lstrip("!").rstrip("/")))
    return rules


def _excluded(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a folder pattern covers what is inside."""
    excluded = False
    for negate, pattern in _ignore_rules():
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
            pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:])
        ):
            excluded = not negate
    return excluded


def test_ignore_file_denies_everything_but_an_allow_list() -> None:
    assert _ignore_rules()[0] == (False, "*")
    for secret_path in (
        "var/pki/ca.key",
        "var/keys/pseudonym.keys/k1.key",
        ".vigie-demo/pki/members/cpam-75.key",
        "deploy/secrets/server.key",
        ".git/config",
        ".venv/bin/python",
        "gateway/_proto/vigie_pb2.py",
        "gateway/__pycache__/x.pyc",
    ):
        assert _excluded(secret_path), secret_path


def test_every_copied_source_passes_the_ignore_file_and_exists() -> None:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    for i in _instructions():
        if i.keyword != "COPY" or i.args.startswith("--from"):
            continue
        *sources, _ = i.args.split()
        for source in sources:
            source = source.rstrip("/")
            assert not _excluded(source), source
            # The proto generator is the Makefile's (`make proto`); it may land separately.
            assert (ROOT / source).exists() or source in makefile, source
