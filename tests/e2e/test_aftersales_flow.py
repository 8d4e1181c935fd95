"""Returns & help as a customer sees it through the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select

from bot.channel import TelegramChannel
from tests.aftersales_factories import make_catalogue, make_linked_customer, make_order
from tests.e2e.harness import BotHarness, button_texts, eventually
from tests.e2e.test_handoff_flow import ALWAYS_OPEN as HANDOFF_ALWAYS_OPEN
from tests.e2e.test_handoff_flow import GROUP, STAFF, topic_of, topic_text
from touchpoint.aftersales import service
from touchpoint.aftersales.models import AftersalesDraft, Ticket, WarrantyRegistration
from touchpoint.config import load_settings
from touchpoint.customers.models import BehaviourEvent
from touchpoint.customers.service import get_customer_by_telegram_id
from touchpoint.handoff.models import Conversation
from touchpoint.i18n import get_translator
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.sandbox import Sandbox

t = get_translator()
# Never quiet: notifications go out whenever the test runs.
ALWAYS_OPEN = dict(quiet_hours_start=0, quiet_hours_end=0)


@pytest.fixture
async def harness(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[BotHarness]:
    """The real bot, with flood control loose enough for a customer who taps quickly."""
    emulator, base_url = sandbox
    bot_harness = BotHarness(emulator, base_url, sqlite_url, flood_max_messages=1000)
    await bot_harness.start()
    yield bot_harness
    await bot_harness.close()


async def given_order(harness: BotHarness, tid: int, *, days_ago: int | None = 5,
                      skus: tuple[str, ...] = ("ESP-1",), locale: str = "en") -> None:
    async with harness.db.session() as session:
        await make_catalogue(session)
        customer = await make_linked_customer(session, tid, locale=locale)
        await make_order(session, customer, f"A-{tid}", delivered_days_ago=days_ago, skus=skus)
    harness.sandbox.user(tid, language_code=locale)


async def to_kind_step(harness: BotHarness, tid: int, item: str = "Barista One") -> dict[str, Any]:
    menu = await harness.say(tid, "/start")
    hub = await harness.press(tid, menu, t("en", "menu.returns"))
    assert hub["text"] == t("en", "aftersales.menu.title")
    orders = await harness.press(tid, hub, t("en", "aftersales.button.new"))
    assert orders["text"] == t("en", "aftersales.orders.choose")
    items = await harness.press(tid, orders, button_texts(orders)[0])
    assert items["text"] == t("en", "aftersales.items.choose", number=f"A-{tid}")
    items = await harness.press(tid, items, item)
    assert f"✅ {item}" in button_texts(items)
    return await harness.press(tid, items, t("en", "aftersales.button.next"))


async def draft_step(harness: BotHarness, tid: int) -> str | None:
    async with harness.db.session() as session:
        customer = await get_customer_by_telegram_id(session, tid)
        assert customer is not None
        draft = await session.get(AftersalesDraft, customer.id)
        return draft.step if draft else None


async def tickets(harness: BotHarness) -> list[Ticket]:
    async with harness.db.session() as session:
        return list((await session.exec(select(Ticket))).all())


async def committed_tickets(harness: BotHarness, count: int) -> list[Ticket]:
    """The bot commits after it replied: wait for the update's transaction."""
    async def enough() -> bool:
        return len(await tickets(harness)) == count

    await eventually(enough)
    return await tickets(harness)


async def test_return_inside_window_with_photos(harness: BotHarness) -> None:
    await given_order(harness, 1001)
    kinds = await to_kind_step(harness, 1001)
    assert kinds["text"] == t("en", "aftersales.kind.choose")
    reasons = await harness.press(1001, kinds, t("en", "aftersales.kind.return"))
    assert reasons["text"] == t("en", "aftersales.reason.choose")
    details = await harness.press(1001, reasons, t("en", "aftersales.reason.damaged"))
    assert details["text"] == t("en", "aftersales.details.ask")
    photos = await harness.say(1001, "The box was crushed <b>badly</b>")
    assert photos["text"] == t("en", "aftersales.photos.ask", limit=5)
    for count in (1, 2):
        after = harness.last_message_id(1001)
        harness.sandbox.send_photo(1001)
        added = await harness.sandbox.wait_for_bot_message(1001, after_message_id=after)
        assert added["text"] == t("en", "aftersales.photos.added", count=count, limit=5)
    summary = await harness.press(1001, added, t("en", "aftersales.button.done"))
    assert "The box was crushed <b>badly</b>" in summary["text"]  # shown as typed, not as markup
    assert "Barista One" in summary["text"]
    done = await harness.press(1001, summary, t("en", "aftersales.button.confirm"))
    [ticket] = await committed_tickets(harness, 1)
    assert done["text"].startswith(f"Thanks! Your request {ticket.number} is in.")
    assert (ticket.kind, ticket.reason, ticket.status, len(ticket.photos)) == ("return", "damaged", "new", 2)
    assert ticket.items[0]["sku"] == "ESP-1"
    await eventually(lambda: _no_draft(harness, 1001))
    async with harness.db.session() as session:
        types = set((await session.exec(select(BehaviourEvent.type))).all())
    assert {"aftersales.started", "aftersales.step", "aftersales.submitted"} <= types


async def _no_draft(harness: BotHarness, tid: int) -> bool:
    return await draft_step(harness, tid) is None


async def test_outside_window_offers_repair(harness: BotHarness) -> None:
    await given_order(harness, 1002, days_ago=45)
    kinds = await to_kind_step(harness, 1002)
    refused = await harness.press(1002, kinds, t("en", "aftersales.kind.return"))
    assert refused["text"].startswith("The return window for Barista One ended on ")
    assert t("en", "aftersales.kind.repair") in button_texts(refused)
    assert t("en", "aftersales.kind.return") not in button_texts(refused)
    reasons = await harness.press(1002, refused, t("en", "aftersales.kind.repair"))
    assert reasons["text"] == t("en", "aftersales.reason.choose")


async def test_non_returnable_item_is_explained(harness: BotHarness) -> None:
    await given_order(harness, 1003, skus=("PC-1",))
    kinds = await to_kind_step(harness, 1003, item="Toothbrush")
    refused = await harness.press(1003, kinds, t("en", "aftersales.kind.exchange"))
    assert refused["text"].startswith(t("en", "aftersales.policy.non_returnable", item="Toothbrush"))
    assert t("en", "aftersales.kind.complaint") in button_texts(refused)


async def test_cancel_midway_and_back(harness: BotHarness) -> None:
    await given_order(harness, 1004)
    kinds = await to_kind_step(harness, 1004)
    back = await harness.press(1004, kinds, t("en", "button.back"))
    assert back["text"] == t("en", "aftersales.items.choose", number="A-1004")
    kinds = await harness.press(1004, back, t("en", "aftersales.button.next"))
    reasons = await harness.press(1004, kinds, t("en", "aftersales.kind.return"))
    cancelled = await harness.press(1004, reasons, t("en", "aftersales.button.cancel"))
    assert cancelled["text"] == t("en", "aftersales.cancelled")
    await eventually(lambda: _no_draft(harness, 1004))
    assert await tickets(harness) == []
    async with harness.db.session() as session:
        abandoned = (await session.exec(
            select(BehaviourEvent).where(BehaviourEvent.type == "aftersales.abandoned")
        )).one()
    assert abandoned.payload["step"] == "reason"


async def test_restart_midway_resumes(harness: BotHarness) -> None:
    await given_order(harness, 1005)
    kinds = await to_kind_step(harness, 1005)
    reasons = await harness.press(1005, kinds, t("en", "aftersales.kind.return"))
    await harness.press(1005, reasons, t("en", "aftersales.reason.defective"))
    await harness.restart()
    photos = await harness.say(1005, "It stopped heating")
    assert photos["text"] == t("en", "aftersales.photos.ask", limit=5)
    # The menu offers to continue the unfinished request.
    menu = await harness.say(1005, "/start")
    hub = await harness.press(1005, menu, t("en", "menu.returns"))
    prompt = await harness.press(1005, hub, t("en", "aftersales.button.new"))
    assert prompt["text"] == t("en", "aftersales.resume.prompt")
    resumed = await harness.press(1005, prompt, t("en", "aftersales.button.resume"))
    assert resumed["text"] == t("en", "aftersales.photos.ask", limit=5)


async def test_bad_input_gets_a_prompt_and_changes_nothing(harness: BotHarness) -> None:
    await given_order(harness, 1006, locale="ru")
    menu = await harness.say(1006, "/start")
    hub = await harness.press(1006, menu, t("ru", "menu.returns"))
    orders = await harness.press(1006, hub, t("ru", "aftersales.button.new"))
    items = await harness.press(1006, orders, button_texts(orders)[0])
    # Text where a button is expected.
    reply = await harness.say(1006, "return it please")
    assert reply["text"] == t("ru", "aftersales.use_buttons")
    assert await draft_step(harness, 1006) == "items"
    # Next without choosing an item: an alert, still on the items step.
    harness.sandbox.press_button(1006, items["message_id"], "as:next:0:")
    items = await harness.press(1006, items, "Barista One")
    kinds = await harness.press(1006, items, t("ru", "aftersales.button.next"))
    reasons = await harness.press(1006, kinds, t("ru", "aftersales.kind.return"))
    await harness.press(1006, reasons, t("ru", "aftersales.reason.other"))
    # Huge text.
    reply = await harness.say(1006, "x" * 3000)
    assert reply["text"] == t("ru", "aftersales.details.too_long", limit=2000)
    assert await draft_step(harness, 1006) == "details"
    await harness.say(1006, "ok")
    # A PDF where a photo is expected.
    after = harness.last_message_id(1006)
    harness.sandbox.send_document(1006)
    wrong = await harness.sandbox.wait_for_bot_message(1006, after_message_id=after)
    assert wrong["text"] == t("ru", "aftersales.photos.wrong_type")
    async with harness.db.session() as session:
        draft = (await session.exec(select(AftersalesDraft))).one()
    assert draft.step == "photos" and draft.data["photos"] == [] and draft.data["details"] == "ok"


async def test_status_changes_reach_customer_then_csat(harness: BotHarness) -> None:
    settings = load_settings(_env_file=None, database_url=harness.db.url, **ALWAYS_OPEN)
    await given_order(harness, 1007)
    await harness.say(1007, "/start")
    async with harness.db.session() as session:
        customer = await get_customer_by_telegram_id(session, 1007)
        assert customer is not None
        ticket = await service.create_ticket(session, settings, customer, service.NewTicket(kind="return"))
        await service.set_status(session, settings, ticket, "approved", staff="9")
        number = ticket.number
    assert harness.bot is not None
    sender = OutboxSender(harness.db, settings, TelegramChannel(harness.bot), t, pacing=Pacing().scaled(1000))
    await sender.drain_once()
    approved = await harness.sandbox.wait_for_bot_message(
        1007, predicate=lambda m: number in (m.get("text") or "")
    )
    assert t("en", "aftersales.status.approved") in approved["text"]
    assert t("en", "aftersales.notify.instructions", number=number) in approved["text"]
    card = await harness.press(1007, approved, t("en", "aftersales.button.open"))
    assert number in card["text"] and t("en", "aftersales.button.add_message") in button_texts(card)

    async with harness.db.session() as session:
        ticket = await session.get(Ticket, ticket.id)
        assert ticket is not None
        for status in ("item_received", "refunded", "closed"):
            await service.set_status(session, settings, ticket, status, staff="9")
    while await sender.drain_once():
        pass
    ask = await harness.sandbox.wait_for_bot_message(
        1007, predicate=lambda m: m.get("text") == t("en", "aftersales.csat.ask", number=number)
    )
    thanks = await harness.press(1007, ask, "4 ⭐")
    assert thanks["text"] == t("en", "aftersales.csat.thanks", score=4)
    saved = await harness.say(1007, "Quick and friendly")
    assert saved["text"] == t("en", "aftersales.csat.comment_saved")

    async def rated() -> bool:
        [stored] = await tickets(harness)
        return (stored.csat, stored.csat_comment) == (4, "Quick and friendly")

    await eventually(rated)


async def test_low_csat_hands_the_customer_to_staff_with_a_topic_and_card(
    sandbox: tuple[Sandbox, str], sqlite_url: str
) -> None:
    """A 1–2 rating goes through the handoff: staff get a topic with the context card."""
    emulator, base_url = sandbox
    emulator.create_group(GROUP, "Support", admins=[STAFF])
    harness = BotHarness(emulator, base_url, sqlite_url, flood_max_messages=1000, staff_chat_id=GROUP,
                         **HANDOFF_ALWAYS_OPEN)
    await harness.start()
    try:
        settings = load_settings(_env_file=None, database_url=harness.db.url, staff_chat_id=GROUP,
                                 **ALWAYS_OPEN, **HANDOFF_ALWAYS_OPEN)
        await given_order(harness, 1008)
        harness.sandbox.user(1008, first_name="Lena")
        await harness.say(1008, "/start")
        async with harness.db.session() as session:
            customer = await get_customer_by_telegram_id(session, 1008)
            assert customer is not None
            ticket = await service.create_ticket(session, settings, customer,
                                                 service.NewTicket(kind="complaint"))
            await service.set_status(session, settings, ticket, "closed", staff="9")
        assert harness.bot is not None
        sender = OutboxSender(harness.db, settings, TelegramChannel(harness.bot), t,
                              pacing=Pacing().scaled(1000))
        while await sender.drain_once():
            pass
        ask = await harness.sandbox.wait_for_bot_message(
            1008, predicate=lambda m: m.get("text") == t("en", "aftersales.csat.ask", number=ticket.number)
        )
        low = await harness.press(1008, ask, "1 ⭐")
        assert low["text"] == t("en", "aftersales.csat.low")

        async def escalated() -> bool:
            async with harness.db.session() as session:
                conversation = (await session.exec(select(Conversation))).first()
                stored = await session.get(Ticket, ticket.id)
            return conversation is not None and conversation.reason == "low_csat" and (
                conversation.topic_id is not None and stored is not None and stored.csat == 1
            )

        await eventually(escalated)
        card = await topic_text(harness.sandbox, topic_of(harness.sandbox, "Lena"),
                                t("en", "handoff.reason.low_csat"))
        assert "Lena" in card["text"]
    finally:
        await harness.close()


async def test_my_requests_and_adding_a_message(harness: BotHarness) -> None:
    settings = load_settings(_env_file=None, database_url=harness.db.url, **ALWAYS_OPEN)
    await given_order(harness, 1009)
    menu = await harness.say(1009, "/start")
    async with harness.db.session() as session:
        customer = await get_customer_by_telegram_id(session, 1009)
        assert customer is not None
        ticket = await service.create_ticket(session, settings, customer, service.NewTicket(kind="complaint"))
    hub = await harness.press(1009, menu, t("en", "menu.returns"))
    mine = await harness.press(1009, hub, t("en", "aftersales.button.mine"))
    assert mine["text"] == t("en", "aftersales.mine.title")
    label = t("en", "aftersales.mine.button", number=ticket.number, status=t("en", "aftersales.status.new"))
    card = await harness.press(1009, mine, label)
    ask = await harness.press(1009, card, t("en", "aftersales.button.add_message"))
    assert ask["text"] == t("en", "aftersales.ticket.ask_message")
    added = await harness.say(1009, "Courier was two days late")
    assert added["text"] == t("en", "aftersales.ticket.message_added", number=ticket.number)
    after = harness.last_message_id(1009)
    harness.sandbox.send_photo(1009)
    await harness.sandbox.wait_for_bot_message(1009, after_message_id=after)

    async def both_added() -> bool:
        async with harness.db.session() as session:
            history = await service.ticket_history(session, ticket.id or 0)
            stored = await session.get(Ticket, ticket.id)
        texts = [e.text for e in history if e.kind == "message"]
        return texts == ["Courier was two days late", ""] and stored is not None and len(stored.photos) == 1

    await eventually(both_added)


async def test_warranty_registration(harness: BotHarness) -> None:
    await given_order(harness, 1010)
    menu = await harness.say(1010, "/start")
    hub = await harness.press(1010, menu, t("en", "menu.returns"))
    ask = await harness.press(1010, hub, t("en", "aftersales.button.warranty"))
    assert ask["text"] == t("en", "aftersales.warranty.ask_product")
    assert (await harness.say(1010, "kettle"))["text"] == t("en", "aftersales.warranty.not_found")
    choose = await harness.say(1010, "barista")
    assert button_texts(choose)[0] == "Barista One"
    when = await harness.press(1010, choose, "Barista One")
    assert when["text"] == t("en", "aftersales.warranty.ask_date")
    assert (await harness.say(1010, "2999-01-01"))["text"] == t("en", "aftersales.warranty.bad_date")
    serial = await harness.say(1010, "15.03.2025")
    assert serial["text"] == t("en", "aftersales.warranty.ask_serial")
    assert (await harness.say(1010, "??"))["text"] == t("en", "aftersales.warranty.bad_serial")
    receipt = await harness.say(1010, "bx-2025-0001")
    assert receipt["text"] == t("en", "aftersales.warranty.ask_receipt")
    after = harness.last_message_id(1010)
    harness.sandbox.send_document(1010)
    wrong = await harness.sandbox.wait_for_bot_message(1010, after_message_id=after)
    assert wrong["text"] == t("en", "aftersales.photos.wrong_type")
    after = harness.last_message_id(1010)
    harness.sandbox.send_photo(1010)
    done = await harness.sandbox.wait_for_bot_message(1010, after_message_id=after)
    assert done["text"] == t("en", "aftersales.warranty.registered", product="Barista One",
                             date="Mar 15, 2027")

    async def stored() -> bool:
        async with harness.db.session() as session:
            found = (await session.exec(select(WarrantyRegistration))).first()
        return found is not None and (found.sku, found.serial_number, found.status) == (
            "ESP-1", "BX-2025-0001", "pending") and bool(found.receipt_photo)

    await eventually(stored)


@pytest.fixture
async def staffed(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[BotHarness]:
    """The real bot with a staff group, so that distress can hand a customer over."""
    emulator, base_url = sandbox
    emulator.create_group(GROUP, "Support", admins=[STAFF])
    bot_harness = BotHarness(emulator, base_url, sqlite_url, flood_max_messages=1000,
                             staff_chat_id=GROUP, **HANDOFF_ALWAYS_OPEN)
    await bot_harness.start()
    yield bot_harness
    await bot_harness.close()


async def test_upset_details_fill_the_request_then_hand_over_with_the_ticket(staffed: BotHarness) -> None:
    """Angry words typed as a complaint's details are its details, not an escalation mid-form;
    once the request is sent, the customer is handed to staff (reason distress) with the ticket."""
    harness = staffed
    await given_order(harness, 1011)
    harness.sandbox.user(1011, first_name="Olga")
    kinds = await to_kind_step(harness, 1011)
    reasons = await harness.press(1011, kinds, t("en", "aftersales.kind.complaint"))
    await harness.press(1011, reasons, t("en", "aftersales.reason.defective"))
    photos = await harness.say(1011, "The kettle is terrible, it leaks")
    assert photos["text"] == t("en", "aftersales.photos.ask", limit=5)
    assert await conversations_of(harness) == []
    summary = await harness.press(1011, photos, t("en", "aftersales.button.done"))
    assert "The kettle is terrible, it leaks" in summary["text"]
    after = harness.last_message_id(1011)
    done = await harness.press(1011, summary, t("en", "aftersales.button.confirm"))
    [ticket] = await committed_tickets(harness, 1)
    assert done["text"].startswith(f"Thanks! Your request {ticket.number} is in.")
    assert (ticket.kind, ticket.details) == ("complaint", "The kettle is terrible, it leaks")
    await harness.sandbox.wait_for_bot_message(  # after the ticket number, the honest wait
        1011, after_message_id=after,
        predicate=lambda m: m.get("text") == t("en", "handoff.wait.open", minutes=4))

    async def handed_over() -> bool:
        found = await conversations_of(harness)
        return len(found) == 1 and found[0].reason == "distress" and found[0].topic_id is not None

    await eventually(handed_over)
    card = await topic_text(harness.sandbox, topic_of(harness.sandbox, "Olga"), ticket.number)
    assert t("en", "handoff.reason.distress") in card["text"]


async def test_upset_message_on_a_ticket_is_added_then_hands_over(staffed: BotHarness) -> None:
    harness = staffed
    settings = load_settings(_env_file=None, database_url=harness.db.url, **ALWAYS_OPEN)
    await given_order(harness, 1012)
    menu = await harness.say(1012, "/start")
    async with harness.db.session() as session:
        customer = await get_customer_by_telegram_id(session, 1012)
        assert customer is not None
        ticket = await service.create_ticket(session, settings, customer, service.NewTicket(kind="repair"))
    hub = await harness.press(1012, menu, t("en", "menu.returns"))
    mine = await harness.press(1012, hub, t("en", "aftersales.button.mine"))
    label = t("en", "aftersales.mine.button", number=ticket.number, status=t("en", "aftersales.status.new"))
    card = await harness.press(1012, mine, label)
    await harness.press(1012, card, t("en", "aftersales.button.add_message"))
    after = harness.last_message_id(1012)
    added = await harness.say(1012, "Still broken, this is unacceptable")
    assert added["text"] == t("en", "aftersales.ticket.message_added", number=ticket.number)
    await harness.sandbox.wait_for_bot_message(
        1012, after_message_id=after,
        predicate=lambda m: m.get("text") == t("en", "handoff.wait.open", minutes=4))

    async def stored_and_handed_over() -> bool:
        async with harness.db.session() as session:
            history = await service.ticket_history(session, ticket.id or 0)
        found = await conversations_of(harness)
        return [e.text for e in history if e.kind == "message"] == [
            "Still broken, this is unacceptable"] and [c.reason for c in found] == ["distress"]

    await eventually(stored_and_handed_over)
    assert await draft_step(harness, 1012) is None  # the customer now talks to a person


async def test_upset_words_where_a_button_is_expected_still_escalate(staffed: BotHarness) -> None:
    harness = staffed
    await given_order(harness, 1013)
    await to_kind_step(harness, 1013)
    reply = await harness.say(1013, "this is ridiculous")
    assert reply["text"] == t("en", "handoff.wait.open", minutes=4)
    assert [c.reason for c in await conversations_of(harness)] == ["distress"]
    assert await draft_step(harness, 1013) == "kind"  # kept: continued after the handoff


async def conversations_of(harness: BotHarness) -> list[Conversation]:
    async with harness.db.session() as session:
        return list((await session.exec(select(Conversation))).all())
