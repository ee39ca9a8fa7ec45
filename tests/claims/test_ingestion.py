"""Claim upload and pre-payment check on SQLite and PostgreSQL (the ``database`` fixture)."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.crypto import KeyRing, Rekeyer, first_level_token
from gateway.domain.ingestion import (
    BatchIngestion,
    BatchProgress,
    BatchReport,
    check_claim,
    ingest_batch,
)
from gateway.ids import MemberId
from gateway.store import Database
from gateway.store._claims import SqlAlertStore, SqlClaimStore
from gateway.store._history_sql import ProviderStatsCache

from .claim_gen import TODAY, Pools, amc_side, amo_lines, raw_event

CPAM, MUT_A, MUT_B = MemberId("cpam-75"), MemberId("mut-alpha"), MemberId("mut-beta")
NIR = "253072B07300470"  # DOMAIN.md test vector: never stored
MEMBERS_KEY = b"m" * 32
TOKEN = first_level_token(NIR, MEMBERS_KEY)
REKEYER = Rekeyer(KeyRing({"k1": b"g" * 32}, current="k1"))
KIND = {CPAM: "AMO", MUT_A: "AMC", MUT_B: "AMC"}


@pytest.fixture
def store(database: Database) -> SqlClaimStore:
    return SqlClaimStore(database, stats_cache=ProviderStatsCache(ttl_seconds=0))


def _amo(ref: str = "L1", **kw: Any) -> dict[str, Any]:
    rng = random.Random(7)
    line = raw_event(rng, Pools.make(rng), ref)
    line.update(
        sector="optique", grouping_code="VERRE_SIMPLE", act_code="2203240", product_class="B",
        laterality="right", tooth=0, care_date="2026-01-10", prescription_date="2025-12-01",
        prescriber_specialty="ophtalmologie", unit_price_cents=12000, amount_billed_cents=12000,
        amo_base_cents=5, amo_paid_cents=3, beneficiary_token=TOKEN, birth_year=1980,
    )  # fmt: skip
    line.update(kw)
    return line


def _amc(ref: str = "L1", **kw: Any) -> dict[str, Any]:
    line = amc_side(_amo(ref), ref, random.Random(1))
    line.update(care_date="2026-01-10", amount_billed_cents=12000, unit_price_cents=12000)
    line.update(amc_paid_cents=11997)
    line.update(kw)
    return line


def _ingest(store: SqlClaimStore, member: MemberId, lines: Any, **kw: Any) -> BatchReport:
    kw.setdefault("mode", "per_line")
    return ingest_batch(
        lines, member=member, member_kind=KIND[member], store=store, rekeyer=REKEYER,
        today=TODAY, **kw,
    )  # fmt: skip


def _rows(database: Database, sql: str) -> list[Any]:
    with database.engine.connect() as conn:
        return list(conn.execute(sa.text(sql)).mappings())


def _count(database: Database, table: str) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())


def test_resending_a_line_changes_nothing_and_is_reported_duplicate(
    database: Database, store: SqlClaimStore
) -> None:
    first = _ingest(store, CPAM, [_amo()])
    again = _ingest(store, CPAM, [_amo(), _amo()])
    assert (first.accepted, first.duplicates) == (1, 0)
    assert (again.accepted, again.duplicates, again.outcome) == (0, 2, "committed")
    assert _count(database, "claim_lines") == 1


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"provider_rpps": "12345678901"}, "lines[2].provider_rpps"),
        ({"tooth": 99}, "lines[2].tooth"),
        ({"side": "AMC"}, "lines[2].side"),
        ({"beneficiary_token": NIR}, "lines[2].beneficiary_token"),
        ({"care_date": "2027-01-01"}, "lines[2].care_date"),
    ],
)
def test_all_or_nothing_stores_nothing_and_per_line_stores_the_rest(
    database: Database, store: SqlClaimStore, bad: dict[str, Any], field: str
) -> None:
    lines = [_amo("A"), _amo("B", laterality="left"), _amo("C", **bad), _amo("D", tooth=0)]
    atomic = _ingest(store, CPAM, lines, mode="all_or_nothing", chunk_size=1)
    assert atomic.outcome == "rolled_back" and atomic.rejected == 1
    assert field in [v.field for v in atomic.rejections[0].violations]
    assert atomic.rejections[0].index == 2 and atomic.rejections[0].member_reference == "C"
    assert _count(database, "claim_lines") == 0 and _count(database, "alerts") == 0
    partial = _ingest(store, CPAM, lines, mode="per_line", chunk_size=1)
    assert (partial.outcome, partial.accepted, partial.rejected) == ("committed", 3, 1)
    assert partial.rejections[0].index == 2
    assert _count(database, "claim_lines") == 3


def test_rejection_messages_never_carry_the_value(store: SqlClaimStore) -> None:
    report = _ingest(store, CPAM, [_amo(beneficiary_token=NIR)])
    text = repr(report.rejections)
    assert NIR not in text and report.rejected == 1


def test_no_nir_nor_first_level_token_is_stored(database: Database, store: SqlClaimStore) -> None:
    _ingest(store, CPAM, [_amo("A"), _amo("B", laterality="left")])
    _ingest(store, MUT_A, [_amc("A"), _amc("X", laterality="left", care_date="2025-06-01")])
    check_claim(_amc("Q"), member=MUT_A, member_kind="AMC", store=store, rekeyer=REKEYER,
                today=TODAY)  # fmt: skip
    seen = 0
    for table in sa.inspect(database.engine).get_table_names():
        for row in _rows(database, f"select * from {table}"):
            text = repr(dict(row))
            seen += 1
            assert TOKEN not in text and NIR not in text, table
    pseudonyms = {r["beneficiary"] for r in _rows(database, "select beneficiary from claim_lines")}
    assert pseudonyms == {REKEYER.rekey(TOKEN)} and seen >= 4


def test_matching_links_both_sides(database: Database, store: SqlClaimStore) -> None:
    _ingest(store, CPAM, [_amo("A")])
    report = _ingest(store, MUT_A, [_amc("Z", care_date="2026-01-09")])
    assert report.matched == 1
    rows = {r["member_id"]: r for r in _rows(database, "select * from claim_lines")}
    amo, amc = rows[CPAM], rows[MUT_A]
    assert (amo["match_state"], amc["match_state"]) == ("matched", "matched")
    assert amo["matched_line_id"] == amc["id"] and amc["matched_line_id"] == amo["id"]


def test_an_amo_line_pairs_once_per_amc(database: Database, store: SqlClaimStore) -> None:
    _ingest(store, MUT_A, [_amc("A1")])
    _ingest(store, MUT_B, [_amc("B1")])
    _ingest(store, CPAM, [_amo("O1")])
    rows = _rows(database, "select member_id, matched_line_id, id from claim_lines")
    amo = next(r for r in rows if r["member_id"] == CPAM)
    assert all(r["matched_line_id"] == amo["id"] for r in rows if r["member_id"] != CPAM)


def test_unmatched_amc_line_raises_the_phantom_complement_alert_then_matching_withdraws_it(
    database: Database, store: SqlClaimStore
) -> None:
    report = _ingest(store, MUT_A, [_amc("A")])
    assert report.alerts.raised == 1
    alerts = SqlAlertStore()
    with database.transaction() as s:
        [alert] = alerts.page(s, MUT_A)
        assert alerts.page(s, CPAM) == []
    assert alert.member_reference == "A" and not alert.delivered
    assert [r.code for r in alert.reasons] == ["PHANTOM_COMPLEMENT"]
    later = _ingest(store, CPAM, [_amo("O")])
    assert later.alerts.withdrawn == 1
    with database.transaction() as s:
        assert alerts.page(s, MUT_A) == []
        [withdrawn] = alerts.page(s, MUT_A, include_withdrawn=True)
        assert withdrawn.withdrawn_at is not None and not withdrawn.delivered
        assert alerts.get(s, CPAM, withdrawn.id) is None  # another member's alert: not found


def test_cross_amc_alert_never_names_the_other_amc(
    database: Database, store: SqlClaimStore
) -> None:
    _ingest(store, CPAM, [_amo("O")])
    _ingest(store, MUT_A, [_amc("A-ref-1")])
    _ingest(store, MUT_B, [_amc("B-ref-1")])
    alerts = SqlAlertStore()
    with database.transaction() as s:
        for me, other, other_ref in ((MUT_A, MUT_B, "B-ref-1"), (MUT_B, MUT_A, "A-ref-1")):
            [alert] = alerts.page(s, me)
            assert "DOUBLE_BILLING_AMC" in {r.code for r in alert.reasons}
            text = repr(alert)
            assert other not in text and other_ref not in text
        [amo_alert] = alerts.page(s, CPAM)
        assert MUT_A not in repr(amo_alert) and MUT_B not in repr(amo_alert)


def test_check_claim_scores_without_storing(database: Database, store: SqlClaimStore) -> None:
    _ingest(store, CPAM, [_amo("O", care_date="2025-06-01")])
    before = (_count(database, "claim_lines"), _count(database, "alerts"))
    score = check_claim(_amc("Q"), member=MUT_A, member_kind="AMC", store=store,
                        rekeyer=REKEYER, today=TODAY)  # fmt: skip
    assert "PHANTOM_COMPLEMENT" in {r.code for r in score.reasons} and score.score > 0
    assert (_count(database, "claim_lines"), _count(database, "alerts")) == before
    with pytest.raises(Exception, match=r"side"):
        check_claim(_amc("Q"), member=CPAM, member_kind="AMO", store=store, rekeyer=REKEYER,
                    today=TODAY)  # fmt: skip


def test_streamed_upload_reports_progress_and_counts_indexes_across_messages(
    store: SqlClaimStore,
) -> None:
    seen: list[BatchProgress] = []
    with BatchIngestion(member=CPAM, member_kind="AMO", mode="per_line", store=store,
                        rekeyer=REKEYER, today=TODAY, chunk_size=2,
                        progress=seen.append) as upload:  # fmt: skip
        upload.add([_amo("A"), _amo("B", laterality="left"), _amo("C", quantity=0)])
        upload.add([_amo("D", tooth=3), _amo("A")])
        report = upload.finish()
    assert (report.received, report.accepted, report.duplicates, report.rejected) == (5, 2, 1, 2)
    assert [r.index for r in report.rejections] == [2, 3]
    assert [r.index for p in seen for r in p.rejections] == [2, 3]
    assert seen[-1].received == 5


def _volume(seed: int, n: int) -> Iterator[dict[str, Any]]:
    yield from amo_lines(seed, n, beneficiaries=max(3000, n), providers=40)


def test_chunked_upload_of_20k_lines(database: Database) -> None:
    n = 20_000
    store = SqlClaimStore(database)  # provider statistics cached, as in the gateway
    progress: list[BatchProgress] = []
    report = _ingest(store, CPAM, _volume(11, n), chunk_size=1000, progress=progress.append)
    assert report.accepted + report.duplicates == n and report.rejected == 0
    assert _count(database, "claim_lines") == report.accepted
    assert [p.received for p in progress] == list(range(1000, n + 1, 1000))


def _peak(store: SqlClaimStore, seed: int, n: int) -> int:
    tracemalloc.start()
    try:
        _ingest(store, CPAM, _volume(seed, n), chunk_size=500)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_upload_memory_does_not_grow_with_the_upload_size(database: Database) -> None:
    store = SqlClaimStore(database)
    _ingest(store, CPAM, _volume(1, 500), chunk_size=500)  # warm caches and imports
    small = _peak(store, 2, 1_500)
    large = _peak(store, 3, 6_000)
    # Four times the lines, about the same working set: one chunk at a time.
    assert large < 1.5 * small, (small, large)
