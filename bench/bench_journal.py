"""The journal: events journaled through the server, offline verification, proofs, sequencer.

    python -m bench.bench_journal [--events N] [--bundle-events M] [--proofs P]
                                  [--integrate-events E] [--calls C] [--concurrency K]
                                  [--no-postgres]

Prints, each beside a baseline measured in the same run:

0. events journaled per second through the full server (mTLS, identity, purpose, Cedar,
   one journal event committed before each answer, the sequencer integrating in the
   background every second) beside a bare ``grpc.aio`` mTLS echo; how long the sequencer
   takes to integrate the last event after the load stops; and the latency of a checkpoint
   and an inclusion proof fetched over gRPC by a compliance officer;
1. time to verify N events offline (default 100,000; pass ``--events 1000000`` for the full
   million, ~2-3 minutes): recomputing every leaf from the events (RFC 8785 encoding +
   SHA-256) and the tree root, then the checkpoint signature; and ``verify_bundle`` on an
   export bundle of M events (parse, re-encode, one inclusion proof and one commitment per
   event). Figures for one million are **extrapolated** linearly when N or M is smaller, and
   labelled so. Baseline: the same root from the same leaf hashes in memory.
2. proof sizes in bytes (inclusion and consistency, and per event in a JSON bundle);
3. proof latency from the SQL node store (SQLite, and PostgreSQL when reachable), per call
   including its transaction, beside the same proofs from an in-memory node store;
4. sequencer integration rate (events/s, including signing one checkpoint per batch).

Nothing here fails on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench._echo import ECHO_METHOD, start_echo_server
from bench._harness import Result, measure, print_table
from gateway import pki
from gateway._proto.vigie.v1 import (
    common_pb2,
    journal_pb2,
    journal_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
)
from gateway.config import Settings
from gateway.journal import (
    ExportEvent,
    InMemoryNodeStore,
    JournalEvent,
    MerkleTree,
    PersonalFields,
    build_bundle,
    commit_personal,
    event_time,
    leaf_entry,
    leaf_hash,
    sign_checkpoint,
    verify_checkpoint,
    vkey_for,
)
from gateway.journal._sql import SqlNodeStore, integrated_size
from gateway.journal.queries import consistency_proof, inclusion_proof
from gateway.journal.sequencer import integrate
from gateway.journal.verify import verify_bundle
from gateway.server import build_gateway
from gateway.server._policy import EnginePolicyHook
from gateway.store import (
    AccessEvent,
    Database,
    Member,
    SqlAuditStore,
    SqlMemberRegistry,
    make_engine,
    migrate,
)

PG_URL = os.environ.get("VIGIE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ORIGIN = "vigie.bench/journal"
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench journal").digest())
VKEY = vkey_for(ORIGIN, KEY.public_key())
MILLION = 1_000_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(k: int) -> tuple[JournalEvent, str, PersonalFields, bytes]:
    event = JournalEvent(
        seq=k + 1,
        event_id=str(uuid.UUID(int=k + 1)),
        time=event_time(T0 + timedelta(milliseconds=k)),
        member_id=("cpam-75", "mut-alpha", "mut-beta")[k % 3],
        principal=f"agent-{k % 50}",
        cert_fingerprint=hashlib.sha256(b"%d" % (k % 50)).hexdigest(),
        method=("CheckClaim", "GetSuspicion", "ListAlerts")[k % 3],
        purpose=("fraud_detection", "control", "audit")[k % 3],
        decision="deny" if k % 10 == 9 else "allow",
        rule_ids=("cl-amo-read-own-suspicion",),
        bundle_hash="ab" * 32,
        request_id=f"req-{k}",
        outcome="OK",
        record_count=k % 4,
    )
    personal = PersonalFields(
        record_refs=(f"suspicion/{k}",), subject_pseudonyms=(f"k1:{k % 9973:08d}",)
    )
    salt = hashlib.sha256(b"salt %d" % k).digest()
    return event, commit_personal(personal, salt), personal, salt


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.1f} ms"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def offline_verification(n: int, m: int) -> tuple[MerkleTree, list[bytes], list[Any]]:
    print(f"\n## 1. Offline verification ({n:,} events generated; bundle of {m:,})\n")
    gen_s, events = _timed(lambda: [_event(k) for k in range(n)])
    print(f"(generating the synthetic events took {_fmt_s(gen_s)}, not counted below)\n")
    # The generator's objects are the bench's, not the verifier's: keep the cyclic GC from
    # re-scanning them during the timings (a verifier process holds only its bundle).
    gc.collect()
    gc.freeze()

    # Full recomputation: every leaf from its event, the root, the signature.
    tree = MerkleTree(InMemoryNodeStore())
    leaves_s, leaves = _timed(lambda: [leaf_hash(leaf_entry(e, c)) for e, c, _, _ in events])
    root_s, _ = _timed(lambda: tree.append_many(leaves))
    note = sign_checkpoint(ORIGIN, tree.size, tree.root(), KEY)
    sig_s, head = _timed(lambda: verify_checkpoint(note, VKEY))
    assert head.root_hash == tree.root()
    full = leaves_s + root_s + sig_s

    # Baseline: the same root from the same leaf hashes, in memory, bare hashlib.
    def bare_root() -> bytes:
        level = list(leaves)
        stack: list[tuple[int, bytes]] = []
        for leaf in level:
            height, value = 0, leaf
            while stack and stack[-1][0] == height:
                value = hashlib.sha256(b"\x01" + stack.pop()[1] + value).digest()
                height += 1
            stack.append((height, value))
        value = stack.pop()[1]
        while stack:
            value = hashlib.sha256(b"\x01" + stack.pop()[1] + value).digest()
        return value

    base_s, base_root = _timed(bare_root)
    assert base_root == tree.root()

    # Bundle verification: the officer's path (parse JSON, re-encode, inclusion, commitment).
    items = [ExportEvent(k, e, c, p, s) for k, (e, c, p, s) in enumerate(events[:m])]
    bundle = build_bundle(VKEY, note, tree, items, complete_range=(0, m) if m == n else None)
    text = json.dumps(bundle)
    bundle_s, report = _timed(lambda: verify_bundle(json.loads(text), VKEY))
    assert report.events_verified == m

    scale_n, scale_m = MILLION / n, MILLION / m
    tag_n = "measured" if n == MILLION else f"extrapolated x{scale_n:g}"
    tag_m = "measured" if m == MILLION else f"extrapolated x{scale_m:g}"
    print("| case | events | time | per event | for 1,000,000 events | vs baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| baseline: root of the leaf hashes in memory (hashlib) | {n:,} | {_fmt_s(base_s)} "
        f"| {base_s / n * 1e6:.2f} µs | {_fmt_s(base_s * scale_n)} ({tag_n}) | 1.0x |"
    )
    print(
        f"| full recomputation: RFC 8785 leaves + root + signature | {n:,} | {_fmt_s(full)} "
        f"| {full / n * 1e6:.2f} µs | {_fmt_s(full * scale_n)} ({tag_n}) "
        f"| {full / base_s:.1f}x |"
    )
    print(
        f"| `verify_bundle` (JSON, per-event inclusion proof + commitment) | {m:,} "
        f"| {_fmt_s(bundle_s)} | {bundle_s / m * 1e6:.2f} µs "
        f"| {_fmt_s(bundle_s * scale_m)} ({tag_m}) | {bundle_s / m / (base_s / n):.1f}x |"
    )
    print(
        f"\nsplit of the full recomputation: leaves {_fmt_s(leaves_s)}, tree {_fmt_s(root_s)}, "
        f"signature {_fmt_s(sig_s)}"
    )

    print("\n## 2. Proof sizes\n")
    rng = random.Random(7)
    sample = [rng.randrange(n) for _ in range(200)]
    incl = [len(tree.inclusion_proof(i, n)) * 32 for i in sample]
    cons = [len(tree.consistency_proof(max(1, i), n)) * 32 for i in sample]
    per_event = len(text.encode()) / m
    print("| proof | tree size | bytes (mean) | bytes (max) |")
    print("|---|---:|---:|---:|")
    print(f"| inclusion | {n:,} | {statistics.mean(incl):.0f} | {max(incl)} |")
    print(f"| consistency (random old size) | {n:,} | {statistics.mean(cons):.0f} | {max(cons)} |")
    for size in (MILLION, 10**9):
        depth = (size - 1).bit_length()
        print(f"| inclusion, worst case (computed) | {size:,} | - | {depth * 32} |")
    print(
        f"| one event in a JSON bundle (event, proof, personal fields) | {n:,} | "
        f"{per_event:.0f} | - |"
    )
    return tree, leaves, events


def _databases(use_pg: bool) -> Iterator[tuple[str, str]]:
    """Fresh databases (name, url): SQLite, and PostgreSQL when reachable; dropped after."""
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        schema, admin = f"bench_{uuid.uuid4().hex[:8]}", None
        if use_pg:
            try:
                admin = make_engine(PG_URL)
                with admin.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                cases.append(("PostgreSQL", f"{PG_URL}?options=-csearch_path%3D{schema}"))
            except Exception as e:
                print(f"(PostgreSQL cases skipped: {type(e).__name__})")
                admin = None
        try:
            yield from cases
        finally:
            if admin is not None:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


def sql_proofs(tree: MerkleTree, leaves: list[bytes], proofs: int, use_pg: bool) -> None:
    n = tree.size
    print(
        f"\n## 3. Proof latency from the SQL node store (tree of {n:,} leaves, {proofs} proofs)\n"
    )
    rng = random.Random(11)
    indices = [rng.randrange(n) for _ in range(proofs)]
    olds = [rng.randrange(1, n) for _ in range(proofs)]

    def lat(call: Callable[[int], object], args: list[int]) -> list[float]:
        out = []
        for a in args:
            start = time.perf_counter()
            call(a)
            out.append((time.perf_counter() - start) * 1e3)
        return out

    rows = []
    mem_incl = lat(lambda i: tree.inclusion_proof(i, n), indices)
    mem_cons = lat(lambda o: tree.consistency_proof(o, n), olds)
    rows.append(("in-memory node store (baseline)", "-", mem_incl, mem_cons))
    for name, url in _databases(use_pg):
        db = Database.from_url(url, threads=2)
        migrate(db.engine)

        def load(start: int, stop: int, db: Database = db) -> None:
            def put(s: sa.orm.Session) -> None:
                MerkleTree(SqlNodeStore(s), start).append_many(leaves[start:stop])
                s.execute(sa.text("UPDATE journal_state SET integrated_size = :n"), {"n": stop})

            db.run_sync(put)

        load_s, _ = _timed(lambda: [load(a, min(a + 50_000, n)) for a in range(0, n, 50_000)])
        for i in indices[:20]:
            assert db.run_sync(lambda s, i=i: inclusion_proof(s, i, n)) == tree.inclusion_proof(
                i, n
            )
        incl = lat(lambda i, db=db: db.run_sync(lambda s: inclusion_proof(s, i, n)), indices)
        cons = lat(lambda o, db=db: db.run_sync(lambda s: consistency_proof(s, o, n)), olds)
        rows.append(
            (
                f"{name} (`db.run_sync`, one transaction per proof)",
                f"{2 * n / load_s:,.0f} nodes/s",
                incl,
                cons,
            )
        )
        db.close()
    print("| store | node load rate | inclusion p50 ms | p99 ms | consistency p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rate, incl, cons in rows:
        print(
            f"| {name} | {rate} | {statistics.median(incl):.3f} | {_pct(incl, 0.99):.3f} "
            f"| {statistics.median(cons):.3f} | {_pct(cons, 0.99):.3f} |"
        )


def sequencer_rate(count: int, use_pg: bool) -> None:
    print(f"\n## 4. Sequencer integration rate ({count:,} events waiting)\n")
    print(
        "| database | write events/s (SqlAuditStore, 500 per tx) | integrate events/s "
        "| checkpoints signed |"
    )
    print("|---|---:|---:|---:|")
    store = SqlAuditStore()
    for name, url in _databases(use_pg):
        db = Database.from_url(url, threads=2)
        migrate(db.engine)
        when = datetime.now(UTC) - timedelta(minutes=1)

        def write(start: int, db: Database = db, when: datetime = when) -> None:
            batch = [
                AccessEvent(
                    time=when,
                    member_id="mut-alpha",
                    principal="agent",
                    method="X",
                    purpose="audit",
                    decision="allow",
                    subject_pseudonyms=(f"k1:{k}",),
                )
                for k in range(start, min(start + 500, count))
            ]
            db.run_sync(lambda s: store.append_many(s, batch))

        write_s, _ = _timed(lambda: [write(a) for a in range(0, count, 500)])
        rounds = 0

        def catch_up(db: Database = db) -> None:
            nonlocal rounds
            while integrate(db, KEY, ORIGIN, grace=timedelta(0)) is not None:
                rounds += 1

        integrate_s, _ = _timed(catch_up)
        print(f"| {name} | {count / write_s:,.0f} | {count / integrate_s:,.0f} | {rounds} |")
        db.close()


# -- 0. through the full server -------------------------------------------------------------------
_SERVER_MEMBERS = {"mut-alpha": ("AMC", ("analyst",)), "cpam-dpo": ("AMO", ("compliance_officer",))}
_INTERVAL_S = 1.0


def _creds(d: Path, member: str) -> grpc.ChannelCredentials:
    m = d / "members"
    return grpc.ssl_channel_credentials(
        (d / "ca.crt").read_bytes(),
        (m / f"{member}.key").read_bytes(),
        (m / f"{member}.crt").read_bytes(),
    )


def _register(db: Database, d: Path) -> None:
    for member_id, (kind, roles) in _SERVER_MEMBERS.items():
        cert = pki.load_certificate((d / "members" / f"{member_id}.crt").read_bytes())
        member = Member(
            member_id=member_id,
            display_name=member_id,
            kind=kind,  # type: ignore[arg-type]
            roles=frozenset(roles),
        )
        db.run_sync(lambda s, m=member, c=cert: SqlMemberRegistry().register_certificate(s, m, c))


async def _server_case(
    name: str, url: str, d: Path, calls: int, concurrency: int
) -> tuple[Result, float, Result, Result, int]:
    db = Database.from_url(url, threads=8)
    migrate(db.engine)
    _register(db, d)
    settings = Settings.local(
        d,
        d.parent,
        database_url=url,
        environment="test",
        rate_limit_per_s=1e9,
        rate_limit_burst=10**9,
        checkpoint_interval_s=_INTERVAL_S,
    )
    gw = await build_gateway(
        settings, db=db, policy=EnginePolicyHook.load("current-law"), migrate_schema=False
    )
    await gw.start()
    target = f"127.0.0.1:{gw.port}"
    try:
        async with (
            grpc.aio.secure_channel(target, _creds(d, "mut-alpha")) as ch,
            grpc.aio.secure_channel(target, _creds(d, "cpam-dpo")) as officer,
        ):
            members = members_pb2_grpc.MemberServiceStub(ch)  # type: ignore[no-untyped-call]
            request = members_pb2.GetSelfRequest(purpose=common_pb2.PURPOSE_OPERATIONS)
            load = await measure(
                f"GetSelf (1 event each), {name}",
                lambda: members.GetSelf(request),
                calls=calls,
                concurrency=concurrency,
            )
            # How long until the sequencer has integrated the last event of the load.
            stop = time.perf_counter()
            written = db.run_sync(
                lambda s: s.scalar(sa.text("SELECT COUNT(*) FROM journal_events"))
            )
            while db.run_sync(integrated_size) < written:  # polling the sequencer's progress
                if time.perf_counter() - stop > 120:
                    raise RuntimeError("the sequencer did not catch up within 2 minutes")
                await asyncio.sleep(0.01)
            catch_up = time.perf_counter() - stop
            journal = journal_pb2_grpc.JournalServiceStub(officer)  # type: ignore[no-untyped-call]
            audit = common_pb2.PURPOSE_AUDIT
            head = await journal.GetCheckpoint(journal_pb2.GetCheckpointRequest(purpose=audit))
            rng = random.Random(3)

            def proof() -> Any:
                return journal.GetInclusionProof(
                    journal_pb2.GetInclusionProofRequest(
                        purpose=audit, leaf_index=rng.randrange(head.tree_size),
                        tree_size=head.tree_size,
                    )
                )  # fmt: skip

            checkpoint = await measure(
                f"GetCheckpoint over gRPC, {name}",
                lambda: journal.GetCheckpoint(journal_pb2.GetCheckpointRequest(purpose=audit)),
                calls=max(100, calls // 6),
                concurrency=4,
            )
            proofs = await measure(
                f"GetInclusionProof over gRPC (tree of {head.tree_size:,}), {name}",
                proof,
                calls=max(100, calls // 6),
                concurrency=4,
            )
            return load, catch_up, checkpoint, proofs, int(written)
    finally:
        await gw.stop(grace=1)


async def through_the_server(calls: int, concurrency: int, use_pg: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "pki"
        pki.init_ca(d)
        for member_id, (kind, roles) in _SERVER_MEMBERS.items():
            pki.issue_member(d, member_id, kind, list(roles))
        server, port = await start_echo_server(d)
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", _creds(d, "mut-alpha")) as ch:
            echo = ch.unary_unary(ECHO_METHOD)
            baseline = await measure(
                "bare grpc.aio mTLS echo (baseline)",
                lambda: echo(b"x" * 32),
                calls=calls,
                concurrency=concurrency,
            )
        await server.stop(None)
        cases = []
        for name, url in _databases(use_pg):
            cases.append(await _server_case(name, url, d, calls, concurrency))
    print_table(
        f"0. Events journaled per second through the full server ({calls} calls, "
        f"{concurrency} concurrent; sequencer every {_INTERVAL_S:g} s)",
        baseline,
        [c[0] for c in cases],
    )
    print("\n| database | events journaled | integrated by the sequencer, after the load |")
    print("|---|---:|---:|")
    for c in cases:
        print(f"| {c[0].name.rsplit(', ', 1)[-1]} | {c[4]:,} | {_fmt_s(c[1])} |")
    print_table(
        "0b. A compliance officer's checkpoint and proof calls (each also journaled)",
        baseline,
        [r for c in cases for r in (c[2], c[3])],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events verified offline")
    parser.add_argument("--bundle-events", type=int, default=10_000, help="events per bundle")
    parser.add_argument("--proofs", type=int, default=1000, help="proofs timed per store")
    parser.add_argument("--integrate-events", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2000, help="calls through the server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    asyncio.run(through_the_server(args.calls, args.concurrency, not args.no_postgres))
    n = max(2, args.events)
    m = max(1, min(args.bundle_events, n))
    tree, leaves, _ = offline_verification(n, m)
    sql_proofs(tree, leaves, args.proofs, not args.no_postgres)
    sequencer_rate(args.integrate_events, not args.no_postgres)


if __name__ == "__main__":
    main()
