"""The assistant in the console: its page (what it answered, from which sources, whether customers
found it helpful, a switch per capability: managers only) and its part of the conversation page
(a suggested reply sent only by a click, translation of the customer's words and of the staff
member's reply, each person's own translation language)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.assistant import service
from touchpoint.assistant.grounding import source_titles
from touchpoint.assistant.models import CAPABILITIES
from touchpoint.assistant.service import Assistant
from touchpoint.config import SUPPORTED_LOCALES
from touchpoint.console import actions
from touchpoint.console.auth import DB, POKE_SENDER, SETTINGS, STAFF, manager_only, ui
from touchpoint.console.models import StaffAccount
from touchpoint.customers.models import Customer
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.handoff.service import customer_locale

ASSISTANT = web.AppKey("console_assistant", Assistant)
TRANSLATE_PER_PAGE = 5  # customer lines newly translated per page view (the rest next time)
MAX_TEXT = 4000
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    app[ASSISTANT] = Assistant(app[SETTINGS])

    async def close(app: web.Application) -> None:
        await app[ASSISTANT].close()

    app.on_cleanup.append(close)
    app.router.add_routes(routes)


def console_scope(staff: StaffAccount) -> str:
    return f"console:{staff.id}"


async def reading_language(session: AsyncSession, staff: StaffAccount) -> str | None:
    return await service.translation_locale(session, console_scope(staff), staff.locale)


async def conversation_panel(request: web.Request, session: AsyncSession, conversation: Conversation,
                             customer: Customer, messages: list[TranscriptMessage]) -> dict[str, Any]:
    """The conversation page's assistant part; ``translations`` maps transcript ids to the
    customer's words in the staff member's language."""
    assistant = request.app[ASSISTANT]
    if assistant.provider is None:
        return {"assistant": None, "translations": {}}
    staff: StaffAccount = request[STAFF]
    mine = await reading_language(session, staff)
    theirs = customer_locale(customer, request.app[SETTINGS])
    translations = await customer_words_translated(request, session, conversation.customer_id, messages)
    draft = await service.latest_draft(session, conversation.id or 0)
    titles = await source_titles(session, draft.sources, staff.locale) if draft is not None else {}
    panel = {"draft": draft, "draft_sources": ", ".join(titles.values()),
             "mine": mine, "theirs": theirs, "translate_reply": mine is not None and mine != theirs,
             "locales": SUPPORTED_LOCALES, "switches": await service.switches(session)}
    return {"assistant": panel, "translations": translations}


async def customer_words_translated(request: web.Request, session: AsyncSession, customer_id: int,
                                    messages: list[TranscriptMessage]) -> dict[int, str]:
    """Transcript id → the customer's words in the staff member's language (when it differs from
    the customer's): kept translations, and at most ``TRANSLATE_PER_PAGE`` new ones, latest first."""
    assistant = request.app[ASSISTANT]
    if assistant.provider is None or not messages:
        return {}
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return {}
    mine = await reading_language(session, request[STAFF])
    if mine is None or mine == customer_locale(customer, request.app[SETTINGS]):
        return {}
    translations: dict[int, str] = {}
    budget = TRANSLATE_PER_PAGE
    for message in reversed(messages):
        if message.direction != "in" or not message.text or message.id is None:
            continue
        known = await service.known_translation(session, message.text, mine)
        if known is None and budget > 0:
            budget -= 1
            known = await service.translate(assistant, session, message.text, mine)
        if known:
            translations[message.id] = known
    return translations


async def _conversation(request: web.Request, session: AsyncSession) -> tuple[Conversation, Customer]:
    try:
        conversation = await session.get(Conversation, int(request.match_info["id"]))
    except ValueError:
        raise web.HTTPNotFound() from None
    if conversation is None:
        raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_conversation"))
    customer = await session.get(Customer, conversation.customer_id)
    if customer is None:
        raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_customer"))
    return conversation, customer


def _open(request: web.Request, conversation: Conversation) -> None:
    if conversation.status != "open":
        raise web.HTTPConflict(text=ui(request, "console.ui.err.closed"))


async def _text(request: web.Request) -> str:
    text = str((await request.post()).get("text", "")).strip()
    if not text or len(text) > MAX_TEXT:
        raise web.HTTPBadRequest(text=ui(request, "console.ui.err.text_length", max=MAX_TEXT))
    return text


def _poke_sender(request: web.Request) -> None:
    poke = request.app.get(POKE_SENDER)
    if poke is not None:
        poke()


@routes.post("/inbox/{id}/assistant/draft")
async def suggest(request: web.Request) -> web.StreamResponse:
    """Write a suggested reply to the customer's latest message (shown on the page, not sent)."""
    async with request.app[DB].session() as session:
        conversation, _customer = await _conversation(request, session)
        _open(request, conversation)
        answer = await service.draft_for_staff(request.app[ASSISTANT], session, conversation)
    if answer is None or not answer.sent:
        raise web.HTTPConflict(text=ui(request, "assistant.console.no_draft"))
    raise web.HTTPSeeOther(f"/inbox/{conversation.id}#assistant")


@routes.post("/inbox/{id}/assistant/send/{draft_id}")
async def send_draft(request: web.Request) -> web.StreamResponse:
    """The suggested reply, as it is or as the staff member changed it, goes to the customer."""
    text = await _text(request)
    async with request.app[DB].session() as session:
        conversation, _customer = await _conversation(request, session)
        _open(request, conversation)
        draft = await service.latest_draft(session, conversation.id or 0)
        if draft is None or str(draft.id) != request.match_info["draft_id"]:
            raise web.HTTPConflict(text=ui(request, "assistant.console.draft_taken"))
        await service.take_draft(session, draft.id or 0, "sent" if text == draft.answer else "edited")
        await actions.send_staff_reply(session, request.app[SETTINGS], conversation, request[STAFF], text)
    _poke_sender(request)
    raise web.HTTPSeeOther(f"/inbox/{conversation.id}")


@routes.post("/inbox/{id}/assistant/reply")
async def translated_reply(request: web.Request) -> web.StreamResponse:
    """A reply written in the staff member's language, sent in the customer's; the words as
    written stay in the transcript. When the model fails nothing is sent (the page says so)."""
    text = await _text(request)
    async with request.app[DB].session() as session:
        conversation, customer = await _conversation(request, session)
        _open(request, conversation)
        target = customer_locale(customer, request.app[SETTINGS])
        translated = await service.translate(request.app[ASSISTANT], session, text, target)
        if translated is None:
            raise web.HTTPServiceUnavailable(text=ui(request, "assistant.console.no_translation"))
        staff = request[STAFF]
        await actions.send_staff_reply(session, request.app[SETTINGS], conversation, staff, translated)
        service.keep_original(session, conversation, actions.author_name(staff), text)
    _poke_sender(request)
    raise web.HTTPSeeOther(f"/inbox/{conversation.id}")


@routes.post("/assistant/language")
async def my_language(request: web.Request) -> web.StreamResponse:
    """The signed-in person's translation language ("" for off)."""
    form = await request.post()
    locale = str(form.get("locale", ""))
    async with request.app[DB].session() as session:
        if not await service.set_translation(session, console_scope(request[STAFF]), locale or None):
            raise web.HTTPBadRequest(text=ui(request, "assistant.console.bad_language"))
    back = str(form.get("conversation", ""))
    raise web.HTTPSeeOther(f"/inbox/{int(back)}" if back.isdigit() else "/")


@routes.get("/assistant")
@manager_only
@aiohttp_jinja2.template("assistant.html")
async def assistant_page(request: web.Request) -> dict[str, Any]:
    async with request.app[DB].session() as session:
        figures = await service.figures(session)
        rows = await service.recent_answers(session)
        switches = await service.switches(session)
        titles = await source_titles(session, sorted({s for row in rows for s in row.sources}),
                                     request[STAFF].locale)
    return {"figures": figures, "rows": rows, "switches": switches, "capabilities": CAPABILITIES,
            "titles": titles,
            "configured": request.app[ASSISTANT].provider is not None}


@routes.post("/assistant/switch")
@manager_only
async def switch(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    enabled = str(form.get("enabled", "")) == "1"
    async with request.app[DB].session() as session:
        if not await service.set_switch(session, str(form.get("capability", "")), enabled,
                                        actions.author_name(request[STAFF])):
            raise web.HTTPBadRequest(text=ui(request, "assistant.console.bad_capability"))
    raise web.HTTPSeeOther("/assistant")
