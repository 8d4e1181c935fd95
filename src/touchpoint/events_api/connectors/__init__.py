"""Store platform connectors: Shopify and WooCommerce webhooks, taken as the platforms send them.

http.py verifies and queues each delivery (answered at once); queue.py applies the queue in order
through the events API's own service; shopify.py and woocommerce.py are the pure mappings from a
platform's payload to the internal store events.
"""
