"""C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the journal's signed tree head.

A checkpoint is a signed note (see ``_note``) whose text is::

    <origin>\\n                     unique log identity; Vigie signs with a key of the same name
    <tree size>\\n                  ASCII decimal, no leading zeroes ("0" for the empty tree)
    <base64 root hash>\\n           RFC 9162 root at that size, standard padded base64
    [<extension line>\\n ...]       optional, non-empty, opaque

The log must never sign two inconsistent checkpoints (the sequencer's duty, checked by
consistency proofs).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.errors import InvalidArgumentError
from gateway.ids import RootHash
from gateway.journal._errors import NoteError
from gateway.journal._merkle import HASH_SIZE
from gateway.journal._note import NoteVerifier, _b64decode_canonical, open_note, parse_vkey
from gateway.journal._note import sign_note as _sign_note

__all__ = [
    "Checkpoint",
    "parse_checkpoint_text",
    "sign_checkpoint",
    "verify_checkpoint",
]

_SIZE = re.compile(r"0|[1-9][0-9]*")
_MAX_SIZE: Final = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed tree head: origin, size, root hash and extension lines."""

    origin: str
    size: int
    root_hash: RootHash
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text of this checkpoint (what is signed).

        Raises:
            InvalidArgumentError: a field cannot be written as a checkpoint line.
        """
        if not self.origin or "\n" in self.origin:
            raise InvalidArgumentError.for_field("origin", "must be one non-empty line")
        if not 0 <= self.size <= _MAX_SIZE:
            raise InvalidArgumentError.for_field("tree_size", "must be in [0, 2**64)")
        if len(self.root_hash) != HASH_SIZE:
            raise InvalidArgumentError.for_field("root_hash", f"must be {HASH_SIZE} bytes")
        if any(not line or "\n" in line for line in self.extensions):
            raise InvalidArgumentError.for_field("extensions", "each must be one non-empty line")
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = (self.origin, str(self.size), root, *self.extensions)
        return "".join(f"{line}\n" for line in lines)


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse checkpoint note text (no signature check: use :func:`verify_checkpoint`).

    Raises:
        NoteError: the text is not a well-formed checkpoint body.
    """
    # 1. At least three non-empty lines, each ending in a newline.
    if not text.endswith("\n"):
        raise NoteError("checkpoint: text must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise NoteError("checkpoint: needs origin, size and root lines, none empty")
    origin, size_text, root_text, *extensions = lines
    # 2. Tree size: ASCII decimal without leading zeroes.
    if not _SIZE.fullmatch(size_text) or int(size_text) > _MAX_SIZE:
        raise NoteError("checkpoint: tree size is not canonical decimal")
    # 3. Root hash: canonical base64 of 32 bytes.
    root = _b64decode_canonical(root_text)
    if root is None or len(root) != HASH_SIZE:
        raise NoteError("checkpoint: root hash is not base64 of 32 bytes")
    return Checkpoint(origin, int(size_text), RootHash(root), tuple(extensions))


def sign_checkpoint(
    origin: str,
    size: int,
    root: bytes,
    private_key: Ed25519PrivateKey,
    extensions: tuple[str, ...] = (),
) -> bytes:
    """Sign a checkpoint as a C2SP note, under a key named after the origin.

    Raises:
        InvalidArgumentError: a field cannot be written as a checkpoint line.
        JournalKeyError: the key is not Ed25519, or the origin is not a valid key name.
    """
    text = Checkpoint(origin, size, RootHash(root), tuple(extensions)).text()
    return _sign_note(text, origin, private_key)


def verify_checkpoint(
    note: bytes, vkey: str | NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint with a trusted key and return it.

    Args:
        note: the signed note bytes.
        vkey: the trusted verifier key (string form or parsed).
        origin: the expected origin; by default the key's name (Vigie signs under its origin).

    Raises:
        JournalKeyError: ``vkey`` is malformed or not Ed25519.
        NoteError: bad note, missing or invalid signature, malformed body or wrong origin.
    """
    verifier = parse_vkey(vkey) if isinstance(vkey, str) else vkey
    # 1. Signature by the trusted key (c2sp.org/signed-note).
    text = open_note(note, verifier)
    # 2. Body (c2sp.org/tlog-checkpoint "Note text").
    checkpoint = parse_checkpoint_text(text)
    # 3. The origin names this log, not another one signed by the same key.
    if checkpoint.origin != (verifier.name if origin is None else origin):
        raise NoteError("checkpoint: origin is not the expected log")
    return checkpoint
