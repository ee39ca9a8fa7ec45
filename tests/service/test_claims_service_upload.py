"""UploadClaims over real mTLS, on SQLite and PostgreSQL: header rules, line refusals with their
index and field, both modes, progress while the client still sends, idempotent re-sending,
retry after a broken stream, journal events and first-level tokens never stored."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from gateway._proto.vigie.v1 import claims_pb2, common_pb2
from gateway.services._claims_upload import UploadSettings
from tests.domain.factories import TOKEN
from tests.service._status import field_violations
from tests.service.claims_support import (
    AMC,
    AMO,
    ATOMIC,
    CPAM,
    MUT_A,
    PER_LINE,
    count,
    header,
    journal,
    lockstep,
    pb_line,
    real_env,
    rows,
    stub,
    upload,
)
from tests.service.conftest import GatewayEnv, GatewayFactory


@pytest.fixture
async def env(gateway_factory: GatewayFactory) -> GatewayEnv:
    e = await real_env(gateway_factory)
    e.gateway.deps.extras["claims.upload"] = UploadSettings(chunk_size=2, idle_timeout_s=20)
    return e


def _violations(r: claims_pb2.LineRejection) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in r.field_violations]


# -- header rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "field"),
    [
        (header(AMO, request_id="", lines=[]), "request_id"),
        (header(AMO, request_id="not-a-uuid"), "request_id"),
        (header(AMO, purpose=common_pb2.PURPOSE_UNSPECIFIED), "purpose"),
        (header(claims_pb2.CLAIM_SIDE_UNSPECIFIED), "side"),
        (header(AMO, mode=claims_pb2.UPLOAD_MODE_UNSPECIFIED), "mode"),
        (header(AMO, mode=7), "mode"),
    ],
)
async def test_first_message_header_is_required(
    env: GatewayEnv, first: claims_pb2.UploadClaimsRequest, field: str
) -> None:
    first.lines.append(pb_line())
    with pytest.raises(grpc.aio.AioRpcError) as e:
        [r async for r in stub(env, CPAM).UploadClaims(iter([first]))]
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(e.value)] == [field]
    assert count(env, "claim_lines") == 0
    [event] = journal(env, "UploadClaims")
    assert (event["decision"], event["outcome"]) == ("deny", "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "later",
    [
        claims_pb2.UploadClaimsRequest(side=AMC),
        claims_pb2.UploadClaimsRequest(mode=ATOMIC),
        claims_pb2.UploadClaimsRequest(request_id=str(uuid.uuid4())),
        claims_pb2.UploadClaimsRequest(purpose=common_pb2.PURPOSE_CONTROL),
    ],
    ids=["side", "mode", "request_id", "purpose"],
)
async def test_later_header_fields_must_be_unset_or_equal(
    env: GatewayEnv, later: claims_pb2.UploadClaimsRequest
) -> None:
    rid = str(uuid.uuid4())
    first = header(AMO, request_id=rid, lines=[pb_line(member_reference="A")])
    same = claims_pb2.UploadClaimsRequest(
        side=AMO, request_id=rid, lines=[pb_line(member_reference="B")]
    )
    later.lines.append(pb_line(member_reference="C"))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        [r async for r in stub(env, CPAM).UploadClaims(iter([first, same, later]))]
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, rule)] = field_violations(e.value)
    assert field == ("purpose" if later.purpose else next(
        f for f in ("side", "mode", "request_id") if getattr(later, f)))  # fmt: skip
    assert "equal to the first message" in rule
    # Per-line: the two chunks before the bad message stay committed (a retry resends them).
    stored = rows(env, "select member_reference from claim_lines")
    assert {r["member_reference"] for r in stored} == {"A", "B"}


async def test_an_amc_cannot_upload_the_amo_side(env: GatewayEnv) -> None:
    first = header(AMO, lines=[pb_line("lens", "AMO")])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        [r async for r in stub(env, MUT_A).UploadClaims(iter([first]))]
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert count(env, "claim_lines") == 0
    [event] = journal(env, "UploadClaims")
    assert (event["decision"], event["outcome"]) == ("deny", "PERMISSION_DENIED")


async def test_upload_for_another_purpose_is_denied(env: GatewayEnv) -> None:
    first = header(AMO, purpose=common_pb2.PURPOSE_CONTROL, lines=[pb_line()])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        [r async for r in stub(env, CPAM).UploadClaims(iter([first]))]
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert count(env, "claim_lines") == 0


# -- line refusals: index and field, both modes ------------------------------------------------

BAD_LINES = [
    ("quantity", pb_line(member_reference="Q", quantity=0), "quantity"),
    ("tooth", pb_line("crown", member_reference="T", tooth=99), "tooth"),
    ("lpp", pb_line(member_reference="P", act_code="12345"), "act_code"),
    ("rpps", pb_line(member_reference="R", provider_rpps="12345678901"), "provider_rpps"),
    ("token", pb_line(member_reference="K", beneficiary_token="253072B07300470"),
     "beneficiary_token"),
    ("future", pb_line(member_reference="F", care_date="2099-01-01",
                       prescription_date="2098-12-01"), "care_date"),
    ("amount", pb_line(member_reference="M", amount_billed_cents=1), "amount_billed_cents"),
    ("side", pb_line("lens", "AMC", member_reference="S"), "side"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "bad", "path"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
async def test_a_bad_line_is_refused_with_its_index_and_field(
    env: GatewayEnv, rule: str, bad: claims_pb2.ClaimLine, path: str
) -> None:
    good = [pb_line(member_reference=f"G{i}", laterality=("left", "right")[i % 2],
                    care_date=f"2026-0{1 + i}-10") for i in range(3)]  # fmt: skip
    responses = await upload(env, CPAM, [good[:2], [good[2], bad]])
    final = responses[-1]
    assert final.final and final.outcome == claims_pb2.UPLOAD_OUTCOME_COMMITTED
    assert (final.lines_received, final.lines_accepted, final.lines_rejected) == (4, 3, 1)
    [rejection] = [r for resp in responses for r in resp.rejections]
    assert rejection.line_index == 3 and rejection.member_reference == bad.member_reference
    assert f"lines[3].{path}" in [f for f, _ in _violations(rejection)]
    assert count(env, "claim_lines") == 3  # per-line: the valid lines are stored


async def test_all_or_nothing_stores_nothing_when_one_line_is_refused(env: GatewayEnv) -> None:
    lines = [pb_line(member_reference=f"L{i}", care_date=f"2026-0{1 + i}-10") for i in range(4)]
    lines[3] = pb_line(member_reference="L3", quantity=0)
    responses = await upload(env, CPAM, [lines[:2], lines[2:]], mode=ATOMIC)
    final = responses[-1]
    assert final.outcome == claims_pb2.UPLOAD_OUTCOME_ROLLED_BACK
    assert (final.lines_received, final.lines_accepted, final.lines_rejected) == (4, 3, 1)
    assert [r.line_index for resp in responses for r in resp.rejections] == [3]
    assert count(env, "claim_lines") == 0 and count(env, "alerts") == 0
    events = journal(env, "UploadClaims")
    # The chunk events rolled back with the lines; the start and the outcome are journaled.
    assert [(e["outcome"], e["record_count"]) for e in events] == [
        ("UPLOAD_STARTED", 0), ("OK", 0)]  # fmt: skip


async def test_all_or_nothing_commits_every_line_and_journals_each_chunk(env: GatewayEnv) -> None:
    lines = [pb_line(member_reference=f"L{i}", care_date=f"2026-0{1 + i}-10") for i in range(5)]
    responses = await upload(env, CPAM, [lines[:3], lines[3:]], mode=ATOMIC)
    assert responses[-1].outcome == claims_pb2.UPLOAD_OUTCOME_COMMITTED
    assert responses[-1].lines_accepted == 5 and count(env, "claim_lines") == 5
    events = journal(env, "UploadClaims")
    assert [e["outcome"] for e in events] == ["UPLOAD_STARTED", "OK_CHUNK", "OK_CHUNK",
                                             "OK_CHUNK", "OK"]  # fmt: skip
    assert sum(e["record_count"] for e in events if e["outcome"] == "OK_CHUNK") == 5
    assert events[-1]["record_count"] == 5


@pytest.mark.parametrize("mode", [PER_LINE, ATOMIC], ids=["per_line", "all_or_nothing"])
async def test_progress_arrives_while_the_client_is_still_sending(
    env: GatewayEnv, mode: int
) -> None:
    call = stub(env, CPAM).UploadClaims()
    batches = [[pb_line(member_reference=f"L{i}-{j}", care_date=f"2026-0{1 + i}-1{j}")
                for j in range(2)] for i in range(4)]  # fmt: skip
    rid = str(uuid.uuid4())
    messages = [header(AMO, mode, rid, lines=batches[0]),
                *(claims_pb2.UploadClaimsRequest(lines=b) for b in batches[1:])]  # fmt: skip
    seen = await lockstep(call, messages)
    assert [r.lines_received for r in seen[:4]] == [2, 4, 6, 8]
    assert not any(r.final for r in seen[:4]) and seen[-1].final
    assert count(env, "claim_lines") == 8


async def test_resending_lines_changes_nothing_and_counts_duplicates(env: GatewayEnv) -> None:
    lines = [pb_line(member_reference=f"L{i}", care_date=f"2026-0{1 + i}-10") for i in range(3)]
    await upload(env, CPAM, [lines])
    before = rows(env, "select * from claim_lines order by id")
    final = (await upload(env, CPAM, [lines[:1], lines]))[-1]
    assert (final.lines_received, final.lines_accepted, final.lines_duplicate) == (4, 0, 4)
    assert rows(env, "select * from claim_lines order by id") == before


async def test_retry_after_a_broken_stream_stores_each_line_once(env: GatewayEnv) -> None:
    lines = [pb_line(member_reference=f"L{i}", care_date=f"2026-{1 + i:02d}-10") for i in range(8)]
    rid = str(uuid.uuid4())
    call = stub(env, CPAM).UploadClaims()
    await call.write(header(AMO, PER_LINE, rid, lines=lines[:2]))
    first = await asyncio.wait_for(call.read(), 30)
    await call.write(claims_pb2.UploadClaimsRequest(lines=lines[2:4]))
    second = await asyncio.wait_for(call.read(), 30)
    assert (first.lines_accepted, second.lines_accepted) == (2, 4)
    call.cancel()  # the connection breaks before lines 4..7 are sent
    assert count(env, "claim_lines") == 4
    final = (await upload(env, CPAM, [lines[:5], lines[5:]], request_id=rid))[-1]
    assert (final.lines_accepted, final.lines_duplicate, final.lines_rejected) == (4, 4, 0)
    refs = [r["member_reference"] for r in rows(env, "select member_reference from claim_lines")]
    assert sorted(refs) == [f"L{i}" for i in range(8)]


async def test_a_cancelled_all_or_nothing_upload_stores_nothing(env: GatewayEnv) -> None:
    lines = [pb_line(member_reference=f"L{i}", care_date=f"2026-0{1 + i}-10") for i in range(4)]
    call = stub(env, CPAM).UploadClaims()
    await call.write(header(AMO, ATOMIC, lines=lines[:2]))
    first = await asyncio.wait_for(call.read(), 30)
    assert first.lines_accepted == 2 and not first.final
    call.cancel()
    # The worker rolls back and frees its transaction: a new upload of the same lines commits
    # all of them (had the first two been committed, they would count as duplicates).
    final = (await upload(env, CPAM, [lines]))[-1]
    assert (final.lines_accepted, final.lines_duplicate) == (4, 0)
    assert count(env, "claim_lines") == 4


async def test_an_idle_all_or_nothing_upload_is_rolled_back(
    gateway_factory: GatewayFactory,
) -> None:
    env = await real_env(gateway_factory)
    env.gateway.deps.extras["claims.upload"] = UploadSettings(chunk_size=2, idle_timeout_s=0.5)
    call = stub(env, CPAM).UploadClaims()
    await call.write(header(AMO, ATOMIC, lines=[pb_line()]))
    await asyncio.wait_for(call.read(), 30)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await asyncio.wait_for(call.read(), 30)  # the client never sends the rest
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert count(env, "claim_lines") == 0


# -- journal and pseudonymisation --------------------------------------------------------------


async def test_each_committed_chunk_carries_its_journal_event(env: GatewayEnv) -> None:
    lines = [pb_line(member_reference=f"L{i}", care_date=f"2026-0{1 + i}-10") for i in range(3)]
    rid = str(uuid.uuid4())
    await upload(env, CPAM, [lines], request_id=rid)
    events = journal(env, "UploadClaims")
    assert [(e["decision"], e["outcome"], e["record_count"]) for e in events] == [
        ("allow", "OK", 2), ("allow", "OK", 1)]  # fmt: skip
    stored = {r["beneficiary"] for r in rows(env, "select beneficiary from claim_lines")}
    for e in events:
        assert set(e["subject_pseudonyms"]) == stored  # the second-level pseudonym only
        assert e["rule_ids"] == ["common-amo-upload-claims"]
        assert e["record_refs"] == [f"uploads/{rid}"]


async def test_first_level_tokens_are_rekeyed_before_anything_is_stored(env: GatewayEnv) -> None:
    await upload(env, CPAM, [[pb_line(beneficiary_token=TOKEN)]])
    [row] = rows(env, "select * from claim_lines")
    assert row["beneficiary"] != TOKEN and row["beneficiary"].endswith(
        env.gateway.deps.keys.rekeyer.rekey(TOKEN).split(":", 1)[1]
    )
    assert row["beneficiary"] == env.gateway.deps.keys.rekeyer.rekey(TOKEN)
    for table in ("claim_lines", "alerts", "journal_personal", "notifications"):
        for r in rows(env, f"select * from {table}"):
            assert TOKEN not in repr(r), table
