"""The incremental tree: agrees with the naive recursion, reads O(log n), nodes are write-once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidArgumentError
from gateway.journal import (
    EMPTY_ROOT,
    InMemoryNodeStore,
    JournalIntegrityError,
    MerkleTree,
    NodeId,
    NodeStore,
    ProofError,
    consistency_proof_of,
    inclusion_proof_of,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(200)]
MAX = 64


class CountingStore:
    """A NodeStore that counts calls and nodes read, to check the O(log n) claim."""

    def __init__(self) -> None:
        self.inner = InMemoryNodeStore()
        self.get_calls = 0
        self.put_calls = 0
        self.nodes_read = 0

    def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.get_calls += 1
        self.nodes_read += len(ids)
        return self.inner.get_many(ids)

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:
        self.put_calls += 1
        self.inner.put_many(nodes)


def _tree(n: int, store: NodeStore | None = None) -> MerkleTree:
    tree = MerkleTree(store if store is not None else InMemoryNodeStore())
    tree.append_many(LEAVES[:n])
    return tree


@pytest.fixture(scope="module")
def full() -> MerkleTree:
    return _tree(MAX)


def test_every_leaf_inclusion_proof_verifies_for_every_size_up_to_64(full: MerkleTree) -> None:
    for n in range(1, MAX + 1):
        root = full.root(n)
        assert root == root_of(LEAVES[:n])
        for i in range(n):
            proof = full.inclusion_proof(i, n)
            assert proof == inclusion_proof_of(LEAVES[:n], i)
            verify_inclusion(i, n, LEAVES[i], proof, root)


def test_consistency_proofs_verify_for_every_pair_of_sizes_up_to_64(full: MerkleTree) -> None:
    roots = [full.root(n) for n in range(MAX + 1)]
    for n in range(MAX + 1):
        for m in range(n + 1):
            proof = full.consistency_proof(m, n)
            assert proof == consistency_proof_of(LEAVES[:n], m)
            verify_consistency(m, n, roots[m], roots[n], proof)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=12))
def test_batched_appends_build_the_same_tree_as_single_appends(batches: list[int]) -> None:
    tree = MerkleTree(InMemoryNodeStore())
    start = 0
    for size in batches:
        assert tree.append_many(LEAVES[start : start + size]) == start + size
        start += size
        assert tree.root() == root_of(LEAVES[:start])


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=150), st.integers(min_value=1, max_value=40))
def test_reopened_tree_continues_from_the_store(first: int, more: int) -> None:
    """Crash/restart: a new MerkleTree over the same store and size appends correctly."""
    store = InMemoryNodeStore()
    _tree(first, store)
    reopened = MerkleTree(store, first)
    reopened.append_many(LEAVES[first : first + more])
    assert reopened.root() == root_of(LEAVES[: first + more])


def test_reintegrating_the_same_leaves_after_a_crash_is_harmless() -> None:
    store = InMemoryNodeStore()
    _tree(37, store)
    again = MerkleTree(store, 30)  # the sequencer restarts from an older committed size
    again.append_many(LEAVES[30:37])
    assert again.root() == root_of(LEAVES[:37])


def test_perfect_nodes_are_write_once() -> None:
    store = InMemoryNodeStore()
    _tree(8, store)
    with pytest.raises(JournalIntegrityError):
        MerkleTree(store, 4).append_many(LEAVES[100:104])  # different leaves at 4..7


def test_store_holds_about_two_nodes_per_leaf() -> None:
    store = InMemoryNodeStore()
    _tree(128, store)
    assert len(store) == 2 * 128 - 1


@pytest.mark.parametrize("n", [1, 2, 3, 100, 128, 199])
def test_roots_and_proofs_read_log_n_nodes_in_one_call(n: int) -> None:
    counting = CountingStore()
    _tree(n, counting.inner)
    tree = MerkleTree(counting, n)
    bound = 2 * n.bit_length() + 2
    for op in (
        lambda: tree.root(n),
        lambda: tree.inclusion_proof(n // 2, n),
        lambda: tree.consistency_proof(max(1, n // 3), n),
    ):
        counting.get_calls = counting.nodes_read = 0
        op()
        assert counting.get_calls <= 1
        assert counting.nodes_read <= bound


def test_append_batch_is_one_read_and_one_write() -> None:
    counting = CountingStore()
    tree = MerkleTree(counting)
    tree.append_many(LEAVES[:50])
    tree.append_many(LEAVES[50:100])
    assert counting.put_calls == 2
    assert counting.get_calls == 0  # empty start; the frontier is then kept in memory
    reopened = MerkleTree(counting, 100)
    reopened.append_many(LEAVES[100:150])
    assert counting.get_calls == 1 and counting.nodes_read == bin(100).count("1")


def test_missing_node_fails_closed() -> None:
    store = InMemoryNodeStore()
    _tree(10, store)
    with pytest.raises(JournalIntegrityError) as info:
        MerkleTree(store, 11).root()
    assert isinstance(info.value, JournalIntegrityError)


def test_tampered_node_in_the_store_breaks_proofs() -> None:
    store = InMemoryNodeStore()
    tree = _tree(16, store)
    root = tree.root()
    store.replace((0, 3), leaf_hash(b"forged"))
    with pytest.raises(ProofError):
        verify_inclusion(3, 16, leaf_hash(b"forged"), tree.inclusion_proof(3, 16), root)
    store.replace((2, 0), leaf_hash(b"forged interior"))  # a sibling on leaf 5's path
    with pytest.raises(ProofError):
        verify_inclusion(5, 16, LEAVES[5], tree.inclusion_proof(5, 16), root)
    assert tree.root(4) != root_of(LEAVES[:4])


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda t: t.root(11), "tree_size"),
        (lambda t: t.inclusion_proof(10, 10), "leaf_index"),
        (lambda t: t.inclusion_proof(0, 11), "tree_size"),
        (lambda t: t.consistency_proof(5, 4), "old_size"),
        (lambda t: t.consistency_proof(1, 11), "new_size"),
        (lambda t: t.append(b"short"), "leaf_hash"),
        (lambda t: t.leaf(10), "leaf_index"),
    ],
)
def test_requests_outside_the_tree_are_invalid_arguments(call: object, field: str) -> None:
    tree = _tree(10)
    with pytest.raises(InvalidArgumentError) as info:
        call(tree)  # type: ignore[operator]
    assert info.value.violations[0].field == field


def test_empty_tree() -> None:
    tree = MerkleTree(InMemoryNodeStore())
    assert tree.root() == EMPTY_ROOT and tree.size == 0
    assert tree.consistency_proof(0, 0) == []
    assert tree.append_many([]) == 0
    assert tree.append(LEAVES[0]) == 1 and tree.leaf(0) == LEAVES[0]
