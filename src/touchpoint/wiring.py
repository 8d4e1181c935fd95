"""Wiring the capabilities into the messaging layer below them (used by the composition root,
the CLI, the console and tests): every capability's templates join the registry and every
capability that registers a contact veto is imported, before anything is rendered or judged.

Messaging never imports a capability; this list does, by name. Add one line here per
``templates`` module or per module that calls ``register_veto``.
"""

import importlib

TEMPLATE_MODULES: list[str] = [
    "touchpoint.orders.templates",
    "touchpoint.aftersales.templates",
    "touchpoint.referrals.templates",
    "touchpoint.journeys.templates",
    "touchpoint.console.templates",
    "touchpoint.handoff.templates",
    "touchpoint.messaging.reply",
]
# Modules that register contact vetoes (messaging.rules.register_veto) when imported.
VETO_MODULES: list[str] = [
    "touchpoint.aftersales.service",
    "touchpoint.handoff.service",
    "touchpoint.business.rules",
]


def load_all_templates() -> None:
    """The template registry complete and every contact veto registered."""
    for module in (*TEMPLATE_MODULES, *VETO_MODULES):
        importlib.import_module(module)
