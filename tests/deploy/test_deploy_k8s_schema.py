"""Every Kubernetes manifest and Secret template passes the Kubernetes JSON schemas (strict).

Offline: the schemas come from the kubernetes-validate package's own files. Strict schemas
reject unknown fields, so a misspelt ``readOnlyRootFileSystem`` fails here instead of being
silently dropped by the API server.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from deploy_files import (
    K8S_VERSION,
    find,
    load_yaml_documents,
    manifest_files,
    secret_template_files,
)

CASES = [
    pytest.param(doc, id=f"{path.parent.name}/{path.name}:{doc['kind']}/{doc['metadata']['name']}")
    for path in [*manifest_files(), *secret_template_files()]
    for doc in load_yaml_documents(path)
]


@pytest.mark.parametrize("resource", CASES)
def test_manifest_matches_kubernetes_schema_strict(
    k8s_validate: Any, resource: dict[str, Any]
) -> None:
    k8s_validate.validate(resource, K8S_VERSION, strict=True)


# Each case breaks the gateway Deployment in one way the schema must catch.
MUTATIONS = [
    ("unknown_security_context_field", ["spec", "template", "spec", "securityContext", "x"], 1),
    ("misspelt_container_field", ["spec", "template", "spec", "containers", 0, "imagee"], "x"),
    ("replicas_as_string", ["spec", "replicas"], "3"),
    ("unknown_top_level_field", ["specification"], {}),
]


@pytest.mark.parametrize(
    ("path", "value"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_schema_check_rejects_a_broken_deployment(
    k8s_validate: Any, path: list[str | int], value: object
) -> None:
    broken = copy.deepcopy(find("Deployment", "vigie-gateway"))
    target: Any = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(k8s_validate.ValidationError):
        k8s_validate.validate(broken, K8S_VERSION, strict=True)


def test_manifest_folder_holds_every_required_kind() -> None:
    kinds = {doc["kind"] for path in manifest_files() for doc in load_yaml_documents(path)}
    assert kinds >= {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Job",
        "CronJob",
        "ServiceAccount",
    }
    secret_kinds = {
        doc["kind"] for path in secret_template_files() for doc in load_yaml_documents(path)
    }
    assert secret_kinds == {"Secret"}
