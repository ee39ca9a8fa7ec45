"""Random valid raw claim lines (both sides of care events) for the claims storage tests.

Small pools of beneficiaries and providers so histories, counterparts, duplicates and peer
groups overlap; deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway.domain._identifiers import make_am_number, make_finess, make_rpps, make_token

TODAY = date(2026, 3, 1)

_KINDS: dict[str, dict[str, Any]] = {
    "lens": {"sector": "optique", "grouping_code": "VERRE_SIMPLE", "act_code": "2203240",
             "classes": ("A", "B"), "lateral": True, "price": (4000, 30000)},
    "frame": {"sector": "optique", "grouping_code": "MONTURE", "act_code": "2210546",
              "classes": ("A", "B"), "lateral": False, "price": (2000, 15000)},
    "aid": {"sector": "audio", "grouping_code": "AIDE_AUDITIVE", "act_code": "2355084",
            "classes": ("I", "II"), "lateral": True, "price": (80000, 180000)},
    "followup": {"sector": "audio", "grouping_code": "SUIVI", "act_code": "SUI",
                 "classes": ("",), "lateral": True, "price": (1, 1)},
    "crown": {"sector": "dentaire", "grouping_code": "COURONNE", "act_code": "HBLD680",
              "classes": ("100_SANTE", "MAITRISE", "LIBRE"), "lateral": False,
              "price": (20000, 80000)},
}  # fmt: skip


@dataclass
class Pools:
    tokens: list[str]
    birth_years: list[int]
    providers: list[tuple[str, str, str]]  # rpps ("" sometimes), am number, finess ("" sometimes)
    prescribers: list[str]

    @classmethod
    def make(cls, rng: random.Random, beneficiaries: int = 40, providers: int = 10) -> Pools:
        provs = []
        for _ in range(providers):
            rpps = make_rpps(rng) if rng.random() < 0.8 else ""
            finess = make_finess(rng) if rng.random() < 0.6 else ""
            provs.append((rpps, make_am_number(rng), finess))
        return cls(
            tokens=[make_token(rng) for _ in range(beneficiaries)],
            birth_years=[rng.randint(1935, 2022) for _ in range(beneficiaries)],
            providers=provs,
            prescribers=[make_rpps(rng) for _ in range(5)],
        )


def raw_event(
    rng: random.Random, pools: Pools, ref: str, *, start: date = date(2024, 1, 1), days: int = 780
) -> dict[str, Any]:
    """One AMO-side raw line of a random item (``member_reference`` = ``ref``)."""
    kind = rng.choice(list(_KINDS))
    k = _KINDS[kind]
    b = rng.randrange(len(pools.tokens))
    rpps, am, finess = rng.choice(pools.providers)
    care = start + timedelta(days=rng.randrange(days))
    qty = 1
    price = rng.randint(*k["price"])
    klass = rng.choice(k["classes"])
    needs_rx = k["sector"] in ("optique", "audio") and kind != "followup"
    return {
        "member_reference": ref, "side": "AMO", "sector": k["sector"],
        "beneficiary_token": pools.tokens[b], "birth_year": pools.birth_years[b],
        "provider_rpps": rpps, "provider_am_number": am, "provider_finess": finess,
        "prescriber_rpps": rng.choice(pools.prescribers) if needs_rx else "",
        "prescriber_specialty": ("ophtalmologie" if k["sector"] == "optique" else "orl")
        if needs_rx else "",
        "prescription_date": (care - timedelta(days=rng.randrange(1, 900))).isoformat()
        if needs_rx else "",
        "care_date": care.isoformat(), "act_code": k["act_code"],
        "grouping_code": k["grouping_code"], "product_class": klass,
        "laterality": rng.choice(("left", "right")) if k["lateral"] else "",
        "tooth": rng.choice((11, 16, 26, 36, 46)) if kind == "crown" else 0,
        "quantity": qty, "unit_price_cents": price, "amount_billed_cents": qty * price,
        "amo_base_cents": min(price, 1000), "amo_paid_cents": min(price, 600),
        "amo_claim_number": f"AMO-{ref}", "amc_paid_cents": 0, "amc_reference": "",
    }  # fmt: skip


def amc_side(amo: dict[str, Any], ref: str, rng: random.Random) -> dict[str, Any]:
    """The AMC side of ``amo`` (sometimes a day off, sometimes another billed amount)."""
    care = date.fromisoformat(amo["care_date"]) - timedelta(days=rng.choice((0, 0, 0, 1)))
    billed = amo["amount_billed_cents"]
    if rng.random() < 0.05:
        billed += 1000
    return {
        **amo, "member_reference": ref, "side": "AMC", "care_date": care.isoformat(),
        "unit_price_cents": billed, "amount_billed_cents": billed,
        "amo_base_cents": 0, "amo_paid_cents": 0, "amo_claim_number": "",
        "amc_paid_cents": max(0, billed - amo["amo_paid_cents"]), "amc_reference": f"DRE-{ref}",
    }  # fmt: skip


def mixed_lines(
    seed: int, n_events: int, amcs: tuple[str, ...] = ("mut-alpha", "mut-beta"), **kw: Any
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(member, raw line)`` for ``n_events`` events: AMO and/or one or two AMC sides."""
    rng = random.Random(seed)
    pools = Pools.make(rng, **kw)
    for i in range(n_events):
        first = raw_event(rng, pools, f"E{i}")
        items = [first]
        if first["laterality"] and rng.random() < 0.4:  # both eyes/ears the same day
            other = "left" if first["laterality"] == "right" else "right"
            items.append({**first, "laterality": other, "member_reference": f"E{i}b",
                          "amo_claim_number": f"AMO-E{i}b"})  # fmt: skip
        for amo in items:
            ref = amo["member_reference"]
            roll = rng.random()
            if roll >= 0.1:
                yield "cpam-75", amo
            if roll < 0.9:
                yield amcs[0], amc_side(amo, ref, rng)
            if roll > 0.97 and len(amcs) > 1:
                yield amcs[1], amc_side(amo, ref, rng)


def amo_lines(seed: int, n: int, **kw: Any) -> Iterator[dict[str, Any]]:
    """``n`` AMO-side raw lines (for volume tests), generated lazily."""
    rng = random.Random(seed)
    pools = Pools.make(rng, **kw)
    for i in range(n):
        yield raw_event(rng, pools, f"V{i}")
