"""The tamper-evident journal's cryptographic core (pure: no database, no gRPC).

- RFC 9162 hashing and proofs: :func:`leaf_hash`, :func:`node_hash`, :func:`verify_inclusion`,
  :func:`verify_consistency` (and list-based reference generators).
- :class:`MerkleTree` over a :class:`NodeStore` of write-once perfect-subtree hashes: roots and
  proofs from O(log n) stored nodes, never re-reading the log.
- :func:`leaf_entry`: the one canonical (RFC 8785) encoding of a :class:`JournalEvent`, with
  personal fields replaced by a salted commitment (:func:`commit_personal`) so that
  retention can erase them while every proof still verifies.
- C2SP signed notes and tlog-checkpoints with Ed25519 only: :func:`sign_checkpoint`,
  :func:`verify_checkpoint`, :func:`vkey_for`, :func:`parse_vkey`.
- Export bundles: :func:`build_bundle` (events, or :class:`WithheldLeaf` hashes for events a
  reader may not see), and the offline verifier
  :func:`gateway.journal.verify.verify_bundle`.

Design: ``docs/adr/0003-journal-merkle-checkpoints.md``.
"""

from gateway.journal._canonical import (
    SALT_SIZE,
    JournalEvent,
    PersonalFields,
    commit_personal,
    event_time,
    leaf_entry,
    verify_personal,
)
from gateway.journal._checkpoint import (
    Checkpoint,
    parse_checkpoint_text,
    sign_checkpoint,
    verify_checkpoint,
)
from gateway.journal._errors import (
    BundleError,
    CommitmentError,
    JournalError,
    JournalIntegrityError,
    JournalKeyError,
    JournalVerificationError,
    NoteError,
    ProofError,
)
from gateway.journal._export import ExportEvent, WithheldLeaf, build_bundle
from gateway.journal._merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_proof_of,
    inclusion_proof_of,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from gateway.journal._note import (
    NoteVerifier,
    key_id,
    load_signing_key,
    open_note,
    parse_vkey,
    sign_note,
    vkey_for,
)
from gateway.journal._tree import InMemoryNodeStore, MerkleTree, NodeId, NodeStore
from gateway.journal.verify import BUNDLE_FORMAT, VerificationReport, verify_bundle

__all__ = [
    "BUNDLE_FORMAT",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "SALT_SIZE",
    "BundleError",
    "Checkpoint",
    "CommitmentError",
    "ExportEvent",
    "InMemoryNodeStore",
    "JournalError",
    "JournalEvent",
    "JournalIntegrityError",
    "JournalKeyError",
    "JournalVerificationError",
    "MerkleTree",
    "NodeId",
    "NodeStore",
    "NoteError",
    "NoteVerifier",
    "PersonalFields",
    "ProofError",
    "VerificationReport",
    "WithheldLeaf",
    "build_bundle",
    "commit_personal",
    "consistency_proof_of",
    "event_time",
    "inclusion_proof_of",
    "key_id",
    "leaf_entry",
    "leaf_hash",
    "load_signing_key",
    "node_hash",
    "open_note",
    "parse_checkpoint_text",
    "parse_vkey",
    "root_from_inclusion_proof",
    "root_of",
    "sign_checkpoint",
    "sign_note",
    "verify_bundle",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_personal",
    "vkey_for",
]
