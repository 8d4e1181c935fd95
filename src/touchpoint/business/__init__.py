"""Telegram Business: the brand's own Telegram account, answered by the bot through a connection."""
