"""Proactive message templates: a key in the outbox, a function that renders it per locale.

Each capability registers its own templates with ``@template("order.status")``; the sender
renders through :func:`render`, so nothing renders the same message two ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from touchpoint.i18n import Translator
from touchpoint.messaging.base import Button


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


TemplateFunction = Callable[[Translator, str, dict[str, Any]], Rendered]
_TEMPLATES: dict[str, TemplateFunction] = {}


def template(key: str) -> Callable[[TemplateFunction], TemplateFunction]:
    def register(function: TemplateFunction) -> TemplateFunction:
        if key in _TEMPLATES and _TEMPLATES[key] is not function:
            raise ValueError(f"template {key!r} registered twice")
        _TEMPLATES[key] = function
        return function

    return register


def render(translate: Translator, locale: str, key: str, params: dict[str, Any]) -> Rendered:
    try:
        function = _TEMPLATES[key]
    except KeyError:
        raise LookupError(f"unknown template {key!r}") from None
    return function(translate, locale, params)


def known_templates() -> set[str]:
    return set(_TEMPLATES)
