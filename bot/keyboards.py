"""Inline keyboards and their callback data (each well within Telegram's 64 bytes)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from touchpoint.config import SUPPORTED_LOCALES

MENU_ITEMS = ("products", "orders", "returns", "invite", "human", "notifications", "language")


class MenuCallback(CallbackData, prefix="m"):
    action: str


class LanguageCallback(CallbackData, prefix="lang"):
    locale: str


def main_menu() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for action in MENU_ITEMS:
        builder.button(text=_(f"menu.{action}"), callback_data=MenuCallback(action=action))
    builder.adjust(1, 2, 2, 2)
    return builder.as_markup()


def back_to_menu() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    return builder.as_markup()


def language_menu() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for locale in SUPPORTED_LOCALES:
        builder.button(text=_(f"language.button.{locale}"), callback_data=LanguageCallback(locale=locale))
    builder.button(text=_("button.back"), callback_data=MenuCallback(action="root"))
    builder.adjust(len(SUPPORTED_LOCALES), 1)
    return builder.as_markup()
