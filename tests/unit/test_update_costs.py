"""What makes an update cheap and stays correct: fixed keyboards built once per locale, a keyboard
builder equal to aiogram's, Bot API response models kept across garbage collections."""

from __future__ import annotations

import gc
import weakref

from aiogram.methods import EditMessageText, SendMessage
from aiogram.methods.base import Response
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.app import create_i18n, keep_response_models
from bot.keyboards import Keyboard, MenuCallback, language_menu, main_menu
from touchpoint.config import load_settings
from touchpoint.i18n import get_translator

t = get_translator()


def test_fixed_keyboards_are_built_once_per_locale() -> None:
    i18n = create_i18n(load_settings(_env_file=None))
    with i18n.context():
        with i18n.use_locale("en"):
            english, again, languages = main_menu(), main_menu(), language_menu()
        with i18n.use_locale("ru"):
            russian = main_menu()
    assert again is english and russian is not english and languages is not english
    assert [b.text for row in russian.inline_keyboard for b in row] == [
        t("ru", f"menu.{item}")
        for item in ("products", "orders", "returns", "invite", "human", "notifications", "language")
    ]
    other = create_i18n(load_settings(_env_file=None))  # another catalogue: its own keyboards
    with other.context(), other.use_locale("en"):
        assert main_menu() is not english and main_menu() == english


def test_keyboard_builds_what_aiogram_builds() -> None:
    ours, aiogram = Keyboard(), InlineKeyboardBuilder()
    for builder in (ours, aiogram):
        for n in range(11):
            builder.button(text=f"b{n}", callback_data=MenuCallback(action=str(n)))
        builder.button(text="site", url="https://example.com")
        builder.adjust(3, 2)
    assert ours.as_markup() == aiogram.as_markup()
    rows = ours.export()
    rows[0].clear()  # an export is the caller's own
    assert ours.as_markup() == aiogram.as_markup()


def test_bot_api_response_models_outlive_garbage_collection() -> None:
    keep_response_models()
    for method in (SendMessage, EditMessageText):
        model = weakref.ref(Response[method.__returning__])  # as aiogram asks for it on every call
        gc.collect()
        assert model() is not None, method.__name__
