"""ClaimService: upload, real-time pre-payment check, and the alerts on a member's own claims.

Thin adapter: protobuf in and out (``_claims_convert``), the domain does validation, matching
and scoring (``gateway.domain.ingestion``), the stores do SQL. The upload stream's transactions,
journal events and alert delivery are described in ``_claims_upload``.

Need-to-know and the cross-AMC invariant (DESIGN.md "an AMC can never read another AMC's
records, nor learn which AMC holds a claim"):

1. every answer is about the caller's own lines: an upload reports on the lines it sent
   (duplicates are counted per member, so another member's reference is never "already
   stored"); an alert is only ever its own member's, and any other is NOT_FOUND;
2. scores of an AMC's line use its own lines and the AMO side only; other AMCs' lines reach one
   reason, ``DOUBLE_BILLING_AMC``, whose explanation says "another complementary insurer";
3. each answer is minimised by the policy decision's view (bundle ``views``), and an alert
   the policy forbids to its member (an AMO alert built from AMC data) is never listed nor
   returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway._proto.vigie.v1 import claims_pb2, claims_pb2_grpc
from gateway.domain import Score, default_ruleset
from gateway.domain.ingestion import check_claim
from gateway.errors import InvalidArgumentError, NotFoundError
from gateway.ids import MemberId
from gateway.server import current_call
from gateway.services._claims_convert import (
    alert_attributes,
    alert_to_pb,
    check_response,
    level_from_pb,
    line_to_mapping,
    parse_alert_name,
    prefixed,
    side_from_pb,
    time_range,
)
from gateway.services._claims_upload import UploadSettings, run_upload
from gateway.services._convert import sector_from_pb
from gateway.services._deps import Deps
from gateway.services._paging import page_size
from gateway.store._claims import SessionClaimStore, SqlAlertStore
from gateway.store._history_sql import ProviderStatsCache

__all__ = ["ClaimServicer"]


class ClaimServicer(claims_pb2_grpc.ClaimServiceServicer):
    """The ClaimService handlers (``deps.extras["claims.upload"]`` may hold UploadSettings)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.ruleset = default_ruleset()
        self.stats = ProviderStatsCache()  # shared by uploads and checks of this process
        self.alerts = SqlAlertStore()

    @property
    def upload_settings(self) -> UploadSettings:
        settings = self.deps.extras.get("claims.upload")
        return settings if isinstance(settings, UploadSettings) else UploadSettings()

    async def UploadClaims(
        self, request_iterator: AsyncIterator[claims_pb2.UploadClaimsRequest], context: Any
    ) -> AsyncIterator[claims_pb2.UploadClaimsResponse]:
        call = current_call()
        async for response in run_upload(
            self.deps,
            call,
            request_iterator,
            ruleset=self.ruleset,
            stats=self.stats,
            settings=self.upload_settings,
        ):
            yield response

    async def CheckClaim(
        self, request: claims_pb2.CheckClaimRequest, context: Any
    ) -> claims_pb2.CheckClaimResponse:
        call = current_call()
        assert call.member is not None
        if not request.HasField("claim_line"):
            raise InvalidArgumentError.for_field("claim_line", "required")
        pb = request.claim_line
        side = side_from_pb(pb.side)
        if side is None:
            raise InvalidArgumentError.for_field("claim_line.side", "required: AMO or AMC")
        # 1. Object-level decision before anything is read: a pre-payment check of the caller's
        #    own claim, of its own side (common-amc-pre-payment-check).
        decision = call.authorize(
            "claim_check",
            "-",
            {
                "claim_side": side,
                "sector": sector_from_pb(pb.sector) or "",
                "principal_is_submitter": True,
            },
        )
        member, kind = MemberId(call.member.member_id), call.member.kind
        mapping = line_to_mapping(pb)
        rekeyer = self.deps.keys.rekeyer

        def _check(session: Session) -> Score:
            # 2. Validate, re-key, score against the live history; nothing is stored.
            # 3. Journal: the beneficiary whose history was read. Reads and the event share one
            #    transaction (one round of locks instead of two; SQLite serialises writers).
            store = SessionClaimStore(stats_cache=self.stats)
            store.session = session
            score = check_claim(
                mapping, member=member, member_kind=kind, store=store,
                rekeyer=rekeyer, today=datetime.now(UTC).date(), ruleset=self.ruleset,
            )  # fmt: skip
            call.records(
                ["claim_checks/-"], count=1, subjects=[rekeyer.rekey(pb.beneficiary_token)]
            )
            return score

        try:
            # On SQLite, checks queue with every other transaction of the process in
            # Database.transaction (one writer, no sleeping busy handler).
            score = await call.write(_check)
        except InvalidArgumentError as e:
            raise prefixed(e, "claim_line.") from None
        return check_response(score, decision)

    async def ListAlerts(
        self, request: claims_pb2.ListAlertsRequest, context: Any
    ) -> claims_pb2.ListAlertsResponse:
        call = current_call()  # the collection was decided by the pipeline (common-list-alerts)
        assert call.member is not None
        member = MemberId(call.member.member_id)
        size = page_size(request.page_size)
        sector = sector_from_pb(request.sector)
        if sector is None and request.sector != 0:
            raise InvalidArgumentError.for_field("sector", "not a known sector")
        level = level_from_pb(request.minimum_alert_level) or "low"
        start, end = time_range(request)
        filters = {
            "member": member,
            "sector": sector or "",
            "level": level,
            "from": start.isoformat() if start else "",
            "to": end.isoformat() if end else "",
        }
        before = self.deps.page_tokens.read(request.page_token, filters)
        if before is not None and not isinstance(before, int):
            raise InvalidArgumentError.for_field("page_token", "not a valid page token")
        rows = await self.deps.db.run(
            lambda s: self.alerts.page(
                s,
                member,
                limit=size + 1,
                before_id=before,
                sector=sector,
                min_level=level,
                created_from=start,
                created_before=end,
            )
        )
        page, more = rows[:size], len(rows) > size
        alerts = []
        for alert in page:  # each item decided on its own; a denied one is skipped
            decision = call.check("alert", alert.name, alert_attributes(alert))
            if decision.allowed:
                alerts.append((alert, alert_to_pb(alert, decision.view)))
        call.records(
            [a.name for a, _ in alerts],
            count=len(alerts),
            subjects=sorted({a.beneficiary for a, _ in alerts}),
        )
        token = self.deps.page_tokens.issue(page[-1].id, filters) if more else ""
        return claims_pb2.ListAlertsResponse(alerts=[pb for _, pb in alerts], next_page_token=token)

    async def GetAlert(self, request: claims_pb2.GetAlertRequest, context: Any) -> claims_pb2.Alert:
        call = current_call()
        assert call.member is not None
        public_id = parse_alert_name(request.name)
        member = MemberId(call.member.member_id)
        alert = await self.deps.db.run(lambda s: self.alerts.by_public_id(s, member, public_id))
        if alert is None or alert.withdrawn_at is not None:
            # Another member's alert, or none: the same answer (never "exists but not yours").
            raise NotFoundError("alert not found", reason="NOT_FOUND")
        decision = call.authorize("alert", alert.name, alert_attributes(alert), hide_denial=True)
        call.records([alert.name], count=1, subjects=[alert.beneficiary])
        return alert_to_pb(alert, decision.view)
