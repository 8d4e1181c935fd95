"""Understanding a customer's message: the question index per database and the one entry point
the chat calls, ``understand_message``.

The index (``QuestionIndex``) is built in a worker thread, never on the event loop: a large
catalogue takes seconds to index, and every chat would stall meanwhile. While a rebuild runs,
questions are answered from the previous index; sentence vectors of texts already seen are
cached, so a rebuild encodes only what changed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog import changes
from touchpoint.catalog.models import Category, FaqEntry, Product, Store
from touchpoint.customers.models import BehaviourEvent
from touchpoint.customers.service import record_event
from touchpoint.understanding import intents
from touchpoint.understanding import matcher as scoring
from touchpoint.understanding.matcher import Hit, Match, Matcher, Target, verdict

log = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")

# How often a process looks for FAQ or catalogue changes made elsewhere (the import CLI, another
# process); changes made in this process are seen at once (``catalog.changes``).
CHECK_S = 10.0
QUESTION_EVENTS = ("presale.question_answered", "presale.question_suggested", "presale.question_unanswered")
ANSWERS: frozenset[Any] = frozenset({"faq", "product"})
ITEMS: frozenset[Any] = frozenset({"faq", "product", "category"})
# FAQ tags that turn an answer into an action.
HUMAN_TAG, RETURNS_TAGS, STORES_TAG = "human", frozenset({"returns", "repair"}), "stores"

Intent = Literal["answer", "suggest", "none", "not_sold", "greeting", "thanks", "order", "return",
                 "human", "store", "product", "category"]
_SIGNATURE = select(
    select(func.count()).select_from(FaqEntry).scalar_subquery(),
    select(func.max(FaqEntry.updated_at)).scalar_subquery(),
    select(func.count()).select_from(Product).scalar_subquery(),
    select(func.max(Product.updated_at)).scalar_subquery(),
    select(func.count()).select_from(Category).scalar_subquery(),
    select(func.count()).select_from(Store).scalar_subquery(),
)


@dataclass(frozen=True, slots=True)
class Understanding:
    intent: Intent
    match: Match  # the FAQ and product verdict (what `touchpoint faq eval` scores)
    order_number: str | None = None
    store_id: str | None = None
    category_id: str | None = None
    item: str | None = None  # what "do you sell X" asked for

    @property
    def dont_know(self) -> bool:
        return self.intent in ("none", "not_sold")


@dataclass
class CatalogSnapshot:
    """What the index is built from, read on the event loop (I/O only)."""

    faq: list[tuple[str, list[str], list[str]]] = field(default_factory=list)  # id, questions, tags
    answers: dict[str, list[str]] = field(default_factory=dict)  # FAQ id → its answers' sentences
    products: list[tuple[str, list[str]]] = field(default_factory=list)  # sku, names
    categories: list[tuple[str, list[str]]] = field(default_factory=list)
    stores: list[intents.StoreName] = field(default_factory=list)


@dataclass
class QuestionIndex:
    matcher: Matcher
    tags: dict[str, frozenset[str]]
    store_keys: dict[str, str]
    skus: frozenset[str]

    @classmethod
    def build(cls, snapshot: CatalogSnapshot, semantic: bool = True) -> QuestionIndex:
        """CPU-bound (seconds for a large catalogue): run it in a worker thread."""
        matcher = Matcher.semantic() if semantic else Matcher()
        for faq_id, questions, _tags in snapshot.faq:
            matcher.add(Target("faq", faq_id), questions)
            matcher.add_context(Target("faq", faq_id), snapshot.answers.get(faq_id, ()))
        for category_id, names in snapshot.categories:
            matcher.add(Target("category", category_id), names)
        for sku, names in snapshot.products:
            matcher.add(Target("product", sku), [*names, sku], semantic=False)
        return cls(
            matcher=matcher.build(),
            tags={faq_id: frozenset(tags) for faq_id, _q, tags in snapshot.faq},
            store_keys=intents.store_keys(snapshot.stores),
            skus=frozenset(sku for sku, _names in snapshot.products),
        )

    def understand(self, text: str, order_pattern: str) -> Understanding:
        """What a message asks for (pure: no I/O; about 3 ms)."""
        if not text.strip():
            return Understanding("none", Match("none"))
        if intents.is_greeting(text) or intents.is_thanks(text):
            return Understanding("greeting" if intents.is_greeting(text) else "thanks", Match("none"))
        numbers = intents.order_numbers(text, order_pattern)
        match = self.matcher.match(text, kinds=ANSWERS)
        best = match.best if match.verdict == "answer" else None
        faq = best is not None and best.target.kind == "faq"
        tags = self.tags.get(best.target.id, frozenset()) if best is not None and faq else frozenset()
        wish = intents.wants_to_act(text)
        if numbers:
            intent: Intent = "return" if wish and self._about_returns(match) else "order"
            return Understanding(intent, match, order_number=numbers[0])
        item = intents.sought_item(text)
        if item is not None and not intents.skus(text, self.skus):
            found = self._sought(item)
            if found is None and (best is None or best.score < scoring.CONFIDENT):
                return Understanding("not_sold", Match("none", match.hits), item=item)
            if found is not None and found.target.kind == "category" and not best:
                return Understanding("category", match, category_id=found.target.id, item=item)
        if HUMAN_TAG in tags:
            return Understanding("human", match)
        if wish and self._about_returns(match):
            return Understanding("return", match)
        store = intents.named_store(text, self.store_keys)
        if store is not None and (best is None or STORES_TAG in tags):
            return Understanding("store", match, store_id=store)
        if best is not None and best.target.kind == "product":
            return Understanding("product", match)
        return Understanding(match.verdict, match)

    def _about_returns(self, match: Match) -> bool:
        """One of the offered FAQ entries is about returns or repairs (the flow can take it)."""
        return any(hit.target.kind == "faq" and self.tags.get(hit.target.id, frozenset()) & RETURNS_TAGS
                   for hit in match.hits if hit.score >= scoring.SUGGEST)

    def _sought(self, item: str) -> Hit | None:
        """The best thing the shop has for "do you sell <item>", or None when it has nothing like it."""
        hits = self.matcher.rank(item, kinds=ITEMS)
        if not hits or verdict(hits).verdict == "none" or hits[0].score < scoring.SUGGEST:
            return None
        return hits[0]


def sentences(texts: Iterable[str]) -> list[str]:
    return [part.strip() for text in texts for part in _SENTENCE_END.split(str(text)) if part.strip()]


# --- the index per database ---

@dataclass
class _Slot:
    index: QuestionIndex | None = None
    signature: tuple[Any, ...] | None = None
    generation: int = -1
    checked_at: float = float("-inf")
    rebuild: asyncio.Task[None] | None = None


_slots: dict[str, _Slot] = {}  # per database URL (tests run many databases in one process)
semantic_enabled = True  # tests of the fuzzy path alone may switch it off


async def read_snapshot(session: AsyncSession) -> CatalogSnapshot:
    snapshot = CatalogSnapshot()
    for entry in (await session.exec(select(FaqEntry))).all():
        snapshot.faq.append((entry.id, [q for qs in entry.questions.values() for q in qs], list(entry.tags)))
        snapshot.answers[entry.id] = sentences(entry.answer.values())
    for product in (await session.exec(select(Product).where(col(Product.active)))).all():
        snapshot.products.append((product.sku, [str(name) for name in product.name.values()]))
    for category in (await session.exec(select(Category))).all():
        snapshot.categories.append((category.id, [str(name) for name in category.name.values()]))
    for store in (await session.exec(select(Store))).all():
        snapshot.stores.append(intents.StoreName(store.id, tuple(str(n) for n in store.name.values()),
                                                 tuple(str(a) for a in store.address.values())))
    return snapshot


async def get_index(session: AsyncSession) -> QuestionIndex:
    """The index for this database, built off the event loop.

    A change made in this process (an import, the console) is waited for, so it is answered at
    once; a change made elsewhere is found by one statement at most every ``CHECK_S`` and rebuilt
    in the background while the previous index keeps answering."""
    key = str(session.get_bind().url)
    slot = _slots.get(key)
    if slot is None:
        if len(_slots) >= 8:  # a long test run: drop the oldest database's index
            del _slots[next(iter(_slots))]
        slot = _slots[key] = _Slot()
    now, generation = time.monotonic(), changes.generation()
    current = slot.index is not None and slot.generation == generation
    if slot.rebuild is not None:
        if not current:
            await asyncio.shield(slot.rebuild)
        return _ready(slot)
    if current and now - slot.checked_at < CHECK_S:
        return _ready(slot)
    signature = tuple((await session.exec(_SIGNATURE)).one())
    slot.checked_at = now
    if current and signature == slot.signature:
        return _ready(slot)
    snapshot = await read_snapshot(session)
    slot.rebuild = asyncio.create_task(_rebuild(slot, snapshot, signature, generation))
    if not current:
        await asyncio.shield(slot.rebuild)
    return _ready(slot)


def _ready(slot: _Slot) -> QuestionIndex:
    if slot.index is None:
        raise RuntimeError("the question index could not be built")
    return slot.index


async def _rebuild(
    slot: _Slot, snapshot: CatalogSnapshot, signature: tuple[Any, ...], generation: int,
) -> None:
    try:
        slot.index = await asyncio.to_thread(QuestionIndex.build, snapshot, semantic_enabled)
        slot.signature, slot.generation = signature, generation
    finally:
        slot.rebuild = None


def forget_indexes() -> None:
    """Tests: start from nothing."""
    _slots.clear()


async def understand_message(
    session: AsyncSession, customer_id: int, text: str, order_pattern: str,
) -> tuple[Understanding, int]:
    """Understand a message and record it; returns it and how many "don't know"s in a row it makes."""
    index = await get_index(session)
    understanding = index.understand(text, order_pattern)
    match = understanding.match
    kind = ("unanswered" if understanding.dont_know
            else {"answer": "answered", "suggest": "suggested", "none": "unanswered"}[match.verdict])
    payload: dict[str, Any] = {"text": text[:500], "intent": understanding.intent}
    if match.best is not None and not understanding.dont_know and match.verdict != "none":
        payload.update(kind=match.best.target.kind, id=match.best.target.id, score=match.best.score)
    misses = 0
    if kind == "unanswered":
        previous = (await session.exec(
            select(BehaviourEvent.type)
            .where(BehaviourEvent.customer_id == customer_id, col(BehaviourEvent.type).in_(QUESTION_EVENTS))
            .order_by(col(BehaviourEvent.occurred_at).desc(), col(BehaviourEvent.id).desc())
            .limit(1)
        )).first()
        misses = 2 if previous == "presale.question_unanswered" else 1
    record_event(session, f"presale.question_{kind}", customer_id=customer_id, payload=payload)
    return understanding, misses
