"""Files ``vigie synth`` writes: determinism, the claim-line specification, ground truth, no NIR."""

from __future__ import annotations

import base64
import json
import os
import re
import time
import tracemalloc
from datetime import date
from pathlib import Path

import pydantic
import pytest

from gateway.crypto import first_level_token, validate_nir
from gateway.domain import parse_claim_line
from gateway.domain._identifiers import is_valid_am_number, is_valid_rpps, is_valid_token
from gateway.synth import (
    CLAIM_FIELDS,
    FRAUD_PATTERNS,
    GROUND_TRUTH_FIELDS,
    SynthSummary,
    generate,
)
from gateway.synth._people import build_population, draw_beneficiary, make_nir

from .synth_data import KEY, TEST_RATES, Dataset, config, file_hashes, read_csv, read_jsonl

TODAY = date(2026, 1, 1)


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_and_config_give_byte_identical_files(tmp_path: Path) -> None:
    cfg = config(beneficiaries=300)
    generate(cfg, tmp_path / "a")
    generate(cfg, tmp_path / "b")
    assert file_hashes(tmp_path / "a") == file_hashes(tmp_path / "b")


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    generate(config(beneficiaries=300, seed=1), tmp_path / "a")
    generate(config(beneficiaries=300, seed=2), tmp_path / "b")
    a, b = file_hashes(tmp_path / "a"), file_hashes(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(a[name] != b[name] for name in a if name.startswith("claims-"))


def test_fraud_rates_do_not_change_the_honest_population(tmp_path: Path) -> None:
    generate(config(beneficiaries=200, fraud_rates={}), tmp_path / "none")
    generate(config(beneficiaries=200, fraud_rates={"amount_mismatch": 0.5}), tmp_path / "some")
    none = read_jsonl(tmp_path / "none" / "claims-cpam-75.jsonl")
    some = read_jsonl(tmp_path / "some" / "claims-cpam-75.jsonl")
    assert none == some  # amount mismatch only touches AMC lines


# --- the claim-line specification ----------------------------------------------------------


def test_every_line_has_exactly_the_spec_fields_in_order(dataset: Dataset) -> None:
    for _, line in dataset.lines:
        assert tuple(line) == CLAIM_FIELDS


def test_every_line_passes_the_domain_parser(dataset: Dataset) -> None:
    for index, (_, line) in enumerate(dataset.lines):
        parse_claim_line(line, today=TODAY, index=index)


def test_every_line_passes_the_spec_checks(dataset: Dataset) -> None:
    # Our own reading of the specification, independent of gateway.domain.
    for member, ln in dataset.lines:
        side = "AMO" if member == "cpam-75" else "AMC"
        assert ln["side"] == side
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", ln["member_reference"])
        assert is_valid_token(ln["beneficiary_token"])
        assert 1900 <= ln["birth_year"] <= TODAY.year
        assert is_valid_am_number(ln["provider_am_number"])
        assert is_valid_rpps(ln["provider_rpps"])
        if ln["prescriber_rpps"]:
            assert is_valid_rpps(ln["prescriber_rpps"])
        assert ln["amount_billed_cents"] == ln["quantity"] * ln["unit_price_cents"]
        assert date.fromisoformat(ln["care_date"]) <= dataset.config.end_date
        if side == "AMO":
            assert ln["amc_paid_cents"] == 0 and ln["amc_reference"] == ""
            assert 1 <= len(ln["amo_claim_number"]) <= 32
            assert ln["amo_paid_cents"] <= ln["amo_base_cents"]
        else:
            assert ln["amo_base_cents"] == ln["amo_paid_cents"] == 0
            assert ln["amo_claim_number"] == ""
            assert 1 <= len(ln["amc_reference"]) <= 32


def test_member_references_are_unique_per_member(dataset: Dataset) -> None:
    refs = [(m, ln["member_reference"]) for m, ln in dataset.lines]
    assert len(refs) == len(set(refs))


def test_csv_output_has_the_same_columns_and_values(tmp_path: Path) -> None:
    generate(config(beneficiaries=150), tmp_path / "j")
    generate(config(beneficiaries=150, output_format="csv"), tmp_path / "c")
    for member in ("cpam-75", "mut-alpha"):
        header, rows = read_csv(tmp_path / "c" / f"claims-{member}.csv")
        assert tuple(header) == CLAIM_FIELDS
        expected = read_jsonl(tmp_path / "j" / f"claims-{member}.jsonl")
        assert rows == [{k: str(v) for k, v in ln.items()} for ln in expected]
        for i, row in enumerate(rows):
            parse_claim_line(row, today=TODAY, index=i)
    header, truth = read_csv(tmp_path / "c" / "ground_truth.csv")
    assert tuple(header) == GROUND_TRUTH_FIELDS
    assert truth == [
        {k: str(v) for k, v in r.items()} for r in read_jsonl(tmp_path / "j" / "ground_truth.jsonl")
    ]


# --- ground truth --------------------------------------------------------------------------


def test_ground_truth_has_one_row_per_line_and_no_other(dataset: Dataset) -> None:
    keys = {(m, ln["member_reference"]) for m, ln in dataset.lines}
    assert set(dataset.truth) == keys
    rows = read_jsonl(dataset.folder / "ground_truth.jsonl")
    assert len(rows) == len(keys)
    assert all(tuple(r) == GROUND_TRUTH_FIELDS for r in rows)


def test_ground_truth_tags_are_well_formed(dataset: Dataset) -> None:
    for row in dataset.truth.values():
        assert row["fraud_pattern"] in ("", *FRAUD_PATTERNS)
        assert row["amount_at_stake_cents"] >= 0
        if row["fraud_pattern"]:
            assert row["scheme_id"]  # companion lines of a scheme may carry no stake
        else:
            assert row["scheme_id"] == "" and row["amount_at_stake_cents"] == 0


def test_every_pattern_with_a_positive_rate_appears(
    generated: tuple[Dataset, SynthSummary],
) -> None:
    dataset, summary = generated
    seen = {r["fraud_pattern"] for r in dataset.truth.values()} - {""}
    assert seen == {p for p, rate in TEST_RATES.items() if rate > 0}
    for pattern in FRAUD_PATTERNS:
        assert summary.fraud_lines_by_pattern[pattern] > 0
        assert summary.amount_at_stake_by_pattern[pattern] > 0


def test_zero_rates_inject_no_fraud(tmp_path: Path) -> None:
    summary = generate(config(beneficiaries=300, fraud_rates={}), tmp_path)
    assert sum(summary.fraud_lines_by_pattern.values()) == 0
    assert all(r["fraud_pattern"] == "" for r in read_jsonl(tmp_path / "ground_truth.jsonl"))


def test_double_billing_puts_the_same_item_at_two_amcs_with_the_stake_on_one(
    dataset: Dataset,
) -> None:
    schemes: dict[str, list[tuple[str, dict[str, object], int]]] = {}
    for member, ln in dataset.lines:
        row = dataset.truth[(member, ln["member_reference"])]
        if row["fraud_pattern"] == "double_billing_amc":
            schemes.setdefault(row["scheme_id"], []).append(
                (member, ln, row["amount_at_stake_cents"])
            )
    assert schemes
    for lines in schemes.values():
        amcs = {m for m, _, _ in lines if m != "cpam-75"}
        assert len(amcs) == 2
        assert any(m == "cpam-75" for m, _, _ in lines)  # the AMO side is there, no stake
        staked = {m for m, _, stake in lines if stake > 0}
        assert len(staked) == 1 and staked < amcs
        for item in {(ln["grouping_code"], ln["laterality"], ln["tooth"]) for _, ln, _ in lines}:
            billed = {
                (m, ln["amount_billed_cents"]) for m, ln, _ in lines
                if m != "cpam-75" and (ln["grouping_code"], ln["laterality"], ln["tooth"]) == item
            }  # fmt: skip
            assert len(billed) == 2 and len({amount for _, amount in billed}) == 1


def test_phantom_complements_have_no_amo_side(dataset: Dataset) -> None:
    amo_items = {
        (ln["beneficiary_token"], ln["care_date"], ln["grouping_code"])
        for m, ln in dataset.lines
        if m == "cpam-75"
    }
    phantoms = [
        (m, ln) for m, ln in dataset.lines if dataset.pattern(m, ln) == "phantom_complement"
    ]
    assert phantoms and all(m != "cpam-75" for m, _ in phantoms)
    for _, ln in phantoms:
        assert (ln["beneficiary_token"], ln["care_date"], ln["grouping_code"]) not in amo_items


def test_outlier_provider_rotates_billing_sites(dataset: Dataset) -> None:
    sites: dict[str, set[str]] = {}
    for m, ln in dataset.lines:
        if dataset.pattern(m, ln) == "provider_volume_outlier":
            sites.setdefault(ln["provider_rpps"], set()).add(ln["provider_am_number"])
    assert sites and all(len(s) > 1 for s in sites.values())


# --- no NIR, no key ------------------------------------------------------------------------


_NIR_SHAPED = re.compile(r"[0-9]{13}|[0-9]{5}2[AB][0-9]{8}")


def test_no_nir_nor_nir_shaped_string_nor_key_in_any_file(dataset: Dataset) -> None:
    cfg = dataset.config
    population = build_population(cfg)
    # The regex covers every NIR (15 digits, or 2A/2B); a sample is also looked up literally.
    nirs = {draw_beneficiary(cfg, population, i)[1] for i in range(0, cfg.beneficiaries, 25)}
    key_forms = (KEY.hex(), base64.b64encode(KEY).decode(), base64.urlsafe_b64encode(KEY).decode())
    for path in sorted(dataset.folder.iterdir()):
        text = path.read_text(encoding="utf-8")
        assert _NIR_SHAPED.search(text) is None, path.name
        assert not any(form in text for form in key_forms), path.name
        for nir in nirs:
            assert nir not in text


def test_tokens_are_the_members_first_level_tokens_of_valid_unique_nirs(dataset: Dataset) -> None:
    cfg = dataset.config
    population = build_population(cfg)
    drawn = [draw_beneficiary(cfg, population, i) for i in range(cfg.beneficiaries)]
    nirs = [nir for _, nir in drawn]
    assert len(set(nirs)) == len(nirs)
    for beneficiary, nir in drawn[:50]:
        assert validate_nir(nir) == nir
        assert beneficiary.token == first_level_token(nir, KEY)
    tokens = {b.token for b, _ in drawn}
    assert {ln["beneficiary_token"] for _, ln in dataset.lines} <= tokens


@pytest.mark.parametrize(
    ("index", "sex", "year", "month"),
    [(0, 1, 1980, 1), (1, 2, 2001, 12), (12345, 1, 1923, 6), (49_999_999, 2, 2023, 2)],
)
def test_make_nir_draws_valid_nirs(index: int, sex: int, year: int, month: int) -> None:
    nir = make_nir(index, sex, year, month)
    assert validate_nir(nir) == nir
    assert nir[0] == str(sex) and nir[1:3] == f"{year % 100:02d}" and nir[3:5] == f"{month:02d}"


def test_corsican_nirs_are_drawn_and_valid() -> None:
    corsican = [
        n
        for i in range(200_000, 2_200_000, 997)
        if "2A" in (n := make_nir(i, 1, 1970, 5))[5:7] or "2B" in n[5:7]
    ]
    assert corsican
    for nir in corsican:
        assert validate_nir(nir) == nir


# --- population.json -----------------------------------------------------------------------


def test_population_file_lists_members_and_counts_without_key(
    generated: tuple[Dataset, SynthSummary],
) -> None:
    dataset, summary = generated
    doc = json.loads((dataset.folder / "population.json").read_text(encoding="utf-8"))
    assert doc["members"][0] == {"id": "cpam-75", "kind": "AMO"}
    assert [m["id"] for m in doc["members"][1:]] == ["mut-alpha", "mut-beta", "mut-gamma"]
    assert "shared_key" not in doc["config"]
    assert doc["counts"]["lines_total"] == summary.lines_total == len(dataset.lines)
    assert doc["counts"]["lines_by_member"] == summary.lines_by_member
    rpps = {p["rpps"] for p in doc["providers"]}
    assert {ln["provider_rpps"] for _, ln in dataset.lines} <= rpps
    assert {p["role"] for p in doc["providers"]} == {"regular", "outlier", "ring"}


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fraud_rates": {"pricing": 0.1}}, "unknown pattern"),
        ({"fraud_rates": {"early_renewal": 1.5}}, "fraud_rates.early_renewal"),
        ({"amcs": 1}, "double_billing_amc"),
        ({"start_date": date(2099, 1, 1)}, "no future care"),
        ({"shared_key": b"short"}, "shared_key"),
        ({"years": 4}, "years"),
    ],
)
def test_bad_configuration_is_refused(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        config(**overrides)


def test_the_shared_key_is_not_in_the_config_repr() -> None:
    assert KEY.hex() not in repr(config()) and str(KEY) not in repr(config())


def test_one_amc_is_fine_without_double_billing(tmp_path: Path) -> None:
    rates = {p: r for p, r in TEST_RATES.items() if p != "double_billing_amc"}
    summary = generate(config(beneficiaries=100, amcs=1, fraud_rates=rates), tmp_path)
    assert set(summary.lines_by_member) == {"cpam-75", "mut-alpha"}


# --- progress, memory, speed ---------------------------------------------------------------


def test_progress_is_reported_up_to_the_total(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    generate(config(beneficiaries=250), tmp_path, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (250, 250)
    assert len(calls) >= 50
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})


def _peak_bytes(tmp_path: Path, beneficiaries: int) -> int:
    tracemalloc.start()
    try:
        generate(config(beneficiaries=beneficiaries), tmp_path / str(beneficiaries))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_lines(tmp_path: Path) -> None:
    small, large = _peak_bytes(tmp_path, 100), _peak_bytes(tmp_path, 600)
    assert large < small * 1.5 + 1_000_000, (small, large)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(os.environ.get("VIGIE_RUN_SLOW") != "1", reason="set VIGIE_RUN_SLOW=1")
def test_memory_stays_bounded_for_a_large_run(tmp_path: Path) -> None:
    peak = _peak_bytes(tmp_path, 20_000)  # about 240,000 lines
    assert peak < 40_000_000, peak


def test_generation_throughput_is_reported(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = generate(config(beneficiaries=1000, seed=3), tmp_path)
    elapsed = time.perf_counter() - started
    print(f"\nsynth: {summary.lines_total} lines in {elapsed:.2f} s "
          f"= {summary.lines_total / elapsed:,.0f} lines/s")  # fmt: skip
    assert summary.lines_total > 0
