"""Bill one care event honestly: prices within caps, AMO base and payment, AMC complement.

The AMC pays the rest of the amount billed (``billed - amo_paid``) within the "contrat
responsable" ceilings scaled by the beneficiary's contract level; in the 100 % Santé classes
(optique A, audio I, dental 100_SANTE) it pays the whole rest (zero out-of-pocket).
"""

from __future__ import annotations

import random
from datetime import date

from gateway.domain._identifiers import FOLLOW_UP_ACT_CODE
from gateway.synth import _tariffs as t
from gateway.synth._config import AMO_MEMBER
from gateway.synth._model import Event, Line
from gateway.synth._people import Beneficiary, Prescriber, Provider

__all__ = [
    "add_amc_side",
    "audio_fitting",
    "dental_event",
    "followup_event",
    "optical_amc",
    "optical_equipment",
]


def _round_price(rng: random.Random, low: int, high: int, step: int = 100) -> int:
    """A price in [low, high] on a ``step`` grid (opticians price in whole euros)."""
    return rng.randint(-(-low // step), high // step) * step


def _amo_line(
    grouping: str, klass: str, act: str, lat: str, tooth: int, price: int, base: int
) -> Line:
    return Line(
        "AMO",
        AMO_MEMBER,
        grouping,
        klass,
        act,
        lat,
        tooth,
        price,
        amo_base=base,
        amo_paid=t.amo_paid(base),
    )


def optical_amc(amo_lines: list[Line], contract: float) -> list[int]:
    """AMC complement of each AMO line of one optical equipment.

    Class A items: the whole rest. Class B items share the equipment ceiling (by lens type,
    times the contract level), the frame first and at most 100 EUR.
    """
    lenses = [ln.grouping for ln in amo_lines if ln.grouping != "MONTURE"] or ["VERRE_SIMPLE"]
    ceiling = sum(t.EQUIPMENT_CEILING[g] for g in lenses) // len(lenses)
    remaining = int(ceiling * contract)
    b_left = sum(1 for ln in amo_lines if ln.klass == "B")
    out: list[int] = []
    for ln in sorted(amo_lines, key=lambda x: x.grouping != "MONTURE"):
        rest = max(ln.billed - ln.amo_paid, 0)
        if ln.klass == "A":
            amount = rest
        else:
            cap = remaining // b_left
            if ln.grouping == "MONTURE":
                cap = min(cap, t.FRAME_AMC_MAX)
            amount = min(rest, cap)
            remaining -= amount
            b_left -= 1
        out.append(amount)
    # Back to the input order.
    order = sorted(range(len(amo_lines)), key=lambda i: amo_lines[i].grouping != "MONTURE")
    result = [0] * len(amo_lines)
    for pos, i in enumerate(order):
        result[i] = out[pos]
    return result


def add_amc_side(event: Event, member: str, amounts: list[int]) -> None:
    """Append one AMC line per current AMO line, paying ``amounts``."""
    amo = [ln for ln in event.lines if ln.side == "AMO"]
    for ln, amount in zip(amo, amounts, strict=True):
        amc = ln.copy()
        amc.side, amc.member = "AMC", member
        amc.amo_base = amc.amo_paid = 0
        amc.amc_paid = amount
        event.lines.append(amc)


def optical_equipment(
    b: Beneficiary,
    rng: random.Random,
    day: date,
    provider: Provider,
    prescriber: Prescriber,
    prescription_date: date,
    *,
    klass: str,
    lenses: tuple[str, str],
    frame: bool,
) -> Event:
    """One optical equipment (frame and/or 2 lenses), both sides."""
    event = Event("optique", day, provider, b.birth_year, prescriber, prescription_date)
    if frame:
        code = rng.choice(t.LPP_OPTIQUE[("MONTURE", klass)])
        if klass == "A":
            price, base = _round_price(rng, 1500, t.FRAME_A_CAP, 50), t.FRAME_A_BASE
        else:
            price, base = _round_price(rng, *t.FRAME_B_PRICE), t.CLASS_B_BASE
        event.lines.append(_amo_line("MONTURE", klass, code, "", 0, price, base))
    for lat, grouping in zip(("right", "left"), lenses, strict=True):
        code = rng.choice(t.LPP_OPTIQUE[(grouping, klass)])
        if klass == "A":
            cap = t.LENS_A_CAP[grouping]
            price, base = _round_price(rng, cap * 55 // 100, cap, 50), t.LENS_A_BASE[grouping]
        else:
            price, base = _round_price(rng, *t.LENS_B_PRICE[grouping]), t.CLASS_B_BASE
        event.lines.append(_amo_line(grouping, klass, code, lat, 0, price, base))
    if b.amc:
        add_amc_side(event, b.amc, optical_amc(event.lines, b.contract))
    return event


def audio_fitting(
    b: Beneficiary,
    rng: random.Random,
    day: date,
    provider: Provider,
    prescriber: Prescriber,
    prescription_date: date,
    *,
    klass: str,
    ears: tuple[str, ...],
) -> Event:
    """Hearing aid(s), one line per ear, both sides."""
    event = Event("audio", day, provider, b.birth_year, prescriber, prescription_date)
    cap, base = t.aid_cap_and_base(b.age(day))
    for ear in ears:
        code = rng.choice(t.LPP_AUDIO[klass])
        if klass == "I":
            price = _round_price(rng, cap * 85 // 100, cap)
        else:
            price = _round_price(rng, max(t.AID_II_PRICE[0], cap), max(t.AID_II_PRICE[1], cap))
        event.lines.append(_amo_line("AIDE_AUDITIVE", klass, code, ear, 0, price, base))
    if b.amc:
        amounts = []
        for ln in event.lines:
            rest = ln.billed - ln.amo_paid
            if klass == "II":
                rest = max(min(rest, int(t.AID_II_CEILING * b.contract) - ln.amo_paid), 0)
            amounts.append(rest)
        add_amc_side(event, b.amc, amounts)
    return event


def followup_event(b: Beneficiary, day: date, provider: Provider) -> Event:
    """An audiology follow-up (``SUI``, 0.01 EUR), AMO side only."""
    event = Event("audio", day, provider, b.birth_year)
    price = t.SUI_PRICE
    event.lines.append(_amo_line("SUIVI", "", FOLLOW_UP_ACT_CODE, "", 0, price, price))
    return event


def _dental_price(rng: random.Random, grouping: str, klass: str, tooth: int) -> int:
    if grouping in ("CONSULTATION", "DETARTRAGE"):
        return t.DENTAL_BASE[grouping]
    if klass == "100_SANTE":
        cap = t.DENTAL_100_CAP[grouping]
        if grouping == "COURONNE" and t.is_molar(tooth):
            cap = t.DENTAL_100_CAP_MOLAR_CROWN
        return _round_price(rng, cap * 8 // 10, cap)
    return _round_price(rng, *t.DENTAL_PRICE[(grouping, klass)])


def dental_event(
    b: Beneficiary,
    rng: random.Random,
    day: date,
    provider: Provider,
    items: list[tuple[str, str, int]],
) -> Event:
    """Dental acts ``(grouping, basket, tooth)`` of one visit, both sides."""
    event = Event("dentaire", day, provider, b.birth_year)
    for grouping, klass, tooth in items:
        price = _dental_price(rng, grouping, klass, tooth)
        code = t.CCAM[(grouping, klass)]
        event.lines.append(
            _amo_line(grouping, klass, code, "", tooth, price, t.DENTAL_BASE[grouping])
        )
    if b.amc:
        amounts = []
        for ln in event.lines:
            rest = ln.billed - ln.amo_paid
            if ln.klass in ("MAITRISE", "LIBRE"):
                rest = min(rest, int(t.DENTAL_PLAN_MAX[ln.grouping] * b.contract))
            amounts.append(rest)
        add_amc_side(event, b.amc, amounts)
    return event
