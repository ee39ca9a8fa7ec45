"""Policy decision latency per bundle, and suspicion submit/read throughput through the server.

    python -m bench.bench_suspicions [--decisions N] [--calls N] [--concurrency C]

1. Policy: p50/p99 of ``PolicyEngine.decide`` for each shipped bundle over a mix of real
   requests (an AMO submitting, an AMO reading its own suspicion, the insured's AMC reading a
   qualified one, an unrelated AMC refused, an AMC report refused or allowed), beside a trivial
   ``cedarpy.is_authorized`` call on a one-policy set measured in the same run.
2. Server: throughput and p50/p99 of ``CreateSuspicion`` (validation, Cedar, re-keying,
   AES-GCM sealing, idempotency record and journal event in one transaction) and
   ``GetSuspicion`` (object-level decision with relation facts, minimised view, journal) on
   SQLite and PostgreSQL, beside a bare ``grpc.aio`` mTLS echo measured in the same run.

Nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import cedarpy
import grpc
import sqlalchemy as sa

from bench._echo import ECHO_METHOD, start_echo_server
from bench._harness import Result, measure, print_table
from gateway import pki
from gateway._proto.vigie.v1 import common_pb2, suspicions_pb2, suspicions_pb2_grpc
from gateway.config import Settings
from gateway.domain._identifiers import make_rpps, make_token
from gateway.server import build_gateway
from gateway.server._policy import EnginePolicyHook
from gateway.store import Database, Member, SqlMemberRegistry, make_engine, migrate
from policy import BUNDLED, AccessRequest, PolicyEngine, Principal, Resource, bundle_path

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
THREADS = 8
MEMBERS = {"cpam-75": ("AMO", ("submitter", "analyst")), "mut-alpha": ("AMC", ("analyst",))}


# -- 1. policy decisions ----------------------------------------------------------------------
def _requests() -> list[AccessRequest]:
    amo = Principal(member_id="cpam-75", kind="AMO", roles=frozenset({"submitter", "analyst"}))
    amc = Principal(member_id="mut-a", kind="AMC", roles=frozenset({"submitter", "analyst"}))

    def susp(kind: str, status: str, **facts: bool) -> Resource:
        attrs: dict[str, str | int | bool] = {
            "submitter_member": "cpam-75" if kind == "AMO" else "mut-a",
            "submitter_kind": kind,
            "status": status,
            "sector": "optique",
            "estimated_amount_cents": 150_000,
            **facts,
        }
        return Resource(type="suspicion", id="s-1", attributes=attrs)

    def req(p: Principal, action: str, r: Resource) -> AccessRequest:
        return AccessRequest(principal=p, action=action, purpose="control", resource=r)

    return [
        req(amo, "CreateSuspicion", susp("AMO", "submitted", principal_is_submitter=True)),
        req(amo, "GetSuspicion", susp("AMO", "qualified", principal_is_submitter=True)),
        req(amc, "GetSuspicion", susp("AMO", "qualified", principal_covers_beneficiary=True)),
        req(amc, "GetSuspicion", susp("AMO", "qualified")),  # no relation: refused
        req(amc, "CreateSuspicion", susp("AMC", "submitted", principal_is_submitter=True)),
        req(amc, "ListSuspicions", Resource(type="collection", id="suspicion")),
    ]


def _latencies(fn: Callable[[], object], n: int) -> tuple[float, float, float]:
    for _ in range(min(200, n)):
        fn()
    samples: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples) * 1e6, p99 * 1e6, n / sum(samples)


def bench_policy(n: int) -> None:
    trivial = cedarpy.PolicySet.from_str("permit(principal, action, resource);")
    request = {
        "principal": 'Member::"m"',
        "action": 'Action::"GetSuspicion"',
        "resource": 'Suspicion::"s"',
        "context": {},
    }
    entities = json.dumps([])
    rows = [("cedarpy.is_authorized, one-policy set (baseline)", *_latencies(
        lambda: cedarpy.is_authorized(request, trivial, entities), n
    ))]  # fmt: skip
    for name in BUNDLED:
        engine = PolicyEngine.load(bundle_path(name))
        mix = itertools.cycle(_requests())
        rows.append((f"PolicyEngine.decide, {name}", *_latencies(
            lambda e=engine, m=mix: e.decide(next(m)), n
        )))  # fmt: skip
    base = rows[0][3]
    print(f"\n## Policy decision latency ({n} decisions each, one thread)\n")
    print("| case | p50 µs | p99 µs | decisions/s | vs baseline |")
    print("|---|---:|---:|---:|---:|")
    for label, p50, p99, rate in rows:
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {rate:,.0f} | {rate / base:.2f}x |")


# -- 2. through the server --------------------------------------------------------------------
def _creds(d: Path, member: str) -> grpc.ChannelCredentials:
    m = d / "members"
    return grpc.ssl_channel_credentials(
        (d / "ca.crt").read_bytes(),
        (m / f"{member}.key").read_bytes(),
        (m / f"{member}.crt").read_bytes(),
    )


def _suspicion(rng: random.Random) -> suspicions_pb2.Suspicion:
    return suspicions_pb2.Suspicion(
        subject=suspicions_pb2.SuspicionSubject(
            beneficiary_token=make_token(rng), provider_rpps=make_rpps(rng)
        ),
        sector=common_pb2.SECTOR_OPTIQUE,
        fraud_type=common_pb2.FRAUD_TYPE_CLASS_SHIFT,
        facts_summary="Monture classe B facturée en classe A; écart de 70 EUR sur le devis.",
        estimated_amount_cents=7000,
        evidence_refs=["devis-1", "facture-1"],
        case_reference="CPAM75/BENCH",
    )


async def _server_cases(
    label: str, url: str, d: Path, calls: int, concurrency: int
) -> list[Result]:
    db = Database.from_url(url, threads=THREADS)
    migrate(db.engine)
    for member_id, (kind, roles) in MEMBERS.items():
        cert = pki.load_certificate((d / "members" / f"{member_id}.crt").read_bytes())
        member = Member(
            member_id=member_id,
            display_name=member_id,
            kind=kind,
            roles=frozenset(roles),  # type: ignore[arg-type]
        )
        db.run_sync(lambda s, m=member, c=cert: SqlMemberRegistry().register_certificate(s, m, c))
    settings = Settings.local(
        d,
        d.parent,
        database_url=url,
        environment="test",
        rate_limit_per_s=1e9,
        rate_limit_burst=10**9,
    )
    gw = await build_gateway(
        settings, db=db, policy=EnginePolicyHook.load("current-law"), migrate_schema=False
    )
    await gw.start()
    rng = random.Random(7)
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{gw.port}", _creds(d, "cpam-75")) as ch:
            stub = suspicions_pb2_grpc.SuspicionServiceStub(ch)  # type: ignore[no-untyped-call]

            async def submit() -> suspicions_pb2.Suspicion:
                reply: suspicions_pb2.Suspicion = await stub.CreateSuspicion(
                    suspicions_pb2.CreateSuspicionRequest(
                        purpose=common_pb2.PURPOSE_CONTROL,
                        request_id=str(uuid.uuid4()),
                        suspicion=_suspicion(rng),
                    )
                )
                return reply

            created = await measure(
                f"CreateSuspicion, {label}", submit, calls=calls, concurrency=concurrency
            )
            name = (await submit()).name
            get = suspicions_pb2.GetSuspicionRequest(purpose=common_pb2.PURPOSE_CONTROL, name=name)
            read = await measure(
                f"GetSuspicion, {label}",
                lambda: stub.GetSuspicion(get),
                calls=calls,
                concurrency=concurrency,
            )
            return [created, read]
    finally:
        await gw.stop(grace=1)


async def bench_server(calls: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "pki"
        pki.init_ca(d)
        for member_id, (kind, roles) in MEMBERS.items():
            pki.issue_member(d, member_id, kind, list(roles))
        server, port = await start_echo_server(d)
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", _creds(d, "cpam-75")) as ch:
            echo = ch.unary_unary(ECHO_METHOD)
            payload = b"x" * 256
            baseline = await measure(
                "bare grpc.aio mTLS echo",
                lambda: echo(payload),
                calls=calls,
                concurrency=concurrency,
            )
        await server.stop(None)
        results = await _server_cases("SQLite", f"sqlite:///{tmp}/bench.db", d, calls, concurrency)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(PG_URL)
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except Exception as e:
            print(f"(PostgreSQL cases skipped: {type(e).__name__})")
        else:
            try:
                url = f"{PG_URL}?options=-csearch_path%3D{schema}"
                results += await _server_cases("PostgreSQL", url, d, calls, concurrency)
            finally:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        print_table(
            f"Suspicions through the full server vs bare echo ({calls} calls, "
            f"{concurrency} concurrent)",
            baseline,
            results,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    bench_policy(args.decisions)
    asyncio.run(bench_server(args.calls, args.concurrency))


if __name__ == "__main__":
    main()
