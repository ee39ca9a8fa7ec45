"""Compliance queries, "who looked at my data?", export/verify against DB tampering, erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from journal_store_helpers import T0, VKEY, access_event, integrate_now, write_events

from gateway.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from gateway.journal import (
    BundleError,
    JournalVerificationError,
    ProofError,
    verify_bundle,
)
from gateway.journal.queries import (
    EventFilter,
    by_person,
    export_bundle,
    leaf_index_of,
    list_events,
)
from gateway.journal.retention import (
    ERASE_METHOD,
    erase_personal_before,
    retention_cutoff,
)
from gateway.store import AccessEvent, Database, SqlAuditStore

ALICE = "k1:alice-pseudonym_x"
ALICE_OLD_KEY = "k0:alice-older"
BOB = "k1:bob%pseudonym"


def _export(db: Database, **kw: Any) -> dict[str, Any]:
    return db.run_sync(lambda s: export_bundle(s, VKEY, **kw))


def _seed_people(db: Database) -> dict[str, list[int]]:
    """Events touching Alice (under two key versions), Bob, both, or nobody."""
    plan = {
        0: (ALICE,),
        1: (BOB,),
        2: (),
        3: (ALICE, BOB),
        4: (ALICE_OLD_KEY,),
        5: (ALICE, ALICE),
        6: ("k1:alice",),  # a prefix of Alice's pseudonym: must not match
    }
    seqs: dict[str, list[int]] = {ALICE: [], BOB: []}
    for k, names in plan.items():
        [seq] = write_events(db, 1, start=k, pseudonyms=names)
        for who in (ALICE, BOB):
            if who in names or (who == ALICE and ALICE_OLD_KEY in names):
                seqs[who].append(seq)
    return seqs


# -- queries ------------------------------------------------------------------------------------
FILTERS: list[tuple[str, EventFilter, Any]] = [
    ("member", EventFilter(member_id="mut-alpha"), lambda k: k % 3 == 1),
    ("principal", EventFilter(principal="agent-2"), lambda k: k % 5 == 2),
    ("method", EventFilter(method="CheckClaim"), lambda k: k % 3 == 1),
    ("purpose", EventFilter(purpose="audit"), lambda k: k % 3 == 2),
    ("refusals", EventFilter(decision="deny"), lambda k: k % 4 == 3),
    ("allowed", EventFilter(decision="allow"), lambda k: k % 4 != 3),
    ("rule id", EventFilter(rule_id="rule_3"), lambda k: k % 7 == 3),
    ("rule id among several", EventFilter(rule_id="deny-default"), lambda k: k % 4 == 3),
    ("rule id LIKE wildcard is literal", EventFilter(rule_id="rule%"), lambda k: False),
    ("rule id prefix does not match", EventFilter(rule_id="rule"), lambda k: False),
    (
        "time range",
        EventFilter(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=9)),
        lambda k: 5 <= k < 9,
    ),
    ("combined", EventFilter(member_id="cpam-75", decision="deny"), lambda k: k % 12 == 3),
]


@pytest.mark.parametrize(("name", "f", "expected"), FILTERS, ids=[f[0] for f in FILTERS])
def test_query_filters_select_exactly_the_matching_events(
    database: Database, name: str, f: EventFilter, expected: Any
) -> None:
    seqs = write_events(database, 30)
    page = database.run_sync(lambda s: list_events(s, f, page_size=1000))
    assert [r.seq for r in page.records] == [s for k, s in enumerate(seqs) if expected(k)]
    assert page.next_page_token == ""


def test_pagination_is_stable_and_complete(database: Database) -> None:
    seqs = write_events(database, 25)
    seen: list[int] = []
    token = ""
    while True:
        page = database.run_sync(lambda s, t=token: list_events(s, page_size=7, page_token=t))
        seen.extend(r.seq for r in page.records)
        # Events written between pages land after the cursor and never shift a page.
        if len(seen) == 7:
            seqs += write_events(database, 3, start=25)
        if not page.next_page_token:
            break
        token = page.next_page_token
    assert seen == seqs


@pytest.mark.parametrize(
    ("token", "filters"),
    [
        ("not-a-token", EventFilter()),
        ("eyJ2IjogMSwgImFmdGVyIjogLTF9", EventFilter()),  # {"v": 1, "after": -1}
        (None, EventFilter(member_id="mut-beta")),  # a token issued for other filters
    ],
)
def test_forged_or_foreign_page_tokens_are_refused(
    database: Database, token: str | None, filters: EventFilter
) -> None:
    write_events(database, 3)
    if token is None:
        token = database.run_sync(lambda s: list_events(s, page_size=1)).next_page_token
    with pytest.raises(InvalidArgumentError):
        database.run_sync(lambda s: list_events(s, filters, page_token=token))


def test_rule_ids_that_could_escape_the_json_match_are_refused() -> None:
    for bad in ('x"y', "a\\b", "tab\there"):
        with pytest.raises(ValueError, match="quotes"):
            EventFilter(rule_id=bad)


def test_by_person_finds_exactly_the_persons_events(database: Database) -> None:
    expected = _seed_people(database)
    found = database.run_sync(lambda s: by_person(s, [ALICE, ALICE_OLD_KEY]))
    assert [r.seq for r in found] == expected[ALICE]
    assert all(r.personal is not None for r in found)
    bob = database.run_sync(lambda s: by_person(s, [BOB]))
    assert [r.seq for r in bob] == expected[BOB]
    assert database.run_sync(lambda s: by_person(s, [])) == []
    assert database.run_sync(lambda s: by_person(s, ["k1:nobody"])) == []


def test_leaf_index_of_an_event(database: Database) -> None:
    event = access_event(0)
    database.run_sync(lambda s: SqlAuditStore().append(s, event))
    assert database.run_sync(lambda s: leaf_index_of(s, event.event_id)) is None
    integrate_now(database)
    assert database.run_sync(lambda s: leaf_index_of(s, event.event_id)) == 0
    with pytest.raises(NotFoundError):
        database.run_sync(lambda s: leaf_index_of(s, "00000000-0000-4000-8000-000000000000"))


# -- export and tampering directly in the database -----------------------------------------------
def test_export_of_an_untouched_journal_verifies(database: Database) -> None:
    _seed_people(database)
    first = integrate_now(database)
    write_events(database, 5, start=10)
    integrate_now(database)
    assert first is not None
    bundle = _export(database, earlier_checkpoint=first.note)
    report = verify_bundle(json.loads(json.dumps(bundle)), VKEY)
    assert report.events_verified == 12 and report.complete_range == (0, 12)
    assert report.personal_revealed == 12 and report.consistent_with_size == 7
    partial = _export(database, from_size=4, filters=EventFilter(decision="deny"))
    assert verify_bundle(partial, VKEY).complete_range is None


def test_export_before_any_checkpoint_is_a_failed_precondition(database: Database) -> None:
    write_events(database, 1)
    with pytest.raises(FailedPreconditionError):
        _export(database)


def _tamper(db: Database, *statements: str) -> None:
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":  # the database owner can switch the guards off
            conn.execute(sa.text("ALTER TABLE journal_events DISABLE TRIGGER ALL"))
            conn.execute(sa.text("ALTER TABLE journal_personal DISABLE TRIGGER ALL"))
        else:
            conn.execute(sa.text("DROP TRIGGER journal_events_no_update"))
            conn.execute(sa.text("DROP TRIGGER journal_events_no_delete"))
            conn.execute(sa.text("PRAGMA foreign_keys=OFF"))
        for statement in statements:
            conn.execute(sa.text(statement))


TAMPERING = [
    (
        "update member",
        ["UPDATE journal_events SET member_id = 'mut-beta' WHERE leaf_index = 3"],
        ProofError,
    ),
    (
        "update decision",
        ["UPDATE journal_events SET decision = 'allow' WHERE leaf_index = 3"],
        ProofError,
    ),
    (
        "update purpose",
        ["UPDATE journal_events SET purpose = 'litigation' WHERE leaf_index = 0"],
        ProofError,
    ),
    (
        "update time",
        ["UPDATE journal_events SET time = '2026-03-02 09:00:00.000000' WHERE leaf_index = 6"],
        ProofError,
    ),
    (
        "update rule ids",
        ["UPDATE journal_events SET rule_ids = '[]' WHERE leaf_index = 2"],
        ProofError,
    ),
    (
        "update commitment",
        [f"UPDATE journal_events SET personal_commitment = '{'0' * 64}' WHERE leaf_index = 5"],
        ProofError,
    ),
    (
        "delete a row",
        [
            "DELETE FROM journal_personal WHERE seq = (SELECT seq FROM journal_events "
            "WHERE leaf_index = 4)",
            "DELETE FROM journal_events WHERE leaf_index = 4",
        ],
        BundleError,
    ),
    (
        "swap leaf indices",
        [
            "UPDATE journal_events SET leaf_index = -1 WHERE leaf_index = 1",
            "UPDATE journal_events SET leaf_index = 1 WHERE leaf_index = 2",
            "UPDATE journal_events SET leaf_index = 2 WHERE leaf_index = -1",
        ],
        ProofError,
    ),
]


@pytest.mark.parametrize(("name", "statements", "error"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_in_the_database_is_detected_by_export_and_verify(
    database: Database, name: str, statements: list[str], error: type[JournalVerificationError]
) -> None:
    write_events(database, 8)
    integrate_now(database)
    verify_bundle(_export(database), VKEY)
    _tamper(database, *statements)
    with pytest.raises(error):
        verify_bundle(_export(database), VKEY)


def test_altered_personal_fields_are_detected(database: Database) -> None:
    _seed_people(database)
    integrate_now(database)
    with database.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE journal_personal SET subject_pseudonyms = '[\"k1:someone-else\"]' "
                "WHERE seq = (SELECT seq FROM journal_events WHERE leaf_index = 0)"
            )
        )
    with pytest.raises(JournalVerificationError, match="commitment"):
        verify_bundle(_export(database), VKEY)


# -- retention ----------------------------------------------------------------------------------
def test_erasure_leaves_every_proof_valid_and_the_personal_fields_gone(database: Database) -> None:
    expected = _seed_people(database)
    recent = write_events(
        database, 3, start=20, time=datetime.now(UTC) - timedelta(days=1), pseudonyms=(ALICE,)
    )
    first = integrate_now(database)
    assert first is not None
    cutoff = T0 + timedelta(minutes=4)  # the seeded events 0..3 are "old"
    count = database.run_sync(lambda s: erase_personal_before(s, cutoff, rule_ids=["ret-logs"]))
    assert count == 4
    # 1. Personal fields and subject index rows gone: old events are no longer found by person.
    found = database.run_sync(lambda s: by_person(s, [ALICE, ALICE_OLD_KEY]))
    assert [r.seq for r in found] == expected[ALICE][2:] + recent
    page = database.run_sync(lambda s: list_events(s, page_size=1000))
    erased = [r for r in page.records if r.personal is None]
    assert [r.event.time for r in erased] == [f"2026-03-01T09:0{k}:00.000000Z" for k in range(4)]
    assert all(r.salt is None for r in erased)
    # 2. The erasure is journaled, with its count.
    [erase] = [r for r in page.records if r.event.method == ERASE_METHOD]
    assert erase.event.record_count == 4 and erase.event.decision == "allow"
    assert erase.event.rule_ids == ("ret-logs",)
    # 3. Every proof still verifies, before and after integrating the erasure event.
    report = verify_bundle(_export(database, earlier_checkpoint=first.note), VKEY)
    assert report.personal_absent == 4 and report.events_verified == 10
    assert report.consistent_with_size == 10
    integrate_now(database)
    bundle = _export(database)
    report = verify_bundle(bundle, VKEY)
    assert report.events_verified == 11 and report.personal_absent == 4
    assert [e["personal"] for e in bundle["events"][:4]] == [None] * 4
    # 4. Running again erases nothing more, and says so in the journal.
    assert database.run_sync(lambda s: erase_personal_before(s, cutoff)) == 0


@pytest.mark.parametrize(
    "cutoff",
    [datetime(2026, 1, 1), datetime.now(UTC) + timedelta(days=1)],
    ids=["naive", "future"],
)
def test_erasure_cutoff_must_be_aware_and_past(database: Database, cutoff: datetime) -> None:
    with pytest.raises(InvalidArgumentError):
        database.run_sync(lambda s: erase_personal_before(s, cutoff))


def test_retention_shorter_than_six_months_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        retention_cutoff(timedelta(days=90))
    now = datetime(2026, 11, 1, tzinfo=UTC)
    assert retention_cutoff(timedelta(days=365), now) == now - timedelta(days=365)


def test_erasure_rolls_back_with_the_callers_transaction(database: Database) -> None:
    write_events(database, 2)

    def failing(s: sa.orm.Session) -> None:
        erase_personal_before(s, T0 + timedelta(hours=1))
        raise RuntimeError("caller fails")

    with pytest.raises(RuntimeError):
        database.run_sync(failing)
    page = database.run_sync(lambda s: list_events(s))
    assert len(page.records) == 2 and all(r.personal is not None for r in page.records)
    _ = AccessEvent  # the erasure writes through the gateway's own audit store


def test_filter_accepts_a_list_of_pseudonyms_and_an_empty_filter_exports_everything(
    database: Database,
) -> None:
    assert EventFilter(pseudonyms=[ALICE]).pseudonyms == (ALICE,)
    write_events(database, 3)
    integrate_now(database)
    bundle = _export(database, filters=EventFilter())
    assert verify_bundle(bundle, VKEY).complete_range == (0, 3)
