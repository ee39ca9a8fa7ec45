"""Offline verifier of a journal export bundle: small, pure, importable on its own.

Needs only the journal's public key (``vkey``) and, optionally, an earlier checkpoint the
compliance officer kept. No database, no network, no gRPC: ``pip install vigie`` (or this
package's pure modules) and::

    from gateway.journal.verify import verify_bundle
    report = verify_bundle(json.load(f), trusted_vkey=VKEY, previous_checkpoint=kept_note)

Bundle format (a JSON document; ``vigie/journal-bundle/v1``)::

    {
      "format": "vigie/journal-bundle/v1",
      "vkey": "<name>+<8 hex key ID>+<base64(0x01 || Ed25519 public key)>",
      "origin": "<checkpoint origin, equal to the key name>",
      "checkpoint": "<C2SP signed checkpoint note, as text>",
      "range": {"start": <int>, "end": <int>} | null,
      "events": [
        {
          "leaf_index": <int>,
          "event": {"seq", "event_id", "time", "member_id", "principal", "cert_fingerprint",
                    "method", "purpose", "decision", "rule_ids", "bundle_hash", "request_id",
                    "outcome", "record_count"},
          "personal_commitment": "<64 hex>",
          "inclusion_proof": ["<base64 32-byte hash>", ...],
          "personal": {"salt": "<base64 32 bytes>", "record_refs": [...],
                       "subject_pseudonyms": [...]} | null
        },
        {"leaf_index": <int>, "withheld_leaf_hash": "<base64 32-byte hash>",
         "inclusion_proof": ["<base64 32-byte hash>", ...]}, ...
      ],
      "consistency": {"checkpoint": "<earlier signed checkpoint note>",
                      "proof": ["<base64 32-byte hash>", ...]} | null
    }

``range`` is set when the bundle claims *every* leaf in ``[start, end)`` (a full export), so
that a removed event leaves a detectable gap; filtered exports (one member, one person) leave
it null. A *withheld leaf* stands for an event the exporter may not disclose to this reader
(another member's access, policy rule ``common-amc-never-sees-other-amc-access``): only its
leaf hash is given, which proves its place in the tree and keeps a full export complete while
revealing nothing of the event (each leaf covers a random event id and a salted commitment).
``personal`` is null once retention erased the personal fields (the commitment still verifies)
or when the export withholds them.

Checks, in order (any failure raises :class:`JournalVerificationError` naming the check):

1. the checkpoint is signed by the trusted key, and its origin is that key's name;
2. each event re-encodes canonically to a leaf whose inclusion proof (RFC 9162 §2.1.3.2)
   verifies against the checkpoint root (a withheld leaf: its given hash);
3. revealed personal fields open their commitment;
4. the checkpoint is consistent (RFC 9162 §2.1.4.2) with the earlier one;
5. leaf indices strictly increase, without duplicates, and cover ``range`` when it is set.
"""

from __future__ import annotations

import binascii
import itertools
import json
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from gateway.errors import InvalidArgumentError
from gateway.journal._canonical import JournalEvent, PersonalFields, leaf_entry, verify_personal
from gateway.journal._checkpoint import Checkpoint, verify_checkpoint
from gateway.journal._errors import BundleError, JournalKeyError, JournalVerificationError
from gateway.journal._merkle import HASH_SIZE, leaf_hash, verify_consistency, verify_inclusion
from gateway.journal._note import parse_vkey

__all__ = [
    "BUNDLE_FORMAT",
    "BundleDocument",
    "VerificationReport",
    "verify_bundle",
]

BUNDLE_FORMAT: Final = "vigie/journal-bundle/v1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class BundlePersonal(_Model):
    salt: str
    record_refs: tuple[str, ...]
    subject_pseudonyms: tuple[str, ...]


class BundleEvent(_Model):
    leaf_index: int
    event: JournalEvent
    personal_commitment: str
    inclusion_proof: tuple[str, ...]
    personal: BundlePersonal | None = None


class BundleWithheldLeaf(_Model):
    leaf_index: int
    withheld_leaf_hash: str
    inclusion_proof: tuple[str, ...]


def _item_kind(value: Any) -> str:
    # One branch per item, chosen by its keys (no trial of both models on every event).
    return "withheld" if isinstance(value, dict) and "withheld_leaf_hash" in value else "event"


_Item = Annotated[
    Annotated[BundleEvent, Tag("event")] | Annotated[BundleWithheldLeaf, Tag("withheld")],
    Discriminator(_item_kind),
]


class BundleRange(_Model):
    start: int
    end: int


class BundleConsistency(_Model):
    checkpoint: str
    proof: tuple[str, ...]


class BundleDocument(_Model):
    """The bundle's JSON schema (see the module docstring)."""

    format: Literal["vigie/journal-bundle/v1"]
    vkey: str
    origin: str
    checkpoint: str
    range: BundleRange | None = None
    events: tuple[_Item, ...]
    consistency: BundleConsistency | None = None


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """What a successful verification established."""

    origin: str
    tree_size: int
    root_hash: str
    events_verified: int
    personal_revealed: int
    personal_absent: int
    complete_range: tuple[int, int] | None
    consistent_with_size: int | None
    events_withheld: int = 0
    """Leaves proven present whose events the exporter withheld from this reader."""


def _b64_32(value: str, what: str) -> bytes:
    try:
        raw = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    if len(raw) != HASH_SIZE or binascii.b2a_base64(raw, newline=False) != value.encode():
        raise BundleError(f"{what}: not canonical base64 of 32 bytes")
    return raw


def _hashes(values: tuple[str, ...], where: str) -> list[bytes]:
    return [_b64_32(value, f"{where}: proof element") for value in values]


def _parse(bundle: dict[str, Any]) -> BundleDocument:
    try:
        return BundleDocument.model_validate_json(_to_json(bundle))
    except ValidationError as e:
        first = e.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"bundle: malformed at {where or 'top level'} ({first['type']})") from e


def _to_json(bundle: dict[str, Any]) -> str:
    try:
        return json.dumps(bundle, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise BundleError("bundle: not a JSON document") from e


def _check_indices(doc: BundleDocument, size: int) -> tuple[int, int] | None:
    # 5. Strictly increasing indices (no duplicate, no reordering), inside the tree.
    indices = [e.leaf_index for e in doc.events]
    for before, after in itertools.pairwise(indices):
        if after <= before:
            raise BundleError(f"events: leaf index {after} after {before} (reordered or repeated)")
    if indices and (indices[0] < 0 or indices[-1] >= size):
        raise BundleError("events: leaf index outside the checkpoint's tree")
    if doc.range is None:
        return None
    start, end = doc.range.start, doc.range.end
    if not 0 <= start <= end <= size:
        raise BundleError("range: must satisfy 0 <= start <= end <= tree size")
    if indices != list(range(start, end)):
        raise BundleError(f"events: range [{start}, {end}) is not covered exactly (gap or extra)")
    return (start, end)


def _check_consistency(
    doc: BundleDocument, head: Checkpoint, vkey: str, previous_checkpoint: str | None
) -> int | None:
    # 4. Consistency with the officer's earlier checkpoint, else with the bundle's own.
    old_note = previous_checkpoint
    if old_note is None and doc.consistency is not None:
        old_note = doc.consistency.checkpoint
    if old_note is None:
        return None
    old = verify_checkpoint(old_note.encode("utf-8"), vkey)
    if old.size > head.size:
        raise BundleError("consistency: the earlier checkpoint is larger (log rolled back)")
    proof: list[bytes] = []
    if doc.consistency is not None:
        bundled = verify_checkpoint(doc.consistency.checkpoint.encode("utf-8"), vkey)
        if bundled.size != old.size:
            raise BundleError("consistency: proof is for another earlier tree size")
        proof = _hashes(doc.consistency.proof, "consistency")
    verify_consistency(old.size, head.size, old.root_hash, head.root_hash, proof)
    return old.size


def verify_bundle(
    bundle: dict[str, Any], trusted_vkey: str, previous_checkpoint: str | None = None
) -> VerificationReport:
    """Verify an export bundle offline with the journal's public key.

    Args:
        bundle: the decoded JSON document.
        trusted_vkey: the journal's verifier key, obtained out of band (never from the bundle).
        previous_checkpoint: an earlier signed checkpoint (note text) the verifier kept.

    Raises:
        JournalVerificationError: any check fails (subclasses say which kind).
    """
    doc = _parse(bundle)
    # 1. Signature by the trusted key; the bundle's own vkey is informative only.
    try:
        verifier = parse_vkey(trusted_vkey)
    except JournalKeyError as e:
        raise JournalVerificationError("trusted key: malformed verifier key") from e
    if doc.vkey != trusted_vkey:
        raise BundleError("bundle: names a key other than the trusted one")
    if doc.origin != verifier.name:
        raise BundleError("bundle: origin is not the trusted key's log")
    head = verify_checkpoint(doc.checkpoint.encode("utf-8"), verifier)
    complete = _check_indices(doc, head.size)
    revealed = absent = withheld = 0
    for item in doc.events:
        where = f"event at leaf {item.leaf_index}"
        if isinstance(item, BundleWithheldLeaf):
            # 2'. A withheld event: its leaf hash, included in the signed tree.
            leaf = _b64_32(item.withheld_leaf_hash, f"{where}: withheld leaf hash")
            proof = _hashes(item.inclusion_proof, where)
            try:
                verify_inclusion(item.leaf_index, head.size, leaf, proof, head.root_hash)
            except JournalVerificationError as e:
                raise type(e)(f"{where}: {e.message}") from e
            withheld += 1
            continue
        # 2. Canonical re-encoding, leaf hash, inclusion in the signed tree.
        try:
            entry = leaf_entry(item.event, item.personal_commitment)
        except InvalidArgumentError as e:
            raise BundleError(f"{where}: cannot be encoded canonically") from e
        proof = _hashes(item.inclusion_proof, where)
        try:
            verify_inclusion(item.leaf_index, head.size, leaf_hash(entry), proof, head.root_hash)
        except JournalVerificationError as e:
            raise type(e)(f"{where}: {e.message}") from e
        # 3. Revealed personal fields open the commitment.
        if item.personal is None:
            absent += 1
            continue
        salt = _b64_32(item.personal.salt, f"{where}: salt")
        fields = PersonalFields(
            record_refs=item.personal.record_refs,
            subject_pseudonyms=item.personal.subject_pseudonyms,
        )
        try:
            verify_personal(fields, salt, item.personal_commitment)
        except JournalVerificationError as e:
            raise type(e)(f"{where}: {e.message}") from e
        revealed += 1
    consistent = _check_consistency(doc, head, trusted_vkey, previous_checkpoint)
    return VerificationReport(
        origin=head.origin,
        tree_size=head.size,
        root_hash=head.root_hash.hex(),
        events_verified=len(doc.events) - withheld,
        personal_revealed=revealed,
        personal_absent=absent,
        complete_range=complete,
        consistent_with_size=consistent,
        events_withheld=withheld,
    )
