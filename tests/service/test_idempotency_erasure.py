"""Answers kept for idempotent retries are sealed and erased with the person's clearance.

The answer to an AMO's CreateSuspicion carries the facts summary (its submitter's view): kept
in clear, it would outlive "deleted immediately when the person is cleared" (draft
L.114-9-1; CNIL AU-039).
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from gateway.server._policy import EnginePolicyHook
from tests.service._status import error_info
from tests.service._suspicions_service_helpers import FACTS, Exchange, S, rows
from tests.service.conftest import GatewayFactory


@pytest.fixture
async def ex(gateway_factory: GatewayFactory) -> Exchange:
    return Exchange(await gateway_factory(policy=EnginePolicyHook.load("current-law")))


def _stored_answers(ex: Exchange) -> bytes:
    return b"".join(bytes(r["response"]) for r in rows(ex.env, "select * from idempotency_keys"))


async def test_stored_answers_never_hold_the_facts_in_clear(ex: Exchange) -> None:
    created = await ex.create("cpam-75")
    assert created.facts_summary == FACTS  # the submitter's own view carries the facts
    assert FACTS.encode() not in _stored_answers(ex)
    assert FACTS.split(";")[0].encode() not in _stored_answers(ex)


async def test_clearance_erases_the_answers_and_a_late_retry_is_refused(ex: Exchange) -> None:
    request_id = str(uuid.uuid4())
    created = await ex.create("cpam-75", request_id=request_id)
    replay = await ex.create("cpam-75", request_id=request_id)  # a retry: the same answer
    assert replay == created
    await ex.move(
        "cpam-75", created.name, S.SUSPICION_STATUS_CLEARED, "Personne mise hors de cause."
    )
    answers = rows(
        ex.env,
        "select method, response from idempotency_keys where subject_ref = :r",
        r=created.name,
    )
    create_answers = [a for a in answers if a["method"].endswith("/CreateSuspicion")]
    assert create_answers and all(bytes(a["response"]) == b"" for a in create_answers)
    # A retry of the create arriving after the clearance must not bring the suspicion back.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await ex.create("cpam-75", request_id=request_id)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(e.value).reason == "ANSWER_ERASED"
    assert len(rows(ex.env, "select id from suspicions")) == 1
