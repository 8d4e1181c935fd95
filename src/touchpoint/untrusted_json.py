"""JSON from outside (the store's backend, Telegram's webhook): parsed with a nesting limit.

``json.loads`` recurses once per level, so ``[`` × 1000 raises RecursionError (an answer of 500
and a long traceback) before any schema sees it; and a document nested deeper than any real
payload can only be an attack on what walks it next. Both are a ValueError here: a 400.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # a store event or a Telegram update nests well under 10 levels


class UntrustedJSONError(ValueError):
    """Not JSON, not UTF-8, or nested too deeply."""


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(data)
    except RecursionError:
        raise UntrustedJSONError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise UntrustedJSONError(f"not JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise UntrustedJSONError("not UTF-8") from None
    if depth(value) > max_depth:
        raise UntrustedJSONError(f"JSON nested deeper than {max_depth} levels")
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
