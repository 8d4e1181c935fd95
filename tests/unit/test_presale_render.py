"""Property: no catalogue content (long names, emoji, HTML/Markdown characters) breaks a message
or a keyboard — Telegram's HTML parser accepts the text and every callback fits in 64 bytes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.handlers import presale
from touchpoint.catalog.models import Product, Store
from touchpoint.catalog.service import StoreStock
from touchpoint.i18n import DOMAIN, find_locales_dir
from touchpoint.sandbox.formatting import parse_html

I18N = I18n(path=find_locales_dir(), default_locale="en", domain=DOMAIN)
nasty = st.lists(st.sampled_from([*"ab<>&\"'*_`[]()~|#\\/ 👍🏽中文ё\n", "&amp;", "</b>", "<i>", "x" * 500]),
                 min_size=1, max_size=30).map("".join)
ident = st.from_regex(r"[A-Za-z0-9_.-]{1,32}", fullmatch=True)


@contextmanager
def in_locale(locale: str) -> Iterator[None]:
    with I18N.context(), I18N.use_locale(locale):
        yield


def products() -> st.SearchStrategy[Product]:
    texts = st.fixed_dictionaries({"en": nasty, "ru": nasty, "zh": nasty})
    return st.builds(
        lambda sku, name, description, key, value, price: Product(
            sku=sku, category_id="c" * 24, name=name, description=description,
            specs={"en": {key: value}}, price_minor=price, currency="EUR",
            updated_at=datetime.now(UTC),
        ),
        ident, texts, texts, nasty, nasty, st.integers(0, 10**9),
    )


def check_message(text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    plain, _ = parse_html(text)  # raises like Telegram's "can't parse entities"
    assert 0 < len(plain) <= 4096
    for row in markup.inline_keyboard if markup else []:
        for button in row:
            assert button.text.strip()
            assert button.callback_data is not None and len(button.callback_data.encode()) <= 64


@settings(max_examples=80, deadline=None)
@given(products(), products(), st.sampled_from(["en", "ru", "zh"]), nasty)
def test_card_compare_and_store_survive_any_content(
    a: Product, b: Product, locale: str, store_name: str
) -> None:
    store = Store(id="s" * 16, name={"en": store_name}, address={"en": store_name}, timezone="Europe/Berlin",
                  hours={"mon": "10:00-20:00", "sun": None})
    with in_locale(locale):
        stock = [StoreStock(store, 3)]
        check_message(presale.product_card_text(a, locale, stock), presale.product_card_markup(a))
        check_message(presale.compare_text([a, b], locale))
        check_message(presale.store_line(store, locale))
        assert presale.ReserveCb(store=store.id, sku=a.sku).pack()
        assert presale.CategoryCb(id=a.category_id, page=999).pack()
