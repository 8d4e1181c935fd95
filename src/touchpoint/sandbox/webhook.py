"""Webhook mode: push queued updates to the bot's URL, one at a time and in order.

Like Telegram, a failed delivery (network error or non-2xx answer) is retried,
with a short growing pause, before any later update is sent; the failure shows
in getWebhookInfo. A bot may answer a webhook with a method call in the response
body (aiogram does so as a multipart form); the sandbox executes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from touchpoint.sandbox.params import Params, Upload
from touchpoint.sandbox.state import BotApiError, JsonDict, PendingUpdate, SandboxState, Webhook

log = logging.getLogger(__name__)

Execute = Callable[[int, str, Params], Awaitable[Any]]
FIRST_RETRY_DELAY = 0.05
MAX_RETRY_DELAY = 2.0


class WebhookRejected(Exception):
    """The webhook answered with a non-2xx status."""


class WebhookDelivery:
    def __init__(self, state: SandboxState, execute: Execute) -> None:
        self.state = state
        self._execute = execute
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sandbox-webhook")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while (hook := self.state.webhook) is not None and not self.state.closing:
                entry = self.state.pending[0] if self.state.pending else None
                if entry is None:
                    await self.state.updates_changed.wait()
                    continue
                try:
                    await self._deliver(session, hook, entry)
                except (aiohttp.ClientError, TimeoutError, WebhookRejected) as exc:
                    failures += 1
                    hook.last_error_date = int(self.state.clock())
                    hook.last_error_message = str(exc) or type(exc).__name__
                    await asyncio.sleep(
                        min(FIRST_RETRY_DELAY * 2 ** (failures - 1), MAX_RETRY_DELAY)
                    )
                    continue
                failures = 0
                if entry in self.state.pending:
                    self.state.pending.remove(entry)

    async def _deliver(
        self, session: aiohttp.ClientSession, hook: Webhook, entry: PendingUpdate
    ) -> None:
        headers = {}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        async with session.post(hook.url, json=entry.update, headers=headers) as response:
            if not 200 <= response.status < 300:
                raise WebhookRejected(
                    f"Wrong response from the webhook: {response.status} {response.reason}"
                )
            reply = await _read_method_reply(response)
        if reply is not None:
            name, params = reply
            try:
                await self._execute(hook.bot_id, name, params)
            except BotApiError as error:  # Telegram gives the bot no feedback either
                log.info("webhook reply %s failed: %s", name, error.description)


async def _read_method_reply(response: aiohttp.ClientResponse) -> tuple[str, Params] | None:
    """A method call the bot put in its webhook answer, if any."""
    values: JsonDict = {}
    uploads: dict[str, Upload] = {}
    if response.content_type == "application/json":
        body = await response.json()
        if isinstance(body, dict):
            values = body
    elif response.content_type == "multipart/form-data":
        reader = aiohttp.MultipartReader.from_response(response)
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            data = await part.read()
            if part.filename:
                uploads[part.name] = Upload(bytes(data), part.filename, None)
            else:
                values[part.name] = bytes(data).decode()
    name = values.pop("method", None)
    return (str(name), Params(values, uploads)) if name else None
