"""A trivial authenticated call through the whole pipeline beside a bare mTLS echo.

    python -m bench.bench_gateway [--calls N] [--concurrency C]

Prints throughput and p50/p99 latency of ``MemberService.GetSelf`` (mTLS, identity, purpose,
Cedar policy, journal write committed before the answer) on SQLite and on PostgreSQL, next to a
bare ``grpc.aio`` mTLS echo server measured in the same run, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

import grpc
import sqlalchemy as sa

from bench._echo import ECHO_METHOD, start_echo_server
from bench._harness import Result, measure, print_table
from gateway import pki
from gateway._proto.vigie.v1 import common_pb2, members_pb2, members_pb2_grpc
from gateway.config import Settings
from gateway.server import build_gateway
from gateway.server._policy import EnginePolicyHook
from gateway.store import Database, Member, SqlMemberRegistry, make_engine, migrate

THREADS = int(__import__("os").environ.get("BENCH_THREADS", "8"))
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _creds(d: Path, member: str) -> grpc.ChannelCredentials:
    m = d / "members"
    return grpc.ssl_channel_credentials(
        (d / "ca.crt").read_bytes(),
        (m / f"{member}.key").read_bytes(),
        (m / f"{member}.crt").read_bytes(),
    )


async def _gateway_case(name: str, url: str, d: Path, calls: int, concurrency: int) -> Result:
    db = Database.from_url(url, threads=THREADS)
    migrate(db.engine)
    cert = pki.load_certificate((d / "members" / "mut-alpha.crt").read_bytes())
    member = Member(
        member_id="mut-alpha", display_name="Alpha", kind="AMC", roles=frozenset({"analyst"})
    )
    db.run_sync(lambda s: SqlMemberRegistry().register_certificate(s, member, cert))
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
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{gw.port}", _creds(d, "mut-alpha")) as ch:
            stub = members_pb2_grpc.MemberServiceStub(ch)
            req = members_pb2.GetSelfRequest(purpose=common_pb2.PURPOSE_OPERATIONS)
            return await measure(
                name, lambda: stub.GetSelf(req), calls=calls, concurrency=concurrency
            )
    finally:
        await gw.stop(grace=1)


async def main(calls: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "pki"
        pki.init_ca(d)
        pki.issue_member(d, "mut-alpha", "AMC", ["analyst"])
        server, port = await start_echo_server(d)
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", _creds(d, "mut-alpha")) as ch:
            echo = ch.unary_unary(ECHO_METHOD)
            payload = b"x" * 32
            baseline = await measure(
                "bare grpc.aio mTLS echo",
                lambda: echo(payload),
                calls=calls,
                concurrency=concurrency,
            )
        await server.stop(None)
        results = [
            await _gateway_case(
                "GetSelf, full pipeline, SQLite", f"sqlite:///{tmp}/bench.db", d, calls, concurrency
            )
        ]
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(PG_URL)
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except Exception as e:
            print(f"(PostgreSQL case skipped: {type(e).__name__})")
        else:
            try:
                url = f"{PG_URL}?options=-csearch_path%3D{schema}"
                results.append(
                    await _gateway_case(
                        "GetSelf, full pipeline, PostgreSQL", url, d, calls, concurrency
                    )
                )
            finally:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        print_table(
            f"Authenticated call vs bare echo ({calls} calls, {concurrency} concurrent)",
            baseline,
            results,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.concurrency))
