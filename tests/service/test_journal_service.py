"""JournalService over mTLS: who may read the journal, filters, pages, "who looked at my data?".

Real policy (current-law): compliance officers only, the purpose each action allows, and
per-event need-to-know (an AMC never sees another AMC's accesses).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import structlog
from google.protobuf import timestamp_pb2
from google.type import interval_pb2

from gateway._proto.vigie.v1 import common_pb2, journal_pb2
from gateway.crypto import Rekeyer
from gateway.keys import init_ring, load_ring, rotate_ring
from tests.service._journal_support import (
    AUDIT,
    CONTROL,
    DSR,
    NIR_P,
    NIR_Q,
    OPS,
    access,
    cover,
    journal_pki,
    pseudonym,
    rows,
    settle,
    start_journal_gateway,
    stub,
    token1,
    write,
)
from tests.service._status import error_info, field_violations
from tests.service.conftest import GatewayEnv, GatewayFactory

__all__ = ["journal_pki"]  # the fixture, re-exported for pytest


@pytest.fixture
async def env(gateway_factory: GatewayFactory, journal_pki: Path) -> GatewayEnv:
    return await start_journal_gateway(gateway_factory, journal_pki)


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value


# -- who may call -------------------------------------------------------------------------------
def _every_rpc(purpose: int) -> list[tuple[str, Any]]:
    return [
        ("ListAccessEvents", journal_pb2.ListAccessEventsRequest(purpose=purpose)),
        (
            "ListPersonAccesses",
            journal_pb2.ListPersonAccessesRequest(purpose=purpose, beneficiary_token=token1(NIR_P)),
        ),
        ("GetCheckpoint", journal_pb2.GetCheckpointRequest(purpose=purpose)),
        (
            "GetInclusionProof",
            journal_pb2.GetInclusionProofRequest(purpose=purpose, leaf_index=0, tree_size=1),
        ),
        (
            "GetConsistencyProof",
            journal_pb2.GetConsistencyProofRequest(
                purpose=purpose, first_tree_size=1, second_tree_size=1
            ),
        ),
    ]


@pytest.mark.parametrize("member", ["cpam-75", "mut-alpha"])
@pytest.mark.parametrize("purpose", [AUDIT, DSR])
async def test_members_without_the_compliance_role_are_denied_every_journal_rpc(
    env: GatewayEnv, member: str, purpose: int
) -> None:
    journal = stub(env, member)
    calls = [*_every_rpc(purpose), ("ExportJournal", None)]
    for name, request in calls:
        if name == "ExportJournal":
            stream = journal.ExportJournal(journal_pb2.ExportJournalRequest(purpose=purpose))
            error = await _refused(stream.read())
        else:
            error = await _refused(getattr(journal, name)(request))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, name
        assert error_info(error).metadata["rule_ids"] == "default-deny", name
    refused = [r for r in rows(env) if r["member_id"] == member]
    assert len(refused) == len(calls)
    assert {(r["decision"], r["outcome"]) for r in refused} == {("deny", "PERMISSION_DENIED")}


PURPOSE_CASES = [
    ("ExportJournal", DSR),  # a person's request never exports everyone's accesses
    ("ListAccessEvents", DSR),
    ("ListPersonAccesses", AUDIT),  # person lookups only answer a person's request
    ("GetCheckpoint", CONTROL),
    ("GetInclusionProof", OPS),
]


@pytest.mark.parametrize(("name", "purpose"), PURPOSE_CASES, ids=[c[0] for c in PURPOSE_CASES])
async def test_compliance_officer_is_denied_a_purpose_the_action_does_not_serve(
    env: GatewayEnv, name: str, purpose: int
) -> None:
    journal = stub(env, "cpam-audit")
    if name == "ExportJournal":
        error = await _refused(
            journal.ExportJournal(journal_pb2.ExportJournalRequest(purpose=purpose)).read()
        )
    else:
        [request] = [r for n, r in _every_rpc(purpose) if n == name]
        error = await _refused(getattr(journal, name)(request))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).metadata["rule_ids"] == "default-deny"


# -- ListAccessEvents ---------------------------------------------------------------------------
async def _events(env: GatewayEnv, caller: str, **filters: Any) -> list[journal_pb2.AccessEvent]:
    out: list[journal_pb2.AccessEvent] = []
    token = ""
    while True:
        page = await stub(env, caller).ListAccessEvents(
            journal_pb2.ListAccessEventsRequest(
                purpose=AUDIT, page_size=3, page_token=token, **filters
            )
        )
        out.extend(page.access_events)
        token = page.next_page_token
        if not token:
            return out


async def test_amo_officer_sees_its_own_accesses_and_accesses_to_its_insured_only(
    env: GatewayEnv,
) -> None:
    p, q = pseudonym(env, NIR_P), pseudonym(env, NIR_Q)
    cover(env, "cpam-audit", p)
    mine = write(env, access("cpam-audit", "ListAlerts", purpose="fraud_detection"))
    about_p = write(
        env, access("mut-alpha", "CheckClaim", subjects=[p]), access("cpam-75", subjects=[p])
    )
    hidden = write(env, access("mut-alpha", subjects=[q]), access("cpam-75", refs=["x/1"]))
    seen = {e.sequence for e in await _events(env, "cpam-audit")}
    assert set(mine + about_p) <= seen
    assert not seen & set(hidden)


async def test_amc_officer_never_sees_another_amc_access_even_to_its_insured(
    env: GatewayEnv,
) -> None:
    p = pseudonym(env, NIR_P)
    cover(env, "mut-gamma", p)
    own = write(env, access("mut-gamma", "CheckClaim", subjects=[p]))
    amo_about_p = write(env, access("cpam-75", subjects=[p]))
    other_amc = write(env, access("mut-alpha", "CheckClaim", subjects=[p]))
    seen = {e.sequence for e in await _events(env, "mut-gamma")}
    assert set(own + amo_about_p) <= seen
    assert other_amc[0] not in seen


async def test_every_filter_selects_exactly_the_matching_visible_events(
    env: GatewayEnv,
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    specs = [
        ("GetSuspicion", "control", "allow", ["cl-amo-read-own-suspicion"], "CN=alice"),
        ("ListAlerts", "fraud_detection", "allow", ["common-list-alerts"], "CN=bob"),
        ("GetSuspicion", "complaint", "deny", ["default-deny"], "CN=alice"),
        ("CheckClaim", "control", "deny", ["cl-no-amc-to-amo-report", "x"], "CN=bob"),
        ("GetSuspicion", "control", "allow", ["cl-amo-read-own-suspicion"], "CN=carol"),
    ]
    seqs = write(
        env,
        *(
            access(
                "cpam-audit",
                m,
                purpose=p,
                decision=d,
                rule_ids=r,
                principal=who,
                time=t0 + timedelta(hours=k),
            )
            for k, (m, p, d, r, who) in enumerate(specs)
        ),
    )
    [hidden] = write(env, access("cpam-75", "GetSuspicion", time=t0))  # matches, not visible
    by = dict(zip(seqs, specs, strict=True))
    at = {s: t0 + timedelta(hours=k) for k, s in enumerate(seqs)}

    def ts(moment: datetime) -> timestamp_pb2.Timestamp:
        out = timestamp_pb2.Timestamp()
        out.FromDatetime(moment)
        return out

    cases: list[tuple[dict[str, Any], set[int]]] = [
        ({"member": "members/cpam-audit"}, set(seqs)),
        ({"member": "members/cpam-75"}, set()),
        ({"principal": "CN=alice"}, {s for s in seqs if by[s][4] == "CN=alice"}),
        ({"method": "GetSuspicion"}, {s for s in seqs if by[s][0] == "GetSuspicion"}),
        (
            {"event_purpose": common_pb2.PURPOSE_CONTROL},
            {s for s in seqs if by[s][1] == "control"},
        ),
        (
            {"decision": common_pb2.ACCESS_DECISION_DENY},
            {s for s in seqs if by[s][2] == "deny"},
        ),
        ({"rule_id": "x"}, {seqs[3]}),
        ({"rule_id": "cl-amo-read-own-suspicion"}, {seqs[0], seqs[4]}),
        (
            {"event_time_range": interval_pb2.Interval(start_time=ts(at[seqs[1]]))},
            set(seqs[1:]),
        ),
        (
            {
                "event_time_range": interval_pb2.Interval(
                    start_time=ts(at[seqs[1]]), end_time=ts(at[seqs[3]])
                )
            },
            {seqs[1], seqs[2]},  # start inclusive, end exclusive
        ),
        (
            {"method": "GetSuspicion", "decision": common_pb2.ACCESS_DECISION_ALLOW},
            {seqs[0], seqs[4]},
        ),
    ]
    for filters, expected in cases:
        got = {e.sequence for e in await _events(env, "cpam-audit", **filters)}
        assert got & set(by) == expected, filters
        assert hidden not in got, filters  # others: the officer's own (journaled) queries


async def test_pages_cover_every_visible_event_once_and_tokens_are_bound(
    env: GatewayEnv,
) -> None:
    write(env, *(access("cpam-audit", "ListAlerts") for _ in range(7)))
    write(env, *(access("cpam-75") for _ in range(5)))  # interleaved hidden events
    write(env, *(access("cpam-audit", "ListAlerts") for _ in range(4)))
    journal = stub(env, "cpam-audit")
    request = journal_pb2.ListAccessEventsRequest(purpose=AUDIT, method="ListAlerts", page_size=4)
    seen: list[int] = []
    pages = 0
    while True:
        page = await journal.ListAccessEvents(request)
        pages += 1
        seen.extend(e.sequence for e in page.access_events)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert len(seen) == len(set(seen)) == 11 and seen == sorted(seen)
    assert pages == 3  # 4 + 4 + 3: no empty trailing page
    first = await journal.ListAccessEvents(
        journal_pb2.ListAccessEventsRequest(purpose=AUDIT, method="ListAlerts", page_size=4)
    )
    for bad in (
        journal_pb2.ListAccessEventsRequest(  # other filters
            purpose=AUDIT, method="GetSuspicion", page_token=first.next_page_token
        ),
        journal_pb2.ListAccessEventsRequest(  # forged
            purpose=AUDIT, method="ListAlerts", page_token=first.next_page_token[:-2] + "AA"
        ),
    ):
        error = await _refused(journal.ListAccessEvents(bad))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in field_violations(error)] == ["page_token"]
    # Another member cannot reuse the officer's token either.
    error = await _refused(
        stub(env, "mut-gamma").ListAccessEvents(
            journal_pb2.ListAccessEventsRequest(
                purpose=AUDIT, method="ListAlerts", page_token=first.next_page_token
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


BAD_FILTERS = [
    ({"member": "cpam-75"}, "member"),
    ({"member": "members/"}, "member"),
    ({"rule_id": 'x"]'}, "rule_id"),
    ({"decision": 7}, "decision"),
    ({"event_purpose": 42}, "event_purpose"),
    ({"page_size": -1}, "page_size"),
    (
        {
            "event_time_range": interval_pb2.Interval(
                start_time=timestamp_pb2.Timestamp(seconds=2_000_000_000),
                end_time=timestamp_pb2.Timestamp(seconds=1_000_000_000),
            )
        },
        "event_time_range.end_time",
    ),
]


@pytest.mark.parametrize(("filters", "field"), BAD_FILTERS, ids=[f for _, f in BAD_FILTERS])
async def test_malformed_filters_are_invalid_argument_naming_the_field(
    env: GatewayEnv, filters: dict[str, Any], field: str
) -> None:
    error = await _refused(
        stub(env, "cpam-audit").ListAccessEvents(
            journal_pb2.ListAccessEventsRequest(purpose=AUDIT, **filters)
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == [field]
    # Journaled as the policy decided it (allowed) with the answer it got; nothing else.
    assert [(r["decision"], r["outcome"]) for r in rows(env)] == [("allow", "INVALID_ARGUMENT")]


async def test_listed_events_carry_the_audit_view_and_their_canonical_leaf(
    env: GatewayEnv,
) -> None:
    [seq] = write(env, access("cpam-audit", "ListAlerts", refs=["alerts/a1"]))
    await settle(env)
    [event] = [e for e in await _events(env, "cpam-audit") if e.sequence == seq]
    assert event.name == f"journal/events/{event.event_id}"
    assert event.member == "members/cpam-audit" and event.method == "ListAlerts"
    assert list(event.record_refs) == ["alerts/a1"] and not event.personal_fields_erased
    assert event.HasField("leaf_index") and event.canonical_entry.startswith(b"{")
    assert event.purpose == common_pb2.PURPOSE_CONTROL
    assert event.decision == common_pb2.ACCESS_DECISION_ALLOW


async def test_the_officers_own_queries_are_journaled_naming_what_they_returned(
    env: GatewayEnv,
) -> None:
    write(env, access("cpam-audit", "ListAlerts"))
    page = await stub(env, "cpam-audit").ListAccessEvents(
        journal_pb2.ListAccessEventsRequest(purpose=AUDIT)
    )
    [query] = [r for r in rows(env) if r["method"].endswith("/ListAccessEvents")]
    assert (query["decision"], query["outcome"], query["purpose"]) == ("allow", "OK", "audit")
    assert query["record_count"] == len(page.access_events) == 1
    assert query["rule_ids"] in (
        ["common-compliance-list-events"],
        '["common-compliance-list-events"]',
    )


# -- "who looked at my data?" -------------------------------------------------------------------
async def test_who_looked_at_my_data_end_to_end_without_the_token_ever_stored_or_logged(
    env: GatewayEnv,
) -> None:
    p, q = pseudonym(env, NIR_P), pseudonym(env, NIR_Q)
    cover(env, "cpam-audit", p, q)  # the person's fund answers the request
    looked = write(
        env,
        access("cpam-75", "GetSuspicion", subjects=[p], refs=["suspicions/s1"]),
        access("mut-alpha", "CheckClaim", purpose="fraud_detection", subjects=[p, q]),
        access("mut-beta", "GetSuspicion", decision="deny", subjects=[p]),
    )
    write(env, access("cpam-75", subjects=[q]))  # another person
    token = token1(NIR_P)
    journal = stub(env, "cpam-audit")
    with structlog.testing.capture_logs() as logs:
        answer = await journal.ListPersonAccesses(
            journal_pb2.ListPersonAccessesRequest(purpose=DSR, beneficiary_token=token)
        )
    got = [(e.member, e.method, e.decision) for e in answer.access_events]
    assert got == [
        ("members/cpam-75", "GetSuspicion", common_pb2.ACCESS_DECISION_ALLOW),
        ("members/mut-alpha", "CheckClaim", common_pb2.ACCESS_DECISION_ALLOW),
        ("members/mut-beta", "GetSuspicion", common_pb2.ACCESS_DECISION_DENY),
    ]
    assert len(looked) == 3
    # The person's view: when, who, what, why, decision -- no references, rules or ids.
    for e in answer.access_events:
        assert e.HasField("event_time") and e.purpose != common_pb2.PURPOSE_UNSPECIFIED
        assert not e.record_refs and not e.rule_ids and not e.name and not e.principal
        assert not e.canonical_entry and not e.HasField("leaf_index")
    assert token not in answer.SerializeToString().decode("latin-1")
    # The lookup itself is journaled (naming the person's pseudonym, never the token)...
    [lookup] = [r for r in rows(env) if r["method"].endswith("/ListPersonAccesses")]
    assert (lookup["member_id"], lookup["purpose"], lookup["record_count"]) == (
        "cpam-audit",
        "data_subject_request",
        3,
    )
    # ... so it shows in the person's own list next time.
    again = await journal.ListPersonAccesses(
        journal_pb2.ListPersonAccessesRequest(purpose=DSR, beneficiary_token=token)
    )
    assert [e.method for e in again.access_events][-1] == "ListPersonAccesses"
    # The token is nowhere: not in any table, not in any log line.
    await settle(env)
    with env.db.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'select * from "{table}"')):
                assert token not in repr(tuple(row)), table
    assert token not in repr(logs)


async def test_person_lookup_finds_accesses_recorded_under_an_older_key_version(
    gateway_factory: GatewayFactory, journal_pki: Path, tmp_path: Path
) -> None:
    ring = tmp_path / "keys" / "pseudonym"  # the folder the gateway's settings name
    init_ring(ring, kid="k2025")
    old = Rekeyer(load_ring(ring)).rekey(token1(NIR_P))
    rotate_ring(ring, kid="k2026")
    env = await start_journal_gateway(gateway_factory, journal_pki)
    new = pseudonym(env, NIR_P)
    assert old != new and old.startswith("k2025:") and new.startswith("k2026:")
    cover(env, "cpam-audit", old, new)
    before, after = write(env, access("cpam-75", subjects=[old]), access("cpam-75", subjects=[new]))
    answer = await stub(env, "cpam-audit").ListPersonAccesses(
        journal_pb2.ListPersonAccessesRequest(purpose=DSR, beneficiary_token=token1(NIR_P))
    )
    assert len(answer.access_events) == 2 and before < after


async def test_amc_officer_person_lookup_never_shows_another_amc_access(
    env: GatewayEnv,
) -> None:
    p = pseudonym(env, NIR_P)
    cover(env, "mut-gamma", p)
    write(env, access("mut-alpha", "CheckClaim", subjects=[p]), access("cpam-75", subjects=[p]))
    answer = await stub(env, "mut-gamma").ListPersonAccesses(
        journal_pb2.ListPersonAccessesRequest(purpose=DSR, beneficiary_token=token1(NIR_P))
    )
    assert [e.member for e in answer.access_events] == ["members/cpam-75"]


async def test_person_lookup_pages_are_bound_to_the_person_and_do_not_carry_the_token(
    env: GatewayEnv,
) -> None:
    p = pseudonym(env, NIR_P)
    cover(env, "cpam-audit", p)
    write(env, *(access("cpam-75", subjects=[p]) for _ in range(5)))
    journal = stub(env, "cpam-audit")
    token = token1(NIR_P)
    first = await journal.ListPersonAccesses(
        journal_pb2.ListPersonAccessesRequest(purpose=DSR, beneficiary_token=token, page_size=2)
    )
    assert first.next_page_token and token not in first.next_page_token
    assert p not in first.next_page_token  # nor the stored pseudonym
    seen = [(e.member, e.method) for e in first.access_events]
    request = journal_pb2.ListPersonAccessesRequest(
        purpose=DSR, beneficiary_token=token, page_size=2, page_token=first.next_page_token
    )
    while request.page_token:
        page = await journal.ListPersonAccesses(request)
        seen.extend((e.member, e.method) for e in page.access_events)
        request.page_token = page.next_page_token
    # The five accesses, then the officer's own earlier lookups of this person (journaled).
    assert seen[:5] == [("members/cpam-75", "GetSuspicion")] * 5
    assert set(seen[5:]) == {("members/cpam-audit", "ListPersonAccesses")}
    error = await _refused(
        journal.ListPersonAccesses(
            journal_pb2.ListPersonAccessesRequest(
                purpose=DSR, beneficiary_token=token1(NIR_Q), page_token=first.next_page_token
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["page_token"]


@pytest.mark.parametrize("bad", ["", "short", "A" * 42 + "=", "+" * 43, NIR_P])
async def test_malformed_beneficiary_token_is_invalid_argument_and_never_echoed(
    env: GatewayEnv, bad: str
) -> None:
    error = await _refused(
        stub(env, "cpam-audit").ListPersonAccesses(
            journal_pb2.ListPersonAccessesRequest(purpose=DSR, beneficiary_token=bad)
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["beneficiary_token"]
    if bad:
        assert bad not in (error.details() or "")
    [event] = rows(env)
    assert (event["decision"], event["outcome"]) == ("allow", "INVALID_ARGUMENT")
