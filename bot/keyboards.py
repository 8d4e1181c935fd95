"""Inline keyboards and their callback data (each well within Telegram's 64 bytes)."""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakKeyDictionary

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n, get_i18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from touchpoint.config import SUPPORTED_LOCALES

MENU_ITEMS = ("products", "orders", "returns", "invite", "human", "notifications", "language")


class Keyboard(InlineKeyboardBuilder):
    """aiogram's builder deep-copies every button already added on each ``button()`` call (pydantic
    deep copies, quadratic in the buttons); this one copies only the rows. Its buttons are made
    here and never changed afterwards, so sharing them with the markup is safe."""

    def export(self) -> list[list[InlineKeyboardButton]]:
        return [list(row) for row in self._markup]


class MenuCallback(CallbackData, prefix="m"):
    action: str


class LanguageCallback(CallbackData, prefix="lang"):
    locale: str


_fixed: WeakKeyDictionary[I18n, dict[tuple[str, str], InlineKeyboardMarkup]] = WeakKeyDictionary()


def fixed(name: str, build: Callable[[], InlineKeyboardMarkup]) -> InlineKeyboardMarkup:
    """A keyboard that depends on nothing but the locale, built once per translation catalogue and
    locale (they go out with most replies). Callers must not modify it."""
    i18n = get_i18n()
    built = _fixed.setdefault(i18n, {})
    key = (name, i18n.current_locale)
    if key not in built:
        built[key] = build()
    return built[key]


def main_menu() -> InlineKeyboardMarkup:
    def build() -> InlineKeyboardMarkup:
        builder = Keyboard()
        for action in MENU_ITEMS:
            builder.button(text=_(f"menu.{action}"), callback_data=MenuCallback(action=action))
        builder.adjust(1, 2, 2, 2)
        return builder.as_markup()

    return fixed("main", build)


def back_to_menu() -> InlineKeyboardMarkup:
    def build() -> InlineKeyboardMarkup:
        builder = Keyboard()
        builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
        return builder.as_markup()

    return fixed("back", build)


def language_menu() -> InlineKeyboardMarkup:
    def build() -> InlineKeyboardMarkup:
        builder = Keyboard()
        for locale in SUPPORTED_LOCALES:
            builder.button(text=_(f"language.button.{locale}"), callback_data=LanguageCallback(locale=locale))
        builder.button(text=_("button.back"), callback_data=MenuCallback(action="root"))
        builder.adjust(len(SUPPORTED_LOCALES), 1)
        return builder.as_markup()

    return fixed("language", build)
