"""The rules of the shared scoring: each looks at one line and its history and may yield a finding.

A finding is a reason code, a short English explanation (no identity, amount or date of anyone
else's claim) and an evidence strength in [0, 1]. Rules read only the rule set and the
:class:`~gateway.domain.ClaimHistory`; they never decide, they point (GDPR art. 22). Benefit
figures: DOMAIN.md §3, carried by the rule set.

What a rule may see of other members' lines (DESIGN invariant "an AMC never learns which AMC
holds a claim, nor that another AMC's line exists"):

1. an AMC's line is judged on its own lines and the AMO side only (``Context.others``); the
   lines of other AMCs reach one rule, the cross-AMC duplicate (``Context.everyone``), and only
   as "at least one", never a count, a date or an amount. Without this, a renewal, a missing
   follow-up or even a rule that does *not* fire would tell an AMC what another AMC holds;
2. an AMO's line is judged on everything, and a finding built from an AMC line says so
   (``Finding.amc_data``): the policy bundles forbid automated alerts derived from AMC data to
   an AMO (rule ``common-no-amc-data-in-amo-alerts``, CSS L.114-9).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from gateway.domain._claims import (
    EQUIPMENT_GROUPING_CODES,
    ClaimLine,
    ClaimRecord,
    age_in_year,
)
from gateway.domain._history import (
    ClaimHistory,
    ProviderLevel,
    follow_ups,
    previous_equipment,
    provider_ids,
)
from gateway.domain.matching import (
    AMOUNT_BILLED_DIFFERS,
    cross_amc_count,
    find_counterparts,
    pair_amount_issues,
)
from gateway.domain.scoring._ruleset import AgeBand, RuleSet

__all__ = ["Context", "Finding", "add_months", "evaluate_rules", "history_span"]

_LEVEL_NAMES: dict[ProviderLevel, str] = {
    "rpps": "practitioner (RPPS)",
    "am_number": "billing site (AM number)",
    "finess": "establishment (FINESS)",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One fired rule: its code, explanation and evidence strength (before weighting)."""

    code: str
    weight: float
    strength: float
    explanation: str
    amc_data: bool = False
    """The finding was built from a line an AMC uploaded (other than the scored line)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What every rule reads: the line, its owner, the history slice, the rule set, today.

    ``others``: the beneficiary's lines the holder's rules may use (see the module docstring);
    ``everyone``: every member's lines, for the cross-AMC duplicate only.
    """

    record: ClaimRecord
    others: Sequence[ClaimRecord]
    history: ClaimHistory
    ruleset: RuleSet
    today: date
    everyone: Sequence[ClaimRecord] = ()

    @property
    def line(self) -> ClaimLine:
        return self.record.line


def add_months(d: date, months: int) -> date:
    """``d`` plus ``months`` calendar months, clamped to the month's end (29 Feb + 12 -> 28 Feb)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _band(bands: Sequence[AgeBand], sector: str, age: int) -> AgeBand | None:
    for b in bands:
        if b.sector == sector and b.min_age <= age <= b.max_age:
            return b
    return None


def history_span(line: ClaimLine, ruleset: RuleSet) -> tuple[date, date]:
    """Care-date range of the beneficiary's lines the rules need around ``line``."""
    rules = ruleset.rules
    months = max((b.months for b in rules.early_renewal.periods), default=0)
    window = max([ruleset.matching_window_days, *rules.duplicate_item.window_days.values()])
    start = add_months(line.care_date, -months) - timedelta(days=window)
    end = max(add_months(line.care_date, rules.no_followup.months), line.care_date) + timedelta(
        days=window
    )
    return start, end


def _phantom_and_amounts(ctx: Context) -> Iterator[Finding]:
    line, rules, window = ctx.line, ctx.ruleset.rules, ctx.ruleset.matching_window_days
    counterparts = find_counterparts(ctx.record, ctx.others, window_days=window)
    rule = rules.phantom_complement
    if (
        line.side == "AMC"
        and not counterparts
        and (ctx.today - line.care_date).days >= rule.grace_days
    ):
        yield Finding(
            rule.code,
            rule.weight,
            1.0,
            f"Complementary (AMC) payment with no matching compulsory (AMO) line for the same "
            f"beneficiary, provider and item within {window} days",
        )
    mismatch = rules.amount_mismatch
    strength, text, amc_data = 0.0, "", False
    if line.side == "AMC" and line.amc_paid_cents > line.amount_billed_cents:
        strength, text = 1.0, "AMC payment exceeds the amount billed"
    if counterparts:
        other = counterparts[0].line
        amo, amc = (line, other) if line.side == "AMO" else (other, line)
        issues = pair_amount_issues(amo, amc)
        diff = abs(amo.amount_billed_cents - amc.amount_billed_cents)
        if AMOUNT_BILLED_DIFFERS in issues and diff > mismatch.tolerance_cents:
            rel = diff / max(amo.amount_billed_cents, amc.amount_billed_cents)
            s = min(1.0, 0.5 + rel)
            if s > strength:
                strength, text = s, "Amount billed differs between the AMO and AMC sides"
                amc_data = line.side == "AMO"
        paid = amo.amo_paid_cents + amc.amc_paid_cents
        if paid > amo.amount_billed_cents + mismatch.tolerance_cents:
            strength, text = 1.0, "AMO and AMC payments together exceed the amount billed"
            amc_data = line.side == "AMO"
    if strength > 0:
        yield Finding(mismatch.code, mismatch.weight, strength, text, amc_data)


def _early_renewal(ctx: Context) -> Iterator[Finding]:
    line, rule = ctx.line, ctx.ruleset.rules.early_renewal
    if line.grouping_code not in EQUIPMENT_GROUPING_CODES:
        return
    band = _band(rule.periods, line.sector, age_in_year(line.birth_year, line.care_date))
    if band is None or band.months == 0:
        return
    window = max(ctx.ruleset.matching_window_days, 0)
    prev = previous_equipment(ctx.others, line, exclude_within_days=window)
    if prev is None:
        return
    due = add_months(prev.line.care_date, band.months)
    if line.care_date >= due:
        return
    elapsed = (line.care_date - prev.line.care_date).days
    period = (due - prev.line.care_date).days
    months = elapsed * 12 // 365
    yield Finding(
        rule.code,
        rule.weight,
        0.5 + 0.5 * (1 - elapsed / period),
        f"Renewed about {months} month(s) after a previous equipment for the same "
        f"{'tooth' if line.tooth else 'eye/ear' if line.laterality else 'item'}; "
        f"minimum {band.months} months at this age",
        prev.line.side == "AMC" and prev.member != ctx.record.member,
    )


def _prescription(ctx: Context) -> Iterator[Finding]:
    line, rule = ctx.line, ctx.ruleset.rules.prescription_invalid
    rx = line.prescription_date
    if rx is None or line.grouping_code not in EQUIPMENT_GROUPING_CODES:
        return
    if not any(b.sector == line.sector for b in rule.validity):
        return
    if rx > line.care_date:
        yield Finding(rule.code, rule.weight, 1.0, "Prescription dated after the delivery")
        return
    band = _band(rule.validity, line.sector, age_in_year(line.birth_year, rx))
    if band is None:
        return
    expiry = add_months(rx, band.months)
    if line.care_date > expiry:
        overdue = (line.care_date - expiry).days
        yield Finding(
            rule.code,
            rule.weight,
            min(1.0, 0.6 + 0.4 * overdue / 365),
            f"Prescription older than its {band.months}-month validity at delivery",
        )


def _price_cap(ctx: Context) -> Iterator[Finding]:
    line, rule = ctx.line, ctx.ruleset.rules.price_above_cap
    age = age_in_year(line.birth_year, line.care_date)
    caps = [
        c.max_cents
        for c in rule.caps
        if c.sector == line.sector
        and c.grouping_code == line.grouping_code
        and c.product_class == line.product_class
        and c.min_age <= age <= c.max_age
    ]
    if not caps:
        return
    cap = min(caps)
    if line.unit_price_cents > cap:
        excess = (line.unit_price_cents - cap) / cap if cap else 1.0
        yield Finding(
            rule.code,
            rule.weight,
            min(1.0, 0.6 + excess),
            f"Unit price above the legal cap of {cap // 100} EUR for class {line.product_class}",
        )


def _double_billing(ctx: Context) -> Iterator[Finding]:
    rule, window = ctx.ruleset.rules.double_billing_amc, ctx.ruleset.matching_window_days
    n = cross_amc_count(ctx.record, ctx.everyone, window_days=window)
    if ctx.line.side == "AMC":
        # "At least one other": neither which AMC nor how many (module docstring, step 1).
        text = "Same item also claimed from another complementary insurer"
    else:
        n -= 1
        text = f"Same item claimed from {n + 1} complementary insurers"
    if n >= 1:
        yield Finding(rule.code, rule.weight, 1.0, text, amc_data=True)


def _duplicate(ctx: Context) -> Iterator[Finding]:
    line, rule = ctx.line, ctx.ruleset.rules.duplicate_item
    if line.grouping_code not in EQUIPMENT_GROUPING_CODES:
        return
    window = rule.window_days.get(line.sector, 0)
    n = sum(
        1
        for o in ctx.others
        if o.member == ctx.record.member
        and o.line.side == line.side
        and o.line.grouping_code == line.grouping_code
        and o.line.laterality == line.laterality
        and o.line.tooth == line.tooth
        and abs((o.line.care_date - line.care_date).days) <= window
    )
    if n:
        where = "tooth" if line.tooth else "eye/ear" if line.laterality else "item"
        yield Finding(
            rule.code, rule.weight, 1.0, f"Same item billed {n + 1} times for the same {where}"
        )


def _no_followup(ctx: Context) -> Iterator[Finding]:
    line, rule = ctx.line, ctx.ruleset.rules.no_followup
    if line.grouping_code != "AIDE_AUDITIVE":
        return
    deadline = add_months(line.care_date, rule.months)
    if ctx.today <= deadline:  # the window (care, deadline] is not over yet
        return
    if follow_ups(ctx.others, line, deadline):
        return
    yield Finding(
        rule.code,
        rule.weight,
        1.0,
        f"Hearing aid with no follow-up (SUI) within {rule.months} months of the fitting",
    )


def _demography(ctx: Context) -> Iterator[Finding]:
    line, rule = ctx.line, ctx.ruleset.rules.implausible_demography
    age = age_in_year(line.birth_year, line.care_date)
    for case in rule.cases:
        if (
            case.sector == line.sector
            and line.grouping_code in case.grouping_codes
            and age < case.below_age
        ):
            yield Finding(
                rule.code,
                rule.weight,
                case.strength,
                f"{line.grouping_code.replace('_', ' ').lower()} for a beneficiary under "
                f"{case.below_age}",
            )
            return


def _provider_outliers(ctx: Context) -> Iterator[Finding]:
    line, rule = ctx.line, ctx.ruleset.rules.provider_outlier
    start, end = ctx.today - timedelta(days=rule.window_days), ctx.today
    ids = provider_ids(line)
    for metric in rule.metrics:
        if line.sector not in metric.sectors:
            continue
        best: tuple[float, ProviderLevel] | None = None
        for level, pid in ids:
            profile = ctx.history.provider_profile(level, pid, line.sector, start, end)
            if profile is None or profile.items < rule.min_items:
                continue
            peers = ctx.history.peer_distribution(level, line.sector, start, end, rule.min_items)
            if peers.providers < rule.min_peers:
                continue
            z = peers.metrics[metric.metric].robust_z(profile.metric(metric.metric))
            if z is None:
                continue
            signed = {"high": z, "low": -z, "both": abs(z)}[metric.direction]
            if signed > rule.z_threshold and (best is None or signed > best[0]):
                best = (signed, level)
        if best is not None:
            z, level = best
            thr = rule.z_threshold
            yield Finding(
                metric.code,
                metric.weight,
                min(1.0, 0.5 + (z - thr) / (2 * thr)),
                f"{_LEVEL_NAMES[level].capitalize()} is an outlier against sector peers on "
                f"{metric.metric.replace('_', ' ')} (robust z {z:.1f} > {thr:g})",
            )


def _open_suspicion(ctx: Context) -> Iterator[Finding]:
    line, rule = ctx.line, ctx.ruleset.rules.open_suspicion
    touch = ctx.history.open_suspicions(line.beneficiary_token, provider_ids(line))
    parts, miss = [], 1.0
    if touch.beneficiary:
        parts.append("beneficiary")
        miss *= 1 - rule.beneficiary_strength
    if touch.provider:
        parts.append("provider")
        miss *= 1 - rule.provider_strength
    if parts:
        yield Finding(
            rule.code,
            rule.weight,
            1 - miss,
            f"The {' and the '.join(parts)} of this claim are concerned by an open suspicion",
        )


_RULES = (
    _phantom_and_amounts,
    _early_renewal,
    _prescription,
    _price_cap,
    _double_billing,
    _duplicate,
    _no_followup,
    _demography,
    _provider_outliers,
    _open_suspicion,
)


def evaluate_rules(ctx: Context) -> list[Finding]:
    """Run every rule of the rule set on ``ctx``; return the findings that fired."""
    return [f for rule in _RULES for f in rule(ctx) if f.weight > 0 and f.strength > 0]
