"""The retention purge applies the bundle's periods (DOMAIN.md §1) and reports what it deleted."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session
from suspicion_support import CPAM_75, MEMBERS, NOW, TOKEN_B1, draft_values

from gateway.crypto import Envelope, Rekeyer
from gateway.domain.retention import run_retention
from gateway.domain.suspicions import (
    acknowledge,
    apply_transition,
    create_suspicion,
    declare_coverage,
    notifications_after,
    parse_suspicion_draft,
)
from gateway.store import Database
from policy import PolicyEngine

DAY = timedelta(days=1)


def _count(database: Database, table: str) -> int:
    return int(database.run_sync(lambda s: s.scalar(sa.text(f"select count(*) from {table}"))))


def test_each_retention_category_deletes_on_its_own_schedule(
    database: Database, rekeyer: Rekeyer, envelope: Envelope, engine: PolicyEngine
) -> None:
    def submit(session: Session, at: datetime, *moves: tuple[str, datetime]) -> str:
        draft = parse_suspicion_draft(draft_values())
        sid = create_suspicion(session, draft, CPAM_75, rekeyer, envelope, at).id
        for to, when in moves:
            apply_transition(
                session, sid, to, CPAM_75, None, engine=engine, members=MEMBERS,
                envelope=envelope, now=when,
            )  # fmt: skip
        return sid

    def build(session: Session) -> dict[str, str]:
        declare_coverage(session, "mut-a", [rekeyer.rekey(TOKEN_B1)], NOW)
        return {
            "stale": submit(session, NOW),
            "fresh": submit(session, NOW + 100 * DAY),
            "cleared": submit(session, NOW, ("qualified", NOW), ("cleared", NOW + DAY)),
            "dismissed": submit(session, NOW, ("qualified", NOW), ("dismissed", NOW + DAY)),
            "confirmed_open": submit(session, NOW, ("qualified", NOW), ("confirmed", NOW)),
            "final": submit(
                session, NOW, ("qualified", NOW), ("confirmed", NOW), ("closed", NOW + DAY)
            ),
        }

    ids = database.run_sync(build)

    def purge(at: datetime) -> dict[str, tuple[str, ...]]:
        return database.run_sync(lambda s: run_retention(s, engine, envelope, at)).deleted

    # Day 2: the cleared suspicion's tombstone waits for mut-a's acknowledgement.
    assert all(v == () for v in purge(NOW + 2 * DAY).values())
    retraction = [
        n
        for n in database.run_sync(lambda s: notifications_after(s, "mut-a", 0, 100, envelope))
        if n.kind == "RETRACTED" and n.subject_ref == ids["cleared"]
    ]
    database.run_sync(lambda s: acknowledge(s, "mut-a", retraction[0].sequence, NOW + 2 * DAY))
    assert purge(NOW + 2 * DAY)["not_relevant_or_cleared"] == (ids["cleared"],)
    # Six months: the never-qualified one goes (the fresh one is younger).
    assert purge(NOW + 183 * DAY)["alert_not_qualified"] == (ids["stale"],)
    # One year after dismissal.
    assert purge(NOW + 365 * DAY)["closed_without_action"] == ()
    assert purge(NOW + 366 * DAY)["closed_without_action"] == (ids["dismissed"],)
    # Five years after the closing of a confirmed case; an open confirmed case stays.
    report = database.run_sync(lambda s: run_retention(s, engine, envelope, NOW + 1827 * DAY))
    assert report.deleted["final_decision"] == (ids["final"],)
    assert report.counts()["final_decision"] == 1
    left = database.run_sync(lambda s: s.scalars(sa.text("select id from suspicions")).all())
    assert set(left) == {ids["confirmed_open"]}
    assert _count(database, "retention_runs") == 6
    for table in ("suspicion_transitions", "suspicion_recipients"):
        ids_left = database.run_sync(
            lambda s, t=table: set(s.scalars(sa.text(f"select suspicion_id from {t}")).all())
        )
        assert ids_left <= {ids["confirmed_open"]}
    # No shared view of a deleted suspicion keeps a payload.
    payloads = database.run_sync(
        lambda s: s.execute(
            sa.text("select subject_ref, payload from notifications where kind='SHARED'")
        ).all()
    )
    assert all(p is None for ref, p in payloads if ref != ids["confirmed_open"])


def test_an_unacknowledged_retraction_keeps_the_tombstone_at_most_a_year(
    database: Database, rekeyer: Rekeyer, envelope: Envelope, engine: PolicyEngine
) -> None:
    def build(session: Session) -> str:
        declare_coverage(session, "mut-a", [rekeyer.rekey(TOKEN_B1)], NOW)
        draft = parse_suspicion_draft(draft_values())
        sid = create_suspicion(session, draft, CPAM_75, rekeyer, envelope, NOW).id
        for to in ("qualified", "cleared"):
            apply_transition(
                session, sid, to, CPAM_75, None, engine=engine, members=MEMBERS,
                envelope=envelope, now=NOW,
            )  # fmt: skip
        return sid

    sid = database.run_sync(build)
    early = database.run_sync(lambda s: run_retention(s, engine, envelope, NOW + 30 * DAY))
    assert early.deleted["not_relevant_or_cleared"] == () and early.erased == ()
    late = database.run_sync(lambda s: run_retention(s, engine, envelope, NOW + 365 * DAY))
    assert late.deleted["not_relevant_or_cleared"] == (sid,)
    # The retraction itself survives for the offline member to read.
    kinds = [
        n.kind
        for n in database.run_sync(lambda s: notifications_after(s, "mut-a", 0, 10, envelope))
    ]
    assert kinds == ["SHARED", "RETRACTED"]


def test_acknowledged_notifications_are_deleted_after_their_keep_period(
    database: Database, rekeyer: Rekeyer, envelope: Envelope, engine: PolicyEngine
) -> None:
    def build(session: Session) -> None:
        declare_coverage(session, "mut-a", [rekeyer.rekey(TOKEN_B1)], NOW)
        draft = parse_suspicion_draft(draft_values())
        sid = create_suspicion(session, draft, CPAM_75, rekeyer, envelope, NOW).id
        apply_transition(
            session, sid, "qualified", CPAM_75, None, engine=engine, members=MEMBERS,
            envelope=envelope, now=NOW,
        )  # fmt: skip

    database.run_sync(build)
    [n] = database.run_sync(lambda s: notifications_after(s, "mut-a", 0, 10, envelope))
    database.run_sync(lambda s: acknowledge(s, "mut-a", n.sequence, NOW))
    kept = database.run_sync(
        lambda s: run_retention(
            s, engine, envelope, NOW + 29 * DAY, acknowledged_notification_days=30
        )
    )
    assert kept.notifications_deleted == 0
    gone = database.run_sync(lambda s: run_retention(s, engine, envelope, NOW + 30 * DAY))
    assert gone.notifications_deleted == 1 and _count(database, "notifications") == 0
