"""``vigie audit export|verify|report|erase`` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from journal_store_helpers import ORIGIN, VKEY, integrate_now, write_events

from gateway.cli import main
from gateway.journal import vkey_for
from gateway.store import Database

OTHER_VKEY = vkey_for(
    ORIGIN, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"other").digest()).public_key()
)


def _vigie(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


def test_export_verify_report_round_trip(
    db_url: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_events(database, 12)
    integrate_now(database)
    vkey_file = tmp_path / "journal.vkey"
    vkey_file.write_text(VKEY + "\n")
    bundle, kept = tmp_path / "b1.json", tmp_path / "kept-checkpoint.txt"
    assert _vigie("audit", "export", "--db", db_url, "--vkey", vkey_file, "--out", bundle) == 0
    assert "VALID" in capsys.readouterr().out
    assert _vigie("audit", "verify", bundle, "--vkey", VKEY, "--save-checkpoint", kept) == 0
    out = capsys.readouterr().out
    assert out.startswith("VALID  journal vigie.test/journal-store")
    assert "every leaf of [0, 12)" in out and "12 revealed" in out
    # Later: more events, an export proving consistency with the kept checkpoint.
    write_events(database, 5, start=12)
    integrate_now(database)
    later = tmp_path / "b2.json"
    assert (
        _vigie(
            "audit",
            "export",
            "--db",
            db_url,
            "--vkey",
            VKEY,
            "--out",
            later,
            "--since-checkpoint",
            kept,
            "--from-size",
            "10",
        )
        == 0
    )
    capsys.readouterr()
    assert _vigie("audit", "verify", later, "--vkey", VKEY, "--previous-checkpoint", kept) == 0
    out = capsys.readouterr().out
    assert "every leaf of [10, 17)" in out and "earlier checkpoint of size 12" in out
    report = tmp_path / "report.html"
    assert _vigie("audit", "report", later, "--vkey", VKEY, "--out", report) == 0
    page = report.read_text()
    assert "Verification: VALID" in page and page.count("<svg") == 3


def test_filtered_export_says_deletions_elsewhere_are_invisible(
    db_url: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_events(database, 12)
    integrate_now(database)
    bundle = tmp_path / "refusals.json"
    args = ("--db", db_url, "--vkey", VKEY, "--out", bundle, "--decision", "deny", "--no-personal")
    assert _vigie("audit", "export", *args) == 0
    data = json.loads(bundle.read_text())
    assert len(data["events"]) == 3 and all(e["personal"] is None for e in data["events"])
    assert "filtered selection" in capsys.readouterr().out


def test_database_tampering_makes_export_and_verify_fail(
    db_url: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_events(database, 6)
    integrate_now(database)
    with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            conn.execute(sa.text("ALTER TABLE journal_events DISABLE TRIGGER ALL"))
        else:
            conn.execute(sa.text("DROP TRIGGER journal_events_no_update"))
        conn.execute(sa.text("UPDATE journal_events SET decision = 'allow' WHERE leaf_index = 3"))
    bundle = tmp_path / "b.json"
    assert _vigie("audit", "export", "--db", db_url, "--vkey", VKEY, "--out", bundle) == 1
    assert _vigie("audit", "verify", bundle, "--vkey", VKEY) == 1
    assert "INVALID  event at leaf 3" in capsys.readouterr().out
    report = tmp_path / "r.html"
    assert _vigie("audit", "report", bundle, "--vkey", VKEY, "--out", report) == 1
    assert "Verification: FAILED" in report.read_text()


def test_verify_with_the_wrong_key_or_bad_input(
    db_url: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_events(database, 2)
    integrate_now(database)
    bundle = tmp_path / "b.json"
    _vigie("audit", "export", "--db", db_url, "--vkey", VKEY, "--out", bundle)
    assert _vigie("audit", "verify", bundle, "--vkey", OTHER_VKEY) == 1
    assert _vigie("audit", "verify", bundle, "--vkey", "not-a-key") == 2
    assert _vigie("audit", "verify", tmp_path / "missing.json", "--vkey", VKEY) == 3
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert _vigie("audit", "verify", garbage, "--vkey", VKEY) == 1
    assert "not a JSON document" in capsys.readouterr().out


def test_export_with_no_checkpoint_yet_fails_cleanly(
    db_url: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_events(database, 1)
    out = tmp_path / "b.json"
    assert _vigie("audit", "export", "--db", db_url, "--vkey", VKEY, "--out", out) == 1
    assert "no signed checkpoint" in capsys.readouterr().err


def test_erase_command_applies_retention_and_refuses_short_periods(
    db_url: str, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    old = datetime.now(UTC) - timedelta(days=400)
    write_events(database, 3, time=old)
    write_events(database, 2, start=3, time=datetime.now(UTC) - timedelta(days=2))
    assert _vigie("audit", "erase", "--db", db_url, "--older-than-days", "30") == 2
    recent = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    assert _vigie("audit", "erase", "--db", db_url, "--before", recent) == 2
    assert (
        _vigie(
            "audit",
            "erase",
            "--db",
            db_url,
            "--older-than-days",
            "365",
            "--rule-id",
            "ret-access-logs",
        )
        == 0
    )
    assert "erased the personal fields of 3 event(s)" in capsys.readouterr().out
