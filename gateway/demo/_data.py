"""The demo's data: a ``vigie synth`` population, and one beneficiary who gets the demo NIR.

The synthetic NIRs are drawn and thrown away by ``vigie synth`` (only first-level tokens are
written). So that the compliance officer can ask "who looked at this person's data?" with a
NIR in hand, the demo gives one synthetic beneficiary -- one covered by ``mut-alpha`` and seen
by the CPAM -- the token of a public test NIR (DOMAIN.md §2 vector ``253072B07300470``): every
line carrying that beneficiary's token is rewritten with the token of the demo NIR, computed
with the members' shared key exactly as a member's system would.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gateway.crypto import first_level_token
from gateway.synth import DEFAULT_FRAUD_RATES, SynthConfig, SynthSummary, generate

__all__ = ["DEMO_NIR", "DemoData", "make_data"]

FRAUD_BOOST: Final = 5
"""The demo injects fraud five times as often as ``vigie synth``'s defaults, so that a small
population still shows every kind of alert."""
DEMO_NIR: Final = "253072B07300470"
"""A public test vector (DOMAIN.md §2), standing for one synthetic person of the demo."""


@dataclass(frozen=True, slots=True)
class DemoData:
    folder: Path
    summary: SynthSummary
    population: dict[str, Any]
    person_token: str
    person_sector: str
    person_lines: dict[str, int]  # member -> lines of the demo person

    def claims_file(self, member: str) -> Path:
        return self.folder / f"claims-{member}.jsonl"

    def providers(self, role: str) -> list[dict[str, Any]]:
        return [p for p in self.population["providers"] if p["role"] == role]


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _pick_person(folder: Path) -> tuple[str, str]:
    """The beneficiary with the most ``mut-alpha`` lines that the CPAM also has lines for."""
    amo = {r["beneficiary_token"] for r in _rows(folder / "claims-cpam-75.jsonl")}
    alpha = Counter(
        (r["beneficiary_token"], r["sector"])
        for r in _rows(folder / "claims-mut-alpha.jsonl")
        if r["beneficiary_token"] in amo
    )
    if not alpha:
        raise ValueError("the synthetic set has no beneficiary shared by cpam-75 and mut-alpha")
    (token, sector), _ = alpha.most_common(1)[0]
    return token, sector


def _retoken(folder: Path, old: str, new: str, members: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for member in members:
        path = folder / f"claims-{member}.jsonl"
        rows = _rows(path)
        n = 0
        for row in rows:
            if row["beneficiary_token"] == old:
                row["beneficiary_token"] = new
                n += 1
        counts[member] = n
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, separators=(",", ":")) + "\n")
        tmp.replace(path)
    return counts


def make_data(
    folder: Path,
    shared_key: bytes,
    *,
    beneficiaries: int,
    years: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> DemoData:
    """Generate the population and claims, then give one beneficiary the demo NIR's token."""
    config = SynthConfig(
        seed=seed,
        beneficiaries=beneficiaries,
        years=years,
        amcs=3,
        shared_key=shared_key,
        fraud_rates={k: min(1.0, v * FRAUD_BOOST) for k, v in DEFAULT_FRAUD_RATES.items()},
    )
    summary = generate(config, folder, progress)
    population = json.loads((folder / "population.json").read_text(encoding="utf-8"))
    members = [m["id"] for m in population["members"]]
    old, sector = _pick_person(folder)
    token = first_level_token(DEMO_NIR, shared_key)
    lines = _retoken(folder, old, token, members)
    return DemoData(
        folder=folder,
        summary=summary,
        population=population,
        person_token=token,
        person_sector=sector,
        person_lines=lines,
    )
