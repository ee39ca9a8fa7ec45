"""Errors of the journal package::

    VigieError
    └── JournalError                    base of every journal failure
        ├── JournalVerificationError    something does not verify: treat the data as tampered
        │   ├── ProofError              inclusion or consistency proof does not verify
        │   ├── NoteError               signed note malformed, unsigned or badly signed
        │   ├── CommitmentError         revealed personal fields do not match their commitment
        │   └── BundleError             export bundle malformed or incoherent
        ├── JournalKeyError             key type outside the allowlist (Ed25519 only), bad vkey
        └── JournalIntegrityError       the node store is missing or contradicts a node
                                        (also an UnavailableError: the journal fails closed)

Messages name the check and the position (leaf index, tree size), never event contents.
"""

from __future__ import annotations

from gateway.errors import UnavailableError, VigieError

__all__ = [
    "BundleError",
    "CommitmentError",
    "JournalError",
    "JournalIntegrityError",
    "JournalKeyError",
    "JournalVerificationError",
    "NoteError",
    "ProofError",
]


class JournalError(VigieError):
    """Base of journal failures."""

    reason = "JOURNAL_ERROR"


class JournalVerificationError(JournalError):
    """A proof, signature, commitment or bundle does not verify."""

    reason = "JOURNAL_VERIFICATION_FAILED"


class ProofError(JournalVerificationError):
    """An RFC 9162 inclusion or consistency proof does not verify."""

    reason = "JOURNAL_PROOF_INVALID"


class NoteError(JournalVerificationError):
    """A C2SP signed note or checkpoint is malformed or lacks a valid trusted signature."""

    reason = "JOURNAL_NOTE_INVALID"


class CommitmentError(JournalVerificationError):
    """Revealed personal fields and salt do not open the event's commitment."""

    reason = "JOURNAL_COMMITMENT_MISMATCH"


class BundleError(JournalVerificationError):
    """An export bundle is malformed or its parts do not fit together."""

    reason = "JOURNAL_BUNDLE_INVALID"


class JournalKeyError(JournalError):
    """A key is not an allowlisted type (Ed25519) or a verifier key string is malformed."""

    reason = "JOURNAL_KEY_INVALID"


class JournalIntegrityError(JournalError, UnavailableError):
    """The node store lacks a node it must hold, or holds a different hash for it."""

    reason = "JOURNAL_INTEGRITY"
