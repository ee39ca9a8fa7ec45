"""Protobuf <-> domain vocabulary. Generated types stop here (and in the servicers)."""

from __future__ import annotations

from gateway._proto.vigie.v1 import common_pb2

__all__ = ["kind_from_pb", "kind_to_pb", "role_to_pb", "sector_from_pb", "sector_to_pb"]

_KINDS: dict[str, common_pb2.MemberKind] = {
    "AMO": common_pb2.MEMBER_KIND_AMO,
    "AMC": common_pb2.MEMBER_KIND_AMC,
}
_ROLES: dict[str, common_pb2.Role] = {
    "submitter": common_pb2.ROLE_SUBMITTER,
    "analyst": common_pb2.ROLE_ANALYST,
    "compliance_officer": common_pb2.ROLE_COMPLIANCE_OFFICER,
    "operator": common_pb2.ROLE_OPERATOR,
}
_SECTORS: dict[str, common_pb2.Sector] = {
    "optique": common_pb2.SECTOR_OPTIQUE,
    "audio": common_pb2.SECTOR_AUDIO,
    "dentaire": common_pb2.SECTOR_DENTAIRE,
}


def kind_to_pb(kind: str) -> common_pb2.MemberKind:
    return _KINDS[kind]


def kind_from_pb(value: int) -> str | None:
    return next((k for k, v in _KINDS.items() if v == value), None)


def role_to_pb(role: str) -> common_pb2.Role:
    return _ROLES[role]


def sector_to_pb(sector: str) -> common_pb2.Sector:
    return _SECTORS[sector]


def sector_from_pb(value: int) -> str | None:
    return next((k for k, v in _SECTORS.items() if v == value), None)
