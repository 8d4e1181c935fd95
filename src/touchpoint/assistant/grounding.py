"""Grounded answers: the sources a question retrieves (FAQ entries and products through the
understanding layer's index; a verified customer's own orders when they ask about them), the
prompt that allows answering from those alone, and the checker every answer passes before anyone
sees it.

The checker rejects an answer that cites nothing, cites a source that was not retrieved, or
promises an action (a refund, a discount, a call-back): the assistant has no tool that performs
one, so any such promise would be untrue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog import service as catalog
from touchpoint.catalog.models import FaqEntry, Product
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.formatting import format_day, format_money
from touchpoint.handoff.models import TranscriptMessage
from touchpoint.orders import service as orders
from touchpoint.orders.models import Order
from touchpoint.understanding import intents
from touchpoint.understanding.service import ANSWERS, get_index

NO_ANSWER = "NO_ANSWER"
LANGUAGES = {"en": "English", "ru": "Russian", "zh": "Simplified Chinese"}
MIN_SCORE = 25.0  # retrieved below this, a source is noise (the matcher's scale, 0..100)
_CITATION = re.compile(r"\s*\[((?:faq|product|order):[^\]\s]{1,64})\]")
_OPEN_CITATION = re.compile(r"\s*\[[^\]]*$")  # a citation still being streamed
# Words that ask about the customer's own orders (with no number: a number goes to the orders flow).
_ABOUT_ORDERS = re.compile(r"\b(my )?(orders?|parcel|package|delivery|shipment|tracking)\b|заказ|посылк|"
                           r"доставк|трек|订单|包裹|快递|物流|发货", re.IGNORECASE)
# What may look like personal data in the customer's own words: masked before any prompt.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE = re.compile(r"\+?\d[\d ()-]{7,}\d")
# Promises of actions the assistant cannot take. First person ("I'll refund", "we've issued a
# discount", "мы вернём деньги", "我们会为您退款") and "your refund has been …" are promises;
# "refunds take 5 days" states a policy and passes.
_PROMISES = (
    re.compile(r"\b(i|we)\s*(will|'ll|’ll|have|'ve|’ve|can|am going to|are going to|shall|just|already)\b"
               r"[^.!?]{0,40}?\b(refund|reimburs|discount|voucher|coupon|compensat|credit|call you|ring you|"
               r"call back|callback|replac|cancel)", re.IGNORECASE),
    re.compile(r"\b(i|we)\s*(have|'ve|’ve)?\s*(issued|processed|refunded|credited|applied|arranged|"
               r"scheduled|booked|cancell?ed)\b", re.IGNORECASE),
    re.compile(r"\byour (refund|discount|voucher|coupon|compensation|call-?back|replacement)\b[^.!?]{0,30}"
               r"\b(is|has been|will be|was)\b", re.IGNORECASE),
    re.compile(r"\b(call|ring) you back\b", re.IGNORECASE),
    re.compile(r"\b(я|мы)\s+(уже\s+|сейчас\s+|сразу\s+)?(оформ\w*\s+возврат|верн(у|ём|ем)\b|перезвон|позвон|"
               r"начисл|компенсир|возмест|дад\w*\s+(вам\s+)?скидк|дам\s+(вам\s+)?скидк|отмен)",
               re.IGNORECASE),
    re.compile(r"ваш[аеи]?\s+(возврат|скидк|компенсаци)\w*\s+(уже\s+)?(оформлен|одобрен|начислен)",
               re.IGNORECASE),
    re.compile(r"(我|我们)(会|将|已经|已|马上|立即)?(为您|给您|帮您)?(办理)?(退款|退钱|打折|折扣|优惠券|回电|回拨|致电|"
               r"补偿|赔偿|给您打电话)"),
    re.compile(r"已(为您|给您|帮您)(退款|办理|补偿|赔偿)"),
)


Outcome = Literal["sent", "refused", "rejected"]


@dataclass(frozen=True, slots=True)
class Source:
    id: str  # "faq:<id>", "product:<sku>", "order:<number>"
    title: str  # what a reader calls it (the customer's language)
    text: str  # the facts, for the prompt


@dataclass
class Grounding:
    question: str  # as the model sees it (personal data masked)
    locale: str
    sources: list[Source] = field(default_factory=list)

    @property
    def ids(self) -> set[str]:
        return {source.id for source in self.sources}

    def messages(self, brand: str) -> list[dict[str, str]]:
        language = LANGUAGES.get(self.locale, "English")
        system = (
            f"You answer customers of the shop {brand}. Use ONLY the sources below; never add facts "
            f"that are not in them. Write in {language}, at most three short sentences, plain text. "
            "After each fact put the id of the source it comes from in square brackets, e.g. "
            "[faq:returns]. If the sources do not answer the question, reply exactly "
            f"{NO_ANSWER} and nothing else. You cannot act: never promise or offer refunds, "
            "discounts, vouchers, call-backs or anything else done for the customer."
        )
        facts = "\n\n".join(f"[{source.id}] {source.title}\n{source.text}" for source in self.sources)
        return [{"role": "system", "content": system},
                {"role": "user", "content": f"Sources:\n{facts or '(none)'}\n\nQuestion: {self.question}"}]


@dataclass(frozen=True, slots=True)
class Checked:
    outcome: Outcome
    text: str  # without citation markers
    cited: tuple[str, ...] = ()
    reason: str = ""  # no_citation | unknown_source | promise | empty


def mask_personal_data(text: str) -> str:
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


def about_own_orders(text: str, settings: Settings) -> bool:
    return bool(_ABOUT_ORDERS.search(text) or intents.order_numbers(text, settings.orders_number_pattern))


async def ground(session: AsyncSession, settings: Settings, customer: Customer, text: str,
                 locale: str) -> Grounding:
    """The sources for a question. Order facts only for a verified customer (their store record is
    linked) asking about their orders, and then only their own; no name, address, phone or email."""
    grounding = Grounding(mask_personal_data(text.strip())[:1000], locale)
    index = await get_index(session)
    hits = [hit for hit in index.matcher.rank(text, limit=settings.llm_max_sources, kinds=ANSWERS)
            if hit.score >= MIN_SCORE]
    for hit in hits:
        if hit.target.kind == "faq":
            entry = await session.get(FaqEntry, hit.target.id)
            if entry is not None:
                grounding.sources.append(faq_source(entry, locale, settings))
        else:
            product = await session.get(Product, hit.target.id)
            if product is not None and product.active:
                grounding.sources.append(await product_source(session, product, locale))
    if customer.store_customer_id and about_own_orders(text, settings):
        numbers = set(intents.order_numbers(text, settings.orders_number_pattern))
        for order in await orders.list_orders(session, customer.store_customer_id, limit=3):
            if not numbers or order.number in numbers:
                grounding.sources.append(await order_source(session, order, locale))
    return grounding


def faq_source(entry: FaqEntry, locale: str, settings: Settings) -> Source:
    questions = entry.questions.get(locale) or entry.questions.get("en") or [entry.id]
    return Source(f"faq:{entry.id}", questions[0], catalog.faq_answer(entry, locale, settings))


async def product_source(session: AsyncSession, product: Product, locale: str) -> Source:
    stock = await catalog.stock_by_store(session, product.sku)
    specs = product.specs.get(locale) or product.specs.get("en") or {}
    lines = [
        f"Price: {format_money(product.price_minor, product.currency, locale)}",
        catalog.localized(product.description, locale),
        *(f"{name}: {value}" for name, value in dict(specs).items()),
        f"In stock: {'yes' if any(s.available > 0 for s in stock) else 'no'}",
        f"Warranty: {product.warranty_months} months" if product.warranty_months else "",
        f"Returnable: {'yes' if product.returnable else 'no'}",
    ]
    return Source(f"product:{product.sku}", catalog.localized(product.name, locale),
                  "\n".join(line for line in lines if line))


async def order_source(session: AsyncSession, order: Order, locale: str) -> Source:
    view = await orders.order_view(session, order)
    items = ", ".join(f"{item.quantity}× {catalog.localized(item.name, locale)}" for item in view.items)
    lines = [
        f"Status: {order.status}",
        f"Placed: {format_day(order.created_at, locale)}",
        f"Items: {items}" if items else "",
        f"Delivery: {order.delivery_method}",
        f"Carrier: {order.carrier}" if order.carrier else "",
        f"Tracking number: {order.tracking_number}" if order.tracking_number else "",
        f"Delivered: {format_day(order.delivered_at, locale)}" if order.delivered_at else "",
    ]
    return Source(f"order:{order.number}", f"Order {order.number}", "\n".join(line for line in lines if line))


async def source_titles(session: AsyncSession, ids: list[str], locale: str) -> dict[str, str]:
    """What readers call the sources an answer cited (staff see words, not ids)."""
    titles: dict[str, str] = {}
    for source_id in ids:
        kind, _, key = source_id.partition(":")
        if kind == "faq" and (entry := await session.get(FaqEntry, key)) is not None:
            questions = entry.questions.get(locale) or entry.questions.get("en") or [key]
            titles[source_id] = questions[0]
        elif kind == "product" and (product := await session.get(Product, key)) is not None:
            titles[source_id] = catalog.localized(product.name, locale)
        else:
            titles[source_id] = key
    return titles


def promises(text: str) -> bool:
    return any(pattern.search(text) for pattern in _PROMISES)


def check(text: str, grounding: Grounding) -> Checked:
    """The model's whole answer, judged before anyone sees it."""
    body = text.strip()
    if not body or body.strip(" .") == NO_ANSWER or body.startswith(NO_ANSWER):
        return Checked("refused", "", reason="no_answer" if body else "empty")
    cited = tuple(dict.fromkeys(_CITATION.findall(body)))
    clean = _tidy(_CITATION.sub("", body))
    if not cited:
        return Checked("rejected", clean, reason="no_citation")
    if set(cited) - grounding.ids:
        return Checked("rejected", clean, cited, reason="unknown_source")
    if promises(clean):
        return Checked("rejected", clean, cited, reason="promise")
    return Checked("sent", clean, cited)


def shown_so_far(text: str, grounding: Grounding) -> str | None:
    """What of a streamed, unfinished answer may be shown: citation markers dropped; None to stop
    showing it (a refusal beginning, an unknown source or a promise appeared)."""
    if NO_ANSWER.startswith(text.strip()[: len(NO_ANSWER)]) or NO_ANSWER in text:
        return None
    if set(_CITATION.findall(text)) - grounding.ids:
        return None
    clean = _tidy(_OPEN_CITATION.sub("", _CITATION.sub("", text)))
    return None if promises(clean) else clean


def _tidy(text: str) -> str:
    return re.sub(r"[ \t]+([.,!?;:。，！？])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


def sources_cited(grounding: Grounding, cited: tuple[str, ...]) -> list[Source]:
    return [source for source in grounding.sources if source.id in cited]


async def last_customer_words(session: AsyncSession, conversation_id: int) -> str:
    """The customer's latest text message in a conversation (what a staff draft answers)."""
    row = (await session.exec(
        select(TranscriptMessage.text)
        .where(TranscriptMessage.conversation_id == conversation_id, TranscriptMessage.direction == "in",
               TranscriptMessage.text != "")
        .order_by(col(TranscriptMessage.id).desc()).limit(1))).first()
    return row or ""
