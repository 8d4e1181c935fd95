"""`touchpoint events send FILE`: sign a file of store events and post it (operators, tests, demo)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import typer

from touchpoint.config import get_settings
from touchpoint.events_api.signing import signed_headers
from touchpoint.seed.home import demo_events_secret

events_app = typer.Typer(help="The store events API.", no_args_is_help=True)


async def post_signed(url: str, secret: str, body: bytes) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(
        url, data=body, headers=signed_headers(secret, int(time.time()), body)
    ) as response:
        return response.status, await response.text()


@events_app.command("send")
def send(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="One event, a list, or {\"events\": [...]}"),
    url: str | None = typer.Option(None, help="Default: the configured events API host and port."),
    secret: str | None = typer.Option(None, envvar="TOUCHPOINT_EVENTS_SECRET",
                                      help="Default: TOUCHPOINT_EVENTS_SECRET, else the secret "
                                           "`touchpoint demo` generated beside its database."),
) -> None:
    """Sign FILE with the shared secret and POST it to /api/v1/events; prints the answer."""
    settings = get_settings()
    try:
        content = json.loads(file.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{file} is not JSON: {exc}") from None
    if isinstance(content, list):  # a plain list of events is sent as one batch
        content = {"events": content}
    if not secret and settings.events_secret is None:
        secret = demo_events_secret(settings)  # a demo's database: its own generated secret
    secret = secret or settings.require_events_secret()
    target = url or f"http://{settings.events_api_host}:{settings.events_api_port}/api/v1/events"
    status, text = asyncio.run(post_signed(target, secret, json.dumps(content).encode()))
    typer.echo(f"{status} {text}")
    if status >= 400:
        raise typer.Exit(1)
