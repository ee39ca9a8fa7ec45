"""Suspicions at rest on SQLite and PostgreSQL: schema, pseudonyms, sealing, transitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session
from suspicion_support import CPAM_75, FACTS, NOW, TOKEN_B1, draft_values

from gateway.crypto import Envelope, Rekeyer, Sealed, TamperedCiphertextError
from gateway.domain.suspicions import (
    create_suspicion,
    get_suspicion,
    open_evidence,
    open_facts,
    parse_suspicion_draft,
    transition_suspicion,
    transitions_of,
)
from gateway.errors import FailedPreconditionError, NotFoundError
from gateway.store import Base, Database
from gateway.store._suspicions_models import SuspicionRow

SUSPICION_TABLES = {
    "suspicions",
    "suspicion_transitions",
    "suspicion_recipients",
    "notifications",
    "member_coverage",
    "retention_runs",
}


def test_migration_0002_creates_the_tables_exactly_as_the_models(database: Database) -> None:
    with database.engine.connect() as conn:
        assert SUSPICION_TABLES <= set(sa.inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = [
        d
        for d in diff
        if d[0] in {"add_table", "remove_table", "add_column", "remove_column"}
        and any(t in str(d) for t in SUSPICION_TABLES)
    ]
    assert mine == []


def _create(session: Session, rekeyer: Rekeyer, envelope: Envelope, **overrides: object) -> str:
    draft = parse_suspicion_draft(draft_values(**overrides))
    return create_suspicion(session, draft, CPAM_75, rekeyer, envelope, NOW).id


def test_create_stores_the_pseudonym_and_sealed_text_only(
    database: Database, rekeyer: Rekeyer, envelope: Envelope
) -> None:
    sid = database.run_sync(lambda s: _create(s, rekeyer, envelope))
    assert sid.startswith("s_") and len(sid) == 28

    def check(session: Session) -> None:
        row = session.get(SuspicionRow, sid)
        assert row is not None
        assert row.subject_beneficiary == rekeyer.rekey(TOKEN_B1) != TOKEN_B1
        assert row.facts_sealed is not None and FACTS not in row.facts_sealed
        assert Sealed.from_text(row.facts_sealed).key_id == row.seal_key_id == "aead-1"
        assert row.status == "submitted" and row.submitter_member == "cpam-75"
        s = get_suspicion(session, sid)
        assert open_facts(s, envelope) == FACTS
        assert open_evidence(s, envelope) == ["doc:2026/0001", "facture 17"]

    database.run_sync(check)


def test_sealed_facts_do_not_open_under_another_record(
    database: Database, rekeyer: Rekeyer, envelope: Envelope
) -> None:
    a = database.run_sync(lambda s: _create(s, rekeyer, envelope))
    b = database.run_sync(lambda s: _create(s, rekeyer, envelope))

    def swap(session: Session) -> None:
        row_a, row_b = session.get(SuspicionRow, a), session.get(SuspicionRow, b)
        assert row_a is not None and row_b is not None
        row_b.facts_sealed = row_a.facts_sealed

    database.run_sync(swap)
    with pytest.raises(TamperedCiphertextError):
        database.run_sync(lambda s: open_facts(get_suspicion(s, b), envelope))


def test_unknown_id_is_not_found(database: Database) -> None:
    with pytest.raises(NotFoundError):
        database.run_sync(lambda s: get_suspicion(s, "s_doesnotexist"))


def test_transitions_record_who_when_why_with_the_reason_sealed(
    database: Database, rekeyer: Rekeyer, envelope: Envelope
) -> None:
    sid = database.run_sync(lambda s: _create(s, rekeyer, envelope))
    later = NOW + timedelta(days=3)
    database.run_sync(
        lambda s: transition_suspicion(
            s, sid, "qualified", CPAM_75, "faits établis", envelope, later
        )
    )

    def check(session: Session) -> None:
        s = get_suspicion(session, sid)
        assert s.status == "qualified" and s.updated_at == later
        [t] = transitions_of(session, s, envelope)
        assert (t.from_status, t.to_status, t.actor_member, t.actor_kind, t.reason, t.at) == (
            "submitted", "qualified", "cpam-75", "AMO", "faits établis", later,
        )  # fmt: skip
        stored = session.scalar(sa.text("select reason_sealed from suspicion_transitions"))
        assert "faits établis" not in stored

    database.run_sync(check)


def test_illegal_transition_is_refused_and_changes_nothing(
    database: Database, rekeyer: Rekeyer, envelope: Envelope
) -> None:
    sid = database.run_sync(lambda s: _create(s, rekeyer, envelope))
    with pytest.raises(FailedPreconditionError, match="'submitted' to 'confirmed'"):
        database.run_sync(
            lambda s: transition_suspicion(s, sid, "confirmed", CPAM_75, None, envelope, NOW)
        )
    assert database.run_sync(lambda s: get_suspicion(s, sid)).status == "submitted"
    count = database.run_sync(
        lambda s: s.scalar(sa.text("select count(*) from suspicion_transitions"))
    )
    assert count == 0
