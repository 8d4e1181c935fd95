"""Which errors mean "a storage service is down" (answer "try again in a minute") and which are bugs."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import GetMe
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.handlers.outage import is_outage


def chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(("error", "outage"), [
    (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
    (ConnectionRefusedError(), True),
    (RedisConnectionError("Connection refused"), True),
    (chained(RuntimeError("wrapped"), ConnectionResetError()), True),
    (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
    (RuntimeError("a bug"), False),
    (chained(TelegramNetworkError(GetMe(), "unreachable"), ConnectionRefusedError()), False),
])
def test_outage_or_bug(error: BaseException, outage: bool) -> None:
    assert is_outage(error) is outage
