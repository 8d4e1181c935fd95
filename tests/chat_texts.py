"""What the bot's composed replies read as in a chat (plain text, as Telegram shows it)."""

from __future__ import annotations

from bot.commands import BOT_COMMANDS
from touchpoint.config import Settings, load_settings
from touchpoint.handoff.service import working_hours
from touchpoint.i18n import get_translator


def help_text(locale: str, settings: Settings | None = None) -> str:
    """/help: every command of the command menu and the staff hours from the settings."""
    t = get_translator()
    settings = settings or load_settings(_env_file=None)
    commands = "\n".join(f"/{name} — {t(locale, f'command.{name}')}" for name in BOT_COMMANDS)
    days, hours = working_hours(settings).describe(locale)
    return t(locale, "help.text", commands=commands, days=days, hours=hours,
             timezone=settings.handoff_timezone)
