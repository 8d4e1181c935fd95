"""One OpenAI-compatible chat-completions endpoint, used carefully: a time-out per request, a cap
on requests in flight, retries with back-off (the ``openai`` client's own), token and latency
metrics, and a circuit breaker. Every failure is a ``ModelUnavailable``: callers then fall back
to the offline behaviour."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
from openai import AsyncOpenAI
from prometheus_client import Counter, Histogram

from touchpoint.config import Settings
from touchpoint.observability import REGISTRY

log = logging.getLogger(__name__)

LLM_REQUESTS = Counter("touchpoint_llm_requests_total", "Model requests by purpose and outcome",
                       ["purpose", "outcome"], registry=REGISTRY)
LLM_TOKENS = Counter("touchpoint_llm_tokens_total", "Model tokens by purpose and kind (prompt, completion)",
                     ["purpose", "kind"], registry=REGISTRY)
LLM_SECONDS = Histogram("touchpoint_llm_seconds", "Model request latency, retries included", ["purpose"],
                        buckets=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0), registry=REGISTRY)


class ModelUnavailable(Exception):
    """The model did not answer (time-out, error, breaker open): use the offline behaviour."""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0


class CircuitBreaker:
    """``failures`` in a row open it for ``cooldown_s``; then one trial request may close it."""

    def __init__(self, failures: int, cooldown_s: float) -> None:
        self.failures, self.cooldown_s = failures, cooldown_s
        self._in_a_row = 0
        self._open_until = 0.0

    @property
    def open(self) -> bool:
        return time.monotonic() < self._open_until

    def succeeded(self) -> None:
        self._in_a_row, self._open_until = 0, 0.0

    def failed(self) -> None:
        self._in_a_row += 1
        if self._in_a_row >= self.failures:
            self._open_until = time.monotonic() + self.cooldown_s
            self._in_a_row = self.failures - 1  # after the cool-down, one more failure reopens it
            log.warning("model endpoint failing: answering offline for %.0f s", self.cooldown_s)


class Provider:
    def __init__(self, settings: Settings) -> None:
        if not settings.llm_base_url:
            raise ValueError("no model endpoint configured")
        self.model = settings.llm_model
        self.max_tokens = settings.llm_max_tokens
        self.client = AsyncOpenAI(base_url=settings.llm_base_url, api_key=settings.llm_key(),
                                  timeout=settings.llm_timeout_s, max_retries=settings.llm_max_retries)
        self.breaker = CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_cooldown_s)
        self._slots = asyncio.Semaphore(settings.llm_max_concurrency)
        self._deadline_s = settings.llm_timeout_s * (settings.llm_max_retries + 1)

    async def close(self) -> None:
        await self.client.close()

    async def complete(self, purpose: str, messages: list[dict[str, str]]) -> Reply:
        """The whole answer at once."""
        parts = [chunk async for chunk in self.stream(purpose, messages, stream=False)]
        return parts[-1] if parts else Reply("")

    async def stream(self, purpose: str, messages: list[dict[str, str]],
                     stream: bool = True) -> AsyncIterator[Reply]:
        """The answer so far, growing (streamed), the last one with its token counts."""
        if self.breaker.open:
            LLM_REQUESTS.labels(purpose, "breaker_open").inc()
            raise ModelUnavailable("circuit open")
        started = time.perf_counter()
        try:
            async with self._slots:
                if stream:  # each chunk within the client's time-out (a read time-out)
                    reply = None
                    async for reply in self._streamed(messages, started):
                        yield reply
                else:
                    async with asyncio.timeout(self._deadline_s):  # retries included
                        reply = await self._whole(messages, started)
                    yield reply
        # The client turns transport failures, mid-stream ones included, into its own errors.
        except (openai.OpenAIError, TimeoutError, ValueError) as exc:
            self.breaker.failed()
            LLM_REQUESTS.labels(purpose, type(exc).__name__).inc()
            raise ModelUnavailable(type(exc).__name__) from exc
        self.breaker.succeeded()
        LLM_REQUESTS.labels(purpose, "ok").inc()
        LLM_SECONDS.labels(purpose).observe(time.perf_counter() - started)
        if reply is not None:
            LLM_TOKENS.labels(purpose, "prompt").inc(reply.prompt_tokens)
            LLM_TOKENS.labels(purpose, "completion").inc(reply.completion_tokens)

    async def _whole(self, messages: list[dict[str, str]], started: float) -> Reply:
        response = await self.client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=self.max_tokens, temperature=0)  # type: ignore[arg-type]
        if not response.choices:
            raise ValueError("no choices in the model's answer")
        usage = response.usage
        return Reply(response.choices[0].message.content or "",
                     usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                     _ms(started))

    async def _streamed(self, messages: list[dict[str, str]], started: float) -> AsyncIterator[Reply]:
        chunks = await self.client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=self.max_tokens, temperature=0,  # type: ignore[arg-type]
            stream=True, stream_options={"include_usage": True})
        text, prompt_tokens, completion_tokens = "", 0, 0
        async for chunk in chunks:
            if chunk.usage is not None:
                prompt_tokens, completion_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                text += delta
                yield Reply(text, latency_ms=_ms(started))
        yield Reply(text, prompt_tokens, completion_tokens, _ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
