"""Claim ingestion through the streaming UploadClaims call beside a raw bulk insert of its rows.

Run: ``python -m bench.bench_ingestion [--beneficiaries 3000] [--batch 1000] [--sqlite-only]``.

Data: ``vigie synth`` (seed 7). A real gateway is started per database (``build_gateway``,
mutual TLS on 127.0.0.1, the current-law policy, the journal), and each member's file is
streamed through ``ClaimService.UploadClaims`` in per-line mode, ``--batch`` lines per message,
the AMO first, then each AMC (so AMC lines match against stored AMO lines). The clock covers
the calls only: messages are built before it starts. "Ingestion" is therefore end to end:
TLS, the call pipeline (identity, policy, journal event per chunk committed with the chunk),
validation, second-level pseudonymisation, idempotent insert, matching, scoring, alerts and
their delivery to the notification outbox.

"Bulk insert" then writes the same rows, validated and pseudonymised ahead (not timed), with
SQLAlchemy Core ``executemany`` in chunks of the same size, one transaction per chunk, into the
same ``claim_lines`` table of the same database (under other member ids, after the ingestion,
so the table it grows is the one ingestion filled). Prints a markdown table; never asserts
anything about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa

from gateway import pki
from gateway._proto.vigie.v1 import claims_pb2, claims_pb2_grpc, common_pb2
from gateway.client import claim_line_from_mapping
from gateway.config import Settings
from gateway.domain import parse_claim_line
from gateway.server import Gateway, build_gateway
from gateway.server._policy import EnginePolicyHook
from gateway.store import Database, Member, SqlMemberRegistry, make_engine, migrate
from gateway.store._claims_models import ClaimLineRow

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
Upload = tuple[str, str, list[dict[str, Any]]]  # (member, kind, raw lines)


def synth_uploads(beneficiaries: int, work: Path, seed: int = 7) -> list[Upload]:
    """Every member's raw lines from a ``vigie synth`` run, the AMO first."""
    from gateway.synth import AMO_MEMBER, SynthConfig, generate

    summary = generate(
        SynthConfig(seed=seed, beneficiaries=beneficiaries, shared_key=b"s" * 32), work
    )
    uploads = []
    for member in summary.lines_by_member:  # the AMO first
        with (work / f"claims-{member}.jsonl").open() as f:
            lines = [json.loads(line) for line in f]
        uploads.append((member, "AMO" if member == AMO_MEMBER else "AMC", lines))
    return uploads


@dataclass
class RunningGateway:
    gateway: Gateway
    db: Database
    pki_dir: Path

    def channel(self, member: str) -> grpc.aio.Channel:
        m = self.pki_dir / "members"
        creds = grpc.ssl_channel_credentials(
            (self.pki_dir / "ca.crt").read_bytes(),
            (m / f"{member}.key").read_bytes(),
            (m / f"{member}.crt").read_bytes(),
        )
        return grpc.aio.secure_channel(f"127.0.0.1:{self.gateway.port}", creds)


@asynccontextmanager
async def fresh_database(backend: str, work: Path, name: str) -> AsyncIterator[str]:
    """An empty database URL: a new SQLite file, or a new PostgreSQL schema dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{work / (name + '.db')}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = sa.engine.make_url(PG_URL).set(query={"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _register(db: Database, pki_dir: Path, member: str, kind: str) -> None:
    cert = pki.load_certificate((pki_dir / "members" / f"{member}.crt").read_bytes())
    entry = Member(
        member_id=member,
        display_name=member,
        kind=kind,  # type: ignore[arg-type]
        roles=frozenset({"submitter", "analyst"}),
    )
    db.run_sync(lambda s: SqlMemberRegistry().register_certificate(s, entry, cert))


@asynccontextmanager
async def running_gateway(
    backend: str, work: Path, members: Sequence[tuple[str, str]]
) -> AsyncIterator[RunningGateway]:
    """A real gateway (``vigie serve``'s assembly) on a fresh database, members registered."""
    pki_dir = work / f"pki-{backend}"
    if not pki_dir.exists():
        pki.init_ca(pki_dir)
        for member, kind in members:
            pki.issue_member(pki_dir, member, kind, ["submitter", "analyst"])
    async with fresh_database(backend, work, f"gateway-{uuid.uuid4().hex[:6]}") as url:
        db = Database.from_url(url)
        migrate(db.engine)
        for member, kind in members:
            _register(db, pki_dir, member, kind)
        settings = Settings.local(
            pki_dir,
            work,
            database_url=url,
            environment="test",
            rate_limit_per_s=1e9,
            rate_limit_burst=10**9,
            log_level="warning",
        )
        gw = await build_gateway(
            settings, db=db, policy=EnginePolicyHook.load("current-law"), migrate_schema=False
        )
        await gw.start()
        try:
            yield RunningGateway(gw, db, pki_dir)
        finally:
            await gw.stop(grace=1)


def messages(
    kind: str, lines: Sequence[claims_pb2.ClaimLine], batch: int
) -> list[claims_pb2.UploadClaimsRequest]:
    """One upload's request messages (header on the first), built before timing."""
    side = claims_pb2.CLAIM_SIDE_AMO if kind == "AMO" else claims_pb2.CLAIM_SIDE_AMC
    out = []
    for start in range(0, max(len(lines), 1), batch):
        m = claims_pb2.UploadClaimsRequest(lines=lines[start : start + batch])
        if start == 0:
            m.purpose, m.request_id = common_pb2.PURPOSE_FRAUD_DETECTION, str(uuid.uuid4())
            m.side, m.mode = side, claims_pb2.UPLOAD_MODE_PER_LINE
        out.append(m)
    return out


async def stream(
    env: RunningGateway, member: str, requests: list[claims_pb2.UploadClaimsRequest]
) -> claims_pb2.UploadClaimsResponse:
    """Stream one upload; the final response."""
    async with env.channel(member) as ch:
        stub = claims_pb2_grpc.ClaimServiceStub(ch)  # type: ignore[no-untyped-call]
        responses = [r async for r in stub.UploadClaims(iter(requests))]
    assert responses and responses[-1].final
    return responses[-1]


def proto_lines(uploads: Sequence[Upload]) -> list[tuple[str, str, list[claims_pb2.ClaimLine]]]:
    return [(m, k, [claim_line_from_mapping(raw) for raw in lines]) for m, k, lines in uploads]


@dataclass
class Figures:
    backend: str
    lines: int
    ingest_seconds: float
    bulk_seconds: float
    alerts: int
    outbox: int


def _bulk_rows(
    env: RunningGateway, uploads: Sequence[Upload], today: date
) -> Iterator[dict[str, Any]]:
    rekeyer, now = env.gateway.deps.keys.rekeyer, datetime.now(UTC)
    for member, _, lines in uploads:
        for raw in lines:
            values = parse_claim_line(raw, today=today).model_dump()
            values["beneficiary"] = rekeyer.rekey(values.pop("beneficiary_token"))
            values.update(member_id=f"bulk-{member}", received_at=now, match_state="unmatched")
            yield values


def _bulk_insert(db: Database, rows: list[dict[str, Any]], chunk: int) -> float:
    table = ClaimLineRow.__table__
    start = time.perf_counter()
    for i in range(0, len(rows), chunk):
        with db.engine.begin() as conn:
            conn.execute(sa.insert(table), rows[i : i + chunk])
    return time.perf_counter() - start


def _count(db: Database, sql: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


async def run(backend: str, uploads: list[Upload], batch: int, work: Path) -> Figures:
    members = [(m, k) for m, k, _ in uploads]
    prepared = [(m, messages(k, lines, batch)) for m, k, lines in proto_lines(uploads)]
    n = sum(len(lines) for *_, lines in uploads)
    async with running_gateway(backend, work, members) as env:
        start = time.perf_counter()
        for member, requests in prepared:
            final = await stream(env, member, requests)
            assert final.lines_rejected == 0, final
        seconds = time.perf_counter() - start
        alerts = _count(env.db, "select count(*) from alerts")
        outbox = _count(env.db, "select count(*) from notifications where kind = 'ALERT'")
        rows = list(_bulk_rows(env, uploads, datetime.now(UTC).date()))
        bulk = _bulk_insert(env.db, rows, batch)
    return Figures(backend, n, seconds, bulk, alerts, outbox)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beneficiaries", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1000, help="lines per request message")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        uploads = synth_uploads(args.beneficiaries, work / "synth")
        backends = ["sqlite"] if args.sqlite_only else ["sqlite", "postgresql"]
        results = [asyncio.run(run(b, uploads, args.batch, work)) for b in backends]
    print(
        f"\n## Claim ingestion through UploadClaims vs raw bulk insert (vigie synth, "
        f"{args.beneficiaries} beneficiaries, {args.batch} lines per message)\n"
    )
    print(
        "| database | lines | UploadClaims lines/s | bulk insert lines/s | ingestion / bulk "
        "| alerts | ALERT notifications |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ingest, bulk = r.lines / r.ingest_seconds, r.lines / r.bulk_seconds
        print(
            f"| {r.backend} | {r.lines} | {ingest:,.0f} | {bulk:,.0f} | {ingest / bulk:.2f}x "
            f"| {r.alerts} | {r.outbox} |"
        )


if __name__ == "__main__":
    main()
