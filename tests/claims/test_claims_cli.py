"""``vigie synth`` and ``vigie evaluate``: exit codes and messages, determinism, and an
evaluation on a small generated set whose metrics are recomputed from its ground truth."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.crypto import generate_key_file
from gateway.domain import default_ruleset
from gateway.synth._metrics import AlertSeen, TruthRow, compute_metrics

# Rates high enough for every targeted pattern to appear in a few hundred beneficiaries.
RATES = ["phantom_complement=0.2", "amount_mismatch=0.05", "early_renewal=0.2",
         "prescription_invalid=0.05", "price_above_cap=0.2", "double_billing_amc=0.05",
         "duplicate_item=0.05", "no_followup=0.5", "implausible_demography=0.2"]  # fmt: skip


def _synth(out: Path, *extra: str) -> int:
    return main(["synth", "--out", str(out), "--seed", "9", "--beneficiaries", "150", *extra])


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    assert _synth(out, "--quiet", *(x for r in RATES for x in ("--rate", r))) == 0
    return out


# -- synth ---------------------------------------------------------------------------------------


def test_synth_writes_claims_and_a_separate_ground_truth_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _synth(tmp_path, "--amcs", "2") == 0
    out, err = capsys.readouterr()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["claims-cpam-75.jsonl", "claims-mut-alpha.jsonl", "claims-mut-beta.jsonl",
                     "ground_truth.jsonl", "population.json"]  # fmt: skip
    assert "synth: 150/150 beneficiaries (100 %)" in err and "ground truth:" in out
    claims = (tmp_path / "claims-mut-alpha.jsonl").read_text()
    assert "fraud_pattern" not in claims  # the truth is never in the claims files
    truth = [json.loads(x) for x in (tmp_path / "ground_truth.jsonl").read_text().splitlines()]
    lines = sum(len(p.read_text().splitlines()) for p in tmp_path.glob("claims-*.jsonl"))
    assert len(truth) == lines


def test_synth_is_deterministic_with_a_seed_and_a_key_file(tmp_path: Path) -> None:
    key = tmp_path / "members.key"
    generate_key_file(key)
    for run in ("a", "b"):
        assert _synth(tmp_path / run, "--quiet", "--members-key", str(key), "--format", "csv") == 0
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
    assert _synth(tmp_path / "c", "--quiet", "--format", "csv") == 0  # the seed-derived key
    tokens = {(tmp_path / r / "claims-cpam-75.csv").read_text().splitlines()[1] for r in "ac"}
    assert len(tokens) == 2  # another key, other first-level tokens


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--rate", "made_up=0.1"], 2, "--rate 'made_up=0.1': expected PATTERN=RATE"),
        (["--rate", "early_renewal=lots"], 2, "--rate early_renewal: 'lots' is not a number"),
        (["--rate", "early_renewal=2"], 2, "fraud_rates.early_renewal: must be between 0 and 1"),
        (["--no-fraud", "--rate", "early_renewal=0.1"], 2, "cannot be combined"),
        (["--beneficiaries", "0"], 2, "beneficiaries"),
        (["--years", "4"], 2, "years"),
        (["--amcs", "1", "--rate", "double_billing_amc=0.1"], 2, "needs at least 2 AMCs"),
        (["--start-date", "2023-02-30"], 2, "--start-date '2023-02-30': not an ISO date"),
        (["--start-date", "2099-01-01"], 2, "the window must end by today"),
        (["--members-key", "/nonexistent/members.key"], 3, "members key file not found"),
    ],
)
def test_synth_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert _synth(tmp_path / "out", "--quiet", *args) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_synth_output_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert _synth(tmp_path / "f", "--quiet") == 3
    assert "exists and is not a folder" in capsys.readouterr().err


def test_synth_unreadable_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k"
    key.write_text("not base64 at all\n")
    key.chmod(0o600)
    assert _synth(tmp_path / "out", "--quiet", "--members-key", str(key)) == 2
    assert "--members-key" in capsys.readouterr().err


# -- evaluate: bad input -------------------------------------------------------------------------


def _incomplete(small_set: Path, tmp_path: Path, drop: str) -> Path:
    copy = tmp_path / "set"
    shutil.copytree(small_set, copy)
    (copy / drop).unlink()
    return copy


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("ground_truth.jsonl", "ground truth missing"),
        ("population.json", "population.json missing"),
        ("claims-mut-beta.jsonl", "claims file missing"),
    ],
)
def test_evaluate_refuses_an_incomplete_set(
    small_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], drop: str, message: str
) -> None:
    assert main(["evaluate", str(_incomplete(small_set, tmp_path, drop)), "--quiet"]) == 3
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["/nonexistent/set"], 3, "data set folder not found"),
        (["{set}", "--batch", "0"], 2, "--batch: must be between 1 and 10000"),
        (["{set}", "--top", "0"], 2, "--top: must be at least 1"),
        (["{set}", "--policy", "no-such-bundle"], 2, "--policy:"),
    ],
)
def test_evaluate_bad_arguments(
    small_set: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    argv = [a.replace("{set}", str(small_set)) for a in args]
    assert main(["evaluate", *argv, "--quiet"]) == code
    assert message in capsys.readouterr().err


# -- evaluate: a real run ------------------------------------------------------------------------


def _truth(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "ground_truth.jsonl").read_text().splitlines()]


def test_evaluate_measures_the_scoring_against_the_ground_truth(
    small_set: Path, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "metrics.json"
    argv = ["evaluate", str(small_set), "--quiet", "--json", str(report), "--database-url", db_url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "precision at the top 100 alerts" in out and "false-alert rate on honest" in out
    metrics = json.loads(report.read_text())
    truth = _truth(small_set)
    assert metrics["lines"] == len(truth)
    fraud = Counter(r["fraud_pattern"] for r in truth if r["amount_at_stake_cents"] > 0)
    for pattern, m in metrics["per_pattern"].items():
        assert m["fraud_lines"] == fraud.get(pattern, 0), pattern
    targeted = set(default_ruleset().fraud_patterns().values()) - {""}
    injected = {p for p in targeted if fraud.get(p)}
    assert {"phantom_complement", "price_above_cap", "early_renewal"} <= injected
    for pattern in injected - {"provider_volume_outlier", "class_shift"}:
        assert metrics["per_pattern"][pattern]["recall"] > 0, pattern
    stake = sum(r["amount_at_stake_cents"] for r in truth)
    assert metrics["fraud_euros_in_top_share"]["fraud_stake_cents"] == stake
    assert 0 < metrics["fraud_euros_in_top_share"]["captured"] <= 1
    assert metrics["precision_at_k"]["value"] > 0.5
    assert metrics["false_alert_rate_honest_providers"]["honest_lines"] > 0


def test_evaluate_follows_the_ground_truth_not_the_data(
    small_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Same claims, ground truth saying everything is honest: every alert is now a false one.
    copy = tmp_path / "set"
    shutil.copytree(small_set, copy)
    rows = _truth(copy)
    for r in rows:
        r.update(fraud_pattern="", scheme_id="", amount_at_stake_cents=0)
    (copy / "ground_truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = tmp_path / "metrics.json"
    assert main(["evaluate", str(copy), "--quiet", "--json", str(report)]) == 0
    metrics = json.loads(report.read_text())
    assert metrics["alerts"] > 0 and metrics["precision_at_k"]["value"] == 0
    assert all(m["recall"] is None for m in metrics["per_pattern"].values())
    assert metrics["false_alert_rate_honest_providers"]["alerted"] > 0


# -- metric definitions on a hand-made case ------------------------------------------------------


def test_metrics_definitions_on_a_hand_made_case() -> None:
    truth = [
        TruthRow("amc", "f1", "price_above_cap", 10_000),
        TruthRow("amc", "f2", "price_above_cap", 30_000),
        TruthRow("amc", "c1", "amount_mismatch", 0),  # a companion line: no stake
        TruthRow("amo", "m1", "amount_mismatch", 5_000),
        *(TruthRow("amo", f"h{i}", "", 0) for i in range(196)),
    ]
    alerts = [
        AlertSeen("amc", "f2", 90, ("PRICE_ABOVE_CAP",)),
        AlertSeen("amc", "c1", 50, ("AMOUNT_MISMATCH",)),
        AlertSeen("amo", "h1", 40, ("PRICE_ABOVE_CAP",)),
        AlertSeen("amo", "h2", 30, ("EARLY_RENEWAL",)),
    ]
    honest = {("amo", f"h{i}") for i in range(100)}
    m = compute_metrics(truth, alerts, honest_provider_lines=honest,
                        rule_patterns=default_ruleset().fraud_patterns(), top_k=3)  # fmt: skip
    cap, mismatch = m.per_pattern["price_above_cap"], m.per_pattern["amount_mismatch"]
    assert (cap.fraud_lines, cap.detected, cap.recall) == (2, 1, 0.5)
    assert (cap.attributed_alerts, cap.precision) == (2, 0.5)  # f2 true, h1 false
    assert (mismatch.fraud_lines, mismatch.detected, mismatch.precision) == (1, 0, 1.0)
    assert m.precision_at_k == pytest.approx(2 / 3)  # f2, c1 tagged; h1 honest
    assert m.top_lines == 2 and m.captured_stake_cents == 30_000  # the 2 best: f2, c1
    assert m.captured_share == pytest.approx(30_000 / 45_000)
    assert (m.honest_lines, m.honest_alerted, m.false_alert_rate) == (100, 2, 0.02)
    assert m.recall_overall == pytest.approx(1 / 3)
