"""The staff web console: aiohttp + jinja2 pages served on their own port (see docs/console.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from touchpoint.config import Settings
from touchpoint.db import Database

log = logging.getLogger(__name__)


def create_console_app(settings: Settings, db: Database, *, demo_mode: bool = False) -> web.Application:
    from touchpoint.console.pages import create_console_app as create

    return create(settings, db, demo_mode=demo_mode)


async def start_console(
    settings: Settings, db: Database, *, poke_sender: Callable[[], None] | None = None,
    demo_mode: bool = False,
) -> web.AppRunner | None:
    """Serve the console on ``console_host:console_port``; None when it is switched off.
    Outside the demo (``demo_mode`` False) any account `touchpoint demo` made is disabled first."""
    if not settings.console_enabled:
        return None
    if not demo_mode:
        from touchpoint.console.auth import disable_demo_staff

        await disable_demo_staff(db)
    app = create_console_app(settings, db, demo_mode=demo_mode)
    if poke_sender is not None:  # the outbox sender, woken so that replies go out at once
        from touchpoint.console.auth import POKE_SENDER

        app[POKE_SENDER] = poke_sender
    runner = web.AppRunner(app, access_log=None)  # URLs can carry search text: no access log
    await runner.setup()
    site = web.TCPSite(runner, settings.console_host, settings.console_port)
    await site.start()
    log.info("staff console on http://%s:%s/", settings.console_host, settings.console_port)
    return runner


__all__ = ["create_console_app", "start_console"]
