"""Invite friends: the code, link and share button, typed codes, stats and the points balance."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, LinkPreviewOptions, Message
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.keyboards import Keyboard, MenuCallback
from touchpoint.catalog.facts import fact
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.formatting import format_date, format_day, format_money, format_number
from touchpoint.markup import esc
from touchpoint.referrals import ledger
from touchpoint.referrals.rules import invite_link, normalize_code, share_url
from touchpoint.referrals.service import (
    Attribution,
    code_for,
    enter_code,
    invite_stats,
    pending_rewards,
    vouchers_of,
)

# Answers that end the "type your code" step; an unknown code may be typed again.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # the invite link would otherwise preview the bot
_FINAL = {"joined", "own", "already_referred", "already_customer", "too_late", "cycle"}


class ReferralCallback(CallbackData, prefix="rf"):
    action: str  # share | code | points


class EnteringCode(StatesGroup):
    code = State()


def attribution_text(result: Attribution, settings: Settings) -> str:
    """What the customer reads after a code (from a link or typed), in the chat's language."""
    locale = get_i18n().current_locale
    if result.outcome == "joined":
        assert result.referrer is not None
        return _("referrals.code.joined").format(
            name=esc(result.referrer.first_name or "🙂"),
            minimum=format_money(settings.referral_min_order_minor, settings.referral_currency, locale),
            points=settings.referral_referee_points,
        )
    if result.outcome in ("too_late", "already_customer"):
        return _("referrals.code.too_late").format(days=settings.referral_join_window_days)
    if result.outcome == "cycle":
        return _("referrals.code.not_allowed")
    return _(f"referrals.code.{result.outcome}")  # unknown | own | already_referred


def pending_line(points: int, until: datetime | None, customer: Customer, locale: str) -> str | None:
    """"500 points on hold until 7 Jan 2027": referral rewards not spendable yet (None if none)."""
    if points <= 0 or until is None:
        return None
    day = format_date(until, locale, customer.timezone)
    return _("referrals.points.pending", "referrals.points.pending.plural", points).format(
        count=format_number(points, locale), date=day)


async def _invite_screen(
    bot: Bot, session: AsyncSession, settings: Settings, customer: Customer, locale: str
) -> tuple[str, InlineKeyboardMarkup]:
    code = await code_for(session, customer)
    me = await bot.me()
    stats = await invite_stats(session, customer)
    text = _("referrals.invite.text").format(
        brand=esc(settings.brand_name), code=code, link=invite_link(me.username or "", code),
        minimum=fact("referral_min_order", settings, locale),
        referee_reward=fact("referral_referee_reward", settings, locale),
        referrer_points=fact("referral_referrer_points", settings, locale),
        joined=stats.joined, pending=stats.pending, rewarded=stats.rewarded, earned=stats.earned_points,
        balance=stats.balance,
    )
    held = pending_line(stats.pending_points, stats.pending_until, customer, locale)
    if held:
        text = f"{text}\n{held}"
    builder = Keyboard()
    builder.button(text=_("referrals.button.share"), callback_data=ReferralCallback(action="share"))
    builder.button(text=_("referrals.button.have_code"), callback_data=ReferralCallback(action="code"))
    builder.button(text=_("referrals.button.points"), callback_data=ReferralCallback(action="points"))
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    builder.adjust(1, 2, 1)
    return text, builder.as_markup()


def _back_to_invite() -> InlineKeyboardMarkup:
    builder = Keyboard()
    builder.button(text=_("referrals.button.invite"), callback_data=MenuCallback(action="invite"))
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    return builder.as_markup()


async def invite_command(
    message: Message, bot: Bot, session: AsyncSession, settings: Settings, customer: Customer, locale: str
) -> None:
    text, markup = await _invite_screen(bot, session, settings, customer, locale)
    await message.answer(text, reply_markup=markup, link_preview_options=NO_PREVIEW)


async def invite_button(
    query: CallbackQuery, bot: Bot, session: AsyncSession, settings: Settings, customer: Customer, locale: str
) -> None:
    await query.answer()
    text, markup = await _invite_screen(bot, session, settings, customer, locale)
    await _show(query, text, markup)


async def share(
    query: CallbackQuery, bot: Bot, session: AsyncSession, settings: Settings, customer: Customer
) -> None:
    """A message ready to forward, and Telegram's share sheet with the same text prepared."""
    await query.answer()
    assert query.message is not None
    link = invite_link((await bot.me()).username or "", await code_for(session, customer))
    text = _("referrals.share.message").format(
        brand=esc(settings.brand_name), points=settings.referral_referee_points, link=link
    )
    builder = Keyboard()
    builder.button(text=_("referrals.button.send"), url=share_url(link, text.removesuffix(link).strip()))
    await query.message.answer(_("referrals.share.intro"))
    await query.message.answer(text, reply_markup=builder.as_markup(), link_preview_options=NO_PREVIEW)


async def ask_code(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await state.set_state(EnteringCode.code)
    assert query.message is not None
    await query.message.answer(_("referrals.code.ask"))


async def code_typed(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings, customer: Customer
) -> None:
    text = message.text or ""
    result = await enter_code(session, settings, customer, text)
    # A code-shaped typo may be retried; a sentence means the customer has moved on.
    if result.outcome in _FINAL or normalize_code(text) is None:
        await state.clear()
    await message.answer(attribution_text(result, settings), reply_markup=_back_to_invite())


async def code_command(
    message: Message, command: CommandObject, state: FSMContext, session: AsyncSession,
    settings: Settings, customer: Customer,
) -> None:
    """`/code K7XM2Q`, or `/code` alone to be asked for it."""
    if not command.args:
        await state.set_state(EnteringCode.code)
        await message.answer(_("referrals.code.ask"))
        return
    result = await enter_code(session, settings, customer, command.args)
    await message.answer(attribution_text(result, settings), reply_markup=_back_to_invite())


async def points(session: AsyncSession, customer: Customer, locale: str) -> str:
    assert customer.id is not None
    lines = [_("referrals.points.title").format(balance=await ledger.balance(session, customer.id))]
    held = pending_line(*await pending_rewards(session, customer.id), customer, locale)
    if held:
        lines.append(held)
    lines += [
        _("referrals.points.voucher").format(
            voucher=voucher.code, amount=format_money(voucher.amount_minor, voucher.currency, locale))
        for voucher in await vouchers_of(session, customer.id)
    ]
    entries = await ledger.recent(session, customer.id)
    if not entries:
        lines.append(_("referrals.points.empty"))
    else:
        zone = ZoneInfo(customer.timezone)
        lines.append(_("referrals.points.recent"))
        lines += [
            _("referrals.points.line").format(
                date=format_day(entry.created_at, locale, zone), points=f"{entry.points:+d}",
                reason=_(f"referrals.reason.{entry.reason}"),
            )
            for entry in entries
        ]
    return "\n".join(lines)


async def points_command(message: Message, session: AsyncSession, customer: Customer, locale: str) -> None:
    await message.answer(await points(session, customer, locale), reply_markup=_back_to_invite())


async def points_button(query: CallbackQuery, session: AsyncSession, customer: Customer, locale: str) -> None:
    await query.answer()
    await _show(query, await points(session, customer, locale), _back_to_invite())


async def _show(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup) -> None:
    """Replace the message the button was on; send anew if it cannot be edited."""
    if isinstance(query.message, Message):
        try:
            await query.message.edit_text(text, reply_markup=markup, link_preview_options=NO_PREVIEW)
            return
        except TelegramBadRequest:
            pass
    assert query.bot is not None and query.from_user is not None
    await query.bot.send_message(query.from_user.id, text, reply_markup=markup)


def create_router() -> Router:
    router = Router(name="referrals")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(invite_command, Command("invite"), flags={"event": "referral.invite_opened"})
    router.message.register(points_command, Command("points"), flags={"event": "referral.points_viewed"})
    router.message.register(code_command, Command("code"))
    router.message.register(code_typed, EnteringCode.code, F.text, ~F.text.startswith("/"))
    router.callback_query.register(
        invite_button, MenuCallback.filter(F.action == "invite"), flags={"event": "referral.invite_opened"}
    )
    router.callback_query.register(
        share, ReferralCallback.filter(F.action == "share"), flags={"event": "referral.code_shared"}
    )
    router.callback_query.register(ask_code, ReferralCallback.filter(F.action == "code"))
    router.callback_query.register(
        points_button, ReferralCallback.filter(F.action == "points"),
        flags={"event": "referral.points_viewed"},
    )
    return router
