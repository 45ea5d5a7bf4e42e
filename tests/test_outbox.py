"""The outbox table and its domain functions, without Telegram."""

import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.org import Member, Node, Post
from models.outbox import (
    Deferred,
    Failed,
    MessageKind,
    Migrated,
    OutboxMessage,
    OutboxStatus,
    OutgoingMessage,
    Retry,
    Sent,
    Unreachable,
    claim_due,
    delivery_counts,
    enqueue,
    outstanding,
    record_outcomes,
    release_claims,
)
from models.people import GroupChat


@dataclass
class Tree:
    """A zone with one grid: the zone's lead and officer stand above the grid's lead."""

    zone: Node
    grid: Node
    zone_lead: Member
    zone_officer: Member
    grid_lead: Member


async def small_tree(session: AsyncSession) -> Tree:
    zone = Node(level="zone", name="县委办片区", path="县委办片区")
    session.add(zone)
    await session.flush()
    zone.zone_id = zone.id
    grid = Node(
        level="grid",
        name="金桥小区",
        path="县委办片区/金桥小区",
        parent_id=zone.id,
        zone_id=zone.id,
    )
    session.add(grid)
    await session.flush()
    grid.grid_id = grid.id
    zone_lead = Member(telegram_id=101, name="王片长", reachable=True)
    zone_officer = Member(telegram_id=102, name="李信息员", reachable=True)
    grid_lead = Member(telegram_id=201, name="张<网格长>", reachable=True)
    session.add_all([zone_lead, zone_officer, grid_lead])
    await session.flush()
    session.add_all(
        [
            Post(node_id=zone.id, role="lead", holder_id=zone_lead.id),
            Post(node_id=zone.id, role="officer", holder_id=zone_officer.id),
            Post(node_id=grid.id, role="lead", holder_id=grid_lead.id),
            Post(node_id=grid.id, role="officer"),
        ]
    )
    await session.commit()
    return Tree(zone, grid, zone_lead, zone_officer, grid_lead)


async def rows(session: AsyncSession) -> list[OutboxMessage]:
    session.expire_all()
    return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_enqueue_joins_the_callers_transaction(session: AsyncSession) -> None:
    await enqueue(session, [OutgoingMessage(chat_id=1, text="<b>通知</b>", source="notice:1")])
    await session.rollback()
    assert await rows(session) == []

    await enqueue(
        session,
        [
            OutgoingMessage(
                chat_id=1,
                text="<b>通知</b>",
                source="notice:1",
                reply_markup={"inline_keyboard": [[{"text": "收到", "callback_data": "ack:1"}]]},
            ),
            OutgoingMessage(
                chat_id=-5, kind=MessageKind.photo, file_id="PHOTO", caption="图", source="x"
            ),
        ],
    )
    await session.commit()
    text, photo = await rows(session)
    assert (text.chat_id, text.kind, text.status, text.attempts) == (1, "text", "pending", 0)
    assert text.payload == {
        "text": "<b>通知</b>",
        "reply_markup": {"inline_keyboard": [[{"text": "收到", "callback_data": "ack:1"}]]},
    }
    assert photo.payload == {"file_id": "PHOTO", "caption": "图"}


async def test_a_dedupe_key_is_enqueued_once(session: AsyncSession) -> None:
    first = OutgoingMessage(chat_id=1, text="a", dedupe_key="notice:12:member:345")
    await enqueue(session, [first, first, OutgoingMessage(chat_id=2, text="no key")])
    await session.commit()
    await enqueue(
        session,
        [
            OutgoingMessage(chat_id=1, text="again", dedupe_key="notice:12:member:345"),
            OutgoingMessage(chat_id=2, text="no key"),
        ],
    )
    await session.commit()
    texts = [row.payload["text"] for row in await rows(session)]
    assert sorted(texts) == ["a", "no key", "no key"]


async def test_delivery_counts_by_status(session: AsyncSession) -> None:
    await enqueue(
        session, [OutgoingMessage(chat_id=n, text="x", source="notice:7") for n in (1, 2, 3)]
    )
    await enqueue(session, [OutgoingMessage(chat_id=9, text="x", source="notice:8")])
    await session.commit()
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.chat_id == 2).values(status="sent")
    )
    await session.commit()
    counts = await delivery_counts(session, "notice:7")
    assert counts == {
        OutboxStatus.pending: 2,
        OutboxStatus.sending: 0,
        OutboxStatus.sent: 1,
        OutboxStatus.unreachable: 0,
        OutboxStatus.failed: 0,
    }


def test_a_message_needs_what_its_kind_sends() -> None:
    with pytest.raises(ValueError, match="needs text"):
        OutgoingMessage(chat_id=1)
    with pytest.raises(ValueError, match="needs from_chat_id, message_id"):
        OutgoingMessage(chat_id=1, kind=MessageKind.copy)
    with pytest.raises(ValueError, match="needs file_id"):
        OutgoingMessage(chat_id=1, kind=MessageKind.document, caption="x")


async def test_claims_take_due_rows_by_priority_then_age(session: AsyncSession) -> None:
    later = utcnow() + timedelta(hours=1)
    await enqueue(
        session,
        [
            OutgoingMessage(chat_id=1, text="old"),
            OutgoingMessage(chat_id=2, text="scheduled", not_before=later),
            OutgoingMessage(chat_id=3, text="alert", priority=5),
            OutgoingMessage(chat_id=4, text="new"),
        ],
    )
    await session.commit()
    claimed = await claim_due(session, 10)
    assert [row.payload["text"] for row in claimed] == ["alert", "old", "new"]
    assert {row.status for row in await rows(session)} == {"sending", "pending"}
    assert await claim_due(session, 10) == []
    assert await outstanding(session) == 4

    assert await release_claims(session, [claimed[0].id]) == 1
    assert [row.payload["text"] for row in await claim_due(session, 10)] == ["alert"]
    assert await release_claims(session) == 3
    assert len(await claim_due(session, 2)) == 2


async def test_outcomes_are_recorded(session: AsyncSession) -> None:
    await enqueue(session, [OutgoingMessage(chat_id=n, text=str(n)) for n in range(1, 6)])
    await session.commit()
    one, two, three, four, five = await claim_due(session, 10)
    soon = utcnow() + timedelta(seconds=30)
    await record_outcomes(
        session,
        [
            Sent(one.id, 1, telegram_message_id=77),
            Retry(two.id, 1, soon, "TelegramServerError: Bad Gateway"),
            Deferred(three.id, soon),
            Failed(four.id, 5, "after 5 attempts: Bad Gateway"),
            Unreachable(five.id, 1, 5, None, "TelegramForbiddenError: bot was blocked"),
        ],
    )
    by_chat = {row.chat_id: row for row in await rows(session)}
    assert (by_chat[1].status, by_chat[1].telegram_message_id, by_chat[1].attempts) == (
        "sent",
        77,
        1,
    )
    assert by_chat[1].sent_at is not None
    assert (by_chat[2].status, by_chat[2].attempts) == ("pending", 1)
    assert by_chat[2].last_error == "TelegramServerError: Bad Gateway"
    assert (by_chat[3].status, by_chat[3].attempts, by_chat[3].last_error) == ("pending", 0, None)
    assert (by_chat[4].status, by_chat[4].last_error) == ("failed", "after 5 attempts: Bad Gateway")
    assert by_chat[5].status == "unreachable"
    assert await claim_due(session, 10) == []  # the retried and the deferred wait


async def test_an_unreachable_member_is_flagged_and_the_lead_above_told_once(
    session: AsyncSession,
) -> None:
    tree = await small_tree(session)
    await enqueue(session, [OutgoingMessage(chat_id=201, text=str(n)) for n in range(3)])
    await session.commit()
    claimed = await claim_due(session, 10)
    # Two in one batch, one later: either way the lead above hears once.
    await record_outcomes(
        session, [Unreachable(row.id, 1, 201, None, "blocked") for row in claimed[:2]]
    )
    await record_outcomes(session, [Unreachable(claimed[2].id, 1, 201, None, "blocked")])

    member = await session.get(Member, tree.grid_lead.id)
    assert member is not None
    await session.refresh(member)
    assert (member.reachable, member.unreachable_reason) == (False, "blocked")
    notices = [row for row in await rows(session) if row.status == "pending"]
    assert sorted(row.chat_id for row in notices) == [101, 102]
    text = notices[0].payload["text"]
    assert "张&lt;网格长&gt;" in text and "无法接收" in text and "金桥小区" in text
    assert all(row.priority > 0 for row in notices)


async def test_above_a_zone_the_command_centre_is_told(session: AsyncSession) -> None:
    tree = await small_tree(session)
    await enqueue(session, [OutgoingMessage(chat_id=101, text="x", member_id=tree.zone_lead.id)])
    await session.commit()
    (row,) = await claim_due(session, 1)
    await record_outcomes(
        session,
        [Unreachable(row.id, 1, 101, tree.zone_lead.id, "chat not found")],
        command_centre=[900_001, 101],
    )
    told = [row.chat_id for row in await rows(session) if row.status == "pending"]
    assert told == [900_001]  # never the member itself


async def test_a_migrated_group_takes_its_binding_and_queue_along(session: AsyncSession) -> None:
    session.add(GroupChat(chat_id=-42, title="金桥志愿者"))
    await session.commit()
    await enqueue(session, [OutgoingMessage(chat_id=-42, text=str(n)) for n in range(3)])
    await enqueue(session, [OutgoingMessage(chat_id=-43, text="other group")])
    await session.commit()
    first, *_ = await claim_due(session, 1)
    await record_outcomes(session, [Migrated(first.id, -42, -1_000_000_000_042)])
    chat_ids = set(await session.scalars(select(GroupChat.chat_id)))
    assert chat_ids == {-1_000_000_000_042}
    by_text = {row.payload["text"]: row for row in await rows(session)}
    assert {by_text[str(n)].chat_id for n in range(3)} == {-1_000_000_000_042}
    assert by_text["0"].status == "pending"
    assert by_text["other group"].chat_id == -43


async def test_a_county_wide_notice_is_one_quick_insert(session: AsyncSession) -> None:
    messages = [
        OutgoingMessage(
            chat_id=10_000 + n, text="通知", source="notice:1", dedupe_key=f"notice:1:{n}"
        )
        for n in range(8_202)
    ]
    started = time.perf_counter()
    await enqueue(session, messages)
    await session.commit()
    elapsed = time.perf_counter() - started
    await enqueue(session, messages[:100])  # a retried handler adds nothing
    await session.commit()
    count = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert count == 8_202
    assert elapsed < 10, f"8,202 rows took {elapsed:.1f} s"
