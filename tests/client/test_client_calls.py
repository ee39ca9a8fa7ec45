"""The SDK's typed methods against the real gateway: check-claim, alerts, journal, members,
the blocking client, and no NIR in storage."""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import Any

import pytest

from gateway._proto.vigie.v1 import common_pb2, journal_pb2, suspicions_pb2
from gateway.client import (
    FailedPreconditionError,
    NotFoundError,
    PermissionDeniedError,
    Pseudonymiser,
    SyncVigieClient,
    VigieClient,
)
from gateway.journal import leaf_hash, verify_inclusion
from tests.claims.claim_gen import Pools, amc_side, raw_event
from tests.client._support import NIR, NIR_OTHER, SUSPICION, cover, dump
from tests.client.conftest import Sdk, SdkFactory, client_config


def _amc_lines(n: int, *, seed: int = 11) -> list[dict[str, Any]]:
    """AMC lines with no AMO side: the shared scoring flags each (phantom complement)."""
    rng = random.Random(seed)
    pools = Pools.make(rng)
    return [amc_side(raw_event(rng, pools, f"P{i}"), f"P{i}", rng) for i in range(n)]


async def test_check_claim_scores_a_line_whose_nir_is_pseudonymised_locally(sdk: Sdk) -> None:
    [line] = _amc_lines(1)
    del line["beneficiary_token"]
    answer = await sdk.client("mut-alpha").check_claim(line, nir=NIR)
    assert 0 <= answer.score <= 100 and answer.ruleset_version
    assert answer.policy_decision.allowed and answer.policy_decision.rule_ids


async def test_alerts_are_listed_iterated_and_got_by_their_member_only(sdk: Sdk) -> None:
    alpha = sdk.client("mut-alpha")
    result = await alpha.upload_claims(_amc_lines(3), side="AMC")
    assert result.ok
    page = await alpha.list_alerts(page_size=2)
    assert len(page.alerts) == 2 and page.next_page_token
    every = [a async for a in alpha.iter_alerts(page_size=2)]
    assert len(every) == 3 and {a.member_reference for a in every} == {"P0", "P1", "P2"}
    assert all("PHANTOM_COMPLEMENT" in [r.code for r in a.reasons] for a in every)
    assert await alpha.get_alert(every[0].name) == every[0]
    with pytest.raises(NotFoundError):  # another AMC's alert does not exist for mut-beta
        await sdk.client("mut-beta").get_alert(every[0].name)
    assert sdk.retries == []


async def test_members_and_suspicions_are_listed_page_by_page(sdk: Sdk) -> None:
    amo = sdk.client("cpam-75")
    names = {m.name async for m in amo.iter_members(page_size=1)}
    assert names == {"members/cpam-75", "members/cpam-audit", "members/mut-alpha",
                     "members/mut-beta"}  # fmt: skip
    alpha_sees = {m.name async for m in sdk.client("mut-alpha").iter_members(kind="AMC")}
    assert alpha_sees == {"members/mut-alpha"}  # never another AMC
    created = [await amo.submit_suspicion(nir=NIR, **SUSPICION) for _ in range(3)]
    listed = [s.name async for s in amo.iter_suspicions(purpose="control", page_size=2)]
    assert sorted(listed) == sorted(s.name for s in created)
    submitted = await amo.list_suspicions(purpose="control", status="submitted", sector="optique")
    assert len(submitted.suspicions) == 3


async def _signed_checkpoint(officer: VigieClient, covering: int) -> journal_pb2.Checkpoint:
    """The first checkpoint of at least ``covering`` leaves (polled until a deadline)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 15
    while True:
        try:
            checkpoint = await officer.get_checkpoint()
            if checkpoint.tree_size >= covering:
                return checkpoint
        except FailedPreconditionError as e:  # NO_CHECKPOINT: the sequencer has not signed yet
            assert e.reason == "NO_CHECKPOINT"
        if loop.time() > end:
            raise AssertionError("no checkpoint before the deadline")
        await asyncio.sleep(0.02)


async def test_journal_calls_list_answer_who_looked_prove_and_export(
    sdk_factory: SdkFactory, tmp_path: Path
) -> None:
    sdk = await sdk_factory(checkpoint_interval_s=0.05)
    amo = sdk.client("cpam-75")
    assert amo.pseudonymiser is not None
    # The AMO's compliance officer sees accesses to its own insured (need-to-know).
    cover(sdk.env, "cpam-audit", amo.pseudonymiser.token(NIR))
    created = await amo.submit_suspicion(nir=NIR, **SUSPICION)
    await amo.get_suspicion(created.name, purpose="control")
    officer = sdk.client("cpam-audit")
    events = await officer.list_access_events(member="members/cpam-75", page_size=100)
    methods = [e.method for e in events.access_events]
    assert "CreateSuspicion" in methods and "GetSuspicion" in methods
    denied = await officer.list_access_events(decision="deny")
    assert all(e.decision == common_pb2.ACCESS_DECISION_DENY for e in denied.access_events)
    who = await officer.list_person_accesses(NIR)
    assert {e.method for e in who.access_events} >= {"CreateSuspicion", "GetSuspicion"}
    nobody = await officer.list_person_accesses(NIR_OTHER)
    assert list(nobody.access_events) == []
    # Proof that the CreateSuspicion event is in the signed tree (RFC 9162 inclusion).
    [event] = [e for e in events.access_events if e.method == "CreateSuspicion"]
    checkpoint = await _signed_checkpoint(officer, covering=event.sequence)
    [event] = [
        e
        for e in (await officer.list_access_events(method="CreateSuspicion")).access_events
        if e.HasField("leaf_index")
    ]
    proof = await officer.get_inclusion_proof(event.leaf_index, checkpoint.tree_size)
    verify_inclusion(
        event.leaf_index,
        checkpoint.tree_size,
        leaf_hash(event.canonical_entry),
        list(proof.hashes),
        checkpoint.root_hash,
    )
    exported = await officer.export_journal(tmp_path / "bundle.json")
    assert exported.path is not None and exported.total_bytes == exported.path.stat().st_size
    assert hashlib.sha256(exported.path.read_bytes()).digest() == exported.sha256
    with pytest.raises(PermissionDeniedError):  # a mutuelle's analyst is no auditor
        await sdk.client("mut-alpha").list_access_events()


async def test_no_nir_nor_first_level_token_is_stored_by_the_gateway(sdk: Sdk) -> None:
    amo = sdk.client("cpam-75")
    assert amo.pseudonymiser is not None
    token = amo.pseudonymiser.token(NIR)
    await amo.submit_suspicion(nir=NIR, **SUSPICION)
    rows = _amc_lines(2)
    for row in rows:
        del row["beneficiary_token"]
        row["nir"] = NIR
    alpha = sdk.client("mut-alpha")
    assert (await alpha.upload_claims(rows, side="AMC")).ok
    await alpha.check_claim({**rows[0], "member_reference": "X1"})
    everything = dump(sdk.env)
    assert NIR not in everything and token not in everything


def _blocking_session(pki: Path, address: str, key: Path) -> tuple[str, str, int]:
    with SyncVigieClient(
        client_config(pki, address, member="cpam-75"),
        pseudonymiser=Pseudonymiser.from_key_file(key),
    ) as client:
        me = client.get_self()
        created = client.submit_suspicion(nir=NIR, **SUSPICION)
        again = client.get_suspicion(created.name, purpose="control")
        listed = client.list_suspicions(purpose="control")
        return me.name, again.name, len(listed.suspicions)


async def test_the_blocking_client_runs_the_same_calls(sdk: Sdk) -> None:
    name, got, listed = await asyncio.to_thread(
        _blocking_session, sdk.env.pki_dir, sdk.env.target, sdk.key_file
    )
    assert name == "members/cpam-75" and got.startswith("suspicions/") and listed == 1


async def test_raw_notification_stream_yields_typed_messages(sdk: Sdk) -> None:
    amo = sdk.client("cpam-75")
    assert amo.pseudonymiser is not None
    cover(sdk.env, "mut-alpha", amo.pseudonymiser.token(NIR))
    created = await amo.submit_suspicion(nir=NIR, **SUSPICION)
    await amo.transition_suspicion(created.name, "qualified", "Contrôle.", purpose="control")
    alpha = sdk.client("mut-alpha")
    stream = alpha.stream_notifications(purpose="control")
    first = await asyncio.wait_for(anext(stream), 15)
    await stream.aclose()
    assert first.kind == suspicions_pb2.NOTIFICATION_KIND_SHARED
    acked = await alpha.acknowledge_notification(first.name, purpose="control")
    assert acked.HasField("acknowledge_time")
