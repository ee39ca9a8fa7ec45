"""What the schemas cannot say: the security posture and wiring of the Kubernetes manifests.

Each test names the property it protects: non-root and read-only containers, pinned images,
resources, the PodDisruptionBudget, Service and NetworkPolicy selecting the gateway, graceful
shutdown timing, settings that exist, Secret templates without key material, and key files that
the gateway's key loader accepts once the init container has copied them.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import (
    K8S,
    all_resources,
    containers,
    find,
    load_yaml_documents,
    manifest_files,
    pod_specs,
    secret_template_files,
)

from gateway.config import Settings

CONTAINER_IDS = [cid for cid, _, _ in containers()]
GATEWAY_LABELS = {"app.kubernetes.io/name": "vigie", "app.kubernetes.io/component": "gateway"}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels and matchExpressions In/NotIn/Exists)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _gateway_pod() -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod labels, pod spec) of the gateway Deployment."""
    template = find("Deployment", "vigie-gateway")["spec"]["template"]
    return template["metadata"]["labels"], template["spec"]


def _gateway_container() -> dict[str, Any]:
    _, spec = _gateway_pod()
    (container,) = [c for c in spec["containers"] if c["name"] == "gateway"]
    return container


# -- containers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cid", CONTAINER_IDS)
def test_container_runs_as_non_root_with_read_only_root_fs(cid: str) -> None:
    _, pod, c = next(x for x in containers() if x[0] == cid)
    pod_sc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
    assert sc.get("runAsUser", pod_sc.get("runAsUser")) not in (None, 0)
    assert sc.get("readOnlyRootFilesystem") is True
    assert sc.get("allowPrivilegeEscalation") is False
    assert sc.get("privileged", False) is False
    assert sc.get("capabilities", {}).get("drop") == ["ALL"]
    assert not sc.get("capabilities", {}).get("add")
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
    assert seccomp.get("type") == "RuntimeDefault"


@pytest.mark.parametrize("cid", CONTAINER_IDS)
def test_container_image_is_pinned_not_latest(cid: str) -> None:
    _, _, c = next(x for x in containers() if x[0] == cid)
    image = c["image"]
    name, _, tag = image.rpartition(":")
    assert "@sha256:" in image or (name and tag and "/" not in tag), f"{image}: no tag"
    assert tag != "latest"
    assert c.get("imagePullPolicy") != "Always" or "@sha256:" in image


@pytest.mark.parametrize("cid", CONTAINER_IDS)
def test_container_sets_cpu_and_memory_requests_and_limits(cid: str) -> None:
    _, _, c = next(x for x in containers() if x[0] == cid)
    resources = c.get("resources", {})
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{cid}: {part}"


def test_writable_paths_are_volumes_only() -> None:
    """With a read-only root, /tmp must be a volume in every Vigie container."""
    for cid, pod, c in containers():
        if c["name"] == "install-keys":
            continue
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, cid
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], cid


def test_pods_mount_no_service_account_token() -> None:
    for rid, _, spec in pod_specs():
        assert spec.get("automountServiceAccountToken") is False, rid
    assert find("ServiceAccount", "vigie")["automountServiceAccountToken"] is False


def test_every_vigie_container_uses_one_image() -> None:
    images = {c["image"] for _, _, c in containers()}
    assert len(images) == 1
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (entry,) = kustomization["images"]
    name, _, tag = images.pop().rpartition(":")
    assert entry == {"name": name, "newTag": tag}


# -- gateway Deployment, PDB, Service, NetworkPolicy ---------------------------------------------
def test_gateway_runs_several_replicas_spread_over_nodes() -> None:
    deployment = find("Deployment", "vigie-gateway")
    assert deployment["spec"]["replicas"] >= 3
    assert deployment["spec"]["selector"]["matchLabels"] == GATEWAY_LABELS
    labels, spec = _gateway_pod()
    constraints = spec["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} >= {"kubernetes.io/hostname"}
    for c in constraints:
        assert _selects(c["labelSelector"], labels)


def test_pdb_selects_the_gateway_and_keeps_two_available() -> None:
    pdb = find("PodDisruptionBudget", "vigie-gateway")
    labels, _ = _gateway_pod()
    assert _selects(pdb["spec"]["selector"], labels)
    assert pdb["spec"]["selector"] == find("Deployment", "vigie-gateway")["spec"]["selector"]
    assert pdb["spec"]["minAvailable"] == 2
    assert pdb["spec"]["minAvailable"] < find("Deployment", "vigie-gateway")["spec"]["replicas"]


@pytest.mark.parametrize("name", ["vigie-gateway", "vigie-gateway-headless"])
def test_service_selects_the_gateway_on_its_grpc_port(name: str) -> None:
    service = find("Service", name)
    labels, _ = _gateway_pod()
    assert _selects({"matchLabels": service["spec"]["selector"]}, labels)
    (port,) = service["spec"]["ports"]
    assert port["appProtocol"] == "grpc"
    container_ports = {p["name"]: p["containerPort"] for p in _gateway_container()["ports"]}
    assert container_ports[port["targetPort"]] == port["port"] == 50051


def test_namespace_defaults_to_deny_all_traffic() -> None:
    deny = find("NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def _egress_ports(policy: dict[str, Any]) -> set[tuple[str, int]]:
    return {
        (p.get("protocol", "TCP"), p["port"])
        for rule in policy["spec"].get("egress", [])
        for p in rule["ports"]
    }


def test_gateway_network_policy_allows_grpc_in_and_only_database_and_dns_out() -> None:
    policy = find("NetworkPolicy", "vigie-gateway")
    labels, _ = _gateway_pod()
    assert _selects(policy["spec"]["podSelector"], labels)
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {
        (p.get("protocol", "TCP"), p["port"]) for r in policy["spec"]["ingress"] for p in r["ports"]
    }
    assert ingress_ports == {("TCP", 50051)}
    assert _egress_ports(policy) == {("TCP", 5432), ("UDP", 53), ("TCP", 53)}
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), "an egress rule without 'to' would allow every destination"


def test_jobs_network_policy_selects_migrate_and_retention_pods_only() -> None:
    policy = find("NetworkPolicy", "vigie-jobs")
    selected = {
        rid
        for rid, meta, _ in pod_specs()
        if _selects(policy["spec"]["podSelector"], meta["labels"])
    }
    assert selected == {"Job/vigie-migrate", "CronJob/vigie-retention"}
    assert not policy["spec"].get("ingress")
    assert _egress_ports(policy) == {("TCP", 5432), ("UDP", 53), ("TCP", 53)}


def test_termination_grace_exceeds_shutdown_grace_plus_pre_stop() -> None:
    """SIGTERM drains in-flight calls within VIGIE_SHUTDOWN_GRACE_S before Kubernetes kills."""
    _, spec = _gateway_pod()
    config = find("ConfigMap", "vigie-config")["data"]
    pre_stop = _gateway_container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert (
        spec["terminationGracePeriodSeconds"] > float(config["VIGIE_SHUTDOWN_GRACE_S"]) + pre_stop
    )


def test_probes_do_not_use_kubelet_grpc_probe_which_cannot_present_a_client_certificate() -> None:
    c = _gateway_container()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert probe in c
        assert "grpc" not in c[probe]
    assert c["readinessProbe"]["exec"]["command"][:2] == ["vigie", "health"]


def test_crl_folder_is_mounted_without_sub_path_so_updates_reach_the_pod() -> None:
    config = find("ConfigMap", "vigie-config")["data"]
    crl_dir = os.path.dirname(config["VIGIE_CRL"])
    (mount,) = [m for m in _gateway_container()["volumeMounts"] if m["mountPath"] == crl_dir]
    assert "subPath" not in mount
    assert os.path.dirname(config["VIGIE_CLIENT_CA"]) == crl_dir


def test_every_mounted_setting_path_is_under_a_volume_mount() -> None:
    config = find("ConfigMap", "vigie-config")["data"]
    mounts = [m["mountPath"] for m in _gateway_container()["volumeMounts"]]
    for name in (
        "VIGIE_SERVER_CERT",
        "VIGIE_SERVER_KEY",
        "VIGIE_CLIENT_CA",
        "VIGIE_CRL",
        "VIGIE_PSEUDONYM_KEYS",
        "VIGIE_DATA_KEYS",
        "VIGIE_JOURNAL_KEY",
    ):
        assert any(config[name].startswith(m + "/") for m in mounts), name


def test_migrations_run_as_a_job_and_retention_as_a_cron_job() -> None:
    job = find("Job", "vigie-migrate")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    cron = find("CronJob", "vigie-retention")
    (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["retention", "run"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


# -- settings ------------------------------------------------------------------------------------
SECRET_SETTINGS = {"VIGIE_DATABASE_URL", "VIGIE_ADMIN_TOKEN"}


def test_config_map_names_only_real_settings_and_no_secret() -> None:
    data = find("ConfigMap", "vigie-config")["data"]
    fields = {f"VIGIE_{name.upper()}" for name in Settings.model_fields}
    assert set(data) <= fields, sorted(set(data) - fields)
    assert not set(data) & SECRET_SETTINGS
    settings = Settings(**{k.removeprefix("VIGIE_").lower(): v for k, v in data.items()})
    assert settings.environment == "production"
    assert settings.log_format == "json"
    assert settings.listen.startswith("0.0.0.0:")


def test_database_url_comes_from_a_secret() -> None:
    for cid, _, c in containers():
        if c["name"] == "install-keys":
            continue
        (env,) = [e for e in c["env"] if e["name"] == "VIGIE_DATABASE_URL"]
        assert env["valueFrom"]["secretKeyRef"] == {"name": "vigie-database", "key": "url"}, cid


# -- secrets -------------------------------------------------------------------------------------
def _secret_values(doc: dict[str, Any]) -> dict[str, str]:
    values = dict(doc.get("stringData", {}))
    for key, b64 in doc.get("data", {}).items():
        values[key] = base64.b64decode(b64).decode("utf-8", "replace")
    return values


def _looks_like_key_material(value: str) -> bool:
    if "-----BEGIN" in value or "PRIVATE KEY" in value:
        return True
    compact = value.strip()
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= 16


@pytest.mark.parametrize("path", secret_template_files(), ids=lambda p: p.name)
def test_secret_templates_hold_placeholders_only(path: Path) -> None:
    for doc in load_yaml_documents(path):
        assert doc["kind"] == "Secret"
        assert "data" not in doc, "templates use stringData placeholders, never encoded data"
        for key, value in _secret_values(doc).items():
            assert "REPLACE_ME" in value, f"{path.name}:{key} is not a placeholder"
            assert not _looks_like_key_material(value), f"{path.name}:{key}"


def test_no_key_material_anywhere_under_deploy() -> None:
    for path in K8S.parent.rglob("*"):
        if path.is_file():
            text = path.read_text("utf-8", errors="replace")
            assert not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text), path


def test_secret_templates_are_not_applied_by_kustomize() -> None:
    """Re-applying the manifests must never overwrite real Secrets with placeholders."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in manifest_files())
    assert not any(r["kind"] == "Secret" for r in all_resources())
    assert "secretGenerator" not in kustomization


def test_every_secret_the_pods_use_has_a_template() -> None:
    templates = {
        doc["metadata"]["name"]
        for path in secret_template_files()
        for doc in load_yaml_documents(path)
    }
    used = set()
    for _, _, spec in pod_specs():
        used |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        for c in spec["containers"]:
            for e in c.get("env", []):
                if "secretKeyRef" in e.get("valueFrom", {}):
                    used.add(e["valueFrom"]["secretKeyRef"]["name"])
    assert used == templates


# -- the init container's key copy, against the real key loader ----------------------------------
def _fake_secret_volume(root: Path, files: dict[str, bytes]) -> None:
    """Lay out files the way the kubelet does: ..data symlink, per-key symlinks, mode 0440."""
    data = root / "..2026_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    for name, content in files.items():
        (data / name).write_bytes(content)
        os.chmod(data / name, 0o440)
    (root / "..data").symlink_to(data.name)
    for name in files:
        (root / name).symlink_to(f"..data/{name}")


def test_init_container_turns_secret_volumes_into_files_the_key_loader_accepts(
    tmp_path: Path,
) -> None:
    from gateway.crypto import KeyMaterialError, load_key_file
    from gateway.keys import load_ring

    if shutil.which("sh") is None:
        pytest.skip("no POSIX shell")

    def key() -> bytes:
        return base64.b64encode(os.urandom(32)) + b"\n"

    src, dst = tmp_path / "keys-src", tmp_path / "keys"
    _fake_secret_volume(src / "pseudonym", {"CURRENT": b"k2\n", "k1.key": key(), "k2.key": key()})
    _fake_secret_volume(src / "data", {"CURRENT": b"d1\n", "d1.key": key()})
    _fake_secret_volume(src / "journal", {"journal.key": key()})
    dst.mkdir()
    # 1. As mounted, the key loader refuses the Secret files (symlink, group-readable).
    with pytest.raises(KeyMaterialError):
        load_key_file(src / "pseudonym" / "k1.key")
    # 2. Run the init container's script with its paths moved under tmp_path.
    (init,) = _gateway_pod()[1]["initContainers"]
    assert init["command"][:2] == ["/bin/sh", "-ec"]
    script = (
        init["command"][2]
        .replace("/etc/vigie/keys-src", str(src))
        .replace("/run/vigie/keys", str(dst))
    )
    subprocess.run(["sh", "-ec", script], check=True, timeout=30)
    # 3. The copies are regular owner-only files that the real loaders accept.
    ring = load_ring(dst / "pseudonym")
    assert ring.current_id == "k2"
    assert set(ring.ids()) == {"k1", "k2"}
    load_ring(dst / "data")
    load_key_file(dst / "journal.key")  # only the copy is tested: same file rules as keys
    for path in dst.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert not path.is_symlink()
        assert mode & 0o077 == 0, f"{path}: {mode:04o}"
