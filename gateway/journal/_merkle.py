"""RFC 9162 (RFC 6962) Merkle tree hashing and proofs: pure functions over bytes.

Hashing (RFC 9162 §2.1.1)::

    MTH({})        = SHA-256()
    leaf_hash(d)   = SHA-256(0x00 || d)
    node_hash(l,r) = SHA-256(0x01 || l || r)
    MTH(D[n])      = node_hash(MTH(D[0:k]), MTH(D[k:n]))   k = largest power of 2 < n

The list-based generators here follow the RFC's recursive definitions literally (O(n) per
call): they are the reference the incremental :class:`~gateway.journal.MerkleTree` is tested
against. The verifiers follow the RFC's iterative algorithms step by step and never trust the
proof's length or the sizes they are given.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from gateway.errors import InvalidArgumentError
from gateway.ids import LeafHash, RootHash
from gateway.journal._errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof_of",
    "inclusion_proof_of",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = RootHash(hashlib.sha256(b"").digest())
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


def leaf_hash(entry: bytes) -> LeafHash:
    """Hash one log entry as a leaf: SHA-256(0x00 || entry) (RFC 9162 §2.1.1)."""
    return LeafHash(hashlib.sha256(_LEAF_PREFIX + entry).digest())


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children into their parent: SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def root_of(leaf_hashes: Sequence[bytes]) -> RootHash:
    """The Merkle tree hash of a list of leaf hashes (RFC 9162 §2.1.1)."""
    return RootHash(_mth(leaf_hashes))


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    # RFC 9162 §2.1.3.1: PATH(m, D[n]).
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def inclusion_proof_of(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Inclusion proof of leaf ``index`` in the tree of ``leaf_hashes`` (RFC 9162 §2.1.3.1).

    Raises:
        InvalidArgumentError: ``index`` is not a leaf of the tree.
    """
    if not 0 <= index < len(leaf_hashes):
        raise InvalidArgumentError.for_field("leaf_index", "must be in [0, tree_size)")
    return _path(index, leaf_hashes)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    # RFC 9162 §2.1.4.1: SUBPROOF(m, D[n], b).
    n = len(leaves)
    if m == n:
        return [] if complete else [_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def consistency_proof_of(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Consistency proof from ``old_size`` to ``len(leaf_hashes)`` (RFC 9162 §2.1.4.1).

    The proof is empty when ``old_size`` is 0 or equals the new size.

    Raises:
        InvalidArgumentError: ``old_size`` is negative or larger than the tree.
    """
    if not 0 <= old_size <= len(leaf_hashes):
        raise InvalidArgumentError.for_field("old_size", "must be in [0, tree_size]")
    if old_size in (0, len(leaf_hashes)):
        return []
    return _subproof(old_size, leaf_hashes, True)


def _check_hashes(what: str, *hashes: bytes) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError(f"{what}: every hash must be {HASH_SIZE} bytes")


def root_from_inclusion_proof(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]
) -> RootHash:
    """Recompute the root that ``proof`` leads to from ``leaf`` (RFC 9162 §2.1.3.2 steps 1-4).

    Raises:
        ProofError: malformed proof, or index/size that no proof can satisfy.
    """
    _check_hashes("inclusion proof", leaf, *proof)
    # 1. The leaf must be inside the tree.
    if not 0 <= index < tree_size:
        raise ProofError("inclusion proof: leaf index not below tree size")
    # 2. fn = leaf_index, sn = tree_size - 1.  3. r = leaf hash.
    fn, sn, r = index, tree_size - 1, leaf
    # 4. Walk the path.
    for p in proof:
        if sn == 0:  # 4a. proof longer than the tree is high
            raise ProofError("inclusion proof: too many hashes for the tree size")
        if fn & 1 or fn == sn:  # 4b. p is a left sibling
            r = node_hash(p, r)
            while fn and not fn & 1:  # 4b.ii. climb while r is a left child
                fn >>= 1
                sn >>= 1
        else:  # p is a right sibling
            r = node_hash(r, p)
        fn >>= 1  # 4c.
        sn >>= 1
    # 5. (first half) the path must reach the top.
    if sn != 0:
        raise ProofError("inclusion proof: too few hashes for the tree size")
    return RootHash(r)


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is leaf ``index`` of the tree of ``tree_size`` with ``root``.

    RFC 9162 §2.1.3.2.

    Raises:
        ProofError: the proof does not verify.
    """
    _check_hashes("inclusion proof", root)
    computed = root_from_inclusion_proof(index, tree_size, leaf, proof)
    # 5. (second half) compare with the expected root, in constant time.
    if not hmac.compare_digest(computed, root):
        raise ProofError("inclusion proof: computed root differs from the tree root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the one of ``old_size``.

    RFC 9162 §2.1.4.2, with the edge cases of its §2.1.4.1 made explicit: an empty old tree
    is consistent with anything through an empty proof, and equal sizes need equal roots and
    an empty proof.

    Raises:
        ProofError: the proof does not verify.
    """
    _check_hashes("consistency proof", old_root, new_root, *proof)
    if not 0 <= old_size <= new_size:
        raise ProofError("consistency proof: old size above new size")
    if old_size == new_size or old_size == 0:
        if proof:
            raise ProofError("consistency proof: must be empty for these sizes")
        if old_size == new_size and not hmac.compare_digest(old_root, new_root):
            raise ProofError("consistency proof: equal sizes with different roots")
        return
    # 1. A non-trivial proof is never empty.
    if not proof:
        raise ProofError("consistency proof: empty")
    path = list(proof)
    # 2. If old_size is a power of 2, the old root is the first node of the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. Skip the levels where the old tree's last node is a right child.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = first value of the path.
    fr = sr = path[0]
    # 6. Walk the rest.
    for c in path[1:]:
        if sn == 0:  # 6a.
            raise ProofError("consistency proof: too many hashes for the tree sizes")
        if fn & 1 or fn == sn:  # 6b.
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:  # 6b.ii.
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # 6c.
        sn >>= 1
    # 7. Both roots recomputed, and the path reached the top of the new tree.
    if sn != 0:
        raise ProofError("consistency proof: too few hashes for the tree sizes")
    if not hmac.compare_digest(fr, old_root):
        raise ProofError("consistency proof: computed old root differs")
    if not hmac.compare_digest(sr, new_root):
        raise ProofError("consistency proof: computed new root differs")
