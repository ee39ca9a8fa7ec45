"""StreamNotifications over mTLS: resume, live follow, other replicas, alerts, restarts, ends.

No test pauses for a fixed time: each waits for the item or state it expects, with a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from gateway._proto.vigie.v1 import claims_pb2, common_pb2
from gateway.domain.suspicions import enqueue_notification
from gateway.server._policy import EnginePolicyHook
from gateway.store import Database
from tests.service._status import error_info
from tests.service._suspicions_service_helpers import (
    FRAUD_DETECTION,
    TOKEN_B1,
    Exchange,
    S,
    as_list,
    journal,
    rows,
    rpc_error,
    wait_until,
)
from tests.service.conftest import GatewayFactory, utcnow


@pytest.fixture
async def ex(gateway_factory: GatewayFactory) -> Exchange:
    return Exchange(await gateway_factory(policy=EnginePolicyHook.load("current-law")))


async def _shared_then_retracted(ex: Exchange) -> str:
    """mut-alpha covers B1; an AMO suspicion about B1 is qualified then dismissed."""
    ex.cover("mut-alpha", TOKEN_B1)
    created = await ex.create("cpam-75")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_DISMISSED)
    return created.name


def _alert(name: str = "alerts/a_one") -> claims_pb2.Alert:
    alert = claims_pb2.Alert(
        name=name,
        member_reference="MUTA-LINE-7",
        sector=common_pb2.SECTOR_AUDIO,
        score=82,
        alert_level=common_pb2.ALERT_LEVEL_HIGH,
        reasons=[claims_pb2.Reason(code="NO_FOLLOWUP")],
        ruleset_version="v1",
    )
    alert.care_date.year, alert.care_date.month, alert.care_date.day = 2026, 3, 1
    alert.create_time.FromJsonString("2026-03-02T08:00:00Z")
    return alert


async def test_stream_resumes_at_the_first_unacknowledged_notification(ex: Exchange) -> None:
    await _shared_then_retracted(ex)
    first = ex.stream("mut-alpha")
    shared, retraction = await first.take(2)
    first.cancel()
    await ex.ack("mut-alpha", shared.name)
    again = ex.stream("mut-alpha")  # no cursor: after the last acknowledged one
    assert (await again.next()).sequence == retraction.sequence
    again.cancel()
    replay = ex.stream("mut-alpha", after=0)  # explicit cursor: everything after it
    assert [n.sequence for n in await replay.take(2)] == [shared.sequence, retraction.sequence]
    assert (await ex.ack("mut-alpha", shared.name)).HasField("acknowledge_time")  # idempotent
    replay.cancel()


async def test_stream_follows_new_notifications_live(ex: Exchange) -> None:
    ex.cover("mut-alpha", TOKEN_B1)
    feed = ex.stream("mut-alpha")
    waiter = asyncio.ensure_future(feed.next())
    created = await ex.create("cpam-75")
    await ex.move("cpam-75", created.name, S.SUSPICION_STATUS_QUALIFIED)
    shared = await waiter
    assert shared.kind == S.NOTIFICATION_KIND_SHARED and shared.suspicion.name == created.name
    feed.cancel()


async def test_stream_sees_a_notification_written_by_another_replica(ex: Exchange) -> None:
    """Another replica's write does not wake this process: the periodic poll finds it."""
    ex.env.gateway.deps.extras["notification_poll_s"] = 0.2
    feed = ex.stream("mut-alpha", purpose=common_pb2.PURPOSE_CONTROL)
    waiter = asyncio.ensure_future(feed.next())
    # Another replica: its own engine and pool on the same database, same data keys.
    other = Database.from_url(ex.env.gateway.settings.database_url, threads=1)
    envelope = ex.env.gateway.deps.keys.envelope
    payload: dict[str, Any] = {"name": "alerts/a_replica", "score": 40}
    try:
        await other.run(
            lambda s: enqueue_notification(
                s, "mut-alpha", "ALERT", "alerts/a_replica", payload, envelope, utcnow()
            )
        )
    finally:
        other.close()
    got = await waiter
    assert got.kind == S.NOTIFICATION_KIND_ALERT and got.alert.name == "alerts/a_replica"
    feed.cancel()


async def test_alert_notification_carries_the_alert_the_claims_service_enqueued(
    ex: Exchange,
) -> None:
    await _shared_then_retracted(ex)  # SHARED and RETRACTED are not for fraud detection
    alert = _alert()
    ex.enqueue_alert("mut-alpha", alert)
    feed = ex.stream("mut-alpha", purpose=FRAUD_DETECTION)
    got = await feed.next()
    assert got.kind == S.NOTIFICATION_KIND_ALERT and got.WhichOneof("payload") == "alert"
    assert got.alert == alert
    feed.cancel()
    acked = await ex.stub("mut-alpha").AcknowledgeNotification(
        S.AcknowledgeNotificationRequest(
            purpose=FRAUD_DETECTION,
            request_id="6f1c1a52-4b5e-4c1e-9a57-2a4c4b1f0f00",
            name=got.name,
        )
    )
    assert acked.HasField("acknowledge_time")
    control = ex.stream("mut-alpha")  # under control the whole feed is readable
    kinds = [n.kind for n in await control.take(3)]
    assert kinds == [
        S.NOTIFICATION_KIND_SHARED,
        S.NOTIFICATION_KIND_RETRACTED,
        S.NOTIFICATION_KIND_ALERT,
    ]
    control.cancel()


async def test_each_streamed_item_is_journaled_before_it_leaves(ex: Exchange) -> None:
    name = await _shared_then_retracted(ex)
    feed = ex.stream("mut-alpha")
    items = await feed.take(2)
    events = journal(ex.env, "/StreamNotifications")
    # Stream opened, then one event per item, each committed before the item was received.
    assert [e["outcome"] for e in events] == ["STREAM_OPENED", "OK", "OK"]
    assert all(e["member_id"] == "mut-alpha" and e["decision"] == "allow" for e in events)
    assert [as_list(e["record_refs"]) for e in events[1:]] == [[name], [name]]
    # Each event carries the decision of its own item: the shared suspicion's object-level
    # rule, then the feed's rule for the retraction (which names nothing but the suspicion).
    assert "cl-amc-informed-of-procedure" in str(events[1]["rule_ids"])
    assert "common-suspicion-collection" in str(events[2]["rule_ids"])
    assert "cl-amc-informed-of-procedure" not in str(events[2]["rule_ids"])
    assert len(items) == 2
    feed.cancel()


async def test_stream_ends_when_the_client_cancels(ex: Exchange) -> None:
    feed = ex.stream("mut-alpha")
    waiter = asyncio.ensure_future(feed.next())
    registry = ex.env.gateway.deps.extras["notification_feed"]
    await wait_until(lambda: "mut-alpha" in registry._waiters)  # the stream is waiting
    feed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await wait_until(lambda: "mut-alpha" not in registry._waiters)  # handler ended


async def test_notifications_survive_a_server_restart(gateway_factory: GatewayFactory) -> None:
    first = Exchange(await gateway_factory(policy=EnginePolicyHook.load("current-law")))
    name = await _shared_then_retracted(first)
    feed = first.stream("mut-alpha")
    shared = await feed.next()
    await first.ack("mut-alpha", shared.name)
    waiting = asyncio.ensure_future(feed.next())
    await waiting  # the retraction was delivered, not acknowledged
    waiter = asyncio.ensure_future(feed.next())  # a stream waiting for more when we stop
    await first.env.gateway.stop(grace=0.5)
    e = await rpc_error(waiter)
    assert e.code() == grpc.StatusCode.UNAVAILABLE
    second = Exchange(await gateway_factory(policy=EnginePolicyHook.load("current-law")))
    resumed = second.stream("mut-alpha")
    again = await resumed.next()  # resumes at the first unacknowledged: the retraction
    assert again.kind == S.NOTIFICATION_KIND_RETRACTED and again.suspicion.name == name
    assert again.sequence == shared.sequence + 1
    await second.ack("mut-alpha", again.name)
    assert rows(second.env, "select retraction_acknowledged_at from suspicion_recipients")[0][
        "retraction_acknowledged_at"
    ]
    resumed.cancel()


async def test_stream_under_a_purpose_the_bundle_refuses_is_permission_denied(
    ex: Exchange,
) -> None:
    e = await rpc_error(ex.stream("mut-alpha", purpose=common_pb2.PURPOSE_AUDIT).next())
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    [event] = journal(ex.env, "/StreamNotifications")
    assert (event["decision"], event["outcome"]) == ("deny", "PERMISSION_DENIED")


async def test_an_item_whose_journal_event_cannot_be_written_never_leaves(ex: Exchange) -> None:
    feed = ex.stream("mut-alpha")
    waiter = asyncio.ensure_future(feed.next())
    registry = ex.env.gateway.deps.extras["notification_feed"]
    await wait_until(lambda: "mut-alpha" in registry._waiters)  # opened, journaled, waiting
    with ex.env.db.engine.begin() as conn:  # the journal breaks (as a failed disk would)
        conn.execute(sa.text("alter table journal_personal rename to journal_personal_gone"))
    ex.enqueue_alert("mut-alpha", _alert("alerts/a_unjournaled"))
    ex.wake("mut-alpha")
    e = await rpc_error(waiter)
    assert e.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(e).reason == "JOURNAL_UNAVAILABLE"
    with ex.env.db.engine.begin() as conn:
        conn.execute(sa.text("alter table journal_personal_gone rename to journal_personal"))
    again = ex.stream("mut-alpha")  # nothing was lost: it is delivered once journaled
    got = await again.next()
    assert got.alert.name == "alerts/a_unjournaled"
    assert [e["outcome"] for e in journal(ex.env, "/StreamNotifications")][-1] == "OK"
    again.cancel()
