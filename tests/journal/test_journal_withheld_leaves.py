"""Withheld leaves: a complete export for a reader who may not see every event.

An AMC's compliance officer may not see another AMC's accesses (policy rule
``common-amc-never-sees-other-amc-access``); its export carries those events as bare leaf hashes,
so the bundle still proves that no event was removed from the range, and reveals nothing else.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from journal_fixtures import VKEY, Journal

from gateway.journal import (
    BundleError,
    ProofError,
    WithheldLeaf,
    build_bundle,
    leaf_entry,
    leaf_hash,
    verify_bundle,
)


def _for_cpam(journal: Journal) -> dict[str, Any]:
    """Events of cpam-75 shown, every other one withheld."""
    items: list[Any] = [
        e
        if e.event.member_id == "cpam-75"
        else WithheldLeaf(e.leaf_index, leaf_hash(leaf_entry(e.event, e.personal_commitment)))
        for e in journal.items
    ]
    size = journal.tree.size
    return build_bundle(
        VKEY, journal.checkpoints[size], journal.tree, items, complete_range=(0, size)
    )


def test_export_with_withheld_leaves_is_complete_and_shows_nothing_of_them(
    journal: Journal,
) -> None:
    bundle = json.loads(json.dumps(_for_cpam(journal)))
    report = verify_bundle(bundle, VKEY)
    shown = sum(e.event.member_id == "cpam-75" for e in journal.items)
    assert report.complete_range == (0, 17)
    assert (report.events_verified, report.events_withheld) == (shown, 17 - shown)
    withheld = [e for e in bundle["events"] if "withheld_leaf_hash" in e]
    assert all(set(e) == {"leaf_index", "withheld_leaf_hash", "inclusion_proof"} for e in withheld)
    assert "mut-alpha" not in json.dumps(bundle)


def _first_withheld(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in bundle["events"] if "withheld_leaf_hash" in e)


def _other_hash(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


ATTACKS = [
    ("withheld hash altered", lambda b: _first_withheld(b).update(
        withheld_leaf_hash=_other_hash(_first_withheld(b)["withheld_leaf_hash"])), ProofError),
    ("withheld leaf dropped", lambda b: b["events"].remove(_first_withheld(b)), BundleError),
    ("withheld hash not 32 bytes", lambda b: _first_withheld(b).update(
        withheld_leaf_hash="AAAA"), BundleError),
    ("withheld leaf carries an event too", lambda b: _first_withheld(b).update(
        event=b["events"][0].get("event")), BundleError),
    ("withheld proof altered", lambda b: _first_withheld(b).update(
        inclusion_proof=[_other_hash(h) for h in _first_withheld(b)["inclusion_proof"]]),
     ProofError),
]  # fmt: skip


@pytest.mark.parametrize(("name", "attack", "error"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_tampered_withheld_leaves_are_detected(
    journal: Journal, name: str, attack: Any, error: type[Exception]
) -> None:
    bundle = json.loads(json.dumps(_for_cpam(journal)))
    attack(bundle)
    with pytest.raises(error):
        verify_bundle(bundle, VKEY)
