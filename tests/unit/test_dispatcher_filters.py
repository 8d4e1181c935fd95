"""Filters run in the event loop's thread: aiogram would send each plain one to a worker thread."""

from __future__ import annotations

import threading

from aiogram import F, Router

from bot.app import create_dispatcher, run_sync_filters_inline
from touchpoint.config import load_settings
from touchpoint.db import Database


async def test_plain_filters_run_inline_and_still_decide() -> None:
    seen: list[threading.Thread] = []

    def only_hello(text: str) -> bool:
        seen.append(threading.current_thread())
        return text == "hello"

    router = Router()
    router.message.filter(F.func(lambda _: True))
    router.message.register(lambda: None, lambda text: only_hello(text))
    settings = load_settings(_env_file=None)
    dispatcher = create_dispatcher(settings, Database("sqlite+aiosqlite://"))
    dispatcher.include_router(router)
    run_sync_filters_inline(dispatcher)

    [handler] = router.message.handlers
    assert (await handler.check(text="hello"))[0] is True
    assert (await handler.check(text="bye"))[0] is False
    assert seen == [threading.main_thread()] * 2
    filters = [f for r in dispatcher.chain_tail for o in r.observers.values() for h in o.handlers
               for f in h.filters or ()]
    assert filters and all(f.awaitable for f in filters)
