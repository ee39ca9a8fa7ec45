"""Checkpoints, proofs and exports over mTLS, checked with the pure offline verifier only.

The compliance officer trusts nothing but the journal's public key (obtained out of band):
everything fetched over gRPC is verified with ``gateway.journal.verify`` and
``gateway.journal._merkle``, and tampering in the database is caught by ``vigie audit verify``
on an export fetched over gRPC.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from google.type import interval_pb2

from gateway._proto.vigie.v1 import journal_pb2, members_pb2, members_pb2_grpc
from gateway.cli import main as vigie
from gateway.journal import (
    ProofError,
    leaf_entry,
    leaf_hash,
    root_of,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from gateway.journal._sql import journal_event_of
from gateway.journal.verify import verify_bundle
from gateway.services import journal as journal_service
from gateway.store._models import JournalEventRow
from tests.service._journal_support import (
    AUDIT,
    NIR_P,
    OPS,
    access,
    cover,
    journal_pki,
    pseudonym,
    settle,
    start_journal_gateway,
    stub,
    unguard,
    vkey,
    write,
)
from tests.service._status import field_violations
from tests.service.conftest import GatewayEnv, GatewayFactory

__all__ = ["journal_pki"]


@pytest.fixture
async def env(gateway_factory: GatewayFactory, journal_pki: Path) -> GatewayEnv:
    return await start_journal_gateway(gateway_factory, journal_pki)


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value


async def _calls(env: GatewayEnv, count: int) -> None:
    """Real calls through the pipeline (each journaled), by several members."""
    for k in range(count):
        member = ("cpam-75", "mut-alpha", "cpam-audit")[k % 3]
        ms = members_pb2_grpc.MemberServiceStub(env.channel(member))  # type: ignore[no-untyped-call]
        await ms.GetSelf(members_pb2.GetSelfRequest(purpose=OPS))


async def _checkpoint(env: GatewayEnv) -> journal_pb2.Checkpoint:
    reply: journal_pb2.Checkpoint = await stub(env, "cpam-audit").GetCheckpoint(
        journal_pb2.GetCheckpointRequest(purpose=AUDIT)
    )
    return reply


def _leaf_hashes(env: GatewayEnv) -> dict[int, bytes]:
    """The test's oracle: every leaf recomputed from the stored rows."""

    def read(session: sa.orm.Session) -> dict[int, bytes]:
        out = {}
        for row in session.scalars(
            sa.select(JournalEventRow).where(JournalEventRow.leaf_index.is_not(None))
        ):
            entry = leaf_entry(journal_event_of(row), row.personal_commitment)
            out[int(row.leaf_index)] = leaf_hash(entry)
        return out

    return env.db.run_sync(read)


async def test_get_checkpoint_before_any_checkpoint_is_failed_precondition(
    env: GatewayEnv,
) -> None:
    error = await _refused(_checkpoint(env))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_every_inclusion_proof_over_grpc_verifies_against_the_checkpoint_over_grpc(
    env: GatewayEnv,
) -> None:
    await _calls(env, 7)
    await settle(env)
    reply = await _checkpoint(env)
    head = verify_checkpoint(reply.signed_note.encode(), vkey(env))  # the signature first
    assert (head.size, head.root_hash, head.origin) == (
        reply.tree_size,
        reply.root_hash,
        reply.origin,
    )
    journal = stub(env, "cpam-audit")
    # The officer's own events, as listed over gRPC (canonical entry and leaf index)...
    listed = await journal.ListAccessEvents(journal_pb2.ListAccessEventsRequest(purpose=AUDIT))
    own = [e for e in listed.access_events if e.HasField("leaf_index")]
    assert own and all(e.member == "members/cpam-audit" for e in own)
    for e in own:
        proof = await journal.GetInclusionProof(
            journal_pb2.GetInclusionProofRequest(
                purpose=AUDIT, leaf_index=e.leaf_index, tree_size=head.size
            )
        )
        verify_inclusion(
            e.leaf_index,
            head.size,
            leaf_hash(e.canonical_entry),
            list(proof.hashes),
            head.root_hash,
        )
    # ... and every leaf of the tree, in every smaller tree too (proof sizes O(log n)).
    leaves = _leaf_hashes(env)
    assert sorted(leaves) == list(range(head.size))
    assert root_of([leaves[i] for i in range(head.size)]) == head.root_hash
    for size in range(1, head.size + 1):
        root = root_of([leaves[i] for i in range(size)])
        for index in range(size):
            proof = await journal.GetInclusionProof(
                journal_pb2.GetInclusionProofRequest(
                    purpose=AUDIT, leaf_index=index, tree_size=size
                )
            )
            assert len(proof.hashes) <= (size - 1).bit_length()
            verify_inclusion(index, size, leaves[index], list(proof.hashes), root)
    # A proof does not verify for another leaf, nor once altered.
    proof = await journal.GetInclusionProof(
        journal_pb2.GetInclusionProofRequest(purpose=AUDIT, leaf_index=1, tree_size=head.size)
    )
    with pytest.raises(ProofError):
        verify_inclusion(2, head.size, leaves[2], list(proof.hashes), head.root_hash)
    bent = [bytes([proof.hashes[0][0] ^ 1]) + proof.hashes[0][1:], *proof.hashes[1:]]
    with pytest.raises(ProofError):
        verify_inclusion(1, head.size, leaves[1], bent, head.root_hash)


async def test_consistency_proofs_over_grpc_verify_between_every_pair_of_kept_checkpoints(
    env: GatewayEnv,
) -> None:
    kept = []
    for count in (1, 2, 4, 3):
        await _calls(env, count)
        await settle(env)
        reply = await _checkpoint(env)
        kept.append(verify_checkpoint(reply.signed_note.encode(), vkey(env)))
    journal = stub(env, "cpam-audit")
    sizes = [c.size for c in kept]
    assert sizes == sorted(set(sizes))
    for old, new in itertools.combinations(kept, 2):
        proof = await journal.GetConsistencyProof(
            journal_pb2.GetConsistencyProofRequest(
                purpose=AUDIT, first_tree_size=old.size, second_tree_size=new.size
            )
        )
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, list(proof.hashes))
        with pytest.raises(ProofError):  # a fork: another old root does not verify
            verify_consistency(
                old.size, new.size, hashlib.sha256(b"fork").digest(), new.root_hash,
                list(proof.hashes),
            )  # fmt: skip
    same = await journal.GetConsistencyProof(
        journal_pb2.GetConsistencyProofRequest(
            purpose=AUDIT, first_tree_size=sizes[-1], second_tree_size=sizes[-1]
        )
    )
    assert list(same.hashes) == []


PROOF_REFUSALS = [
    ("GetInclusionProof", {"leaf_index": 0, "tree_size": 0}, "tree_size"),
    ("GetInclusionProof", {"leaf_index": -1, "tree_size": 2}, "leaf_index"),
    ("GetInclusionProof", {"leaf_index": 2, "tree_size": 2}, "leaf_index"),
    ("GetInclusionProof", {"leaf_index": 0, "tree_size": 10_000}, "tree_size"),
    ("GetConsistencyProof", {"first_tree_size": 0, "second_tree_size": 2}, "first_tree_size"),
    ("GetConsistencyProof", {"first_tree_size": 3, "second_tree_size": 2}, "second_tree_size"),
    (
        "GetConsistencyProof",
        {"first_tree_size": 1, "second_tree_size": 10_000},
        "second_tree_size",
    ),
]


@pytest.mark.parametrize(
    ("method", "fields", "field"), PROOF_REFUSALS, ids=[f"{m}-{f}" for m, _, f in PROOF_REFUSALS]
)
async def test_proof_requests_outside_the_signed_tree_are_invalid_argument(
    env: GatewayEnv, method: str, fields: dict[str, int], field: str
) -> None:
    await _calls(env, 3)
    await settle(env)
    request = getattr(journal_pb2, f"{method}Request")(purpose=AUDIT, **fields)
    error = await _refused(getattr(stub(env, "cpam-audit"), method)(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == [field]


# -- export -------------------------------------------------------------------------------------
async def _export(env: GatewayEnv, member: str, **fields: Any) -> tuple[dict[str, Any], int]:
    chunks, total, digest, messages = [], 0, b"", 0
    async for message in stub(env, member).ExportJournal(
        journal_pb2.ExportJournalRequest(purpose=AUDIT, **fields)
    ):
        messages += 1
        assert not digest, "sha256 comes on the last message only"
        chunks.append(message.chunk)
        digest, total = message.sha256, message.total_bytes
    data = b"".join(chunks)
    assert len(data) == total and hashlib.sha256(data).digest() == digest
    bundle: dict[str, Any] = json.loads(data)
    return bundle, messages


async def test_export_over_grpc_verifies_offline_and_withholds_other_amcs_accesses(
    env: GatewayEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    p = pseudonym(env, NIR_P)
    cover(env, "mut-gamma", p)
    own = write(env, access("mut-gamma", "CheckClaim", subjects=[p], refs=["claims/c1"]))
    amo = write(env, access("cpam-75", subjects=[p], refs=["suspicions/s1"]))
    other_amc = write(env, access("mut-alpha", "CheckClaim", subjects=[p], refs=["claims/c9"]))
    await _calls(env, 3)
    size = await settle(env)
    monkeypatch.setattr(journal_service, "EXPORT_CHUNK_BYTES", 2048)
    bundle, messages = await _export(env, "mut-gamma")
    assert messages > 1
    report = verify_bundle(bundle, vkey(env))
    assert report.complete_range == (0, size)  # complete, although mostly withheld
    shown = {e["event"]["seq"]: e for e in bundle["events"] if "event" in e}
    assert set(own + amo) <= set(shown) and not set(other_amc) & set(shown)
    assert {e["event"]["member_id"] for e in shown.values()} <= {"mut-gamma", "cpam-75"}
    assert report.events_withheld == size - len(shown) and report.events_withheld > 0
    text = json.dumps(bundle)
    assert "mut-alpha" not in text and "claims/c9" not in text
    assert shown[own[0]]["personal"]["record_refs"] == ["claims/c1"]  # audit view: refs
    # The officer's tools accept it as is.
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    assert vigie(["audit", "verify", str(path), "--vkey", vkey(env)]) == 0
    html = tmp_path / "report.html"
    assert vigie(["audit", "report", str(path), "--vkey", vkey(env), "--out", str(html)]) == 0
    assert "Verification: VALID" in html.read_text()


async def test_export_proves_consistency_from_a_checkpoint_the_officer_kept(
    env: GatewayEnv,
) -> None:
    await _calls(env, 2)
    await settle(env)
    kept = await _checkpoint(env)
    await _calls(env, 3)
    await settle(env)
    bundle, _ = await _export(env, "cpam-audit", consistency_from_tree_size=kept.tree_size)
    report = verify_bundle(bundle, vkey(env), previous_checkpoint=kept.signed_note)
    assert report.consistent_with_size == kept.tree_size
    head = (await _checkpoint(env)).tree_size
    for size, code, field in (
        (0, grpc.StatusCode.INVALID_ARGUMENT, "consistency_from_tree_size"),
        (head + 50, grpc.StatusCode.INVALID_ARGUMENT, "consistency_from_tree_size"),
        (kept.tree_size + 1, grpc.StatusCode.NOT_FOUND, None),  # no checkpoint of that size
    ):
        error = await _refused(_export(env, "cpam-audit", consistency_from_tree_size=size))
        assert error.code() == code, size
        if field:
            assert [f for f, _ in field_violations(error)] == [field]


TAMPERING = [
    ("update an event the officer sees", "UPDATE journal_events SET outcome = 'NOT_FOUND' "
     "WHERE seq = (SELECT MIN(seq) FROM journal_events WHERE member_id = 'cpam-audit')"),
    ("update an event withheld from the officer", "UPDATE journal_events SET purpose = "
     "'litigation' WHERE seq = (SELECT MIN(seq) FROM journal_events WHERE member_id = "
     "'mut-alpha')"),
    ("delete a row", "DELETE FROM journal_events WHERE seq = (SELECT MIN(seq) FROM "
     "journal_events WHERE member_id = 'cpam-75')"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "statement"), TAMPERING, ids=[t[0] for t in TAMPERING])
async def test_database_tampering_is_detected_by_vigie_audit_verify_on_a_grpc_export(
    env: GatewayEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    statement: str,
) -> None:
    await _calls(env, 6)
    await settle(env)
    before = tmp_path / "before.json"
    before.write_text(json.dumps((await _export(env, "cpam-audit"))[0]))
    assert vigie(["audit", "verify", str(before), "--vkey", vkey(env)]) == 0
    capsys.readouterr()
    unguard(env)
    with env.db.engine.begin() as conn:
        if statement.startswith("DELETE"):
            where = statement.split(" WHERE ", 1)[1]
            conn.execute(sa.text(f"DELETE FROM journal_personal WHERE {where}"))
        conn.execute(sa.text(statement))
    after = tmp_path / "after.json"
    after.write_text(json.dumps((await _export(env, "cpam-audit"))[0]))
    assert vigie(["audit", "verify", str(after), "--vkey", vkey(env)]) == 1
    assert capsys.readouterr().out.startswith("INVALID")


async def test_export_of_a_time_range_is_a_filtered_bundle_that_verifies(
    env: GatewayEnv,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old = write(env, *(access("cpam-audit", time=now - timedelta(days=3)) for _ in range(2)))
    recent = write(env, *(access("cpam-audit", time=now - timedelta(hours=1)) for _ in range(3)))
    await settle(env)
    start = timestamp_pb2.Timestamp()
    start.FromDatetime(now - timedelta(days=1))
    end = timestamp_pb2.Timestamp()
    end.FromDatetime(now)
    bundle, _ = await _export(
        env, "cpam-audit", event_time_range=interval_pb2.Interval(start_time=start, end_time=end)
    )
    report = verify_bundle(bundle, vkey(env))
    assert report.complete_range is None  # a selection: deletions elsewhere are not visible
    seqs = {e["event"]["seq"] for e in bundle["events"] if "event" in e}
    assert set(recent) <= seqs and not set(old) & seqs
    error = await _refused(
        _export(
            env,
            "cpam-audit",
            event_time_range=interval_pb2.Interval(start_time=end, end_time=start),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["event_time_range.end_time"]
