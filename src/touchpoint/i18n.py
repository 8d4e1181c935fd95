"""Gettext catalogues for the core (the scheduler renders messages outside any update).

The bot reads the same compiled catalogues through ``aiogram.utils.i18n``. Message ids are
stable keys such as ``menu.products``; every locale, English included, translates them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from touchpoint.config import SUPPORTED_LOCALES

DOMAIN = "messages"


def find_locales_dir(configured: Path | None = None) -> Path:
    """The configured folder, else the one shipped in the wheel, else the checkout's."""
    candidates = [configured] if configured else []
    package_dir = Path(__file__).resolve().parent
    candidates += [package_dir / "_locales", package_dir.parents[1] / "locales"]
    for candidate in candidates:
        if candidate and (candidate / "en" / "LC_MESSAGES" / f"{DOMAIN}.po").exists():
            return candidate
    raise FileNotFoundError("no locales/ folder with en/LC_MESSAGES/messages.po found")


def compile_catalogs(locales_dir: Path) -> list[Path]:
    """Compile every stale ``.po`` into its ``.mo``; returns the files written."""
    written = []
    for po_path in sorted(locales_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parts[-3])
        with mo_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)
        written.append(mo_path)
    return written


def resolve_locale(saved: str | None, telegram_code: str | None, default: str) -> str:
    """The customer's own choice, else Telegram's language reduced to en/ru/zh, else default."""
    if saved in SUPPORTED_LOCALES:
        return saved
    if telegram_code:
        base = telegram_code.replace("_", "-").split("-")[0].lower()
        if base in SUPPORTED_LOCALES:
            return base
    return default


class Translator:
    """Renders a message key in a locale, formatting ``{placeholders}``."""

    def __init__(self, locales_dir: Path, default_locale: str = "en") -> None:
        compile_catalogs(locales_dir)
        self.default_locale = default_locale
        self._catalogues = {
            locale: Translations.load(str(locales_dir), [locale], DOMAIN)
            for locale in SUPPORTED_LOCALES
        }

    def __call__(self, locale: str, key: str, /, **params: object) -> str:
        catalogue = self._catalogues.get(locale) or self._catalogues[self.default_locale]
        text = catalogue.gettext(key)
        return text.format(**params) if params else text

    def plural(self, locale: str, key: str, n: int, /, **params: object) -> str:
        """A message with plural forms (ids ``key`` and ``key.plural``), the form chosen by ``n``."""
        catalogue = self._catalogues.get(locale) or self._catalogues[self.default_locale]
        text = catalogue.ngettext(key, f"{key}.plural", n)
        return text.format(**params) if params else text


@lru_cache(maxsize=4)
def get_translator(locales_dir: Path | None = None, default_locale: str = "en") -> Translator:
    return Translator(find_locales_dir(locales_dir), default_locale)
