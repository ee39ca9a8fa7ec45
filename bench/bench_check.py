"""Real-time pre-payment check (``ClaimService.CheckClaim``) beside the bare mTLS echo baseline.

Run: ``python -m bench.bench_check [--beneficiaries 2000] [--calls 2000] [--concurrency 8]
[--sqlite-only]``.

A real gateway per database (``build_gateway``: mTLS, identity, purpose, Cedar policy, journal
event committed before the answer) holds the history of a ``vigie synth`` run streamed through
``UploadClaims`` (not timed) minus one AMC line in ten, held out. The held-out lines are then
checked before payment by their own AMC, round robin, with ``--concurrency`` callers ("moderate
load"): each check validates the line, re-keys the token, reads the beneficiary's history and
the provider statistics, scores, minimises and journals. The baseline is a bare ``grpc.aio``
mTLS echo server measured in the same run with the same callers. Prints a markdown table;
never asserts anything about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
from pathlib import Path

import grpc

from bench._echo import ECHO_METHOD, start_echo_server
from bench._harness import Result, measure, print_table
from bench.bench_ingestion import (
    messages,
    proto_lines,
    running_gateway,
    stream,
    synth_uploads,
)
from gateway._proto.vigie.v1 import claims_pb2, claims_pb2_grpc, common_pb2

HOLD_OUT = 10  # one AMC line in ten is checked, not uploaded


async def _echo_baseline(pki_dir: Path, member: str, calls: int, concurrency: int) -> Result:
    server, port = await start_echo_server(pki_dir)
    m = pki_dir / "members"
    creds = grpc.ssl_channel_credentials(
        (pki_dir / "ca.crt").read_bytes(),
        (m / f"{member}.key").read_bytes(),
        (m / f"{member}.crt").read_bytes(),
    )
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as ch:
            echo = ch.unary_unary(ECHO_METHOD)
            payload = claims_pb2.CheckClaimRequest().SerializeToString() or b"x" * 400
            return await measure(
                "bare grpc.aio mTLS echo", lambda: echo(payload), calls=calls,
                concurrency=concurrency,
            )  # fmt: skip
    finally:
        await server.stop(None)


async def _case(
    backend: str, work: Path, beneficiaries: int, calls: int, concurrency: int
) -> tuple[Result, Path, str]:
    uploads = proto_lines(synth_uploads(beneficiaries, work / f"synth-{backend}"))
    held: list[tuple[str, claims_pb2.ClaimLine]] = []
    kept = []
    for member, kind, lines in uploads:
        if kind == "AMC":
            held += [(member, line) for i, line in enumerate(lines) if i % HOLD_OUT == 0]
            lines = [line for i, line in enumerate(lines) if i % HOLD_OUT]
        kept.append((member, kind, lines))
    members = [(m, k) for m, k, _ in uploads]
    async with running_gateway(backend, work, members) as env:
        for member, kind, lines in kept:  # the shared history (not timed)
            await stream(env, member, messages(kind, lines, 1000))
        channels = {m: env.channel(m) for m, k in members if k == "AMC"}
        stubs = {m: claims_pb2_grpc.ClaimServiceStub(ch) for m, ch in channels.items()}  # type: ignore[no-untyped-call]
        requests = itertools.cycle(
            [
                (stubs[m], claims_pb2.CheckClaimRequest(
                    purpose=common_pb2.PURPOSE_FRAUD_DETECTION, claim_line=line))
                for m, line in held
            ]
        )  # fmt: skip

        async def one() -> object:
            stub, request = next(requests)
            return await stub.CheckClaim(request)

        try:
            result = await measure(
                f"CheckClaim, full pipeline, {backend} ({len(held)} distinct lines)",
                one, calls=calls, concurrency=concurrency, warmup=100,
            )  # fmt: skip
        finally:
            for ch in channels.values():
                await ch.close()
        return result, env.pki_dir, next(m for m, k in members if k == "AMC")


async def main(beneficiaries: int, calls: int, concurrency: int, sqlite_only: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = []
        pki_dir, member = Path(), ""
        for backend in ["sqlite"] if sqlite_only else ["sqlite", "postgresql"]:
            result, pki_dir, member = await _case(backend, work, beneficiaries, calls, concurrency)
            results.append(result)
        baseline = await _echo_baseline(pki_dir, member, calls, concurrency)
    print_table(
        f"Pre-payment check vs bare echo ({calls} calls, {concurrency} concurrent callers, "
        f"history of {beneficiaries} synthetic beneficiaries)",
        baseline,
        results,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beneficiaries", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.beneficiaries, args.calls, args.concurrency, args.sqlite_only))
