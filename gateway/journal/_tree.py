"""An append-only RFC 9162 Merkle tree over a store of perfect-subtree hashes.

The tree never re-reads the log. It keeps, in a :class:`NodeStore`, the hash of every
*perfect* subtree: node ``(level, index)`` covers leaves ``[index * 2**level,
(index + 1) * 2**level)``; level 0 holds the leaf hashes. A perfect node is complete the
moment its last leaf is appended, so it is written once and never changes.

Any tree hash the RFC needs, for any size ``m`` up to the integrated size, is the hash of an
aligned range ``[a, b)``; that range splits greedily into at most ``log2(b - a) + 1`` perfect
nodes (a Trillian-style compact range), folded from the right::

    MTH(D[a:b]) = node_hash(P1, node_hash(P2, ... node_hash(Pk-1, Pk)))

so a root or a proof reads O(log n) nodes in one :meth:`NodeStore.get_many` call, and an
append writes O(1) amortised nodes in one :meth:`NodeStore.put_many` call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from gateway.errors import InvalidArgumentError
from gateway.ids import RootHash
from gateway.journal._errors import JournalIntegrityError
from gateway.journal._merkle import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = ["InMemoryNodeStore", "MerkleTree", "NodeId", "NodeStore"]

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree; level 0 is the leaves."""

_Range = tuple[int, int]


class NodeStore(Protocol):
    """Storage port for perfect-subtree hashes (one row per node in SQL).

    Contract for implementations (SQLite, PostgreSQL, memory):

    - Keys are ``(level, index)`` pairs of non-negative integers; values are 32-byte hashes.
    - :meth:`get_many` returns the hashes it holds for the ids asked; absent ids are simply
      missing from the result (the tree turns that into :class:`JournalIntegrityError`).
    - :meth:`put_many` inserts new nodes. Re-putting a node with the *same* hash is a no-op
      (so re-integrating after a crash is safe); a *different* hash for a stored id must raise
      :class:`JournalIntegrityError` (perfect nodes never change). It must be atomic with the
      caller's transaction when the caller has one.
    - The store does not know the tree size; the sequencer passes it to :class:`MerkleTree`.
    """

    def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Hashes of the stored nodes among ``ids``."""
        ...

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:
        """Insert ``nodes``; identical re-puts are no-ops, conflicting ones raise."""
        ...


class InMemoryNodeStore:
    """A dict-backed :class:`NodeStore` for tests and offline tools."""

    def __init__(self) -> None:
        self._nodes: dict[NodeId, bytes] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Hashes of the stored nodes among ``ids``."""
        return {i: self._nodes[i] for i in ids if i in self._nodes}

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:
        """Insert ``nodes`` all or nothing.

        Raises:
            JournalIntegrityError: a node is already stored with a different hash.
        """
        for node_id, value in nodes.items():
            old = self._nodes.get(node_id)
            if old is not None and old != value:
                raise JournalIntegrityError(f"node {node_id} already stored with another hash")
        self._nodes.update(nodes)

    def replace(self, node_id: NodeId, value: bytes) -> None:
        """Overwrite one node, bypassing the write-once rule (tamper simulations in tests)."""
        self._nodes[node_id] = value


def _perfect_nodes(start: int, end: int) -> list[NodeId]:
    """Split the aligned range ``[start, end)`` into perfect nodes, largest first."""
    nodes: list[NodeId] = []
    pos = start
    while pos < end:
        level = (end - pos).bit_length() - 1
        while pos & ((1 << level) - 1):
            level -= 1
        nodes.append((level, pos >> level))
        pos += 1 << level
    return nodes


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _path_ranges(m: int, start: int, end: int) -> list[_Range]:
    # RFC 9162 §2.1.3.1 PATH(m, D[start:end]), returning the ranges whose hashes form it.
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path_ranges(m, start, start + k), (start + k, end)]
    return [*_path_ranges(m - k, start + k, end), (start, start + k)]


def _subproof_ranges(m: int, start: int, end: int, complete: bool) -> list[_Range]:
    # RFC 9162 §2.1.4.1 SUBPROOF(m, D[start:end], b).
    n = end - start
    if m == n:
        return [] if complete else [(start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof_ranges(m, start, start + k, complete), (start + k, end)]
    return [*_subproof_ranges(m - k, start + k, end, False), (start, start + k)]


class MerkleTree:
    """The journal's tree of ``size`` integrated leaves, held as perfect nodes in ``store``.

    Only one writer may append (the journal's single logical sequencer); readers may build
    their own :class:`MerkleTree` over the same store with any size already integrated.
    """

    def __init__(self, store: NodeStore, size: int = 0) -> None:
        if size < 0:
            raise InvalidArgumentError.for_field("tree_size", "must be >= 0")
        self._store = store
        self._size = size
        self._frontier: list[tuple[NodeId, bytes]] | None = None

    @property
    def size(self) -> int:
        """Number of leaves integrated so far."""
        return self._size

    def append(self, leaf: bytes) -> int:
        """Append one leaf hash; returns the new tree size.

        Raises:
            InvalidArgumentError: ``leaf`` is not a 32-byte hash.
            JournalIntegrityError: the store lacks a node of the current tree or refuses one.
        """
        return self.append_many([leaf])

    def append_many(self, leaves: Iterable[bytes]) -> int:
        """Append leaf hashes in order with one read and one write; returns the new size.

        Raises:
            InvalidArgumentError: a leaf is not a 32-byte hash.
            JournalIntegrityError: the store lacks a node of the current tree or refuses one.
        """
        batch = list(leaves)
        if any(len(leaf) != HASH_SIZE for leaf in batch):
            raise InvalidArgumentError.for_field("leaf_hash", f"must be {HASH_SIZE} bytes")
        if not batch:
            return self._size
        # The frontier (compact range of [0, size)) holds every left sibling an append needs.
        frontier = list(self._load_frontier())
        new: dict[NodeId, bytes] = {}
        size = self._size
        for leaf in batch:
            node, value = (0, size), leaf
            new[node] = value
            while frontier and frontier[-1][0][0] == node[0]:
                (_, left_index), left = frontier.pop()
                value = node_hash(left, value)
                node = (node[0] + 1, left_index >> 1)
                new[node] = value
            frontier.append((node, value))
            size += 1
        self._store.put_many(new)
        self._size, self._frontier = size, frontier
        return size

    def _load_frontier(self) -> list[tuple[NodeId, bytes]]:
        if self._frontier is None:
            ids = _perfect_nodes(0, self._size)
            values = self._fetch(ids)
            self._frontier = [(i, values[i]) for i in ids]
        return self._frontier

    def _fetch(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        values = self._store.get_many(ids) if ids else {}
        missing = [i for i in ids if i not in values]
        if missing:
            raise JournalIntegrityError(f"node store lacks {len(missing)} node(s): {missing[0]}...")
        if any(len(values[i]) != HASH_SIZE for i in ids):
            raise JournalIntegrityError("node store returned a hash of the wrong length")
        return values

    def _hashes(self, ranges: Sequence[_Range]) -> list[bytes]:
        """Hashes of aligned ranges, with a single store read."""
        layouts = [_perfect_nodes(a, b) for a, b in ranges]
        values = self._fetch(sorted({i for layout in layouts for i in layout}))
        out: list[bytes] = []
        for layout in layouts:
            acc = values[layout[-1]]
            for node_id in reversed(layout[:-1]):
                acc = node_hash(values[node_id], acc)
            out.append(acc)
        return out

    def _check_size(self, field: str, size: int) -> None:
        if not 0 <= size <= self._size:
            raise InvalidArgumentError.for_field(field, "must be in [0, integrated tree size]")

    def root(self, size: int | None = None) -> RootHash:
        """Root hash of the tree at ``size`` leaves (default: the integrated size).

        Raises:
            InvalidArgumentError: ``size`` is negative or above the integrated size.
            JournalIntegrityError: the store lacks a node.
        """
        size = self._size if size is None else size
        self._check_size("tree_size", size)
        if size == 0:
            return EMPTY_ROOT
        return RootHash(self._hashes([(0, size)])[0])

    def leaf(self, index: int) -> bytes:
        """The stored hash of leaf ``index``.

        Raises:
            InvalidArgumentError: ``index`` is not an integrated leaf.
            JournalIntegrityError: the store lacks the leaf.
        """
        if not 0 <= index < self._size:
            raise InvalidArgumentError.for_field("leaf_index", "must be in [0, tree_size)")
        return self._fetch([(0, index)])[(0, index)]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Inclusion proof of leaf ``index`` in the tree of ``size`` (RFC 9162 §2.1.3.1).

        Raises:
            InvalidArgumentError: ``size`` above the integrated size, or ``index >= size``.
            JournalIntegrityError: the store lacks a node.
        """
        self._check_size("tree_size", size)
        if not 0 <= index < size:
            raise InvalidArgumentError.for_field("leaf_index", "must be in [0, tree_size)")
        return self._hashes(_path_ranges(index, 0, size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Consistency proof from ``old_size`` to ``new_size`` (RFC 9162 §2.1.4.1).

        Empty when ``old_size`` is 0 or equals ``new_size``.

        Raises:
            InvalidArgumentError: sizes out of order or above the integrated size.
            JournalIntegrityError: the store lacks a node.
        """
        self._check_size("new_size", new_size)
        if not 0 <= old_size <= new_size:
            raise InvalidArgumentError.for_field("old_size", "must be in [0, new_size]")
        if old_size in (0, new_size):
            return []
        return self._hashes(_subproof_ranges(old_size, 0, new_size, True))
