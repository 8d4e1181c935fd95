"""Which errors mean "the database is unavailable or too slow" (answer 503, try again later) rather
than a bug: refused or dropped connections, connect and statement time-outs, a full pool, a
server statement_timeout, SQLite's lock wait running out."""

from __future__ import annotations

from asyncpg.exceptions import (
    CannotConnectNowError,
    ConnectionDoesNotExistError,
    PostgresConnectionError,
    QueryCanceledError,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

UNAVAILABLE_ERRORS = (
    OperationalError, InterfaceError, PoolTimeoutError, ConnectionError, TimeoutError, OSError,
    ConnectionDoesNotExistError, PostgresConnectionError, CannotConnectNowError, QueryCanceledError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    """Walks the cause chain: SQLAlchemy wraps the driver's error, which may wrap a socket's."""
    seen: BaseException | None = exc
    hops = 0
    while seen is not None and hops < 20:
        if isinstance(seen, UNAVAILABLE_ERRORS):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
        hops += 1
    return False
