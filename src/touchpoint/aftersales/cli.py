"""`touchpoint tickets …`: staff's view of after-sales tickets (and warranty checks) from a terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales import service, warranty
from touchpoint.config import get_settings
from touchpoint.db import Database

app = typer.Typer(help="After-sales tickets.", no_args_is_help=True)
T = TypeVar("T")


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(get_settings().database_url)
        try:
            async with db.session() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(main())


@app.command("list")
def list_command(
    status: str = typer.Option("open", help="a status, 'open' (not closed) or 'all'"),
    overdue: bool = typer.Option(False, help="only tickets past their first-response time"),
    limit: int = typer.Option(50),
) -> None:
    """Tickets, newest first: number, kind, status, SLA."""
    async def work(session: AsyncSession) -> list[str]:
        tickets = await service.list_tickets(
            session, status=None if status == "all" else status, overdue=overdue, limit=limit
        )
        return [
            f"{t.number}  {t.kind:<9} {t.status:<13} {t.created_at:%Y-%m-%d %H:%M}Z"
            f"{'  OVERDUE' if service.is_overdue(t) else ''}"
            for t in tickets
        ]

    lines = _run(work)
    typer.echo("\n".join(lines) if lines else "no tickets")


@app.command("show")
def show_command(number: str) -> None:
    """One ticket with its history."""
    async def work(session: AsyncSession) -> list[str] | None:
        ticket = await service.get_ticket(session, number)
        if ticket is None:
            return None
        lines = [
            f"{ticket.number}  {ticket.kind}  status={ticket.status}  order_id={ticket.order_id}",
            f"reason={ticket.reason}  photos={len(ticket.photos)}  csat={ticket.csat}",
            f"first response due {ticket.first_response_due_at:%Y-%m-%d %H:%M}Z"
            f"{'  OVERDUE' if service.is_overdue(ticket) else ''}",
            f"items: {', '.join(str(i.get('sku')) for i in ticket.items) or '-'}",
        ]
        if ticket.resolution:
            lines.append(f"resolution: {ticket.resolution}")
        for event in await service.ticket_history(session, ticket.id or 0):
            what = event.status if event.kind == "status" else event.kind
            when = f"{event.created_at:%Y-%m-%d %H:%M}Z"
            lines.append(f"  {when} {event.author:<12} {what}: {event.text[:200]}")
        return lines

    lines = _run(work)
    if lines is None:
        raise typer.Exit(_fail(f"no ticket {number}"))
    typer.echo("\n".join(lines))


@app.command("set-status")
def set_status_command(
    number: str, status: str,
    note: str = typer.Option(None, help="return instructions, or the reason for a rejection"),
    staff: str = typer.Option("cli", help="who acts (recorded on the ticket)"),
) -> None:
    """Move a ticket along its lifecycle; the customer is told."""
    async def work(session: AsyncSession) -> str:
        ticket = await service.get_ticket(session, number)
        if ticket is None:
            return f"no ticket {number}"
        allowed = ", ".join(service.TRANSITIONS.get(ticket.status, ())) or "none"
        try:  # a refusal changes nothing: set_status checks before it writes
            await service.set_status(session, get_settings(), ticket, status, staff=staff, note=note)
        except service.TicketError as exc:
            hint = f" (from {ticket.status}: {allowed})" if exc.code == "bad_transition" else ""
            return f"refused: {exc.code}{hint}"
        return ""

    error = _run(work)
    if error:
        raise typer.Exit(_fail(error))
    typer.echo(f"{number.upper()} → {status}")


@app.command("warranties")
def warranties_command(limit: int = typer.Option(50)) -> None:
    """Warranty registrations waiting for a receipt check, oldest first."""
    async def work(session: AsyncSession) -> list[str]:
        return [f"#{r.id}  {r.sku:<12} serial {r.serial_number:<16} bought {r.purchased_at:%Y-%m-%d}"
                f"  ends {r.warranty_ends_at:%Y-%m-%d}  receipt {r.receipt_photo}"
                for r in await warranty.pending_registrations(session, limit)]

    lines = _run(work)
    typer.echo("\n".join(lines) if lines else "no registrations waiting")


@app.command("verify-warranty")
def verify_warranty_command(
    registration_id: int,
    reject: bool = typer.Option(False, "--reject", help="the receipt does not prove the purchase"),
    note: str = typer.Option(None, help="what the customer should know (e.g. why it was rejected)"),
    staff: str = typer.Option("cli", help="who checked (recorded on the registration)"),
) -> None:
    """Confirm (or --reject) a registered warranty after checking its receipt; the customer is told."""
    async def work(session: AsyncSession) -> str:
        try:
            registration = await warranty.verify_warranty(
                session, get_settings(), registration_id, staff=staff, valid=not reject, note=note)
        except LookupError as exc:
            return f"!{exc}"
        return f"#{registration.id}: {registration.status}"

    result = _run(work)
    if result.startswith("!"):
        raise typer.Exit(_fail(result[1:]))
    typer.echo(result)


@app.command("csat")
def csat_command() -> None:
    """Ratings given to closed tickets."""
    report = _run(service.csat_report)
    average = f"{report.average:.2f}" if report.average is not None else "-"
    scores = "  ".join(f"{score}★ {report.by_score.get(score, 0)}" for score in range(1, 6))
    typer.echo(f"closed {report.closed}, rated {report.rated}, average {average}\n{scores}")


def _fail(message: str) -> int:
    typer.echo(message, err=True)
    return 1
