#!/usr/bin/env python3
"""Generate ``docs/api.md``, the API reference, from the ``.proto`` files of ``proto/``.

Usage (from the repository root; no ``make`` needed)::

    .venv/bin/python scripts/gen_api_docs.py            # (re)write docs/api.md
    .venv/bin/python scripts/gen_api_docs.py --check    # exit 1 if docs/api.md is stale

Steps:

1. Compile every ``proto/**/*.proto`` with ``grpc_tools.protoc --include_source_info
   --include_imports --descriptor_set_out`` into a temporary file, with the include paths of
   ``scripts/gen_proto.py`` (the one stub generator). The descriptor set carries the comments
   of the real files (``SourceCodeInfo``), so nothing here is copied by hand.
2. Parse it as a ``FileDescriptorSet``, with the ``google.api`` extensions registered (field
   behaviour, resource, resource reference, field info) so their options are readable.
3. Render one Markdown page: the shared vocabulary first (files without services), then each
   file with its services, RPCs (request, response, streaming), messages (fields, types, field
   behaviours, the leading comment of each) and enums. The output depends only on ``proto/``:
   no date, no tool version, so ``--check`` is a plain text comparison.

``tests/test_api_docs.py`` runs ``--check``: the suite fails when ``proto/`` changed without
regenerating this page.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUTPUT = ROOT / "docs" / "api.md"
PACKAGE = "vigie.v1"

# SourceCodeInfo paths use the field numbers of descriptor.proto (FileDescriptorProto, ...).
_SYNTAX, _MESSAGE, _ENUM, _SERVICE = 12, 4, 5, 6
_MSG_FIELD, _MSG_NESTED, _MSG_ENUM, _MSG_ONEOF = 2, 3, 4, 8
_ENUM_VALUE, _SVC_METHOD = 2, 2

_SCALARS = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
    8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64",
    17: "sint32", 18: "sint64",
}  # fmt: skip
_TYPE_MESSAGE, _TYPE_ENUM, _LABEL_REPEATED = 11, 14, 3


def _include_paths() -> list[Path]:
    # Same include paths as the stub generator, so both read the same imported protos.
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from gen_proto import _googleapis_include, _grpc_tools_include

    return [_grpc_tools_include(), _googleapis_include()]


def compile_descriptors(proto_dir: Path) -> Any:
    """Compile ``proto_dir`` into a ``FileDescriptorSet`` with source info (comments).

    Raises:
        SystemExit: no .proto files, or protoc failed.
    """
    from google.api import field_behavior_pb2, field_info_pb2, resource_pb2  # noqa: F401
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc  # type: ignore[import-untyped]  # grpcio-tools: no stubs

    files = sorted(proto_dir.rglob("*.proto"))
    if not files:
        raise SystemExit(f"no .proto files under {proto_dir}")
    with tempfile.TemporaryDirectory(prefix="vigie-apidoc-") as tmp:
        out = Path(tmp) / "descriptors.pb"
        args = [
            "grpc_tools.protoc",
            f"--proto_path={proto_dir}",
            *(f"--proto_path={p}" for p in _include_paths()),
            "--include_source_info",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *(str(p.relative_to(proto_dir)) for p in files),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed (see the messages above)")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


# -- comments ----------------------------------------------------------------------------------
class _Comments:
    """Leading (else trailing) comments of one file, by SourceCodeInfo path."""

    def __init__(self, file: Any) -> None:
        self._by_path: dict[tuple[int, ...], str] = {}
        for loc in file.source_code_info.location:
            text = loc.leading_comments or loc.trailing_comments
            if text:
                self._by_path[tuple(loc.path)] = text

    def lines(self, *path: int) -> list[str]:
        raw = self._by_path.get(path, "")
        lines = [line[1:] if line.startswith(" ") else line for line in raw.split("\n")]
        while lines and not lines[-1].strip():
            lines.pop()
        return [line.rstrip() for line in lines]

    def block(self, *path: int) -> str:
        """The comment as Markdown paragraphs (lists and blank lines kept)."""
        return "\n".join(self.lines(*path))

    def cell(self, *path: int) -> str:
        """The comment on one line, for a table cell."""
        return _cell(" ".join(line.strip() for line in self.lines(*path) if line.strip()))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# -- names and types ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Names:
    """Fully qualified names of this package's types, for links."""

    local: frozenset[str]

    def ref(self, type_name: str) -> str:
        name = type_name.lstrip(".")
        if name in self.local:
            short = name.removeprefix(PACKAGE + ".")
            return f"[`{short}`](#{name})"
        return f"`{name}`"


def _type_of(field: Any, names: _Names, maps: dict[str, tuple[Any, Any]]) -> str:
    type_name = field.type_name.lstrip(".")
    if type_name in maps:
        key, value = maps[type_name]
        return f"map<{_type_of(key, names, maps)}, {_type_of(value, names, maps)}>"
    if field.type in (_TYPE_MESSAGE, _TYPE_ENUM):
        base = names.ref(field.type_name)
    else:
        base = f"`{_SCALARS[field.type]}`"
    if field.label == _LABEL_REPEATED:
        return f"repeated {base}"
    if field.proto3_optional:
        return f"optional {base}"
    return base


def _behaviours(field: Any) -> list[str]:
    from google.api import field_behavior_pb2

    values = field.options.Extensions[field_behavior_pb2.field_behavior]
    return [field_behavior_pb2.FieldBehavior.Name(v) for v in values]


def _annotations(field: Any, oneofs: Sequence[Any]) -> list[str]:
    from google.api import field_info_pb2, resource_pb2

    notes = []
    if field.HasField("oneof_index") and not field.proto3_optional:
        notes.append(f"One of `{oneofs[field.oneof_index].name}`.")
    ref = field.options.Extensions[resource_pb2.resource_reference]
    if ref.type:
        notes.append(f"References `{ref.type}`.")
    info = field.options.Extensions[field_info_pb2.field_info]
    if info.format:
        notes.append(f"Format: {field_info_pb2.FieldInfo.Format.Name(info.format)}.")
    return notes


# -- rendering ---------------------------------------------------------------------------------
def _walk_messages(
    messages: Iterable[Any], path: tuple[int, ...], prefix: str
) -> Iterator[tuple[Any, tuple[int, ...], str]]:
    """Every message (nested ones too, map entries excepted) with its path and full name."""
    for i, msg in enumerate(messages):
        if msg.options.map_entry:
            continue
        name = f"{prefix}.{msg.name}"
        here = (*path, i)
        yield msg, here, name
        yield from _walk_messages(msg.nested_type, (*here, _MSG_NESTED), name)


def _stream(streaming: bool, ref: str) -> str:
    return f"stream {ref}" if streaming else ref


def _render_service(svc: Any, index: int, comments: _Comments, names: _Names) -> list[str]:
    full = f"{PACKAGE}.{svc.name}"
    out = [f'### <a id="{full}"></a>Service `{svc.name}`', ""]
    if text := comments.block(_SERVICE, index):
        out += [text, ""]
    out += ["| RPC | Request | Response |", "|---|---|---|"]
    for m in svc.method:
        req, res = (
            _stream(m.client_streaming, names.ref(m.input_type)),
            _stream(m.server_streaming, names.ref(m.output_type)),
        )
        out.append(f"| [`{m.name}`](#{full}.{m.name}) | {req} | {res} |")
    out.append("")
    for j, m in enumerate(svc.method):
        req, res = (
            _stream(m.client_streaming, names.ref(m.input_type)),
            _stream(m.server_streaming, names.ref(m.output_type)),
        )
        out += [f'#### <a id="{full}.{m.name}"></a>`{svc.name}.{m.name}`', ""]
        out += [f"**rpc** `{m.name}` ({req}) **returns** ({res})", ""]
        if text := comments.block(_SERVICE, index, _SVC_METHOD, j):
            out += [text, ""]
    return out


def _render_message(
    msg: Any, path: tuple[int, ...], full: str, comments: _Comments, names: _Names
) -> list[str]:
    from google.api import resource_pb2

    short = full.removeprefix(PACKAGE + ".")
    out = [f'#### <a id="{full}"></a>Message `{short}`', ""]
    if text := comments.block(*path):
        out += [text, ""]
    res = msg.options.Extensions[resource_pb2.resource]
    if res.type:
        patterns = ", ".join(f"`{p}`" for p in res.pattern)
        out += [f"Resource `{res.type}`, name pattern {patterns}.", ""]
    maps = {
        f"{full}.{n.name}": (n.field[0], n.field[1]) for n in msg.nested_type if n.options.map_entry
    }
    fields = list(msg.field)
    if not fields:
        return [*out, "No fields.", ""]
    out += ["| Field | Type | Behaviour | Description |", "|---|---|---|---|"]
    for k, field in enumerate(fields):
        behaviour = ", ".join(_behaviours(field)) or "—"
        description = " ".join(
            [comments.cell(*path, _MSG_FIELD, k), *_annotations(field, msg.oneof_decl)]
        ).strip()
        out.append(
            f"| `{field.name}` ({field.number}) | {_type_of(field, names, maps)} "
            f"| {behaviour} | {description} |"
        )
    out.append("")
    # Real oneofs (not the synthetic ones of proto3 `optional`), with their own comment.
    for k, oneof in enumerate(msg.oneof_decl):
        inside = [f for f in fields if f.HasField("oneof_index") and f.oneof_index == k]
        if any(f.proto3_optional for f in inside):
            continue
        listed = ", ".join(f"`{f.name}`" for f in inside)
        note = comments.cell(*path, _MSG_ONEOF, k)
        out += [
            f"Oneof `{oneof.name}` ({listed}): {note}"
            if note
            else f"Oneof `{oneof.name}` ({listed}).",
            "",
        ]
    return out


def _render_enum(enum: Any, path: tuple[int, ...], full: str, comments: _Comments) -> list[str]:
    short = full.removeprefix(PACKAGE + ".")
    out = [f'#### <a id="{full}"></a>Enum `{short}`', ""]
    if text := comments.block(*path):
        out += [text, ""]
    out += ["| Value | Number | Description |", "|---|---|---|"]
    for k, value in enumerate(enum.value):
        out.append(f"| `{value.name}` | {value.number} | {comments.cell(*path, _ENUM_VALUE, k)} |")
    return [*out, ""]


def _file_anchor(name: str) -> str:
    return "file-" + name.removesuffix(".proto").replace("/", "-")


def _render_file(file: Any, names: _Names) -> list[str]:
    comments = _Comments(file)
    name = file.name
    out = [f'## <a id="{_file_anchor(name)}"></a>`{name}`', ""]
    if text := comments.block(_SYNTAX):
        out += [text, ""]
    for i, svc in enumerate(file.service):
        out += _render_service(svc, i, comments, names)
    messages = list(_walk_messages(file.message_type, (_MESSAGE,), PACKAGE))
    if messages:
        out += ["### Messages", ""]
        for msg, path, full in messages:
            out += _render_message(msg, path, full, comments, names)
    enums = [(e, (_ENUM, i), f"{PACKAGE}.{e.name}") for i, e in enumerate(file.enum_type)]
    for msg, path, full in messages:
        enums += [
            (e, (*path, _MSG_ENUM, i), f"{full}.{e.name}") for i, e in enumerate(msg.enum_type)
        ]
    if enums:
        out += ["### Enums", ""]
        for enum, path, full in enums:
            out += _render_enum(enum, path, full, comments)
    return out


def _external_types(files: Sequence[Any]) -> list[str]:
    """Imported message and enum types used by this package's fields, with their file."""
    used: set[str] = set()
    for file in files:
        for msg, _path, _full in _walk_messages(file.message_type, (_MESSAGE,), PACKAGE):
            for field in msg.field:
                name = field.type_name.lstrip(".")
                if name and not name.startswith(PACKAGE + "."):
                    used.add(name)
    return sorted(used)


def render(descriptor_set: Any) -> str:
    """The whole page for a compiled ``FileDescriptorSet``."""
    all_files = list(descriptor_set.file)
    ours = [f for f in all_files if f.package == PACKAGE]
    # Shared vocabulary first (files without services), then the services' files, by name.
    ours.sort(key=lambda f: (bool(f.service), f.name))
    local = {
        full for f in ours for _m, _p, full in _walk_messages(f.message_type, (_MESSAGE,), PACKAGE)
    }
    for f in ours:
        local |= {f"{PACKAGE}.{e.name}" for e in f.enum_type}
        for msg, _p, full in _walk_messages(f.message_type, (_MESSAGE,), PACKAGE):
            local |= {f"{full}.{e.name}" for e in msg.enum_type}
    names = _Names(frozenset(local))
    defined_in = {
        f"{f.package}.{m.name}": f.name for f in all_files for m in [*f.message_type, *f.enum_type]
    }

    out = [
        f"# Vigie API reference (`{PACKAGE}`)",
        "",
        "<!-- Generated by scripts/gen_api_docs.py from proto/. Do not edit by hand. -->",
        "",
        "> **Generated from `proto/`** (types, field behaviours and comments come from the",
        "> `.proto` files' descriptors). After changing `proto/`, regenerate with",
        "> `.venv/bin/python scripts/gen_api_docs.py` (no `make` needed);",
        "> `.venv/bin/python scripts/gen_api_docs.py --check` exits 1 while this page is stale,",
        "> and `tests/test_api_docs.py` fails the test suite until it is regenerated.",
        "",
        "Every request carries its legal `purpose` in field 1 and every write a `request_id`",
        "(see the conventions in `vigie/v1/common.proto` below). Behaviour values are Google's",
        "`google.api.field_behavior` (AIP-203); `—` means none is declared.",
        "",
        "## Contents",
        "",
    ]
    for f in ours:
        out.append(f"- [`{f.name}`](#{_file_anchor(f.name)})")
        for svc in f.service:
            rpcs = ", ".join(f"[`{m.name}`](#{PACKAGE}.{svc.name}.{m.name})" for m in svc.method)
            out.append(f"  - [`{svc.name}`](#{PACKAGE}.{svc.name}): {rpcs}")
    out.append("- [Imported types](#imported-types)")
    out.append("")
    for f in ours:
        out += _render_file(f, names)
    out += ['## <a id="imported-types"></a>Imported types', ""]
    out += ["| Type | Defined in |", "|---|---|"]
    for name in _external_types(ours):
        top = ".".join(name.split(".")[:3]) if name.startswith("google.rpc.") else name
        out.append(f"| `{name}` | `{defined_in.get(top, defined_in.get(name, '?'))}` |")
    text = "\n".join(out).rstrip() + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--proto-dir", type=Path, default=PROTO_DIR, help="default: proto/")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: docs/api.md")
    args = parser.parse_args(argv)

    fresh = render(compile_descriptors(args.proto_dir))
    current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    if args.check:
        if fresh != current:
            print(
                f"{shown} is stale; run `.venv/bin/python scripts/gen_api_docs.py`:",
                file=sys.stderr,
            )
            diff = difflib.unified_diff(
                current.splitlines(), fresh.splitlines(), "current", "fresh", lineterm="", n=1
            )
            for line in list(diff)[:40]:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"{shown} is up to date")
        return 0
    if fresh != current:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(fresh, encoding="utf-8")
        print(f"wrote {shown} ({fresh.count(chr(10))} lines)")
    else:
        print(f"{shown} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
