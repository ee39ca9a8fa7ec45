"""MemberService and SuspicionService methods (suspicions, notifications)."""

# ruff: noqa: ASYNC109 - `timeout` is the gRPC deadline sent to the server, not a local timer

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc

from gateway._proto.vigie.v1 import members_pb2, suspicions_pb2
from gateway.client import _vocab
from gateway.client._base import UNSET, ClientBase, Timeout, follow_pages, new_request_id
from gateway.client._errors import error_from_rpc
from gateway.client._notifications import (
    CursorStore,
    MemoryCursor,
    NotificationHandler,
    follow_notifications,
)
from gateway.client._retry import RetryEvent
from gateway.client._vocab import PurposeName

__all__ = ["MembersAndSuspicionsAPI"]

Purpose = PurposeName | str | int


class MembersAndSuspicionsAPI(ClientBase):
    # -- MemberService ---------------------------------------------------------------------
    async def get_self(
        self, *, purpose: Purpose = "operations", timeout: Timeout = UNSET
    ) -> members_pb2.Member:
        """The caller's own member entry, as the gateway identified it from the certificate.

        Raises:
            VigieClientError: The typed error (e.g. UnauthenticatedError for a revoked
                certificate).
        """
        request = members_pb2.GetSelfRequest(purpose=_vocab.purpose(purpose))
        return await self._unary("GetSelf", self._members.GetSelf, request, timeout=timeout)

    async def list_members(
        self,
        *,
        kind: str | int | None = None,
        page_size: int = 0,
        page_token: str = "",
        purpose: Purpose = "operations",
        timeout: Timeout = UNSET,
    ) -> members_pb2.ListMembersResponse:
        """One page of the members visible to the caller (an AMC never sees another AMC).

        Raises:
            VigieClientError: The typed error.
        """
        request = members_pb2.ListMembersRequest(
            purpose=_vocab.purpose(purpose),
            kind=_vocab.member_kind(kind),
            page_size=page_size,
            page_token=page_token,
        )
        return await self._unary("ListMembers", self._members.ListMembers, request, timeout=timeout)

    async def iter_members(self, **filters: Any) -> AsyncIterator[members_pb2.Member]:
        """Every visible member, following page tokens (same filters as :meth:`list_members`)."""
        async for item in follow_pages(self.list_members, "members", **filters):
            yield item

    # -- SuspicionService --------------------------------------------------------------------
    async def create_suspicion(
        self,
        suspicion: suspicions_pb2.Suspicion,
        *,
        purpose: Purpose,
        request_id: str | None = None,
        timeout: Timeout = UNSET,
    ) -> suspicions_pb2.Suspicion:
        """Submit a suspicion message as is (see :meth:`submit_suspicion` to build one).

        Args:
            suspicion: The suspicion; its subject must already carry tokens, never a NIR.
            purpose: ``control``, ``complaint`` or ``litigation``.
            request_id: The operation's id; generated once if not given, reused by retries.
                Pass your own to make a retry across process restarts idempotent too.

        Raises:
            VigieClientError: The typed error (the error's ``request_id`` is the one used).
        """
        rid = request_id or new_request_id()
        request = suspicions_pb2.CreateSuspicionRequest(
            purpose=_vocab.purpose(purpose), request_id=rid, suspicion=suspicion
        )
        return await self._unary(
            "CreateSuspicion",
            self._suspicions.CreateSuspicion,
            request,
            timeout=timeout,
            request_id=rid,
        )

    async def submit_suspicion(
        self,
        *,
        purpose: Purpose,
        sector: str | int,
        fraud_type: str | int,
        facts_summary: str,
        estimated_amount_cents: int,
        nir: str | None = None,
        birth_date: dt.date | str | None = None,
        rank: int | None = None,
        provider_rpps: str = "",
        provider_am_number: str = "",
        provider_finess: str = "",
        evidence_refs: Iterable[str] = (),
        case_reference: str = "",
        request_id: str | None = None,
        timeout: Timeout = UNSET,
    ) -> suspicions_pb2.Suspicion:
        """Build and submit a suspicion; a NIR is turned into its first-level token locally.

        Raises:
            LocalValidationError: Invalid NIR, birth date, rank, enum word or empty subject
                (nothing was sent).
            ClientConfigError: A NIR was given but the client has no pseudonymiser.
            VigieClientError: The gateway's typed error.
        """
        if nir is not None:
            subject = self._pseudo().subject(
                nir,
                birth_date=birth_date,
                rank=rank,
                provider_rpps=provider_rpps,
                provider_am_number=provider_am_number,
                provider_finess=provider_finess,
            )
        else:
            subject = suspicions_pb2.SuspicionSubject(
                provider_rpps=provider_rpps,
                provider_am_number=provider_am_number,
                provider_finess=provider_finess,
            )
        suspicion = suspicions_pb2.Suspicion(
            subject=subject,
            sector=_vocab.sector(sector),
            fraud_type=_vocab.fraud_type(fraud_type),
            facts_summary=facts_summary,
            estimated_amount_cents=estimated_amount_cents,
            evidence_refs=list(evidence_refs),
            case_reference=case_reference,
        )
        return await self.create_suspicion(
            suspicion, purpose=purpose, request_id=request_id, timeout=timeout
        )

    async def get_suspicion(
        self, name: str, *, purpose: Purpose, timeout: Timeout = UNSET
    ) -> suspicions_pb2.Suspicion:
        """One suspicion, minimised for the caller (NotFoundError if it may not see it).

        Raises:
            VigieClientError: The typed error.
        """
        request = suspicions_pb2.GetSuspicionRequest(purpose=_vocab.purpose(purpose), name=name)
        return await self._unary(
            "GetSuspicion", self._suspicions.GetSuspicion, request, timeout=timeout
        )

    async def list_suspicions(
        self,
        *,
        purpose: Purpose,
        sector: str | int | None = None,
        status: str | int | None = None,
        minimum_alert_level: str | int | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: Timeout = UNSET,
    ) -> suspicions_pb2.ListSuspicionsResponse:
        """One page of the suspicions visible to the caller, newest first.

        Raises:
            VigieClientError: The typed error.
        """
        request = suspicions_pb2.ListSuspicionsRequest(
            purpose=_vocab.purpose(purpose),
            sector=_vocab.sector(sector),
            status=_vocab.suspicion_status(status),
            minimum_alert_level=_vocab.alert_level(minimum_alert_level),
            page_size=page_size,
            page_token=page_token,
        )
        window = _vocab.interval(created_after, created_before, "create_time_range")
        if window is not None:
            request.create_time_range.CopyFrom(window)
        return await self._unary(
            "ListSuspicions", self._suspicions.ListSuspicions, request, timeout=timeout
        )

    async def iter_suspicions(self, **filters: Any) -> AsyncIterator[suspicions_pb2.Suspicion]:
        """Every visible suspicion, following page tokens (filters of :meth:`list_suspicions`)."""
        async for item in follow_pages(self.list_suspicions, "suspicions", **filters):
            yield item

    async def transition_suspicion(
        self,
        name: str,
        status: str | int,
        reason: str,
        *,
        purpose: Purpose,
        request_id: str | None = None,
        timeout: Timeout = UNSET,
    ) -> suspicions_pb2.Suspicion:
        """Move a suspicion along its lifecycle (``qualified``, ``dismissed``, ``cleared``...).

        Raises:
            FailedPreconditionError: The transition is not allowed from the current status.
            VigieClientError: The typed error.
        """
        rid = request_id or new_request_id()
        request = suspicions_pb2.TransitionSuspicionRequest(
            purpose=_vocab.purpose(purpose),
            request_id=rid,
            name=name,
            status=_vocab.suspicion_status(status),
            reason=reason,
        )
        return await self._unary(
            "TransitionSuspicion",
            self._suspicions.TransitionSuspicion,
            request,
            timeout=timeout,
            request_id=rid,
        )

    # -- notifications -----------------------------------------------------------------------
    async def stream_notifications(
        self, *, purpose: Purpose, after_sequence: int | None = None
    ) -> AsyncIterator[suspicions_pb2.Notification]:
        """The raw feed (no acknowledgement, no reconnect): see :meth:`follow_notifications`.

        Raises:
            VigieClientError: The typed error when the stream fails.
        """
        request = suspicions_pb2.StreamNotificationsRequest(purpose=_vocab.purpose(purpose))
        if after_sequence is not None:
            request.after_sequence = after_sequence
        call = self._suspicions.StreamNotifications(request)
        try:
            async for notification in call:
                yield notification
        except grpc.RpcError as e:
            raise error_from_rpc(e) from e
        finally:
            call.cancel()

    async def acknowledge_notification(
        self,
        name: str,
        *,
        purpose: Purpose,
        case_reference: str = "",
        request_id: str | None = None,
        timeout: Timeout = UNSET,
    ) -> suspicions_pb2.Notification:
        """Acknowledge one notification (for a retraction: "my copy is deleted").

        Raises:
            VigieClientError: The typed error.
        """
        rid = request_id or new_request_id()
        request = suspicions_pb2.AcknowledgeNotificationRequest(
            purpose=_vocab.purpose(purpose),
            request_id=rid,
            name=name,
            case_reference=case_reference,
        )
        return await self._unary(
            "AcknowledgeNotification",
            self._suspicions.AcknowledgeNotification,
            request,
            timeout=timeout,
            request_id=rid,
        )

    async def follow_notifications(
        self,
        handler: NotificationHandler,
        *,
        purpose: Purpose,
        cursor: CursorStore | None = None,
        stop: asyncio.Event | None = None,
        max_notifications: int | None = None,
        max_reconnects: int | None = None,
        on_reconnect: Callable[[RetryEvent], None] | None = None,
    ) -> int:
        """Process the feed with resume, acknowledgement and reconnection.

        See :mod:`gateway.client._notifications` for the procedure. The handler may return
        the member's own case reference for a SHARED suspicion (sent with the acknowledgement).

        Args:
            handler: Sync or async function of one ``Notification``.
            purpose: The purpose the feed is read under (``control`` or ``fraud_detection``).
            cursor: Where the last processed sequence is kept (e.g. :class:`FileCursor`);
                in memory by default (then a restart resumes at the first unacknowledged).
            stop: Set it to stop between notifications.
            max_notifications: Stop after processing this many.
            max_reconnects: Give up after this many reconnects in a row (default: never).
            on_reconnect: Called before each reconnect.

        Returns:
            How many notifications were processed and acknowledged.

        Raises:
            VigieClientError: A non-transient error (e.g. PermissionDeniedError).
        """
        code = _vocab.purpose(purpose)

        async def acknowledge(notification: suspicions_pb2.Notification, case_ref: str) -> None:
            await self.acknowledge_notification(
                notification.name, purpose=code, case_reference=case_ref
            )

        return await follow_notifications(
            self._suspicions,
            handler,
            acknowledge,
            purpose=code,
            cursor=cursor if cursor is not None else MemoryCursor(),
            policy=self.config.retry,
            stop=stop,
            max_notifications=max_notifications,
            max_reconnects=max_reconnects,
            on_retry=on_reconnect or self._on_retry,
        )
