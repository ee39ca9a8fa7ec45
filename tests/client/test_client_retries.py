"""Retries: transient failures re-sent under the same request id, never duplicated; nothing
else is retried."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from gateway.client import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
)
from gateway.client._base import new_request_id
from tests.client._proxy import TcpProxy
from tests.client._support import NIR, SUSPICION, count, outcomes, request_ids
from tests.client.conftest import FaultInterceptor, Sdk, SdkFactory

LOST = grpc.StatusCode.UNAVAILABLE


async def test_answer_lost_after_commit_is_retried_with_the_same_request_id_one_record(
    fault_injection: FaultInterceptor, sdk_factory: SdkFactory
) -> None:
    first_answers = []

    def lose_the_first_answer(request: object, response: object) -> grpc.StatusCode | None:
        first_answers.append(response)
        return LOST if len(first_answers) == 1 else None

    fault_injection.after_unary["CreateSuspicion"] = lose_the_first_answer
    sdk = await sdk_factory()
    created = await sdk.client("cpam-75").submit_suspicion(nir=NIR, **SUSPICION)
    assert count(sdk.env, "suspicions") == 1
    assert created == first_answers[0]  # the replay is the answer the client never got
    assert outcomes(sdk.env, "CreateSuspicion") == ["OK", "OK_REPLAYED"]
    [retry] = sdk.retries
    assert retry.error.code == grpc.StatusCode.UNAVAILABLE and retry.method == "CreateSuspicion"
    sent = [request.request_id for _, request in fault_injection.seen]
    assert len(sent) == 2 and sent[0] == sent[1] == retry.request_id
    assert request_ids(sdk.env, "CreateSuspicion") == sent


async def test_connection_cut_after_commit_is_retried_without_a_duplicate(
    sdk: Sdk, proxy: TcpProxy
) -> None:
    address = await proxy.start(sdk.env.target)
    # Cut the connection instead of forwarding the first bytes the gateway sends back once the
    # suspicion is committed: the client never receives that answer.
    proxy.drop_server_chunk = lambda chunk: proxy.dropped == 0 and count(sdk.env, "suspicions") > 0
    client = sdk.client("cpam-75", address=address)
    created = await client.submit_suspicion(nir=NIR, **SUSPICION)
    assert proxy.dropped == 1 and proxy.connections == 2
    assert count(sdk.env, "suspicions") == 1
    assert outcomes(sdk.env, "CreateSuspicion") == ["OK", "OK_REPLAYED"]
    assert [r.error.code for r in sdk.retries] == [grpc.StatusCode.UNAVAILABLE]
    assert await client.get_suspicion(created.name, purpose="control") == created


async def test_a_lost_transition_answer_moves_the_suspicion_once(
    fault_injection: FaultInterceptor, sdk_factory: SdkFactory
) -> None:
    seen: list[object] = []
    fault_injection.after_unary["TransitionSuspicion"] = lambda req, resp: (
        seen.append(resp) or (LOST if len(seen) == 1 else None)
    )
    sdk = await sdk_factory()
    client = sdk.client("cpam-75")
    created = await client.submit_suspicion(nir=NIR, **SUSPICION)
    moved = await client.transition_suspicion(
        created.name, "qualified", "Contrôle engagé.", purpose="control"
    )
    assert moved == seen[0] and len(moved.status_history) == 1
    assert count(sdk.env, "suspicion_transitions") == 1
    assert outcomes(sdk.env, "TransitionSuspicion") == ["OK", "OK_REPLAYED"]


async def test_permission_denied_is_not_retried(sdk: Sdk) -> None:
    # current-law: no text lets an AMC report to an AMO through the gateway.
    client = sdk.client("mut-alpha")
    with pytest.raises(PermissionDeniedError) as e:
        await client.submit_suspicion(nir=NIR, **SUSPICION)
    assert e.value.rule_ids and e.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert sdk.retries == [] and outcomes(sdk.env, "CreateSuspicion") == ["PERMISSION_DENIED"]
    assert count(sdk.env, "suspicions") == 0


async def test_invalid_argument_is_not_retried_and_names_the_field(sdk: Sdk) -> None:
    client = sdk.client("cpam-75")
    with pytest.raises(InvalidArgumentError) as e:
        await client.submit_suspicion(nir=NIR, **{**SUSPICION, "estimated_amount_cents": -5})
    assert "suspicion.estimated_amount_cents" in [v.field for v in e.value.field_violations]
    assert sdk.retries == [] and outcomes(sdk.env, "CreateSuspicion") == ["INVALID_ARGUMENT"]
    assert count(sdk.env, "suspicions") == 0


async def test_reused_request_id_for_another_request_is_failed_precondition_not_retried(
    sdk: Sdk,
) -> None:
    client = sdk.client("cpam-75")
    request_id = new_request_id()
    await client.submit_suspicion(nir=NIR, request_id=request_id, **SUSPICION)
    with pytest.raises(FailedPreconditionError) as e:
        await client.submit_suspicion(
            nir=NIR, request_id=request_id, **{**SUSPICION, "estimated_amount_cents": 1}
        )
    assert e.value.reason == "REQUEST_ID_REUSED" and e.value.request_id == request_id
    assert sdk.retries == [] and count(sdk.env, "suspicions") == 1


async def test_an_unknown_suspicion_is_not_found_and_not_retried(sdk: Sdk) -> None:
    with pytest.raises(NotFoundError) as e:
        await sdk.client("cpam-75").get_suspicion(
            "suspicions/s_aaaaaaaaaaaaaaaaaaaaaaaaaa", purpose="control"
        )
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert sdk.retries == [] and outcomes(sdk.env, "GetSuspicion") == ["NOT_FOUND"]


async def test_rate_limit_is_retried_after_the_servers_retry_delay(
    sdk_factory: SdkFactory,
) -> None:
    sdk = await sdk_factory(rate_limit_per_s=2.0, rate_limit_burst=1)
    client = sdk.client(
        "mut-alpha", retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    )
    await client.get_self()
    me = await client.get_self()  # over the burst: RESOURCE_EXHAUSTED, then retried
    assert me.name == "members/mut-alpha"
    [retry] = sdk.retries
    assert retry.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry.delay_s >= 1.0  # RetryInfo.retry_delay honoured over the shorter backoff
    assert outcomes(sdk.env, "GetSelf") == ["OK", "RESOURCE_EXHAUSTED", "OK"]


async def test_an_attempt_past_its_own_deadline_is_retried_within_the_overall_one(
    fault_injection: FaultInterceptor, sdk_factory: SdkFactory
) -> None:
    held, release = [], asyncio.Event()

    async def hold_the_first_attempt(request: object) -> None:
        held.append(request)
        if len(held) == 1:
            await release.wait()  # the gateway "hangs" on this attempt until the test ends

    fault_injection.before_unary["CreateSuspicion"] = hold_the_first_attempt
    sdk = await sdk_factory()
    client = sdk.client("cpam-75", attempt_timeout=0.5, timeout=20.0)
    try:
        created = await client.submit_suspicion(nir=NIR, **SUSPICION)
    finally:
        release.set()
    assert created.name.startswith("suspicions/")
    assert [r.error.code for r in sdk.retries] == [grpc.StatusCode.DEADLINE_EXCEEDED]
    assert len(held) == 2 and held[0].request_id == held[1].request_id  # type: ignore[attr-defined]
    assert count(sdk.env, "suspicions") == 1 and outcomes(sdk.env, "CreateSuspicion")[0] == "OK"
