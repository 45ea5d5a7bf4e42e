"""The outbox table and its domain functions, without Telegram."""

from collections.abc import Awaitable
from datetime import timedelta

from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import as_utc, utcnow
from models.messages import Action, ActionKind, NoticeBody, PostRef, Text, decode, encode
from models.org import Member
from models.outbox.delivery import (
    ClaimedMessage,
    Deferred,
    Failed,
    Migrated,
    Retry,
    Sent,
    Unreachable,
    claim_due,
    outstanding,
    record_outcomes,
    release_claims,
)
from models.outbox.table import (
    OutboxMessage,
    OutboxStatus,
    OutgoingMessage,
    delivery_counts,
    enqueue,
    purge_settled,
)
from models.people import GroupChat
from tests.fixtures import say, small_tree


def verbatim(message: ClaimedMessage) -> object:
    assert isinstance(message.content, Text)
    return message.content.params["text"]


async def rows(session: AsyncSession) -> list[OutboxMessage]:
    session.expire_all()
    return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_enqueue_joins_the_callers_transaction(session: AsyncSession) -> None:
    await enqueue(session, [say(1, "<b>通知</b>", source="notice:1")])
    await session.rollback()
    assert await rows(session) == []

    await enqueue(
        session,
        [
            OutgoingMessage(
                chat_id=1,
                member_id=None,
                content=Text("notice.reminder", {"id": 1}),
                actions=(Action(ActionKind.acknowledge_notice, 1),),
                source="notice:1",
            ),
            OutgoingMessage(chat_id=-5, content=NoticeBody(1), source="notice:1"),
        ],
    )
    await session.commit()
    text, notice = await rows(session)
    assert (text.chat_id, text.kind, text.status, text.attempts) == (1, "text", "pending", 0)
    # The domain's words only: no Bot API keyboard, no callback string, no rendered text.
    assert text.payload == {
        "key": "notice.reminder",
        "params": {"id": 1},
        "actions": [["acknowledge_notice", 1]],
    }
    assert (notice.kind, notice.payload) == ("notice", {"notice": 1})


def test_a_message_survives_its_round_trip_through_the_row() -> None:
    content = Text("outbox.unreachable", {"name": "张三", "post": PostRef("unit", "lead", "a/b")})
    actions = (Action(ActionKind.approve_claim, 7), Action(ActionKind.decline_claim, 7))
    assert decode(encode(content, actions)) == (content, actions)
    assert decode(encode(NoticeBody(3))) == (NoticeBody(3), ())


async def test_a_dedupe_key_is_enqueued_once(session: AsyncSession) -> None:
    first = say(1, "a", dedupe_key="notice:12:member:345")
    await enqueue(session, [first, first, say(2, "no key")])
    await session.commit()
    await enqueue(
        session,
        [
            say(1, "again", dedupe_key="notice:12:member:345"),
            say(2, "no key"),
        ],
    )
    await session.commit()
    texts = [row.payload["params"]["text"] for row in await rows(session)]
    assert sorted(texts) == ["a", "no key", "no key"]


async def test_delivery_counts_by_status(session: AsyncSession) -> None:
    await enqueue(session, [say(n, "x", source="notice:7") for n in (1, 2, 3)])
    await enqueue(session, [say(9, "x", source="notice:8")])
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


async def test_claims_take_due_rows_by_priority_then_age(session: AsyncSession) -> None:
    later = utcnow() + timedelta(hours=1)
    await enqueue(
        session,
        [
            say(1, "old"),
            say(2, "scheduled", not_before=later),
            say(3, "alert", priority=5),
            say(4, "new"),
        ],
    )
    await session.commit()
    claimed = await claim_due(session, 10)
    assert [verbatim(row) for row in claimed] == ["alert", "old", "new"]
    assert {row.status for row in await rows(session)} == {"sending", "pending"}
    assert await claim_due(session, 10) == []
    assert await outstanding(session) == 4

    assert await release_claims(session, [claimed[0].id]) == 1
    assert [verbatim(row) for row in await claim_due(session, 10)] == ["alert"]
    assert await release_claims(session) == 3
    assert len(await claim_due(session, 2)) == 2


async def test_outcomes_are_recorded(session: AsyncSession) -> None:
    await enqueue(session, [say(n, str(n)) for n in range(1, 6)])
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
    await enqueue(session, [say(201, str(n)) for n in range(3)])
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
    content, _ = decode(notices[0].payload)
    assert content == Text(
        "outbox.unreachable",
        {
            "name": "张<网格长>",
            "post": PostRef("grid", "lead", "县委办片区/金桥小区"),
            "reason": "blocked",
        },
    )
    assert all(row.priority > 0 for row in notices)


async def test_above_a_zone_the_command_centre_is_told(session: AsyncSession) -> None:
    tree = await small_tree(session)
    await enqueue(session, [say(101, "x", member_id=tree.zone_lead.id)])
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
    await enqueue(session, [say(-42, str(n)) for n in range(3)])
    await enqueue(session, [say(-43, "other group")])
    await session.commit()
    first, *_ = await claim_due(session, 1)
    await record_outcomes(session, [Migrated(first.id, -42, -1_000_000_000_042)])
    chat_ids = set(await session.scalars(select(GroupChat.chat_id)))
    assert chat_ids == {-1_000_000_000_042}
    by_text = {row.payload["params"]["text"]: row for row in await rows(session)}
    assert {by_text[str(n)].chat_id for n in range(3)} == {-1_000_000_000_042}
    assert by_text["0"].status == "pending"
    assert by_text["other group"].chat_id == -43


async def test_a_county_wide_notice_is_one_bulk_insert(session: AsyncSession) -> None:
    messages = [
        OutgoingMessage(
            chat_id=10_000 + n, content=NoticeBody(1), source="notice:1", dedupe_key=f"notice:1:{n}"
        )
        for n in range(8_202)
    ]
    inserts = await outbox_inserts(session, enqueue(session, messages))
    await session.commit()
    # One statement for them all; a driver may page it (SQLAlchemy's "insertmanyvalues",
    # 1,000 rows a page), never one round trip per row.
    assert 1 <= inserts <= -(-len(messages) // 1000), f"{inserts} INSERT statements"
    await enqueue(session, messages[:100])  # a retried handler adds nothing
    await session.commit()
    count = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert count == 8_202


async def test_rows_of_different_kinds_and_times_keep_every_column(
    session: AsyncSession,
) -> None:
    later = utcnow() + timedelta(minutes=5)
    messages = [
        say(-1_001_234_567_890, "group", priority=3, source="alert:1"),
        OutgoingMessage(chat_id=7, content=NoticeBody(4), member_id=None, source="notice:4"),
        say(8, "held", dedupe_key="held:8", not_before=later),
        say(9, '引号 " and \\ and \n', priority=3, source="alert:1"),
    ]
    await enqueue(session, messages)
    await session.commit()
    group, notice, held, quoted = await rows(session)
    assert (group.chat_id, group.priority, group.source, group.kind) == (
        -1_001_234_567_890,
        3,
        "alert:1",
        "text",
    )
    assert (notice.kind, notice.payload, notice.member_id) == ("notice", {"notice": 4}, None)
    assert (held.dedupe_key, as_utc(held.next_attempt_at)) == ("held:8", later)
    assert as_utc(group.next_attempt_at) <= as_utc(held.next_attempt_at)
    assert quoted.payload["params"]["text"] == '引号 " and \\ and \n'
    assert {row.status for row in (group, notice, held, quoted)} == {"pending"}


async def test_settled_messages_are_purged_after_their_retention(session: AsyncSession) -> None:
    await enqueue(session, [say(n, str(n)) for n in (1, 2, 3)])
    await session.commit()
    old = utcnow() - timedelta(days=31)
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.chat_id.in_((1, 2))).values(created_at=old)
    )
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.chat_id == 1).values(status="sent")
    )
    await session.commit()
    assert await purge_settled(session, timedelta(days=30)) == 1
    # An old message not yet delivered is kept: only settled ones go.
    assert sorted(row.chat_id for row in await rows(session)) == [2, 3]


async def outbox_inserts(session: AsyncSession, work: Awaitable[object]) -> int:
    """How many INSERT statements into the outbox ``work`` sends to the database."""
    inserts = 0

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        nonlocal inserts
        inserts += statement.lstrip().upper().startswith("INSERT INTO OUTBOX")

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        await work
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return inserts
