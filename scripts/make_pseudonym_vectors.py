#!/usr/bin/env python3
"""Write tests/vectors/pseudonym/vectors.json: two-level pseudonym test vectors.

The computation below is written from the specification in
``docs/adr/0001-pseudonymisation-and-pki.md`` with ``hmac``/``hashlib`` only, deliberately not
by calling ``gateway.crypto``: the tests then check the library against an independent
implementation. The keys are fixed, public TEST keys; never use them anywhere else.

Usage::

    python scripts/make_pseudonym_vectors.py          # rewrite the file
    python scripts/make_pseudonym_vectors.py --check  # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "pseudonym" / "vectors.json"

# Fixed TEST keys (public on purpose).
MEMBERS_KEY = bytes(range(32))
GATEWAY_KEYS = {
    "gw-2025": hashlib.sha256(b"vigie test gateway key 2025").digest(),
    "gw-2026": hashlib.sha256(b"vigie test gateway key 2026").digest(),
}
CURRENT = "gw-2026"

# (nir as given, normalised nir, birth date, rank, why)
CASES: list[tuple[str, str, str | None, int | None, str]] = [
    ("295109912611193", "295109912611193", None, None, "own NIR, born abroad"),
    ("2 95 10 99 126 111 93", "295109912611193", None, None, "same NIR with spaces: same token"),
    ("253072B07300470", "253072B07300470", None, None, "Corsica 2B"),
    ("253072a07300443", "253072A07300443", None, None, "Corsica 2A, lower-case input"),
    ("178017505612376", "178017505612376", "2012-04-30", 1, "dependent: holder NIR, date, rank 1"),
    ("178017505612376", "178017505612376", "2012-04-30", 2, "twin of the previous: rank 2"),
    ("178017505612376", "178017505612376", "2015-09-01", None, "dependent without rank"),
    ("880017505612415", "880017505612415", None, None, "provisional number"),
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def message(nir: str, birth_date: str | None, rank: int | None) -> bytes:
    return (
        b"vigie/v1/beneficiary\x00"
        + nir.encode("ascii")
        + b"\x00"
        + (birth_date or "").encode("ascii")
        + b"\x00"
        + (str(rank) if rank is not None else "").encode("ascii")
    )


def build() -> dict[str, object]:
    vectors = []
    for given, normalised, birth_date, rank, why in CASES:
        msg = message(normalised, birth_date, rank)
        token = hmac.digest(MEMBERS_KEY, msg, hashlib.sha256)
        rekey_msg = b"vigie/v1/rekey\x00" + token
        pseudonyms = {
            kid: f"{kid}:{b64url(hmac.digest(key, rekey_msg, hashlib.sha256))}"
            for kid, key in GATEWAY_KEYS.items()
        }
        vectors.append(
            {
                "case": why,
                "nir": given,
                "birth_date": birth_date,
                "rank": rank,
                "message_hex": msg.hex(),
                "token1": b64url(token),
                "pseudonyms": pseudonyms,
            }
        )
    return {
        "about": "Made by scripts/make_pseudonym_vectors.py; TEST keys only.",
        "members_key_hex": MEMBERS_KEY.hex(),
        "gateway_keys_hex": {kid: key.hex() for kid, key in GATEWAY_KEYS.items()},
        "current_key_id": CURRENT,
        "vectors": vectors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run scripts/make_pseudonym_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
