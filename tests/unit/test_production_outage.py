"""Which errors mean "a storage service is down" (answer "try again in a minute") and which are bugs."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import GetMe
from asyncpg.exceptions import QueryCanceledError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bot.handlers.outage import is_outage
from touchpoint.db.faults import is_database_unavailable


def chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(("error", "outage"), [
    (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
    (ConnectionRefusedError(), True),
    (RedisConnectionError("Connection refused"), True),
    (chained(RuntimeError("wrapped"), ConnectionResetError()), True),
    # A role's statement_timeout: the customer hears "try again", as the events API answers 503.
    (chained(DBAPIError("SELECT 1", {}, Exception("canceled")),
             QueryCanceledError("canceling statement due to statement timeout")), True),
    (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
    (RuntimeError("a bug"), False),
    (chained(TelegramNetworkError(GetMe(), "unreachable"), ConnectionRefusedError()), False),
])
def test_outage_or_bug(error: BaseException, outage: bool) -> None:
    assert is_outage(error) is outage


@pytest.mark.parametrize(("error", "unavailable"), [
    (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
    (TimeoutError(), True),  # asyncpg's connect or command time-out
    (PoolTimeoutError("QueuePool limit reached"), True),
    (chained(DBAPIError("SELECT 1", {}, Exception("canceled")),
             QueryCanceledError("canceling statement due to statement timeout")), True),
    (ConnectionRefusedError(), True),
    (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
    (DataError("INSERT", {}, Exception("invalid byte sequence")), False),
    (RuntimeError("a bug"), False),
])
def test_database_unavailable_or_bug(error: BaseException, unavailable: bool) -> None:
    """What the events API answers 503 (retry later) rather than treating as a bug."""
    assert is_database_unavailable(error) is unavailable
