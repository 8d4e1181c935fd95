"""The optional assistant through the sandbox, against a fake OpenAI-compatible model: grounded
answers streamed with sendMessageDraft and checked before they are sent, the offline answer when
the model misbehaves or fails, staff drafts that need a tap, and translation both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import col, select

from tests.e2e.harness import BotHarness, button_data, button_texts, eventually
from tests.e2e.test_handoff_flow import ALWAYS_OPEN, GROUP, STAFF, topic_of, topic_text
from tests.fake_llm import FakeModel, Scripted, fake_model, model_settings  # noqa: F401
from touchpoint.assistant.models import AssistantAnswer
from touchpoint.channels.flood import MemoryFloodGate
from touchpoint.handoff.models import TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.sandbox import Sandbox
from touchpoint.seed.demo import seed_demo

t = get_translator()
BITCOIN = "can I pay with bitcoin?"  # the matcher is not sure (it suggests "payment methods")
GROUNDED = "We take cards, PayPal and Apple Pay; bitcoin is not among them [faq:payment-methods]."


@pytest.fixture
async def assistant_shop(sandbox: tuple[Sandbox, str], sqlite_url: str,
                         fake_model: FakeModel) -> AsyncIterator[BotHarness]:  # noqa: F811
    emulator, base_url = sandbox
    emulator.create_group(GROUP, "Support", admins=[STAFF], members=[9002])
    harness = BotHarness(emulator, base_url, sqlite_url, staff_chat_id=GROUP,
                         **ALWAYS_OPEN, **model_settings(fake_model))
    await seed_demo(harness.db)
    harness.flood_gate = MemoryFloodGate(max_messages=1000, window_s=10, mute_s=1)
    await harness.start()
    yield harness
    await harness.close()


async def answers(harness: BotHarness) -> list[AssistantAnswer]:
    async with harness.db.session() as session:
        return list((await session.exec(select(AssistantAnswer).order_by(col(AssistantAnswer.id)))).all())


async def test_a_grounded_answer_is_streamed_then_sent_with_its_source(
    assistant_shop: BotHarness, fake_model: FakeModel,  # noqa: F811
) -> None:
    fake_model.answer(GROUNDED)
    assistant_shop.sandbox.user(7101, language_code="en")
    reply = await assistant_shop.say(7101, BITCOIN)

    assert reply["text"].startswith("We take cards, PayPal and Apple Pay; bitcoin is not among them.")
    assert "[faq:" not in reply["text"]  # citations become the sources' names
    assert t("en", "assistant.answer.sources", sources="").strip() in reply["text"]
    assert button_texts(reply)[:2] == ["👍", "👎"]
    drafts = assistant_shop.sandbox.drafts(7101)
    assert drafts and drafts[0]["text"] == ""  # "Thinking…" first
    streamed = [d["text"] for d in drafts[1:]]
    assert streamed and all(reply["text"].startswith(text) for text in streamed)  # no citation marks
    prompt = fake_model.prompts[-1]
    assert "[faq:payment-methods]" in prompt and BITCOIN in prompt and "English" in prompt

    assistant_shop.sandbox.press_button(7101, reply["message_id"], button_data(reply, "👍"))

    async def rated() -> bool:
        (answer,) = await answers(assistant_shop)
        return answer.helpful is True

    await eventually(rated)
    (answer,) = await answers(assistant_shop)
    assert (answer.outcome, answer.sources) == ("sent", ["faq:payment-methods"])
    assert answer.prompt_tokens == 120 and answer.completion_tokens == 30
    assert assistant_shop.sandbox.callback_answers[-1]["text"] == t("en", "assistant.answer.thanks")


@pytest.mark.parametrize(("model_says", "reason"), [
    ("Yes, bitcoin works [faq:crypto-payments].", "unknown_source"),  # not retrieved
    ("We take cards and PayPal.", "no_citation"),
    ("Sorry about that! I will refund you the difference and add a discount [faq:payment-methods].",
     "promise"),
])
async def test_an_answer_the_checker_rejects_is_never_sent(
    assistant_shop: BotHarness, fake_model: FakeModel, model_says: str, reason: str,  # noqa: F811
) -> None:
    fake_model.answer(model_says)
    assistant_shop.sandbox.user(7201, language_code="en")
    reply = await assistant_shop.say(7201, BITCOIN)
    assert reply["text"] == t("en", "presale.answer.suggest")  # the offline answer
    sent = [m.get("text", "") for m in assistant_shop.sandbox.bot_messages(7201)]
    assert not any("bitcoin works" in text or "refund" in text or "PayPal" in text for text in sent)
    (answer,) = await answers(assistant_shop)
    assert (answer.outcome, answer.reason) == ("rejected", reason)


async def test_a_refusal_gives_the_honest_dont_know_and_a_person(
    assistant_shop: BotHarness, fake_model: FakeModel,  # noqa: F811
) -> None:
    fake_model.answer("NO_ANSWER")
    assistant_shop.sandbox.user(7251, language_code="en")
    reply = await assistant_shop.say(7251, "what is the airspeed velocity of an unladen swallow?")
    assert reply["text"] in (t("en", "presale.answer.none"), t("en", "presale.answer.suggest"))
    assert t("en", "presale.button.human") in button_texts(reply)


@pytest.mark.parametrize("failure", [
    Scripted(status=500), Scripted(status=200, delay_s=1.3), Scripted(GROUNDED, cut_after=3),
], ids=["5xx", "timeout", "broken stream"])
async def test_a_failing_model_falls_back_to_the_offline_answer(
    assistant_shop: BotHarness, fake_model: FakeModel, failure: Scripted,  # noqa: F811
) -> None:
    fake_model.script = lambda _messages: failure
    assistant_shop.sandbox.user(7301, language_code="en")
    reply = await assistant_shop.say(7301, BITCOIN, timeout=10)
    assert reply["text"] == t("en", "presale.answer.suggest")
    (answer,) = await answers(assistant_shop)
    assert answer.outcome == "failed"


async def test_a_staff_draft_goes_to_the_customer_only_after_a_tap(
    assistant_shop: BotHarness, fake_model: FakeModel,  # noqa: F811
) -> None:
    sandbox = assistant_shop.sandbox
    sandbox.user(7401, first_name="Nora", language_code="en")
    await assistant_shop.say(7401, "/human")
    thread = topic_of(sandbox, "Nora")
    fake_model.answer(GROUNDED)
    before = len(sandbox.bot_messages(7401))
    sandbox.send_text(7401, BITCOIN)
    draft = await topic_text(sandbox, thread, "bitcoin is not among them")
    assert button_texts(draft) == [t("en", "assistant.staff.send"), t("en", "assistant.staff.edit")]
    await assistant_shop.settled()
    assert len(sandbox.bot_messages(7401)) == before  # nothing went to the customer by itself

    sandbox.press_button(STAFF, draft["message_id"],
                         button_data(draft, t("en", "assistant.staff.send")), chat_id=GROUP)
    got = await sandbox.wait_for_bot_message(7401, predicate=lambda m: "bitcoin" in (m.get("text") or ""))
    assert got["text"] == "We take cards, PayPal and Apple Pay; bitcoin is not among them."
    await topic_text(sandbox, thread, t("en", "assistant.staff.sent", name=sandbox.users[STAFF].first_name))

    async def sent_and_kept() -> bool:
        async with assistant_shop.db.session() as session:
            lines = (await session.exec(select(TranscriptMessage.text)
                                        .where(TranscriptMessage.direction == "staff"))).all()
        return list(lines) == [got["text"]] and [a.outcome for a in await answers(assistant_shop)] == ["sent"]

    await eventually(sent_and_kept)


def translator(messages: list[dict[str, str]]) -> Scripted:
    """The fake model as a translator (grounded prompts: "don't know")."""
    system, text = messages[0]["content"], messages[-1]["content"]
    if system.startswith("Translate") and "English" in system:
        return Scripted({"Здравствуйте, где мой заказ?": "Hello, where is my order?",
                         "Мы принимаем карты и PayPal.": "We take cards and PayPal."}.get(text, text))
    if system.startswith("Translate") and "Russian" in system:
        sent = {"Hi, I'm checking your order now": "Здравствуйте, я проверяю ваш заказ"}
        return Scripted(sent.get(text, text))
    if "Question: можно оплатить биткоином?" in text:
        return Scripted("Мы принимаем карты и PayPal [faq:payment-methods].")
    return Scripted("NO_ANSWER")


async def test_translation_both_ways_keeps_the_originals(
    assistant_shop: BotHarness, fake_model: FakeModel,  # noqa: F811
) -> None:
    sandbox = assistant_shop.sandbox
    fake_model.script = translator
    sandbox.user(7501, first_name="Oleg", language_code="ru")
    await assistant_shop.say(7501, "/human")
    thread = topic_of(sandbox, "Oleg")

    sandbox.send_text(7501, "Здравствуйте, где мой заказ?")
    shown = await topic_text(sandbox, thread, "Здравствуйте, где мой заказ?")
    assert shown["text"].endswith(t("en", "assistant.staff.translation", text="Hello, where is my order?"))

    sandbox.staff_post(GROUP, STAFF, "Hi, I'm checking your order now", message_thread_id=thread)
    got = await sandbox.wait_for_bot_message(7501, predicate=lambda m: "проверяю" in (m.get("text") or ""))
    assert got["text"] == "Здравствуйте, я проверяю ваш заказ"
    await topic_text(sandbox, thread, t("en", "assistant.staff.sent_as", text=got["text"]))

    async def originals_kept() -> bool:
        async with assistant_shop.db.session() as session:
            lines = (await session.exec(select(TranscriptMessage.direction, TranscriptMessage.text)
                                        .where(col(TranscriptMessage.direction).in_(("in", "staff", "note")))
                                        .order_by(col(TranscriptMessage.id)))).all()
        return [tuple(line) for line in lines][-3:] == [
            ("in", "Здравствуйте, где мой заказ?"), ("note", "🌐 Hi, I'm checking your order now"),
            ("staff", "Здравствуйте, я проверяю ваш заказ")]

    await eventually(originals_kept)

    # A suggested reply is in the customer's language, shown to staff in theirs too.
    sandbox.send_text(7501, "можно оплатить биткоином?")
    draft = await topic_text(sandbox, thread, "Мы принимаем карты и PayPal.")
    assert draft["text"].endswith(t("en", "assistant.staff.translation", text="We take cards and PayPal."))

    # Translation is the group's choice: switched off, staff words go out as written.
    sandbox.staff_post(GROUP, STAFF, "/translate off")
    await sandbox.wait_for_bot_message(GROUP, predicate=lambda m: t("en", "assistant.staff.translate_off")
                                       in (m.get("text") or ""))
    sandbox.staff_post(GROUP, STAFF, "OK, one moment", message_thread_id=thread)
    plain = await sandbox.wait_for_bot_message(7501, predicate=lambda m: "moment" in (m.get("text") or ""))
    assert plain["text"] == "OK, one moment"
