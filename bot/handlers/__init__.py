"""Routers, included by the dispatcher factory in order (the fallback last).

Each handler module builds a fresh router in ``create_router()``: a router can be
attached to one dispatcher only, and tests build many dispatchers in one process.
"""

from aiogram import Router

from bot import business
from bot.handlers import (
    aftersales,
    assistant,
    common,
    errors,
    fallback,
    handoff,
    journeys,
    notifications,
    orders,
    presale,
    product_questions,
    questions,
    referrals,
)


def all_routers() -> list[Router]:
    """Feature routers go between errors and common: they answer their own menu buttons first."""
    features: list[Router] = [
        assistant.create_router(),  # its own buttons and /translate, before the handoff's catch-alls
        handoff.create_router(),  # first: during a handoff the customer's messages go to staff
        orders.create_router(),
        aftersales.create_router(),
        product_questions.create_router(),  # before presale: questions about one product
        presale.create_router(),
        referrals.create_router(),
        journeys.create_router(),
        notifications.create_router(),
        questions.create_router(),  # last: free text no feature took
    ]
    return [
        errors.create_router(), business.create_router(), *features, common.create_router(),
        fallback.create_router(),
    ]
