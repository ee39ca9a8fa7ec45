"""``vigie demo`` (quick profile) runs end to end and shows what the server really answered."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console

from gateway.cli import main
from gateway.crypto import first_level_token, load_key_file
from gateway.demo import DEMO_NIR, DemoReport, run_scenario


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, str]:
    """One quick demo run (its own event loop, server and clients), shared by these tests."""
    out = io.StringIO()
    console = Console(file=out, width=140, force_terminal=False)
    folder = tmp_path_factory.mktemp("demo") / "d"
    report = asyncio.run(run_scenario(folder, quick=True, console=console))
    return report, out.getvalue()


def _db(report: DemoReport) -> sa.Engine:
    assert report.files is not None
    return sa.create_engine(report.files.database_url)


def _file_lines(report: DemoReport, member: str) -> int:
    assert report.files is not None
    return sum(1 for _ in (report.files.data / f"claims-{member}.jsonl").open())


def test_every_uploaded_line_is_counted_by_the_gateway(demo: tuple[DemoReport, str]) -> None:
    report, _ = demo
    assert set(report.uploads) == {"cpam-75", "mut-alpha", "mut-beta", "mut-gamma"}
    for member, counts in report.uploads.items():
        assert counts == {"accepted": _file_lines(report, member), "duplicate": 0, "rejected": 0}


def test_each_mutuelle_receives_only_alerts_on_its_own_claims(
    demo: tuple[DemoReport, str],
) -> None:
    report, _ = demo
    with _db(report).connect() as conn:
        owner = dict(conn.execute(sa.text("select public_id, member_id from alerts")).all())
    assert sum(len(a) for a in report.alerts.values()) > 0
    for member, alerts in report.alerts.items():
        for alert in alerts:
            assert owner[alert.name.removeprefix("alerts/")] == member
            assert alert.reasons and all(r.explanation for r in alert.reasons)


def test_the_suspicion_reaches_its_mutuelle_and_so_does_its_retraction(
    demo: tuple[DemoReport, str],
) -> None:
    report, _ = demo
    person = report.suspicions["beneficiary (demo NIR)"]
    kinds = [kind for kind, subject in report.feed if subject == person]
    assert kinds == ["shared", "retracted"]
    assert report.retraction_acknowledged
    with _db(report).connect() as conn:
        rows = conn.execute(
            sa.text(
                "select member_id, kind, acknowledged_at from notifications"
                " where kind in ('SHARED', 'RETRACTED') and subject_ref = :s"
            ),
            {"s": person.removeprefix("suspicions/")},
        ).all()
    assert {(m, k) for m, k, _ in rows} == {("mut-alpha", "SHARED"), ("mut-alpha", "RETRACTED")}
    assert all(ack is not None for _, _, ack in rows)


def test_reading_another_members_data_is_refused_with_the_exact_status(
    demo: tuple[DemoReport, str],
) -> None:
    report, _ = demo
    outcomes = {what: (code, rules) for _, what, code, rules in report.refusals}
    assert outcomes["read one of mut-alpha's alerts"][0] == "NOT_FOUND"
    assert outcomes["read mut-alpha's suspicion"][0] == "NOT_FOUND"
    assert outcomes["list the access journal"][0] == "PERMISSION_DENIED"
    code, rules = outcomes["report to the CPAM (AMC -> AMO)"]
    assert code == "PERMISSION_DENIED" and "cl-no-amc-to-amo-report" in rules


def test_the_officer_answers_who_looked_at_the_person_and_verifies_offline(
    demo: tuple[DemoReport, str],
) -> None:
    report, _ = demo
    seen = {(e.member, e.method.rsplit("/", 1)[-1]) for e in report.person_accesses}
    assert ("members/cpam-75", "CreateSuspicion") in seen
    assert ("members/mut-alpha", "StreamNotifications") in seen
    v = report.verification
    assert v.events_verified > 0 and v.tree_size >= v.events_verified + v.events_withheld
    assert report.bundle_path is not None and report.files is not None
    code = main(["audit", "verify", "--vkey", str(report.files.vkey_file), str(report.bundle_path)])
    assert code == 0


def test_no_nir_nor_first_level_token_is_stored_or_shown(
    demo: tuple[DemoReport, str],
) -> None:
    report, output = demo
    assert report.files is not None
    token1 = first_level_token(DEMO_NIR, load_key_file(report.files.members_key))
    database = Path(report.files.database_url.removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert DEMO_NIR.encode() not in stored and token1.encode() not in stored
    assert DEMO_NIR not in output and token1 not in output
    bundle = report.bundle_path.read_text() if report.bundle_path else ""
    assert DEMO_NIR not in bundle and token1 not in bundle


def test_the_demo_tells_where_the_files_are_and_how_to_serve_them(
    demo: tuple[DemoReport, str],
) -> None:
    report, output = demo
    assert report.files is not None
    assert f"vigie serve --env-file {report.files.env_file}" in output
    env = dict(
        line.split("=", 1)
        for line in report.files.env_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["VIGIE_DATABASE_URL"] == report.files.database_url
    assert Path(env["VIGIE_SERVER_CERT"]).is_file()
    assert json.loads(report.bundle_path.read_text())["format"] == "vigie/journal-bundle/v1"  # type: ignore[union-attr]


def test_demo_refuses_to_empty_a_folder_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "precious.txt").write_text("not a demo file")
    assert main(["demo", "--dir", str(tmp_path), "--quick"]) == 2
    assert "is not a Vigie demo folder" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").is_file()
