"""The files under ``deploy/``, parsed, for the deployment tests (a plain module, not a conftest).

Schema validation runs offline with schemas shipped inside two PyPI packages:

- ``kubernetes-validate`` vendors the Kubernetes OpenAPI-derived JSON schemas (one folder per
  Kubernetes minor version, "strict" variants that reject unknown fields);
- ``check-jsonschema`` vendors the compose-spec JSON schema
  (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, Apache-2.0, from the
  compose-spec project).

Neither fetches anything at run time. When a package is missing the schema tests are skipped
with the package's name (the semantic tests still run).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_SECRETS = K8S / "secrets"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"

# The oldest Kubernetes minor version the manifests must pass (CronJob timeZone, preStop sleep
# action and PDB unhealthyPodEvictionPolicy are all GA or on by default there).
K8S_VERSION = "1.31.0"


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """All non-empty YAML documents of ``path``."""
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def manifest_files() -> list[Path]:
    """Kubernetes manifests applied by the kustomization (not the kustomization itself)."""
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def secret_template_files() -> list[Path]:
    return sorted(K8S_SECRETS.glob("*.yaml"))


def all_resources() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in load_yaml_documents(path)]


def find(kind: str, name: str) -> dict[str, Any]:
    """The one applied resource of ``kind`` named ``name``."""
    matches = [r for r in all_resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_specs() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(resource id, pod template metadata, pod spec) of every workload."""
    for r in all_resources():
        rid = f"{r['kind']}/{r['metadata']['name']}"
        if r["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
            template = r["spec"]["template"]
        elif r["kind"] == "CronJob":
            template = r["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        yield rid, template["metadata"], template["spec"]


def containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(container id, pod spec, container) of every container and init container."""
    for rid, _, spec in pod_specs():
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f"{rid}:{c['name']}", spec, c
