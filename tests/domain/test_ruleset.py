"""The versioned rule set: content hash of the exact bytes, schema checks, alert levels."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from gateway.domain import InMemoryHistory, default_ruleset, load_ruleset, score_claim
from gateway.errors import InvalidArgumentError

from .factories import MUT_A, TODAY, rec

SHIPPED = resources.files("gateway.domain.scoring").joinpath("rulesets/v1.yaml").read_bytes()
FRAUD_PATTERNS = {
    "phantom_complement", "amount_mismatch", "early_renewal", "prescription_invalid",
    "price_above_cap", "double_billing_amc", "duplicate_item", "no_followup",
    "implausible_demography", "provider_volume_outlier", "class_shift",
}  # fmt: skip


def test_hash_is_sha256_of_the_file_bytes() -> None:
    ruleset = default_ruleset()
    assert ruleset.sha256 == hashlib.sha256(SHIPPED).hexdigest()
    assert ruleset.version == "v1"


def test_any_byte_change_changes_the_hash() -> None:
    edited = load_ruleset(SHIPPED + b"\n# comment\n")
    assert edited.sha256 != default_ruleset().sha256
    assert edited.rules == default_ruleset().rules


def test_score_records_the_ruleset_version_and_hash() -> None:
    edited = load_ruleset(SHIPPED.replace(b'version: "v1"', b'version: "v1-test"'))
    target = rec(MUT_A)
    score = score_claim(target.line, InMemoryHistory([target]), edited, TODAY, member=MUT_A)
    assert (score.ruleset_version, score.ruleset_hash) == ("v1-test", edited.sha256)


def test_weights_and_thresholds_are_configuration() -> None:
    target = rec(MUT_A)  # phantom complement
    hist = InMemoryHistory([target])
    silenced = load_ruleset(
        SHIPPED.replace(
            b"code: PHANTOM_COMPLEMENT\n    fraud_pattern: phantom_complement\n    weight: 0.9",
            b"code: PHANTOM_COMPLEMENT\n    fraud_pattern: phantom_complement\n    weight: 0.0",
        )
    )
    assert score_claim(target.line, hist, default_ruleset(), TODAY, member=MUT_A).score > 0
    assert score_claim(target.line, hist, silenced, TODAY, member=MUT_A).score == 0


def test_every_fraud_pattern_that_a_rule_can_see_has_a_reason_code() -> None:
    patterns = set(default_ruleset().fraud_patterns().values())
    assert patterns >= FRAUD_PATTERNS


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"version: [unclosed", "ruleset"),
        (b"- a list", "ruleset"),
        (SHIPPED.replace(b"weight: 0.9\n    grace_days", b"weight: 1.5\n    grace_days"),
         "ruleset.rules.phantom_complement.weight"),
        (SHIPPED.replace(b"  low: 20", b"  low: 90"), "ruleset.alert_levels"),
        (SHIPPED.replace(b"grace_days: 0", b"grace_days: '0'"),
         "ruleset.rules.phantom_complement.grace_days"),
        (SHIPPED + b"\nsurprise: 1\n", "ruleset.surprise"),
    ],
)  # fmt: skip
def test_invalid_rule_sets_are_refused_with_the_setting_path(data: bytes, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        load_ruleset(data)
    assert info.value.violations[0].field == field
