"""Vigie's legal policy layer: versioned policy bundles decided by Cedar.

A bundle (``policy/bundles/<name>/``) turns a legal text into access rules with their legal
references, purposes, a sharing threshold, retention periods and minimisation views; a new
decree is a new bundle, reviewed and tested, not new code. The layer is pure: it reads the
bundle folder once at load time and does no other I/O. It never imports ``gateway``.

Typical use::

    engine = PolicyEngine.load(bundle_path("current-law"))
    decision = engine.decide(AccessRequest(...))
    if decision.allowed:
        payload = engine.minimise("suspicion", "AMC", "control", record)
"""

from __future__ import annotations

from pathlib import Path

from policy._bundle import (
    Bundle,
    Manifest,
    PurposeSpec,
    RetentionSpec,
    SharingThreshold,
    bundle_content_hash,
)
from policy._engine import PolicyEngine
from policy._errors import BundleError, EvaluationError, PolicyError
from policy._model import (
    ACTIONS,
    DEFAULT_DENY,
    EVALUATION_ERROR,
    INVARIANTS,
    KINDS,
    PURPOSES,
    RELATION_FACTS,
    RESOURCE_TYPES,
    RETENTION_CATEGORIES,
    ROLES,
    STATUSES,
    VIEW_RESOURCE_TYPES,
    AccessRequest,
    AttributeValue,
    Decision,
    MemberKind,
    Principal,
    Resource,
)

__all__ = [
    "ACTIONS",
    "BUNDLED",
    "BUNDLES_DIR",
    "DEFAULT_DENY",
    "EVALUATION_ERROR",
    "INVARIANTS",
    "KINDS",
    "PURPOSES",
    "RELATION_FACTS",
    "RESOURCE_TYPES",
    "RETENTION_CATEGORIES",
    "ROLES",
    "STATUSES",
    "VIEW_RESOURCE_TYPES",
    "AccessRequest",
    "AttributeValue",
    "Bundle",
    "BundleError",
    "Decision",
    "EvaluationError",
    "Manifest",
    "MemberKind",
    "PolicyEngine",
    "PolicyError",
    "Principal",
    "PurposeSpec",
    "Resource",
    "RetentionSpec",
    "SharingThreshold",
    "bundle_content_hash",
    "bundle_path",
]

#: Folder holding the bundles shipped with Vigie (package data).
BUNDLES_DIR = Path(__file__).resolve().parent / "bundles"
#: Names of the bundles shipped with Vigie.
BUNDLED: tuple[str, ...] = ("current-law", "fraud-bill-2025")


def bundle_path(name: str | Path) -> Path:
    """Resolve a bundle name shipped with Vigie (``"current-law"``), or a folder path.

    A value that names an existing folder is returned as is, so configuration may point to a
    bundle outside the package.

    Raises:
        BundleError: ``name`` is neither a shipped bundle nor an existing folder.
    """
    if isinstance(name, str) and name in BUNDLED:
        return BUNDLES_DIR / name
    path = Path(name)
    if path.is_dir():
        return path
    raise BundleError(f"unknown bundle; shipped bundles are {list(BUNDLED)}", bundle=str(name))
