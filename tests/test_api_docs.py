"""docs/api.md is the API reference generated from proto/, and it is fresh.

The page must be regenerated whenever proto/ changes (``scripts/gen_api_docs.py --check`` fails
otherwise), and it must say what the descriptors say: every service, RPC, message, field and enum
value, the field behaviours, and the comments written in the .proto files themselves. The
expectations below are read from the generated stubs and from the raw .proto text, not from the
generator, so a generator that dropped or invented something would fail them.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.api import field_behavior_pb2

from gateway._proto.vigie.v1 import (
    claims_pb2,
    common_pb2,
    journal_pb2,
    members_pb2,
    suspicions_pb2,
)

ROOT = Path(__file__).resolve().parent.parent
API_MD = ROOT / "docs" / "api.md"
PROTO = ROOT / "proto"
FILES = (common_pb2, members_pb2, suspicions_pb2, claims_pb2, journal_pb2)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "scripts/gen_api_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_api_docs", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _generator()


@pytest.fixture(scope="module")
def page() -> str:
    return API_MD.read_text(encoding="utf-8")


def _section(page: str, anchor: str) -> str:
    """The text from the heading holding ``anchor`` to the next heading of any level."""
    start = page.index(f'<a id="{anchor}"></a>')
    rest = page[start:]
    following = re.search(r"^#{2,4} ", rest[1:], re.MULTILINE)
    return rest if following is None else rest[: following.start() + 1]


# -- freshness ------------------------------------------------------------------------------
def test_api_reference_is_fresh_against_proto(gen: ModuleType, capsys: Any) -> None:
    code = gen.main(["--check"])
    assert code == 0, (
        "docs/api.md is stale: run `.venv/bin/python scripts/gen_api_docs.py`\n"
        + capsys.readouterr().err
    )


_MUTATIONS = {
    "comment changed": (
        "members.proto",
        "this service only reads.",
        "this service reads and never writes.",
    ),
    "field added": (
        "members.proto",
        "  MemberKind kind = 4 [(google.api.field_behavior) = OPTIONAL];\n}",
        "  MemberKind kind = 4 [(google.api.field_behavior) = OPTIONAL];\n"
        "  // Only active members.\n"
        "  bool active_only = 5 [(google.api.field_behavior) = OPTIONAL];\n}",
    ),
    "field behaviour changed": (
        "members.proto",
        "string display_name = 2 [(google.api.field_behavior) = OUTPUT_ONLY];",
        "string display_name = 2 [(google.api.field_behavior) = IMMUTABLE];",
    ),
}


@pytest.mark.parametrize("change", sorted(_MUTATIONS))
def test_check_fails_when_proto_changes_without_regenerating(
    gen: ModuleType, tmp_path: Path, change: str, capsys: Any
) -> None:
    proto = tmp_path / "proto"
    shutil.copytree(PROTO, proto)
    name, old, new = _MUTATIONS[change]
    target = proto / "vigie" / "v1" / name
    text = target.read_text(encoding="utf-8")
    assert old in text, f"the mutation {change!r} no longer applies to {name}"
    target.write_text(text.replace(old, new, 1), encoding="utf-8")

    args = ["--proto-dir", str(proto), "--output", str(API_MD)]
    assert gen.main(["--check", *args]) == 1
    assert "stale" in capsys.readouterr().err
    # Regenerating makes it fresh again, and the change is in the new page.
    out = tmp_path / "api.md"
    assert gen.main(["--proto-dir", str(proto), "--output", str(out)]) == 0
    assert gen.main(["--check", "--proto-dir", str(proto), "--output", str(out)]) == 0
    regenerated = out.read_text(encoding="utf-8")
    assert regenerated != API_MD.read_text(encoding="utf-8")
    if change == "comment changed":
        assert "this service reads and never writes." in regenerated
    if change == "field added":
        assert "| `active_only` (5) | `bool` | OPTIONAL | Only active members. |" in regenerated


def test_regeneration_is_explained_at_the_top(page: str) -> None:
    head = "\n".join(page.splitlines()[:12])
    assert ".venv/bin/python scripts/gen_api_docs.py" in head
    assert "--check" in head
    assert "tests/test_api_docs.py" in head


# -- completeness against the descriptors ---------------------------------------------------
def _messages() -> list[Any]:
    return [m for f in FILES for m in f.DESCRIPTOR.message_types_by_name.values()]


def _enums() -> list[Any]:
    return [e for f in FILES for e in f.DESCRIPTOR.enum_types_by_name.values()]


def test_every_service_and_rpc_is_documented_with_request_and_response(page: str) -> None:
    services = [s for f in FILES for s in f.DESCRIPTOR.services_by_name.values()]
    assert page.count("></a>Service `") == len(services) == 4
    for service in services:
        assert f'<a id="{service.full_name}"></a>Service `{service.name}`' in page
        for method in service.methods:
            section = _section(page, f"{service.full_name}.{method.name}")
            req = ("stream " if method.client_streaming else "") + (
                f"[`{method.input_type.name}`](#{method.input_type.full_name})"
            )
            res = ("stream " if method.server_streaming else "") + (
                f"[`{method.output_type.name}`](#{method.output_type.full_name})"
            )
            assert f"**rpc** `{method.name}` ({req}) **returns** ({res})" in section


def _behaviour_names(field: Any) -> str:
    options = field.GetOptions()
    values = options.Extensions[field_behavior_pb2.field_behavior]
    return ", ".join(field_behavior_pb2.FieldBehavior.Name(v) for v in values) or "—"


def test_every_message_field_is_documented_with_its_type_number_and_behaviour(page: str) -> None:
    messages = _messages()
    # Nothing missing, nothing invented: one section per message of the descriptors.
    assert page.count("></a>Message `") == len(messages)
    for message in messages:
        section = _section(page, message.full_name)
        rows = {
            m.group(1): m.group(0)
            for m in re.finditer(r"^\| `(\w+)` \(\d+\) \|.*$", section, re.MULTILINE)
        }
        assert sorted(rows) == sorted(f.name for f in message.fields), message.full_name
        for field in message.fields:
            cells = [c.strip() for c in rows[field.name].split(" | ")]
            assert cells[0] == f"| `{field.name}` ({field.number})"
            if field.message_type is not None or field.enum_type is not None:
                target = field.message_type or field.enum_type
                assert target.name in cells[1], (message.name, field.name)
            assert cells[2] == _behaviour_names(field), (message.name, field.name)


def test_every_enum_value_is_documented(page: str) -> None:
    assert page.count("></a>Enum `") == len(_enums())
    for enum in _enums():
        section = _section(page, enum.full_name)
        for value in enum.values:
            assert f"| `{value.name}` | {value.number} |" in section, value.name


def test_input_only_tokens_are_marked_input_only(page: str) -> None:
    # The beneficiary token is never returned: the reference must say so where it is accepted.
    for message, field in (
        ("vigie.v1.ClaimLine", "beneficiary_token"),
        ("vigie.v1.SuspicionSubject", "beneficiary_token"),
        ("vigie.v1.ListPersonAccessesRequest", "beneficiary_token"),
    ):
        row = next(
            line
            for line in _section(page, message).splitlines()
            if line.startswith(f"| `{field}` ")
        )
        assert "INPUT_ONLY" in row


# -- comments come from the .proto files --------------------------------------------------
def _comment_above(lines: list[str], index: int) -> list[str]:
    block: list[str] = []
    k = index - 1
    while k >= 0 and lines[k].strip().startswith("//"):
        text = lines[k].strip()[2:]
        block.insert(0, (text[1:] if text.startswith(" ") else text).rstrip())
        k -= 1
    return block


def _declarations(pattern: str) -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted((PROTO / "vigie" / "v1").glob("*.proto")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = re.match(pattern, line)
            if m:
                found.append((m.group(1), _comment_above(lines, i)))
    return found


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        ("service", r"^service (\w+) \{"),
        ("rpc", r"^\s+rpc (\w+)\("),
        ("message", r"^message (\w+) \{"),
        ("enum", r"^enum (\w+) \{"),
    ],
)
def test_leading_comments_are_those_of_the_proto_files(page: str, what: str, pattern: str) -> None:
    declarations = _declarations(pattern)
    assert declarations, what
    for name, comment in declarations:
        assert comment, f"{what} {name} has no comment in its .proto file"
        assert "\n".join(comment) in page, f"the comment of {what} {name} is not in docs/api.md"


def test_field_comments_are_those_of_the_proto_files(page: str) -> None:
    checked = 0
    for path in sorted((PROTO / "vigie" / "v1").glob("*.proto")):
        lines = path.read_text(encoding="utf-8").splitlines()
        message = None
        for i, line in enumerate(lines):
            if m := re.match(r"^message (\w+) \{", line):
                message = m.group(1)
            elif line.startswith("}"):
                message = None
            elif message and (
                f := re.match(r"^\s+(?:repeated |optional )?[\w.]+ (\w+) = \d+", line)
            ):
                comment = " ".join(c.strip() for c in _comment_above(lines, i) if c.strip())
                assert comment, f"{message}.{f.group(1)} has no comment in {path.name}"
                row = next(
                    r
                    for r in _section(page, f"vigie.v1.{message}").splitlines()
                    if r.startswith(f"| `{f.group(1)}` ")
                )
                assert comment.replace("|", "\\|") in row, f"{message}.{f.group(1)}"
                checked += 1
    assert checked == sum(len(m.fields) for m in _messages())
