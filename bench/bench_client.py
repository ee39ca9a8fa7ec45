"""What the client SDK costs beside the bare generated stubs, measured in the same run.

Run: ``python -m bench.bench_client [--tokens 50000] [--calls 1000] [--lines 5000]``.

1. Pseudonymisation: ``Pseudonymiser.token`` (NIR validation, canonical message, HMAC) beside
   a bare ``hmac.digest`` of precomputed messages.
2. A unary call: ``VigieClient.get_self`` (deadline, retry wrapper, typed errors) beside the
   generated stub's ``GetSelf`` on the same channel options, same gateway.
3. An upload: ``VigieClient.upload_claims`` of a JSONL file (read, row conversion, batches,
   its own flow-control window) beside the bare stub streaming prebuilt messages, same lines
   (``vigie synth`` data, the AMO member), distinct references so neither sees duplicates.

A real gateway (mutual TLS, current-law policy, journal, rate limit lifted) on SQLite, a fresh
database per case. Prints markdown tables; never asserts anything about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._harness import measure, print_table
from bench.bench_ingestion import running_gateway, synth_uploads
from gateway._proto.vigie.v1 import (
    claims_pb2,
    claims_pb2_grpc,
    common_pb2,
    members_pb2,
    members_pb2_grpc,
)
from gateway.client import ClientConfig, Pseudonymiser, VigieClient, claim_line_from_mapping
from gateway.crypto import first_level_message, nir_key

BATCH = 500


def _nirs(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        first13 = (
            f"{rng.choice('12')}{rng.randint(0, 99):02d}{rng.randint(1, 12):02d}"
            f"{rng.randint(1, 95):02d}{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
        )
        out.append(f"{first13}{nir_key(first13):02d}")
    return out


def bench_tokens(n: int) -> None:
    key = bytes(range(32))
    nirs = _nirs(n, random.Random(7))
    messages = [first_level_message(nir) for nir in nirs]
    start = time.perf_counter()
    for m in messages:
        hmac.digest(key, m, hashlib.sha256)
    bare = time.perf_counter() - start
    pseudonymiser = Pseudonymiser(key)
    start = time.perf_counter()
    for nir in nirs:
        pseudonymiser.token(nir)
    sdk = time.perf_counter() - start
    print(f"\n## Pseudonymisation ({n:,} NIRs, one core)\n")
    print("| case | tokens/s | µs per token | vs baseline |")
    print("|---|---:|---:|---:|")
    for name, seconds in (
        ("bare hmac.digest of precomputed messages (baseline)", bare),
        ("Pseudonymiser.token (validate, canonical message, HMAC)", sdk),
    ):
        print(f"| {name} | {n / seconds:,.0f} | {seconds / n * 1e6:.1f} | {bare / seconds:.2f}x |")


def _config(pki_dir: Path, port: int, member: str) -> ClientConfig:
    m = pki_dir / "members"
    return ClientConfig(
        address=f"127.0.0.1:{port}",
        certificate=m / f"{member}.crt",
        private_key=m / f"{member}.key",
        ca=pki_dir / "ca.crt",
    )


def _renamed(lines: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [{**row, "member_reference": f"{prefix}{row['member_reference']}"} for row in lines]


async def bench_calls(calls: int, work: Path, members: list[tuple[str, str]]) -> None:
    member = members[0][0]
    async with running_gateway("sqlite", work, members) as gw:
        async with VigieClient(_config(gw.pki_dir, gw.gateway.port, member)) as client:
            stub = members_pb2_grpc.MemberServiceStub(client._channel)  # type: ignore[no-untyped-call]
            request = members_pb2.GetSelfRequest(purpose=common_pb2.PURPOSE_OPERATIONS)
            baseline = await measure(
                "generated stub GetSelf (baseline)",
                lambda: stub.GetSelf(request, timeout=30),
                calls=calls,
                concurrency=8,
            )
            sdk = await measure("VigieClient.get_self", client.get_self, calls=calls, concurrency=8)
    print_table(f"Unary call through the SDK ({calls} calls, 8 concurrent)", baseline, [sdk])


async def _bare_upload(
    work: Path, members: list[tuple[str, str]], lines: list[dict[str, Any]]
) -> float:
    async with running_gateway("sqlite", work, members) as gw:
        async with VigieClient(_config(gw.pki_dir, gw.gateway.port, members[0][0])) as client:
            claims = claims_pb2_grpc.ClaimServiceStub(client._channel)  # type: ignore[no-untyped-call]
            raw = [claim_line_from_mapping(r) for r in lines]
            messages = [
                claims_pb2.UploadClaimsRequest(lines=raw[i : i + BATCH])
                for i in range(0, len(raw), BATCH)
            ]
            head = messages[0]
            head.purpose = common_pb2.PURPOSE_FRAUD_DETECTION
            head.request_id = str(uuid.uuid4())
            head.side = claims_pb2.CLAIM_SIDE_AMO
            head.mode = claims_pb2.UPLOAD_MODE_PER_LINE
            start = time.perf_counter()
            replies = [r async for r in claims.UploadClaims(iter(messages))]
            seconds = time.perf_counter() - start
            assert replies[-1].final and replies[-1].lines_accepted == len(raw)
            return seconds


async def _sdk_upload(
    work: Path, members: list[tuple[str, str]], lines: list[dict[str, Any]]
) -> float:
    path = work / "claims.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    async with running_gateway("sqlite", work, members) as gw:
        async with VigieClient(_config(gw.pki_dir, gw.gateway.port, members[0][0])) as client:
            start = time.perf_counter()
            result = await client.upload_claims(path, side="AMO", batch_size=BATCH)
            seconds = time.perf_counter() - start
            assert result.ok and result.lines_accepted == len(lines)
            return seconds


async def bench_upload(n_lines: int, work: Path) -> None:
    uploads = synth_uploads(max(200, n_lines // 3), work / "synth")
    members = [(m, kind) for m, kind, _ in uploads]
    lines = uploads[0][2][:n_lines]  # the AMO's lines; each case on its own fresh database
    bare = await _bare_upload(work, members, lines)
    sdk = await _sdk_upload(work, members, lines)
    n = len(lines)
    print(f"\n## Upload through the SDK ({n:,} AMO lines, {BATCH} per message, SQLite)\n")
    print("| case | lines/s | seconds | vs baseline |")
    print("|---|---:|---:|---:|")
    print(
        f"| generated stub, prebuilt messages (baseline) | {n / bare:,.0f} | {bare:.2f} | 1.00x |"
    )
    print(
        f"| VigieClient.upload_claims from a JSONL file | {n / sdk:,.0f} | {sdk:.2f} "
        f"| {bare / sdk:.2f}x |"
    )


async def bench_gateway_cases(calls: int, n_lines: int, work: Path) -> None:
    await bench_upload(n_lines, work)
    members = [("cpam-75", "AMO")]
    await bench_calls(calls, work / "calls", members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=5000)
    args = parser.parse_args()
    bench_tokens(args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench_gateway_cases(args.calls, args.lines, Path(tmp)))


if __name__ == "__main__":
    main()
