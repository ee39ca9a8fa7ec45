"""Build an export bundle (format in ``gateway.journal.verify``) from events and the tree.

Pure apart from the tree's node reads: the caller loads events and personal fields from the
database and passes them in. The builder does not judge what it exports; run
:func:`~gateway.journal.verify.verify_bundle` on the result to check it (a tampered database
yields a bundle that fails verification).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidArgumentError
from gateway.journal._canonical import JournalEvent, PersonalFields
from gateway.journal._checkpoint import parse_checkpoint_text
from gateway.journal._note import NoteVerifier, open_note, parse_vkey
from gateway.journal._tree import MerkleTree
from gateway.journal.verify import BUNDLE_FORMAT

__all__ = ["ExportEvent", "WithheldLeaf", "build_bundle"]


@dataclass(frozen=True, slots=True)
class ExportEvent:
    """One journaled event to export; ``personal``/``salt`` are None once erased or withheld."""

    leaf_index: int
    event: JournalEvent
    personal_commitment: str
    personal: PersonalFields | None = None
    salt: bytes | None = None


@dataclass(frozen=True, slots=True)
class WithheldLeaf:
    """A leaf whose event this reader may not see: exported as its hash and proof only."""

    leaf_index: int
    leaf_hash: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_bundle(
    vkey: str,
    checkpoint: bytes,
    tree: MerkleTree,
    events: Sequence[ExportEvent | WithheldLeaf],
    *,
    earlier_checkpoint: bytes | None = None,
    complete_range: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Assemble a ``vigie/journal-bundle/v1`` JSON document.

    Args:
        vkey: the journal's verifier key (string form).
        checkpoint: the signed checkpoint the proofs are computed against.
        tree: the journal tree, integrated to at least the checkpoint's size.
        events: the events to export, sorted by leaf index; a :class:`WithheldLeaf` stands
            for an event the reader may not see (hash and proof only).
        earlier_checkpoint: an earlier signed checkpoint to prove consistency from.
        complete_range: ``(start, end)`` when ``events`` are every leaf of that range.

    Raises:
        JournalKeyError: ``vkey`` is malformed or not Ed25519.
        NoteError: a checkpoint is not signed by ``vkey`` or is malformed.
        InvalidArgumentError: a leaf index or size outside the tree, or personal fields
            without their salt.
    """
    verifier: NoteVerifier = parse_vkey(vkey)
    head = parse_checkpoint_text(open_note(checkpoint, verifier))
    items: list[dict[str, Any]] = []
    for item in events:
        if isinstance(item, WithheldLeaf):
            items.append(
                {
                    "leaf_index": item.leaf_index,
                    "withheld_leaf_hash": _b64(item.leaf_hash),
                    "inclusion_proof": [
                        _b64(h) for h in tree.inclusion_proof(item.leaf_index, head.size)
                    ],
                }
            )
            continue
        if (item.personal is None) != (item.salt is None):
            raise InvalidArgumentError.for_field("personal", "fields and salt go together")
        personal = None
        if item.personal is not None and item.salt is not None:
            personal = {
                "salt": _b64(item.salt),
                "record_refs": list(item.personal.record_refs),
                "subject_pseudonyms": list(item.personal.subject_pseudonyms),
            }
        items.append(
            {
                "leaf_index": item.leaf_index,
                "event": item.event.model_dump(mode="json"),
                "personal_commitment": item.personal_commitment,
                "inclusion_proof": [
                    _b64(h) for h in tree.inclusion_proof(item.leaf_index, head.size)
                ],
                "personal": personal,
            }
        )
    consistency = None
    if earlier_checkpoint is not None:
        old = parse_checkpoint_text(open_note(earlier_checkpoint, verifier))
        consistency = {
            "checkpoint": earlier_checkpoint.decode("utf-8"),
            "proof": [_b64(h) for h in tree.consistency_proof(old.size, head.size)],
        }
    return {
        "format": BUNDLE_FORMAT,
        "vkey": vkey,
        "origin": head.origin,
        "checkpoint": checkpoint.decode("utf-8"),
        "range": None
        if complete_range is None
        else {"start": complete_range[0], "end": complete_range[1]},
        "events": items,
        "consistency": consistency,
    }
