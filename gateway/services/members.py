"""MemberService: who am I, and which members may I see (thin adapter over the registry)."""

from __future__ import annotations

from typing import Any

from gateway._proto.vigie.v1 import common_pb2, members_pb2, members_pb2_grpc
from gateway.server import current_call
from gateway.services._convert import kind_from_pb, kind_to_pb, role_to_pb
from gateway.services._deps import Deps
from gateway.services._paging import page_size
from gateway.store import Member

__all__ = ["MemberServicer"]


def _to_pb(member: Member, view: frozenset[str], *, fingerprint: str = "") -> members_pb2.Member:
    """Only the fields of the caller's minimisation view leave (member resource)."""
    return members_pb2.Member(
        name=f"members/{member.member_id}",
        display_name=member.display_name if "display_name" in view else "",
        kind=kind_to_pb(member.kind) if "kind" in view else common_pb2.MEMBER_KIND_UNSPECIFIED,
        roles=[role_to_pb(r) for r in sorted(member.roles)] if "roles" in view else [],
        certificate_fingerprint=fingerprint,
    )


class MemberServicer(members_pb2_grpc.MemberServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def GetSelf(self, request: Any, context: Any) -> members_pb2.Member:
        call = current_call()
        assert call.member is not None and call.decision is not None
        call.records([f"members/{call.member.member_id}"], count=1)
        return _to_pb(call.member, call.decision.view, fingerprint=call.cert_fingerprint)

    async def ListMembers(self, request: Any, context: Any) -> members_pb2.ListMembersResponse:
        call = current_call()
        assert call.member is not None and call.decision is not None
        me = call.member
        size = page_size(request.page_size)
        kind = kind_from_pb(request.kind)
        filters = {"kind": kind or ""}
        after = self.deps.page_tokens.read(request.page_token, filters) or ""
        members = await self.deps.db.run(lambda s: self.deps.registry.all(s))
        # Need-to-know: an AMC sees the AMOs and itself, never another AMC (nor that it exists).
        visible = [
            m
            for m in members
            if m.active
            and (me.kind == "AMO" or m.kind == "AMO" or m.member_id == me.member_id)
            and (kind is None or m.kind == kind)
            and m.member_id > after
        ]
        page, rest = visible[:size], visible[size:]
        call.records([f"members/{m.member_id}" for m in page], count=len(page))
        token = self.deps.page_tokens.issue(page[-1].member_id, filters) if rest else ""
        return members_pb2.ListMembersResponse(
            members=[_to_pb(m, call.decision.view) for m in page], next_page_token=token
        )
