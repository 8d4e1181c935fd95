"""Referral codes, referrals and the immutable reward ledger."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import utc_field


class ReferralCode(SQLModel, table=True):
    __tablename__ = "referral_codes"

    code: str = Field(primary_key=True, max_length=16)
    customer_id: int = Field(foreign_key="customers.id", unique=True)
    created_at: datetime = utc_field()


class ReferralStatus(StrEnum):
    PENDING = "pending"  # joined through a code, waiting for a first delivered order
    QUALIFIED = "qualified"  # both sides rewarded
    CAPPED = "capped"  # newcomer rewarded, referrer over the monthly cap
    HELD = "held"  # velocity: waiting for staff review, nothing paid
    REJECTED = "rejected"  # a fraud rule said no (see reason)
    REVERSED = "reversed"  # the qualifying order came back within the return window


class Referral(SQLModel, table=True):
    __tablename__ = "referrals"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(foreign_key="referral_codes.code", max_length=16)
    referrer_id: int = Field(foreign_key="customers.id", index=True)
    referee_id: int = Field(foreign_key="customers.id", unique=True)  # one referrer per referee
    status: str = Field(default=ReferralStatus.PENDING, max_length=16)
    reason: str | None = None  # why the last decision was taken (a rule name)
    source: str = Field(default="link", max_length=8)  # link | typed
    order_id: int | None = Field(default=None, foreign_key="orders.id")  # the qualifying order
    created_at: datetime = utc_field()
    decided_at: datetime | None = utc_field(nullable=True, default=None)


class RewardStatus(StrEnum):
    PENDING = "pending"  # the qualifying order may still come back: not spendable yet
    AVAILABLE = "available"  # credited to the ledger (points) or issued (voucher)
    CANCELLED = "cancelled"  # the qualifying order was returned, refunded or cancelled in time


class ReferralReward(SQLModel, table=True):
    """One side's reward of a paid referral, held until the qualifying order's return window ends.

    ``release_due_rewards`` (a scheduled job) credits it then; a return, refund or cancellation
    of the qualifying order before that cancels it, and nothing was ever spendable."""

    __tablename__ = "referral_rewards"
    __table_args__ = (UniqueConstraint("referral_id", "side"),)

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referrals.id")
    customer_id: int = Field(foreign_key="customers.id", index=True)
    side: str = Field(max_length=8)  # referee | referrer
    points: int = 0
    voucher_minor: int = 0  # the newcomer's welcome voucher, issued on release
    status: str = Field(default=RewardStatus.PENDING, max_length=16, index=True)
    available_at: datetime = utc_field()  # the end of the qualifying order's return window
    created_at: datetime = utc_field()
    decided_at: datetime | None = utc_field(nullable=True, default=None)


class LedgerKind(StrEnum):
    EARN = "earn"
    REDEEM = "redeem"
    REVERSE = "reverse"
    EXPIRE = "expire"


class LedgerEntry(SQLModel, table=True):
    """One immutable movement of points; a balance is always the sum of these."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("customer_id", "kind", "reference"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    kind: str = Field(max_length=16)  # earn | redeem | reverse | expire (see LedgerKind)
    points: int
    reason: str = Field(max_length=64)
    reference: str = Field(max_length=128)  # what caused it, for idempotency
    created_at: datetime = utc_field()


class Voucher(SQLModel, table=True):
    """A money-off code for the store's checkout (the newcomer's welcome voucher).

    The store redeems it; ``status`` becomes "void" when the reward is reversed."""

    __tablename__ = "vouchers"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=16)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    reference: str = Field(unique=True, max_length=128)  # what earned it, for idempotency
    status: str = Field(default="issued", max_length=8)  # issued | void
    created_at: datetime = utc_field()
    voided_at: datetime | None = utc_field(nullable=True, default=None)
