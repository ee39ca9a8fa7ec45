"""A small signed journal built in memory for the bundle tests (a module, so importable)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.journal import (
    ExportEvent,
    InMemoryNodeStore,
    JournalEvent,
    MerkleTree,
    PersonalFields,
    commit_personal,
    event_time,
    leaf_entry,
    leaf_hash,
    sign_checkpoint,
    vkey_for,
)

ORIGIN = "vigie.test/journal"
SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"journal tests").digest())
VKEY = vkey_for(ORIGIN, SIGNING_KEY.public_key())
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def make_event(seq: int) -> tuple[JournalEvent, PersonalFields, bytes]:
    event = JournalEvent(
        seq=seq,
        event_id=str(uuid.UUID(int=seq + 1)),
        time=event_time(T0 + timedelta(seconds=seq, microseconds=seq)),
        member_id=["cpam-75", "mut-alpha", ""][seq % 3],
        principal=f"agent-{seq % 5}",
        cert_fingerprint=f"{seq:064x}",
        method=["GetSuspicion", "CheckClaim", "ListAccessEvents"][seq % 3],
        purpose=["control", "fraud_detection", "audit"][seq % 3],
        decision="deny" if seq % 4 == 3 else "allow",
        rule_ids=(f"rule-{seq % 7}",),
        bundle_hash="ab" * 32,
        request_id=f"req-{seq}",
        outcome="PERMISSION_DENIED" if seq % 4 == 3 else "OK",
        record_count=seq % 3,
    )
    personal = PersonalFields(
        record_refs=tuple(f"suspicion/{seq}-{k}" for k in range(seq % 3)),
        subject_pseudonyms=(f"gw-2026:pseudo{seq}",) if seq % 2 else (),
    )
    salt = hashlib.sha256(b"salt %d" % seq).digest()
    return event, personal, salt


@dataclass
class Journal:
    """Events, their tree and signed checkpoints, as the sequencer would keep them."""

    tree: MerkleTree = field(default_factory=lambda: MerkleTree(InMemoryNodeStore()))
    items: list[ExportEvent] = field(default_factory=list)
    checkpoints: dict[int, bytes] = field(default_factory=dict)

    def append(self, count: int) -> bytes:
        for _ in range(count):
            seq = len(self.items) + 1
            event, personal, salt = make_event(seq)
            commitment = commit_personal(personal, salt)
            index = self.tree.size
            self.tree.append(leaf_hash(leaf_entry(event, commitment)))
            self.items.append(ExportEvent(index, event, commitment, personal, salt))
        note = sign_checkpoint(ORIGIN, self.tree.size, self.tree.root(), SIGNING_KEY)
        self.checkpoints[self.tree.size] = note
        return note
