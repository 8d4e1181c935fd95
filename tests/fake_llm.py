"""A fake OpenAI-compatible chat-completions server (aiohttp): records every prompt and answers
with what the test scripted — a text (streamed when asked), an HTTP error, or silence past the
client's time-out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class Scripted:
    text: str = ""
    status: int = 200
    delay_s: float = 0.0  # before answering (longer than the client's time-out: a time-out)
    cut_after: int | None = None  # streamed: the connection drops after this many chunks


Script = Callable[[list[dict[str, str]]], Scripted]


@dataclass
class FakeModel:
    url: str = ""
    script: Script = field(default=lambda _messages: Scripted("NO_ANSWER"))
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, text: str) -> None:
        self.script = lambda _messages: Scripted(text)

    def fail(self, status: int = 500, delay_s: float = 0.0) -> None:
        self.script = lambda _messages: Scripted(status=status, delay_s=delay_s)

    @property
    def prompts(self) -> list[str]:
        """Every prompt sent so far, its messages joined."""
        return ["\n".join(m["content"] for m in request["messages"]) for request in self.requests]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        scripted = self.script(body["messages"])
        if scripted.delay_s:
            await asyncio.sleep(scripted.delay_s)
        if scripted.status != 200:
            return web.json_response({"error": {"message": "scripted failure", "type": "server_error"}},
                                     status=scripted.status)
        usage = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": scripted.text}}],
                "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        words = scripted.text.split(" ")
        for n, word in enumerate(words):
            if n == scripted.cut_after and request.transport is not None:
                request.transport.close()
                return response
            piece = word if n == len(words) - 1 else word + " "
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                     "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                 "model": body["model"], "choices": [], "usage": usage}
        await response.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeModel]:
    model = FakeModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    model.url = f"http://127.0.0.1:{port}/v1"
    yield model
    await runner.cleanup()


def model_settings(model: FakeModel, **overrides: Any) -> dict[str, Any]:
    """Settings for a bot that talks to the fake model: short time-outs, no retries by default."""
    return {"llm_base_url": model.url, "llm_model": "fake", "llm_timeout_s": 1.0, "llm_max_retries": 0,
            **overrides}
