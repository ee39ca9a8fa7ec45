"""Loading a policy bundle: a versioned folder of declarative files.

A bundle is how a legal text becomes policy (DOMAIN.md section 1: "a new decree is a new policy
bundle, not new code")::

    policy/bundles/<name>/
      bundle.yaml          name, version, legal basis, effective date, purposes and their legal
                           references, sharing threshold, retention periods, minimisation views
      policies.cedar       Cedar access rules, each with @id("...") and @legal_ref("...")
      schema.cedarschema   Cedar schema the rules are validated against (or schema.cedarschema.json)
      tests.yaml           named policy test cases (run by ``policy.testing``)

Loading does all the checking once (steps numbered in :func:`load_bundle`); a bundle that loads
is internally consistent. This is the only module of the policy layer that does I/O, and only
when a bundle is loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cedarpy
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policy._errors import BundleError
from policy._model import (
    ACTIONS,
    DEFAULT_DENY,
    EVALUATION_ERROR,
    INVARIANTS,
    KINDS,
    PURPOSES,
    RETENTION_CATEGORIES,
    VIEW_RESOURCE_TYPES,
)

__all__ = [
    "BUNDLE_FILE",
    "POLICIES_FILE",
    "TESTS_FILE",
    "Bundle",
    "Manifest",
    "PurposeSpec",
    "RetentionSpec",
    "SharingThreshold",
    "bundle_content_hash",
    "load_bundle",
]

BUNDLE_FILE = "bundle.yaml"
POLICIES_FILE = "policies.cedar"
SCHEMA_FILES = ("schema.cedarschema", "schema.cedarschema.json")
TESTS_FILE = "tests.yaml"

# Declarative files are read from YAML, hence lists for tuples: not strict, but closed.
_DECL = ConfigDict(frozen=True, extra="forbid")


class PurposeSpec(BaseModel):
    """A purpose the bundle recognises, and the texts that allow it."""

    model_config = _DECL

    name: str
    description: str = Field(min_length=1)
    legal_refs: tuple[str, ...] = Field(min_length=1)


class SharingThreshold(BaseModel):
    """When a suspicion may be distributed to members entitled by need-to-know.

    Statuses are ordered submitted < qualified < confirmed; the terminal statuses (dismissed,
    cleared, closed) never reach the threshold: they are only sent as retractions to members
    that already received the suspicion.
    """

    model_config = _DECL

    min_status: Literal["submitted", "qualified", "confirmed"]
    min_estimated_amount_cents: int = Field(ge=0)
    legal_ref: str = Field(min_length=1)


class RetentionSpec(BaseModel):
    """How long one category of data is kept, and why."""

    model_config = _DECL

    days: int = Field(ge=0)
    legal_ref: str = Field(min_length=1)


class Manifest(BaseModel):
    """The content of ``bundle.yaml``."""

    model_config = _DECL

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    status: Literal["in_force", "draft"]
    effective_date: dt.date
    legal_basis: str = Field(min_length=1)
    purposes: tuple[PurposeSpec, ...] = Field(min_length=1)
    sharing_threshold: SharingThreshold
    retention: dict[str, RetentionSpec]
    #: properties the bundle promises (see ``policy.INVARIANTS``), checked by policy.testing
    invariants: tuple[str, ...] = ()
    #: resource type -> recipient kind -> purpose -> allowed field names
    views: dict[str, dict[str, dict[str, tuple[str, ...]]]]


@dataclass(frozen=True, slots=True)
class Bundle:
    """A loaded, validated bundle. Immutable; the Cedar handles are parsed once."""

    path: Path
    content_hash: str
    manifest: Manifest
    policies_text: str
    policy_set: cedarpy.PolicySet
    schema: cedarpy.Schema
    #: rule id (``@id``) -> legal reference (``@legal_ref``)
    legal_refs: dict[str, str]
    #: rule id -> "permit" | "forbid"
    effects: dict[str, str]
    #: Cedar's positional policy id (``policy0``...) -> rule id
    rule_by_cedar_id: dict[str, str]

    @property
    def name(self) -> str:
        return self.manifest.name


def bundle_content_hash(path: Path) -> str:
    """SHA-256 (hex) over the bundle folder's files, in sorted relative-path order.

    Each file contributes ``path (UTF-8, POSIX separators) || 0x00 || len(bytes) as 8-byte
    big-endian || bytes``, so no two different folders share an encoding. Hidden files and
    ``__pycache__`` folders are not part of a bundle.

    Raises:
        BundleError: the folder does not exist.
    """
    if not path.is_dir():
        raise BundleError("bundle folder does not exist", bundle=str(path))
    files = sorted(
        (p.relative_to(path).as_posix(), p)
        for p in path.rglob("*")
        if p.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__" for part in p.relative_to(path).parts
        )
    )
    digest = hashlib.sha256()
    for rel, file in files:
        data = file.read_bytes()
        digest.update(rel.encode("utf-8") + b"\x00" + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def describe_validation_error(error: ValidationError, limit: int = 5) -> str:
    """One line naming each bad field of a declarative file (values are not repeated)."""
    parts = [
        f"field {'.'.join(str(p) for p in err['loc'])!r}: {err['msg']}"
        for err in error.errors()[:limit]
    ]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _read_text(path: Path, name: str) -> str:
    try:
        return (path / name).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise BundleError("required file is missing", bundle=path.name, file=name) from e
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(
            f"cannot read file ({type(e).__name__})", bundle=path.name, file=name
        ) from e


def _load_manifest(path: Path) -> Manifest:
    text = _read_text(path, BUNDLE_FILE)
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BundleError(f"invalid YAML: {e}", bundle=path.name, file=BUNDLE_FILE) from e
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise BundleError(describe_validation_error(e), bundle=path.name, file=BUNDLE_FILE) from e


def _check_manifest(path: Path, m: Manifest) -> None:
    def fail(msg: str) -> BundleError:
        return BundleError(msg, bundle=path.name, file=BUNDLE_FILE)

    if m.name != path.name:
        raise fail(f"name {m.name!r} does not match the bundle folder name")
    names = [p.name for p in m.purposes]
    unknown = sorted(set(names) - PURPOSES)
    if unknown:
        raise fail(f"purposes: unknown purpose(s) {unknown}")
    if len(set(names)) != len(names):
        raise fail("purposes: duplicate purpose")
    missing = sorted(RETENTION_CATEGORIES - m.retention.keys())
    extra = sorted(m.retention.keys() - RETENTION_CATEGORIES)
    if missing or extra:
        raise fail(f"retention: missing {missing}, unknown {extra}")
    bad = sorted(set(m.invariants) - INVARIANTS)
    if bad:
        raise fail(f"invariants: unknown invariant(s) {bad}")
    for rtype, by_kind in m.views.items():
        if rtype not in VIEW_RESOURCE_TYPES:
            raise fail(f"views: unknown resource type {rtype!r}")
        for kind, by_purpose in by_kind.items():
            if kind not in KINDS:
                raise fail(f"views.{rtype}: unknown recipient kind {kind!r}")
            for purpose, fields in by_purpose.items():
                if purpose not in names:
                    raise fail(f"views.{rtype}.{kind}: purpose {purpose!r} not in bundle purposes")
                if len(set(fields)) != len(fields) or not all(fields):
                    raise fail(f"views.{rtype}.{kind}.{purpose}: empty or duplicate field name")


def _load_schema(path: Path) -> tuple[str, cedarpy.Schema]:
    for name in SCHEMA_FILES:
        if (path / name).is_file():
            text = _read_text(path, name)
            try:
                if name.endswith(".json"):
                    return name, cedarpy.Schema.from_json_str(text)
                return name, cedarpy.Schema.from_str(text)
            except ValueError as e:
                raise BundleError(f"invalid Cedar schema: {e}", bundle=path.name, file=name) from e
    raise BundleError("required file is missing", bundle=path.name, file=SCHEMA_FILES[0])


def _check_schema_actions(path: Path, schema_file: str, schema: cedarpy.Schema) -> None:
    # Every action of the API must be declared, or requests for it would error at run time.
    for action in sorted(ACTIONS):
        probe = f'permit (principal, action == Action::"{action}", resource);'
        if not cedarpy.validate_policies(probe, schema).validation_passed:
            raise BundleError(
                f"schema does not declare action {action!r}", bundle=path.name, file=schema_file
            )


def _annotations(path: Path, text: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    def fail(msg: str) -> BundleError:
        return BundleError(msg, bundle=path.name, file=POLICIES_FILE)

    try:
        est = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as e:
        raise fail(f"Cedar parse error: {e}") from e
    if est.get("templates"):
        raise fail("templates are not allowed in a bundle")
    legal_refs: dict[str, str] = {}
    effects: dict[str, str] = {}
    by_cedar_id: dict[str, str] = {}
    for cedar_id, policy in est["staticPolicies"].items():
        ann = policy.get("annotations", {})
        rule_id, legal_ref = ann.get("id", ""), ann.get("legal_ref", "")
        if not rule_id or not legal_ref:
            raise fail(f"policy #{cedar_id.removeprefix('policy')} lacks @id or @legal_ref")
        if rule_id in legal_refs or rule_id in (DEFAULT_DENY, EVALUATION_ERROR):
            raise fail(f"rule id {rule_id!r} is duplicated or reserved")
        legal_refs[rule_id] = legal_ref
        effects[rule_id] = policy["effect"]
        by_cedar_id[cedar_id] = rule_id
    if not legal_refs:
        raise fail("no policy")
    return legal_refs, effects, by_cedar_id


def load_bundle(path: Path) -> Bundle:
    """Load and validate a bundle folder.

    Raises:
        BundleError: any file is missing, malformed or inconsistent; the message names the file
            and the rule broken.
    """
    # 1. Hash the folder first: the hash names exactly the bytes that were validated.
    content_hash = bundle_content_hash(path)
    # 2. bundle.yaml: typed, then cross-checked against the shared vocabulary.
    manifest = _load_manifest(path)
    _check_manifest(path, manifest)
    # 3. Schema: parsed once; it must declare every API action.
    schema_file, schema = _load_schema(path)
    _check_schema_actions(path, schema_file, schema)
    # 4. Policies: every rule carries @id and @legal_ref; ids are unique.
    text = _read_text(path, POLICIES_FILE)
    legal_refs, effects, by_cedar_id = _annotations(path, text)
    # 5. Validate the rules against the schema (types, attributes, actions, scopes).
    result = cedarpy.validate_policies(text, schema)
    if not result.validation_passed:
        ids = result.id_annotations_by_policy_id
        details = "; ".join(
            f"[{ids.get(err.policy_id, err.policy_id)}] {err.error}" for err in result.errors
        )
        raise BundleError(
            f"schema validation failed: {details}", bundle=path.name, file=POLICIES_FILE
        )
    # 6. Parse once into a reusable handle: decisions never re-parse policies.
    try:
        policy_set = cedarpy.PolicySet.from_str(text)
    except ValueError as e:  # pragma: no cover - already parsed in step 4
        raise BundleError(f"Cedar parse error: {e}", bundle=path.name, file=POLICIES_FILE) from e
    # 7. tests.yaml must exist (it is part of the reviewed bundle); policy.testing reads it.
    _read_text(path, TESTS_FILE)
    return Bundle(
        path=path,
        content_hash=content_hash,
        manifest=manifest,
        policies_text=text,
        policy_set=policy_set,
        schema=schema,
        legal_refs=legal_refs,
        effects=effects,
        rule_by_cedar_id=by_cedar_id,
    )
