"""Every message exists in every locale, translated, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from touchpoint.config import SUPPORTED_LOCALES
from touchpoint.i18n import find_locales_dir

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")
# Literal keys handed to gettext in code: _("key"), i18n.gettext("key", …), translate(loc, "key")
KEY_IN_CODE = re.compile(
    r"""(?:\b_|gettext|\bt|translate)\(\s*(?:[\w.\[\]"']+,\s*)?"([a-z0-9_]+\.[a-z0-9_.]+)"\s*[,)]"""
)


def catalogue(locale: str) -> dict[str, str]:
    path = find_locales_dir() / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po_file:
        return {m.id: m.string for m in read_po(po_file, locale=locale) if m.id}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_message_translated_with_same_placeholders(locale: str) -> None:
    english = catalogue("en")
    translated = catalogue(locale)
    assert set(translated) == set(english), "message ids differ from English"
    for key, text in translated.items():
        assert text.strip(), f"{locale}: {key} is empty"
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), (
            f"{locale}: placeholders of {key} differ from English"
        )


def test_every_key_used_in_code_exists() -> None:
    known = set(catalogue("en"))
    sources = [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("src").rglob("*.py")]
    used = {key for path in sources for key in KEY_IN_CODE.findall(path.read_text("utf-8"))}
    assert used, "the key pattern found nothing: the test would prove nothing"
    assert used - known == set()
