"""Property: any single altered, removed, inserted or reordered proof element is detected."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.journal import (
    InMemoryNodeStore,
    MerkleTree,
    ProofError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

N = 64
LEAVES = [leaf_hash(b"event %d" % i) for i in range(N)]
TREE = MerkleTree(InMemoryNodeStore())
TREE.append_many(LEAVES)
ROOTS = [TREE.root(n) for n in range(N + 1)]


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[int, int, list[bytes]]:
    n = draw(st.integers(min_value=2, max_value=N))
    i = draw(st.integers(min_value=0, max_value=n - 1))
    return i, n, TREE.inclusion_proof(i, n)


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[int, int, list[bytes]]:
    n = draw(st.integers(min_value=2, max_value=N))
    m = draw(st.integers(min_value=1, max_value=n - 1))
    return m, n, TREE.consistency_proof(m, n)


def _tamper(proof: list[bytes], data: st.DataObject) -> list[bytes]:
    """One tampering: bit flip, removal, insertion, swap of two elements or a duplicate."""
    kind = data.draw(st.sampled_from(["flip", "remove", "insert", "swap", "duplicate"]))
    out = list(proof)
    if kind == "flip":
        k = data.draw(st.integers(0, len(out) - 1))
        bit = data.draw(st.integers(0, 255))
        b = bytearray(out[k])
        b[bit // 8] ^= 1 << (bit % 8)
        out[k] = bytes(b)
    elif kind == "remove":
        del out[data.draw(st.integers(0, len(out) - 1))]
    elif kind == "insert":
        extra = data.draw(st.sampled_from([*LEAVES[:4], *ROOTS[1:5], *out]))
        out.insert(data.draw(st.integers(0, len(out))), extra)
    elif kind == "swap":
        assume(len(out) >= 2)
        a, b2 = data.draw(st.lists(st.integers(0, len(out) - 1), min_size=2, max_size=2))
        assume(out[a] != out[b2])
        out[a], out[b2] = out[b2], out[a]
    else:
        k = data.draw(st.integers(0, len(out) - 1))
        out.insert(k, out[k])
    return out


@settings(max_examples=400, deadline=None)
@given(inclusion_cases(), st.data())
def test_tampered_inclusion_proof_is_detected(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    i, n, proof = case
    assume(proof)
    verify_inclusion(i, n, LEAVES[i], proof, ROOTS[n])
    with pytest.raises(ProofError):
        verify_inclusion(i, n, LEAVES[i], _tamper(proof, data), ROOTS[n])


@settings(max_examples=400, deadline=None)
@given(consistency_cases(), st.data())
def test_tampered_consistency_proof_is_detected(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    m, n, proof = case
    verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
    assume(proof)
    with pytest.raises(ProofError):
        verify_consistency(m, n, ROOTS[m], ROOTS[n], _tamper(proof, data))


@settings(max_examples=300, deadline=None)
@given(inclusion_cases(), st.integers(0, N - 1))
def test_proof_of_one_leaf_does_not_prove_another(
    case: tuple[int, int, list[bytes]], other: int
) -> None:
    i, n, proof = case
    assume(other != i)
    with pytest.raises(ProofError):
        verify_inclusion(i, n, LEAVES[other], proof, ROOTS[n])
    if other < n:
        with pytest.raises(ProofError):
            verify_inclusion(other, n, LEAVES[i], proof, ROOTS[n])


@settings(max_examples=300, deadline=None)
@given(consistency_cases(), st.integers(1, N))
def test_consistency_proof_binds_both_sizes(case: tuple[int, int, list[bytes]], other: int) -> None:
    m, n, proof = case
    assume(other not in (m, n))
    with pytest.raises(ProofError):
        verify_consistency(other, n, ROOTS[other], ROOTS[n], proof)
    if other > m:
        with pytest.raises(ProofError):
            verify_consistency(m, other, ROOTS[m], ROOTS[other], proof)
