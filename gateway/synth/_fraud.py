"""Inject the fraud patterns of DOMAIN.md §4 into one beneficiary's care, with ground truth.

Two kinds of injection, so that honest lines keep obeying every rule:

* **transforms** alter one honest event (prices, prescription, amounts, extra AMC copy,
  duplicated item, missing follow-up); one pattern per event, the first that fires;
* **extra events** are added in a sector where the beneficiary has no honest care in the
  window (or, for an early renewal, after the last honest equipment), so no honest event ever
  comes after a fraudulent one in the same renewal family.

Lines of an outlier provider (``provider_volume_outlier``) are tagged before anything else.
Each tagged line carries its amount at stake: what its payer paid because of the fraud.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

from gateway.synth import _tariffs as t
from gateway.synth._billing import (
    audio_fitting,
    dental_event,
    followup_event,
    optical_amc,
    optical_equipment,
)
from gateway.synth._config import SynthConfig
from gateway.synth._honest import lens_pair, renewal_months
from gateway.synth._model import Event, Line
from gateway.synth._people import SECTORS, Beneficiary, Population, add_months

__all__ = ["inject_fraud"]


class _Ctx:
    """What every injection needs for one beneficiary."""

    def __init__(
        self, cfg: SynthConfig, pop: Population, b: Beneficiary, rng: random.Random
    ) -> None:
        self.cfg, self.pop, self.b, self.rng = cfg, pop, b, rng
        self.start, self.end = cfg.start_date, cfg.end_date
        self._n = 0
        self.rates = {p: r for p, r in cfg.fraud_rates.items() if r > 0}

    def scheme(self, pattern: str) -> str:
        self._n += 1
        return f"{pattern}-{self.b.index}-{self._n}"

    def fires(self, pattern: str) -> bool:
        rate = self.rates.get(pattern)
        return rate is not None and self.rng.random() < rate

    def day_in(self, low: date, high: date) -> date | None:
        if high < low:
            return None
        return low + timedelta(days=self.rng.randrange((high - low).days + 1))


def _pairs(event: Event, amo: Line) -> list[Line]:
    """The AMC line(s) of the same item as ``amo``."""
    return [
        ln
        for ln in event.lines
        if ln.side == "AMC"
        and (ln.grouping, ln.laterality, ln.tooth, ln.act_code)
        == (amo.grouping, amo.laterality, amo.tooth, amo.act_code)
    ]


# --- transforms of one honest event ----------------------------------------------------------


def _prescription_invalid(c: _Ctx, ev: Event) -> bool:
    if ev.sector not in ("optique", "audio") or ev.prescription_date is None:
        return False
    after = ev.care_date + timedelta(days=c.rng.randrange(1, 20))
    if c.rng.random() < 0.3 and after <= c.end:
        ev.prescription_date = after
    else:
        # Expired: older than the validity of the band of the age in the prescription's year.
        extra = timedelta(days=c.rng.randrange(20, 300))
        months = _rx_validity_months(ev.sector, c.b.age(ev.care_date))
        back = add_months(ev.care_date, -months) - extra
        longer = _rx_validity_months(ev.sector, c.b.age(back))
        if longer > months:
            back = add_months(ev.care_date, -longer) - extra
        ev.prescription_date = back
    ev.tag_all("prescription_invalid", c.scheme("prescription_invalid"))
    return True


def _rx_validity_months(sector: str, age: int) -> int:
    """Prescription validity (rule set v1): audio 1 year; optique 1/5/3 years by age."""
    if sector == "audio":
        return 12
    return 12 if age < 16 else 60 if age <= 42 else 36


def _cap_of(c: _Ctx, ev: Event, ln: Line) -> int | None:
    if ln.klass == "A":
        return t.FRAME_A_CAP if ln.grouping == "MONTURE" else t.LENS_A_CAP[ln.grouping]
    if ln.klass == "I":
        return t.aid_cap_and_base(c.b.age(ev.care_date))[0]
    if ln.klass == "100_SANTE":
        return t.DENTAL_100_CAP[ln.grouping]
    return None


def _price_above_cap(c: _Ctx, ev: Event) -> bool:
    capped = [(ln, cap) for ln in ev.lines if ln.side == "AMO" and (cap := _cap_of(c, ev, ln))]
    if not capped:
        return False
    amo, cap = c.rng.choice(capped)
    price = (cap * (110 + c.rng.randrange(70)) // 100) // 100 * 100
    excess = price - cap
    scheme = c.scheme("price_above_cap")
    amo.unit_price = price
    pairs = _pairs(ev, amo)
    for amc in pairs:
        amc.unit_price = price
        amc.amc_paid = price - amo.amo_paid  # 100 % Santé: the AMC pays the whole rest
        amc.tag("price_above_cap", scheme, excess)
    amo.tag("price_above_cap", scheme, 0 if pairs else excess)
    return True


def _class_shift(c: _Ctx, ev: Event) -> bool:
    amo = [ln for ln in ev.lines if ln.side == "AMO"]
    if ev.sector != "optique" or any(ln.klass != "B" for ln in amo):
        return False
    before = {id(ln): ln.paid for ln in ev.lines}
    saved = [(ln, ln.unit_price, ln.amc_paid) for ln in ev.lines]
    frame = next((ln for ln in amo if ln.grouping == "MONTURE"), None)
    lenses = [ln for ln in amo if ln.grouping != "MONTURE"]
    if c.b.amc and frame is not None and frame.unit_price > t.FRAME_AMC_MAX + 2000:
        # Variant 1 (price shifting): the frame is billed at the AMC's 100 EUR frame limit and
        # the rest of its price moved onto the lenses, which the ceiling may still cover.
        move = frame.unit_price - t.FRAME_AMC_MAX
        frame.unit_price -= move
        lenses[0].unit_price += move - move // 2
        lenses[1].unit_price += move // 2
        for ln in amo:
            for amc in _pairs(ev, ln):
                amc.unit_price = ln.unit_price
        for ln, amount in zip(amo, optical_amc(amo, c.b.contract), strict=True):
            for amc in _pairs(ev, ln):
                amc.amc_paid = amount
        if sum(ln.paid for ln in ev.lines) <= sum(before.values()):
            for ln, price, paid in saved:  # the ceiling was used up anyway: undo
                ln.unit_price, ln.amc_paid = price, paid
            frame = None
    else:
        frame = None
    if frame is None:
        # Variant 2: class B products billed as class A (the LPP codes stay class B ones).
        for ln in amo:
            cap = t.FRAME_A_CAP if ln.grouping == "MONTURE" else t.LENS_A_CAP[ln.grouping]
            base = t.FRAME_A_BASE if ln.grouping == "MONTURE" else t.LENS_A_BASE[ln.grouping]
            ln.klass, ln.unit_price, ln.amo_base = "A", cap, base
            ln.amo_paid = t.amo_paid(base)
            for amc in _pairs(ev, ln):
                amc.klass, amc.unit_price = "A", cap
                amc.amc_paid = cap - ln.amo_paid
    scheme = c.scheme("class_shift")
    for ln in ev.lines:
        ln.tag("class_shift", scheme, ln.paid - before[id(ln)])
    return True


def _amount_mismatch(c: _Ctx, ev: Event) -> bool:
    candidates = [ln for ln in ev.lines if ln.side == "AMC" and ln.grouping != "SUIVI"]
    if not candidates:
        return False
    amc = c.rng.choice(candidates)
    delta = max(500, amc.billed * (10 + c.rng.randrange(50)) // 100 // 100 * 100)
    amc.unit_price += delta  # the AMC is told a higher price than the AMO
    amc.amc_paid += delta
    scheme = c.scheme("amount_mismatch")
    amc.tag("amount_mismatch", scheme, delta)
    for amo in ev.lines:  # the other side of the same item: part of the scheme, no stake
        if amo.side == "AMO" and any(other is amc for other in _pairs(ev, amo)):
            amo.tag("amount_mismatch", scheme, 0)
    return True


def _double_billing(c: _Ctx, ev: Event) -> bool:
    amcs = [ln for ln in ev.lines if ln.side == "AMC"]
    if not amcs or not ev.is_equipment:
        return False
    other = c.rng.choice([m for m in c.cfg.amc_members if m != c.b.amc])
    scheme = c.scheme("double_billing_amc")
    for ln in amcs:
        copy = ln.copy()
        copy.member = other
        copy.tag("double_billing_amc", scheme)
        ev.lines.append(copy)
        ln.tag("double_billing_amc", scheme, 0)  # the legitimate claim: same item, no stake
    for ln in ev.lines:
        if ln.side == "AMO":
            ln.tag("double_billing_amc", scheme, 0)
    return True


def _duplicate_item(c: _Ctx, ev: Event, out: list[Event]) -> bool:
    items = [ln for ln in ev.lines if ln.side == "AMO" and (ln.laterality or ln.tooth)]
    if not items:
        return False
    amo = c.rng.choice(items)
    day = min(ev.care_date + timedelta(days=c.rng.randrange(3)), c.end)
    dup = replace(ev, care_date=day, lines=[], followups=[], honest=False)
    dup.lines = [ln.copy() for ln in (amo, *_pairs(ev, amo))]
    scheme = c.scheme("duplicate_item")
    dup.tag_all("duplicate_item", scheme)
    for ln in (amo, *_pairs(ev, amo)):  # the first billing of the item: no stake
        ln.tag("duplicate_item", scheme, 0)
    out.append(dup)
    return True


def _no_followup(c: _Ctx, ev: Event, dropped: set[int]) -> bool:
    if not ev.followups or ev.care_date > add_months(c.end, -12):
        return False
    dropped.update(id(f) for f in ev.followups)
    ev.followups = []
    ev.tag_all("no_followup", c.scheme("no_followup"))
    return True


def _transform(c: _Ctx, events: list[Event]) -> list[Event]:
    extra: list[Event] = []
    dropped: set[int] = set()
    covered = bool(c.b.amc)
    steps: list[tuple[str, Callable[[Event], bool]]] = [
        ("prescription_invalid", lambda e: e.is_equipment and _prescription_invalid(c, e)),
        ("price_above_cap", lambda e: e.is_equipment and _price_above_cap(c, e)),
        ("class_shift", lambda e: _class_shift(c, e)),
        ("amount_mismatch", lambda e: covered and _amount_mismatch(c, e)),
        ("double_billing_amc", lambda e: covered and _double_billing(c, e)),
        ("duplicate_item", lambda e: e.is_equipment and _duplicate_item(c, e, extra)),
        ("no_followup", lambda e: _no_followup(c, e, dropped)),
    ]
    for ev in events:
        if ev.tagged or id(ev) in dropped:
            continue
        for pattern, apply in steps:
            if pattern in c.rates and c.fires(pattern) and apply(ev):
                break
    return [ev for ev in events if id(ev) not in dropped] + extra


# --- extra events ------------------------------------------------------------------------------


def _with_followup(c: _Ctx, fitting: Event) -> list[Event]:
    """A fitting and one (possibly fake) follow-up within a year, when the window allows."""
    day = fitting.care_date + timedelta(days=c.rng.randrange(60, 300))
    out = [fitting]
    if day <= c.end:
        out.append(followup_event(c.b, day, fitting.provider))
    return out


def _equipment(c: _Ctx, b: Beneficiary, sector: str, day: date) -> list[Event]:
    """An ordinary-looking equipment of ``sector`` for ``b`` on ``day`` (valid prescription)."""
    rng, pop = c.rng, c.pop
    if sector == "optique":
        rx = day - timedelta(days=rng.randrange(7, 200))
        prescriber = rng.choice(pop.ophthalmologists)
        return [
            optical_equipment(
                b,
                rng,
                day,
                pop.pick_provider(rng, sector),
                prescriber,
                rx,
                klass="B",
                lenses=lens_pair(rng, b.age(day)),
                frame=True,
            )
        ]
    if sector == "audio":
        rx = day - timedelta(days=rng.randrange(30, 200))
        fitting = audio_fitting(
            b,
            rng,
            day,
            pop.pick_provider(rng, sector),
            rng.choice(pop.orls),
            rx,
            klass="II",
            ears=("right", "left"),
        )
        return _with_followup(c, fitting)
    tooth = rng.choice(t.PERMANENT_TEETH)
    return [
        dental_event(b, rng, day, pop.pick_provider(rng, sector), [("COURONNE", "LIBRE", tooth)])
    ]


def _free_sectors(events: list[Event]) -> list[str]:
    used = {ev.sector for ev in events}
    return [s for s in SECTORS if s not in used]


def _phantom(c: _Ctx, events: list[Event]) -> list[Event]:
    free = [s for s in _free_sectors(events) if s != "audio" or c.b.age(c.start) >= 40]
    day = c.day_in(c.start, c.end)
    if not c.b.amc or not free or day is None:
        return []
    scheme = c.scheme("phantom_complement")
    out: list[Event] = []
    for ev in _equipment(c, c.b, c.rng.choice(free), day):
        ev.lines = [ln for ln in ev.lines if ln.side == "AMC"]  # no AMO side at all
        if ev.lines:
            ev.tag_all("phantom_complement", scheme)
            out.append(ev)
    return out


def _early_renewal(c: _Ctx, events: list[Event]) -> list[Event]:
    choices: list[tuple[Event, date, date]] = []
    for sector in ("optique", "audio"):
        equipment = [ev for ev in events if ev.sector == sector and ev.honest and ev.is_equipment]
        if not equipment:
            continue
        last = max(equipment, key=lambda ev: ev.care_date)
        low = last.care_date + timedelta(days=45)
        months = renewal_months(sector, c.b.age(last.care_date))
        high = min(add_months(last.care_date, months) - timedelta(days=20), c.end)
        if sector == "optique" and c.b.age(high) != c.b.age(low):
            high = min(high, date(high.year - 1, 12, 31))  # stay in one age band
        if low <= high:
            choices.append((last, low, high))
    if not choices:
        return []
    last, low, high = c.rng.choice(choices)
    day = c.day_in(low, high)
    assert day is not None
    rng, b = c.rng, c.b
    rx = day - timedelta(days=rng.randrange(7, 200))
    amo = [ln for ln in last.lines if ln.side == "AMO"]
    if last.sector == "optique":
        lenses = tuple(ln.grouping for ln in amo if ln.grouping != "MONTURE")
        pair = (lenses[0], lenses[-1]) if lenses else lens_pair(rng, b.age(day))
        assert last.prescriber is not None
        out = [
            optical_equipment(
                b,
                rng,
                day,
                last.provider,
                last.prescriber,
                rx,
                klass=amo[0].klass,
                lenses=pair,
                frame=True,
            )
        ]
    else:
        assert last.prescriber is not None
        ears = tuple(ln.laterality for ln in amo)
        fitting = audio_fitting(
            b, rng, day, last.provider, last.prescriber, rx, klass=amo[0].klass, ears=ears
        )
        out = _with_followup(c, fitting)
    scheme = c.scheme("early_renewal")
    for ev in out:
        ev.tag_all("early_renewal", scheme)
    return out


def _implausible(c: _Ctx, events: list[Event]) -> list[Event]:
    free, b, rng, pop = _free_sectors(events), c.b, c.rng, c.pop
    if "audio" in free and 18 <= b.age(c.start) <= 27:
        # A ring fits young people with expensive aids (DOMAIN.md §4: patients averaged 24).
        day = c.day_in(c.start, c.end)
        assert day is not None
        rx = day - timedelta(days=rng.randrange(30, 200))
        ring = pop.ring_young
        fitting = audio_fitting(
            b, rng, day, ring, pop.ring_young_prescriber, rx, klass="II", ears=("right", "left")
        )
        out = _with_followup(c, fitting)
        scheme = ring.scheme_id
    elif "optique" in free and b.age(c.start) < 6:
        # Progressive lenses for a small child.
        day = c.day_in(c.start, min(c.end, date(b.birth_year + 5, 12, 31)))
        if day is None:
            return []
        rx = day - timedelta(days=rng.randrange(7, 200))
        out = [
            optical_equipment(
                b,
                rng,
                day,
                pop.pick_provider(rng, "optique"),
                rng.choice(pop.ophthalmologists),
                rx,
                klass="B",
                lenses=("VERRE_TRES_COMPLEXE", "VERRE_TRES_COMPLEXE"),
                frame=True,
            )
        ]
        scheme = c.scheme("implausible_demography")
    else:
        return []
    for ev in out:
        ev.tag_all("implausible_demography", scheme)
    return out


def _identity_theft(c: _Ctx, events: list[Event]) -> list[Event]:
    free = [s for s in _free_sectors(events) if s != "dentaire"]
    if not free:
        return []
    sector = free[0]
    age = c.b.age(c.start)
    gap = c.rng.randrange(15, 40)
    impostor_age = age + gap if age + gap <= 90 else age - gap
    if impostor_age < (30 if sector == "audio" else 16):
        impostor_age = age + gap
    if impostor_age > 95:
        return []
    # The impostor uses the victim's identity (token) but is another person (birth year).
    impostor = replace(c.b, birth_year=c.start.year - impostor_age)
    day = c.day_in(c.start, c.end)
    assert day is not None
    out = _equipment(c, impostor, sector, day)
    scheme = c.scheme("identity_theft")
    for ev in out:
        ev.tag_all("identity_theft", scheme)
    return out


def _fictitious(c: _Ctx, events: list[Event]) -> list[Event]:
    free, b, rng, pop = _free_sectors(events), c.b, c.rng, c.pop
    if "audio" in free and b.age(c.start) >= 30 and (rng.random() < 0.6 or "optique" not in free):
        # Arranged between a prescriber and an audiologist: aids at the class I cap (zero
        # out-of-pocket, nothing for the "patient" to notice), fake follow-ups included.
        day = c.day_in(c.start, c.end)
        assert day is not None
        ring = pop.ring_fictitious
        rx = day - timedelta(days=rng.randrange(30, 120))
        fitting = audio_fitting(
            b, rng, day, ring, pop.ring_fictitious_prescriber, rx, klass="I", ears=("right", "left")
        )
        cap = t.aid_cap_and_base(b.age(day))[0]
        for ln in fitting.lines:
            ln.unit_price = cap
            if ln.side == "AMC":
                ln.amc_paid = cap - t.amo_paid(t.aid_cap_and_base(b.age(day))[1])
        out = _with_followup(c, fitting)
        scheme = ring.scheme_id
    elif "optique" in free and b.age(c.start) >= 16:
        day = c.day_in(c.start, c.end)
        assert day is not None
        out = _equipment(c, b, "optique", day)
        scheme = c.scheme("fictitious_billing")
    else:
        return []
    for ev in out:
        ev.tag_all("fictitious_billing", scheme)
    return out


def _batch_day(day: date, end: date) -> date:
    """Outliers bill in batches on the 1st and 15th: many lines per active day."""
    if day.day == 1 or day.day == 15:
        return day
    batch = day.replace(day=15) if day.day < 15 else add_months(day.replace(day=1), 1)
    return batch if batch <= end else day


_EXTRAS: tuple[tuple[str, Callable[[_Ctx, list[Event]], list[Event]]], ...] = (
    ("phantom_complement", _phantom),
    ("early_renewal", _early_renewal),
    ("implausible_demography", _implausible),
    ("identity_theft", _identity_theft),
    ("fictitious_billing", _fictitious),
)


def inject_fraud(
    cfg: SynthConfig, pop: Population, b: Beneficiary, rng: random.Random, events: list[Event]
) -> list[Event]:
    """Return ``events`` with fraud injected, sorted by care date.

    ``rng`` is the beneficiary's fraud stream, separate from its honest stream, so changing a
    rate never changes the honest population.
    """
    c = _Ctx(cfg, pop, b, rng)
    for ev in events:  # 1. everything an outlier provider bills is part of its scheme
        if ev.provider.role == "outlier":
            ev.care_date = _batch_day(ev.care_date, c.end)
            ev.tag_all("provider_volume_outlier", ev.provider.scheme_id)
    events = _transform(c, events)  # 2. alter honest events
    for pattern, make in _EXTRAS:  # 3. add events in sectors free of honest care
        if c.fires(pattern):
            added = make(c, events)
            for ev in added:
                ev.honest = False
            events.extend(added)
    events.sort(key=lambda ev: ev.care_date)
    return events
