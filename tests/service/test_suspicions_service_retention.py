"""The retention purge as an operator runs it (``vigie retention run``) and as the server runs it.

The purge works on the same database and keys as a running gateway; what it deletes is journaled
in the same transaction (DESIGN flow 6), and recipients can still read and acknowledge the
retractions of what was deleted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.keys import init_ring
from gateway.server._policy import EnginePolicyHook
from policy import bundle_path
from tests.service._suspicions_service_helpers import (
    TOKEN_B1,
    Exchange,
    S,
    as_list,
    count,
    journal,
    rows,
)
from tests.service.conftest import GatewayFactory


@pytest.fixture
async def ex(gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch) -> Exchange:
    exchange = Exchange(await gateway_factory(policy=EnginePolicyHook.load("current-law")))
    settings = exchange.env.gateway.settings
    # The command reads the same configuration as the gateway it serves next to.
    for name in ("database_url", "pseudonym_keys", "data_keys", "journal_key", "environment"):
        monkeypatch.setenv(f"VIGIE_{name.upper()}", str(getattr(settings, name)))
    return exchange


def _retention(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["retention", "run", "--json", *args])
    out = capsys.readouterr().out.strip()
    return code, (json.loads(out) if code == 0 else {})


async def _shared(ex: Exchange) -> tuple[str, Any]:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    feed = ex.stream("mut-alpha")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    return created.name, feed


async def test_retention_run_deletes_a_cleared_tombstone_once_every_retraction_is_acknowledged(
    ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    name, feed = await _shared(ex)
    await feed.next()
    await ex.move("cpam-75", name, S.SUSPICION_STATUS_CLEARED)
    retraction = await feed.next()
    code, report = _retention(capsys)
    assert code == 0 and report["counts"]["not_relevant_or_cleared"] == 0  # not acknowledged
    assert count(ex.env, "suspicions") == 1
    await ex.ack("mut-alpha", retraction.name)
    code, report = _retention(capsys)
    sid = name.removeprefix("suspicions/")
    assert code == 0 and report["deleted"]["not_relevant_or_cleared"] == [sid]
    for table in ("suspicions", "suspicion_transitions", "suspicion_recipients"):
        assert count(ex.env, table) == 0, table
    events = journal(ex.env, "suspicions.retention")
    assert [as_list(e["record_refs"]) for e in events] == [[], [name]]
    assert "retention.not_relevant_or_cleared" in str(events[-1]["rule_ids"])
    assert events[-1]["seq"] == report["journal_seq"] and events[-1]["decision"] == "allow"
    [run] = rows(ex.env, "select bundle_name from retention_runs order by id desc limit 1")
    assert run["bundle_name"] == "current-law"
    feed.cancel()


async def test_shortened_period_of_a_reviewed_bundle_applies_at_the_next_run(
    ex: Exchange, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    name, feed = await _shared(ex)
    shared = await feed.next()
    await ex.move("cpam-75", name, S.SUSPICION_STATUS_DISMISSED)
    feed.cancel()
    code, report = _retention(capsys)
    assert code == 0 and report["counts"]["closed_without_action"] == 0  # kept one year
    shorter = tmp_path / "current-law"  # a revised copy (the folder names the bundle)
    shutil.copytree(bundle_path("current-law"), shorter)
    manifest = shorter / "bundle.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert "closed_without_action: {days: 365," in text
    manifest.write_text(
        text.replace("closed_without_action: {days: 365,", "closed_without_action: {days: 0,"),
        encoding="utf-8",
    )
    code, report = _retention(capsys, "--bundle", str(shorter))
    assert code == 0 and report["deleted"]["closed_without_action"] == [name.split("/")[1]]
    assert report["bundle_hash"] != ex.env.policy.bundle_hash
    assert count(ex.env, "suspicions") == 0
    # The recipient still reads and acknowledges the retraction of what is gone.
    resumed = ex.stream("mut-alpha", after=shared.sequence)
    retraction = await resumed.next()
    assert retraction.kind == S.NOTIFICATION_KIND_RETRACTED and retraction.suspicion.name == name
    assert (await ex.ack("mut-alpha", retraction.name)).HasField("acknowledge_time")
    resumed.cancel()


async def test_the_servers_periodic_purge_is_journaled_too(ex: Exchange) -> None:
    servicer = next(
        job.__self__  # type: ignore[attr-defined]
        for job in ex.env.gateway.deps.jobs
        if getattr(job, "__name__", "") == "_retention_job"
    )
    await servicer.run_retention_once()
    [event] = journal(ex.env, "suspicions.retention")
    assert event["decision"] == "allow" and event["outcome"] == "OK"
    assert rows(ex.env, "select principal from journal_events where seq = :s", s=event["seq"]) == [
        {"principal": "vigie-gateway"}
    ]


def test_retention_run_exit_codes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIGIE_ENVIRONMENT", "test")
    for name in ("pseudonym_keys", "data_keys"):
        monkeypatch.setenv(f"VIGIE_{name.upper()}", str(tmp_path / "keys" / name))
    monkeypatch.setenv("VIGIE_JOURNAL_KEY", str(tmp_path / "keys" / "journal.key"))
    ok = f"sqlite:///{tmp_path / 'vigie.db'}"
    assert main(["retention", "run", "--database-url", ok]) == 3  # no data key ring yet
    assert "VIGIE_DATA_KEYS" in capsys.readouterr().err
    init_ring(tmp_path / "keys" / "data_keys")  # as the gateway does at its first start
    assert main(["retention", "run", "--database-url", ok]) == 0  # nothing to purge: done
    assert "journaled as event" in capsys.readouterr().out
    assert main(["retention", "run", "--database-url", ok, "--bundle", "no-such-bundle"]) == 2
    assert "--bundle" in capsys.readouterr().err
    unreachable = "postgresql://postgres@127.0.0.1:1/test"
    assert main(["retention", "run", "--database-url", unreachable]) == 3
    assert "database unavailable" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["retention"])
    assert usage.value.code == 2
