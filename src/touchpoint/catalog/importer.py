"""`touchpoint import catalog|faq FILE`: validate everything first, then apply in one transaction.

A file with any bad row changes nothing; every bad row is reported with its line (or JSON
path) and field. Re-importing the same ids updates them in place.

Catalogue files are JSON (the seed format: categories, products, stores, stock) or CSV, one
kind per file, told apart by the header:
  products: sku,category,name_en,name_ru,name_zh,description_en,…,price[,currency,photo_url,
            warranty_months,consumable_days,returnable,specs_en,specs_ru,specs_zh,stock:<store>…]
  stores:   id,name_en,…,address_en,…,timezone,mon,…,sun[,phone]
  stock:    store,sku,quantity
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlmodel import col, select

from touchpoint.catalog import changes
from touchpoint.catalog.loader import (
    WEEKDAYS,
    CatalogFile,
    FaqIn,
    ProductIn,
    StockIn,
    StoreIn,
    apply_catalog,
    apply_faq,
)
from touchpoint.catalog.models import Category, Product, Store
from touchpoint.config import SUPPORTED_LOCALES
from touchpoint.db import Database


@dataclass
class ImportReport:
    errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "row"


def _errors(exc: ValidationError, where: str) -> list[str]:
    return [f"{where}: {_field(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]


# --- catalogue ---

def _translations(row: dict[str, str], name: str) -> dict[str, str]:
    return {locale: row.get(f"{name}_{locale}", "") for locale in SUPPORTED_LOCALES}


def _specs(row: dict[str, str]) -> dict[str, dict[str, str]]:
    """specs_en = "Power: 1350 W; Water tank: 1.7 l"."""
    specs: dict[str, dict[str, str]] = {}
    for locale in SUPPORTED_LOCALES:
        parts = [part for part in (row.get(f"specs_{locale}") or "").split(";") if part.strip()]
        if parts:
            specs[locale] = {k.strip(): v.strip() for k, _, v in (part.partition(":") for part in parts)}
    return specs


def _csv_row(kind: str, row: dict[str, str]) -> tuple[BaseModel, list[StockIn]]:
    if kind == "stock":
        return StockIn.model_validate({k: row.get(k) for k in ("store", "sku", "quantity")}), []
    if kind == "stores":
        return StoreIn.model_validate({
            "id": row.get("id"), "name": _translations(row, "name"), "address": _translations(row, "address"),
            "phone": row.get("phone") or None, "timezone": row.get("timezone"),
            "hours": {day: row.get(day) or None for day in WEEKDAYS},
        }), []
    optional_columns = ("currency", "photo_url", "warranty_months", "consumable_days", "returnable")
    optional = {k: row[k] for k in optional_columns if row.get(k)}
    product = ProductIn.model_validate({
        "sku": row.get("sku"), "category": row.get("category"), "name": _translations(row, "name"),
        "description": _translations(row, "description"), "price": row.get("price"),
        "specs": _specs(row), **optional,
    })
    stock = [StockIn(store=column.removeprefix("stock:"), sku=product.sku, quantity=int(value))
             for column, value in row.items() if column.startswith("stock:") and value not in (None, "")]
    return product, stock


def _csv_kind(header: list[str]) -> str | None:
    if "sku" in header and "price" in header:
        return "products"
    if "timezone" in header:
        return "stores"
    if {"store", "sku", "quantity"} <= set(header):
        return "stock"
    return None


def parse_catalog_csv(text: str) -> tuple[CatalogFile | None, list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    kind = _csv_kind(reader.fieldnames or [])
    if kind is None:
        return None, ["line 1: header: expected a products (sku, price, …), stores (id, timezone, …) "
                      "or stock (store, sku, quantity) header"]
    errors: list[str] = []
    items: list[BaseModel] = []
    stock: list[StockIn] = []
    for row in reader:
        line = reader.line_num
        try:
            item, item_stock = _csv_row(kind, {k: (v or "").strip() for k, v in row.items() if k})
        except ValidationError as exc:
            errors += _errors(exc, f"line {line}")
            continue
        except ValueError:
            errors.append(f"line {line}: stock: quantities must be whole numbers")
            continue
        items.append(item)
        stock += item_stock
    catalog = CatalogFile.model_construct(categories=[], products=[], stores=[], stock=[])
    if kind == "stock":
        catalog.stock = [i for i in items if isinstance(i, StockIn)]
    elif kind == "stores":
        catalog.stores = [i for i in items if isinstance(i, StoreIn)]
    else:
        catalog.products = [i for i in items if isinstance(i, ProductIn)]
        catalog.stock = stock
    return (None if errors else catalog), errors


def parse_catalog_json(text: str) -> tuple[CatalogFile | None, list[str]]:
    try:
        return CatalogFile.model_validate_json(text), []
    except ValidationError as exc:
        return None, _errors(exc, "file")


def _check_timezones(catalog: CatalogFile) -> list[str]:
    errors = []
    for i, store in enumerate(catalog.stores):
        try:
            ZoneInfo(store.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"stores[{i}] ({store.id}): timezone: unknown time zone {store.timezone!r}")
    return errors


async def _check_references(db: Database, catalog: CatalogFile) -> list[str]:
    """Products and stock may refer to what is already in the database as well as to the file."""
    async with db.session() as session:
        categories = set((await session.exec(select(Category.id))).all())
        stores = set((await session.exec(select(Store.id))).all())
        skus = set((await session.exec(select(Product.sku).where(col(Product.active)))).all())
    categories |= {c.id for c in catalog.categories}
    stores |= {s.id for s in catalog.stores}
    skus |= {p.sku for p in catalog.products}
    errors = [f"product {p.sku}: category: unknown category {p.category!r}"
              for p in catalog.products if p.category not in categories]
    errors += [f"stock {row.store}/{row.sku}: store: unknown store {row.store!r}"
               for row in catalog.stock if row.store not in stores]
    errors += [f"stock {row.store}/{row.sku}: sku: unknown product {row.sku!r}"
               for row in catalog.stock if row.sku not in skus]
    return errors


async def import_catalog(db: Database, text: str, filename: str) -> ImportReport:
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        catalog, errors = parse_catalog_csv(text)
    elif suffix == ".json":
        catalog, errors = parse_catalog_json(text)
    else:
        return ImportReport([f"{filename}: use a .csv or .json file"])
    if catalog is None:
        return ImportReport(errors)
    errors = _check_timezones(catalog) + await _check_references(db, catalog)
    if errors:
        return ImportReport(errors)
    async with db.session() as session:  # one transaction: all or nothing
        counts = await apply_catalog(session, catalog)
    changes.changed()
    return ImportReport(counts={k: v for k, v in counts.items() if v})


# --- FAQ ---

def parse_faq_yaml(text: str) -> tuple[list[FaqIn] | None, list[str]]:
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [f"YAML: {exc}"]
    if not isinstance(raw, list) or not isinstance(node, yaml.SequenceNode):
        return None, ["line 1: file: expected a list of FAQ entries"]
    lines = [item.start_mark.line + 1 for item in node.value]
    errors: list[str] = []
    try:
        entries = TypeAdapter(list[FaqIn]).validate_python(raw)
    except ValidationError as exc:
        for e in exc.errors():
            index = e["loc"][0] if e["loc"] and isinstance(e["loc"][0], int) else None
            where = f"line {lines[index]}" if index is not None else "file"
            errors.append(f"{where}: {_field(e['loc'][1:])}: {e['msg'].removeprefix('Value error, ')}")
        return None, errors
    seen: dict[str, int] = {}
    for line, entry in zip(lines, entries, strict=True):
        if entry.id in seen:
            errors.append(f"line {line}: id: {entry.id!r} already used on line {seen[entry.id]}")
        seen.setdefault(entry.id, line)
    return (None if errors else entries), errors


async def import_faq(db: Database, text: str) -> ImportReport:
    entries, errors = parse_faq_yaml(text)
    if entries is None:
        return ImportReport(errors)
    async with db.session() as session:
        count = await apply_faq(session, entries)
    changes.changed()
    return ImportReport(counts={"faq": count})

