"""Every ``vigie`` command the deployment runs is one the real command line accepts.

A renamed sub-command or flag would otherwise only show as a crash-looping pod or a CronJob
failing at 03:17. The image's entrypoint is ``vigie``: container ``args`` are its arguments;
probes and compose ``command`` lists are checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deploy_files import containers

from gateway.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _invocations() -> Iterator[tuple[str, list[str]]]:
    for cid, _, c in containers():
        if "command" not in c and "args" in c:  # the image's entrypoint: vigie
            yield f"{cid} args", [str(a) for a in c["args"]]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            command = c.get(probe, {}).get("exec", {}).get("command", [])
            if command[:1] == ["vigie"]:
                yield f"{cid} {probe}", [str(a) for a in command[1:]]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        if isinstance(service.get("command"), list) and "vigie" in str(service.get("image", "")):
            yield f"compose {name}", [str(a) for a in service["command"]]


INVOCATIONS = dict(_invocations())


def test_the_deployment_runs_the_expected_commands() -> None:
    commands = {" ".join(argv[:2]) for argv in INVOCATIONS.values()}
    assert {"serve", "migrate", "retention run"} <= {c.split(" --")[0] for c in commands}


@pytest.mark.parametrize("where", sorted(INVOCATIONS))
def test_every_vigie_invocation_parses_with_the_real_cli(where: str) -> None:
    parser = build_parser()
    try:
        args = parser.parse_args(INVOCATIONS[where])
    except SystemExit as e:  # argparse's way of refusing
        pytest.fail(f"{where}: `vigie {' '.join(INVOCATIONS[where])}` is refused ({e.code})")
    assert callable(args.func)


def test_the_retention_cron_job_is_not_left_suspended() -> None:
    cron = yaml.safe_load((DEPLOY / "k8s" / "retention-cronjob.yaml").read_text())
    assert cron["spec"]["suspend"] is False


def test_the_retention_job_mounts_the_data_key_ring_it_needs() -> None:
    from deploy_files import find

    config = find("ConfigMap", "vigie-config")["data"]
    cron = find("CronJob", "vigie-retention")
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert any(config["VIGIE_DATA_KEYS"].startswith(m + "/") for m in mounts)
    (init,) = spec["initContainers"]
    assert "/run/vigie/keys" in {m["mountPath"] for m in init["volumeMounts"]}
