"""A local Telegram Bot API emulator: the built-in sandbox for the demo and tests."""

from touchpoint.sandbox.server import Sandbox

__all__ = ["Sandbox"]
