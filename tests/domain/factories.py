"""Valid claim lines for tests: one base line per sector and side, overridable field by field."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from gateway.domain import ClaimLine, ClaimRecord, parse_claim_line
from gateway.domain._identifiers import make_am_number, make_finess, make_rpps, make_token
from gateway.ids import MemberId

TODAY = date(2026, 3, 1)
CPAM = MemberId("cpam-75")
MUT_A = MemberId("mut-alpha")
MUT_B = MemberId("mut-beta")
MUT_C = MemberId("mut-gamma")

_rng = random.Random(20260301)
TOKEN = make_token(_rng)
OTHER_TOKEN = make_token(_rng)
RPPS = make_rpps(_rng)
PRESCRIBER = make_rpps(_rng)
AM = make_am_number(_rng, "75")
OTHER_AM = make_am_number(_rng, "92")
FINESS = make_finess(_rng, "75")

_BASE: dict[str, Any] = {
    "member_reference": "L1",
    "side": "AMO",
    "sector": "optique",
    "beneficiary_token": TOKEN,
    "birth_year": 1980,
    "provider_rpps": RPPS,
    "provider_am_number": AM,
    "provider_finess": FINESS,
    "prescriber_rpps": PRESCRIBER,
    "prescriber_specialty": "ophtalmologie",
    "prescription_date": date(2025, 12, 1),
    "care_date": date(2026, 1, 10),
    "act_code": "2203240",
    "grouping_code": "VERRE_SIMPLE",
    "product_class": "B",
    "laterality": "right",
    "tooth": 0,
    "quantity": 1,
    "unit_price_cents": 12000,
    "amount_billed_cents": 12000,
    "amo_base_cents": 5,
    "amo_paid_cents": 3,
    "amo_claim_number": "AMO-0001",
    "amc_paid_cents": 0,
    "amc_reference": "",
}

_SECTOR_PRESETS: dict[str, dict[str, Any]] = {
    "lens": {},
    "frame": {"grouping_code": "MONTURE", "laterality": "", "act_code": "2210546"},
    "aid": {
        "sector": "audio",
        "grouping_code": "AIDE_AUDITIVE",
        "product_class": "II",
        "act_code": "2355084",
        "prescriber_specialty": "orl",
        "laterality": "left",
        "unit_price_cents": 150000,
        "amount_billed_cents": 150000,
        "amo_base_cents": 40000,
        "amo_paid_cents": 24000,
        "birth_year": 1950,
    },
    "followup": {
        "sector": "audio",
        "grouping_code": "SUIVI",
        "product_class": "",
        "act_code": "SUI",
        "laterality": "left",
        "prescriber_rpps": "",
        "prescriber_specialty": "",
        "prescription_date": None,
        "unit_price_cents": 1,
        "amount_billed_cents": 1,
        "amo_base_cents": 1,
        "amo_paid_cents": 1,
        "birth_year": 1950,
    },
    "crown": {
        "sector": "dentaire",
        "grouping_code": "COURONNE",
        "product_class": "MAITRISE",
        "act_code": "HBLD680",
        "laterality": "",
        "tooth": 16,
        "prescriber_rpps": "",
        "prescriber_specialty": "",
        "prescription_date": None,
        "unit_price_cents": 45000,
        "amount_billed_cents": 45000,
        "amo_base_cents": 12000,
        "amo_paid_cents": 7200,
    },
}


def raw_line(kind: str = "lens", side: str = "AMO", /, **overrides: Any) -> dict[str, Any]:
    """A valid raw mapping for ``kind`` (lens, frame, aid, followup, crown) on ``side``."""
    values = {**_BASE, **_SECTOR_PRESETS[kind]}
    if side == "AMC":
        values.update(
            side="AMC",
            amo_base_cents=0,
            amo_paid_cents=0,
            amo_claim_number="",
            amc_paid_cents=max(0, values["amount_billed_cents"] - values["amo_paid_cents"]),
            amc_reference="DRE-0001",
        )
    values.update(overrides)
    if "unit_price_cents" in overrides and "amount_billed_cents" not in overrides:
        values["amount_billed_cents"] = values["quantity"] * values["unit_price_cents"]
        if side == "AMC" and "amc_paid_cents" not in overrides:
            values["amc_paid_cents"] = values["amount_billed_cents"]
    return values


def line(kind: str = "lens", side: str = "AMO", /, **overrides: Any) -> ClaimLine:
    """A validated :class:`ClaimLine` (see :func:`raw_line`)."""
    return parse_claim_line(raw_line(kind, side, **overrides), today=TODAY)


def rec(member: MemberId, kind: str = "lens", side: str | None = None, /, **kw: Any) -> ClaimRecord:
    """A :class:`ClaimRecord`; the side follows the member's kind unless given."""
    s = side if side is not None else ("AMO" if member.startswith("cpam") else "AMC")
    return ClaimRecord(member, line(kind, s, **kw))
