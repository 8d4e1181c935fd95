"""The staff desk: forum topics, the context card, staff checks, follow-ups, and the poster of the
staff lane (every bot post into a staff group is a durable outbox row: touchpoint.messaging.staff).

One desk per dispatcher (``dp["handoff_desk"]``), started and stopped with polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from redis.asyncio import Redis
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.transcript import write_pending
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database
from touchpoint.handoff import service
from touchpoint.handoff.card import build_card
from touchpoint.handoff.models import Conversation
from touchpoint.i18n import get_translator
from touchpoint.markup import esc
from touchpoint.messaging.base import ChannelRejected, ChannelRetryAfter, ChannelUnavailable
from touchpoint.messaging.pacing import GroupBudget
from touchpoint.messaging.shared_pacing import group_windows
from touchpoint.messaging.staff import StaffLane, StaffPost, enqueue_staff_post, when_committed

log = logging.getLogger(__name__)

TICK_S = 1.0  # new conversations (escalated anywhere, e.g. by the FAQ) get their topic this fast
FOLLOW_UP_S = 30.0
PRUNE_S = 300.0
TOPIC_GONE = ("message thread not found", "TOPIC_ID_INVALID", "TOPIC_DELETED")


class HandoffCallback(CallbackData, prefix="ho"):
    action: str  # claim | close (staff, on the card) | csat (customer)
    conversation_id: int
    score: int = 0


class StaffDesk:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.bot: Bot | None = None
        self.lane = StaffLane(db, self, GroupBudget(settings.handoff_group_max_posts,
                                                    settings.handoff_group_window_s))
        self._stop_lane = asyncio.Event()
        self._lane_task: asyncio.Task[None] | None = None
        self._members: dict[tuple[int, int], tuple[bool, float]] = {}
        self._topic_locks: dict[int, asyncio.Lock] = {}
        self._topic_states: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)  # per group
        self.touched: set[int] = set()  # customers with new transcript lines since the last prune
        self._loop_task: asyncio.Task[None] | None = None
        self.scheduled = False  # True: the composition root's scheduler ticks the desk (no own loop)
        self._ticking = False
        self._next_follow_up = self._next_prune = 0.0

    def share_budget(self, redis: Redis, key: str) -> None:
        """Count each group's budget in Redis with the bot's other processes (``key``: the bot's)."""
        self.lane.budget = GroupBudget(
            self.settings.handoff_group_max_posts, self.settings.handoff_group_window_s,
            shared=group_windows(redis, key))

    @property
    def live_bot(self) -> Bot:
        """The bot the desk posts with: there is one once the desk is started."""
        if self.bot is None:
            raise RuntimeError("the staff desk is not started")
        return self.bot

    @property
    def staff_locale(self) -> str:
        return self.settings.default_locale

    def t(self, key: str, /, **params: object) -> str:
        return get_translator()(self.staff_locale, key, **params)

    # ------------------------------------------------------------ life cycle

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        for chat_id in service.staff_chat_ids(self.settings):
            for problem in await self.check_group(chat_id):
                log.error("staff group %s: %s", chat_id, problem)
        self._next_follow_up = self._next_prune = asyncio.get_running_loop().time() + FOLLOW_UP_S
        self._ticking = True
        self._stop_lane.clear()
        self._lane_task = asyncio.create_task(self.lane.run(self._stop_lane))
        if not self.scheduled:
            self._loop_task = asyncio.create_task(self._run())

    async def scheduled_tick(self) -> None:
        """One beat of the desk, run by the scheduler (bot/scheduler.py) every TICK_S: what
        ``_run`` does in its loop when the desk runs without the scheduler (tests, tools)."""
        if not self._ticking:  # not started yet, or stopped
            return
        now = asyncio.get_running_loop().time()
        follow_up, prune = now >= self._next_follow_up, now >= self._next_prune
        try:
            await self.tick(follow_up=follow_up, prune=prune)
        except Exception:
            log.exception("staff desk tick failed")
        if follow_up:
            self._next_follow_up = now + FOLLOW_UP_S
        if prune:
            self._next_prune = now + PRUNE_S

    async def stop(self) -> None:
        self._ticking = False
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._lane_task is not None:
            self._stop_lane.set()
            await self._lane_task  # the post in hand finishes; claimed rows are handed back
            self._lane_task = None

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every staff post queued so far has been posted (or given up on); a stopped
        desk drains its lane here (tools, tests)."""
        if self._lane_task is not None:
            await self.lane.idle(timeout)
            return
        stop = asyncio.Event()
        running = asyncio.create_task(self.lane.run(stop, idle_poll_s=0.05))
        try:
            await self.lane.idle(timeout)
        finally:
            stop.set()
            await running

    def put(self, session: AsyncSession, post: StaffPost) -> None:
        """Queue a post in the caller's transaction; the lane takes it as soon as that commits."""
        enqueue_staff_post(session, post)
        when_committed(session, self.lane.poke)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_follow_up = next_prune = loop.time() + FOLLOW_UP_S
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            try:
                await self.tick(follow_up=now >= next_follow_up, prune=now >= next_prune)
            except Exception:
                log.exception("staff desk tick failed")
            if now >= next_follow_up:
                next_follow_up = now + FOLLOW_UP_S
            if now >= next_prune:
                next_prune = now + PRUNE_S

    async def tick(self, *, follow_up: bool = True, prune: bool = True) -> None:
        """Open topics for new conversations, show console actions, remind, announce, forget old chat
        lines."""
        async with self.db.session() as session:
            await self.post_console_lines(session)
            for conversation in await service.conversations_without_topic(session):
                await self.ensure_topic(session, conversation)
            if follow_up:
                await self.follow_up(session)
            if prune and self.touched:
                touched = set(self.touched)
                self.touched.clear()  # the same set object the transcript middleware fills
                await service.prune_transcripts(session, self.settings.handoff_transcript_keep, touched)

    # ------------------------------------------------------------ start-up check

    async def check_group(self, chat_id: int) -> list[str]:
        """What stops the bot from running topics in this group, in plain words (empty: all good)."""
        try:
            chat = await self.live_bot.get_chat(chat_id)
        except TelegramAPIError as exc:
            return [f"the bot cannot see this chat ({exc.message}); add the bot to the group"]
        problems = []
        if chat.type != "supergroup":
            problems.append("it is not a supergroup; convert the group to a supergroup")
        if not chat.is_forum:
            problems.append("topics are off; turn on Topics in the group settings")
        member = await self.live_bot.get_chat_member(chat_id, self.live_bot.id)
        if member.status != "administrator":
            problems.append("the bot is not an administrator; promote it")
        elif not getattr(member, "can_manage_topics", False):
            problems.append("the bot may not manage topics; give it the 'Manage topics' right")
        return problems

    # ------------------------------------------------------------ staff

    async def is_staff(self, chat_id: int, user_id: int) -> bool:
        """Members of a configured staff group, asked from Telegram and cached briefly."""
        if chat_id not in service.staff_chat_ids(self.settings):
            return False
        now = time.monotonic()
        cached = self._members.get((chat_id, user_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            member = await self.live_bot.get_chat_member(chat_id, user_id)
            allowed = member.status in ("creator", "administrator", "member") and not member.user.is_bot
        except TelegramBadRequest:
            allowed = False
        self._members[(chat_id, user_id)] = (allowed, now + self.settings.handoff_staff_cache_s)
        return allowed

    # ------------------------------------------------------------ topics

    async def ensure_topic(self, session: AsyncSession, conversation: Conversation) -> int | None:
        """The conversation's topic: the customer's earlier one (reopened), else a new one.

        The context card is queued as the topic's first post of this conversation.
        """
        if conversation.id is None or conversation.topic_id is not None or conversation.staff_chat_id is None:
            return conversation.topic_id
        lock = self._topic_locks.setdefault(conversation.id, asyncio.Lock())
        try:
            async with lock:
                await session.refresh(conversation)
                if conversation.topic_id is None:
                    await self._open_topic(session, conversation)
        finally:
            self._topic_locks.pop(conversation.id, None)
        return conversation.topic_id

    async def _open_topic(self, session: AsyncSession, conversation: Conversation) -> None:
        if conversation.id is None or conversation.staff_chat_id is None:
            return
        # Reopened and recorded before the staff lane may close it for the previous conversation.
        async with self._topic_states[conversation.staff_chat_id]:
            topic_id = await self._reopen_or_create(session, conversation)
            if topic_id is None:
                return
            if not await service.set_topic(session, conversation.id, topic_id):
                # Another bot process opened it first: keep theirs, drop ours if it is a new one.
                await session.refresh(conversation)
                if conversation.topic_id != topic_id:
                    with contextlib.suppress(TelegramAPIError):
                        await self.live_bot.delete_forum_topic(conversation.staff_chat_id, topic_id)
                return
            await session.refresh(conversation)
            await self.post_card(session, conversation)
            await session.commit()  # the topic and its card together

    async def post_card(self, session: AsyncSession, conversation: Conversation) -> None:
        self.put(session, await self._card_post(session, conversation))

    async def _card_post(self, session: AsyncSession, conversation: Conversation) -> StaffPost:
        if conversation.staff_chat_id is None or conversation.id is None:
            raise ValueError("a card needs a saved conversation with a staff group")
        await write_pending(session)  # the card shows the message that brought the customer here
        card = await build_card(session, conversation, self.settings)
        buttons = [
            [
                (
                    self.t("handoff.button.claim"),
                    HandoffCallback(action="claim", conversation_id=conversation.id).pack(),
                ),
                (
                    self.t("handoff.button.close"),
                    HandoffCallback(action="close", conversation_id=conversation.id).pack(),
                ),
            ]
        ]
        return StaffPost(
            conversation.staff_chat_id,
            conversation.topic_id,
            [card],
            buttons=buttons,
            coalesce_key=f"c{conversation.customer_id}",
            conversation_id=conversation.id,
        )

    async def _reopen_or_create(
        self, session: AsyncSession, conversation: Conversation, skip: int | None = None
    ) -> int | None:
        if conversation.staff_chat_id is None:
            return None
        chat_id = conversation.staff_chat_id
        previous = await service.previous_topic(session, conversation.customer_id, chat_id)
        if previous is not None and previous != skip:
            try:
                await self.live_bot.reopen_forum_topic(chat_id, previous)
                return previous
            except TelegramBadRequest as exc:
                if "TOPIC_NOT_MODIFIED" in exc.message:  # it was open already
                    return previous
                log.info("topic %s of group %s is gone, creating a new one", previous, chat_id)
        customer = await session.get(Customer, conversation.customer_id)
        if customer is None:
            return None
        # Topic names are plain text (no parse mode): the name shows as typed.
        name = f"{customer.first_name or '—'} · #{customer.id}"[:128]
        try:
            topic = await self.live_bot.create_forum_topic(chat_id, name)
        except TelegramAPIError:
            log.exception("could not create a topic in group %s", chat_id)
            return None
        return topic.message_thread_id

    def close_topic(self, session: AsyncSession, conversation: Conversation) -> None:
        """Close the conversation's topic once the lines queued for it so far have been posted
        (a closed topic refuses them), unless a new conversation has reopened it by then."""
        if conversation.staff_chat_id is None or conversation.topic_id is None:
            return
        self.put(session, StaffPost(conversation.staff_chat_id, conversation.topic_id, close_topic=True,
                                    conversation_id=conversation.id))

    def say(self, session: AsyncSession, conversation: Conversation, text: str) -> None:
        """A bot line in the conversation's topic, through the staff lane."""
        if conversation.staff_chat_id is None:
            return
        self.put(session, StaffPost(conversation.staff_chat_id, conversation.topic_id, [text],
                                    conversation_id=conversation.id))

    def say_closed(self, session: AsyncSession, conversation: Conversation, text: str) -> None:
        """A line about a conversation that is (or may be) closed already, such as the customer's
        rating: posted into its topic by reopening it for a moment, so staff do see it."""
        if conversation.staff_chat_id is None:
            return
        self.put(session, StaffPost(conversation.staff_chat_id, conversation.topic_id, [text],
                                    while_closed=True, conversation_id=conversation.id))

    async def post_console_lines(self, session: AsyncSession) -> None:
        """What colleagues did in the web console, shown in the conversation's topic: their replies,
        a claim, and a close (which closes the topic as /close does)."""
        taken = await service.take_topic_posts(session)
        if not taken:
            return
        for line, conversation in taken:
            name = esc(line.author)
            if line.kind == "reply":
                self.say(session, conversation, self.t("handoff.staff.console_reply", name=name,
                                                       text=esc(line.text)))
            elif line.kind == "claim":  # the same words as a /claim in the topic
                self.say(session, conversation, self.t("handoff.staff.claimed", name=name))
            elif line.kind == "close":
                self.say(session, conversation, self.t("handoff.staff.console_closed", name=name))
                self.close_topic(session, conversation)  # unless reopened by then (``_post``)
        await session.commit()  # taken and queued in one transaction: posted once, never lost

    # ------------------------------------------------------------ follow-up

    async def follow_up(self, session: AsyncSession) -> None:
        """Remind about unanswered conversations; announce the night's ones when staff are back."""
        now = utcnow()
        hours = service.working_hours(self.settings)
        if not hours.is_open(now):
            return
        query = (
            select(Conversation)
            .where(
                Conversation.status == "open",
                col(Conversation.topic_id).is_not(None),
                col(Conversation.first_response_at).is_(None),
            )
            .order_by(col(Conversation.id))
        )
        due = now - timedelta(minutes=self.settings.handoff_reminder_minutes)
        for conversation in (await session.exec(query)).all():
            if conversation.out_of_hours and conversation.announced_at is None:
                conversation.announced_at = now
                self.say(session, conversation, self.t("handoff.staff.announce"))
            elif (
                conversation.announced_at or conversation.opened_at
            ) <= due and conversation.reminded_at is None:
                # Out-of-hours conversations wait from the moment staff came in, not from the night.
                conversation.reminded_at = now
                since = conversation.announced_at or conversation.opened_at
                minutes = int((now - since).total_seconds() // 60)
                self.say(session, conversation, self.t("handoff.staff.reminder", minutes=minutes))
            else:
                continue
            session.add(conversation)

    # ------------------------------------------------------------ GroupPoster (the staff lane's)

    async def post(self, post: StaffPost) -> None:
        """One post of the staff lane. A conversation's post goes to its topic as it is now; a
        topic deleted mid-conversation is replaced (with a fresh card) and the post goes there."""
        thread_id = await self._thread_of(post)
        try:
            await self._post(post, thread_id)
        except TelegramBadRequest as exc:
            gone = thread_id is not None and any(mark in exc.message for mark in TOPIC_GONE)
            new_thread = await self._replace_topic(post.chat_id, thread_id) if gone and thread_id else None
            if new_thread is None:
                raise ChannelRejected(exc.message) from exc
            await self._post(post, new_thread)

    async def _thread_of(self, post: StaffPost) -> int | None:
        if post.conversation_id is None:
            return post.thread_id
        async with self.db.session() as session:
            conversation = await session.get(Conversation, post.conversation_id)
        if conversation is None or conversation.topic_id is None:
            return post.thread_id
        return conversation.topic_id

    async def _replace_topic(self, chat_id: int, thread_id: int) -> int | None:
        """A new topic (with a fresh card, sent first) for the open conversation of a deleted one;
        the conversation's later posts follow it there."""
        async with self.db.session() as session:
            conversation = await service.conversation_by_topic(session, chat_id, thread_id)
            if conversation is None or conversation.status != "open":
                return None
            conversation.topic_id = None
            new_thread = await self._reopen_or_create(session, conversation, skip=thread_id)
            if new_thread is None:
                return None
            conversation.topic_id = new_thread
            session.add(conversation)
            card = await self._card_post(session, conversation)
        with contextlib.suppress(TelegramAPIError):
            await self._post(card, new_thread)
        return new_thread

    async def _close_unless_in_use(self, chat_id: int, thread_id: int) -> None:
        """Close a conversation's topic unless a new conversation of the customer has it now (this
        process's own reopening waits for the close; another process's is looked for again after)."""
        async with self._topic_states[chat_id]:
            if await self._topic_in_use(chat_id, thread_id):
                return
            try:
                await self.live_bot.close_forum_topic(chat_id, thread_id)
            except TelegramRetryAfter as exc:
                raise ChannelRetryAfter(exc.retry_after) from exc
            except TelegramBadRequest:
                return  # closed already, or gone
            if await self._topic_in_use(chat_id, thread_id):
                with contextlib.suppress(TelegramAPIError):
                    await self.live_bot.reopen_forum_topic(chat_id, thread_id)

    async def _topic_in_use(self, chat_id: int, thread_id: int) -> bool:
        """A newer conversation of the customer reopened the topic since the close was queued."""
        async with self.db.session() as session:
            current = await service.conversation_by_topic(session, chat_id, thread_id)
        return current is not None and current.status == "open"

    async def _post(self, post: StaffPost, thread_id: int | None) -> None:
        if post.close_topic:
            if thread_id is not None:
                await self._close_unless_in_use(post.chat_id, thread_id)
            return
        reopened = False
        if post.while_closed and thread_id is not None:
            try:
                await self.live_bot.reopen_forum_topic(post.chat_id, thread_id)
                reopened = True
            except TelegramRetryAfter as exc:
                raise ChannelRetryAfter(exc.retry_after) from exc
            except TelegramBadRequest:
                pass  # open (a new conversation of the same customer) or gone: post as usual
        try:
            await self._send(post, thread_id)
        finally:
            if reopened:
                with contextlib.suppress(TelegramAPIError):
                    await self.live_bot.close_forum_topic(post.chat_id, thread_id or 0)

    async def _send(self, post: StaffPost, thread_id: int | None) -> None:
        markup = None
        if post.buttons:
            markup = InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text=label, callback_data=data) for label, data in row]
                    for row in post.buttons
                ]
            )
        try:
            if post.copy_from is not None:
                await self.live_bot.copy_message(
                    post.chat_id, post.copy_from[0], post.copy_from[1], message_thread_id=thread_id
                )
            else:
                await self.live_bot.send_message(
                    post.chat_id, post.text, message_thread_id=thread_id, reply_markup=markup
                )
        except TelegramRetryAfter as exc:
            raise ChannelRetryAfter(exc.retry_after) from exc
        except TelegramForbiddenError as exc:
            raise ChannelRejected(exc.message) from exc
        except (TimeoutError, TelegramNetworkError, TelegramServerError) as exc:
            raise ChannelUnavailable(str(exc)) from exc
