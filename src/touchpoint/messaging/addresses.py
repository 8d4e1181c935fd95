"""Where a chat's messages go, looked up once per batch by the capability that knows (registered
when imported, as contact vetoes are), so that the sender does not ask once per send.

A lookup answers, for the chat ids it is given, what the Channel needs besides the chat id
(``OutgoingMessage.extra``): e.g. Telegram Business's connection id for a customer reachable only
through the brand's account. Chats a lookup does not name go to the chat itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

AddressLookup = Callable[[Any, set[int]], Awaitable[dict[int, dict[str, object]]]]
_lookups: list[AddressLookup] = []


def register_address_lookup(lookup: AddressLookup) -> None:
    if lookup not in _lookups:
        _lookups.append(lookup)


async def addresses(session: Any, chat_ids: Collection[int]) -> dict[int, dict[str, object]]:
    """Every registered lookup's answer for ``chat_ids``, merged per chat."""
    found: dict[int, dict[str, object]] = {}
    wanted = set(chat_ids)
    if not wanted:
        return found
    for lookup in _lookups:
        for chat_id, extra in (await lookup(session, wanted)).items():
            found.setdefault(chat_id, {}).update(extra)
    return found
