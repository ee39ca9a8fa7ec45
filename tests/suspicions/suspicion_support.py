"""Shared test data of the suspicion exchange: members, tokens, a valid draft."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from gateway.domain._identifiers import make_am_number, make_rpps, make_token
from gateway.store import Member

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_RNG = random.Random(20260301)
TOKEN_B1 = make_token(_RNG)
TOKEN_B2 = make_token(_RNG)
RPPS_P = make_rpps(_RNG)
AM_P = make_am_number(_RNG)
FACTS = "Lunettes progressives facturées pour un enfant de cinq ans, monture classe B."


def member(member_id: str, kind: str, *roles: str) -> Member:
    return Member(member_id=member_id, display_name=member_id, kind=kind, roles=frozenset(roles))  # type: ignore[arg-type]


CPAM_75 = member("cpam-75", "AMO", "submitter", "analyst")
CPAM_13 = member("cpam-13", "AMO", "analyst")
MUT_A = member("mut-a", "AMC", "submitter", "analyst")
MUT_B = member("mut-b", "AMC", "analyst")
MUT_C = member("mut-c", "AMC", "analyst")
MUT_D = member("mut-d", "AMC", "submitter")  # no analyst role: never reads suspicions


def draft_values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "subject": {"beneficiary_token": TOKEN_B1, "provider_rpps": RPPS_P},
        "sector": "optique",
        "fraud_type": "implausible_demography",
        "facts_summary": FACTS,
        "estimated_amount_cents": 150_000,
        "evidence_refs": ["doc:2026/0001", "facture 17"],
        "case_reference": "CPAM75/2026:0042",
        "act_grouping_codes": ["VERRE_COMPLEXE", "MONTURE"],
        "act_codes": ["2290000"],
    }
    values.update(overrides)
    return values


MEMBERS = (CPAM_75, CPAM_13, MUT_A, MUT_B, MUT_C, MUT_D)
