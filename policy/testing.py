"""Policy tests: run a bundle's ``tests.yaml`` table and check the bundle's invariants.

Used three ways: by the test suite (``tests/policy``), by ``vigie policy test BUNDLE`` (the CLI
calls :func:`main`), and by reviewers changing a bundle. A change to a bundle that breaks a case
or an invariant makes :func:`main` return 1, which fails CI.

Invariants (named in ``bundle.yaml`` under ``invariants:``; see :data:`INVARIANT_CHECKS`):

- ``view_within_declared``: an allowed decision's view is a subset of the bundle's declared view
  for (resource type, principal kind, purpose); a denied decision's view is empty.
- ``amc_need_to_know``: an AMC is allowed on a suspicion only with a need-to-know relation
  (covers the beneficiary, paid the provider, submitted or received it), never on another AMC's
  submission, and never on another AMC's journaled access.
- ``amc_to_amo_closed`` (CSS L.114-9 in force): no AMC creates a suspicion, nobody acts on an
  AMC-submitted suspicion, and no AMO receives an alert derived from AMC data.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policy import BundleError, PolicyEngine, bundle_path
from policy._bundle import TESTS_FILE, describe_validation_error
from policy._model import (
    ACTIONS,
    KINDS,
    PURPOSES,
    RELATION_FACTS,
    RESOURCE_TYPES,
    ROLES,
    STATUSES,
    AccessRequest,
    Decision,
)

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "INVARIANT_CHECKS",
    "CaseResult",
    "PolicyCase",
    "access_requests",
    "amc_need_to_know",
    "amc_to_amo_closed",
    "check_invariants",
    "load_cases",
    "main",
    "run_bundle_tests",
    "view_within_declared",
]

_DECL = ConfigDict(frozen=True, extra="forbid")


class PolicyCase(BaseModel):
    """One named case of a bundle's ``tests.yaml``."""

    model_config = _DECL

    name: str = Field(min_length=1)
    description: str = ""
    principal: dict[str, Any]
    action: str
    purpose: str
    resource: dict[str, Any]
    expect: Literal["allow", "deny"]
    #: a rule id that must be among the decision's rule ids
    rule: str = Field(min_length=1)
    view_includes: tuple[str, ...] = ()
    view_excludes: tuple[str, ...] = ()

    def request(self) -> AccessRequest:
        """The access request this case describes (YAML lists become frozensets)."""
        return AccessRequest.model_validate(
            {
                "principal": self.principal,
                "action": self.action,
                "purpose": self.purpose,
                "resource": self.resource,
            },
            strict=False,
        )


class _CaseFile(BaseModel):
    model_config = _DECL

    definitions: Any = None  # free-form: a place for YAML anchors
    cases: tuple[PolicyCase, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case: the decision and what (if anything) did not match."""

    case: PolicyCase
    decision: Decision | None
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


# ---- invariants ---------------------------------------------------------------------------


def view_within_declared(
    engine: PolicyEngine, request: AccessRequest, decision: Decision
) -> list[str]:
    """Problems with the decision's view (empty list when the invariant holds)."""
    if not decision.allowed:
        return ["denied decision carries a non-empty view"] if decision.view else []
    r = request.resource
    view_type = r.id if r.type == "collection" else r.type
    declared = engine.view(view_type, request.principal.kind, request.purpose)
    extra = sorted(decision.view - declared)
    return [f"view has fields outside the declared view: {extra}"] if extra else []


def amc_need_to_know(engine: PolicyEngine, request: AccessRequest, decision: Decision) -> list[str]:
    """Problems with AMC need-to-know (empty list when the invariant holds)."""
    del engine
    p, r = request.principal, request.resource
    if not decision.allowed or p.kind != "AMC":
        return []
    a = r.attributes
    if r.type == "suspicion":
        if a.get("submitter_kind") == "AMC" and a.get("principal_is_submitter") is not True:
            return ["AMC allowed on another AMC's suspicion"]
        if request.action != "CreateSuspicion" and not any(
            a.get(f) is True
            for f in (
                "principal_covers_beneficiary",
                "principal_paid_provider",
                "principal_is_submitter",
                "principal_is_recipient",
            )
        ):
            return ["AMC allowed on a suspicion without a need-to-know relation"]
    if (
        r.type == "journal_event"
        and a.get("actor_kind") == "AMC"
        and a.get("principal_is_actor") is not True
    ):
        return ["AMC allowed to see another AMC's journaled access"]
    return []


def amc_to_amo_closed(
    engine: PolicyEngine, request: AccessRequest, decision: Decision
) -> list[str]:
    """Problems with the one-way rule of CSS L.114-9 (empty list when it holds)."""
    del engine
    p, r = request.principal, request.resource
    if not decision.allowed:
        return []
    if p.kind == "AMC" and request.action == "CreateSuspicion":
        return ["AMC allowed to create a suspicion"]
    if r.type == "suspicion" and r.attributes.get("submitter_kind") == "AMC":
        return ["allowed on an AMC-submitted suspicion"]
    if p.kind == "AMO" and r.type == "alert" and r.attributes.get("derived_from_amc_data") is True:
        return ["AMO allowed an alert derived from AMC data"]
    return []


InvariantCheck = Callable[[PolicyEngine, AccessRequest, Decision], list[str]]

#: Invariant name (as written in bundle.yaml) -> check.
INVARIANT_CHECKS: dict[str, InvariantCheck] = {
    "view_within_declared": view_within_declared,
    "amc_need_to_know": amc_need_to_know,
    "amc_to_amo_closed": amc_to_amo_closed,
}


def check_invariants(engine: PolicyEngine, request: AccessRequest, decision: Decision) -> list[str]:
    """Run every invariant the engine's bundle promises; return the problems found."""
    problems: list[str] = []
    for name in engine.bundle.manifest.invariants:
        problems.extend(f"{name}: {p}" for p in INVARIANT_CHECKS[name](engine, request, decision))
    return problems


# ---- the table ------------------------------------------------------------------------------


def load_cases(path: Path) -> tuple[PolicyCase, ...]:
    """Read the ``tests.yaml`` of the bundle folder ``path``.

    Raises:
        BundleError: the file is missing, not YAML, or a case is malformed.
    """
    file = path / TESTS_FILE
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise BundleError("required file is missing", bundle=path.name, file=TESTS_FILE) from e
    except yaml.YAMLError as e:
        raise BundleError(f"invalid YAML: {e}", bundle=path.name, file=TESTS_FILE) from e
    try:
        cases = _CaseFile.model_validate(data).cases
    except ValidationError as e:
        raise BundleError(describe_validation_error(e), bundle=path.name, file=TESTS_FILE) from e
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise BundleError("duplicate case name", bundle=path.name, file=TESTS_FILE)
    return cases


def _run_case(engine: PolicyEngine, case: PolicyCase) -> CaseResult:
    try:
        request = case.request()
    except ValidationError as e:
        return CaseResult(case, None, (f"malformed request: {e.error_count()} error(s)",))
    decision = engine.decide(request)
    problems: list[str] = []
    if decision.allowed != (case.expect == "allow"):
        problems.append(f"expected {case.expect}, got {'allow' if decision.allowed else 'deny'}")
    if case.rule not in decision.rule_ids:
        problems.append(f"expected rule {case.rule!r} among {list(decision.rule_ids)}")
    missing = sorted(set(case.view_includes) - decision.view)
    if missing:
        problems.append(f"view lacks {missing}")
    leaked = sorted(set(case.view_excludes) & decision.view)
    if leaked:
        problems.append(f"view includes excluded {leaked}")
    problems.extend(check_invariants(engine, request, decision))
    return CaseResult(case, decision, tuple(problems))


def run_bundle_tests(engine: PolicyEngine) -> list[CaseResult]:
    """Run every case of the engine's bundle ``tests.yaml``, in file order.

    Raises:
        BundleError: ``tests.yaml`` is missing or malformed.
    """
    return [_run_case(engine, case) for case in load_cases(engine.bundle.path)]


# ---- generated requests (hypothesis) --------------------------------------------------------


def access_requests() -> SearchStrategy[AccessRequest]:
    """A hypothesis strategy of access requests, well-formed or not, over the vocabulary.

    Unknown actions and purposes, wrong resource types for an action and missing attributes
    are all generated: the engine must deny them, never raise. Requires ``hypothesis``.
    """
    from hypothesis import strategies as st  # test-only dependency, imported on use

    members = st.sampled_from(["cpam-75", "cpam-13", "mutuelle-a", "mutuelle-b"])
    kinds = st.sampled_from(sorted(KINDS))
    sectors = st.sampled_from(["optique", "audio", "dentaire"])
    own_attrs: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "suspicion": st.fixed_dictionaries(
            {
                "submitter_member": members,
                "submitter_kind": kinds,
                "status": st.sampled_from(STATUSES),
                "sector": sectors,
                "estimated_amount_cents": st.integers(0, 10**9),
            }
        ),
        "alert": st.fixed_dictionaries(
            {
                "sector": sectors,
                "level": st.sampled_from(["none", "low", "medium", "high"]),
                "derived_from_amc_data": st.booleans(),
            }
        ),
        "claim_batch": st.fixed_dictionaries({"claim_side": kinds}),
        "claim_check": st.fixed_dictionaries({"claim_side": kinds, "sector": sectors}),
        "journal_event": st.fixed_dictionaries({"actor_kind": kinds}),
    }

    @st.composite
    def build(draw: st.DrawFn) -> AccessRequest:
        rtype = draw(st.sampled_from(sorted(RESOURCE_TYPES)))
        attrs = dict(draw(own_attrs[rtype])) if rtype in own_attrs else {}
        if attrs and draw(st.integers(0, 19)) == 0:
            attrs.pop(draw(st.sampled_from(sorted(attrs))))  # sometimes malformed
        facts = draw(
            st.fixed_dictionaries({}, optional=dict.fromkeys(RELATION_FACTS, st.booleans()))
        )
        attrs.update(facts)
        member = draw(members)
        if rtype == "collection":
            rid = draw(st.sampled_from(["suspicion", "alert", "member", "journal_event"]))
        elif rtype == "member":
            rid = draw(st.one_of(st.just(member), members))
        else:
            rid = draw(st.sampled_from(["r-1", "r-2"]))
        return AccessRequest.model_validate(
            {
                "principal": {
                    "member_id": member,
                    "kind": draw(kinds),
                    "roles": draw(st.frozensets(st.sampled_from(sorted(ROLES)), max_size=4)),
                },
                "action": draw(st.sampled_from([*sorted(ACTIONS), "DeleteEverything"])),
                "purpose": draw(st.sampled_from([*sorted(PURPOSES), "pricing", "premiums"])),
                "resource": {"type": rtype, "id": rid, "attributes": attrs},
            },
            strict=False,
        )

    return build()


# ---- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``vigie policy test BUNDLE``: run the bundle's table, print it, return 0 if all pass.

    ``BUNDLE`` is a shipped bundle name (``current-law``) or a bundle folder.
    """
    from rich.console import Console
    from rich.table import Table

    args = list(sys.argv[1:] if argv is None else argv)
    console = Console(width=None if sys.stdout.isatty() else 140)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        console.print("usage: vigie policy test BUNDLE  (a shipped bundle name or a folder)")
        return 1
    try:
        engine = PolicyEngine.load(bundle_path(args[0]))
        results = run_bundle_tests(engine)
    except BundleError as e:
        console.print(f"[bold red]bundle error:[/] {e}", markup=True, highlight=False)
        return 1
    m = engine.bundle.manifest
    table = Table(title=f"{m.name} {m.version} ({m.status}) sha256 {engine.bundle_hash[:16]}")
    table.add_column("case", overflow="fold", ratio=4)
    table.add_column("expected", overflow="fold", ratio=2)
    table.add_column("got", overflow="fold", ratio=2)
    table.add_column("result", overflow="fold", ratio=2)
    for res in results:
        d = res.decision
        got = "-" if d is None else f"{'allow' if d.allowed else 'deny'}: {', '.join(d.rule_ids)}"
        table.add_row(
            f"{res.case.name}\n[dim]{res.case.action} / {res.case.purpose}[/]",
            f"{res.case.expect}: {res.case.rule}",
            got,
            "[green]ok[/]" if res.passed else "[red]FAIL[/] " + "; ".join(res.problems),
        )
    console.print(table)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
