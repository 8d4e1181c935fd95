"""One async engine and session factory per process, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.db.sqlite import OneTripDBAPI

# The defaults of the TOUCHPOINT_DB_*_TIMEOUT_S settings: a database that stalls (connections hang
# rather than fail) is reported within seconds instead of hanging every caller.
CONNECT_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 10.0
POOL_TIMEOUT_S = 5.0
SQLITE_BUSY_TIMEOUT_S = 10.0


def create_engine(url: str, *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                  statement_timeout_s: float = STATEMENT_TIMEOUT_S, pool_timeout_s: float = POOL_TIMEOUT_S,
                  sqlite_busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S, **kwargs: Any) -> AsyncEngine:
    # SQL errors must not carry bound values (names, phones) into logs and tracebacks.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        if url.startswith("sqlite+aiosqlite"):
            kwargs.setdefault("module", OneTripDBAPI())
        engine = create_async_engine(url, connect_args={"timeout": sqlite_busy_timeout_s}, **kwargs)
        busy_ms = int(sqlite_busy_timeout_s * 1000)
        event.listen(engine.sync_engine, "connect",
                     lambda connection, record: _sqlite_pragmas(connection, record, busy_ms))
        return engine
    # The pool checks each connection before use, so the bot recovers by itself once a restarted
    # database is back. SQLAlchemy's pool_pre_ping wraps asyncpg's check in BEGIN and ROLLBACK:
    # three round trips on every update. The listener does the same check in one.
    asyncpg = url.startswith("postgresql+asyncpg")
    if asyncpg:
        # asyncpg's own time-outs: opening a connection, and every command (the check before use
        # included), so a stalled server or network raises TimeoutError (an outage to the bot,
        # a 503 to the events API) and asyncpg cancels the statement on the server. Client-side
        # rather than a server `statement_timeout` startup parameter, which pgbouncer refuses.
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", connect_timeout_s)
        connect_args.setdefault("command_timeout", statement_timeout_s)
        kwargs["connect_args"] = connect_args
    engine = create_async_engine(url, pool_pre_ping=not asyncpg, pool_size=10, max_overflow=10,
                                 pool_timeout=pool_timeout_s, **kwargs)
    if asyncpg:
        event.listen(engine.sync_engine.pool, "checkout", _ping_asyncpg)
    return engine


def _ping_asyncpg(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    try:
        await_(dbapi_connection.driver_connection.fetchrow(";"))
    except Exception as exc:  # the pool drops this connection and opens another
        raise DisconnectionError("connection failed its check before use") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_ms: int) -> None:
    # WAL lets readers proceed while one writer commits; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """The engine plus a session factory; `async with db.session() as s` commits on success."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()
