"""Drive one run: population, then beneficiary after beneficiary, honest care, fraud, output.

Memory stays bounded by one beneficiary's care plus the (small) provider population: lines go to
disk as soon as they are made, so the run scales to millions of lines.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.synth._config import AMO_MEMBER, FRAUD_PATTERNS, SynthConfig, SynthSummary
from gateway.synth._fraud import inject_fraud
from gateway.synth._honest import honest_events
from gateway.synth._output import Sink
from gateway.synth._people import Population, build_population, derive_seed, draw_beneficiary

__all__ = ["POPULATION_FILE", "generate"]

POPULATION_FILE = "population.json"
Progress = Callable[[int, int], None]


def generate(config: SynthConfig, out_dir: Path, progress: Progress | None = None) -> SynthSummary:
    """Generate a synthetic population and its claims into ``out_dir``.

    Writes ``claims-<member>.jsonl`` (or ``.csv``) for the AMO and every AMC,
    ``ground_truth.jsonl`` (one row per claim line: member, member_reference, fraud_pattern,
    scheme_id, amount_at_stake_cents) and ``population.json`` (members, providers,
    prescribers, counts; never a NIR nor the key). Same config, byte-identical files.

    Args:
        config: What to generate.
        out_dir: Output folder, created if missing; existing files of the same names are
            replaced.
        progress: Called with ``(beneficiaries done, beneficiaries total)`` about every 1 % and
            at the end.

    Returns:
        What was written.

    Raises:
        OSError: ``out_dir`` cannot be created or written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    population = build_population(config)
    start, end = config.start_date, config.end_date
    total = config.beneficiaries
    step = max(1, total // 100)
    covered: dict[str, int] = dict.fromkeys(config.amc_members, 0)
    sink = Sink(out_dir, config.members, config.output_format)
    try:
        for index in range(total):
            beneficiary, nir = draw_beneficiary(config, population, index)
            del nir  # only the token leaves draw_beneficiary's caller
            if beneficiary.amc:
                covered[beneficiary.amc] += 1
            honest_rng = random.Random(derive_seed(config.seed, "honest", index))  # noqa: S311 (synthetic data)
            fraud_rng = random.Random(derive_seed(config.seed, "fraud", index))  # noqa: S311 (synthetic data)
            events = honest_events(beneficiary, population, honest_rng, start, end)
            for event in inject_fraud(config, population, beneficiary, fraud_rng, events):
                sink.write_event(event, beneficiary.token)
            if progress is not None and ((index + 1) % step == 0 or index + 1 == total):
                progress(index + 1, total)
    finally:
        sink.close()
    summary = SynthSummary(
        beneficiaries=total,
        window_start=start,
        window_end=end,
        lines_total=sum(sink.lines_by_member.values()),
        lines_by_member=dict(sink.lines_by_member),
        fraud_lines_by_pattern={p: sink.fraud_lines.get(p, 0) for p in FRAUD_PATTERNS},
        amount_at_stake_by_pattern={p: sink.stake.get(p, 0) for p in FRAUD_PATTERNS},
        files=(*sink.files, POPULATION_FILE),
    )
    _write_population(out_dir / POPULATION_FILE, config, population, covered, summary)
    return summary


def _write_population(
    path: Path,
    config: SynthConfig,
    population: Population,
    covered: dict[str, int],
    summary: SynthSummary,
) -> None:
    providers: list[dict[str, Any]] = [
        {
            "sector": p.sector,
            "rpps": p.rpps,
            "am_numbers": list(p.am_numbers),
            "finess": p.finess,
            "role": p.role,
            "scheme_id": p.scheme_id,
        }
        for p in (
            *(
                p
                for sector in ("optique", "audio", "dentaire")
                for p in population.providers[sector]
            ),
            population.ring_young,
            population.ring_fictitious,
        )
    ]
    prescribers = [
        {"rpps": p.rpps, "specialty": p.specialty, "role": p.role}
        for p in (
            *population.ophthalmologists,
            *population.orls,
            *population.gps,
            population.ring_young_prescriber,
            population.ring_fictitious_prescriber,
        )
    ]
    document = {
        "format": "vigie-synth/1",
        "config": config.model_dump(mode="json", exclude={"shared_key"}),
        "window": {
            "start": summary.window_start.isoformat(),
            "end": summary.window_end.isoformat(),
        },
        "members": [
            {"id": AMO_MEMBER, "kind": "AMO"},
            *({"id": m, "kind": "AMC"} for m in config.amc_members),
        ],
        "providers": providers,
        "prescribers": prescribers,
        "counts": {
            "beneficiaries": summary.beneficiaries,
            "beneficiaries_by_amc": covered,
            "beneficiaries_without_amc": summary.beneficiaries - sum(covered.values()),
            "lines_total": summary.lines_total,
            "lines_by_member": summary.lines_by_member,
            "fraud_lines_by_pattern": summary.fraud_lines_by_pattern,
            "amount_at_stake_by_pattern": summary.amount_at_stake_by_pattern,
        },
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
