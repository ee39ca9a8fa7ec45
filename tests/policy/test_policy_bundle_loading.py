"""A bundle loads only when every file is present, well-formed and consistent; the content hash
names the exact bytes; a change that breaks a case makes the runner fail."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from policy import BundleError, PolicyEngine, bundle_content_hash, bundle_path
from policy.testing import main, run_bundle_tests


def _edit(name: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        file = folder / name
        text = file.read_text(encoding="utf-8")
        assert old in text, f"fixture drift: {old!r} not in {name}"
        file.write_text(text.replace(old, new, 1), encoding="utf-8")

    return apply


def _remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


BROKEN = {
    "missing-policies-file": (
        _remove("policies.cedar"),
        "policies.cedar: required file is missing",
    ),
    "missing-schema-file": (_remove("schema.cedarschema"), "schema.cedarschema: required file"),
    "missing-tests-file": (_remove("tests.yaml"), "tests.yaml: required file is missing"),
    "missing-manifest": (_remove("bundle.yaml"), "bundle.yaml: required file is missing"),
    "cedar-syntax-error": (
        _edit(
            "policies.cedar", 'permit (principal, action == Action::"GetSelf"', "permit (principal,"
        ),
        "Cedar parse error",
    ),
    "rule-uses-undeclared-attribute": (
        _edit("policies.cedar", "resource.derived_from_amc_data", "resource.derived_from_amc"),
        "schema validation failed: [common-no-amc-data-in-amo-alerts]",
    ),
    "rule-compares-string-to-number": (
        _edit("policies.cedar", 'resource.status == "submitted"', "resource.status == 1"),
        "schema validation failed: [cl-amo-create-suspicion]",
    ),
    "rule-without-legal-ref": (
        _edit(
            "policies.cedar",
            '@legal_ref("RGPD art. 32 (access control): '
            'a member may read its own registry entry")\n',
            "",
        ),
        "lacks @id or @legal_ref",
    ),
    "duplicate-rule-id": (
        _edit("policies.cedar", '@id("common-list-members")', '@id("common-get-self")'),
        "rule id 'common-get-self' is duplicated",
    ),
    "reserved-rule-id": (
        _edit("policies.cedar", '@id("common-list-members")', '@id("default-deny")'),
        "is duplicated or reserved",
    ),
    "schema-lacks-an-action": (
        _edit("schema.cedarschema", "action ExportJournal", "action ExportJournalX"),
        "schema does not declare action 'ExportJournal'",
    ),
    "schema-syntax-error": (
        _edit("schema.cedarschema", "entity Journal;", "entity Journal"),
        "invalid Cedar schema",
    ),
    "manifest-invalid-yaml": (
        _edit("bundle.yaml", "name: current-law", "name: [current-law"),
        "bundle.yaml: invalid YAML",
    ),
    "manifest-forbidden-purpose": (
        _edit("bundle.yaml", "  - name: operations\n", "  - name: pricing\n"),
        "unknown purpose(s) ['pricing']",
    ),
    "manifest-missing-retention-category": (
        _edit("bundle.yaml", "  presumed_fraudster_list:", "  presumed_fraudster_listing:"),
        "retention: missing ['presumed_fraudster_list'], unknown ['presumed_fraudster_listing']",
    ),
    "manifest-negative-retention": (
        _edit("bundle.yaml", "access_logs: {days: 365", "access_logs: {days: -1"),
        "field 'retention.access_logs.days'",
    ),
    "manifest-unknown-threshold-status": (
        _edit("bundle.yaml", "min_status: qualified", "min_status: closed"),
        "field 'sharing_threshold.min_status'",
    ),
    "manifest-unknown-recipient-kind": (
        _edit("bundle.yaml", "    AMC: {operations: *member}", "    AMX: {operations: *member}"),
        "views.member: unknown recipient kind 'AMX'",
    ),
    "manifest-view-for-undeclared-purpose": (
        _edit("bundle.yaml", "  - name: complaint\n", "  - name: complaint_x\n"),
        "unknown purpose(s) ['complaint_x']",
    ),
    "manifest-unknown-field": (
        _edit("bundle.yaml", "status: in_force", "state: in_force"),
        "field 'state'",
    ),
    "manifest-name-mismatch": (
        _edit("bundle.yaml", "name: current-law", "name: other-law"),
        "does not match the bundle folder name",
    ),
    "manifest-unknown-invariant": (
        _edit("bundle.yaml", "invariants: [", "invariants: [always_allow, "),
        "unknown invariant(s) ['always_allow']",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_broken_bundle_fails_load_with_precise_error(bundle_copy: Path, breakage: str) -> None:
    mutate, message = BROKEN[breakage]
    mutate(bundle_copy)
    with pytest.raises(BundleError) as info:
        PolicyEngine.load(bundle_copy)
    assert message in str(info.value)


def test_missing_folder_fails_load(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="bundle folder does not exist"):
        PolicyEngine.load(tmp_path / "nowhere")


def test_unknown_bundle_name_is_rejected() -> None:
    with pytest.raises(BundleError, match="unknown bundle"):
        bundle_path("next-year-law")


def test_bundle_path_accepts_a_folder(bundle_copy: Path) -> None:
    assert bundle_path(str(bundle_copy)) == bundle_copy


def test_content_hash_is_independent_of_location(bundle_copy: Path) -> None:
    assert bundle_content_hash(bundle_copy) == bundle_content_hash(bundle_path("current-law"))
    assert PolicyEngine.load(bundle_copy).bundle_hash == bundle_content_hash(bundle_copy)


@pytest.mark.parametrize(
    "name", ["bundle.yaml", "policies.cedar", "schema.cedarschema", "tests.yaml"]
)
def test_content_hash_changes_when_any_file_changes(bundle_copy: Path, name: str) -> None:
    before = bundle_content_hash(bundle_copy)
    with (bundle_copy / name).open("ab") as f:
        f.write(b"\n")
    assert bundle_content_hash(bundle_copy) != before


def test_content_hash_changes_when_a_file_is_added_or_renamed(bundle_copy: Path) -> None:
    before = bundle_content_hash(bundle_copy)
    (bundle_copy / "NOTES.md").write_text("review notes\n")
    added = bundle_content_hash(bundle_copy)
    assert added != before
    (bundle_copy / "NOTES.md").rename(bundle_copy / "NOTES2.md")
    assert bundle_content_hash(bundle_copy) not in (before, added)


def test_content_hash_is_sha256_hex(engines: dict[str, PolicyEngine]) -> None:
    for engine in engines.values():
        assert re.fullmatch(r"[0-9a-f]{64}", engine.bundle_hash)
        assert engine.bundle_hash == bundle_content_hash(bundle_path(engine.bundle_name))


def test_rule_change_that_breaks_a_case_makes_the_runner_fail(bundle_copy: Path) -> None:
    # Widen L.114-9 to AMCs that merely paid the provider: the table must catch it.
    _edit(
        "policies.cedar",
        "(context.sharing_threshold_met && context.principal_covers_beneficiary))",
        "(context.sharing_threshold_met && (context.principal_covers_beneficiary ||"
        " context.principal_paid_provider)))",
    )(bundle_copy)
    results = run_bundle_tests(PolicyEngine.load(bundle_copy))
    failed = [r.case.name for r in results if not r.passed]
    assert failed == ["amc-that-only-paid-the-provider-is-not-the-insureds-amc"]
    assert main([str(bundle_copy)]) == 1


def test_view_change_that_leaks_free_text_makes_the_runner_fail(bundle_copy: Path) -> None:
    _edit(
        "bundle.yaml",
        "[id, status, sector, fraud_type, subject_beneficiary, subject_provider_rpps,\n"
        "         subject_provider_am_number, subject_provider_finess, submitter_member,",
        "[id, status, sector, fraud_type, subject_beneficiary, subject_provider_rpps,\n"
        "         subject_provider_am_number, subject_provider_finess, submitter_member,"
        " facts_summary,",
    )(bundle_copy)
    results = run_bundle_tests(PolicyEngine.load(bundle_copy))
    failed = {r.case.name for r in results if not r.passed}
    assert "amc-of-the-insured-informed-once-qualified" in failed


def test_broken_invariant_is_reported_even_when_the_table_agrees(bundle_copy: Path) -> None:
    # A bundle that lets AMCs report to AMOs while promising amc_to_amo_closed must fail,
    # even if someone also "fixed" the table's expectation.
    _edit(
        "policies.cedar",
        '@id("cl-no-amc-to-amo-report")',
        '@id("cl-no-amc-to-amo-report")\n'
        '@legal_ref("x")\npermit (principal, action == Action::"CreateSuspicion", resource);\n'
        '@id("disabled")',
    )(bundle_copy)
    _edit(
        "policies.cedar",
        'forbid (principal, action == Action::"CreateSuspicion", resource)\n'
        'when { principal.kind == "AMC" };',
        "forbid (principal, action, resource) when { false };",
    )(bundle_copy)
    _edit(
        "policies.cedar",
        "forbid (principal, action, resource is Suspicion)\n"
        'when { resource.submitter_kind == "AMC" };',
        "forbid (principal, action, resource) when { false };",
    )(bundle_copy)
    _edit(
        "tests.yaml",
        "action: CreateSuspicion, purpose: control, resource: *amc_susp_new_own,"
        " expect: deny,\n     rule: cl-no-amc-to-amo-report}",
        "action: CreateSuspicion, purpose: control, resource: *amc_susp_new_own,"
        " expect: allow,\n     rule: cl-no-amc-to-amo-report}",
    )(bundle_copy)
    results = {r.case.name: r for r in run_bundle_tests(PolicyEngine.load(bundle_copy))}
    problems = results["amc-report-to-amo-closed-under-l114-9"].problems
    assert any(p.startswith("amc_to_amo_closed:") for p in problems)


def test_malformed_case_file_is_a_bundle_error(bundle_copy: Path) -> None:
    _edit("tests.yaml", "expect: allow", "expect: maybe")(bundle_copy)
    with pytest.raises(BundleError, match=r"tests\.yaml"):
        run_bundle_tests(PolicyEngine.load(bundle_copy))
    assert main([str(bundle_copy)]) == 1


@pytest.mark.parametrize("name", ["current-law", "fraud-bill-2025"])
def test_cli_runner_passes_on_shipped_bundles(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([name]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out


def test_cli_runner_reports_bad_usage_and_bad_bundle(tmp_path: Path) -> None:
    assert main([]) == 1
    assert main(["no-such-bundle"]) == 1
    shutil.copytree(bundle_path("current-law"), tmp_path / "current-law")
    (tmp_path / "current-law" / "policies.cedar").write_text("permit(")
    assert main([str(tmp_path / "current-law")]) == 1
