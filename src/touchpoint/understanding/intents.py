"""What a message asks for beyond an FAQ answer: greetings and thanks, a wish to act ("I want to
return…"), "do you sell X", and the entities in it (order numbers, SKUs, store names, phones).

Linguistic cues live here, per language; what the shop knows (FAQ, products, stores) comes from
the database, so nothing here names a product or an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from rapidfuzz import fuzz

from touchpoint.understanding.text import CJK, fold

# A whole message that is only a greeting or only thanks (folded, punctuation gone).
_GREETING = re.compile(
    r"^(?:hi+|hello+|hey+|hiya|yo|good (?:morning|afternoon|evening)|greetings|howdy"
    r"|привет\w*|здравствуй\w*|здрасьте|добрый (?:день|вечер)|доброе утро|приветик|хай|салют"
    r"|你好\w*|您好\w*|嗨|哈喽|哈啰|早上好|晚上好|在吗|在不在|亲在吗)"
    r"(?: (?:there|all|everyone|team|brewhaus|бот|ребята|друзья))?$"
)
_THANKS = re.compile(
    r"^(?:(?:thanks?|thank you|thx|ty|cheers|great|perfect|awesome|ok|okay|cool)"
    r"(?: (?:a lot|so much|very much|again))*"
    r"|спасибо\w*(?: (?:большое|огромное|за помощь))*|спс|благодарю\w*|пасиб\w*|ок спасибо|понятно спасибо"
    r"|谢谢\w*|多谢\w*|感谢\w*|好的谢谢|好的|明白了谢谢|thank u)$"
)
# First-person wish to act now: "I want to return…", "хочу вернуть", "我要退货".
_WISH = re.compile(
    r"\b(?:i (?:want|wanna|would like|d like|need)|i m (?:going|trying) to|how do i start|start a|let me"
    r"|хочу|хотел\w*|хотим|нужно|надо|нужен|оформить|оформи|верните|можно я)\b"
    r"|我要|我想|想要|申请|帮我|给我办"
)
# "Do you sell X?" — X is what the customer looks for.
_SELL = (
    re.compile(r"^(?:do|does|will) (?:you|u|ya|y all|you guys) (?:also |even |still )?"
               r"(?:sell|have|carry|stock|offer|got|do) (?:any )?(?P<x>.+)$"),
    re.compile(r"^(?:you|u) (?:sell|have|carry|stock) (?:any )?(?P<x>.+)$"),
    re.compile(r"^(?:is|are) there (?:any )?(?P<x>.+?) (?:for sale|to buy|in (?:your|the) (?:shop|store))$"),
    re.compile(r"^(?:а )?(?:у вас )?(?:есть ли|есть|продаете|продаются|торгуете|бывают|имеются|можно купить"
               r"|вы продаете|продаете ли вы)(?: у вас)? (?P<x>.+)$"),
    re.compile(r"^(?:а )?(?P<x>.+?) (?:у вас )?(?:есть|продаете|продаются)(?: у вас)?$"),
    re.compile(r"^(?:你们|您们|请问)?(?:这里|店里)?(?:有没有卖|有没有|有卖|卖不卖|卖|出售|有)(?P<x>.+?)(?:吗|么|嘛|没有|不)?$"),
)
_ORDER_LIKE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2,4})([- ]?)(\d{4,10})(?![0-9])")
_SELL_STOP = frozenset({"any", "some", "a", "an", "the", "ли", "у", "вас"})


@dataclass(frozen=True, slots=True)
class StoreName:
    store_id: str
    names: tuple[str, ...]  # the store's names in every language
    addresses: tuple[str, ...] = ()  # a word found in another store's address (the city) names neither


def is_greeting(text: str) -> bool:
    return bool(_GREETING.match(fold(text)))


def is_thanks(text: str) -> bool:
    return bool(_THANKS.match(fold(text)))


def wants_to_act(text: str) -> bool:
    return bool(_WISH.search(fold(text)))


def sought_item(text: str) -> str | None:
    """The X of "do you sell X?" (None when the message is not that question)."""
    folded = fold(text)
    for pattern in _SELL:
        found = pattern.match(folded)
        if found:
            words = [w for w in found.group("x").split() if w not in _SELL_STOP]
            item = " ".join(words).strip()
            if item and len(item) <= 60:
                return item
    return None


def order_numbers(text: str, pattern: str) -> list[str]:
    """Order numbers in the text, in canonical form (upper case, no spaces), by the shop's pattern."""
    regex = re.compile(pattern)
    found: list[str] = []
    for letters, separator, digits in _ORDER_LIKE.findall(text):
        # "bh 100231" is how people type BH-100231; a number typed without a separator stays so.
        forms = (f"{letters}-{digits}".upper(), f"{letters}{digits}".upper())
        for candidate in forms if separator else forms[1:]:
            if regex.fullmatch(candidate) and candidate not in found:
                found.append(candidate)
                break
    return found


def phone_numbers(text: str, region: str = "DE") -> list[str]:
    """Phone numbers in E.164 (never logged: personal data)."""
    return [phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
            for m in phonenumbers.PhoneNumberMatcher(text, region)]


def skus(text: str, known: frozenset[str]) -> list[str]:
    return [token for token in re.findall(r"[A-Za-z]{2,5}-?\d{2,6}", text.upper()) if token in known]


def store_keys(stores: list[StoreName]) -> dict[str, str]:
    """Words (and Chinese character pairs) that name exactly one store → its id."""
    owners: dict[str, set[str]] = {}
    for store in stores:
        keys = {fold(store.store_id)}
        for name in store.names:
            for word in fold(name).split():
                if CJK.search(word):
                    keys.update(word[i:i + 2] for i in range(len(word) - 1))
                elif len(word) >= 4:
                    keys.add(word)
        for key in keys:
            owners.setdefault(key, set()).add(store.store_id)
    places = {store.store_id: " ".join(fold(a) for a in store.addresses) for store in stores}
    unique = {key: next(iter(ids)) for key, ids in owners.items() if len(ids) == 1}
    return {key: owner for key, owner in unique.items()
            if not any(key in text for store_id, text in places.items() if store_id != owner)}


def named_store(text: str, keys: dict[str, str]) -> str | None:
    """The one store a message names (None for none or several)."""
    folded = fold(text)
    found: set[str] = set()
    pairs: dict[str, int] = {}
    words = folded.split()
    for key, store_id in keys.items():
        if CJK.search(key):
            if key in folded:  # one character pair may be a place name too (柏林): two are a name
                pairs[store_id] = pairs.get(store_id, 0) + 1
        elif any(word == key or (len(word) >= 5 and fuzz.ratio(word, key) >= 85) for word in words):
            found.add(store_id)
    found.update(store_id for store_id, count in pairs.items() if count >= 2)
    return found.pop() if len(found) == 1 else None
