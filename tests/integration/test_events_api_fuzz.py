"""Fuzzing the store events API from its own OpenAPI document (schemathesis + hypothesis).

Every operation gets schema-valid (positive) and schema-violating (negative) requests, each signed
with the test secret the way the store's backend signs them (a few keep the generated, unsigned or
garbled signature headers instead). The server is the real aiohttp app on a loopback port, on a
migrated and seeded database: SQLite, and PostgreSQL too when TOUCHPOINT_TEST_POSTGRES_URL is set
(each generated case is sent to both). The property: no answer is ever 5xx, over 2,000+ requests.

FUZZ_EXAMPLES scales the run; FUZZ_POSTGRES=0 leaves PostgreSQL out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import SecretStr

schemathesis = pytest.importorskip("schemathesis")

from schemathesis import GenerationMode  # noqa: E402

from tests.databases import POSTGRES_URL, postgres_database  # noqa: E402
from tests.integration.test_events_api_http import SECRET  # noqa: E402
from touchpoint.config import load_settings  # noqa: E402
from touchpoint.db import Database, upgrade_database  # noqa: E402
from touchpoint.events_api.app import create_events_app  # noqa: E402
from touchpoint.events_api.openapi import openapi_document  # noqa: E402
from touchpoint.events_api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign  # noqa: E402
from touchpoint.seed.demo import seed_demo  # noqa: E402

# Per operation and generation mode: 4 × 550 = 2,200 requests to each database backend.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "550"))
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
OPERATIONS = [("/api/v1/events", "POST"), ("/api/v1/link-tokens", "POST")]
SIGNED_HEADERS = {TIMESTAMP_HEADER.lower(), SIGNATURE_HEADER.lower()}


@dataclass
class Served:
    name: str
    base_url: str
    http_seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class _ServerThread(threading.Thread):
    """The events API in an event loop of its own, so hypothesis can drive it synchronously."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.database_url = database_url
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the test in the main thread
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._shutdown())

    async def _start(self) -> None:
        from aiohttp import web

        settings = load_settings(_env_file=None, database_url=self.database_url,
                                 events_secret=SecretStr(SECRET))
        self.db = Database(self.database_url, **settings.database_engine_options())
        await seed_demo(self.db)
        self.runner = web.AppRunner(create_events_app(settings, self.db), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def _shutdown(self) -> None:
        await self.runner.cleanup()
        await self.db.dispose()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(timeout=10)


def _serve(database_url: str) -> Iterator[Served]:
    server = _ServerThread(database_url)
    server.start()
    server.ready.wait(60)
    if server.error is not None:
        raise server.error
    try:
        yield Served(database_url.split(":", 1)[0], f"http://127.0.0.1:{server.port}")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Served]]:
    """The API on SQLite, and on PostgreSQL when one is configured: every case goes to each."""
    with contextlib.ExitStack() as stack:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
        asyncio.run(upgrade_database(url))
        served = [stack.enter_context(contextlib.contextmanager(_serve)(url))]
        if POSTGRES_URL and os.environ.get("FUZZ_POSTGRES", "1") != "0":
            loop = asyncio.new_event_loop()
            stack.callback(loop.close)
            database = postgres_database("tp_fuzz")
            pg_url = loop.run_until_complete(database.__aenter__())
            stack.callback(lambda: loop.run_until_complete(database.__aexit__(None, None, None)))
            loop.run_until_complete(upgrade_database(pg_url))
            served.append(stack.enter_context(contextlib.contextmanager(_serve)(pg_url)))
        yield served


def _request(case: Any, base_url: str, *, negative: bool) -> tuple[bytes, dict[str, str]]:
    """The body as bytes and the headers, signed over exactly those bytes (but one negative case in
    ten keeps the headers schemathesis generated: missing, malformed, stale)."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    headers = {key: str(value) for key, value in (kwargs.get("headers") or {}).items()}
    draw = zlib.crc32(str(headers.get("X-Schemathesis-TestCaseId", "")).encode())
    if "json" in kwargs:
        data = json.dumps(kwargs["json"], ensure_ascii=draw % 3 == 0).encode()
        headers["Content-Type"] = "application/json"
    elif kwargs.get("data") is not None:
        raw = kwargs["data"]
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogatepass")
    else:
        data = b""
    if not (negative and draw % 10 == 0):
        headers = {k: v for k, v in headers.items() if k.lower() not in SIGNED_HEADERS}
        timestamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = sign(SECRET, timestamp, data)
    return data, headers


def _fuzz(backends: list[Served], path: str, method: str, mode: GenerationMode) -> None:
    operation = SCHEMA[path][method]
    http = requests.Session()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        data, headers = _request(case, "http://127.0.0.1", negative=mode is GenerationMode.NEGATIVE)
        for served in backends:
            sent = time.monotonic()
            try:
                response = http.request(method, served.base_url + path, data=data, headers=headers,
                                        timeout=30)
            except requests.RequestException as exc:
                served.failures.append(f"{method} {path}: {type(exc).__name__} for {data[:200]!r}")
                continue
            served.http_seconds += time.monotonic() - sent
            served.statuses[response.status_code] += 1
            if response.status_code >= 500:
                served.failures.append(f"{method} {path} → {response.status_code} {response.text[:200]} "
                                       f"for {data[:300]!r} headers {headers}")

    check()


def test_no_request_gets_a_server_error(backends: list[Served]) -> None:
    started = time.monotonic()
    for path, method in OPERATIONS:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(backends, path, method, mode)
    print(f"\nfuzzing took {time.monotonic() - started:.0f}s")
    for served in backends:
        total = sum(served.statuses.values())
        print(f"{served.name}: {total} requests ({served.http_seconds:.0f}s waiting for answers): "
              f"{dict(sorted(served.statuses.items()))}")
        assert served.failures == [], "\n".join(served.failures[:10])
        assert total >= 4 * EXAMPLES * 0.9  # hypothesis may stop early on a small space; not by much
        assert served.statuses[200] > 0, "no schema-valid request got through: is the signing right?"
        assert {400, 401, 413, 422} & set(served.statuses)


def test_the_served_openapi_document_is_the_fuzzed_one(backends: list[Served]) -> None:
    response = requests.get(backends[0].base_url + "/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200 and response.json() == json.loads(json.dumps(openapi_document()))
