"""Journal storage test helpers: a fixed signing key, events written as the gateway does."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.journal import vkey_for
from gateway.journal.sequencer import StoredCheckpoint, integrate
from gateway.store import AccessEvent, Database, SqlAuditStore

ORIGIN = "vigie.test/journal-store"
SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"journal store").digest())
VKEY = vkey_for(ORIGIN, SIGNING_KEY.public_key())
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MEMBERS = ("cpam-75", "mut-alpha", "mut-beta")
PURPOSES = ("control", "fraud_detection", "audit")
METHODS = ("GetSuspicion", "CheckClaim", "ListAccessEvents")


def access_event(
    k: int, *, time: datetime | None = None, pseudonyms: Sequence[str] = ()
) -> AccessEvent:
    """The k-th synthetic call: members, purposes and decisions rotate; every 4th is refused."""
    denied = k % 4 == 3
    return AccessEvent(
        time=time or T0 + timedelta(minutes=k),
        member_id=MEMBERS[k % 3],
        principal=f"agent-{k % 5}",
        cert_fingerprint=f"{k:064x}",
        method=METHODS[k % 3],
        purpose=PURPOSES[k % 3],
        decision="deny" if denied else "allow",
        rule_ids=(f"rule_{k % 7}",) if not denied else ("deny-default", f"rule_{k % 7}"),
        bundle_hash="ab" * 32,
        request_id=f"req-{k}",
        outcome="PERMISSION_DENIED" if denied else "OK",
        record_count=k % 3,
        record_refs=tuple(f"suspicion/{k}-{j}" for j in range(k % 3)),
        subject_pseudonyms=tuple(pseudonyms),
    )


def write_events(db: Database, count: int, start: int = 0, **kw: object) -> list[int]:
    """Journal ``count`` events in one transaction; returns their sequence numbers."""
    store = SqlAuditStore()
    events = [access_event(start + k, **kw) for k in range(count)]  # type: ignore[arg-type]
    return db.run_sync(lambda s: store.append_many(s, events))


def integrate_now(db: Database) -> StoredCheckpoint | None:
    """One sequencer round without grace period (tests write events in the past anyway)."""
    return integrate(db, SIGNING_KEY, ORIGIN, grace=timedelta(0))
