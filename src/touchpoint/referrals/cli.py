"""`touchpoint referrals …`: staff review of held referrals and a look at a customer's points."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.config import Settings, get_settings
from touchpoint.customers.service import get_customer_by_telegram_id
from touchpoint.db import Database
from touchpoint.referrals import ledger
from touchpoint.referrals.service import held_referrals, pending_rewards, review

app = typer.Typer(help="Referral programme and loyalty points.", no_args_is_help=True)
T = TypeVar("T")


def _run(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = get_settings()
        db = Database(settings.database_url)
        try:
            async with db.session() as session:
                return await work(session, settings)
        finally:
            await db.dispose()

    return asyncio.run(main())


@app.command("held")
def held() -> None:
    """Referrals held for review (too many joins too fast), oldest first."""
    async def work(session: AsyncSession, settings: Settings) -> list[str]:
        return [f"#{r.id}  referrer {r.referrer_id}  referee {r.referee_id}"
                f"  joined {r.created_at:%Y-%m-%d %H:%M}  order {r.order_id}"
                for r in await held_referrals(session)]

    lines = _run(work)
    typer.echo("\n".join(lines) if lines else "nothing held")


def _decide(referral_id: int, approve: bool) -> None:
    async def work(session: AsyncSession, settings: Settings) -> str:
        referral = await review(session, settings, referral_id, approve=approve)
        return f"#{referral.id}: {referral.status} ({referral.reason})"

    try:
        typer.echo(_run(work))
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@app.command("approve")
def approve(referral_id: int) -> None:
    """Pay a held referral (the monthly cap still applies)."""
    _decide(referral_id, True)


@app.command("reject")
def reject(referral_id: int) -> None:
    """Reject a held referral: nobody is paid."""
    _decide(referral_id, False)


@app.command("points")
def points(telegram_id: int) -> None:
    """A customer's spendable balance, referral points still pending, and latest ledger entries."""
    async def work(session: AsyncSession, settings: Settings) -> list[str]:
        customer = await get_customer_by_telegram_id(session, telegram_id)
        if customer is None or customer.id is None:
            return []
        entries = await ledger.recent(session, customer.id, limit=20)
        held, until = await pending_rewards(session, customer.id)
        pending = [f"pending {held} (spendable from {until:%Y-%m-%d %H:%M})"] if held and until else []
        return [f"balance {await ledger.balance(session, customer.id)}", *pending] + [
            f"{e.created_at:%Y-%m-%d %H:%M}  {e.kind:<7} {e.points:+6d}  {e.reason}  {e.reference}"
            for e in entries
        ]

    lines = _run(work)
    if not lines:
        typer.echo(f"no customer with Telegram id {telegram_id}", err=True)
        raise typer.Exit(1)
    typer.echo("\n".join(lines))
