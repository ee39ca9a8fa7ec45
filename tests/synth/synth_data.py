"""Load what ``vigie synth`` wrote, for the tests of this folder."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from gateway.synth import FRAUD_PATTERNS, SynthConfig

KEY = bytes(range(32))
"""The members' shared key of the test runs (never a real key)."""

TEST_RATES = {
    "phantom_complement": 0.05,
    "amount_mismatch": 0.03,
    "early_renewal": 0.08,
    "prescription_invalid": 0.03,
    "price_above_cap": 0.05,
    "double_billing_amc": 0.03,
    "duplicate_item": 0.03,
    "no_followup": 0.3,
    "implausible_demography": 0.3,
    "provider_volume_outlier": 0.1,
    "class_shift": 0.05,
    "identity_theft": 0.05,
    "fictitious_billing": 0.05,
}
assert set(TEST_RATES) == set(FRAUD_PATTERNS)


def config(**overrides: Any) -> SynthConfig:
    """A small run with every pattern at a rate high enough to show up."""
    values: dict[str, Any] = {
        "seed": 11,
        "beneficiaries": 1000,
        "start_date": date(2023, 1, 1),
        "years": 3,
        "fraud_rates": dict(TEST_RATES),
        "shared_key": KEY,
    }
    values.update(overrides)
    return SynthConfig(**values)


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@dataclass
class Dataset:
    """Every line of a run, with its member and ground truth."""

    folder: Path
    config: SynthConfig
    lines: list[tuple[str, dict[str, Any]]]  # (member, line)
    truth: dict[tuple[str, str], dict[str, Any]]  # (member, member_reference) -> row

    def pattern(self, member: str, line: dict[str, Any]) -> str:
        return str(self.truth[(member, line["member_reference"])]["fraud_pattern"])

    def honest(self) -> list[tuple[str, dict[str, Any]]]:
        return [(m, ln) for m, ln in self.lines if not self.pattern(m, ln)]


def load(folder: Path, cfg: SynthConfig) -> Dataset:
    lines = [
        (member, line)
        for member in cfg.members
        for line in read_jsonl(folder / f"claims-{member}.jsonl")
    ]
    truth = {
        (row["member"], row["member_reference"]): row
        for row in read_jsonl(folder / "ground_truth.jsonl")
    }
    return Dataset(folder, cfg, lines, truth)
