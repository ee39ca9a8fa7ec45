"""RFC 9162 hashing and proofs: transparency-dev/merkle vectors and our independent ones."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.journal import (
    EMPTY_ROOT,
    InMemoryNodeStore,
    MerkleTree,
    ProofError,
    consistency_proof_of,
    inclusion_proof_of,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

ROOT = Path(__file__).parents[2]
VECTORS = ROOT / "tests" / "vectors" / "merkle"
UPSTREAM: dict[str, Any] = json.loads((VECTORS / "transparency_dev.json").read_text("utf-8"))
GENERATED: dict[str, Any] = json.loads((VECTORS / "generated.json").read_text("utf-8"))

UP_LEAVES = [leaf_hash(bytes.fromhex(h)) for h in UPSTREAM["leaves_hex"]]
GEN_LEAVES = [leaf_hash(f"vigie leaf {i}".encode()) for i in range(1000)]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _tree(leaves: Sequence[bytes]) -> MerkleTree:
    tree = MerkleTree(InMemoryNodeStore())
    tree.append_many(leaves)
    return tree


def _hexes(values: list[bytes]) -> list[str]:
    return [v.hex() for v in values]


def _inc_id(case: dict[str, Any]) -> str:
    return f"{case['index']}@{case['size']}"


def _con_id(case: dict[str, Any]) -> str:
    return f"{case['size1']}-{case['size2']}"


@pytest.mark.parametrize("case", UPSTREAM["hashes"], ids=lambda c: c["desc"])
def test_rfc6962_hasher_matches_transparency_dev(case: dict[str, Any]) -> None:
    if case["kind"] == "empty":
        got: bytes = EMPTY_ROOT
    elif case["kind"] == "leaf":
        got = leaf_hash(bytes.fromhex(case["input_hex"]))
    else:
        got = node_hash(case["left"].encode(), case["right"].encode())
    assert got.hex() == case["hash_hex"]


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert node_hash(a, b) != leaf_hash(a + b)  # second-preimage resistance (RFC 9162 §2.1.1)
    assert node_hash(a, b) != node_hash(b, a)


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_transparency_dev(size: int) -> None:
    want = UPSTREAM["roots_hex"][size - 1]
    assert root_of(UP_LEAVES[:size]).hex() == want
    assert _tree(UP_LEAVES).root(size).hex() == want


@pytest.mark.parametrize("case", UPSTREAM["inclusion"], ids=_inc_id)
def test_inclusion_proofs_match_transparency_dev(case: dict[str, Any]) -> None:
    i, n = case["index"], case["size"]
    assert _hexes(inclusion_proof_of(UP_LEAVES[:n], i)) == case["proof_hex"]
    assert _hexes(_tree(UP_LEAVES).inclusion_proof(i, n)) == case["proof_hex"]
    proof = [bytes.fromhex(h) for h in case["proof_hex"]]
    verify_inclusion(i, n, UP_LEAVES[i], proof, bytes.fromhex(UPSTREAM["roots_hex"][n - 1]))


@pytest.mark.parametrize("case", UPSTREAM["consistency"], ids=_con_id)
def test_consistency_proofs_match_transparency_dev(case: dict[str, Any]) -> None:
    m, n = case["size1"], case["size2"]
    assert _hexes(consistency_proof_of(UP_LEAVES[:n], m)) == case["proof_hex"]
    assert _hexes(_tree(UP_LEAVES).consistency_proof(m, n)) == case["proof_hex"]
    proof = [bytes.fromhex(h) for h in case["proof_hex"]]
    roots = UPSTREAM["roots_hex"]
    verify_consistency(m, n, bytes.fromhex(roots[m - 1]), bytes.fromhex(roots[n - 1]), proof)


def _inclusion_probes(i: int, n: int, proof: list[bytes], root: bytes) -> list[tuple[str, Any]]:
    """transparency-dev/merkle proof/verify_test.go corruptInclusionProof, as named attacks."""
    leaf = UP_LEAVES[i]
    probes: list[tuple[str, Any]] = [
        ("leaf index - 1", (i - 1, n, leaf, proof, root)),
        ("leaf index + 1", (i + 1, n, leaf, proof, root)),
        ("leaf index ^ 2", (i ^ 2, n, leaf, proof, root)),
        ("tree size * 2", (i, n * 2, leaf, proof, root)),
        ("tree size / 2", (i, n // 2, leaf, proof, root)),
        ("wrong leaf", (i, n, SOME_HASH, proof, root)),
        ("empty-tree root", (i, n, leaf, proof, EMPTY_ROOT)),
        ("random root", (i, n, leaf, proof, SOME_HASH)),
        ("trailing root", (i, n, leaf, [*proof, root], root)),
        ("preceding root", (i, n, leaf, [root, *proof], root)),
        ("short hash appended", (i, n, leaf, [*proof, b""], root)),
    ]
    for k in range(len(proof)):
        flipped = list(proof)
        flipped[k] = bytes([proof[k][0] ^ 8]) + proof[k][1:]
        probes.append((f"proof[{k}] bit 3 flipped", (i, n, leaf, flipped, root)))
    if proof:
        probes.append(("removed component", (i, n, leaf, proof[:-1], root)))
    if len(proof) > 1:
        probes.append(("inserted component", (i, n, leaf, [proof[0], SOME_HASH, *proof[1:]], root)))
    return probes


@pytest.mark.parametrize("case", UPSTREAM["inclusion"][1:], ids=_inc_id)
def test_corrupted_inclusion_proofs_are_rejected(case: dict[str, Any]) -> None:
    i, n = case["index"], case["size"]
    proof = [bytes.fromhex(h) for h in case["proof_hex"]]
    root = bytes.fromhex(UPSTREAM["roots_hex"][n - 1])
    for desc, args in _inclusion_probes(i, n, proof, root):
        with pytest.raises(ProofError):
            verify_inclusion(*args)
            pytest.fail(f"accepted: {desc}")


@pytest.mark.parametrize("case", UPSTREAM["consistency"][1:], ids=_con_id)
def test_corrupted_consistency_proofs_are_rejected(case: dict[str, Any]) -> None:
    m, n = case["size1"], case["size2"]
    proof = [bytes.fromhex(h) for h in case["proof_hex"]]
    r1, r2 = (bytes.fromhex(UPSTREAM["roots_hex"][s - 1]) for s in (m, n))
    probes: list[tuple[str, Any]] = [
        ("size1 - 1", (m - 1, n, r1, r2, proof)),
        ("size1 + 1", (m + 1, n, r1, r2, proof)),
        ("size1 ^ 2", (m ^ 2, n, r1, r2, proof)),
        ("size2 * 2", (m, n * 2, r1, r2, proof)),
        ("size2 / 2", (m, n // 2, r1, r2, proof)),
        ("wrong root1", (m, n, SOME_HASH, r2, proof)),
        ("wrong root2", (m, n, r1, SOME_HASH, proof)),
        ("swapped roots", (m, n, r2, r1, proof)),
        ("empty proof", (m, n, r1, r2, [])),
        ("trailing root1", (m, n, r1, r2, [*proof, r1])),
        ("trailing root2", (m, n, r1, r2, [*proof, r2])),
        ("preceding root1", (m, n, r1, r2, [r1, *proof])),
        ("preceding root2", (m, n, r1, r2, [r2, *proof])),
        ("preceding proof[0]", (m, n, r1, r2, [proof[0], *proof])),
        ("truncated proof", (m, n, r1, r2, proof[:-1])),
    ]
    for k in range(len(proof)):
        flipped = list(proof)
        flipped[k] = bytes([proof[k][0] ^ 16]) + proof[k][1:]
        probes.append((f"proof[{k}] bit 4 flipped", (m, n, r1, r2, flipped)))
    for desc, args in probes:
        with pytest.raises(ProofError):
            verify_consistency(*args)
            pytest.fail(f"accepted: {desc}")


@pytest.mark.parametrize(
    ("m", "n", "root1", "root2", "proof", "ok"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 1, SOME_HASH, EMPTY_ROOT, [], True),
        (1, 1, SOME_HASH, SOME_HASH, [], True),
        (1, 1, EMPTY_ROOT, SOME_HASH, [], False),
        (1, 0, SOME_HASH, SOME_HASH, [], False),  # time travel to the past
        (2, 1, SOME_HASH, SOME_HASH, [], False),
        (1, 2, SOME_HASH, EMPTY_ROOT, [], False),  # non-trivial sizes, empty proof
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # proof must be empty
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases_follow_transparency_dev(
    m: int, n: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(m, n, root1, root2, proof)
    else:
        with pytest.raises(ProofError):
            verify_consistency(m, n, root1, root2, proof)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (-1, 4)])
def test_inclusion_outside_the_tree_is_rejected(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(index, size, SOME_HASH, [], SOME_HASH)


def test_generated_roots_match_library() -> None:
    tree = _tree(GEN_LEAVES)
    for n, want in enumerate(GENERATED["roots_hex"]):
        assert root_of(GEN_LEAVES[:n]).hex() == want
        assert tree.root(n).hex() == want
    for n, want in GENERATED["big_root_hex"].items():
        assert tree.root(int(n)).hex() == want


def test_generated_inclusion_proofs_match_and_verify() -> None:
    tree = _tree(GEN_LEAVES)
    for case in GENERATED["inclusion"]:
        i, n = case["index"], case["size"]
        assert _hexes(tree.inclusion_proof(i, n)) == case["proof_hex"], (i, n)
        proof = [bytes.fromhex(h) for h in case["proof_hex"]]
        verify_inclusion(i, n, GEN_LEAVES[i], proof, tree.root(n))


def test_generated_consistency_proofs_match_and_verify() -> None:
    tree = _tree(GEN_LEAVES)
    for case in GENERATED["consistency"]:
        m, n = case["size1"], case["size2"]
        assert _hexes(tree.consistency_proof(m, n)) == case["proof_hex"], (m, n)
        proof = [bytes.fromhex(h) for h in case["proof_hex"]]
        verify_consistency(m, n, tree.root(m), tree.root(n), proof)


def test_vectors_file_is_what_the_script_makes() -> None:
    script = ROOT / "scripts" / "make_merkle_vectors.py"
    result = subprocess.run([sys.executable, str(script), "--check"], check=False)
    assert result.returncode == 0
