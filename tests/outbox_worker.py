"""One sender process for the multi-process outbox tests (``python -m tests.outbox_worker``).

It runs what every bot process runs to drain the outbox: the OutboxSender and the staff lane on
PostgreSQL, the bot's send rate and each group's budget shared through Redis, and the lease reaper
(the scheduler's job, here every half second). Settings come from the environment (TOUCHPOINT_…);
``TP_WORKER_SCALE`` speeds Telegram's limits up and ``TP_WORKER_LEASE_S`` shortens the lease.

It speaks the Bot API to the sandbox over plain HTTP instead of through aiogram: importing aiogram
costs seconds of CPU per process, and the Telegram channel and the staff desk are tested in-process.
It prints "ready" once it drains; SIGTERM stops it as a shutdown would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from datetime import timedelta
from typing import Any

import aiohttp
from redis.asyncio import Redis

from touchpoint.config import load_settings
from touchpoint.db import Database
from touchpoint.i18n import Translator, get_translator
from touchpoint.messaging import (
    ChannelBlocked,
    ChannelRejected,
    ChannelRetryAfter,
    ChannelUnavailable,
    OutgoingMessage,
    Rendered,
    SendResult,
    template,
)
from touchpoint.messaging.pacing import GroupBudget, Pacing
from touchpoint.messaging.sender import OutboxSender, reap_expired_leases
from touchpoint.messaging.shared_pacing import SharedSlots, bot_rate_key, group_windows
from touchpoint.messaging.staff import StaffLane, StaffPost
from touchpoint.wiring import load_all_templates

TEMPLATE = "test.worker_note"
TELEGRAM_LIMIT_PER_S = 25.0  # the bot's configured rate before scaling


@template(TEMPLATE)
def _note(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return Rendered(f"note {params['n']}")


class BotApi:
    """The Channel (customers) and the GroupPoster (staff groups) over plain HTTP."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http = http
        self.url = f"{base.rstrip('/')}/bot{token}/"

    async def _call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self.http.post(self.url + method, json=payload) as response:
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChannelUnavailable(str(exc)) from exc
        if body.get("ok"):
            return dict(body["result"])
        code, words = int(body.get("error_code") or 0), str(body.get("description", ""))
        if code == 429:
            raise ChannelRetryAfter(float((body.get("parameters") or {}).get("retry_after", 1)))
        if code == 403:
            raise ChannelBlocked(words)
        if code >= 500:
            raise ChannelUnavailable(words)
        raise ChannelRejected(words)

    async def send(self, message: OutgoingMessage) -> SendResult:
        sent = await self._call("sendMessage", {
            "chat_id": message.chat_id, "text": message.text, "parse_mode": "HTML",
            "disable_notification": message.disable_notification})
        return SendResult(int(sent["message_id"]))

    async def post(self, post: StaffPost) -> None:
        await self._call("sendMessage", {"chat_id": post.chat_id, "text": post.text, "parse_mode": "HTML",
                                         "message_thread_id": post.thread_id})


async def reap(db: Database, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
        await reap_expired_leases(db)


async def main() -> None:
    settings = load_settings()
    scale = float(os.environ["TP_WORKER_SCALE"])
    lease = timedelta(seconds=float(os.environ["TP_WORKER_LEASE_S"]))
    token = settings.bot_token.get_secret_value() if settings.bot_token else ""
    load_all_templates()
    db = Database(settings.database_url)
    redis = Redis.from_url(settings.redis_url or "")
    key = bot_rate_key(settings.redis_prefix, token)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with aiohttp.ClientSession() as http:
            api = BotApi(http, settings.telegram_api_base, token)
            sender = OutboxSender(db, settings, api, get_translator(), lease=lease,
                                  pacing=Pacing(global_per_second=TELEGRAM_LIMIT_PER_S).scaled(scale),
                                  shared=SharedSlots(redis, key))
            budget = GroupBudget(settings.handoff_group_max_posts, settings.handoff_group_window_s,
                                 shared=group_windows(redis, key))
            lane = StaffLane(db, api, budget, lease=lease)
            print("ready", flush=True)
            await asyncio.gather(sender.run(stop, idle_poll_s=0.05), lane.run(stop, idle_poll_s=0.05),
                                 reap(db, stop))
            await sender.release()
    finally:
        await db.dispose()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
