"""Distribution, minimised views, retraction, acknowledgement, erasure (both bundles, both DBs)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from suspicion_support import (
    CPAM_13,
    CPAM_75,
    FACTS,
    MEMBERS,
    MUT_A,
    MUT_B,
    MUT_C,
    MUT_D,
    NOW,
    RPPS_P,
    TOKEN_B1,
    TOKEN_B2,
    draft_values,
)

from gateway.crypto import Envelope, Rekeyer
from gateway.domain.suspicions import (
    acknowledge,
    apply_transition,
    create_suspicion,
    declare_coverage,
    distribute,
    get_suspicion,
    notifications_after,
    parse_suspicion_draft,
    resume_position,
    retract,
)
from gateway.errors import FailedPreconditionError, NotFoundError
from gateway.store import Database, Member
from gateway.store import _suspicions as suspicions_store
from gateway.store._suspicions import ClaimLinesSpec, claim_lines_table
from gateway.store._suspicions_models import SuspicionRecipientRow
from policy import PolicyEngine

LATER = NOW + timedelta(days=2)
MUTUELLES = {"mut-a", "mut-b", "mut-c", "mut-d"}

# Who receives an AMO suspicion about B1 billed by provider P, once qualified. Relations:
# mut-a, mut-c, mut-d and cpam-13 cover B1; mut-b only paid P; mut-d has no analyst role.
AMO_REPORT_RECIPIENTS = {
    "current-law": ["mut-a", "mut-c"],  # L.114-9: the insured's AMC only
    "fraud-bill-2025": ["mut-a", "mut-b", "mut-c"],  # draft L.114-9-1: also who paid P
}
# Who receives an AMC report (mut-a) about B2: cpam-13 and mut-c cover B2.
AMC_REPORT_RECIPIENTS = {"current-law": [], "fraud-bill-2025": ["cpam-13"]}


TEST_CLAIMS = ClaimLinesSpec(table="test_claim_lines")


@pytest.fixture(autouse=True)
def _test_claim_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relation facts read claims through the hook; point it at a small stand-in table."""
    monkeypatch.setattr(suspicions_store, "CLAIM_LINES", TEST_CLAIMS)


def _claim_lines(session: Session) -> None:
    """A claim line of mut-b naming provider P (mut-b paid P) in the stand-in table."""
    session.execute(
        sa.text(
            "CREATE TABLE test_claim_lines (id INTEGER PRIMARY KEY, member_id VARCHAR(64), "
            "beneficiary VARCHAR(128), provider_rpps VARCHAR(11), "
            "provider_am_number VARCHAR(9), provider_finess VARCHAR(9))"
        )
    )
    session.execute(
        sa.text(
            "INSERT INTO test_claim_lines "
            "VALUES (1, 'mut-b', 'gw-1:other', :rpps, '751234567', NULL)"
        ),
        {"rpps": RPPS_P},
    )


def _setup(database: Database, rekeyer: Rekeyer) -> None:
    b1, b2 = rekeyer.rekey(TOKEN_B1), rekeyer.rekey(TOKEN_B2)

    def run(session: Session) -> None:
        _claim_lines(session)
        for m in ("mut-a", "mut-c", "mut-d", "cpam-13"):
            declare_coverage(session, m, [b1], NOW)
        for m in ("cpam-13", "mut-c"):
            declare_coverage(session, m, [b2], NOW)

    database.run_sync(run)


def _submit(database: Database, rekeyer: Rekeyer, envelope: Envelope, by: Member, **kw: Any) -> str:
    draft = parse_suspicion_draft(draft_values(**kw))
    return database.run_sync(lambda s: create_suspicion(s, draft, by, rekeyer, envelope, NOW).id)


def _move(
    database: Database,
    engine: PolicyEngine,
    envelope: Envelope,
    sid: str,
    to: str,
    actor: Member,
    when: Any = LATER,
) -> list[str]:
    return database.run_sync(
        lambda s: apply_transition(
            s, sid, to, actor, "décision", engine=engine, members=MEMBERS, envelope=envelope,
            now=when,
        )[2]
    )  # fmt: skip


def _stream(database: Database, member: str, envelope: Envelope, after: int = 0) -> list[Any]:
    return database.run_sync(lambda s: notifications_after(s, member, after, 100, envelope))


def _all_text(session: Session, skip: frozenset[str] | set[str] = frozenset()) -> str:
    """Every value of every table, as text (what a stolen database would show)."""
    chunks = []
    for table in set(sa.inspect(session.connection()).get_table_names()) - set(skip):
        for row in session.execute(sa.text(f'SELECT * FROM "{table}"')):
            chunks.extend(str(v) for v in row)
    return "\n".join(chunks)


@pytest.fixture
def amo_report(database: Database, rekeyer: Rekeyer, envelope: Envelope) -> str:
    _setup(database, rekeyer)
    return _submit(database, rekeyer, envelope, CPAM_75)


def test_nothing_is_shared_below_the_threshold(
    database: Database, engine: PolicyEngine, envelope: Envelope, amo_report: str
) -> None:
    s = database.run_sync(lambda s: get_suspicion(s, amo_report))
    assert database.run_sync(lambda x: distribute(x, s, engine, MEMBERS, envelope, NOW)) == []
    assert all(_stream(database, m.member_id, envelope) == [] for m in MEMBERS)


def test_distribution_reaches_exactly_the_entitled_members_with_minimised_views(
    database: Database, engine: PolicyEngine, envelope: Envelope, amo_report: str
) -> None:
    reached = _move(database, engine, envelope, amo_report, "qualified", CPAM_75)
    expected = AMO_REPORT_RECIPIENTS[engine.bundle_name]
    assert reached == expected
    view = engine.view("suspicion", "AMC", "control")
    references = set()
    for m in MEMBERS:
        stream = _stream(database, m.member_id, envelope)
        if m.member_id not in expected:
            assert stream == []
            continue
        [n] = stream
        assert (n.kind, n.subject_ref, n.member_id) == ("SHARED", amo_report, m.member_id)
        assert n.payload is not None and set(n.payload) <= view
        assert "facts_summary" not in n.payload and "act_codes" not in n.payload
        assert n.payload["status"] == "qualified" and n.payload["submitter_member"] == "cpam-75"
        others = MUTUELLES - {m.member_id}
        assert not any(o in json.dumps(n.payload) for o in others)  # never who else received it
        references.add(n.payload["own_reference"])
        row = database.run_sync(
            lambda s, m=m: s.get(SuspicionRecipientRow, (amo_report, m.member_id))
        )
        assert row is not None and row.reference == n.payload["own_reference"]
    assert len(references) == len(expected)  # each recipient has its own reference
    # Moving on does not notify anyone twice.
    assert _move(database, engine, envelope, amo_report, "confirmed", CPAM_75) == []


def test_an_amc_report_reaches_the_insureds_fund_only_under_the_bill(
    database: Database, rekeyer: Rekeyer, engine: PolicyEngine, envelope: Envelope
) -> None:
    _setup(database, rekeyer)
    sid = _submit(
        database, rekeyer, envelope, MUT_A, subject={"beneficiary_token": TOKEN_B2},
        case_reference="MUTA-7",
    )  # fmt: skip
    reached = _move(database, engine, envelope, sid, "qualified", MUT_A)
    assert reached == AMC_REPORT_RECIPIENTS[engine.bundle_name]
    assert _stream(database, "mut-c", envelope) == []  # an AMC never reads another AMC's report
    if reached:
        [n] = _stream(database, "cpam-13", envelope)
        assert n.payload is not None
        assert n.payload["facts_summary"] == FACTS  # the AMO view carries the facts
        assert "act_codes" not in n.payload  # strict minimisation: grouping codes only
        assert n.payload["own_reference"] != "MUTA-7"  # never the submitter's own reference


def test_retraction_reaches_every_recipient_including_one_that_never_read(
    database: Database, engine: PolicyEngine, envelope: Envelope, amo_report: str
) -> None:
    recipients = _move(database, engine, envelope, amo_report, "qualified", CPAM_75)
    open_one = database.run_sync(lambda x: get_suspicion(x, amo_report))
    with pytest.raises(FailedPreconditionError):  # an open suspicion is not retracted
        database.run_sync(lambda x: retract(x, open_one, envelope, LATER))
    # mut-a reads and acknowledges its notification; mut-c stays offline.
    [shared] = _stream(database, "mut-a", envelope)
    database.run_sync(lambda s: acknowledge(s, "mut-a", shared.sequence, LATER))
    told = _move(database, engine, envelope, amo_report, "dismissed", CPAM_75, LATER + timedelta(1))
    assert told == recipients
    offline = _stream(database, "mut-c", envelope)
    assert [n.kind for n in offline] == ["SHARED", "RETRACTED"]
    retraction = offline[1]
    assert retraction.payload == {
        "id": amo_report,
        "own_reference": offline[0].payload["own_reference"],
        "status": "dismissed",
    }
    # Resume after the acknowledged position: nothing lost.
    resume = database.run_sync(lambda s: resume_position(s, "mut-a"))
    assert shared.sequence <= resume < offline[1].sequence
    assert [n.kind for n in _stream(database, "mut-a", envelope, resume)] == ["RETRACTED"]
    assert database.run_sync(lambda s: resume_position(s, "mut-c")) == offline[0].sequence - 1
    # Retracting twice tells nobody twice.
    s = database.run_sync(lambda x: get_suspicion(x, amo_report))
    assert database.run_sync(lambda x: retract(x, s, envelope, LATER)) == []
    # A dismissed suspicion keeps its payload (closed-without-action retention).
    assert offline[0].payload is not None and "sector" in offline[0].payload


def test_retraction_acknowledgement_is_recorded_and_only_by_its_member(
    database: Database, engine: PolicyEngine, envelope: Envelope, amo_report: str
) -> None:
    _move(database, engine, envelope, amo_report, "qualified", CPAM_75)
    _move(database, engine, envelope, amo_report, "cleared", CPAM_75)
    retraction = _stream(database, "mut-c", envelope)[-1]
    assert retraction.kind == "RETRACTED"
    for intruder in ("mut-a", "mut-b", "cpam-75"):
        with pytest.raises(NotFoundError):
            database.run_sync(lambda s, i=intruder: acknowledge(s, i, retraction.sequence, LATER))
    ack_time = LATER + timedelta(hours=1)
    acked = database.run_sync(lambda s: acknowledge(s, "mut-c", retraction.sequence, ack_time))
    assert acked.acknowledged_at == ack_time
    database.run_sync(
        lambda s: acknowledge(s, "mut-c", retraction.sequence, ack_time + (LATER - NOW))
    )
    row = database.run_sync(lambda s: s.get(SuspicionRecipientRow, (amo_report, "mut-c")))
    assert row is not None and row.retraction_acknowledged_at == ack_time  # first time kept
    other = database.run_sync(lambda s: s.get(SuspicionRecipientRow, (amo_report, "mut-a")))
    assert other is not None and other.retraction_acknowledged_at is None


def test_cleared_payload_is_physically_gone_from_the_database(
    database: Database, rekeyer: Rekeyer, engine: PolicyEngine, envelope: Envelope, amo_report: str
) -> None:
    _move(database, engine, envelope, amo_report, "qualified", CPAM_75)
    before = database.run_sync(
        lambda s: s.execute(sa.text("select facts_sealed, evidence_sealed from suspicions")).one()
    )
    _move(database, engine, envelope, amo_report, "cleared", CPAM_75)
    row = database.run_sync(
        lambda s: s.execute(
            sa.text(
                "select subject_beneficiary, subject_provider_rpps, facts_sealed, "
                "evidence_sealed, act_codes, act_grouping_codes, erased_at, status "
                "from suspicions"
            )
        ).one()
    )
    assert row[:4] == (None, None, None, None)
    assert [json.loads(v) if isinstance(v, str) else v for v in row[4:6]] == [[], []]
    assert row.erased_at is not None and row.status == "cleared"
    reasons = database.run_sync(
        lambda s: s.scalars(sa.text("select reason_sealed from suspicion_transitions")).all()
    )
    assert reasons and set(reasons) == {None}
    shared = database.run_sync(
        lambda s: s.scalars(sa.text("select payload from notifications where kind='SHARED'")).all()
    )
    assert shared and set(shared) == {None}
    # Coverage and claims are the members' own data, not the suspicion: the rest is scanned.
    dump = database.run_sync(lambda s: _all_text(s, skip={"member_coverage", "test_claim_lines"}))
    for gone in (rekeyer.rekey(TOKEN_B1), RPPS_P, before[0], before[1], TOKEN_B1, FACTS):
        assert gone not in dump


def test_no_token_nor_free_text_in_clear_anywhere_in_the_database(
    database: Database, rekeyer: Rekeyer, engine: PolicyEngine, envelope: Envelope
) -> None:
    _setup(database, rekeyer)
    amo = _submit(database, rekeyer, envelope, CPAM_75)
    amc = _submit(database, rekeyer, envelope, MUT_A, subject={"beneficiary_token": TOKEN_B2})
    _move(database, engine, envelope, amo, "qualified", CPAM_75)
    _move(database, engine, envelope, amc, "qualified", MUT_A)
    dump = database.run_sync(_all_text)
    for secret in (TOKEN_B1, TOKEN_B2, FACTS, "doc:2026/0001", "facture 17", "décision"):
        assert secret not in dump


def test_members_without_analysts_or_relations_never_receive(
    database: Database, engine: PolicyEngine, envelope: Envelope, amo_report: str
) -> None:
    _move(database, engine, envelope, amo_report, "qualified", CPAM_75)
    for m in (MUT_D, CPAM_13, CPAM_75):
        assert _stream(database, m.member_id, envelope) == []
    assert MUT_B.member_id in AMO_REPORT_RECIPIENTS["fraud-bill-2025"]
    assert MUT_C.member_id in AMO_REPORT_RECIPIENTS["current-law"]


def test_the_claims_migration_table_is_found_by_the_relation_hook(database: Database) -> None:
    def check(session: Session) -> None:
        if not sa.inspect(session.connection()).has_table("claim_lines"):
            pytest.skip("the claims migration is not in this tree")
        claims = claim_lines_table(session, ClaimLinesSpec())
        assert claims is not None and claims.beneficiary is not None
        assert set(claims.providers) == {"rpps", "am_number", "finess"}

    database.run_sync(check)
