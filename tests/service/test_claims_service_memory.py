"""UploadClaims never holds the whole upload: the stream is pulled only as chunks are processed.

Two checks, over real mTLS:

1. bounded read-ahead: the servicer's pull of request messages is counted; whenever the client
   receives the progress of message ``k``, the server must have pulled at most ``k`` plus a
   small constant (its two-message queue, the message being converted, the one being stored).
   A server that read the stream to the end before working (or kept every message) fails at
   the first progress message. (Protobuf messages live in C memory that ``tracemalloc`` does
   not see, so this is counted, not weighed.)
2. bounded Python memory: four times the lines must not need noticeably more traced memory
   (mappings, models, rejections, progress kept by mistake would grow with the upload).
"""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway._proto.vigie.v1 import claims_pb2
from gateway.client import claim_line_from_mapping
from gateway.services import _claims_upload
from gateway.services._claims_upload import UploadSettings
from tests.claims.claim_gen import amo_lines
from tests.service.claims_support import AMO, ATOMIC, CPAM, PER_LINE, header, real_env, stub
from tests.service.conftest import GatewayEnv, GatewayFactory

# The design's bound (all-or-nothing): 2 progress messages waiting to be sent, 1 chunk being
# stored, 2 chunks queued for the worker, 1 message being converted.
READ_AHEAD = 6


def _messages(seed: int, n: int, mode: int, batch: int) -> Iterator[claims_pb2.UploadClaimsRequest]:
    raws = amo_lines(seed, n, beneficiaries=3000, providers=40)
    lines: list[claims_pb2.ClaimLine] = []
    first = True
    for raw in raws:
        line = claim_line_from_mapping(raw)
        line.member_reference = f"{seed}-{line.member_reference}"
        lines.append(line)
        if len(lines) == batch:
            if first:
                yield header(AMO, mode, str(uuid.uuid4()), lines=lines)
            else:
                yield claims_pb2.UploadClaimsRequest(lines=lines)
            lines, first = [], False
    if lines:
        yield claims_pb2.UploadClaimsRequest(lines=lines)


@pytest.fixture
async def env(gateway_factory: GatewayFactory, db_url: str) -> GatewayEnv:
    if not db_url.startswith("sqlite"):
        pytest.skip("the stream side does not depend on the database")
    return await real_env(gateway_factory)


@pytest.mark.parametrize("mode", [PER_LINE, ATOMIC], ids=["per_line", "all_or_nothing"])
async def test_the_server_reads_the_stream_only_as_fast_as_it_stores(
    env: GatewayEnv, mode: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.gateway.deps.extras["claims.upload"] = UploadSettings(chunk_size=20)
    pulled = [0]
    original = _claims_upload._messages

    async def counting(*args: object) -> AsyncIterator[claims_pb2.UploadClaimsRequest]:
        async for m in original(*args):  # type: ignore[arg-type]
            pulled[0] += 1
            yield m

    monkeypatch.setattr(_claims_upload, "_messages", counting)
    ahead = []
    call = stub(env, CPAM).UploadClaims(_messages(5, 600, mode, 20))  # 30 messages
    async for response in call:
        if not response.final:
            ahead.append(pulled[0] - response.lines_received // 20)
    assert len(ahead) == 30 and pulled[0] == 30
    assert max(ahead) <= READ_AHEAD, ahead


async def _peak(env: GatewayEnv, seed: int, n: int) -> int:
    tracemalloc.start()
    try:
        call = stub(env, CPAM).UploadClaims(_messages(seed, n, ATOMIC, 200))
        final = [r async for r in call][-1]
        assert final.final and final.lines_accepted + final.lines_duplicate == n
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_traced_memory_does_not_grow_with_the_upload(env: GatewayEnv) -> None:
    env.gateway.deps.extras["claims.upload"] = UploadSettings(chunk_size=200)
    await _peak(env, 1, 400)  # warm caches, imports and the provider statistics
    small = await _peak(env, 2, 800)
    large = await _peak(env, 3, 3_200)
    assert large < 1.5 * small, (small, large)
