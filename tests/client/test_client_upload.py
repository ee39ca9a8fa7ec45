"""Claims upload through the SDK against the real gateway: progress, per-line refusals,
all-or-nothing, broken uploads re-sent without duplicates, files, and ``vigie upload``."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main as cli_main
from gateway.client import (
    FieldViolation,
    LineRejection,
    RetryPolicy,
    UnavailableError,
    UploadProgress,
)
from gateway.services._claims_upload import UploadSettings
from tests.claims.claim_gen import amo_lines
from tests.client._proxy import TcpProxy
from tests.client._support import count, request_ids
from tests.client.conftest import Sdk

CHUNK = 10


@pytest.fixture
async def usdk(sdk: Sdk) -> Sdk:
    sdk.env.gateway.deps.extras["claims.upload"] = UploadSettings(chunk_size=CHUNK)
    return sdk


def lines(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """``n`` valid AMO lines; references are unique per seed."""
    return [
        {**row, "member_reference": f"S{seed}-{row['member_reference']}"}
        for row in amo_lines(seed, n)
    ]


def stored(sdk: Sdk) -> int:
    return count(sdk.env, "claim_lines")


async def test_progress_callback_is_fed_by_the_servers_progress_messages(usdk: Sdk) -> None:
    progress: list[UploadProgress] = []
    result = await usdk.client("cpam-75").upload_claims(
        lines(50), side="AMO", batch_size=CHUNK, on_progress=progress.append
    )
    assert result.ok and result.outcome == "committed" and result.lines_accepted == 50
    received = [p.lines_received for p in progress]
    assert received == sorted(received) and received[-1] == 50 and len(progress) >= 6
    assert [p.final for p in progress] == [False] * (len(progress) - 1) + [True]
    assert stored(usdk) == 50


@pytest.mark.parametrize("mode", ["per_line", "all_or_nothing"])
async def test_memory_stays_bounded_the_sdk_never_runs_ahead_of_the_gateway(
    sdk: Sdk, mode: str
) -> None:
    total, batch, window = 3000, 100, 500
    pulled = 0
    lead: list[int] = []

    def source() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for row in lines(total, seed=31):
            pulled += 1
            yield row

    def on_progress(p: UploadProgress) -> None:
        lead.append(pulled - p.lines_received)

    result = await sdk.client("cpam-75").upload_claims(
        source,
        side="AMO",
        mode=mode,  # type: ignore[arg-type]
        batch_size=batch,
        max_in_flight=window,
        on_progress=on_progress,
    )
    assert result.ok and result.lines_accepted == total and stored(sdk) == total
    # Lines read from the source but not yet received by the gateway: at most the window
    # plus the batch being assembled -- never the whole file.
    assert len(lead) >= total // batch and max(lead) <= window + batch


async def test_refused_lines_are_reported_at_their_source_index_with_their_fields(
    usdk: Sdk,
) -> None:
    rows = lines(12)
    rows[3]["amount_billed_cents"] += 1  # the gateway refuses: amount != quantity * price
    rows[5]["quantity"] = "three"  # the SDK refuses: not an integer (never sent)
    rows[8]["act_code"] = "ABC"  # the gateway refuses: not an LPP code
    seen: list[LineRejection] = []
    result = await usdk.client("cpam-75").upload_claims(
        rows,
        side="AMO",
        batch_size=4,
        on_progress=lambda p: seen.extend(p.new_rejections),
    )
    assert result.outcome == "committed" and not result.ok
    assert (result.lines_sent, result.lines_accepted, result.lines_rejected) == (11, 9, 3)
    by_index = {r.line_index: r for r in result.rejections}
    assert sorted(by_index) == [3, 5, 8] and sorted(r.line_index for r in seen) == [3, 5, 8]
    assert by_index[3].field_violations == (
        FieldViolation("lines[3].amount_billed_cents", "must equal quantity * unit_price_cents"),
    )
    assert by_index[5].local and by_index[5].field_violations == (
        FieldViolation("lines[5].quantity", "must be an integer"),
    )
    assert not by_index[8].local and by_index[8].member_reference == rows[8]["member_reference"]
    assert [v.field for v in by_index[8].field_violations] == ["lines[8].act_code"]
    assert stored(usdk) == 9


async def test_all_or_nothing_with_a_refused_line_stores_nothing(usdk: Sdk) -> None:
    rows = lines(25)
    rows[17]["amount_billed_cents"] += 1
    result = await usdk.client("cpam-75").upload_claims(
        rows, side="AMO", mode="all_or_nothing", batch_size=CHUNK
    )
    assert result.outcome == "rolled_back" and [r.line_index for r in result.rejections] == [17]
    assert stored(usdk) == 0


async def test_all_or_nothing_line_refused_by_the_sdk_cancels_before_any_commit(
    usdk: Sdk,
) -> None:
    rows = lines(30)
    rows[25]["care_date"] = "yesterday"
    client = usdk.client("cpam-75")
    result = await client.upload_claims(rows, side="AMO", mode="all_or_nothing", batch_size=CHUNK)
    assert result.outcome == "rolled_back" and result.lines_sent == 20
    [rejection] = result.rejections
    assert rejection.local and rejection.line_index == 25
    # The same lines again: all new (the cancelled upload left nothing behind).
    rows[25]["care_date"] = "2025-01-15"
    again = await client.upload_claims(rows, side="AMO", mode="all_or_nothing", batch_size=CHUNK)
    assert again.ok and (again.lines_accepted, again.lines_duplicate) == (30, 0)
    assert stored(usdk) == 30


async def test_a_broken_upload_is_resent_under_its_request_id_without_duplicates(
    usdk: Sdk, proxy: TcpProxy
) -> None:
    address = await proxy.start(usdk.env.target)
    at_drop: list[int] = []

    def cut_after_two_chunks(chunk: bytes) -> bool:
        if proxy.dropped or stored(usdk) < 2 * CHUNK:
            return False
        at_drop.append(stored(usdk))
        return True

    proxy.drop_server_chunk = cut_after_two_chunks
    client = usdk.client("cpam-75", address=address)
    rows = lines(60)
    result = await client.upload_claims(rows, side="AMO", batch_size=CHUNK)
    assert proxy.dropped == 1 and result.attempts == 2 and result.ok
    # What the first attempt committed (at least the chunks seen at the cut; the gateway may
    # commit one more before it notices) comes back as duplicates, never stored twice.
    assert result.lines_duplicate >= at_drop[0] >= 2 * CHUNK
    assert result.lines_accepted + result.lines_duplicate == 60
    assert stored(usdk) == 60
    ids = set(request_ids(usdk.env, "UploadClaims"))
    assert ids == {result.request_id}  # both attempts under the one request id


async def test_a_broken_upload_from_a_one_shot_iterator_is_not_resent(
    usdk: Sdk, proxy: TcpProxy
) -> None:
    address = await proxy.start(usdk.env.target)
    proxy.drop_server_chunk = lambda chunk: proxy.dropped == 0 and stored(usdk) >= CHUNK
    client = usdk.client("cpam-75", address=address, retry=RetryPolicy(max_attempts=5))
    with pytest.raises(UnavailableError):
        await client.upload_claims(iter(lines(40)), side="AMO", batch_size=CHUNK)
    assert proxy.connections == 1 and 0 < stored(usdk) < 40


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


async def test_upload_streams_jsonl_and_csv_files(usdk: Sdk, tmp_path: Path) -> None:
    client = usdk.client("cpam-75")
    first = await client.upload_claims(
        _write_jsonl(tmp_path / "a.jsonl", lines(15, seed=1)), side="AMO"
    )
    second = await client.upload_claims(
        _write_csv(tmp_path / "b.csv", lines(15, seed=2)), side="AMO"
    )
    assert first.ok and second.ok and stored(usdk) == 30
    broken = tmp_path / "c.jsonl"
    broken.write_text(json.dumps(lines(1, seed=9)[0]) + "\n{oops\n")
    result = await client.upload_claims(broken, side="AMO")
    [rejection] = result.rejections
    assert rejection.line_index == 1 and rejection.local
    assert rejection.field_violations == (FieldViolation("lines[1]", "JSONL line: not valid JSON"),)


async def test_vigie_upload_exits_0_when_every_line_is_accepted_and_1_when_some_are_refused(
    usdk: Sdk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = usdk.env.pki_dir
    tls = [
        *("--cert", str(pki / "members" / "cpam-75.crt")),
        *("--key", str(pki / "members" / "cpam-75.key")),
        *("--ca", str(pki / "ca.crt"), "--address", usdk.env.target),
    ]
    good = _write_jsonl(tmp_path / "good.jsonl", lines(12, seed=4))
    code = await asyncio.to_thread(cli_main, ["upload", str(good), "--side", "AMO", *tls])
    out = capsys.readouterr().out
    assert code == 0 and "committed" in out and stored(usdk) == 12
    rows = lines(6, seed=5)
    rows[2]["amount_billed_cents"] += 1
    bad = _write_csv(tmp_path / "bad.csv", rows)
    code = await asyncio.to_thread(
        cli_main, ["upload", str(bad), "--side", "AMO", "--no-progress", *tls]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "line 2" in out and "lines[2].amount_billed_cents" in out
    # Re-running the good file: nothing new, everything a duplicate, still a success.
    code = await asyncio.to_thread(cli_main, ["upload", str(good), "--side", "AMO", *tls])
    assert code == 0 and stored(usdk) == 12 + 5


async def test_vigie_upload_of_the_wrong_side_is_refused_with_exit_1(
    usdk: Sdk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = usdk.env.pki_dir
    good = _write_jsonl(tmp_path / "good.jsonl", lines(3, seed=6))
    code = await asyncio.to_thread(
        cli_main,
        [
            *("upload", str(good), "--side", "AMC", "--no-progress"),
            *("--cert", str(pki / "members" / "cpam-75.crt")),
            *("--key", str(pki / "members" / "cpam-75.key")),
            *("--ca", str(pki / "ca.crt"), "--address", usdk.env.target),
        ],
    )
    assert (
        code == 1 and "the gateway refused the upload: PERMISSION_DENIED" in capsys.readouterr().err
    )
    assert stored(usdk) == 0
