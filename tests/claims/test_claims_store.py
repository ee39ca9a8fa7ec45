"""Claims storage on SQLite and PostgreSQL: schema, and SqlClaimHistory == InMemoryHistory."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from itertools import groupby

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.domain import (
    PROVIDER_LEVELS,
    ClaimRecord,
    InMemoryHistory,
    parse_claim_line,
    provider_ids,
)
from gateway.ids import MemberId
from gateway.store import Base, Database, make_engine, migrate, migration_config
from gateway.store._claims import SqlClaimStore
from gateway.store._claims_models import AlertRow, ClaimLineRow, ProviderPeerStatsRow
from gateway.store._history_sql import ProviderStatsCache, SqlClaimHistory

from .claim_gen import TODAY, mixed_lines

CLAIM_TABLES = {"claim_lines", "alerts", "provider_peer_stats"}
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_claims_migration_matches_the_models(database: Database) -> None:
    assert {ClaimLineRow.__tablename__, AlertRow.__tablename__,
            ProviderPeerStatsRow.__tablename__} == CLAIM_TABLES  # fmt: skip
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if any(t in repr(d) for t in CLAIM_TABLES)]
    assert ours == []
    indexes = {i["name"] for i in sa.inspect(database.engine).get_indexes("claim_lines")}
    assert {
        "ix_claim_lines_beneficiary_sector_care_date",
        "ix_claim_lines_rpps_sector_care_date",
        "ix_claim_lines_am_sector_care_date",
        "ix_claim_lines_finess_sector_care_date",
    } <= indexes


def test_claims_branch_downgrades_alone(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    cfg = migration_config(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "claims@base")
    assert not CLAIM_TABLES & set(sa.inspect(engine).get_table_names())
    migrate(engine)
    assert set(sa.inspect(engine).get_table_names()) >= CLAIM_TABLES
    engine.dispose()


def _records(seed: int, events: int) -> list[ClaimRecord]:
    return [
        ClaimRecord(MemberId(m), parse_claim_line(raw, today=TODAY))
        for m, raw in mixed_lines(seed, events, beneficiaries=25, providers=7)
    ]


def _load(database: Database, records: list[ClaimRecord]) -> None:
    store = SqlClaimStore(database)
    with store.unit() as unit:  # consecutive runs per member, in order: same ids as the list
        for member, run in groupby(records, key=lambda r: r.member):
            lines = [r.line for r in run]
            assert len(unit.insert_new(member, lines, NOW)) == len(lines)


def _suspect(database: Database, *, beneficiary: str | None, column: str | None, value: str,
             status: str = "submitted") -> None:  # fmt: skip
    if not sa.inspect(database.engine).has_table("suspicions"):
        pytest.skip("the suspicions migration is not in this tree")
    values = {
        "id": uuid.uuid4().hex, "submitter_member": "cpam-75", "submitter_kind": "AMO",
        "status": status, "sector": "optique", "fraud_type": "early_renewal",
        "subject_beneficiary": beneficiary, "estimated_amount_cents": 0,
        "act_grouping_codes": [], "act_codes": [], "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    if column:
        values[column] = value
    table = sa.Table("suspicions", sa.MetaData(), autoload_with=database.engine)
    with database.transaction() as s:
        s.execute(sa.insert(table).values(values))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_history_answers_like_the_in_memory_history(database: Database, seed: int) -> None:
    records = _records(seed, 400)
    _load(database, records)
    memory = InMemoryHistory(records)
    sql = SqlClaimHistory(database, cache=ProviderStatsCache(ttl_seconds=0))
    windows = [(date(2024, 1, 1), date(2026, 3, 1)), (date(2025, 1, 1), date(2025, 6, 30)),
               (date(2024, 6, 1), date(2024, 6, 1))]  # fmt: skip
    tokens = sorted({r.line.beneficiary_token for r in records})
    sectors = ("optique", "audio", "dentaire")
    for token in tokens[:12]:
        for sector in sectors:
            for start, end in windows:
                assert list(sql.beneficiary_lines(token, sector, start, end)) == list(
                    memory.beneficiary_lines(token, sector, start, end)
                )
    ids = sorted({p for r in records for p in provider_ids(r.line)})
    for level, pid in ids:
        for sector in sectors:
            for start, end in windows[:2]:
                assert sql.provider_profile(level, pid, sector, start, end) == (
                    memory.provider_profile(level, pid, sector, start, end)
                ), (level, sector, start)
    for level in PROVIDER_LEVELS:
        for sector in sectors:
            for start, end in windows[:2]:
                for min_items in (1, 5, 40):
                    assert sql.peer_distribution(level, sector, start, end, min_items) == (
                        memory.peer_distribution(level, sector, start, end, min_items)
                    )


def test_sql_history_open_suspicions_like_the_in_memory_history(database: Database) -> None:
    records = _records(4, 60)
    _load(database, records)
    token = records[0].line.beneficiary_token
    line = records[0].line
    _suspect(database, beneficiary=token, column=None, value="")
    _suspect(database, beneficiary=None, column="subject_provider_am_number",
             value=line.provider_am_number)  # fmt: skip
    other = next(r.line for r in records if r.line.beneficiary_token != token)
    _suspect(database, beneficiary=other.beneficiary_token, column=None, value="",
             status="dismissed")  # fmt: skip
    memory = InMemoryHistory(records, suspected_beneficiaries=[token],
                             suspected_providers=[line.provider_am_number])  # fmt: skip
    sql = SqlClaimHistory(database)
    for r in records[:30]:
        args = (r.line.beneficiary_token, provider_ids(r.line))
        assert sql.open_suspicions(*args) == memory.open_suspicions(*args)


def test_peer_distribution_is_shared_through_the_table_until_its_ttl(database: Database) -> None:
    records = _records(5, 300)
    _load(database, records)
    start, end = date(2024, 1, 1), date(2026, 3, 1)
    first = SqlClaimHistory(database, cache=ProviderStatsCache(ttl_seconds=300))
    dist = first.peer_distribution("am_number", "optique", start, end, 1)
    with database.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from provider_peer_stats")).scalar() == 1
    # Another replica (fresh process cache) reads the stored distribution, not the live lines.
    with database.transaction() as s:
        s.execute(sa.delete(ClaimLineRow.__table__))
    replica = SqlClaimHistory(database, cache=ProviderStatsCache(ttl_seconds=300))
    assert replica.peer_distribution("am_number", "optique", start, end, 1) == dist
    expired = SqlClaimHistory(database, cache=ProviderStatsCache(ttl_seconds=0))
    assert expired.peer_distribution("am_number", "optique", start, end, 1).providers == 0


def test_profile_cache_serves_repeated_lookups_without_queries(database: Database) -> None:
    records = _records(6, 200)
    _load(database, records)
    now = [100.0]
    cache = ProviderStatsCache(ttl_seconds=10, clock=lambda: now[0])
    sql = SqlClaimHistory(database, cache=cache)
    line = records[0].line
    start, end = TODAY - timedelta(days=365), TODAY
    before = sql.provider_profile("am_number", line.provider_am_number, line.sector, start, end)
    with database.transaction() as s:
        s.execute(sa.delete(ClaimLineRow.__table__))
    assert sql.provider_profile("am_number", line.provider_am_number, line.sector, start,
                                end) == before  # fmt: skip
    now[0] += 11
    assert sql.provider_profile("am_number", line.provider_am_number, line.sector, start,
                                end) is None  # fmt: skip


def test_generated_data_exercises_every_metric() -> None:
    memory = InMemoryHistory(_records(1, 400))
    metrics = memory.peer_distribution("am_number", "optique", date(2024, 1, 1), TODAY, 5).metrics
    assert all(m.median > 0 or m.scale > 0 for m in metrics.values())
