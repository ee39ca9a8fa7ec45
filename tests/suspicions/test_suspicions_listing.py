"""Listing: stable pages that never leak a suspicion the member may not see (both bundles)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from suspicion_support import (
    CPAM_13,
    CPAM_75,
    MEMBERS,
    MUT_A,
    NOW,
    TOKEN_B1,
    TOKEN_B2,
    draft_values,
)

from gateway.crypto import Envelope, Rekeyer
from gateway.domain.suspicions import (
    MaySee,
    RelationFacts,
    Suspicion,
    apply_transition,
    create_suspicion,
    declare_coverage,
    get_suspicion,
    list_suspicions,
    parse_suspicion_draft,
    relation_facts,
)
from gateway.errors import InvalidArgumentError
from gateway.store import Database, Member
from gateway.store._suspicions import decode_cursor
from policy import AccessRequest, PolicyEngine, Principal, Resource


def _may_see(engine: PolicyEngine, member: Member) -> MaySee:
    def decide(s: Suspicion, facts: RelationFacts) -> bool:
        request = AccessRequest(
            principal=Principal(member_id=member.member_id, kind=member.kind, roles=member.roles),
            action="ListSuspicions",
            purpose="control",
            resource=Resource(
                type="suspicion", id=s.id, attributes={**s.policy_attributes(), **facts}
            ),
        )
        return engine.decide(request).allowed

    return decide


@pytest.fixture
def population(
    database: Database, rekeyer: Rekeyer, envelope: Envelope, engine: PolicyEngine
) -> list[str]:
    """Twelve suspicions by three submitters, some qualified (and shared), two at one instant."""
    b1, b2 = rekeyer.rekey(TOKEN_B1), rekeyer.rekey(TOKEN_B2)

    def run(session: Session) -> list[str]:
        declare_coverage(session, "mut-a", [b1], NOW)
        declare_coverage(session, "mut-c", [b2], NOW)
        declare_coverage(session, "cpam-13", [b2], NOW)
        ids = []
        plan = [CPAM_75, MUT_A, CPAM_13] * 4
        for i, by in enumerate(plan):
            token = TOKEN_B1 if i % 2 else TOKEN_B2
            draft = parse_suspicion_draft(
                draft_values(
                    subject={"beneficiary_token": token},
                    sector=("optique", "audio", "dentaire")[i % 3],
                    act_grouping_codes=[],
                    act_codes=[],
                )
            )
            at = NOW + timedelta(minutes=i if i != 5 else 4)  # 4 and 5 share an instant
            s = create_suspicion(session, draft, by, rekeyer, envelope, at)
            if i % 4 != 3:
                apply_transition(
                    session, s.id, "qualified", by, None, engine=engine, members=MEMBERS,
                    envelope=envelope, now=at,
                )  # fmt: skip
            ids.append(s.id)
        return ids

    return database.run_sync(run)


def _truth(database: Database, ids: list[str], member: Member, may_see: MaySee) -> list[str]:
    def run(session: Session) -> list[Suspicion]:
        items = [get_suspicion(session, i) for i in ids]
        return [s for s in items if may_see(s, relation_facts(session, s, member.member_id))]

    visible = database.run_sync(run)
    return [s.id for s in sorted(visible, key=lambda s: (s.created_at, s.id), reverse=True)]


@pytest.mark.parametrize("member", MEMBERS, ids=[m.member_id for m in MEMBERS])
@pytest.mark.parametrize("related_only", [True, False])
def test_pages_cover_exactly_what_the_policy_allows_in_a_stable_order(
    database: Database,
    engine: PolicyEngine,
    population: list[str],
    member: Member,
    related_only: bool,
) -> None:
    may_see = _may_see(engine, member)
    truth = _truth(database, population, member, may_see)
    for size in (1, 2, 5, 0):
        seen: list[str] = []
        token = ""
        while True:
            items, token = database.run_sync(
                lambda s, t=token, n=size: list_suspicions(
                    s, member.member_id, may_see=may_see, page_size=n, page_token=t,
                    related_only=related_only,
                )
            )  # fmt: skip
            seen.extend(s.id for s in items)
            if token:
                cursor = decode_cursor(token)
                assert cursor is not None and cursor["i"] in truth  # a token names seen items only
                assert items  # never an empty page with a "more" hint
            else:
                break
        assert seen == truth


def test_filters_and_bad_requests(
    database: Database, engine: PolicyEngine, population: list[str]
) -> None:
    may_see = _may_see(engine, CPAM_75)

    def listing(**kw: object) -> list[Suspicion]:
        return database.run_sync(
            lambda s: list_suspicions(s, "cpam-75", may_see=may_see, **kw)  # type: ignore[arg-type]
        )[0]

    own = listing()
    assert own and all(s.submitter_member == "cpam-75" for s in own)
    assert {s.sector for s in listing(sector="optique")} == {"optique"}
    assert {s.status for s in listing(statuses=["submitted"])} <= {"submitted"}
    assert all(
        s.created_at >= NOW + timedelta(minutes=6)
        for s in listing(created_from=NOW + timedelta(minutes=6))
    )
    _, token = database.run_sync(
        lambda s: list_suspicions(s, "cpam-75", may_see=may_see, page_size=1)
    )
    assert token
    for kw, field in (
        ({"page_size": -1}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"sector": "pharmacie"}, "sector"),
        ({"statuses": ["archived"]}, "status"),
        ({"page_token": "not-a-token!"}, "page_token"),
        ({"page_token": token, "sector": "audio"}, "page_token"),  # other filters
    ):
        with pytest.raises(InvalidArgumentError) as info:
            listing(**kw)
        assert [v.field for v in info.value.violations] == [field]
    with pytest.raises(InvalidArgumentError):  # another member's token
        database.run_sync(
            lambda s: list_suspicions(
                s, "mut-a", may_see=_may_see(engine, MUT_A), page_size=1, page_token=token
            )
        )
