"""What the assistant keeps: its switches, every answer and draft it wrote (with its sources and
the customer's rating), staff translation preferences and translations already made."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import json_field, utc_field

CAPABILITIES = ("answers", "drafts", "translation")


class AssistantSwitch(SQLModel, table=True):
    """A manager's switch per capability; no row: on (once a model endpoint is configured)."""

    __tablename__ = "assistant_switches"

    capability: str = Field(primary_key=True, max_length=16)  # answers | drafts | translation
    enabled: bool = True
    updated_by: str = Field(default="", max_length=64)
    updated_at: datetime = utc_field()


class AssistantAnswer(SQLModel, table=True):
    """One answer for a customer or one reply draft for staff, whatever became of it."""

    __tablename__ = "assistant_answers"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="answer", max_length=8)  # answer | draft
    customer_id: int = Field(foreign_key="customers.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id")
    locale: str = Field(default="en", max_length=8)
    question: str = ""
    answer: str = ""  # without the citation markers
    sources: list[str] = json_field(default_factory=list)  # cited: "faq:returns", "product:K1"
    # answer: sent | refused | rejected | failed; draft: offered | sent | edited | refused | ...
    outcome: str = Field(default="sent", max_length=16, index=True)
    reason: str = Field(default="", max_length=32)  # why it was rejected (checker) or failed
    helpful: bool | None = None  # the customer's 👍 / 👎
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0
    created_at: datetime = utc_field(index=True)


class TranslationSetting(SQLModel, table=True):
    """Translation for a staff group (``group:<chat id>``) or a console user (``console:<staff id>``):
    the language staff read and write in; empty: off. No row: on, in the group's or user's language."""

    __tablename__ = "assistant_translation_settings"

    scope: str = Field(primary_key=True, max_length=40)
    locale: str = Field(default="", max_length=8)


class Translation(SQLModel, table=True):
    """A text once translated into a language (keyed by the text's SHA-256): the transcript keeps
    the original words, this the translation staff or the customer saw."""

    __tablename__ = "assistant_translations"
    __table_args__ = (UniqueConstraint("source_sha", "locale"),)

    id: int | None = Field(default=None, primary_key=True)
    source_sha: str = Field(max_length=64)
    locale: str = Field(max_length=8)
    text: str = ""
    created_at: datetime = utc_field()
