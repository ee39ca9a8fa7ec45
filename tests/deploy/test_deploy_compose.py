"""deploy/compose.yaml: valid against the compose-spec schema (offline) and hardened.

The schema is the compose-spec JSON schema vendored in the check-jsonschema package. The YAML is
parsed with PyYAML (merge keys ``<<`` resolved), as Compose itself resolves them before its own
schema check.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml
from deploy_files import COMPOSE, DEPLOY

from gateway.config import Settings


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return doc


def _validator(schema: dict[str, Any]) -> Any:
    import jsonschema  # installed with check-jsonschema (the compose_schema fixture skips without)

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _vigie_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in _compose()["services"].items()
        if svc.get("image", "").startswith("vigie-gateway:")
    }


def test_compose_file_matches_compose_spec_schema(compose_schema: dict[str, Any]) -> None:
    errors = sorted(_validator(compose_schema).iter_errors(_compose()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


MUTATIONS = [
    ("unknown_service_key", ["services", "gateway", "read_onyl"], True),
    (
        "depends_on_bad_condition",
        ["services", "gateway", "depends_on", "migrate", "condition"],
        "done",
    ),
    ("cap_drop_not_a_list", ["services", "gateway", "cap_drop"], {"all": True}),
    ("unknown_top_level_key", ["servics"], {}),
]


@pytest.mark.parametrize(
    ("path", "value"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_schema_check_rejects_a_broken_compose_file(
    compose_schema: dict[str, Any], path: list[str], value: object
) -> None:
    broken = copy.deepcopy(_compose())
    target: Any = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert list(_validator(compose_schema).iter_errors(broken))


def test_vigie_services_are_the_migration_and_the_gateway() -> None:
    assert set(_vigie_services()) == {"migrate", "gateway"}


@pytest.mark.parametrize("name", ["migrate", "gateway"])
def test_vigie_service_is_non_root_read_only_without_capabilities(name: str) -> None:
    svc = _vigie_services()[name]
    uid = svc["user"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert svc["read_only"] is True
    assert svc["cap_drop"] == ["ALL"]
    assert not svc.get("cap_add")
    assert not svc.get("privileged", False)
    assert "no-new-privileges:true" in svc["security_opt"]
    assert any(t.startswith("/tmp:") or t == "/tmp" for t in svc["tmpfs"])


def test_images_are_pinned_not_latest() -> None:
    for name, svc in _compose()["services"].items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image}"


def test_gateway_starts_after_a_successful_migration_on_a_healthy_database() -> None:
    services = _compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    gateway = services["gateway"]
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_postgres_16_with_named_volume_and_healthcheck() -> None:
    compose = _compose()
    pg = compose["services"]["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    volume = pg["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert compose["networks"]["backend"]["internal"] is True
    assert pg["networks"] == ["backend"]


def test_environment_names_only_real_settings() -> None:
    fields = {f"VIGIE_{name.upper()}" for name in Settings.model_fields}
    for name, svc in _vigie_services().items():
        assert set(svc["environment"]) <= fields, (name, sorted(set(svc["environment"]) - fields))
        assert svc["environment"]["VIGIE_ENVIRONMENT"] == "production"
        assert svc["environment"]["VIGIE_LOG_FORMAT"] == "json"


def test_no_password_or_key_is_written_in_the_compose_file() -> None:
    """Passwords come from the operator's environment (``${VAR:?}``), keys from ignored files."""
    for name, svc in _compose()["services"].items():
        for key, value in svc.get("environment", {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), (name, key)
            url = re.match(r"postgresql://[^:/@]+:([^@]*)@", str(value))
            if url:
                assert url.group(1).startswith("${"), (name, key)
    assert "PRIVATE KEY" not in COMPOSE.read_text("utf-8")
    for secret in _compose()["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    ignored = (DEPLOY / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignored


def test_gateway_gets_time_to_drain_before_being_killed() -> None:
    gateway = _compose()["services"]["gateway"]
    grace = float(gateway["environment"]["VIGIE_SHUTDOWN_GRACE_S"])
    assert gateway["stop_signal"] == "SIGTERM"
    assert float(gateway["stop_grace_period"].removesuffix("s")) > grace


def test_crl_is_mounted_as_a_folder_so_a_replaced_crl_is_seen() -> None:
    """A single-file bind mount pins the old inode; the CRL reloader needs the folder."""
    gateway = _compose()["services"]["gateway"]
    crl_dir = gateway["environment"]["VIGIE_CRL"].rpartition("/")[0]
    binds = {v["target"]: v for v in gateway["volumes"] if isinstance(v, dict)}
    assert binds[crl_dir]["type"] == "bind"
    assert binds[crl_dir]["read_only"] is True
    assert not any(s in ("crl", "client_ca") for s in gateway.get("secrets", []))
