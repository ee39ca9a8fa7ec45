"""Honest lines obey the benefit rules of DOMAIN.md §3 (and so never fire a scoring rule)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.synth import _tariffs as t
from gateway.synth._billing import optical_amc
from gateway.synth._model import Line
from gateway.synth._people import add_months

from .synth_data import Dataset

Row = dict[str, Any]
LENSES = ("VERRE_SIMPLE", "VERRE_COMPLEXE", "VERRE_TRES_COMPLEXE")
PROSTHESES = ("COURONNE", "BRIDGE", "INLAY_CORE")


def _day(value: str) -> date:
    return date.fromisoformat(value)


def _age(line: Row) -> int:
    return _day(line["care_date"]).year - int(line["birth_year"])


def _by_token(dataset: Dataset) -> dict[str, list[tuple[str, Row]]]:
    out: dict[str, list[tuple[str, Row]]] = defaultdict(list)
    for member, line in dataset.lines:
        out[line["beneficiary_token"]].append((member, line))
    return out


def _family(line: Row) -> tuple[str, str, int, bool | str]:
    kind: bool | str = line["grouping_code"] == "MONTURE"
    if line["sector"] != "optique":
        kind = line["grouping_code"]
    return line["sector"], line["laterality"], line["tooth"], kind


def _renewal_months(sector: str, age: int) -> int:  # rule set v1, written out again
    if sector == "audio":
        return 48
    return 6 if age <= 5 else 12 if age <= 15 else 24


def test_honest_equipment_is_never_renewed_early(dataset: Dataset) -> None:
    checked = 0
    for lines in _by_token(dataset).values():
        equipment = [
            ln for _, ln in lines
            if ln["sector"] in ("optique", "audio") and ln["grouping_code"] != "SUIVI"
        ]  # fmt: skip
        for m, ln in lines:
            if dataset.pattern(m, ln) or ln not in equipment:
                continue
            day = _day(ln["care_date"])
            earlier = [
                _day(o["care_date"]) for o in equipment
                if _family(o) == _family(ln) and (day - _day(o["care_date"])).days > 3
            ]  # fmt: skip
            if earlier:
                checked += 1
                months = _renewal_months(ln["sector"], _age(ln))
                assert day >= add_months(max(earlier), months), (ln["sector"], _age(ln))
    assert checked > 20


def test_honest_prescriptions_are_valid_and_precede_delivery(dataset: Dataset) -> None:
    for _, ln in dataset.honest():
        if ln["sector"] not in ("optique", "audio") or ln["grouping_code"] == "SUIVI":
            continue
        rx, day = _day(ln["prescription_date"]), _day(ln["care_date"])
        age = rx.year - int(ln["birth_year"])  # validity band: age when prescribed (rule set v1)
        months = 12 if ln["sector"] == "audio" or age < 16 else 60 if age <= 42 else 36
        assert rx <= day < add_months(rx, months), (ln["sector"], age)
        assert ln["prescriber_specialty"] in ("ophtalmologie", "orl", "generaliste")


def test_honest_prices_respect_caps_and_amo_bases(dataset: Dataset) -> None:
    for m, ln in dataset.honest():
        if m != "cpam-75":
            continue
        g, k, price = ln["grouping_code"], ln["product_class"], ln["unit_price_cents"]
        base, paid = ln["amo_base_cents"], ln["amo_paid_cents"]
        if g == "MONTURE" and k == "A":
            assert price <= 3000 and base == 900 and paid == 540
        elif g in LENSES and k == "A":
            assert price <= t.LENS_A_CAP[g]
        elif ln["sector"] == "optique":
            assert k == "B" and base == 5 and paid == 3
        elif g == "AIDE_AUDITIVE":
            cap, aid_base = (95_000, 40_000) if _age(ln) >= 20 else (140_000, 140_000)
            assert base == aid_base and paid == aid_base * 60 // 100
            assert k == "II" or price <= cap
        elif g == "SUIVI":
            assert ln["act_code"] == "SUI" and price == 1
        elif k == "100_SANTE":
            assert price <= t.DENTAL_100_CAP[g]
        if g in ("COURONNE", "CONSULTATION"):
            assert base == {"COURONNE": 12_000, "CONSULTATION": 2_300}[g]
            assert paid == base * 60 // 100


def _event_number(line: Row) -> str:
    ref = line["amo_claim_number"] or line["amc_reference"]
    return str(ref.split("-")[1])


def test_honest_amc_lines_complement_their_amo_line_within_ceilings(dataset: Dataset) -> None:
    amo: dict[tuple[str, str, str, int], Row] = {}
    for m, ln in dataset.lines:
        if m == "cpam-75":
            amo[(_event_number(ln), ln["grouping_code"], ln["laterality"], ln["tooth"])] = ln
    optical_amc_total: dict[str, int] = defaultdict(int)
    for m, ln in dataset.honest():
        if m == "cpam-75":
            continue
        key = (_event_number(ln), ln["grouping_code"], ln["laterality"], ln["tooth"])
        side = amo[key]
        assert side["amount_billed_cents"] == ln["amount_billed_cents"]
        assert side["beneficiary_token"] == ln["beneficiary_token"]
        assert side["care_date"] == ln["care_date"]
        assert side["provider_am_number"] == ln["provider_am_number"]
        assert side["amo_paid_cents"] + ln["amc_paid_cents"] <= ln["amount_billed_cents"]
        if ln["product_class"] in ("A", "I", "100_SANTE") or ln["product_class"] == "":
            # 100 % Santé and tickets modérateurs: zero out-of-pocket.
            assert side["amo_paid_cents"] + ln["amc_paid_cents"] == ln["amount_billed_cents"]
        if ln["grouping_code"] == "MONTURE" and ln["product_class"] == "B":
            assert ln["amc_paid_cents"] <= t.FRAME_AMC_MAX
        if ln["product_class"] == "B":
            optical_amc_total[_event_number(ln)] += ln["amc_paid_cents"]
        if ln["product_class"] == "II":
            assert side["amo_paid_cents"] + ln["amc_paid_cents"] <= t.AID_II_CEILING
    assert optical_amc_total
    assert max(optical_amc_total.values()) <= max(t.EQUIPMENT_CEILING.values())


def test_honest_hearing_aids_are_followed_up_within_12_months(dataset: Dataset) -> None:
    end, checked = dataset.config.end_date, 0
    for lines in _by_token(dataset).values():
        follow = [_day(ln["care_date"]) for _, ln in lines if ln["grouping_code"] == "SUIVI"]
        for m, ln in lines:
            day = _day(ln["care_date"])
            if m != "cpam-75" or ln["grouping_code"] != "AIDE_AUDITIVE" or dataset.pattern(m, ln):
                continue
            if add_months(day, 12) <= end:
                checked += 1
                assert any(day < f <= add_months(day, 12) for f in follow)
    assert checked > 0


def test_no_followup_fraud_really_has_no_followup(dataset: Dataset) -> None:
    by_token = _by_token(dataset)
    tagged = [ln for m, ln in dataset.lines if dataset.pattern(m, ln) == "no_followup"]
    assert tagged
    for ln in tagged:
        day = _day(ln["care_date"])
        follow = [
            _day(o["care_date"]) for _, o in by_token[ln["beneficiary_token"]]
            if o["grouping_code"] == "SUIVI"
        ]  # fmt: skip
        assert not any(day < f <= add_months(day, 12) for f in follow)


def test_honest_prostheses_follow_a_consultation_and_never_repeat_on_a_tooth(
    dataset: Dataset,
) -> None:
    for lines in _by_token(dataset).values():
        seen: set[tuple[str, int]] = set()
        for m, ln in lines:
            if m != "cpam-75" or ln["grouping_code"] not in PROSTHESES or dataset.pattern(m, ln):
                continue
            day = _day(ln["care_date"])
            assert any(
                o["grouping_code"] == "CONSULTATION"
                and o["provider_rpps"] == ln["provider_rpps"]
                and day - timedelta(days=90) <= _day(o["care_date"]) < day
                for _, o in lines
            )
            assert (ln["grouping_code"], ln["tooth"]) not in seen
            seen.add((ln["grouping_code"], ln["tooth"]))


def test_honest_small_children_never_get_progressive_lenses(dataset: Dataset) -> None:
    for _, ln in dataset.honest():
        if ln["grouping_code"] in ("VERRE_COMPLEXE", "VERRE_TRES_COMPLEXE"):
            assert _age(ln) >= 6


def test_implausible_demography_is_young_aids_or_progressive_child_lenses(
    dataset: Dataset,
) -> None:
    tagged = [ln for m, ln in dataset.lines if dataset.pattern(m, ln) == "implausible_demography"]
    assert tagged
    for ln in tagged:
        if ln["grouping_code"] == "AIDE_AUDITIVE":
            assert _age(ln) < 30
        elif ln["grouping_code"] in LENSES:
            assert ln["grouping_code"] == "VERRE_TRES_COMPLEXE" and _age(ln) < 6


def test_early_renewal_fraud_is_early(dataset: Dataset) -> None:
    by_token = _by_token(dataset)
    tagged = [ln for m, ln in dataset.lines if dataset.pattern(m, ln) == "early_renewal"]
    assert tagged
    for ln in tagged:
        if ln["grouping_code"] == "SUIVI":
            continue
        day = _day(ln["care_date"])
        earlier = [
            _day(o["care_date"]) for _, o in by_token[ln["beneficiary_token"]]
            if _family(o) == _family(ln) and (day - _day(o["care_date"])).days > 3
        ]  # fmt: skip
        if ln["grouping_code"] == "MONTURE" and not earlier:
            continue  # the previous equipment had lenses only
        assert earlier and day < add_months(max(earlier), _renewal_months(ln["sector"], _age(ln)))


@given(
    frame=st.integers(0, 40_000),
    left=st.integers(0, 50_000),
    right=st.integers(0, 50_000),
    lens=st.sampled_from(LENSES),
    contract=st.sampled_from((0.6, 0.8, 1.0)),
)
def test_class_b_amc_complement_stays_within_the_contrat_responsable_ceilings(
    frame: int, left: int, right: int, lens: str, contract: float
) -> None:
    lines = [
        Line("AMO", "cpam-75", "MONTURE", "B", "2223342", "", 0, frame, amo_base=5, amo_paid=3),
        Line("AMO", "cpam-75", lens, "B", "2227038", "right", 0, right, amo_base=5, amo_paid=3),
        Line("AMO", "cpam-75", lens, "B", "2227038", "left", 0, left, amo_base=5, amo_paid=3),
    ]
    amounts = optical_amc(lines, contract)
    assert all(
        0 <= a <= max(ln.billed - ln.amo_paid, 0) for a, ln in zip(amounts, lines, strict=True)
    )
    assert amounts[0] <= t.FRAME_AMC_MAX
    assert sum(amounts) <= t.EQUIPMENT_CEILING[lens] * contract
