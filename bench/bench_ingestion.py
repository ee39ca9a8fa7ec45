"""Claim ingestion rate beside the raw bulk-insert rate of the same rows, same database, same run.

Run: ``python -m bench.bench_ingestion [--beneficiaries 3000] [--chunk 1000] [--sqlite-only]``.

Data: ``vigie synth`` (``gateway.synth``) when present, else a small built-in generator; the
AMO file is uploaded first, then each AMC's, so the AMC uploads match against stored AMO
lines. "Ingestion" is :func:`gateway.domain.ingestion.ingest_batch` end to end below gRPC:
validation, second-level pseudonymisation, idempotent insert, matching, scoring and alerts.
"Bulk insert" writes the same already-validated, already-pseudonymised rows with SQLAlchemy
Core ``executemany`` in chunks of the same size, one transaction per chunk, into a fresh
database of the same kind. Prints a markdown table; never asserts anything about timing.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gateway.crypto import KeyRing, Rekeyer
from gateway.domain import parse_claim_line
from gateway.domain.ingestion import check_claim, ingest_batch
from gateway.ids import MemberId
from gateway.store import Database, make_engine, migrate
from gateway.store._claims import SqlClaimStore
from gateway.store._claims_models import ClaimLineRow

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REKEYER = Rekeyer(KeyRing({"bench": b"b" * 32}, current="bench"))
Upload = tuple[str, list[dict[str, Any]]]  # (member, raw lines)


def _synth_uploads(beneficiaries: int, work: Path) -> tuple[list[Upload], str]:
    try:
        from gateway.synth import SynthConfig, generate
    except ImportError:
        return _builtin_uploads(beneficiaries * 12), "built-in generator"
    summary = generate(SynthConfig(seed=7, beneficiaries=beneficiaries, shared_key=b"s" * 32), work)
    uploads = []
    for member in summary.lines_by_member:  # the AMO first
        with (work / f"claims-{member}.jsonl").open() as f:
            uploads.append((member, [json.loads(line) for line in f]))
    return uploads, f"vigie synth, {beneficiaries} beneficiaries"


def _builtin_uploads(n: int) -> list[Upload]:
    from gateway.domain._identifiers import make_am_number, make_rpps, make_token

    rng = random.Random(7)
    tokens = [make_token(rng) for _ in range(max(1, n // 6))]
    sites = [(make_rpps(rng), make_am_number(rng)) for _ in range(50)]
    amo, amc = [], []
    for i in range(n // 2):
        rpps, am = rng.choice(sites)
        care = date(2024, 1, 1) + timedelta(days=rng.randrange(700))
        price = rng.randrange(3000, 30000)
        line = {
            "member_reference": f"B{i}", "side": "AMO", "sector": "optique",
            "beneficiary_token": rng.choice(tokens), "birth_year": rng.randint(1940, 2015),
            "provider_rpps": rpps, "provider_am_number": am, "prescriber_rpps": make_rpps(rng),
            "prescriber_specialty": "ophtalmologie", "care_date": care.isoformat(),
            "prescription_date": (care - timedelta(days=30)).isoformat(), "act_code": "2203240",
            "grouping_code": "VERRE_SIMPLE", "product_class": "B",
            "laterality": rng.choice(("left", "right")), "quantity": 1,
            "unit_price_cents": price, "amount_billed_cents": price, "amo_base_cents": 5,
            "amo_paid_cents": 3, "amo_claim_number": f"A{i}",
        }  # fmt: skip
        amo.append(line)
        amc.append({**line, "side": "AMC", "amo_base_cents": 0, "amo_paid_cents": 0,
                    "amo_claim_number": "", "amc_paid_cents": price - 3,
                    "amc_reference": f"D{i}"})  # fmt: skip
    return [("cpam-75", amo), ("mut-alpha", amc)]


@dataclass
class Figures:
    backend: str
    lines: int
    ingest_seconds: float
    bulk_seconds: float
    alerts: int
    matched: int
    check_ms: tuple[float, float]  # p50, p99 of check_claim on the loaded database


def _check_latency(
    db: Database, uploads: list[Upload], today: date, n: int = 2000
) -> tuple[float, float]:
    """Pre-payment checks of AMC lines against the loaded history (warm caches), sequential."""
    store = SqlClaimStore(db)
    member, lines = uploads[-1]
    sample = [dict(raw, member_reference=f"Q{i}") for i, raw in enumerate(lines[:n])]
    for raw in sample[:50]:  # warm-up: provider statistics cached once per TTL
        check_claim(raw, member=MemberId(member), member_kind="AMC", store=store,
                    rekeyer=REKEYER, today=today)  # fmt: skip
    latencies = []
    for raw in sample:
        start = time.perf_counter()
        check_claim(raw, member=MemberId(member), member_kind="AMC", store=store,
                    rekeyer=REKEYER, today=today)  # fmt: skip
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    return statistics.median(latencies) * 1e3, latencies[int(len(latencies) * 0.99)] * 1e3


@contextmanager
def _fresh_database(backend: str, work: Path, name: str) -> Iterator[Database]:
    """A migrated empty database: a new SQLite file, or a new PostgreSQL schema dropped after."""
    if backend == "sqlite":
        db = Database.from_url(f"sqlite:///{work / (name + '.db')}")
        migrate(db.engine)
        try:
            yield db
        finally:
            db.close()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(PG_URL).set(query={"options": f"-csearch_path={schema}"})
    db = Database.from_url(url.render_as_string(hide_password=False))
    try:
        migrate(db.engine)
        yield db
    finally:
        db.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _prepared_rows(uploads: list[Upload], today: date) -> list[dict[str, Any]]:
    """The rows ingestion stores, validated and pseudonymised ahead (not timed)."""
    now = datetime.now(UTC)
    rows = []
    for member, lines in uploads:
        for raw in lines:
            line = parse_claim_line(raw, today=today)
            values = line.model_dump()
            values["beneficiary"] = REKEYER.rekey(values.pop("beneficiary_token"))
            values.update(member_id=member, received_at=now, match_state="unmatched")
            rows.append(values)
    return rows


def _bulk_insert(db: Database, rows: list[dict[str, Any]], chunk: int) -> float:
    table = ClaimLineRow.__table__
    start = time.perf_counter()
    for i in range(0, len(rows), chunk):
        with db.engine.begin() as conn:
            conn.execute(sa.insert(table), rows[i : i + chunk])
    return time.perf_counter() - start


def _ingest(db: Database, uploads: list[Upload], chunk: int, today: date) -> tuple[float, int, int]:
    store = SqlClaimStore(db)
    alerts = matched = 0
    start = time.perf_counter()
    for member, lines in uploads:
        report = ingest_batch(
            lines, member=MemberId(member), member_kind="AMO" if member.startswith("cpam")
            else "AMC", mode="per_line", store=store, rekeyer=REKEYER, today=today,
            chunk_size=chunk,
        )  # fmt: skip
        alerts += report.alerts.raised
        matched += report.matched
    return time.perf_counter() - start, alerts, matched


def run(backend: str, uploads: list[Upload], chunk: int, work: Path, today: date) -> Figures:
    rows = _prepared_rows(uploads, today)
    with _fresh_database(backend, work, "ingest") as db:
        seconds, alerts, matched = _ingest(db, uploads, chunk, today)
        check = _check_latency(db, uploads, today)
    with _fresh_database(backend, work, "bulk") as db:
        bulk = _bulk_insert(db, rows, chunk)
    return Figures(backend, len(rows), seconds, bulk, alerts, matched, check)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beneficiaries", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    today = date.today()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        uploads, source = _synth_uploads(args.beneficiaries, work / "synth")
        backends = ["sqlite"] if args.sqlite_only else ["sqlite", "postgresql"]
        results = [run(b, uploads, args.chunk, work, today) for b in backends]
    print(f"\n## Claim ingestion vs raw bulk insert ({source}, chunks of {args.chunk})\n")
    print("| database | lines | ingestion lines/s | bulk insert lines/s | ingestion / bulk "
          "| matched | alerts raised |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ingest, bulk = r.lines / r.ingest_seconds, r.lines / r.bulk_seconds
        print(f"| {r.backend} | {r.lines} | {ingest:,.0f} | {bulk:,.0f} | {ingest / bulk:.2f}x "
              f"| {r.matched} | {r.alerts} |")  # fmt: skip
    print("\n## Pre-payment check, in process (no gRPC), one caller, on the loaded database\n")
    print("| database | p50 ms | p99 ms |")
    print("|---|---:|---:|")
    for r in results:
        print(f"| {r.backend} | {r.check_ms[0]:.2f} | {r.check_ms[1]:.2f} |")


if __name__ == "__main__":
    main()
