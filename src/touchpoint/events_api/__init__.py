"""Signed HTTP endpoints for the store's backend: orders, shipments, carts, views and stock."""
