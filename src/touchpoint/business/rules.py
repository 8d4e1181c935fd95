"""Contact vetoes for business-only customers (registered with messaging when imported).

* ``business_only``: nothing proactive (order updates, journeys, campaigns) goes to a customer who
  never started the bot: the bot's own chat does not exist and Telegram forbids a business bot to
  start a conversation. Answers within a conversation the customer is having (a staff reply, the
  rating request when staff close it) are spared: they go through the connection...
* ``business_chat_closed``: ...unless that chat is closed now (disconnected, no right to reply, or
  the customer's last message is over 24 hours old), which would be sending against the rule.

The outbox sender learns each batch's connections here too (``business_addresses``), in one query.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.business.models import BusinessChat
from touchpoint.business.service import business_routes
from touchpoint.messaging.addresses import register_address_lookup
from touchpoint.messaging.rules import Lane, register_veto

# Staff answers and the rating request after a handoff: replies in a conversation, not cold messages.
CONVERSATION_TEMPLATES = frozenset({"handoff.staff_reply", "handoff.csat"})
PROACTIVE_LANES = frozenset({Lane.TRANSACTIONAL, Lane.SERVICE, Lane.MARKETING})


async def business_only_customers(session: AsyncSession, customer_ids: set[int]) -> set[int]:
    rows = await session.exec(select(BusinessChat.customer_id).where(
        col(BusinessChat.customer_id).in_(customer_ids), col(BusinessChat.bot_chat).is_(False)))
    return set(rows.all())


async def closed_business_chat_customers(session: AsyncSession, customer_ids: set[int]) -> set[int]:
    routes = await business_routes(session, customer_ids=customer_ids)
    return {customer_id for customer_id, route in routes.items() if route.closed is not None}


register_veto("business_only", business_only_customers, rank=30, lanes=PROACTIVE_LANES,
              spares=CONVERSATION_TEMPLATES)
register_veto("business_chat_closed", closed_business_chat_customers, rank=40, lanes=PROACTIVE_LANES)


async def business_addresses(session: AsyncSession, chat_ids: set[int]) -> dict[int, dict[str, object]]:
    """For the outbox sender's batch: the connection of each business-only customer's chat (or why
    that chat is closed); everyone else is written to in the bot's own chat."""
    routes = await business_routes(session, chat_ids=chat_ids)
    return {chat_id: ({"business_closed": route.closed.value} if route.closed is not None
                      else {"business_connection_id": route.connection_id})
            for chat_id, route in routes.items()}


register_address_lookup(business_addresses)
