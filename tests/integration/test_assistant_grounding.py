"""What the model is sent, through a fake OpenAI-compatible server: the shop's own sources, and a
customer's order facts only when they are verified and ask about their orders — never their name,
phone, e-mail or address. And the provider's retries and circuit breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from tests.factories import make_customer
from tests.fake_llm import FakeModel, Scripted, fake_model, model_settings  # noqa: F401
from touchpoint.assistant.models import AssistantAnswer
from touchpoint.assistant.provider import ModelUnavailable, Provider
from touchpoint.assistant.service import Assistant, answer_customer, set_switch, translate
from touchpoint.config import load_settings
from touchpoint.customers.models import StoreCustomer
from touchpoint.db import Database
from touchpoint.orders.models import Order
from touchpoint.seed.demo import seed_demo

PARCEL = "when will my parcel arrive?"


@pytest.fixture
async def shop_db(sqlite_db: Database) -> AsyncIterator[Database]:
    await seed_demo(sqlite_db)
    yield sqlite_db


@pytest.fixture
async def assistant(fake_model: FakeModel) -> AsyncIterator[Assistant]:  # noqa: F811
    helper = Assistant(load_settings(_env_file=None, **model_settings(fake_model)))
    yield helper
    await helper.close()


async def test_order_facts_only_for_a_verified_customer_asking_about_orders(
    shop_db: Database, assistant: Assistant, fake_model: FakeModel,  # noqa: F811
) -> None:
    async with shop_db.session() as session:
        order = (await session.exec(select(Order).where(Order.tracking_number != None))).first()  # noqa: E711
        assert order is not None and order.store_customer_id is not None
        record = await session.get(StoreCustomer, order.store_customer_id)
        assert record is not None and record.phone and record.email
        guest = await make_customer(session, 8101, first_name="Gina", phone=record.phone)
        verified = await make_customer(session, 8102, first_name=record.name,
                                       store_customer_id=order.store_customer_id, phone=record.phone)
        asked = ((guest, PARCEL), (verified, "can I pay with bitcoin?"), (verified, PARCEL))
        for customer, question in asked:
            await answer_customer(assistant, session, customer, question, "en")
    without_orders = fake_model.prompts[:2]
    with_orders = fake_model.prompts[2]

    assert all("[order:" not in prompt and order.number not in prompt for prompt in without_orders)
    assert f"[order:{order.number}]" in with_orders and str(order.tracking_number) in with_orders
    personal = [record.name, record.phone, record.email, "Gina", order.delivery_address or record.name]
    for prompt in fake_model.prompts:
        assert not [value for value in personal if value and value in prompt], prompt


async def test_what_the_customer_typed_is_masked(
    shop_db: Database, assistant: Assistant, fake_model: FakeModel,  # noqa: F811
) -> None:
    async with shop_db.session() as session:
        customer = await make_customer(session, 8201)
        question = "my mail is anna.k@example.org and phone +49 170 1234567, can I pay with bitcoin?"
        await answer_customer(assistant, session, customer, question, "en")
    (prompt,) = fake_model.prompts
    assert "anna.k@example.org" not in prompt and "1234567" not in prompt
    assert "[email]" in prompt and "[phone]" in prompt and "bitcoin" in prompt


async def test_a_5xx_is_retried_and_a_failing_endpoint_opens_the_breaker(
    fake_model: FakeModel,  # noqa: F811
) -> None:
    provider = Provider(load_settings(_env_file=None, **model_settings(
        fake_model, llm_max_retries=1, llm_breaker_failures=2)))
    fake_model.fail(503)
    messages = [{"role": "user", "content": "hi"}]
    try:
        for _ in range(2):
            with pytest.raises(ModelUnavailable):
                await provider.complete("test", messages)
        assert len(fake_model.requests) == 4  # each call: the request and one retry
        with pytest.raises(ModelUnavailable, match="circuit open"):
            await provider.complete("test", messages)
        assert len(fake_model.requests) == 4  # the breaker answered: no request
    finally:
        await provider.close()


async def test_translations_are_kept_and_made_once(
    sqlite_db: Database, assistant: Assistant, fake_model: FakeModel,  # noqa: F811
) -> None:
    fake_model.script = lambda _messages: Scripted("Hello")
    async with sqlite_db.session() as session:
        assert await translate(assistant, session, "Привет", "en") == "Hello"
    async with sqlite_db.session() as session:
        assert await translate(assistant, session, "Привет", "en") == "Hello"
        assert (await session.exec(select(AssistantAnswer))).all() == []
    assert len(fake_model.requests) == 1


async def test_switched_off_or_unconfigured_nothing_is_asked(
    shop_db: Database, assistant: Assistant, fake_model: FakeModel,  # noqa: F811
) -> None:
    unconfigured = Assistant(load_settings(_env_file=None))
    async with shop_db.session() as session:
        customer = await make_customer(session, 8501)
        assert unconfigured.provider is None
        assert await answer_customer(unconfigured, session, customer, "can I pay with bitcoin?", "en") is None
        await set_switch(session, "answers", False, "alice")
        assert await answer_customer(assistant, session, customer, "can I pay with bitcoin?", "en") is None
        await set_switch(session, "translation", False, "alice")
        assert await translate(assistant, session, "Привет", "en") is None
    assert fake_model.requests == []
