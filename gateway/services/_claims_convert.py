"""Protobuf <-> domain for ClaimService. Generated types stop here (and in the servicer).

- Claim lines: :func:`line_to_mapping` turns a ``vigie.v1.ClaimLine`` into the raw mapping the
  domain validates (:func:`gateway.domain.parse_claim_line`), so every rule and its message live
  in one place (the client side's inverse is ``gateway.client.claim_line_from_mapping``).
- Answers: upload progress, the pre-payment check and alerts, each minimised by the policy
  decision's view (bundle ``views``): a field whose view name is absent is left unset.
  View names: ``id`` (name), ``own_reference`` (member_reference), ``sector``, ``care_date``,
  ``score``, ``level``, ``reason_codes`` (the reasons: code, explanation and contribution),
  ``scoring_version`` (rule set version and hash), ``created_at``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from google.type import date_pb2  # type: ignore[import-untyped]  # no stubs shipped

from gateway._proto.vigie.v1 import claims_pb2, common_pb2
from gateway.domain import CLAIM_FIELDS, AlertLevel, Reason, Score
from gateway.domain.ingestion import BatchProgress, BatchReport, LineRejection
from gateway.errors import FieldViolation, InvalidArgumentError
from gateway.server import Decision
from gateway.services._convert import sector_from_pb, sector_to_pb
from gateway.store._claims import StoredAlert

__all__ = [
    "LEVELS",
    "alert_attributes",
    "alert_name",
    "alert_to_pb",
    "check_response",
    "level_from_pb",
    "line_to_mapping",
    "mode_from_pb",
    "parse_alert_name",
    "prefixed",
    "progress_to_pb",
    "side_from_pb",
    "side_to_pb",
    "time_range",
]

_SIDES: Final = {claims_pb2.CLAIM_SIDE_AMO: "AMO", claims_pb2.CLAIM_SIDE_AMC: "AMC"}
_MODES: Final = {
    claims_pb2.UPLOAD_MODE_ALL_OR_NOTHING: "all_or_nothing",
    claims_pb2.UPLOAD_MODE_PER_LINE: "per_line",
}
LEVELS: Final[Mapping[AlertLevel, common_pb2.AlertLevel]] = {
    "none": common_pb2.ALERT_LEVEL_NONE,
    "low": common_pb2.ALERT_LEVEL_LOW,
    "medium": common_pb2.ALERT_LEVEL_MEDIUM,
    "high": common_pb2.ALERT_LEVEL_HIGH,
}
_BAD_ENUM: Final = "?"  # an enum number outside the contract: the domain names the rule
_BAD_DATE: Final = "not-a-date"
_ALERT_NAME = re.compile(r"alerts/(al_[a-z2-7]{26})")
_STRINGS: Final = ("member_reference", "beneficiary_token", "provider_rpps",
                   "provider_am_number", "provider_finess", "prescriber_rpps",
                   "prescriber_specialty", "act_code", "grouping_code", "product_class",
                   "laterality", "amo_claim_number", "amc_reference")  # fmt: skip
_INTS: Final = ("birth_year", "tooth", "quantity", "unit_price_cents", "amount_billed_cents",
                "amo_base_cents", "amo_paid_cents", "amc_paid_cents")  # fmt: skip
_ENUMS_AND_DATES: Final = ("side", "sector", "care_date", "prescription_date")
if set(_STRINGS + _INTS + _ENUMS_AND_DATES) != set(CLAIM_FIELDS):  # pragma: no cover
    raise RuntimeError("the claim line's field list changed: update _claims_convert")


def side_from_pb(value: int) -> str | None:
    """``"AMO"``/``"AMC"``; ``None`` when unset or unknown."""
    return next((v for k, v in _SIDES.items() if k == value), None)


def side_to_pb(side: str) -> claims_pb2.ClaimSide:
    return next(k for k, v in _SIDES.items() if v == side)


def mode_from_pb(value: int) -> str | None:
    """``"all_or_nothing"``/``"per_line"``; ``None`` when unset or unknown."""
    return next((v for k, v in _MODES.items() if k == value), None)


def level_from_pb(value: int) -> AlertLevel | None:
    """The domain level of an ``AlertLevel``; ``None`` for UNSPECIFIED.

    Raises:
        InvalidArgumentError: a number outside the enum.
    """
    if value == common_pb2.ALERT_LEVEL_UNSPECIFIED:
        return None
    for name, number in LEVELS.items():
        if number == value:
            return name
    raise InvalidArgumentError.for_field("minimum_alert_level", "not a known alert level")


def _date(value: date_pb2.Date) -> date | str | None:
    if value.year == 0 and value.month == 0 and value.day == 0:
        return None
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        return _BAD_DATE  # the domain answers "must be an ISO date YYYY-MM-DD"


def line_to_mapping(pb: claims_pb2.ClaimLine) -> dict[str, object]:
    """The raw mapping of one proto line, for the domain's validation (no rule is checked here).

    Unset enums become ``""`` (the domain says "required"), numbers outside an enum a value no
    rule accepts; an unset date is ``None`` and an impossible one a string the date rule refuses.
    """
    values: dict[str, object] = {name: getattr(pb, name) for name in _STRINGS}
    for name in _INTS:
        values[name] = getattr(pb, name)
    side = side_from_pb(pb.side)
    values["side"] = side if side is not None else ("" if pb.side == 0 else _BAD_ENUM)
    sector = sector_from_pb(pb.sector)
    values["sector"] = sector if sector is not None else ("" if pb.sector == 0 else _BAD_ENUM)
    values["care_date"] = _date(pb.care_date) if pb.HasField("care_date") else None
    values["prescription_date"] = (
        _date(pb.prescription_date) if pb.HasField("prescription_date") else None
    )
    return values


def prefixed(error: InvalidArgumentError, prefix: str) -> InvalidArgumentError:
    """The same refusal with every field path under ``prefix`` (e.g. ``claim_line.``)."""
    violations = [
        v if v.field.startswith(prefix) else FieldViolation(prefix + v.field, v.description)
        for v in error.violations
    ]
    fields = ", ".join(dict.fromkeys(v.field for v in violations))
    return InvalidArgumentError(f"invalid claim line: {fields}", violations)


def _rejection(r: LineRejection) -> claims_pb2.LineRejection:
    return claims_pb2.LineRejection(
        line_index=r.index,
        member_reference=r.member_reference,
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in r.violations
        ],
    )


def progress_to_pb(
    progress: BatchProgress | BatchReport,
    rejections: Iterable[LineRejection] = (),
    *,
    final: bool = False,
) -> claims_pb2.UploadClaimsResponse:
    """A progress message (``final``: the summary, with the outcome of a report)."""
    outcome = claims_pb2.UPLOAD_OUTCOME_UNSPECIFIED
    if final and isinstance(progress, BatchReport):
        outcome = (
            claims_pb2.UPLOAD_OUTCOME_COMMITTED
            if progress.outcome == "committed"
            else claims_pb2.UPLOAD_OUTCOME_ROLLED_BACK
        )
    return claims_pb2.UploadClaimsResponse(
        lines_received=progress.received,
        lines_accepted=progress.accepted,
        lines_rejected=progress.rejected,
        lines_duplicate=progress.duplicates,
        rejections=[_rejection(r) for r in rejections],
        final=final,
        outcome=outcome,
    )


def _reasons(reasons: Sequence[Reason]) -> list[claims_pb2.Reason]:
    return [
        claims_pb2.Reason(code=r.code, explanation=r.explanation, contribution=r.contribution)
        for r in reasons
    ]


def _decision(decision: Decision) -> common_pb2.PolicyDecision:
    return common_pb2.PolicyDecision(
        allowed=decision.allowed,
        rule_ids=list(decision.rule_ids),
        legal_refs=list(decision.legal_refs),
        bundle_hash=decision.bundle_hash,
    )


def check_response(score: Score, decision: Decision) -> claims_pb2.CheckClaimResponse:
    """The pre-payment answer, minimised by the ``claim_check`` view of the decision."""
    view = decision.view
    response = claims_pb2.CheckClaimResponse(policy_decision=_decision(decision))
    if "score" in view:
        response.score = score.score
    if "level" in view:
        response.alert_level = LEVELS[score.level]
    if "reason_codes" in view:
        response.reasons.extend(_reasons(score.reasons))
    if "scoring_version" in view:
        response.ruleset_version = score.ruleset_version
        response.ruleset_hash = score.ruleset_hash
    return response


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment.astimezone(UTC).replace(tzinfo=None))
    return ts


def alert_name(public_id: str) -> str:
    return f"alerts/{public_id}"


def parse_alert_name(name: str) -> str:
    """The public id in ``alerts/{public_id}``.

    Raises:
        InvalidArgumentError: not an alert resource name (field ``name``).
    """
    m = _ALERT_NAME.fullmatch(name)
    if m is None:
        raise InvalidArgumentError.for_field("name", "must be an alert name alerts/{alert}")
    return m.group(1)


def alert_to_pb(alert: StoredAlert, view: frozenset[str]) -> claims_pb2.Alert:
    """The alert as its recipient may see it: only the fields of the decision's view."""
    pb = claims_pb2.Alert()
    if "id" in view:
        pb.name = alert.name
    if "own_reference" in view:
        pb.member_reference = alert.member_reference
    if "sector" in view:
        pb.sector = sector_to_pb(alert.sector)
    if "care_date" in view:
        d = alert.care_date
        pb.care_date.CopyFrom(date_pb2.Date(year=d.year, month=d.month, day=d.day))
    if "score" in view:
        pb.score = alert.score
    if "level" in view:
        pb.alert_level = LEVELS[alert.level]  # type: ignore[index]  # a checked column
    if "reason_codes" in view:
        pb.reasons.extend(_reasons(alert.reasons))
    if "scoring_version" in view:
        pb.ruleset_version = alert.ruleset_version
        pb.ruleset_hash = alert.ruleset_hash
    if "created_at" in view:
        pb.create_time.CopyFrom(_timestamp(alert.created_at))
    return pb


def alert_attributes(alert: StoredAlert) -> dict[str, Any]:
    """The policy's ``Alert`` attributes and relation facts (an alert goes to its own member)."""
    return {
        "sector": alert.sector,
        "level": alert.level,
        "derived_from_amc_data": alert.derived_from_amc_data,
        "principal_is_recipient": True,
    }


def time_range(request: claims_pb2.ListAlertsRequest) -> tuple[datetime | None, datetime | None]:
    """``create_time_range`` as (inclusive start, exclusive end), either may be ``None``.

    Raises:
        InvalidArgumentError: the end is not after the start.
    """
    if not request.HasField("create_time_range"):
        return None, None
    interval = request.create_time_range
    start = interval.start_time.ToDatetime(tzinfo=UTC) if interval.HasField("start_time") else None
    end = interval.end_time.ToDatetime(tzinfo=UTC) if interval.HasField("end_time") else None
    if start is not None and end is not None and end < start:
        raise InvalidArgumentError.for_field(
            "create_time_range", "end_time must not be before start_time"
        )
    return start, end
