#!/usr/bin/env python3
"""Write tests/vectors/merkle/generated.json: Merkle, checkpoint and event-leaf test vectors.

Everything below is written from the specifications with ``hashlib`` (and ``cryptography``
for Ed25519 only), deliberately *not* by calling ``gateway.journal``, so the tests check the
library against an independent implementation:

- RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH), §2.1.4.1 (PROOF/SUBPROOF), as naive recursion;
- c2sp.org/tlog-checkpoint and c2sp.org/signed-note (Ed25519 is deterministic, RFC 8032);
- the journal's event leaf (docs/adr/0003): RFC 8785 JSON of ASCII-only sample data, which
  for such data is ``json.dumps`` with sorted keys and no whitespace.

Before writing, the script checks its own implementation against the vectors copied verbatim
from transparency-dev/merkle (tests/vectors/merkle/transparency_dev.json), and refuses to
write if they disagree. The signing key is a fixed, public TEST key; never use it elsewhere.

Usage::

    python scripts/make_merkle_vectors.py          # rewrite the file
    python scripts/make_merkle_vectors.py --check  # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DIR = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "merkle"
OUT = DIR / "generated.json"
UPSTREAM = DIR / "transparency_dev.json"

MAX_SIZE = 17  # every (index, size) and (old, new) pair up to this size
BIG_SIZE = 1000  # plus a few proofs in a larger tree
BIG_CASES = [(0, BIG_SIZE), (511, BIG_SIZE), (999, BIG_SIZE), (512, 999)]
BIG_CONSISTENCY = [(1, BIG_SIZE), (511, BIG_SIZE), (512, BIG_SIZE), (777, 999)]
TEST_SEED = hashlib.sha256(b"vigie test journal signing key").digest()
ORIGIN = "vigie.test/journal"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return sha256(b"")
    if len(d) == 1:
        return leaf(d[0])
    k = k_of(len(d))
    return node(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = k_of(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return [] if m in (0, len(d)) else subproof(m, d, True)


def check_upstream() -> None:
    """Refuse to write if this implementation disagrees with transparency-dev/merkle."""
    up = json.loads(UPSTREAM.read_text(encoding="utf-8"))
    for case in up["hashes"]:
        if case["kind"] == "leaf":
            got = leaf(bytes.fromhex(case["input_hex"]))
        elif case["kind"] == "node":
            got = node(case["left"].encode(), case["right"].encode())
        else:
            got = sha256(b"")
        assert got.hex() == case["hash_hex"], case["desc"]
    data = [bytes.fromhex(h) for h in up["leaves_hex"]]
    for size, root in enumerate(up["roots_hex"], start=1):
        assert mth(data[:size]).hex() == root, f"root {size}"
    for case in up["inclusion"]:
        got = path(case["index"], data[: case["size"]])
        assert [h.hex() for h in got] == case["proof_hex"], case
    for case in up["consistency"]:
        got = proof(case["size1"], data[: case["size2"]])
        assert [h.hex() for h in got] == case["proof_hex"], case


def note_key_id(name: str, pub: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + b"\x01" + pub)[:4]


def checkpoint_vector(data: list[bytes]) -> dict[str, object]:
    key = Ed25519PrivateKey.from_private_bytes(TEST_SEED)
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = note_key_id(ORIGIN, pub)
    size = 7
    root = mth(data[:size])
    text = f"{ORIGIN}\n{size}\n{base64.b64encode(root).decode()}\n"
    sig = base64.b64encode(kid + key.sign(text.encode())).decode()
    key64 = base64.b64encode(b"\x01" + pub).decode()
    return {
        "seed_hex": TEST_SEED.hex(),
        "vkey": f"{ORIGIN}+{kid.hex()}+{key64}",
        "origin": ORIGIN,
        "size": size,
        "root_hex": root.hex(),
        "note": f"{text}\n\u2014 {ORIGIN} {sig}\n",
    }


def event_vector() -> dict[str, object]:
    salt = sha256(b"vigie test salt")
    personal = {
        "format": "vigie/journal-personal/v1",
        "record_refs": ["suspicion/42", "claim/7"],
        "subject_pseudonyms": ["gw-2026:AAAA"],
    }
    jcs = json.dumps(personal, sort_keys=True, separators=(",", ":")).encode()
    commitment = hashlib.sha256(salt + jcs).hexdigest()
    event = {
        "seq": 12,
        "event_id": "0b5e2a58-7c1e-4c0e-9a47-3f4f2f6b9d10",
        "time": "2026-03-01T09:15:42.123456Z",
        "member_id": "cpam-75",
        "principal": "agent-17",
        "cert_fingerprint": "9f" * 32,
        "method": "GetSuspicion",
        "purpose": "control",
        "decision": "allow",
        "rule_ids": ["amo.read.own", "l114-9-1"],
        "bundle_hash": "ab" * 32,
        "request_id": "req-1",
        "outcome": "OK",
        "record_count": 2,
    }
    entry = dict(event, format="vigie/journal-event/v1", personal_commitment=commitment)
    entry_bytes = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    return {
        "event": event,
        "personal": {k: personal[k] for k in ("record_refs", "subject_pseudonyms")},
        "salt_hex": salt.hex(),
        "personal_commitment": commitment,
        "leaf_entry": entry_bytes.decode(),
        "leaf_hash_hex": leaf(entry_bytes).hex(),
    }


def build() -> dict[str, object]:
    check_upstream()
    data = [f"vigie leaf {i}".encode() for i in range(BIG_SIZE)]
    hx = lambda hs: [h.hex() for h in hs]  # noqa: E731
    return {
        "source": "scripts/make_merkle_vectors.py (independent RFC 9162 §2.1 recursion)",
        "leaf_data": "UTF-8 of 'vigie leaf <i>'",
        "roots_hex": [mth(data[:n]).hex() for n in range(MAX_SIZE + 1)],
        "big_root_hex": {str(n): mth(data[:n]).hex() for n in (999, BIG_SIZE)},
        "inclusion": [
            {"index": i, "size": n, "proof_hex": hx(path(i, data[:n]))}
            for n in range(1, MAX_SIZE + 1)
            for i in range(n)
        ]
        + [{"index": i, "size": n, "proof_hex": hx(path(i, data[:n]))} for i, n in BIG_CASES],
        "consistency": [
            {"size1": m, "size2": n, "proof_hex": hx(proof(m, data[:n]))}
            for n in range(MAX_SIZE + 1)
            for m in range(n + 1)
        ]
        + [
            {"size1": m, "size2": n, "proof_hex": hx(proof(m, data[:n]))}
            for m, n in BIG_CONSISTENCY
        ],
        "checkpoint": checkpoint_vector(data),
        "event": event_vector(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run scripts/make_merkle_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
