"""The catalogue and FAQ file formats (validated with pydantic) and their upsert into the DB.

Used by the demo seed and by catalogue import alike, so both accept exactly the same files.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog.facts import FACTS, unknown_placeholders
from touchpoint.catalog.models import Category, FaqEntry, Product, Stock, Store
from touchpoint.clock import utcnow
from touchpoint.config import SUPPORTED_LOCALES

# Shorter ids where they travel in a button's callback_data (Telegram allows 64 bytes in all).
Sku = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
StoreId = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_.-]+$")]
CategoryId = Annotated[str, Field(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9_.-]+$")]
FaqId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _require_locales(value: dict[str, Any]) -> dict[str, Any]:
    missing = [locale for locale in SUPPORTED_LOCALES if not value.get(locale)]
    if missing:
        raise ValueError(f"missing translation for {', '.join(missing)}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Translations(_Strict):
    en: str = Field(min_length=1)
    ru: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class CategoryIn(_Strict):
    id: CategoryId
    name: Translations
    returnable: bool = True


class ProductIn(_Strict):
    sku: Sku
    category: CategoryId
    name: Translations
    description: Translations
    specs: dict[str, dict[str, str]] = Field(default_factory=dict)
    price: int = Field(ge=0, description="minor units, e.g. cents")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    photo_url: str | None = None
    warranty_months: int = Field(default=0, ge=0, le=240)
    consumable_days: int | None = Field(default=None, ge=1, le=3650)
    returnable: bool = True


class StoreIn(_Strict):
    id: StoreId
    name: Translations
    address: Translations
    phone: str | None = None
    timezone: str
    hours: dict[str, str | None]

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for day, span in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
            if span is not None and not _HOURS.match(span):
                raise ValueError(f"{day}: hours must look like 10:00-20:00, got {span!r}")
        return {day: value.get(day) for day in WEEKDAYS}


class StockIn(_Strict):
    store: StoreId
    sku: Sku
    quantity: int = Field(ge=0)


class CatalogFile(_Strict):
    categories: list[CategoryIn] = Field(default_factory=list)
    products: list[ProductIn] = Field(default_factory=list)
    stores: list[StoreIn] = Field(default_factory=list)
    stock: list[StockIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_exist(self) -> CatalogFile:
        categories = {c.id for c in self.categories}
        skus = {p.sku for p in self.products}
        stores = {s.id for s in self.stores}
        for i, product in enumerate(self.products):
            if categories and product.category not in categories:
                raise ValueError(f"products[{i}].category: unknown category {product.category!r}")
        for i, row in enumerate(self.stock):
            if stores and row.store not in stores:
                raise ValueError(f"stock[{i}].store: unknown store {row.store!r}")
            if skus and row.sku not in skus:
                raise ValueError(f"stock[{i}].sku: unknown product {row.sku!r}")
        return self


class FaqIn(_Strict):
    id: FaqId
    tags: list[str] = Field(default_factory=list)
    questions: dict[str, list[str]]
    answer: Translations

    @field_validator("questions")
    @classmethod
    def _questions_per_locale(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return _require_locales(value)

    @model_validator(mode="after")
    def _known_facts(self) -> FaqIn:
        """Answers may name configured facts ({return_window_days}, …), nothing else in braces."""
        for locale, text in self.answer.model_dump().items():
            unknown = unknown_placeholders(text)
            if unknown:
                raise ValueError(
                    f"FAQ entry {self.id!r}: answer.{locale}: unknown placeholder {', '.join(unknown)} "
                    f"(known: {', '.join('{' + name + '}' for name in sorted(FACTS))})"
                )
        return self


async def apply_catalog(session: AsyncSession, catalog: CatalogFile) -> dict[str, int]:
    """Insert or update in place everything the file holds (within the caller's transaction)."""
    now = utcnow()
    for position, c in enumerate(catalog.categories):
        await session.merge(Category(id=c.id, name=c.name.model_dump(), returnable=c.returnable,
                                     position=position))
    for p in catalog.products:
        await session.merge(Product(
            sku=p.sku, category_id=p.category, name=p.name.model_dump(),
            description=p.description.model_dump(), specs=p.specs, price_minor=p.price,
            currency=p.currency, photo_url=p.photo_url, warranty_months=p.warranty_months,
            consumable_days=p.consumable_days, returnable=p.returnable, updated_at=now,
        ))
    for s in catalog.stores:
        await session.merge(Store(id=s.id, name=s.name.model_dump(), address=s.address.model_dump(),
                                  phone=s.phone, timezone=s.timezone, hours=s.hours))
    await session.flush()
    for row in catalog.stock:
        stock = await session.get(Stock, (row.store, row.sku))
        if stock is None:
            stock = Stock(store_id=row.store, sku=row.sku)
        stock.quantity = row.quantity
        stock.updated_at = now
        session.add(stock)
    return {"categories": len(catalog.categories), "products": len(catalog.products),
            "stores": len(catalog.stores), "stock": len(catalog.stock)}


async def apply_faq(session: AsyncSession, entries: list[FaqIn]) -> int:
    now = utcnow()
    for entry in entries:
        await session.merge(FaqEntry(id=entry.id, tags=entry.tags, questions=entry.questions,
                                     answer=entry.answer.model_dump(), updated_at=now))
    return len(entries)
