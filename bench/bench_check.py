"""Real-time pre-payment check (``ClaimService.CheckClaim``) beside the bare mTLS echo baseline.

Run: ``python -m bench.bench_check [--beneficiaries 2000] [--calls 2000] [--concurrency 8]
[--rate 100] [--sqlite-only]``.

A real gateway per database (``build_gateway``: mTLS, identity, purpose, Cedar policy, journal
event committed before the answer) holds the history of a ``vigie synth`` run streamed through
``UploadClaims`` (not timed) minus one AMC line in ten, held out. The held-out lines are then
checked before payment by their own AMC, round robin: each check validates the line, re-keys
the token, reads the beneficiary's history and the provider statistics, scores, minimises and
journals. Two loads:

1. closed loop, ``--concurrency`` callers each sending its next check as soon as the last is
   answered: the server's capacity (throughput), with latencies at saturation;
2. open loop, ``--rate`` checks per second arriving on a fixed schedule (a "moderate load"
   well below capacity, as a claims platform sends them); each latency is counted from the
   call's scheduled time, so a server falling behind is charged for the wait.

The baseline is a bare ``grpc.aio`` mTLS echo server measured in the same run under the same
loads. Prints markdown tables; never asserts anything about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
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


async def open_loop(
    name: str, call: Callable[[], Awaitable[object]], *, calls: int, rate: float
) -> Result:
    """``calls`` calls scheduled ``1 / rate`` s apart; latency from each scheduled time."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))  # the schedule, not a race workaround
        await call()
        latencies.append(loop.time() - at)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(start + i / rate) for i in range(calls)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result(name, calls, elapsed, statistics.median(latencies) * 1e3, p99 * 1e3)


async def _echo_baseline(
    pki_dir: Path, member: str, calls: int, concurrency: int, rate: float
) -> tuple[Result, Result]:
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
            payload = b"x" * 400  # about a CheckClaimRequest's size
            closed = await measure(
                "bare grpc.aio mTLS echo", lambda: echo(payload), calls=calls,
                concurrency=concurrency,
            )  # fmt: skip
            opened = await open_loop(
                "bare grpc.aio mTLS echo", lambda: echo(payload), calls=calls, rate=rate
            )
            return closed, opened
    finally:
        await server.stop(None)


async def _case(
    backend: str, work: Path, beneficiaries: int, calls: int, concurrency: int, rate: float
) -> tuple[Result, Result, Path, str]:
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

        name = f"CheckClaim, full pipeline, {backend} ({len(held)} distinct lines)"
        try:
            closed = await measure(name, one, calls=calls, concurrency=concurrency, warmup=100)
            opened = await open_loop(name, one, calls=calls, rate=rate)
        finally:
            for ch in channels.values():
                await ch.close()
        return closed, opened, env.pki_dir, next(m for m, k in members if k == "AMC")


async def main(
    beneficiaries: int, calls: int, concurrency: int, rate: float, sqlite_only: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        closed, opened = [], []
        pki_dir, member = Path(), ""
        for backend in ["sqlite"] if sqlite_only else ["sqlite", "postgresql"]:
            c, o, pki_dir, member = await _case(
                backend, work, beneficiaries, calls, concurrency, rate
            )
            closed.append(c)
            opened.append(o)
        base_closed, base_open = await _echo_baseline(pki_dir, member, calls, concurrency, rate)
    history = f"history of {beneficiaries} synthetic beneficiaries"
    print_table(
        f"Pre-payment check, closed loop: {concurrency} callers back to back ({calls} calls, "
        f"{history})",
        base_closed,
        closed,
    )
    print_table(
        f"Pre-payment check, open loop: {rate:g} checks/s on a fixed schedule ({calls} calls, "
        f"{history})",
        base_open,
        opened,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beneficiaries", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop checks per second")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.beneficiaries, args.calls, args.concurrency, args.rate, args.sqlite_only))
