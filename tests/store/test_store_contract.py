"""Store contract: the same tests on SQLite and PostgreSQL (see the ``database`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.crypto import Envelope, KeyRing, TamperedCiphertextError
from gateway.errors import FailedPreconditionError, UnavailableError
from gateway.ids import CertFingerprint, MemberId
from gateway.store import (
    AccessEvent,
    Base,
    Database,
    IdempotencyStore,
    Member,
    SqlAuditStore,
    SqlMemberRegistry,
    make_engine,
    migrate,
    migration_config,
)

FP = CertFingerprint("ab" * 32)
MUT = Member(
    member_id="mut-alpha",
    display_name="Mutuelle Alpha",
    kind="AMC",
    roles=frozenset({"submitter", "analyst"}),
)


def test_migrations_create_every_table_and_match_the_models(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # Only differences alembic cannot express identically on both dialects are tolerated.
    assert [
        d for d in diff if d[0] in {"add_table", "remove_table", "add_column", "remove_column"}
    ] == []


def test_migrations_downgrade_to_base_and_up_again(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    cfg = migration_config(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    migrate(engine)
    assert {"members", "journal_events", "journal_personal", "idempotency_keys"} <= set(
        sa.inspect(engine).get_table_names()
    )
    engine.dispose()


def test_registry_maps_pinned_fingerprint_to_member(database: Database) -> None:
    reg = SqlMemberRegistry()
    database.run_sync(lambda s: reg.register(s, MUT, fingerprint=FP, subject="CN=mut-alpha"))
    found = database.run_sync(lambda s: reg.by_fingerprint(s, FP))
    assert found == MUT
    assert database.run_sync(lambda s: reg.by_fingerprint(s, CertFingerprint("cd" * 32))) is None
    assert database.run_sync(lambda s: reg.get(s, MemberId("mut-alpha"))) == MUT


def test_registry_refuses_a_fingerprint_pinned_to_another_member(database: Database) -> None:
    reg = SqlMemberRegistry()
    database.run_sync(lambda s: reg.register(s, MUT, fingerprint=FP))
    other = MUT.model_copy(update={"member_id": "mut-beta"})
    with pytest.raises(ValueError, match="another member"):
        database.run_sync(lambda s: reg.register(s, other, fingerprint=FP))


def test_registry_refuses_unknown_roles(database: Database) -> None:
    bad = MUT.model_copy(update={"roles": frozenset({"root"})})
    with pytest.raises(ValueError, match="unknown roles"):
        database.run_sync(lambda s: SqlMemberRegistry().register(s, bad))


def _event(**kw: object) -> AccessEvent:
    base: dict[str, object] = {
        "method": "/vigie.v1.MemberService/GetSelf",
        "decision": "allow",
        "member_id": "mut-alpha",
        "purpose": "operations",
    }
    base.update(kw)
    return AccessEvent(**base)  # type: ignore[arg-type]


def test_journal_events_keep_personal_fields_apart(database: Database) -> None:
    store = SqlAuditStore()
    seq = database.run_sync(
        lambda s: store.append(
            s, _event(record_refs=("suspicions/1",), subject_pseudonyms=("k1:abc",))
        )
    )
    with database.engine.connect() as conn:
        ev = (
            conn.execute(sa.text("select * from journal_events where seq = :s"), {"s": seq})
            .mappings()
            .one()
        )
        personal = (
            conn.execute(sa.text("select * from journal_personal where seq = :s"), {"s": seq})
            .mappings()
            .one()
        )
    assert "record_refs" not in ev and len(ev["personal_commitment"]) == 64
    assert personal["record_refs"] in (["suspicions/1"], '["suspicions/1"]')


def test_journal_is_append_only(database: Database) -> None:
    seq = database.run_sync(lambda s: SqlAuditStore().append(s, _event()))
    for sql in (
        "update journal_events set decision = 'deny' where seq = :s",
        "delete from journal_events where seq = :s",
    ):
        with pytest.raises((DBAPIError, IntegrityError, UnavailableError)):
            database.run_sync(lambda s, sql=sql: s.execute(sa.text(sql), {"s": seq}))
    # The sequencer may set leaf_index exactly once.
    database.run_sync(
        lambda s: s.execute(
            sa.text("update journal_events set leaf_index = 0 where seq = :s"), {"s": seq}
        )
    )
    with pytest.raises((DBAPIError, UnavailableError)):
        database.run_sync(
            lambda s: s.execute(
                sa.text("update journal_events set leaf_index = 5 where seq = :s"), {"s": seq}
            )
        )


def test_failed_transaction_rolls_back_write_and_event(database: Database) -> None:
    reg = SqlMemberRegistry()

    def write_then_fail(s: sa.orm.Session) -> None:
        reg.register(s, MUT)
        SqlAuditStore().append(s, _event())
        raise RuntimeError("journal insert failed")

    with pytest.raises(RuntimeError):
        database.run_sync(write_then_fail)
    assert database.run_sync(lambda s: reg.all(s)) == []
    with database.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from journal_events")).scalar() == 0


def _envelope() -> Envelope:
    return Envelope(KeyRing({"k1": b"\x11" * 32}, "k1"))


def test_idempotency_returns_first_answer_and_refuses_reuse(database: Database) -> None:
    store = IdempotencyStore(_envelope())
    args = ("mut-alpha", "/m", "3f0c2b9e-7f5e-4d8a-9b1a-2c3d4e5f6a7b")
    assert database.run_sync(lambda s: store.lookup(s, *args, "d1")) is None
    database.run_sync(lambda s: store.store(s, *args, "d1", b"answer"))
    assert database.run_sync(lambda s: store.lookup(s, *args, "d1")) == b"answer"
    with pytest.raises(FailedPreconditionError):
        database.run_sync(lambda s: store.lookup(s, *args, "d2"))
    with pytest.raises(IntegrityError):  # a second insert of the same key cannot commit
        database.run_sync(lambda s: store.store(s, *args, "d1", b"other"))


def test_timestamps_round_trip_as_aware_utc(database: Database) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC) + timedelta(0)
    seq = database.run_sync(lambda s: SqlAuditStore().append(s, _event(time=when)))
    from gateway.store._models import JournalEventRow

    row = database.run_sync(lambda s: s.get(JournalEventRow, seq))
    assert row is not None and row.time == when and row.time.tzinfo is not None


def test_idempotency_answers_are_sealed_and_erased_with_their_resource(
    database: Database,
) -> None:
    store = IdempotencyStore(_envelope())
    secret = b"facts summary only the submitter may read"
    key = ("cpam-75", "/vigie.v1.SuspicionService/CreateSuspicion", "7b2f")
    database.run_sync(lambda s: store.store(s, *key, "d1", secret, subject_ref="suspicions/s_1"))
    database.run_sync(lambda s: store.store(s, "cpam-75", "/m", "other", "d2", b"kept"))
    with database.engine.connect() as conn:
        raw = b"".join(r[0] for r in conn.execute(sa.text("select response from idempotency_keys")))
    assert secret not in raw  # 1. sealed at rest
    # 2. an answer moved to another key does not open (bound to member, method, request id)
    with database.engine.begin() as conn:
        conn.execute(
            sa.text("update idempotency_keys set request_id = 'moved' where request_id = '7b2f'")
        )
    with pytest.raises(TamperedCiphertextError):
        database.run_sync(lambda s: store.lookup(s, key[0], key[1], "moved", "d1"))
    # 3. erasing the resource erases its stored answers, and only those; a late retry of the
    #    erased write is refused rather than executed again
    assert database.run_sync(lambda s: store.forget(s, "suspicions/s_1")) == 1
    with pytest.raises(FailedPreconditionError) as e:
        database.run_sync(lambda s: store.lookup(s, key[0], key[1], "moved", "d1"))
    assert e.value.reason == "ANSWER_ERASED"
    assert database.run_sync(lambda s: store.lookup(s, "cpam-75", "/m", "other", "d2")) == b"kept"
