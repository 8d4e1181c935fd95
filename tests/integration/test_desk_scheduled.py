"""The staff desk's beat is one of the composition root's scheduler jobs, not a loop of its own."""

from __future__ import annotations

from pydantic import SecretStr

from bot.app import create_bot, create_dispatcher
from bot.handoff_desk import TICK_S
from bot.services import BotServices
from touchpoint.config import SANDBOX_TOKEN, load_settings
from touchpoint.db import Database


async def test_the_scheduler_ticks_the_staff_desk(sqlite_db: Database) -> None:
    settings = load_settings(_env_file=None, database_url=sqlite_db.url, bot_token=SecretStr(SANDBOX_TOKEN),
                             events_api_enabled=False, console_enabled=False)
    bot = create_bot(settings)
    try:
        services = BotServices(settings, sqlite_db, bot)
        dp = create_dispatcher(settings, sqlite_db)
        desk = dp["handoff_desk"]
        services.attach_desk(desk)
        job = services.scheduler.get_job("staff_desk")
        assert job is not None and job.trigger.interval.total_seconds() == TICK_S
        assert desk.scheduled
        ticked: list[dict[str, bool]] = []

        async def tick(**flags: bool) -> None:
            ticked.append(flags)

        desk.tick = tick  # type: ignore[method-assign]
        await desk.scheduled_tick()
        assert ticked == []  # not started: nothing to do
        desk._ticking = True
        await desk.scheduled_tick()
        assert ticked == [{"follow_up": True, "prune": True}]
        await desk.scheduled_tick()
        assert ticked[-1] == {"follow_up": False, "prune": False}
        assert desk._loop_task is None
    finally:
        await bot.session.close()
