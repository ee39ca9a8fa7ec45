"""Fixtures for the deployment tests: offline schema validators (see ``deploy_files``)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def k8s_validate() -> Any:
    kv = pytest.importorskip(
        "kubernetes_validate", reason="PyPI package kubernetes-validate (dev dependency)"
    )
    return kv


@pytest.fixture(scope="session")
def compose_schema() -> dict[str, Any]:
    pytest.importorskip("check_jsonschema", reason="PyPI package check-jsonschema (dev dependency)")
    import importlib.resources
    import json

    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text("utf-8"))
    return schema
