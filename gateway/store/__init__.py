"""Storage: SQLAlchemy models, Alembic migrations and the repositories behind small Protocols."""

from gateway.journal import _sql as _journal_tree_models  # noqa: F401

# Every table's model must be on Base.metadata (the suite compares it with the migrations).
from gateway.store import _claims_models, _suspicions_models  # noqa: F401
from gateway.store._db import Database, make_engine, migrate, migration_config
from gateway.store._idempotency import IdempotencyStore
from gateway.store._journal import AccessEvent, AuditStore, SqlAuditStore
from gateway.store._members import Member, MemberRegistry, SqlMemberRegistry
from gateway.store._models import Base

__all__ = [
    "AccessEvent",
    "AuditStore",
    "Base",
    "Database",
    "IdempotencyStore",
    "Member",
    "MemberRegistry",
    "SqlAuditStore",
    "SqlMemberRegistry",
    "make_engine",
    "migrate",
    "migration_config",
]
