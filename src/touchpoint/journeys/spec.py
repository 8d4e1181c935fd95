"""Journeys as configuration: the ``journeys.yaml`` schema, and a loader that names file, line and
field for every mistake (a bad file stops start-up; ``touchpoint journeys check FILE`` says why)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from touchpoint.config import SUPPORTED_LOCALES
from touchpoint.messaging.rules import Lane

DEFAULT_JOURNEYS_FILE = Path(__file__).with_name("journeys.yaml")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: Any) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``2d``, ``1w`` (or a number of seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be a duration such as 30m, 1h, 2d or 1w")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(Strict):
    """A test on one field of the event's payload, e.g. ``{field: total_minor, op: gte, value: 2000}``."""

    field: str
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"] = "eq"
    value: Any = None

    def matches(self, payload: dict[str, Any]) -> bool:
        present = self.field in payload and payload[self.field] is not None
        if self.op == "exists":
            return present == (self.value is not False)
        if not present:
            return self.op == "ne"
        actual = payload[self.field]
        try:
            match self.op:
                case "eq":
                    return bool(actual == self.value)
                case "ne":
                    return bool(actual != self.value)
                case "in":
                    return actual in (self.value or [])
                case "gt":
                    return bool(actual > self.value)
                case "gte":
                    return bool(actual >= self.value)
                case "lt":
                    return bool(actual < self.value)
                case _:
                    return bool(actual <= self.value)
        except TypeError:  # a string where a number was expected: no match, not a crash
            return False


class EventTrigger(Strict):
    """Enrol when the customer's behaviour (or a store event) matches."""

    event: str
    where: list[Filter] = []
    # Browse abandonment: the same key seen `times` times within `within` (e.g. a product viewed 3×).
    times: int = Field(default=1, ge=1)
    within: Duration | None = None
    # …but not if the customer did one of these in the same window (e.g. added to cart).
    unless: list[str] = []
    # One enrolment per value of this payload field (e.g. sku); default: one per event.
    key: str | None = None
    # With `key`: enrol again for the same key only after this long.
    once_per: Duration | None = None
    # Store-wide events (stock.changed) reach the customers who asked to watch the same key.
    watchers: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EventTrigger:
        if self.times > 1 and (self.within is None or self.key is None):
            raise ValueError("`times` needs `within` and `key`")
        if self.watchers is not None and self.key is None:
            raise ValueError("`watchers` needs `key` (the payload field both events share)")
        return self


class ScanTrigger(Strict):
    """A condition checked on a schedule (hourly)."""

    scan: Literal["inactive", "replenishment"]
    days: int = Field(default=60, ge=1)  # inactive: days without activity; replenishment: days before run-out


# A trigger with `scan:` is a scheduled scan; anything else is an event trigger (so errors name
# the fields of the kind the author meant, not of both).
Trigger = Annotated[
    Annotated[EventTrigger, Tag("Event")] | Annotated[ScanTrigger, Tag("Scan")],
    Discriminator(lambda v: "Scan" if (v.get("scan") if isinstance(v, dict) else getattr(v, "scan", None))
                  else "Event"),
]


class Conditions(Strict):
    """Segment filters, checked when enrolling."""

    languages: list[Literal["en", "ru", "zh"]] = list(SUPPORTED_LOCALES)
    linked: bool | None = None  # True: only customers linked to a store record
    min_spend_minor: int | None = None
    max_spend_minor: int | None = None
    tiers: list[Literal["new", "regular", "vip"]] | None = None
    last_order_within: Duration | None = None
    last_order_older_than: Duration | None = None


class Step(Strict):
    wait: Duration = timedelta(0)
    # Or wait until shortly before a time in the trigger's payload (e.g. a reservation's expiry).
    before_field: str | None = None
    send: str
    params: dict[str, Any] = {}
    # Skip this step when a param is empty (e.g. no incentive configured).
    requires_param: str | None = None
    # Marketing may go any time within this window: at the customer's usual active hour.
    send_window: Duration | None = None
    expires_after: Duration | None = None


class ExitGoal(Strict):
    event: str
    where: list[Filter] = []
    within: Duration = timedelta(days=7)
    conversion: bool = True


class Journey(Strict):
    key: str = Field(pattern=r"^[a-z0-9_]{1,48}$")
    enabled: bool = True
    category: Literal["transactional", "service", "marketing"]
    priority: int = Field(default=50, ge=0, le=100)  # higher first when several are due
    holdout: float = Field(default=0, ge=0, le=50)  # percent kept as a control group
    trigger: Trigger
    conditions: Conditions = Conditions()
    steps: list[Step] = Field(min_length=1)
    exit: list[ExitGoal] = []

    @property
    def lane(self) -> Lane:
        return Lane(self.category)

    def held_out(self, customer_id: int) -> bool:
        """Deterministic per customer × journey: the same customer is always in the same group."""
        digest = hashlib.sha256(f"{self.key}:{customer_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % 10_000 < round(self.holdout * 100)


class JourneysFile(Strict):
    journeys: list[Journey]

    @model_validator(mode="after")
    def _unique_keys(self) -> JourneysFile:
        keys = [j.key for j in self.journeys]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"journey keys must be unique: {', '.join(duplicates)}")
        return self

    def enabled(self) -> list[Journey]:
        return sorted((j for j in self.journeys if j.enabled), key=lambda j: -j.priority)


class JourneyFileError(ValueError):
    """Every problem in the file, one per line as ``file:line: field: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_journeys(path: Path | str | None = None, *, known_templates: set[str] | None = None) -> JourneysFile:
    path = Path(path) if path else DEFAULT_JOURNEYS_FILE
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise JourneyFileError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise JourneyFileError([f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    try:
        parsed = JourneysFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [part for part in error["loc"] if not _is_union_tag(part)]
            field = ".".join(str(part) for part in loc) or "(file)"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{path}:{_line_of(root, loc)}: {field}: {message}")
        raise JourneyFileError(problems) from None
    if known_templates is not None:
        problems = [
            f"{path}:{_line_of(root, ['journeys', j, 'steps', s, 'send'])}: "
            f"journeys.{j}.steps.{s}.send: unknown template {step.send!r}"
            for j, journey in enumerate(parsed.journeys)
            for s, step in enumerate(journey.steps)
            if step.send not in known_templates
        ]
        if problems:
            raise JourneyFileError(problems)
    return parsed


def _is_union_tag(part: Any) -> bool:
    # pydantic names the union member it tried ("EventTrigger"); the file has no such key.
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _line_of(node: Any, loc: list[Any]) -> int:
    """The line of the deepest YAML node the error path reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
            if child is None:  # a missing field: point at the mapping that lacks it
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
