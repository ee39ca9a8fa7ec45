"""Honest care of one beneficiary over the window, following the benefit rules (DOMAIN.md §3).

- Optics: equipment renewed no earlier than 1 year under 16 and 2 years from 16 (age in the care
  year, the only age a line carries), prescriptions well within their validity (1 year under
  16, 5 years 16-42, 3 years over 42, by the age in the prescription's year); class A within
  caps; no progressive lenses under 6.
- Hearing aids: first fitting in the window at most once per ear (renewal every 4 years),
  prescription 30 days to 10 months old (trial period, 1-year validity chosen by the rule set),
  a first ``SUI`` follow-up within 3 to 11 months, then about yearly.
- Dental: consultations, scaling, and prostheses always preceded by a consultation at the same
  dentist; never two prostheses on the same tooth.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from gateway.synth import _tariffs as t
from gateway.synth._billing import audio_fitting, dental_event, followup_event, optical_equipment
from gateway.synth._model import Event
from gateway.synth._people import Beneficiary, Population, Provider, add_months

__all__ = ["honest_events", "lens_pair", "renewal_months"]

_SAFETY_DAYS = 16  # clear of the legal boundary, even after an outlier's batching shift


def renewal_months(sector: str, age: int) -> int:
    """Minimum renewal period (months) of an equipment at ``age`` (rule set v1)."""
    if sector == "audio":
        return 48
    return 6 if age < 6 else 12 if age < 16 else 24


def lens_pair(rng: random.Random, age: int) -> tuple[str, str]:
    """Lens types of a pair at ``age`` (progressive/complex lenses are for older people)."""
    if age < 6:
        return ("VERRE_SIMPLE", "VERRE_SIMPLE")
    weights = (85, 15, 0) if age < 16 else (65, 30, 5) if age < 45 else (25, 45, 30)
    right = rng.choices(t.LENS_GROUPINGS, weights=weights)[0]
    left = right
    if rng.random() < 0.1:
        i = t.LENS_GROUPINGS.index(right)
        j = i + 1 if i == 0 or (i == 1 and rng.random() < 0.5) else i - 1
        if weights[j] > 0:
            left = t.LENS_GROUPINGS[j]
    return right, left


def _optique(
    b: Beneficiary, pop: Population, rng: random.Random, start: date, end: date
) -> list[Event]:
    age0 = b.age(start)
    wears = 0.04 if age0 < 6 else 0.25 if age0 < 16 else 0.45 if age0 < 40 else 0.75
    if rng.random() >= wears:
        return []
    events: list[Event] = []
    day = start + timedelta(days=rng.randrange(730 if age0 >= 16 else 365))
    while day <= end:
        age = b.age(day)
        provider = b.optician if rng.random() < 0.8 else pop.pick_provider(rng, "optique")
        prescriber = b.ophthalmologist
        if rng.random() < 0.15:
            prescriber = rng.choice(pop.ophthalmologists)
        # Validity depends on the age when prescribed (rule set v1): under 19 a prescription
        # of the last 10 months is always valid; from 19, up to 34 months old is valid in
        # every band (5 years at 16-42, 3 years above).
        max_days = 1020 if age >= 19 and rng.random() < 0.3 else 300
        rx = day - timedelta(days=rng.randrange(7, max_days))
        klass = "A" if rng.random() < 0.2 else "B"
        events.append(
            optical_equipment(
                b,
                rng,
                day,
                provider,
                prescriber,
                rx,
                klass=klass,
                lenses=lens_pair(rng, age),
                frame=rng.random() < 0.9,
            )
        )
        day = _next_optical(b, rng, day)
    return events


def _next_optical(b: Beneficiary, rng: random.Random, prev: date) -> date:
    if b.age(prev) >= 16:
        return add_months(prev, 24) + timedelta(days=rng.randrange(_SAFETY_DAYS, 540))
    nxt = add_months(prev, 12) + timedelta(days=rng.randrange(_SAFETY_DAYS, 240))
    if b.age(nxt) >= 16 and nxt < add_months(prev, 24) + timedelta(days=_SAFETY_DAYS):
        nxt = add_months(prev, 24) + timedelta(days=rng.randrange(_SAFETY_DAYS, 240))
    return nxt


def _audio(
    b: Beneficiary, pop: Population, rng: random.Random, start: date, end: date
) -> list[Event]:
    age0 = b.age(start)
    p = (
        0.002
        if age0 < 20
        else 0.003
        if age0 < 30
        else 0.02
        if age0 < 60
        else 0.12
        if age0 < 75
        else 0.3
    )
    if rng.random() >= p:
        return []
    events: list[Event] = []
    day = start + timedelta(days=rng.randrange(48 * 31))
    while day <= end:
        provider = b.audiologist if rng.random() < 0.85 else pop.pick_provider(rng, "audio")
        rx = day - timedelta(days=rng.randrange(30, 300))
        ears = ("right", "left") if rng.random() < 0.8 else (rng.choice(("right", "left")),)
        klass = "I" if rng.random() < 0.45 else "II"
        fitting = audio_fitting(b, rng, day, provider, b.ear_prescriber, rx, klass=klass, ears=ears)
        events.append(fitting)
        follow = day + timedelta(days=rng.randrange(90, 330))
        while follow <= end:
            sui = followup_event(b, follow, provider)
            fitting.followups.append(sui)
            events.append(sui)
            follow += timedelta(days=rng.randrange(330, 400))
        day = add_months(day, 48) + timedelta(days=rng.randrange(_SAFETY_DAYS, 400))
    return events


def _dentaire(
    b: Beneficiary, pop: Population, rng: random.Random, start: date, end: date
) -> list[Event]:
    events: list[Event] = []
    used: set[int] = set()
    seg = start
    while seg <= end:
        length = min(365, (end - seg).days + 1)
        age = b.age(seg)
        dentist = b.dentist if rng.random() < 0.85 else pop.pick_provider(rng, "dentaire")
        if rng.random() < 0.45:
            day = seg + timedelta(days=rng.randrange(length))
            events.append(dental_event(b, rng, day, dentist, [("CONSULTATION", "", 0)]))
        if age >= 12 and rng.random() < 0.3:
            day = seg + timedelta(days=rng.randrange(length))
            events.append(dental_event(b, rng, day, dentist, [("DETARTRAGE", "", 0)]))
        rate = (
            0.0
            if age < 12
            else 0.02
            if age < 25
            else 0.08
            if age < 45
            else 0.15
            if age < 65
            else 0.2
        )
        episodes = (rng.random() < rate) + (rng.random() < rate / 3)
        for _ in range(episodes):
            events.extend(_prosthesis(b, rng, seg, length, end, dentist, used))
        seg += timedelta(days=365)
    return events


def _prosthesis(
    b: Beneficiary,
    rng: random.Random,
    seg: date,
    length: int,
    end: date,
    dentist: Provider,
    used: set[int],
) -> list[Event]:
    free = [tooth for tooth in t.PERMANENT_TEETH if tooth not in used]
    if not free:
        return []
    tooth = rng.choice(free)
    used.add(tooth)
    consult = seg + timedelta(days=rng.randrange(length))
    crown_day = consult + timedelta(days=rng.randrange(20, 60))
    if crown_day > end:
        return []
    basket = rng.choices(("100_SANTE", "MAITRISE", "LIBRE"), weights=(45, 25, 30))[0]
    out = [dental_event(b, rng, consult, dentist, [("CONSULTATION", "", 0)])]
    if rng.random() < 0.2:
        core_day = consult + timedelta(days=rng.randrange(7, 14))
        out.append(dental_event(b, rng, core_day, dentist, [("INLAY_CORE", basket, tooth)]))
    grouping = "BRIDGE" if rng.random() < 0.05 else "COURONNE"
    out.append(dental_event(b, rng, crown_day, dentist, [(grouping, basket, tooth)]))
    return out


def honest_events(
    b: Beneficiary, pop: Population, rng: random.Random, start: date, end: date
) -> list[Event]:
    """Every honest care event of ``b`` in ``[start, end]``, in no particular order."""
    return [
        *_optique(b, pop, rng, start, end),
        *_audio(b, pop, rng, start, end),
        *_dentaire(b, pop, rng, start, end),
    ]
