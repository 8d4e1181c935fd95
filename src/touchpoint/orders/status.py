"""The order statuses the store pushes: a leaf module, so the settings can check configured statuses
without importing the models (which import the database package, which imports the settings)."""

from enum import StrEnum


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    PACKED = "packed"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_PROBLEM = "delivery_problem"  # the carrier could not deliver; the customer must act
    READY_FOR_PICKUP = "ready_for_pickup"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    RETURNED = "returned"
    REFUNDED = "refunded"
