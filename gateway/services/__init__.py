"""gRPC servicers: thin adapters from protobuf to the domain (one module per service).

Handlers that a later issue fills in answer UNIMPLEMENTED (the generated base classes raise
``NotImplementedError``, which the pipeline maps), but only after identity, purpose, policy and
journal have run: an unimplemented method is still authenticated, decided and journaled.
"""

from __future__ import annotations

from typing import Any

import grpc

from gateway._proto.vigie.v1 import (
    claims_pb2,
    claims_pb2_grpc,
    journal_pb2,
    journal_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    suspicions_pb2,
    suspicions_pb2_grpc,
)
from gateway.config import Settings
from gateway.server import PolicyHook
from gateway.services._deps import Deps, GatewayKeys, load_keys
from gateway.services._paging import PageTokens
from gateway.services.claims import ClaimServicer
from gateway.services.journal import JournalServicer
from gateway.services.members import MemberServicer
from gateway.services.suspicions import SuspicionServicer
from gateway.store import Database, SqlMemberRegistry

__all__ = ["Deps", "GatewayKeys", "load_keys", "register_services"]


def register_services(
    server: grpc.aio.Server,
    *,
    settings: Settings,
    db: Database,
    policy: PolicyHook,
    registry: SqlMemberRegistry,
    keys: GatewayKeys,
) -> tuple[list[str], Deps]:
    """Add every Vigie service to ``server``.

    Returns:
        The services' full names (for reflection) and the dependencies they share; servicers
        may add background jobs to ``Deps.jobs`` (the gateway starts them with the server).
    """
    deps = Deps(
        settings=settings,
        db=db,
        policy=policy,
        registry=registry,
        keys=keys,
        page_tokens=PageTokens(keys.page_token_key),
    )
    members_pb2_grpc.add_MemberServiceServicer_to_server(MemberServicer(deps), server)  # type: ignore[no-untyped-call]
    suspicions_pb2_grpc.add_SuspicionServiceServicer_to_server(SuspicionServicer(deps), server)  # type: ignore[no-untyped-call]
    claims_pb2_grpc.add_ClaimServiceServicer_to_server(ClaimServicer(deps), server)  # type: ignore[no-untyped-call]
    journal_pb2_grpc.add_JournalServiceServicer_to_server(JournalServicer(deps), server)  # type: ignore[no-untyped-call]
    modules: list[Any] = [members_pb2, suspicions_pb2, claims_pb2, journal_pb2]
    names = [svc.full_name for m in modules for svc in m.DESCRIPTOR.services_by_name.values()]
    return names, deps
