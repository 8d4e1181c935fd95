"""`touchpoint faq ask TEXT` and `touchpoint faq eval FILE`: what the bot makes of a question,
against the configured database's FAQ and catalogue, with exactly the bot's index and thresholds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from sqlmodel import select

from touchpoint.catalog.models import FaqEntry
from touchpoint.config import get_settings
from touchpoint.db import Database
from touchpoint.db.migrate import upgrade_database
from touchpoint.understanding.evaluation import EvalFileError, evaluate, label, mistakes, parse_questions
from touchpoint.understanding.service import QuestionIndex, read_snapshot

faq_app = typer.Typer(help="What the bot makes of customers' questions.", no_args_is_help=True)
LOCALES = ("en", "ru", "zh")


async def _index() -> tuple[QuestionIndex, dict[str, dict[str, str]]]:
    settings = get_settings()
    await upgrade_database(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.session() as session:
            snapshot = await read_snapshot(session)
            answers = {entry.id: entry.answer for entry in (await session.exec(select(FaqEntry))).all()}
    finally:
        await db.dispose()
    return await asyncio.to_thread(QuestionIndex.build, snapshot), answers


@faq_app.command("ask")
def ask(text: str, locale: str = typer.Option("en", help="Answer language: en, ru, zh.")) -> None:
    """The verdict for one question and the ranked candidates with their scores."""
    if locale not in LOCALES:
        raise typer.BadParameter("use en, ru or zh", param_hint="--locale")
    index, answers = asyncio.run(_index())
    understanding = index.understand(text, get_settings().orders_number_pattern)
    match = understanding.match
    typer.echo(f"intent: {understanding.intent}   verdict: {match.verdict}")
    for name in ("order_number", "store_id", "category_id", "item"):
        value = getattr(understanding, name)
        if value:
            typer.echo(f"{name}: {value}")
    for rank, hit in enumerate(match.hits, 1):
        typer.echo(f"{rank}. {label(hit.target):32} score {hit.score:5.1f}   "
                   f"fuzzy {hit.fuzzy:5.1f}   semantic {hit.semantic:+.3f}")
    best = match.best
    if best is not None and match.verdict == "answer" and best.target.kind == "faq":
        texts = answers.get(best.target.id, {})
        typer.echo("\n" + (texts.get(locale) or texts.get("en") or ""))


@faq_app.command("eval")
def eval_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON line."),
    show_mistakes: bool = typer.Option(False, "--mistakes", help="List each question answered wrongly."),
) -> None:
    """Score labelled questions (language → [{q, expect}]) the way the bot answers them."""
    try:
        questions = parse_questions(path.read_text("utf-8-sig"))
    except EvalFileError as exc:
        typer.echo(f"{path}: {exc}", err=True)
        raise typer.Exit(1) from None
    index, _answers = asyncio.run(_index())
    pattern = get_settings().orders_number_pattern
    figures = evaluate(index, questions, pattern)
    if not as_json:
        typer.echo(f"{'':4} {'questions':>9} {'top1':>6} {'top3':>6} {'answered_right':>15} "
                   f"{'dont_know':>10}")
        for locale, count in figures["questions"].items():
            typer.echo(f"{locale:4} {count:9d} {figures['top1'][locale]:6.3f} {figures['top3'][locale]:6.3f} "
                       f"{figures['answered_right'][locale]:15.3f} {figures['dont_know_rate'][locale]:10.3f}")
        typer.echo(f"false_answer_rate {figures['false_answer_rate']:.3f}   "
                   f"p50 {figures['p50_ms']} ms   p99 {figures['p99_ms']} ms")
        if show_mistakes:
            for line in mistakes(index, questions, pattern):
                typer.echo(line)
    typer.echo(json.dumps({key: figures[key] for key in (
        "top1", "top3", "answered_right", "dont_know_rate", "false_answer_rate", "p50_ms", "p99_ms")}))
