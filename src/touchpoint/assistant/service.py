"""The assistant's service functions: switches, grounded answers for customers, reply drafts for
staff, translation, ratings and the console's figures. Every function returns "nothing" (None,
or an outcome other than "sent") when the model is off, switched off or failing: callers then do
what they do without it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.assistant.grounding import (
    Checked,
    Grounding,
    Source,
    check,
    ground,
    last_customer_words,
    shown_so_far,
    sources_cited,
)
from touchpoint.assistant.models import (
    CAPABILITIES,
    AssistantAnswer,
    AssistantSwitch,
    Translation,
    TranslationSetting,
)
from touchpoint.assistant.provider import ModelUnavailable, Provider, Reply
from touchpoint.clock import utcnow
from touchpoint.config import SUPPORTED_LOCALES, Settings
from touchpoint.customers.models import Customer
from touchpoint.handoff.models import Conversation
from touchpoint.handoff.service import add_transcript, customer_locale

log = logging.getLogger(__name__)
Show = Callable[[str], Awaitable[None]]
TRANSLATE_LIMIT = 2000  # characters; longer texts are not translated (staff read the original)


class Assistant:
    """The model endpoint of this process (none while ``TOUCHPOINT_LLM_BASE_URL`` is unset)."""

    def __init__(self, settings: Settings, provider: Provider | None = None) -> None:
        self.settings = settings
        self.provider = provider or (Provider(settings) if settings.llm_enabled else None)

    async def close(self) -> None:
        if self.provider is not None:
            await self.provider.close()

    async def on(self, session: AsyncSession, capability: str) -> bool:
        return self.provider is not None and await switched_on(session, capability)


# ------------------------------------------------------------------ switches


async def switches(session: AsyncSession) -> dict[str, bool]:
    rows = {row.capability: row.enabled for row in (await session.exec(select(AssistantSwitch))).all()}
    return {capability: rows.get(capability, True) for capability in CAPABILITIES}


async def switched_on(session: AsyncSession, capability: str) -> bool:
    row = await session.get(AssistantSwitch, capability)
    return row is None or row.enabled


async def set_switch(session: AsyncSession, capability: str, enabled: bool, by: str) -> bool:
    """False for an unknown capability (nothing changes)."""
    if capability not in CAPABILITIES:
        return False
    row = await session.get(AssistantSwitch, capability) or AssistantSwitch(capability=capability)
    row.enabled, row.updated_by, row.updated_at = enabled, by[:64], utcnow()
    session.add(row)
    return True


# ------------------------------------------------------------------ answers and drafts


@dataclass
class Answer:
    record: AssistantAnswer
    checked: Checked | None
    sources: list[Source] = field(default_factory=list)  # the cited ones

    @property
    def sent(self) -> bool:
        return self.record.outcome in ("sent", "offered")


async def answer_customer(assistant: Assistant, session: AsyncSession, customer: Customer, text: str,
                          locale: str, show: Show | None = None) -> Answer | None:
    """A grounded answer to a question the matcher was not sure of, recorded whatever became of
    it; ``show`` receives "" once the model is asked, then the checked text so far while it
    writes. None: switched off."""
    if assistant.provider is None or not await assistant.on(session, "answers"):
        return None
    grounding = await ground(session, assistant.settings, customer, text, locale)
    return await _write(assistant.provider, session, assistant.settings, "answer", customer, grounding, show)


async def draft_for_staff(assistant: Assistant, session: AsyncSession, conversation: Conversation,
                          words: str | None = None) -> Answer | None:
    """A suggested reply to the customer's latest message (``words``, else the transcript's), in
    their language, grounded the same way; it goes nowhere until a person sends it. None:
    switched off or nothing to answer."""
    if assistant.provider is None or conversation.id is None or not await assistant.on(session, "drafts"):
        return None
    customer = await session.get(Customer, conversation.customer_id)
    if words is None:
        words = await last_customer_words(session, conversation.id)
    if customer is None or not words:
        return None
    grounding = await ground(session, assistant.settings, customer, words,
                             customer_locale(customer, assistant.settings))
    answer = await _write(assistant.provider, session, assistant.settings, "draft", customer, grounding)
    answer.record.conversation_id = conversation.id
    return answer


async def _write(provider: Provider, session: AsyncSession, settings: Settings, kind: str, customer: Customer,
                 grounding: Grounding, show: Show | None = None) -> Answer:
    record = AssistantAnswer(kind=kind, customer_id=customer.id or 0, locale=grounding.locale,
                             question=grounding.question[:500], created_at=utcnow())
    session.add(record)
    if not grounding.sources:  # nothing to answer from: no need to ask
        record.outcome, record.reason = "refused", "no_sources"
        return Answer(record, None)
    reply = Reply("")
    messages = grounding.messages(settings.brand_name)
    if show is not None:
        await show("")  # "Thinking…" while the model reads the sources
    try:
        async for reply in provider.stream(kind, messages, stream=show is not None):
            visible = shown_so_far(reply.text, grounding) if show is not None else None
            if visible:
                await show(visible)
    except ModelUnavailable as exc:
        record.outcome, record.reason = "failed", str(exc)[:32]
        return Answer(record, None)
    checked = check(reply.text, grounding)
    record.answer, record.sources = checked.text[:4000], list(checked.cited)
    record.outcome = "offered" if kind == "draft" and checked.outcome == "sent" else checked.outcome
    record.reason = checked.reason
    record.prompt_tokens, record.completion_tokens = reply.prompt_tokens, reply.completion_tokens
    record.latency_ms = reply.latency_ms
    await session.flush()
    return Answer(record, checked, sources_cited(grounding, checked.cited))


async def rate(session: AsyncSession, customer: Customer, answer_id: int, helpful: bool) -> bool:
    """The customer's 👍 / 👎 on their own answer (a second tap changes it); False: not theirs."""
    record = await session.get(AssistantAnswer, answer_id)
    if record is None or record.customer_id != customer.id or record.kind != "answer":
        return False
    record.helpful = helpful
    session.add(record)
    return True


async def take_draft(session: AsyncSession, draft_id: int, outcome: str) -> AssistantAnswer | None:
    """Mark an offered draft sent (or edited) once: a second tap, from anyone, finds it taken."""
    result = await session.execute(
        update(AssistantAnswer)
        .where(col(AssistantAnswer.id) == draft_id, col(AssistantAnswer.kind) == "draft",
               col(AssistantAnswer.outcome) == "offered")
        .values(outcome=outcome))
    if not getattr(result, "rowcount", 0):
        return None
    return await session.get(AssistantAnswer, draft_id, populate_existing=True)


async def latest_draft(session: AsyncSession, conversation_id: int) -> AssistantAnswer | None:
    return (await session.exec(
        select(AssistantAnswer)
        .where(AssistantAnswer.conversation_id == conversation_id, AssistantAnswer.kind == "draft",
               AssistantAnswer.outcome == "offered")
        .order_by(col(AssistantAnswer.id).desc()).limit(1))).first()


# ------------------------------------------------------------------ translation


async def translation_locale(session: AsyncSession, scope: str, default: str) -> str | None:
    """The language a staff group or console user reads and writes in; None: translation off."""
    row = await session.get(TranslationSetting, scope)
    locale = default if row is None else row.locale
    return locale or None


async def set_translation(session: AsyncSession, scope: str, locale: str | None) -> bool:
    """``locale`` None or "": off. False for an unknown language (nothing changes)."""
    if locale and locale not in SUPPORTED_LOCALES:
        return False
    row = await session.get(TranslationSetting, scope) or TranslationSetting(scope=scope)
    row.locale = locale or ""
    session.add(row)
    return True


def keep_original(session: AsyncSession, conversation: Conversation, author: str, original: str) -> None:
    """A translated staff reply: the words as written stay in the transcript, as a note."""
    add_transcript(session, conversation.customer_id, "note", f"🌐 {original}", kind="original",
                   author=author, conversation_id=conversation.id)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def known_translation(session: AsyncSession, text: str, locale: str) -> str | None:
    return (await session.exec(select(Translation.text).where(
        Translation.source_sha == _sha(text), Translation.locale == locale))).first()


async def translate(assistant: Assistant, session: AsyncSession, text: str, locale: str) -> str | None:
    """``text`` in ``locale`` (kept, so each text is translated once); None when translation is
    off, the text is long, or the model fails: staff then read (or the customer gets) the original."""
    if (assistant.provider is None or not text.strip() or len(text) > TRANSLATE_LIMIT
            or locale not in SUPPORTED_LOCALES or not await assistant.on(session, "translation")):
        return None
    known = await known_translation(session, text, locale)
    if known is not None:
        return known
    language = {"en": "English", "ru": "Russian", "zh": "Simplified Chinese"}[locale]
    messages = [{"role": "system", "content": f"Translate the user's message into {language}. Reply with "
                 "the translation only. Keep names, numbers, order numbers, codes and links unchanged."},
                {"role": "user", "content": text}]
    try:
        reply = await assistant.provider.complete("translate", messages)
    except ModelUnavailable:
        return None
    translated = reply.text.strip()
    if not translated or len(translated) > 4 * len(text) + 100:
        return None
    try:
        async with session.begin_nested():  # another process may have kept the same one
            session.add(Translation(source_sha=_sha(text), locale=locale, text=translated,
                                    created_at=utcnow()))
    except IntegrityError:
        pass
    return translated


# ------------------------------------------------------------------ the console's figures


@dataclass(frozen=True, slots=True)
class Figures:
    answers: int
    sent: int
    refused: int
    rejected: int
    failed: int
    helpful: int
    unhelpful: int
    drafts: int
    drafts_sent: int


async def figures(session: AsyncSession) -> Figures:
    rows = (await session.execute(
        select(AssistantAnswer.kind, AssistantAnswer.outcome, AssistantAnswer.helpful, func.count())
        .group_by(AssistantAnswer.kind, AssistantAnswer.outcome, AssistantAnswer.helpful))).all()
    counts: dict[tuple[Any, ...], int] = {}
    for kind, outcome, helpful, count in rows:
        for key in ((kind,), (kind, outcome), (kind, "helpful", helpful)):
            counts[key] = counts.get(key, 0) + count
    return Figures(
        answers=counts.get(("answer",), 0), sent=counts.get(("answer", "sent"), 0),
        refused=counts.get(("answer", "refused"), 0), rejected=counts.get(("answer", "rejected"), 0),
        failed=counts.get(("answer", "failed"), 0), helpful=counts.get(("answer", "helpful", True), 0),
        unhelpful=counts.get(("answer", "helpful", False), 0), drafts=counts.get(("draft",), 0),
        drafts_sent=counts.get(("draft", "sent"), 0) + counts.get(("draft", "edited"), 0))


async def recent_answers(session: AsyncSession, limit: int = 50) -> list[AssistantAnswer]:
    return list((await session.exec(
        select(AssistantAnswer).order_by(col(AssistantAnswer.id).desc()).limit(limit))).all())
