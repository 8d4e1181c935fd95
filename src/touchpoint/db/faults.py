"""Which errors mean "the database is unavailable or too slow" (answer 503, try again later) rather
than a bug: refused or dropped connections, connect and statement time-outs, a full pool, a
server statement_timeout, SQLite's lock wait running out."""

from __future__ import annotations

from collections.abc import Iterator

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


def cause_chain(exc: BaseException, max_hops: int = 20) -> Iterator[BaseException]:
    """The error, then what caused it: SQLAlchemy wraps the driver's error, which may wrap a socket's."""
    seen: BaseException | None = exc
    for _ in range(max_hops):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def means_database_unavailable(error: BaseException) -> bool:
    """This one error (not its causes) says the database is away or too slow."""
    return isinstance(error, UNAVAILABLE_ERRORS) or (
        isinstance(error, DBAPIError) and error.connection_invalidated)


def is_database_unavailable(exc: BaseException) -> bool:
    return any(means_database_unavailable(seen) for seen in cause_chain(exc))
