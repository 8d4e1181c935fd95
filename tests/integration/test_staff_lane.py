"""The staff lane: posts into staff groups through the durable outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select

from touchpoint.clock import utcnow
from touchpoint.db import Database
from touchpoint.messaging.base import ChannelRetryAfter
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.pacing import GroupBudget
from touchpoint.messaging.sender import reap_expired_leases
from touchpoint.messaging.staff import StaffLane, StaffPost, enqueue_staff_post, prune_staff_posts

GROUP, OTHER_GROUP = -100, -200


class FakeGroup:
    """Records posts as staff would see them: (group, topic, text or the copied message)."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.posts: list[tuple[int, int | None, str]] = []
        self.refuse = refuse_first
        self.in_flight: set[int] = set()
        self.overlaps = 0

    async def post(self, post: StaffPost) -> None:
        if self.refuse:
            self.refuse -= 1
            raise ChannelRetryAfter(0.01)
        if post.chat_id in self.in_flight:  # two posts into one group at once: order is not kept
            self.overlaps += 1
        self.in_flight.add(post.chat_id)
        await asyncio.sleep(0.001)
        self.in_flight.discard(post.chat_id)
        shown = post.text if post.copy_from is None else f"copy{post.copy_from[1]}"
        self.posts.append((post.chat_id, post.thread_id, shown))


async def put(db: Database, *posts: StaffPost) -> None:
    async with db.session() as session:
        for post in posts:
            enqueue_staff_post(session, post)


async def drain(*lanes: StaffLane) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(lane.run(stop, idle_poll_s=0.02)) for lane in lanes]
    await lanes[0].idle(timeout=20)
    stop.set()
    await asyncio.gather(*tasks)


async def test_a_burst_coalesces_and_media_stay_in_place(db: Database) -> None:
    """A customer's lines waiting in the lane become one post; a photo between them keeps its place;
    a 429 only delays them; nothing is sent twice."""
    group = FakeGroup(refuse_first=2)
    await put(db,
              StaffPost(GROUP, 7, ["first"], coalesce_key="c1"),
              StaffPost(GROUP, 7, ["a"], coalesce_key="c1"),
              StaffPost(GROUP, 8, ["other customer"], coalesce_key="c2"),
              StaffPost(GROUP, 7, ["b"], coalesce_key="c1"),
              StaffPost(GROUP, 7, copy_from=(5, 99)),
              StaffPost(GROUP, 7, ["c"], coalesce_key="c1"))
    await drain(StaffLane(db, group, GroupBudget(100, 1.0)))
    assert group.posts == [(GROUP, 7, "first\n\na\n\nb"), (GROUP, 8, "other customer"),
                           (GROUP, 7, "copy99"), (GROUP, 7, "c")]
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage.status, OutboxMessage.lane))).all()
    assert set(rows) == {("sent", "staff")}


async def test_a_burst_longer_than_one_message_is_split(db: Database) -> None:
    group = FakeGroup()
    line = "x" * 1500
    await put(db, *[StaffPost(GROUP, 7, [line], coalesce_key="c1") for _ in range(5)])
    await drain(StaffLane(db, group, GroupBudget(100, 1.0)))
    assert [len(text) for _, _, text in group.posts] == [1500 * 2 + 2, 1500 * 2 + 2, 1500]


async def test_two_lanes_keep_each_groups_order_and_post_each_row_once(db: Database) -> None:
    """Two processes' lanes on one outbox: a group is worked by one at a time, in queue order."""
    groups = [FakeGroup(), FakeGroup()]
    lanes = [StaffLane(Database(db.url), g, GroupBudget(1000, 1.0), batch_size=3) for g in groups]
    for n in range(30):
        await put(db, StaffPost(GROUP, 1, [f"g{n:02d}"]), StaffPost(OTHER_GROUP, 2, [f"o{n:02d}"]))
    await drain(*lanes)
    posts = groups[0].posts + groups[1].posts
    for chat_id, prefix in ((GROUP, "g"), (OTHER_GROUP, "o")):
        texts = [text for chat, _, text in sorted(posts, key=lambda p: p[2]) if chat == chat_id]
        assert texts == [f"{prefix}{n:02d}" for n in range(30)]  # each once
    # In the order queued, as each lane posted them (a lane takes a group's rows as a whole).
    for group in groups:
        for chat_id in (GROUP, OTHER_GROUP):
            mine = [text for chat, _, text in group.posts if chat == chat_id]
            assert mine == sorted(mine)
    assert groups[0].overlaps == groups[1].overlaps == 0
    for lane in lanes:
        await lane.db.dispose()


async def test_a_post_in_flight_when_the_process_died_is_posted_after_its_lease(db: Database) -> None:
    """Staff posts are at-least-once: a row left "sending" by a dead process goes again."""
    await put(db, StaffPost(GROUP, 7, ["before the crash"]), StaffPost(GROUP, 7, ["after it"]))
    dead = StaffLane(db, FakeGroup(), GroupBudget(100, 1.0), lease=timedelta(seconds=30))
    claimed = await dead.claim()
    async with db.session() as session:  # the first was on its way when the process was killed
        await session.exec(update(OutboxMessage).where(col(OutboxMessage.id) == claimed[0].id)  # type: ignore[call-overload]
                           .values(status="sending"))
    group = FakeGroup()
    lane = StaffLane(db, group, GroupBudget(100, 1.0))
    assert await lane.claim() == []  # leased: nobody else takes the group meanwhile
    async with db.session() as session:  # the lease runs out
        await session.exec(update(OutboxMessage).values(lease_until=utcnow() - timedelta(seconds=1)))  # type: ignore[call-overload]
    assert await reap_expired_leases(db) == 2
    await drain(lane)
    assert [text for _, _, text in group.posts] == ["before the crash", "after it"]


async def test_settled_staff_posts_are_pruned_after_two_days(db: Database) -> None:
    """They hold customers' words: once posted they are kept two days, then go."""
    await put(db, StaffPost(GROUP, 7, ["old"]), StaffPost(GROUP, 7, ["recent"]))
    await drain(StaffLane(db, FakeGroup(), GroupBudget(100, 1.0)))
    await put(db, StaffPost(GROUP, 7, ["waiting"]))
    async with db.session() as session:
        oldest = min((await session.exec(select(OutboxMessage.id))).all())
        await session.exec(update(OutboxMessage).where(col(OutboxMessage.id) == oldest)  # type: ignore[call-overload]
                           .values(created_at=utcnow() - timedelta(days=3)))
    assert await prune_staff_posts(db) == 1
    async with db.session() as session:
        left = (await session.exec(select(OutboxMessage.status).order_by(col(OutboxMessage.id)))).all()
    assert left == ["sent", "pending"]
