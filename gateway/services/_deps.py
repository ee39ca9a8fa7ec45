"""What servicers need from the server, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.config import Settings
from gateway.server import PolicyHook
from gateway.services._paging import PageTokens
from gateway.store import Database, SqlMemberRegistry

__all__ = ["Deps"]


@dataclass
class Deps:
    settings: Settings
    db: Database
    policy: PolicyHook
    registry: SqlMemberRegistry
    page_tokens: PageTokens = field(default_factory=PageTokens)
    extras: dict[str, Any] = field(default_factory=dict)
