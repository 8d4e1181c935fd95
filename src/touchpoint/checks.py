"""Checks that hold whatever Python's flags: unlike ``assert`` (stripped by ``python -O``), these
always run and fail with a clear error. Use them for invariants (a row loaded by its own foreign
key exists, an object flushed has an id); conditions a person can cause get a real branch and a
clear answer instead."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class BrokenInvariant(RuntimeError):
    """Something the code relies on does not hold: a bug or corrupted data, never user input."""


def present(value: T | None, what: str) -> T:
    """``value``, which must be there (``what`` names it in the error)."""
    if value is None:
        raise BrokenInvariant(f"{what} is missing")
    return value


def saved_id(row: Any) -> int:
    """The id of a row that has been saved (flushed) already."""
    ident = getattr(row, "id", None)
    if ident is None:
        raise BrokenInvariant(f"{type(row).__name__} has no id yet: flush it first")
    return int(ident)


def of_type(value: Any, kind: type[T], what: str) -> T:
    if not isinstance(value, kind):
        raise BrokenInvariant(f"{what} is a {type(value).__name__}, not a {kind.__name__}")
    return value
