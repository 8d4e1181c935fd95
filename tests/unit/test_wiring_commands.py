"""Every published bot command has a description in every locale and a handler."""

from __future__ import annotations

import inspect

import pytest

import bot.handlers
from bot.app import BOT_COMMANDS
from touchpoint.config import SUPPORTED_LOCALES
from touchpoint.i18n import get_translator


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_commands_are_described(locale: str) -> None:
    t = get_translator()
    for name in BOT_COMMANDS:
        text = t(locale, f"command.{name}")
        assert text and text != f"command.{name}" and len(text) <= 256


def test_commands_have_handlers() -> None:
    source = "\n".join(inspect.getsource(m) for m in vars(bot.handlers).values() if inspect.ismodule(m))
    for name in BOT_COMMANDS:
        assert f'Command("{name}")' in source or name == "start", name
    assert {"invite", "points", "settings"} <= set(BOT_COMMANDS)
