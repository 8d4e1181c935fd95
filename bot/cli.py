"""The `touchpoint` command: the core's commands plus `run` and `demo`, which need the bot."""

from __future__ import annotations

import asyncio
import contextlib

from touchpoint.cli import app, configure_logging
from touchpoint.config import get_settings


@app.command()
def run() -> None:
    """Start the bot (long polling) and the scheduler with TOUCHPOINT_BOT_TOKEN."""
    from bot.runner import run_bot

    configure_logging()
    settings = get_settings()
    settings.require_bot_token()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_bot(settings))


@app.command()
def demo() -> None:
    """Everything in one process on SQLite with the built-in sandbox: no token needed."""
    from bot.runner import run_demo

    configure_logging()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(get_settings()))


def main() -> None:
    app()
