"""Catalogue and FAQ import: every bad row reported, a bad file changes nothing, re-import updates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from touchpoint.catalog.importer import import_catalog, import_faq, parse_faq_yaml
from touchpoint.catalog.models import FaqEntry, Product, Stock
from touchpoint.cli import app
from touchpoint.config import get_settings
from touchpoint.db import Database
from touchpoint.seed.demo import DATA_DIR, seed_demo

HEADER = ("sku,category,name_en,name_ru,name_zh,description_en,description_ru,description_zh,price,"
          "specs_en,stock:mitte")
GOOD = "NEW-1,espresso,Nuovo,Нуово,新款,Fine,Хорошая,好,12900,Power: 1200 W; Tank: 1 l,4"


async def product(db: Database, sku: str) -> Product | None:
    async with db.session() as session:
        return await session.get(Product, sku)


async def test_csv_with_bad_rows_changes_nothing_and_names_them(db: Database) -> None:
    await seed_demo(db)
    before = await product(db, "ESP-001")
    text = "\n".join([
        HEADER, GOOD,
        "ESP-001,espresso,Renamed,Р,改,D,Д,D,1,,",  # fine on its own
        "NEW-2,espresso,,Имя,名,D,Д,D,abc,,",  # line 4: no English name, price not a number
        "NEW-3,espresso,N,Н,N,D,Д,D,100,,lots",  # line 5: stock not a number
    ])
    report = await import_catalog(db, text, "products.csv")
    assert not report.ok
    assert "line 4: name.en: String should have at least 1 character" in report.errors
    assert any(e.startswith("line 4: price:") for e in report.errors)
    assert any(e.startswith("line 5: stock:") for e in report.errors)
    assert await product(db, "NEW-1") is None
    after = await product(db, "ESP-001")
    assert after is not None and before is not None and after.name == before.name


async def test_unknown_references_are_reported(db: Database) -> None:
    await seed_demo(db)
    text = "\n".join([HEADER, GOOD.replace("espresso", "spaceships")])
    report = await import_catalog(db, text, "products.csv")
    assert report.errors == ["product NEW-1: category: unknown category 'spaceships'"]


async def test_csv_then_reimport_updates_in_place(db: Database) -> None:
    await seed_demo(db)
    assert (await import_catalog(db, f"{HEADER}\n{GOOD}", "products.csv")).ok
    created = await product(db, "NEW-1")
    assert created is not None and created.specs["en"] == {"Power": "1200 W", "Tank": "1 l"}
    assert (await import_catalog(db, f"{HEADER}\n{GOOD.replace('12900', '9900')}", "products.csv")).ok
    updated = await product(db, "NEW-1")
    assert updated is not None and updated.price_minor == 9900
    async with db.session() as session:
        stock = await session.get(Stock, ("mitte", "NEW-1"))
        assert stock is not None and stock.quantity == 4


async def test_json_reports_paths_and_stores_csv_works(db: Database) -> None:
    data = json.loads((DATA_DIR / "catalog.json").read_text("utf-8"))
    data["products"][3]["price"] = -5
    data["stores"][0]["hours"]["mon"] = "9-5"
    report = await import_catalog(db, json.dumps(data), "catalog.json")
    assert any(e.startswith("file: products.3.price:") for e in report.errors)
    assert any(e.startswith("file: stores.0.hours:") for e in report.errors)
    async with db.session() as session:
        assert (await session.exec(select(Product))).first() is None
    stores_csv = ("id,name_en,name_ru,name_zh,address_en,address_ru,address_zh,timezone,"
                  "mon,tue,wed,thu,fri,sat,sun\n"
                  "kdw,KaDeWe,КаДеВе,卡迪威,Tauentzienstr. 21,Тауенцинштр. 21,陶恩沁恩大街21号,Europe/Berlin,"
                  "10:00-20:00,10:00-20:00,10:00-20:00,10:00-20:00,10:00-22:00,10:00-22:00,\n")
    assert (await import_catalog(db, stores_csv, "stores.csv")).counts == {"stores": 1}


def test_faq_errors_carry_yaml_lines() -> None:
    text = (
        "- id: ok\n  questions: {en: [a], ru: [б], zh: [丙]}\n  answer: {en: A, ru: Б, zh: 丙}\n"
        "- id: broken\n  questions: {en: [a]}\n  answer: {en: A, ru: Б}\n"
        "- id: ok\n  questions: {en: [a], ru: [б], zh: [丙]}\n  answer: {en: A, ru: Б, zh: 丙}\n"
    )
    entries, errors = parse_faq_yaml(text)
    assert entries is None
    assert "line 4: questions: missing translation for ru, zh" in errors
    assert "line 4: answer.zh: Field required" in errors
    broken = "- id: broken\n  questions: {en: [a]}\n  answer: {en: A, ru: Б}\n"
    _, errors = parse_faq_yaml(text.replace(broken, ""))
    assert errors == ["line 4: id: 'ok' already used on line 1"]


async def test_faq_import_updates_in_place(db: Database) -> None:
    text = (DATA_DIR / "faq.yaml").read_text("utf-8")
    assert (await import_faq(db, text)).counts == {"faq": 30}
    assert (await import_faq(db, text.replace("Orders placed by 14:00", "Orders placed by 15:00"))).ok
    async with db.session() as session:
        entry = await session.get(FaqEntry, "delivery-time")
        assert entry is not None and entry.answer["en"].startswith("Orders placed by 15:00")
        assert len((await session.exec(select(FaqEntry))).all()) == 30


def test_cli_import_with_a_bad_row_exits_1_and_changes_nothing(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOUCHPOINT_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        catalog = tmp_path / "catalog.json"
        catalog.write_text((DATA_DIR / "catalog.json").read_text("utf-8"), "utf-8")
        result = runner.invoke(app, ["import", "catalog", str(catalog)])
        assert result.exit_code == 0, result.output
        assert "42 products" in result.output
        bad = tmp_path / "products.csv"
        bad.write_text(f"{HEADER}\n{GOOD}\nNEW-9,espresso,X,Х,X,D,Д,D,-1,,\n", "utf-8")
        result = runner.invoke(app, ["import", "catalog", str(bad)])
        assert result.exit_code == 1
        assert "line 3: price: Input should be greater than or equal to 0" in result.output
        assert "nothing was changed" in result.output
    finally:
        get_settings.cache_clear()
