"""Database access: one engine, sessions in short transactions, run off the event loop.

The gateway's servicers are asyncio (grpc.aio); SQLAlchemy sessions here are synchronous and run
on a small dedicated thread pool (``Database.run``) so a slow query never blocks the loop and a
notification stream never pins a thread while it waits (ADR 0006).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import UnavailableError

__all__ = ["Database", "make_engine", "migrate", "migration_config"]

T = TypeVar("T")

_MIGRATIONS = Path(__file__).parent / "migrations"
_SQLITE_BUSY_S = 30.0


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create an engine for SQLite (WAL, foreign keys on) or PostgreSQL.

    Raises:
        UnavailableError: the SQLite file's folder cannot be created.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_S},
            pool_size=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # 1. WAL: readers never block the writer; 2. foreign keys are off by default in SQLite;
            # 3. begin transactions ourselves so BEGIN IMMEDIATE takes the write lock up front.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_S * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def migration_config(url: str) -> Config:
    """Alembic configuration pointing at the packaged migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the schema to ``revision`` (default: every head). The only way tables are made."""
    cfg = migration_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


class Database:
    """An engine, a session factory and the thread pool that runs sessions off the event loop."""

    def __init__(self, engine: Engine, *, threads: int = 8) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vigie-db")
        # SQLite has one writer, and every transaction here takes the write lock up front
        # (BEGIN IMMEDIATE). A connection that finds it taken sleeps in growing steps (up to
        # 100 ms) before retrying: under load that polling, not the work, made the latency
        # tail (docs/performance.md). Transactions of this process therefore queue on a lock
        # of their own and reach SQLite one at a time; other processes still meet
        # busy_timeout. PostgreSQL needs no such queue.
        self._sqlite_writer = threading.RLock() if self.dialect == "sqlite" else None

    @classmethod
    def from_url(cls, url: str, *, threads: int = 8) -> Database:
        return cls(make_engine(url, pool_size=threads), threads=threads)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error.

        Raises:
            UnavailableError: the database failed or could not be reached (fail closed).
            IntegrityError: a constraint was violated (the caller decides what it means).
        """
        writer = self._sqlite_writer
        # Wait as long as SQLite's own busy_timeout would have, then fail closed the same way.
        if writer is not None and not writer.acquire(timeout=_SQLITE_BUSY_S):
            raise UnavailableError("the store is busy", reason="STORE_BUSY")
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except IntegrityError:
            raise  # a constraint the caller maps (duplicate key, foreign key)
        except DBAPIError as e:
            raise UnavailableError("the store is unavailable", reason="STORE_UNAVAILABLE") from e
        finally:
            session.close()
            if writer is not None:
                writer.release()

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction on the calling thread."""
        with self.transaction() as session:
            return fn(session)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction on the database thread pool."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, self.run_sync, fn)
        return await loop.run_in_executor(self._pool, call)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain blocking function on the database thread pool."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._pool, functools.partial(ctx.run, fn, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()
