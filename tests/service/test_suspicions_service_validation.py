"""Bad input on every SuspicionService field: INVALID_ARGUMENT, the field path, nothing stored.

The suspicion a member submits has no client-supplied date (``create_time`` and the other
output-only fields are ignored, see the lifecycle tests); dates are validated where a request
carries them: the listing's ``create_time_range``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from gateway._proto.vigie.v1 import common_pb2
from gateway.server._policy import EnginePolicyHook
from tests.service._status import field_violations
from tests.service._suspicions_service_helpers import (
    CONTROL,
    TOKEN_B1,
    Exchange,
    S,
    count,
    journal,
    rpc_error,
    suspicion_pb,
)
from tests.service.conftest import GatewayFactory

NIR = "253072B07300470"  # a valid NIR (DOMAIN.md §2 test vector)
STORES = ("suspicions", "suspicion_transitions", "notifications", "idempotency_keys")


@pytest.fixture
async def ex(gateway_factory: GatewayFactory) -> Exchange:
    return Exchange(await gateway_factory(policy=EnginePolicyHook.load("current-law")))


def _subject(**kw: str) -> Any:
    return {"subject": S.SuspicionSubject(**kw)}


CREATE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no-subject-at-all", _subject(), "suspicion.subject"),
    ("token-is-a-nir", _subject(beneficiary_token=NIR), "suspicion.subject.beneficiary_token"),
    ("token-too-short", _subject(beneficiary_token="abc"), "suspicion.subject.beneficiary_token"),
    (
        "token-not-base64url",
        _subject(beneficiary_token="+" * 43),
        "suspicion.subject.beneficiary_token",
    ),
    ("rpps-bad-luhn", _subject(provider_rpps="10000000001"), "suspicion.subject.provider_rpps"),
    ("rpps-not-digits", _subject(provider_rpps="1000000000A"), "suspicion.subject.provider_rpps"),
    (
        "am-number-8-digits",
        _subject(provider_am_number="12345678"),
        "suspicion.subject.provider_am_number",
    ),
    (
        "finess-malformed",
        _subject(provider_finess="ABCDEFGHI"),
        "suspicion.subject.provider_finess",
    ),
    ("sector-unspecified", {"sector": common_pb2.SECTOR_UNSPECIFIED}, "suspicion.sector"),
    ("sector-unknown-number", {"sector": 42}, "suspicion.sector"),
    ("fraud-type-unspecified", {"fraud_type": 0}, "suspicion.fraud_type"),
    ("fraud-type-unknown-number", {"fraud_type": 99}, "suspicion.fraud_type"),
    ("facts-empty", {"facts_summary": ""}, "suspicion.facts_summary"),
    ("facts-blank", {"facts_summary": "   "}, "suspicion.facts_summary"),
    ("facts-too-long", {"facts_summary": "x" * 4001}, "suspicion.facts_summary"),
    ("facts-control-character", {"facts_summary": "a\x00b"}, "suspicion.facts_summary"),
    ("facts-hold-a-nir", {"facts_summary": f"assuré {NIR}"}, "suspicion.facts_summary"),
    (
        "facts-hold-a-spaced-nir",
        {"facts_summary": "NIR 2 53 07 2B 073 004 70"},
        "suspicion.facts_summary",
    ),
    ("amount-negative", {"estimated_amount_cents": -1}, "suspicion.estimated_amount_cents"),
    (
        "amount-above-the-ceiling",
        {"estimated_amount_cents": 100_000_000_001},
        "suspicion.estimated_amount_cents",
    ),
    (
        "evidence-too-many",
        {"evidence_refs": [f"d{i}" for i in range(21)]},
        "suspicion.evidence_refs",
    ),
    ("evidence-item-too-long", {"evidence_refs": ["ok", "x" * 129]}, "suspicion.evidence_refs[1]"),
    ("evidence-item-empty", {"evidence_refs": [""]}, "suspicion.evidence_refs[0]"),
    ("evidence-item-holds-a-nir", {"evidence_refs": [NIR]}, "suspicion.evidence_refs[0]"),
    ("case-reference-missing", {"case_reference": ""}, "suspicion.case_reference"),
    ("case-reference-too-long", {"case_reference": "a" * 65}, "suspicion.case_reference"),
    ("case-reference-with-space", {"case_reference": "CASE 1"}, "suspicion.case_reference"),
    ("case-reference-is-a-nir", {"case_reference": NIR}, "suspicion.case_reference"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "path"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES]
)
async def test_bad_submission_field_is_invalid_argument_naming_it_and_stores_nothing(
    ex: Exchange, case: str, overrides: dict[str, Any], path: str
) -> None:
    e = await rpc_error(ex.create("cpam-75", **overrides))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    fields = [f for f, _ in field_violations(e)]
    assert path in fields, fields
    assert all(f.startswith("suspicion") for f in fields)
    for table in STORES:
        assert count(ex.env, table) == 0, table
    [event] = journal(ex.env, "/CreateSuspicion")
    assert (event["decision"], event["outcome"]) == ("deny", "INVALID_ARGUMENT")
    detail = " ".join(d for _, d in field_violations(e)) + (e.details() or "")
    assert NIR not in detail and "x" * 50 not in detail  # rules, never the data


async def test_every_bad_field_is_reported_at_once(ex: Exchange) -> None:
    e = await rpc_error(
        ex.create("cpam-75", sector=0, fraud_type=0, facts_summary="", estimated_amount_cents=-5)
    )
    fields = {f for f, _ in field_violations(e)}
    assert {
        "suspicion.sector",
        "suspicion.fraud_type",
        "suspicion.facts_summary",
        "suspicion.estimated_amount_cents",
    } <= fields


REQUEST_CASES: list[tuple[str, Callable[[], Any], str]] = [
    (
        "request-without-suspicion",
        lambda: S.CreateSuspicionRequest(purpose=CONTROL, request_id=str(uuid.uuid4())),
        "suspicion",
    ),
    (
        "request-id-missing",
        lambda: S.CreateSuspicionRequest(purpose=CONTROL, suspicion=suspicion_pb()),
        "request_id",
    ),
    (
        "request-id-not-a-uuid",
        lambda: S.CreateSuspicionRequest(
            purpose=CONTROL, request_id="retry-1", suspicion=suspicion_pb()
        ),
        "request_id",
    ),
    (
        "purpose-missing",
        lambda: S.CreateSuspicionRequest(request_id=str(uuid.uuid4()), suspicion=suspicion_pb()),
        "purpose",
    ),
]


@pytest.mark.parametrize(("case", "make", "path"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
async def test_malformed_create_request_is_invalid_argument(
    ex: Exchange, case: str, make: Callable[[], Any], path: str
) -> None:
    e = await rpc_error(ex.stub("cpam-75").CreateSuspicion(make()))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    assert [f for f, _ in field_violations(e)] == [path]
    assert count(ex.env, "suspicions") == 0


def _ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


LIST_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("page-size-negative", {"page_size": -1}, "page_size"),
    ("page-token-forged", {"page_token": "bm90LWEtdG9rZW4"}, "page_token"),
    ("sector-unknown", {"sector": 9}, "sector"),
    ("status-unknown", {"status": 17}, "status"),
    ("level-unknown", {"minimum_alert_level": 8}, "minimum_alert_level"),
    (
        "range-ends-before-it-starts",
        {"create_time_range": {"start_time": _ts(2_000_000_000), "end_time": _ts(1_000_000_000)}},
        "create_time_range",
    ),
    (
        "range-start-out-of-range",
        {"create_time_range": {"start_time": _ts(999_999_999_999)}},
        "create_time_range.start_time",
    ),
]


@pytest.mark.parametrize(("case", "fields", "path"), LIST_CASES, ids=[c[0] for c in LIST_CASES])
async def test_bad_list_request_is_invalid_argument_naming_the_field(
    ex: Exchange, case: str, fields: dict[str, Any], path: str
) -> None:
    e = await rpc_error(
        ex.stub("cpam-75").ListSuspicions(S.ListSuspicionsRequest(purpose=CONTROL, **fields))
    )
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    assert path in [f for f, _ in field_violations(e)]


async def test_page_token_reused_with_other_filters_is_refused(ex: Exchange) -> None:
    for _ in range(2):
        await ex.create("cpam-75")
    stub = ex.stub("cpam-75")
    first = await stub.ListSuspicions(S.ListSuspicionsRequest(purpose=CONTROL, page_size=1))
    assert first.next_page_token
    e = await rpc_error(
        stub.ListSuspicions(
            S.ListSuspicionsRequest(
                purpose=CONTROL,
                page_size=1,
                page_token=first.next_page_token,
                sector=common_pb2.SECTOR_AUDIO,
            )
        )
    )
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(e)[0][0] == "page_token"


@pytest.mark.parametrize(
    "name",
    ["", "s_aaaaaaaaaaaaaaaaaaaaaaaaaa", "suspicions/", "suspicions/s_AAAA", "suspicions/../x"],
)
async def test_malformed_suspicion_name_is_invalid_argument(ex: Exchange, name: str) -> None:
    e = await rpc_error(ex.get("cpam-75", name))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(e) == [("name", "must be suspicions/{suspicion}")]


TRANSITION_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("status-unspecified", {"status": S.SUSPICION_STATUS_UNSPECIFIED}, "status"),
    ("status-unknown", {"status": 99}, "status"),
    ("reason-missing", {"reason": ""}, "reason"),
    ("reason-blank", {"reason": "  "}, "reason"),
    ("reason-too-long", {"reason": "r" * 1001}, "reason"),
    ("reason-holds-a-nir", {"reason": f"assuré {NIR}"}, "reason"),
    ("name-malformed", {"name": "suspicions/1"}, "name"),
]


@pytest.mark.parametrize(
    ("case", "fields", "path"), TRANSITION_CASES, ids=[c[0] for c in TRANSITION_CASES]
)
async def test_bad_transition_is_invalid_argument_and_moves_nothing(
    ex: Exchange, case: str, fields: dict[str, Any], path: str
) -> None:
    created = await ex.create("cpam-75")
    values: dict[str, Any] = {
        "purpose": CONTROL,
        "request_id": str(uuid.uuid4()),
        "name": created.name,
        "status": S.SUSPICION_STATUS_QUALIFIED,
        "reason": "Contrôle.",
        **fields,
    }
    e = await rpc_error(
        ex.stub("cpam-75").TransitionSuspicion(S.TransitionSuspicionRequest(**values))
    )
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    assert [f for f, _ in field_violations(e)] == [path]
    assert count(ex.env, "suspicion_transitions") == 0
    assert count(ex.env, "notifications") == 0


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("members/cpam-75/notifications/0", grpc.StatusCode.INVALID_ARGUMENT),
        ("members/cpam-75/notifications/x", grpc.StatusCode.INVALID_ARGUMENT),
        ("notifications/1", grpc.StatusCode.INVALID_ARGUMENT),
        ("members/cpam-75/notifications/99", grpc.StatusCode.NOT_FOUND),
        ("members/mut-alpha/notifications/1", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_bad_or_foreign_notification_name_on_acknowledge(
    ex: Exchange, name: str, code: grpc.StatusCode
) -> None:
    e = await rpc_error(ex.ack("cpam-75", name))
    assert e.code() == code
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert [f for f, _ in field_violations(e)] == ["name"]


async def test_bad_case_reference_on_acknowledge_is_invalid_argument_and_records_nothing(
    ex: Exchange,
) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    feed = ex.stream("mut-alpha")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    shared = await feed.next()
    feed.cancel()
    for bad in ("has space", NIR, "z" * 65):
        e = await rpc_error(ex.ack("mut-alpha", shared.name, case_reference=bad))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in field_violations(e)] == ["case_reference"]
    assert [a["acknowledged_at"] for a in _acks(ex)] == [None]


def _acks(ex: Exchange) -> list[dict[str, Any]]:
    from tests.service._suspicions_service_helpers import rows

    return rows(ex.env, "select acknowledged_at from notifications")


async def test_case_reference_on_a_retraction_is_invalid_argument(ex: Exchange) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_DISMISSED)
    feed = ex.stream("mut-alpha")
    _, retraction = await feed.take(2)
    feed.cancel()
    e = await rpc_error(ex.ack("mut-alpha", retraction.name, case_reference="MUTA-1"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(e)] == ["case_reference"]


async def test_negative_resume_cursor_is_invalid_argument(ex: Exchange) -> None:
    feed = ex.stream("mut-alpha", after=-1)
    e = await rpc_error(feed.next())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(e)] == ["after_sequence"]
