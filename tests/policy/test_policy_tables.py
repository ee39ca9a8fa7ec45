"""Each bundle's named policy test table passes, case by case, and covers every rule."""

from __future__ import annotations

import pytest

from policy import BUNDLED, PolicyEngine, bundle_path
from policy.testing import CaseResult, load_cases, run_bundle_tests

CASES = [(name, case.name) for name in BUNDLED for case in load_cases(bundle_path(name))]


@pytest.fixture(scope="session")
def table_results(engines: dict[str, PolicyEngine]) -> dict[tuple[str, str], CaseResult]:
    return {
        (name, r.case.name): r for name, engine in engines.items() for r in run_bundle_tests(engine)
    }


@pytest.mark.parametrize(("bundle", "case_name"), CASES, ids=[f"{b}:{c}" for b, c in CASES])
def test_policy_table_case(
    table_results: dict[tuple[str, str], CaseResult], bundle: str, case_name: str
) -> None:
    result = table_results[(bundle, case_name)]
    assert result.passed, result.problems


@pytest.mark.parametrize("bundle", BUNDLED)
def test_every_rule_is_named_by_at_least_one_case(
    engines: dict[str, PolicyEngine], bundle: str
) -> None:
    engine = engines[bundle]
    expected_rules = {c.rule for c in load_cases(engine.bundle.path)}
    untested = sorted(set(engine.bundle.legal_refs) - expected_rules)
    assert not untested, f"rules without a test case: {untested}"


@pytest.mark.parametrize("bundle", BUNDLED)
def test_tables_cover_every_action(engines: dict[str, PolicyEngine], bundle: str) -> None:
    from policy import ACTIONS

    actions = {c.action for c in load_cases(engines[bundle].bundle.path)}
    assert not sorted(ACTIONS - actions)
