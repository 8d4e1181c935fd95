"""Imports every model so the metadata (and alembic) sees the whole schema."""

from touchpoint.aftersales.models import AftersalesDraft, Ticket, TicketEvent, WarrantyRegistration
from touchpoint.assistant.models import AssistantAnswer, AssistantSwitch, Translation, TranslationSetting
from touchpoint.business.models import BusinessChat, BusinessConnection
from touchpoint.catalog.models import Category, FaqEntry, Product, Reservation, Stock, Store
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.console.models import Campaign, ConsoleNote, JourneySetting, StaffAccount
from touchpoint.customers.models import BehaviourEvent, Customer, StoreCustomer
from touchpoint.db.base import metadata
from touchpoint.events_api.connectors.models import ConnectorDelivery, ConnectorResource
from touchpoint.events_api.models import ProcessedStoreEvent
from touchpoint.handoff.models import Conversation, TopicPost, TranscriptMessage
from touchpoint.journeys.models import Enrolment, JourneyCursor
from touchpoint.messaging.models import Delivery, OutboxMessage
from touchpoint.orders.models import (
    Cart,
    LinkToken,
    LookupAttempt,
    Order,
    OrderItem,
    OrderStatus,
    ShipmentEvent,
)
from touchpoint.referrals.models import LedgerEntry, Referral, ReferralCode, ReferralReward, Voucher

__all__ = [
    "AftersalesDraft", "AssistantAnswer", "AssistantSwitch",
    "BehaviourEvent", "BusinessChat", "BusinessConnection", "Campaign", "Cart", "Category",
    "ConnectorDelivery", "ConnectorResource", "ConsoleNote",
    "Conversation", "Customer", "Delivery", "Enrolment", "FaqEntry", "JourneyCursor",
    "JourneySetting", "LedgerEntry", "LinkToken", "LookupAttempt", "Order", "OrderItem",
    "OrderStatus", "OutboxMessage", "ProcessedStoreEvent", "ProcessedUpdate", "Product", "Referral",
    "ReferralCode", "ReferralReward", "Reservation", "ShipmentEvent", "StaffAccount", "Stock", "Store",
    "StoreCustomer", "Ticket", "TicketEvent", "TopicPost", "TranscriptMessage",
    "Translation", "TranslationSetting", "Voucher",
    "WarrantyRegistration", "metadata",
]
