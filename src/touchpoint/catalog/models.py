"""Products, categories, stores, stock per store and the FAQ knowledge base."""

from datetime import datetime
from typing import Any

from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import bigint_field, json_field, utc_field


class Category(SQLModel, table=True):
    __tablename__ = "categories"

    id: str = Field(primary_key=True, max_length=64)
    name: dict[str, str] = json_field()
    returnable: bool = True
    position: int = 0


class Product(SQLModel, table=True):
    __tablename__ = "products"

    sku: str = Field(primary_key=True, max_length=64)
    category_id: str = Field(foreign_key="categories.id", index=True)
    name: dict[str, str] = json_field()
    description: dict[str, str] = json_field()
    specs: dict[str, Any] = json_field()  # {"en": {"Power": "1450 W"}, "ru": {...}, ...}
    price_minor: int = bigint_field()  # minor units (stores and platforms send up to 10^12)
    currency: str = Field(default="EUR", max_length=3)
    photo_url: str | None = None
    warranty_months: int = 0
    consumable_days: int | None = None  # typical days until a consumable runs out
    returnable: bool = True
    active: bool = True
    updated_at: datetime = utc_field()


class Store(SQLModel, table=True):
    __tablename__ = "stores"

    id: str = Field(primary_key=True, max_length=64)
    name: dict[str, str] = json_field()
    address: dict[str, str] = json_field()
    phone: str | None = None
    timezone: str
    hours: dict[str, str | None] = json_field()  # {"mon": "10:00-20:00", ..., "sun": None}


class Stock(SQLModel, table=True):
    __tablename__ = "stock"

    store_id: str = Field(foreign_key="stores.id", primary_key=True, max_length=64)
    sku: str = Field(foreign_key="products.sku", primary_key=True, max_length=64)
    quantity: int = 0
    reserved: int = 0  # held for click-and-collect reservations
    updated_at: datetime = utc_field()


class FaqEntry(SQLModel, table=True):
    __tablename__ = "faq_entries"

    id: str = Field(primary_key=True, max_length=64)
    tags: list[str] = json_field(default_factory=list)
    questions: dict[str, list[str]] = json_field()
    answer: dict[str, str] = json_field()
    updated_at: datetime = utc_field()


class Reservation(SQLModel, table=True):
    """Click-and-collect: one unit held in a store for a customer until ``expires_at``."""

    __tablename__ = "reservations"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    store_id: str = Field(foreign_key="stores.id", max_length=64)
    sku: str = Field(foreign_key="products.sku", max_length=64)
    quantity: int = 1
    status: str = Field(default="active", max_length=16, index=True)  # active | collected | expired
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field(index=True)
