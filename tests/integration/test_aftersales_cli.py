"""`touchpoint tickets …` against a real database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from tests.aftersales_factories import make_catalogue, make_linked_customer
from touchpoint.aftersales import service, warranty
from touchpoint.catalog.models import Product
from touchpoint.cli import app
from touchpoint.clock import utcnow
from touchpoint.config import get_settings, load_settings
from touchpoint.db import Database
from touchpoint.messaging.models import OutboxMessage


@pytest.fixture
def cli_env(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TOUCHPOINT_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    yield sqlite_url
    get_settings.cache_clear()


async def _given_ticket(url: str) -> str:
    db = Database(url)
    try:
        async with db.session() as session:
            customer = await make_linked_customer(session, 77)
            ticket = await service.create_ticket(
                session, load_settings(_env_file=None), customer,
                service.NewTicket(kind="return", details="broken lid"),
            )
            return ticket.number
    finally:
        await db.dispose()


async def _outbox_templates(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.session() as session:
            return list((await session.exec(select(OutboxMessage.template))).all())
    finally:
        await db.dispose()


def test_list_show_and_set_status(cli_env: str) -> None:
    """Sync on purpose: the CLI runs its own event loop."""
    number = asyncio.run(_given_ticket(cli_env))
    runner = CliRunner()
    listed = runner.invoke(app, ["tickets", "list"])
    assert listed.exit_code == 0 and number in listed.output and "new" in listed.output
    refused = runner.invoke(app, ["tickets", "set-status", number, "refunded"])
    assert refused.exit_code == 1 and "bad_transition" in refused.output
    no_reason = runner.invoke(app, ["tickets", "set-status", number, "rejected"])
    assert no_reason.exit_code == 1 and "reason_required" in no_reason.output
    moved = runner.invoke(app, ["tickets", "set-status", number.lower(), "approved", "--note", "Bring it in"])
    assert moved.exit_code == 0, moved.output
    shown = runner.invoke(app, ["tickets", "show", number])
    assert "status=approved" in shown.output and "resolution: Bring it in" in shown.output
    assert "broken lid" in shown.output
    assert asyncio.run(_outbox_templates(cli_env)) == ["aftersales.status"]
    assert "closed 0, rated 0" in runner.invoke(app, ["tickets", "csat"]).output
    assert runner.invoke(app, ["tickets", "show", "R-999999"]).exit_code == 1


async def _given_registration(url: str) -> int:
    db = Database(url)
    try:
        async with db.session() as session:
            await make_catalogue(session)
            customer = await make_linked_customer(session, 78)
            product = await session.get(Product, "ESP-1")
            assert product is not None
            registration = await warranty.register_warranty(
                session, customer, product, utcnow().date() - timedelta(days=10), "SN78", "file78")
            await session.flush()
            return registration.id or 0
    finally:
        await db.dispose()


def test_staff_verify_a_warranty_registration(cli_env: str) -> None:
    registration_id = asyncio.run(_given_registration(cli_env))
    runner = CliRunner()
    waiting = runner.invoke(app, ["tickets", "warranties"])
    assert waiting.exit_code == 0 and f"#{registration_id}" in waiting.output and "SN78" in waiting.output
    done = runner.invoke(app, ["tickets", "verify-warranty", str(registration_id), "--staff", "anna"])
    assert (done.exit_code, done.output.strip()) == (0, f"#{registration_id}: verified"), done.output
    again = runner.invoke(app, ["tickets", "verify-warranty", str(registration_id), "--reject"])
    assert again.exit_code == 1 and "not waiting for a check" in again.output
    assert "no registrations waiting" in runner.invoke(app, ["tickets", "warranties"]).output
    assert asyncio.run(_outbox_templates(cli_env)) == ["aftersales.warranty_checked"]
