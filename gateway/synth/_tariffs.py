"""Prices, AMO bases, caps and ceilings used to bill synthetic care (DOMAIN.md §3).

Figures marked *synthetic* are plausible values chosen here, not official ones; the caps agree
with the shared scoring rule set ``gateway/domain/scoring/rulesets/v1.yaml`` so that honest
lines never break a rule. Amounts are integer euro cents. LPP and CCAM codes are synthetic
stand-ins of the right form (7 digits; 4 letters + 3 digits).
"""

from __future__ import annotations

from typing import Final

AMO_RATE_PERCENT: Final = 60  # optique, audio and dental prostheses since October 2023


def amo_paid(base_cents: int) -> int:
    """AMO reimbursement of a base at 60 %, rounded half up to the cent."""
    return (base_cents * AMO_RATE_PERCENT + 50) // 100


# --- Optics (LPP title II ch. 2) -------------------------------------------------------------
FRAME_A_CAP: Final = 3000  # 30 EUR
FRAME_A_BASE: Final = 900  # 9 EUR at 60 %
CLASS_B_BASE: Final = 5  # 0.05 EUR per lens and frame
FRAME_AMC_MAX: Final = 10_000  # contrat responsable: frame <= 100 EUR within the ceiling
LENS_GROUPINGS: Final = ("VERRE_SIMPLE", "VERRE_COMPLEXE", "VERRE_TRES_COMPLEXE")
LENS_A_CAP: Final = {"VERRE_SIMPLE": 6500, "VERRE_COMPLEXE": 17000, "VERRE_TRES_COMPLEXE": 20500}
LENS_A_BASE: Final = {"VERRE_SIMPLE": 2000, "VERRE_COMPLEXE": 5000, "VERRE_TRES_COMPLEXE": 6600}
LENS_B_PRICE: Final = {  # synthetic price ranges of free-price lenses
    "VERRE_SIMPLE": (5000, 16000),
    "VERRE_COMPLEXE": (14000, 32000),
    "VERRE_TRES_COMPLEXE": (22000, 45000),
}
FRAME_B_PRICE: Final = (6000, 30000)
# Contrat responsable AMC ceilings per equipment (frame + 2 lenses) by lens type.
EQUIPMENT_CEILING: Final = {
    "VERRE_SIMPLE": 42000,
    "VERRE_COMPLEXE": 70000,
    "VERRE_TRES_COMPLEXE": 80000,
}
LPP_OPTIQUE: Final = {
    ("MONTURE", "A"): ("2210546", "2210552"),
    ("MONTURE", "B"): ("2223342", "2226412"),
    ("VERRE_SIMPLE", "A"): ("2203240", "2261874"),
    ("VERRE_SIMPLE", "B"): ("2227038", "2291088"),
    ("VERRE_COMPLEXE", "A"): ("2282793", "2263459"),
    ("VERRE_COMPLEXE", "B"): ("2245036", "2295896"),
    ("VERRE_TRES_COMPLEXE", "A"): ("2259245", "2264045"),
    ("VERRE_TRES_COMPLEXE", "B"): ("2202239", "2252042"),
}

# --- Hearing aids (LPP title II ch. 3) -------------------------------------------------------
AID_I_CAP_ADULT: Final = 95_000  # age >= 20
AID_BASE_ADULT: Final = 40_000  # AMO pays 240 EUR
AID_I_CAP_YOUNG: Final = 140_000  # under 20: cap and base 1,400 EUR
AID_BASE_YOUNG: Final = 140_000
AID_II_PRICE: Final = (100_000, 220_000)  # synthetic free-price range
AID_II_CEILING: Final = 170_000  # AMC ceiling per aid, AMO included
SUI_PRICE: Final = 1  # follow-up billed 0.01 EUR
LPP_AUDIO: Final = {"I": ("2355084", "2335791"), "II": ("2390260", "2398519")}


def aid_cap_and_base(age: int) -> tuple[int, int]:
    """Class I price cap and AMO base of one hearing aid at ``age`` (in the care year)."""
    if age < 20:
        return AID_I_CAP_YOUNG, AID_BASE_YOUNG
    return AID_I_CAP_ADULT, AID_BASE_ADULT


# --- Dental (CCAM) ---------------------------------------------------------------------------
DENTAL_BASE: Final = {
    "COURONNE": 12_000,
    "INLAY_CORE": 9_000,
    "BRIDGE": 27_950,
    "CONSULTATION": 2_300,
    "DETARTRAGE": 2_892,
}
DENTAL_100_CAP: Final = {"COURONNE": 50_000, "INLAY_CORE": 17_500, "BRIDGE": 146_500}
DENTAL_100_CAP_MOLAR_CROWN: Final = 29_000  # synthetic: metal crown on a molar
DENTAL_PRICE: Final = {  # synthetic ranges of the other baskets
    ("COURONNE", "MAITRISE"): (40_000, 55_000),
    ("COURONNE", "LIBRE"): (55_000, 110_000),
    ("INLAY_CORE", "MAITRISE"): (15_000, 25_000),
    ("INLAY_CORE", "LIBRE"): (20_000, 35_000),
    ("BRIDGE", "MAITRISE"): (150_000, 190_000),
    ("BRIDGE", "LIBRE"): (180_000, 260_000),
}
DENTAL_PLAN_MAX: Final = {"COURONNE": 40_000, "INLAY_CORE": 15_000, "BRIDGE": 120_000}
"""Synthetic AMC plan maximum per prosthesis outside 100 % Santé (times the contract level)."""
CCAM: Final = {
    ("COURONNE", "100_SANTE"): "HBLD680",
    ("COURONNE", "MAITRISE"): "HBLD634",
    ("COURONNE", "LIBRE"): "HBLD350",
    ("INLAY_CORE", "100_SANTE"): "HBLD090",
    ("INLAY_CORE", "MAITRISE"): "HBLD245",
    ("INLAY_CORE", "LIBRE"): "HBLD745",
    ("BRIDGE", "100_SANTE"): "HBLD785",
    ("BRIDGE", "MAITRISE"): "HBLD131",
    ("BRIDGE", "LIBRE"): "HBLD040",
    ("CONSULTATION", ""): "HBQD001",
    ("DETARTRAGE", ""): "HBJD001",
}
PERMANENT_TEETH: Final = tuple(q * 10 + t for q in (1, 2, 3, 4) for t in range(1, 8))
"""FDI permanent teeth without wisdom teeth (x8), which are rarely restored."""


def is_molar(tooth: int) -> bool:
    """FDI x6-x8 are molars."""
    return tooth % 10 >= 6
