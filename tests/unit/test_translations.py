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


def plural_catalogue(locale: str) -> dict[str, tuple[str, ...]]:
    """Every message as its forms: one for a plain message, the locale's plural forms otherwise
    (the key of a plural message is its singular id)."""
    path = find_locales_dir() / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    forms: dict[str, tuple[str, ...]] = {}
    for m in catalog:
        if not m.id:
            continue
        if isinstance(m.id, tuple | list):
            strings = tuple(m.string)
            assert len(strings) == catalog.num_plurals, f"{locale}: {m.id[0]}: {catalog.num_plurals} forms"
            forms[m.id[0]] = strings
        else:
            forms[m.id] = (m.string,)
    return forms


def catalogue(locale: str) -> dict[str, str]:
    return {key: texts[-1] for key, texts in plural_catalogue(locale).items()}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_message_translated_with_same_placeholders(locale: str) -> None:
    english = catalogue("en")
    translated = plural_catalogue(locale)
    assert set(translated) == set(english), "message ids differ from English"
    for key, texts in translated.items():
        for text in texts:
            assert text.strip(), f"{locale}: {key} is empty"
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), (
                f"{locale}: placeholders of {key} differ from English"
            )


def test_every_key_used_in_code_exists() -> None:
    forms = plural_catalogue("en")
    known = set(forms) | {f"{key}.plural" for key, texts in forms.items() if len(texts) > 1}
    sources = [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("src").rglob("*.py")]
    used = {key for path in sources for key in KEY_IN_CODE.findall(path.read_text("utf-8"))}
    assert used, "the key pattern found nothing: the test would prove nothing"
    assert used - known == set()
