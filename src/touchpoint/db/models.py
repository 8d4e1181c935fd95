"""Imports every model so the metadata (and alembic) sees the whole schema."""

from touchpoint.aftersales.models import Ticket
from touchpoint.catalog.models import Category, FaqEntry, Product, Stock, Store
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.console.models import Campaign, ConsoleNote, JourneySetting, StaffAccount  # noqa: F401
from touchpoint.customers.models import BehaviourEvent, Customer, StoreCustomer
from touchpoint.db.base import metadata
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.journeys.models import Delivery, Enrolment, OutboxMessage
from touchpoint.orders.models import Order, OrderItem, OrderStatus, ShipmentEvent
from touchpoint.referrals.models import LedgerEntry, Referral, ReferralCode

__all__ = [
    "BehaviourEvent", "Category", "Conversation", "Customer", "Delivery", "Enrolment",
    "FaqEntry", "LedgerEntry", "Order", "OrderItem", "OrderStatus", "OutboxMessage",
    "ProcessedUpdate", "Product", "Referral", "ReferralCode", "ShipmentEvent", "Stock", "Store",
    "StoreCustomer", "Ticket", "TranscriptMessage", "metadata",
]
