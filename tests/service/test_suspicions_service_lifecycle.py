"""SuspicionService over mTLS: submit, read, lifecycle, distribution, retraction, clearance.

Real Cedar bundles throughout (current-law unless a test says otherwise), SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from gateway._proto.vigie.v1 import common_pb2
from gateway.server._policy import EnginePolicyHook
from tests.service._status import error_info
from tests.service._suspicions_service_helpers import (
    CONTROL,
    EVIDENCE,
    FACTS,
    TOKEN_B1,
    TOKEN_B2,
    Exchange,
    S,
    as_list,
    count,
    journal,
    rows,
    rpc_error,
    suspicion_pb,
)
from tests.service.conftest import GatewayFactory


@pytest.fixture
async def ex(gateway_factory: GatewayFactory) -> Exchange:
    return Exchange(await gateway_factory(policy=EnginePolicyHook.load("current-law")))


async def test_amo_submission_is_stored_sealed_rekeyed_and_returned_in_full(ex: Exchange) -> None:
    created = await ex.create("cpam-75")
    assert created.name.startswith("suspicions/s_")
    assert created.status == S.SUSPICION_STATUS_SUBMITTED
    assert created.facts_summary == FACTS and list(created.evidence_refs) == EVIDENCE
    assert created.case_reference == "CPAM75/2026:0042"
    assert created.submitter == "members/cpam-75"
    assert created.subject.beneficiary_concerned and created.subject.beneficiary_token == ""
    assert created.alert_level == common_pb2.ALERT_LEVEL_HIGH
    assert created.minimisation_view == "current-law/suspicion/AMO/control"
    assert created.HasField("expire_time")  # submitted: qualify within six months
    assert await ex.get("cpam-75", created.name) == created
    [row] = rows(ex.env, "select * from suspicions")
    assert row["subject_beneficiary"] == ex.pseudonym(TOKEN_B1) != TOKEN_B1
    assert FACTS not in row["facts_sealed"] and row["seal_key_id"]
    assert "doc:2026/0001" not in row["evidence_sealed"]
    dump = repr(rows(ex.env, "select * from journal_personal")) + repr(journal(ex.env))
    assert TOKEN_B1 not in dump and FACTS not in dump


async def test_idempotent_retry_returns_the_same_suspicion_and_stores_one_row(
    ex: Exchange,
) -> None:
    request_id = str(uuid.uuid4())
    first = await ex.create("cpam-75", request_id=request_id)
    again = await ex.create("cpam-75", request_id=request_id)
    assert again == first and count(ex.env, "suspicions") == 1
    outcomes = [e["outcome"] for e in journal(ex.env, "/CreateSuspicion")]
    assert outcomes == ["OK", "OK_REPLAYED"]


async def test_request_id_reused_for_another_suspicion_is_failed_precondition(
    ex: Exchange,
) -> None:
    request_id = str(uuid.uuid4())
    await ex.create("cpam-75", request_id=request_id)
    e = await rpc_error(ex.create("cpam-75", request_id=request_id, estimated_amount_cents=1))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(e).reason == "REQUEST_ID_REUSED"
    assert count(ex.env, "suspicions") == 1


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], S.SUSPICION_STATUS_CONFIRMED),  # submitted -> confirmed skips qualification
        ([], S.SUSPICION_STATUS_CLOSED),
        ([], S.SUSPICION_STATUS_SUBMITTED),
        ([S.SUSPICION_STATUS_QUALIFIED], S.SUSPICION_STATUS_SUBMITTED),
        ([S.SUSPICION_STATUS_QUALIFIED], S.SUSPICION_STATUS_CLOSED),
        ([S.SUSPICION_STATUS_DISMISSED], S.SUSPICION_STATUS_QUALIFIED),
        ([S.SUSPICION_STATUS_DISMISSED, S.SUSPICION_STATUS_CLOSED], S.SUSPICION_STATUS_QUALIFIED),
    ],
)
async def test_illegal_transition_is_failed_precondition_and_changes_nothing(
    ex: Exchange, path: list[int], target: int
) -> None:
    created = await ex.create("cpam-75")
    for step in path:
        await ex.move("cpam-75", created.name, step)
    before = rows(ex.env, "select status, updated_at from suspicions")
    e = await rpc_error(ex.move("cpam-75", created.name, target))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(e).reason == "ILLEGAL_TRANSITION"
    assert rows(ex.env, "select status, updated_at from suspicions") == before
    assert count(ex.env, "suspicion_transitions") == len(path)
    assert journal(ex.env, "/TransitionSuspicion")[-1]["outcome"] == "FAILED_PRECONDITION"


async def test_status_history_records_who_when_and_why(ex: Exchange) -> None:
    created = await ex.create("cpam-75")
    moved = await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED, "Contrôle 12.")
    [change] = moved.status_history
    assert change.status == S.SUSPICION_STATUS_QUALIFIED
    assert change.member == "members/cpam-75" and change.reason == "Contrôle 12."
    assert "cpam-75" in change.principal  # the certificate subject
    assert change.change_time.ToDatetime() >= created.create_time.ToDatetime()
    [row] = rows(ex.env, "select reason_sealed from suspicion_transitions")
    assert "Contrôle 12." not in row["reason_sealed"]  # sealed at rest


async def test_qualification_shares_with_the_covering_amc_minimised_with_its_own_reference(
    ex: Exchange,
) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    feed = ex.stream("mut-alpha")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    shared = await feed.next()
    assert shared.kind == S.NOTIFICATION_KIND_SHARED
    assert shared.name == f"members/mut-alpha/notifications/{shared.sequence}"
    got = shared.suspicion
    assert got.name == created.name and got.status == S.SUSPICION_STATUS_QUALIFIED
    assert (
        got.subject.beneficiary_concerned
        and got.subject.provider_rpps == created.subject.provider_rpps
    )
    # L.114-9 says a procedure is under way: no facts, amounts, evidence or history.
    assert got.facts_summary == "" and got.estimated_amount_cents == 0
    assert list(got.evidence_refs) == [] and list(got.status_history) == []
    assert got.alert_level == common_pb2.ALERT_LEVEL_UNSPECIFIED  # derived from the amount
    assert got.case_reference.startswith("r_")  # its own reference, never the submitter's
    [recipient] = rows(ex.env, "select member_id, reference from suspicion_recipients")
    assert recipient == {"member_id": "mut-alpha", "reference": got.case_reference}
    read = await ex.get("mut-alpha", created.name)
    assert read.case_reference == got.case_reference and read.facts_summary == ""
    feed.cancel()


async def test_recipient_attaches_its_case_reference_when_acknowledging(ex: Exchange) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    feed = ex.stream("mut-alpha")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    shared = await feed.next()
    acked = await ex.ack("mut-alpha", shared.name, case_reference="MUTA-2026-7")
    assert acked.HasField("acknowledge_time") and acked.WhichOneof("payload") is None
    assert (await ex.get("mut-alpha", created.name)).case_reference == "MUTA-2026-7"
    assert (await ex.get("cpam-75", created.name)).case_reference == "CPAM75/2026:0042"
    feed.cancel()


async def test_retraction_reaches_every_recipient_including_one_offline_when_issued(
    ex: Exchange,
) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    ex.cover("mut-beta", TOKEN_B1)
    created = await ex.create("cpam-75")
    online = ex.stream("mut-alpha")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    assert (await online.next()).kind == S.NOTIFICATION_KIND_SHARED
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_DISMISSED, "Facturation conforme.")
    retraction = await online.next()  # live
    assert retraction.kind == S.NOTIFICATION_KIND_RETRACTED
    assert retraction.suspicion == S.Suspicion(
        name=created.name, status=S.SUSPICION_STATUS_DISMISSED, minimisation_view="retraction"
    )
    online.cancel()
    # mut-beta was never connected: it connects now and gets both, in order.
    late = ex.stream("mut-beta")
    kinds = [n.kind for n in await late.take(2)]
    assert kinds == [S.NOTIFICATION_KIND_SHARED, S.NOTIFICATION_KIND_RETRACTED]
    late.cancel()
    recipients = rows(
        ex.env,
        "select member_id, retracted_at, retraction_acknowledged_at from suspicion_recipients "
        "order by member_id",
    )
    assert [r["member_id"] for r in recipients] == ["mut-alpha", "mut-beta"]
    assert all(r["retracted_at"] is not None for r in recipients)
    assert all(r["retraction_acknowledged_at"] is None for r in recipients)
    await ex.ack("mut-alpha", retraction.name)
    [alpha] = rows(
        ex.env,
        "select retraction_acknowledged_at from suspicion_recipients where member_id = 'mut-alpha'",
    )
    assert alpha["retraction_acknowledged_at"] is not None
    acks = journal(ex.env, "/AcknowledgeNotification")
    assert [(a["member_id"], a["decision"], a["outcome"]) for a in acks] == [
        ("mut-alpha", "allow", "OK")
    ]
    assert created.name in as_list(acks[0]["record_refs"])


async def test_clearance_deletes_the_payload_at_once_in_every_table(ex: Exchange) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    feed = ex.stream("mut-alpha")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED, "Motif A.")
    shared = await feed.next()
    await ex.ack("mut-alpha", shared.name, case_reference="MUTA-9")
    cleared = await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_CLEARED, "Motif B.")
    assert cleared.status == S.SUSPICION_STATUS_CLEARED
    assert cleared.facts_summary == "" and not cleared.subject.beneficiary_concerned
    assert list(cleared.evidence_refs) == [] and cleared.case_reference == ""
    [row] = rows(ex.env, "select * from suspicions")
    payload = (
        "subject_beneficiary",
        "subject_provider_rpps",
        "subject_provider_am_number",
        "subject_provider_finess",
        "facts_sealed",
        "evidence_sealed",
        "seal_key_id",
        "case_reference",
    )
    assert {k: row[k] for k in payload} == dict.fromkeys(payload)
    assert as_list(row["act_codes"]) == [] and row["erased_at"] is not None
    assert [r["reason_sealed"] for r in rows(ex.env, "select * from suspicion_transitions")] == [
        None,
        None,
    ]
    assert rows(ex.env, "select case_reference from suspicion_recipients") == [
        {"case_reference": None}
    ]
    shared_rows = rows(ex.env, "select payload from notifications where kind = 'SHARED'")
    assert shared_rows == [{"payload": None}]
    retraction = await feed.next()
    assert retraction.suspicion.status == S.SUSPICION_STATUS_CLEARED
    feed.cancel()


async def test_amc_recipient_may_read_but_not_move_an_amo_suspicion(ex: Exchange) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    e = await rpc_error(ex.move("mut-alpha", created.name, S.SUSPICION_STATUS_DISMISSED))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(e).metadata["rule_ids"] == "default-deny"
    assert rows(ex.env, "select status from suspicions") == [{"status": "qualified"}]


async def test_unrelated_amc_moving_a_suspicion_gets_not_found(ex: Exchange) -> None:
    created = await ex.create("cpam-75", subject=S.SuspicionSubject(beneficiary_token=TOKEN_B2))
    e = await rpc_error(ex.move("mut-beta", created.name, S.SUSPICION_STATUS_QUALIFIED))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    assert rows(ex.env, "select status from suspicions") == [{"status": "submitted"}]


async def test_transition_retry_replays_without_moving_twice(ex: Exchange) -> None:
    created = await ex.create("cpam-75")
    request = S.TransitionSuspicionRequest(
        purpose=CONTROL,
        request_id=str(uuid.uuid4()),
        name=created.name,
        status=S.SUSPICION_STATUS_QUALIFIED,
        reason="Contrôle.",
    )
    stub = ex.stub("cpam-75")
    first = await stub.TransitionSuspicion(request)
    assert await stub.TransitionSuspicion(request) == first
    assert count(ex.env, "suspicion_transitions") == 1


async def test_output_only_fields_of_a_submission_are_ignored(ex: Exchange) -> None:
    forged = suspicion_pb(
        name="suspicions/s_aaaaaaaaaaaaaaaaaaaaaaaaaa",
        status=S.SUSPICION_STATUS_CONFIRMED,
        submitter="members/mut-alpha",
    )
    forged.create_time.FromJsonString("2099-01-01T00:00:00Z")  # a date in the future
    reply = await ex.stub("cpam-75").CreateSuspicion(
        S.CreateSuspicionRequest(purpose=CONTROL, request_id=str(uuid.uuid4()), suspicion=forged)
    )
    assert reply.name != forged.name and reply.status == S.SUSPICION_STATUS_SUBMITTED
    assert reply.submitter == "members/cpam-75"
    assert reply.create_time.ToDatetime().year < 2099


async def test_every_call_allowed_or_refused_is_journaled_with_its_decision(ex: Exchange) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")  # allow
    await rpc_error(ex.create("mut-alpha"))  # deny: AMC -> AMO closed
    await ex.get("cpam-75", created.name)  # allow
    await rpc_error(ex.get("mut-beta", created.name))  # deny: hidden
    await ex.stub("mut-alpha").ListSuspicions(S.ListSuspicionsRequest(purpose=CONTROL))
    await rpc_error(
        ex.stub("mut-alpha").ListSuspicions(
            S.ListSuspicionsRequest(purpose=common_pb2.PURPOSE_AUDIT)
        )
    )
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)  # allow
    await rpc_error(ex.move("mut-alpha", created.name, S.SUSPICION_STATUS_DISMISSED))  # deny
    feed = ex.stream("mut-alpha")
    shared = await feed.next()
    feed.cancel()
    await ex.ack("mut-alpha", shared.name)  # allow
    await rpc_error(ex.ack("mut-beta", shared.name))  # not its feed
    got = [
        (e["method"].rsplit("/", 1)[-1], e["member_id"], e["decision"], e["outcome"])
        for e in journal(ex.env)
        if "SuspicionService" in e["method"]
    ]
    assert got == [
        ("CreateSuspicion", "cpam-75", "allow", "OK"),
        ("CreateSuspicion", "mut-alpha", "deny", "PERMISSION_DENIED"),
        ("GetSuspicion", "cpam-75", "allow", "OK"),
        ("GetSuspicion", "mut-beta", "deny", "NOT_FOUND"),
        ("ListSuspicions", "mut-alpha", "allow", "OK"),
        ("ListSuspicions", "mut-alpha", "deny", "PERMISSION_DENIED"),
        ("TransitionSuspicion", "cpam-75", "allow", "OK"),
        ("TransitionSuspicion", "mut-alpha", "deny", "PERMISSION_DENIED"),
        ("StreamNotifications", "mut-alpha", "allow", "STREAM_OPENED"),
        ("StreamNotifications", "mut-alpha", "allow", "OK"),
        ("AcknowledgeNotification", "mut-alpha", "allow", "OK"),
        ("AcknowledgeNotification", "mut-beta", "deny", "NOT_FOUND"),
    ]
    bundle = ex.env.policy.bundle_hash
    assert all(
        r["bundle_hash"] == bundle
        for r in rows(ex.env, "select bundle_hash, decision from journal_events")
        if r["decision"] == "allow"
    )
