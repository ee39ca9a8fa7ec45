"""Following notifications: resume from the last processed sequence, acknowledge each one,
reconnect after a disconnect, never process one twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway._proto.vigie.v1 import suspicions_pb2
from gateway.client import FileCursor, MemoryCursor, PermissionDeniedError, RetryPolicy
from gateway.client._api_claims import VigieClient
from tests.client._proxy import TcpProxy
from tests.client._support import NIR, SUSPICION, count, cover, outcomes, rows
from tests.client.conftest import Sdk

S = suspicions_pb2
PATIENT = RetryPolicy(max_attempts=8, initial_backoff_s=0.05, max_backoff_s=0.5)


async def _share(sdk: Sdk, n: int) -> list[str]:
    """cpam-75 submits and qualifies ``n`` suspicions about a person mut-alpha covers."""
    amo = sdk.client("cpam-75")
    assert amo.pseudonymiser is not None
    cover(sdk.env, "mut-alpha", amo.pseudonymiser.token(NIR))
    names = []
    for i in range(n):
        created = await amo.submit_suspicion(
            nir=NIR, **{**SUSPICION, "case_reference": f"CPAM75/2026:{i}"}
        )
        await amo.transition_suspicion(created.name, "qualified", "Contrôle.", purpose="control")
        names.append(created.name)
    return names


def _acknowledged(sdk: Sdk) -> list[int]:
    found = rows(
        sdk.env,
        "select sequence from notifications where member_id = 'mut-alpha' "
        "and acknowledged_at is not null order by sequence",
    )
    return [r["sequence"] for r in found]


async def test_processed_notifications_are_acknowledged_and_resumed_from_the_cursor_file(
    sdk: Sdk, tmp_path: Path
) -> None:
    names = await _share(sdk, 3)
    cursor = FileCursor(tmp_path / "state" / "cursor.json")
    seen: list[suspicions_pb2.Notification] = []

    def handle(n: suspicions_pb2.Notification) -> str:
        seen.append(n)
        return f"MUTA-{n.sequence}"  # the member's own case reference

    first = sdk.client("mut-alpha")
    assert (
        await first.follow_notifications(
            handle, purpose="control", cursor=cursor, max_notifications=2
        )
        == 2
    )
    assert [n.suspicion.name for n in seen] == names[:2]
    assert cursor.load() == seen[1].sequence and _acknowledged(sdk) == [n.sequence for n in seen]
    await first.close()

    # A restart: a new client with the same cursor file gets only what it had not processed.
    again = sdk.client("mut-alpha")
    assert (
        await again.follow_notifications(
            handle, purpose="control", cursor=cursor, max_notifications=1
        )
        == 1
    )
    assert [n.suspicion.name for n in seen] == names
    assert [n.kind for n in seen] == [S.NOTIFICATION_KIND_SHARED] * 3
    assert _acknowledged(sdk) == [n.sequence for n in seen] and cursor.load() == seen[2].sequence
    assert outcomes(sdk.env, "AcknowledgeNotification") == ["OK"] * 3
    shared = await again.get_suspicion(names[2], purpose="control")
    assert shared.case_reference == f"MUTA-{seen[2].sequence}"


async def test_resume_from_a_caller_kept_sequence(sdk: Sdk) -> None:
    await _share(sdk, 3)
    client = sdk.client("mut-alpha")
    seen: list[int] = []
    all_three = await _take(client, 3)
    cursor = MemoryCursor(all_three[0].sequence)  # the caller processed the first one already
    assert (
        await client.follow_notifications(
            lambda n: seen.append(n.sequence), purpose="control", cursor=cursor, max_notifications=2
        )
        == 2
    )
    assert seen == [n.sequence for n in all_three[1:]]
    assert cursor.sequence == all_three[2].sequence


async def _take(client: VigieClient, n: int) -> list[suspicions_pb2.Notification]:
    out = []
    async for notification in client.stream_notifications(purpose="control", after_sequence=0):
        out.append(notification)
        if len(out) == n:
            break
    return out


async def test_a_disconnect_reconnects_and_resumes_without_processing_twice(
    sdk: Sdk, proxy: TcpProxy
) -> None:
    await _share(sdk, 3)
    address = await proxy.start(sdk.env.target)
    client = sdk.client("mut-alpha", address=address, retry=PATIENT)
    seen: list[int] = []

    def handle(n: suspicions_pb2.Notification) -> None:
        seen.append(n.sequence)
        if len(seen) == 1:
            proxy.drop_all()  # the network fails while the first one is being processed

    reconnects: list[object] = []
    processed = await client.follow_notifications(
        handle,
        purpose="control",
        cursor=MemoryCursor(),
        max_notifications=3,
        on_reconnect=reconnects.append,
    )
    assert processed == 3 and len(seen) == 3 == len(set(seen))
    assert seen == sorted(seen) and proxy.connections >= 2 and reconnects
    assert _acknowledged(sdk) == seen
    # Each acknowledgement is one logical write: retried under its request id, stored once.
    acks = outcomes(sdk.env, "AcknowledgeNotification")
    assert acks.count("OK") == 3 and set(acks) <= {"OK", "OK_REPLAYED"}


async def test_a_failing_handler_stops_the_follow_and_its_notification_comes_back(
    sdk: Sdk,
) -> None:
    await _share(sdk, 2)
    client = sdk.client("mut-alpha")
    cursor = MemoryCursor()

    def broken(n: suspicions_pb2.Notification) -> None:
        raise RuntimeError("the member's case system is down")

    with pytest.raises(RuntimeError, match="case system is down"):
        await client.follow_notifications(broken, purpose="control", cursor=cursor)
    assert cursor.sequence is None and _acknowledged(sdk) == []
    seen: list[int] = []
    await client.follow_notifications(
        lambda n: seen.append(n.sequence), purpose="control", cursor=cursor, max_notifications=2
    )
    assert len(seen) == 2 and _acknowledged(sdk) == seen  # first unacknowledged first


async def test_stop_ends_the_follow_while_it_waits(sdk: Sdk) -> None:
    await _share(sdk, 1)
    client = sdk.client("mut-alpha")
    stop = asyncio.Event()
    seen: list[int] = []

    async def handle(n: suspicions_pb2.Notification) -> None:
        seen.append(n.sequence)
        stop.set()

    assert await client.follow_notifications(handle, purpose="control", stop=stop) == 1
    assert len(seen) == 1 and count(sdk.env, "notifications", "acknowledged_at is not null") == 1

    idle = asyncio.Event()
    waiting = asyncio.ensure_future(
        client.follow_notifications(handle, purpose="control", stop=idle)
    )
    await _until_streaming(sdk)
    idle.set()
    assert await asyncio.wait_for(waiting, 10) == 0


async def _until_streaming(sdk: Sdk) -> None:
    from tests.client._support import wait_until

    await wait_until(lambda: outcomes(sdk.env, "StreamNotifications").count("STREAM_OPENED") >= 2)


async def test_a_feed_the_policy_refuses_is_permission_denied_not_retried(sdk: Sdk) -> None:
    client = sdk.client("mut-alpha")
    with pytest.raises(PermissionDeniedError):
        await client.follow_notifications(lambda n: None, purpose="audit", max_reconnects=3)
    assert sdk.retries == []
