"""Imports every capability's templates so the registry is complete before the sender runs.

Add one line here per ``templates`` module.
"""

import importlib

TEMPLATE_MODULES: list[str] = [
    "touchpoint.orders.templates",
    "touchpoint.aftersales.templates",
    "touchpoint.referrals.templates",
    "touchpoint.journeys.templates",
    "touchpoint.console.templates",
    "touchpoint.handoff.templates",
    "touchpoint.channels.reply",
]


def load_all_templates() -> None:
    for module in TEMPLATE_MODULES:
        importlib.import_module(module)
