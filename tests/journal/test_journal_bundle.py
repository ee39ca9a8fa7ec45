"""Export bundles: what verifies, and every named attack that must not."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from journal_fixtures import ORIGIN, SIGNING_KEY, VKEY, Journal

from gateway.journal import (
    BundleError,
    CommitmentError,
    ExportEvent,
    JournalVerificationError,
    NoteError,
    ProofError,
    build_bundle,
    sign_checkpoint,
    verify_bundle,
    vkey_for,
)

Bundle = dict[str, Any]


def _full(journal: Journal, **kwargs: Any) -> Bundle:
    size = journal.tree.size
    return build_bundle(
        VKEY,
        journal.checkpoints[size],
        journal.tree,
        journal.items,
        complete_range=(0, size),
        **kwargs,
    )


def test_full_export_verifies_and_round_trips_through_json(journal: Journal) -> None:
    bundle = json.loads(json.dumps(_full(journal, earlier_checkpoint=journal.checkpoints[5])))
    report = verify_bundle(bundle, VKEY)
    assert report.tree_size == 17 and report.events_verified == 17
    assert report.personal_revealed == 17 and report.personal_absent == 0
    assert report.complete_range == (0, 17) and report.consistent_with_size == 5
    assert report.origin == ORIGIN and report.root_hash == journal.tree.root().hex()


def test_officer_kept_checkpoint_is_checked_for_consistency(journal: Journal) -> None:
    kept = journal.checkpoints[5].decode()
    bundle = _full(journal, earlier_checkpoint=journal.checkpoints[5])
    assert verify_bundle(bundle, VKEY, previous_checkpoint=kept).consistent_with_size == 5
    # Same size as the head: no proof needed.
    head = journal.checkpoints[17].decode()
    assert verify_bundle(_full(journal), VKEY, head).consistent_with_size == 17


def test_erased_personal_fields_leave_every_proof_valid(journal: Journal) -> None:
    """Retention: salt and fields deleted, commitment kept; the journal still verifies."""
    erased = [ExportEvent(e.leaf_index, e.event, e.personal_commitment) for e in journal.items]
    bundle = build_bundle(
        VKEY, journal.checkpoints[17], journal.tree, erased, complete_range=(0, 17)
    )
    report = verify_bundle(bundle, VKEY)
    assert report.personal_revealed == 0 and report.personal_absent == 17
    text = json.dumps(bundle)
    assert "suspicion/" not in text and "pseudo" not in text


def test_filtered_export_verifies_without_a_range(journal: Journal) -> None:
    mine = [e for e in journal.items if e.event.member_id == "cpam-75"]
    bundle = build_bundle(VKEY, journal.checkpoints[17], journal.tree, mine)
    assert verify_bundle(bundle, VKEY).events_verified == len(mine)


def _event(b: Bundle, k: int) -> dict[str, Any]:
    return b["events"][k]["event"]  # type: ignore[no-any-return]


def _set(
    path: Callable[[Bundle], dict[str, Any]], key: str, value: Any
) -> Callable[[Bundle], None]:
    def mutate(b: Bundle) -> None:
        path(b)[key] = value

    return mutate


def _flip_proof(b: Bundle) -> None:
    proof = b["events"][4]["inclusion_proof"]
    proof[1] = ("A" if proof[1][0] != "A" else "B") + proof[1][1:]


def _forge_root(b: Bundle) -> None:
    lines = b["checkpoint"].split("\n")
    lines[2] = "A" * 43 + "="
    b["checkpoint"] = "\n".join(lines)


def _resign_with(key: Ed25519PrivateKey) -> Callable[[Bundle], None]:
    def mutate(b: Bundle) -> None:
        root = b["checkpoint"].split("\n")[2]
        b["checkpoint"] = sign_checkpoint(ORIGIN, 17, base64.b64decode(root), key).decode()

    return mutate


def _swap(b: Bundle) -> None:
    ev = b["events"]
    ev[3], ev[4] = ev[4], ev[3]


def _move_index(b: Bundle) -> None:
    b["events"][3]["leaf_index"], b["events"][4]["leaf_index"] = 4, 3
    _swap(b)


def _insert_copy(b: Bundle) -> None:
    b["events"].insert(6, copy.deepcopy(b["events"][5]))


def _insert_forged(b: Bundle) -> None:
    forged = copy.deepcopy(b["events"][-1])
    forged["leaf_index"] = 17
    forged["event"]["seq"] = 18
    b["events"].append(forged)
    b["range"]["end"] = 18


ATTACKS: list[tuple[str, Callable[[Bundle], None], type[JournalVerificationError]]] = [
    ("altered member", _set(lambda b: _event(b, 2), "member_id", "mut-beta"), ProofError),
    ("altered decision", _set(lambda b: _event(b, 2), "decision", "allow"), ProofError),
    ("altered rule ids", _set(lambda b: _event(b, 0), "rule_ids", ["rule-x"]), ProofError),
    (
        "altered time",
        _set(lambda b: _event(b, 1), "time", "2026-03-01T09:00:00.000000Z"),
        ProofError,
    ),
    (
        "altered commitment",
        _set(lambda b: b["events"][2], "personal_commitment", "0" * 64),
        ProofError,
    ),
    (
        "altered revealed pseudonym",
        _set(lambda b: b["events"][1]["personal"], "subject_pseudonyms", ["gw-2026:other"]),
        CommitmentError,
    ),
    (
        "altered salt",
        _set(lambda b: b["events"][1]["personal"], "salt", "A" * 43 + "="),
        CommitmentError,
    ),
    ("deleted event", lambda b: b["events"].pop(7), BundleError),
    ("deleted last event", lambda b: b["events"].pop(), BundleError),
    ("reordered events", _swap, BundleError),
    ("events moved to other leaves", _move_index, ProofError),
    ("duplicated event", _insert_copy, BundleError),
    ("forged event past the tree", _insert_forged, BundleError),
    ("flipped proof element", _flip_proof, ProofError),
    ("dropped proof element", lambda b: b["events"][4]["inclusion_proof"].pop(), ProofError),
    (
        "proof element not base64",
        _set(lambda b: b["events"][0], "inclusion_proof", ["!!"]),
        BundleError,
    ),
    ("forged root in checkpoint", _forge_root, NoteError),
    ("checkpoint re-signed by another key", _resign_with(Ed25519PrivateKey.generate()), NoteError),
    (
        "bundle names another key",
        _set(lambda b: b, "vkey", vkey_for(ORIGIN, Ed25519PrivateKey.generate().public_key())),
        BundleError,
    ),
    ("bundle names another origin", _set(lambda b: b, "origin", "vigie.test/other"), BundleError),
    ("unknown field", _set(lambda b: b, "note", "trust me"), BundleError),
    ("wrong format", _set(lambda b: b, "format", "vigie/journal-bundle/v0"), BundleError),
    ("range wider than the tree", _set(lambda b: b, "range", {"start": 0, "end": 18}), BundleError),
]


@pytest.mark.parametrize(("name", "mutate", "error"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_tampered_bundle_is_detected(
    journal: Journal,
    name: str,
    mutate: Callable[[Bundle], None],
    error: type[JournalVerificationError],
) -> None:
    bundle = _full(journal)
    verify_bundle(copy.deepcopy(bundle), VKEY)
    mutate(bundle)
    with pytest.raises(error):
        verify_bundle(bundle, VKEY)


def test_wrong_trusted_key_is_refused(journal: Journal) -> None:
    other = vkey_for(ORIGIN, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(JournalVerificationError):
        verify_bundle(_full(journal), other)
    with pytest.raises(JournalVerificationError):
        verify_bundle(_full(journal), "not a vkey")


def test_fork_is_detected_against_the_officers_checkpoint(journal: Journal) -> None:
    """The operator rewrote history: a checkpoint of another tree with the same key."""
    kept = sign_checkpoint(ORIGIN, 5, b"\x07" * 32, SIGNING_KEY).decode()
    with pytest.raises(ProofError):
        verify_bundle(_full(journal, earlier_checkpoint=journal.checkpoints[5]), VKEY, kept)
    with pytest.raises(ProofError):  # no proof offered: sizes differ, empty proof refused
        verify_bundle(_full(journal), VKEY, journal.checkpoints[5].decode())


def test_rollback_to_a_smaller_tree_is_detected(journal: Journal) -> None:
    small = build_bundle(VKEY, journal.checkpoints[5], journal.tree, journal.items[:5])
    with pytest.raises(BundleError, match="rolled back"):
        verify_bundle(small, VKEY, journal.checkpoints[17].decode())


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 16),
    st.sampled_from(["member_id", "principal", "method", "purpose", "outcome", "request_id"]),
    st.text(min_size=1, max_size=8),
)
def test_any_altered_event_field_is_detected(index: int, field: str, suffix: str) -> None:
    journal = Journal()
    journal.append(17)
    bundle = _full(journal)
    _event(bundle, index)[field] += suffix
    with pytest.raises(JournalVerificationError):
        verify_bundle(bundle, VKEY)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_deleted_inserted_or_reordered_event_is_detected(data: st.DataObject) -> None:
    journal = Journal()
    journal.append(17)
    bundle = _full(journal)
    events = bundle["events"]
    kind = data.draw(st.sampled_from(["delete", "insert", "reorder"]))
    if kind == "delete":
        events.pop(data.draw(st.integers(0, len(events) - 1)))
    elif kind == "insert":
        source = copy.deepcopy(events[data.draw(st.integers(0, len(events) - 1))])
        events.insert(data.draw(st.integers(0, len(events))), source)
    else:
        order = data.draw(st.permutations(range(len(events))))
        if order == list(range(len(events))):
            order = order[::-1]
        bundle["events"] = [events[k] for k in order]
    with pytest.raises(JournalVerificationError):
        verify_bundle(bundle, VKEY)


def test_verifier_imports_without_database_or_grpc() -> None:
    code = (
        "import sys, gateway.journal.verify\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'grpc', 'psycopg', 'alembic', 'google')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
