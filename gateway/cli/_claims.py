"""``vigie synth`` and ``vigie evaluate``: synthetic claims, and how well the scoring finds fraud.

- ``synth``: a deterministic synthetic population (beneficiaries, AMO, AMCs, opticians,
  audiologists, dentists, prescribers) and 1-3 years of claims on both sides, honest care
  following DOMAIN.md's rules plus injected fraud at configurable rates; the ground truth goes
  to its own file (``ground_truth.jsonl``). The members' first-level key is read from
  ``--members-key`` (a key file, as ``vigie upload`` uses) or, for synthetic data only, derived
  from the seed so that the same arguments write byte-identical files.
- ``evaluate``: uploads a generated set through a real gateway over mutual TLS (both sides),
  lets it match and score, reads the alerts back as each member sees them, and prints
  precision and recall per fraud pattern, precision at the top 100 alerts, the share of
  fraudulent euros in the top 1 % of scores and the false-alert rate on honest providers
  (definitions: ``gateway.synth._metrics``).

Exit codes (``gateway.cli``): 0 done; 1 the gateway refused lines or a call; 2 bad usage;
3 a file or folder is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["register"]


def _fail(message: str, exit_code: int) -> NoReturn:
    from gateway.cli._commands import CliError  # lazy: _commands imports this module

    raise CliError(message, exit_code)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- synth ---------------------------------------------------------------------------------------


def _rates(values: list[str], no_fraud: bool) -> dict[str, float] | None:
    from gateway.synth import DEFAULT_FRAUD_RATES, FRAUD_PATTERNS

    if no_fraud:
        if values:
            _fail("--no-fraud and --rate cannot be combined", 2)
        return {}
    if not values:
        return None
    rates = dict(DEFAULT_FRAUD_RATES)
    for item in values:
        pattern, sep, raw = item.partition("=")
        if not sep or pattern not in FRAUD_PATTERNS:
            _fail(
                f"--rate {item!r}: expected PATTERN=RATE with PATTERN one of "
                f"{', '.join(FRAUD_PATTERNS)}",
                2,
            )
        try:
            rates[pattern] = float(raw)
        except ValueError:
            _fail(f"--rate {pattern}: {raw!r} is not a number", 2)
    return rates


def _members_key(args: argparse.Namespace) -> bytes:
    if args.members_key:
        from gateway.crypto import CryptoError, load_key_file

        path = Path(args.members_key)
        if not path.exists():
            _fail(f"members key file not found: {path}", 3)
        try:
            return load_key_file(path).reveal()
        except (CryptoError, OSError) as e:
            _fail(f"--members-key {path}: {e}", 2)
    # Synthetic data only: a key every run with the same seed shares (never for real NIRs).
    return hashlib.sha256(f"vigie-synth/members-key/{args.seed}".encode()).digest()


def _synth(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from gateway.synth import SynthConfig, generate

    values: dict[str, Any] = {
        "seed": args.seed,
        "beneficiaries": args.beneficiaries,
        "amcs": args.amcs,
        "opticians": args.opticians,
        "audiologists": args.audiologists,
        "dentists": args.dentists,
        "prescribers": args.prescribers,
        "years": args.years,
        "output_format": args.format,
    }
    if args.start_date:
        try:
            values["start_date"] = date.fromisoformat(args.start_date)
        except ValueError:
            _fail(f"--start-date {args.start_date!r}: not an ISO date YYYY-MM-DD", 2)
    rates = _rates(args.rate or [], args.no_fraud)
    if rates is not None:
        values["fraud_rates"] = rates
    values["shared_key"] = _members_key(args)
    try:
        config = SynthConfig(**values)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or 'config'}: {err['msg']}"
            for err in e.errors()
        )
        _fail(problems, 2)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: exists and is not a folder", 3)

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            _say(f"synth: {done}/{total} beneficiaries ({100 * done // total} %)")

    try:
        summary = generate(config, out, progress)
    except OSError as e:
        _fail(f"cannot write {out}: {e.strerror}", 3)
    print(
        f"wrote {summary.lines_total} claim lines for {summary.beneficiaries} beneficiaries "
        f"({summary.window_start} to {summary.window_end}) into {out}"
    )
    for member, n in summary.lines_by_member.items():
        print(f"  {member}: {n} lines")
    fraud = {p: n for p, n in summary.fraud_lines_by_pattern.items() if n}
    print(f"  fraud lines by pattern: {json.dumps(fraud, sort_keys=True)}")
    print(f"  ground truth: {out / 'ground_truth.jsonl'} (kept apart from the claims files)")
    return 0


# -- evaluate ------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _print_report(evaluation: Any, folder: Path) -> None:
    from gateway.synth import FRAUD_PATTERNS

    m = evaluation.metrics
    print(
        f"vigie evaluate {folder}: {m.lines} lines, {evaluation.lines_uploaded} stored "
        f"({evaluation.lines_rejected} refused) in {evaluation.upload_seconds:.1f} s "
        f"({evaluation.lines_uploaded / max(evaluation.upload_seconds, 1e-9):,.0f} lines/s), "
        f"{m.alerts} alerts, policy {evaluation.bundle}"
    )
    print(
        "\n| fraud pattern | fraudulent lines | alerted | recall | alerts citing it | precision |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for p in FRAUD_PATTERNS:
        s = m.per_pattern[p]
        print(
            f"| {p} | {s.fraud_lines} | {s.detected} | {_pct(s.recall)} "
            f"| {s.attributed_alerts} | {_pct(s.precision)} |"
        )
    print(
        f"| all patterns | {sum(s.fraud_lines for s in m.per_pattern.values())} | "
        f"{sum(s.detected for s in m.per_pattern.values())} | {_pct(m.recall_overall)} | "
        f"{m.alerts} | {_pct(m.precision_overall)} |"
    )
    print(f"\nprecision at the top {m.top_k} alerts: {_pct(m.precision_at_k)}")
    print(
        f"fraudulent euros in the top {100 * m.top_share:g} % of scores ({m.top_lines} lines): "
        f"{_pct(m.captured_share)} of {m.fraud_stake_cents / 100:,.2f} EUR"
    )
    print(
        f"false-alert rate on honest providers: {_pct(m.false_alert_rate)} "
        f"({m.honest_alerted} of {m.honest_lines} honest lines)"
    )
    for note in m.notes:
        print(f"note: {note}")
    if evaluation.stale_days > 31:
        print(
            f"note: the data end {evaluation.stale_days} days before today; rules that wait "
            "for time (no follow-up within 12 months) fire on honest care the data cut off. "
            "Generate a window ending today (`vigie synth --start-date`) for a fair measure."
        )


def _evaluate(args: argparse.Namespace) -> int:
    import policy as legal
    from gateway.cli._commands import _run_async
    from gateway.client import VigieClientError
    from gateway.logs import configure_logging
    from gateway.synth._evaluate import DataSetError, read_data_set, run_evaluation

    folder = Path(args.folder)
    if args.batch < 1 or args.batch > 10_000:
        _fail("--batch: must be between 1 and 10000 lines per message", 2)
    if args.top < 1:
        _fail("--top: must be at least 1", 2)
    try:
        read_data_set(folder)  # fail fast, before any PKI or database is made
        legal.bundle_path(args.policy)
    except DataSetError as e:
        _fail(str(e), 3)
    except legal.BundleError as e:
        _fail(f"--policy: {e}", 2)
    configure_logging("console", "warning")  # the gateway's own logs: warnings only, stderr
    with tempfile.TemporaryDirectory(prefix="vigie-evaluate-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            evaluation = _run_async(
                run_evaluation(
                    folder,
                    work,
                    database_url=args.database_url,
                    bundle=args.policy,
                    batch_size=args.batch,
                    top_k=args.top,
                    say=print_nothing if args.quiet else _say,
                )
            )
        except DataSetError as e:
            _fail(str(e), 3)
        except VigieClientError as e:
            _fail(f"the gateway refused: {e}", 1)
    _print_report(evaluation, folder)
    if args.json:
        Path(args.json).write_text(
            json.dumps(evaluation.metrics.as_dict(), indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
    return 0


def print_nothing(_: str) -> None:
    """Progress sink of ``--quiet``."""


# -- parsers -------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add ``synth`` and ``evaluate`` to the ``vigie`` sub-commands."""
    s = sub.add_parser(
        "synth",
        help="generate synthetic AMO/AMC claims with injected fraud and its ground truth",
    )
    s.add_argument("--out", required=True, help="output folder (created if missing)")
    s.add_argument("--seed", type=int, default=0, help="same seed and options, same files")
    s.add_argument("--beneficiaries", type=int, default=1000)
    s.add_argument("--amcs", type=int, default=3, help="number of AMC members (1..24)")
    s.add_argument("--opticians", type=int, default=20)
    s.add_argument("--audiologists", type=int, default=10)
    s.add_argument("--dentists", type=int, default=30)
    s.add_argument("--prescribers", type=int, default=40)
    s.add_argument("--start-date", help="first day of the window (default 2023-01-01)")
    s.add_argument("--years", type=int, default=3, help="length of the window, 1..3 years")
    s.add_argument(
        "--rate",
        action="append",
        metavar="PATTERN=RATE",
        help="fraud rate of one pattern (repeatable; the others keep their default)",
    )
    s.add_argument("--no-fraud", action="store_true", help="honest care only")
    s.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    s.add_argument("--members-key", help="the members' first-level key file (base64, 0600)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(func=_synth)

    e = sub.add_parser(
        "evaluate",
        help="run a generated set through a real gateway and measure detection",
    )
    e.add_argument("folder", help="a `vigie synth` output folder")
    e.add_argument("--database-url", help="database to load (default: SQLite in --work)")
    e.add_argument("--policy", default="current-law", help="policy bundle name or folder")
    e.add_argument("--batch", type=int, default=1000, help="claim lines per upload message")
    e.add_argument("--top", type=int, default=100, help="k of the precision at k")
    e.add_argument("--work", help="keep the run's PKI and database here (default: temporary)")
    e.add_argument("--json", help="also write the metrics to this JSON file")
    e.add_argument("--quiet", action="store_true", help="no progress on stderr")
    e.set_defaults(func=_evaluate)
