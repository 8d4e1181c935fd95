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
# Modules that subscribe to applied store events (events_api.hooks) when imported.
LISTENER_MODULES: list[str] = [
    "touchpoint.journeys.listener",
]


def load_all_templates() -> None:
    """The template registry complete, every contact veto and store-event listener registered."""
    for module in (*TEMPLATE_MODULES, *VETO_MODULES, *LISTENER_MODULES):
        importlib.import_module(module)
