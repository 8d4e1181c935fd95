"""The `touchpoint` command: the core's commands plus `run` and `demo`, which need the bot."""

from __future__ import annotations

import asyncio
import contextlib

import typer

from touchpoint.cli import app, configure_logging
from touchpoint.config import get_settings


@app.command()
def run(
    webhook: bool = typer.Option(False, "--webhook", help="Serve a webhook (production) instead of polling."),
) -> None:
    """Start the bot and the scheduler with TOUCHPOINT_BOT_TOKEN (long polling, or --webhook)."""
    from bot.runner import run_bot

    settings = get_settings()
    if settings.log_format == "json":
        from touchpoint.observability import configure_json_logging

        configure_json_logging()
    else:
        configure_logging()
    settings.require_bot_token()
    if webhook:
        from bot.webhook import run_webhook

        asyncio.run(run_webhook(settings))
        return
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
