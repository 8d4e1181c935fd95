"""Touchpoint: a retail customer-journey assistant on Telegram (the core, free of aiogram)."""

__version__ = "0.1.0"
