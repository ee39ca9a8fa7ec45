"""Shared fixtures: databases (SQLite and PostgreSQL), run every storage test on both.

PostgreSQL: ``VIGIE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Each test gets its own schema, migrated from scratch, dropped afterwards. When no server answers
the PostgreSQL cases are skipped with a clear message -- unless ``VIGIE_REQUIRE_POSTGRES=1``
(set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store import Database, make_engine, migrate

PG_URL = os.environ.get("VIGIE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("VIGIE_REQUIRE_POSTGRES") == "1"
_pg_state: dict[str, str | None] = {}


def _pg_unreachable_reason() -> str | None:
    if "reason" not in _pg_state:
        try:
            engine = make_engine(PG_URL)
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except Exception as e:
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_URL}: {type(e).__name__}"
    return _pg_state["reason"]


def require_postgres() -> None:
    reason = _pg_unreachable_reason()
    if reason is None:
        return
    if REQUIRE_PG:
        pytest.fail(f"{reason} (VIGIE_REQUIRE_POSTGRES=1 makes this a failure)")
    pytest.skip(f"{reason}; set VIGIE_TEST_POSTGRES_URL or start a server")


def _pg_schema_url(schema: str) -> str:
    url = sa.engine.make_url(PG_URL)
    query = dict(url.query)
    query["options"] = f"-csearch_path={schema}"
    return url.set(query=query).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL (not migrated): a fresh SQLite file or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vigie.db'}"
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """A migrated database on SQLite and on PostgreSQL."""
    db = Database.from_url(db_url, threads=4)
    migrate(db.engine)
    try:
        yield db
    finally:
        db.close()
