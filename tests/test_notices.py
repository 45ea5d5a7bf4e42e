"""Notices in the domain: scheduling, fan-out once, reminders, then the lead above."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from models.access import Scope, scope_of
from models.base import utcnow
from models.messages import Text, TextList, decode
from models.notice_delivery import acknowledge, dispatch_due_notices
from models.notices import (
    Notice,
    NoticeDraft,
    NoticeRecipient,
    NoticeRefused,
    NoticeStatus,
    create_notice,
)
from models.org import Member, Role
from models.outbox.table import OutboxMessage
from models.posts import bind, node_by_path, post_at
from models.roster import RosterSource, import_roster
from scheduler.notice_jobs import remind_and_escalate

ROSTER = (
    "community,zone,grid,building,unit,room\n"
    "东关社区,片区01,幸福小区,1号楼,1单元,101\n"
    "东关社区,片区01,幸福小区,1号楼,2单元,101\n"
).encode()
ADMIN = 1
COUNTY_WIDE = Scope(is_admin=True, roots=frozenset())


async def seat(session: AsyncSession, path: str, role: Role, telegram_id: int, name: str) -> None:
    member = Member(telegram_id=telegram_id, name=name)
    session.add(member)
    await session.flush()
    node = await node_by_path(session, path)
    assert node is not None
    post = await post_at(session, node.id, role)
    assert post is not None
    await bind(session, post, member, None, how="test")


async def county(session: AsyncSession) -> None:
    await import_roster(session, [RosterSource("households.csv", ROSTER)])
    await seat(session, "片区01/幸福小区", Role.lead, 10, "网格长")
    await seat(session, "片区01/幸福小区/1号楼", Role.lead, 20, "楼栋长")
    await seat(session, "片区01/幸福小区/1号楼/1单元", Role.lead, 30, "单元长甲")
    await seat(session, "片区01/幸福小区/1号楼/2单元", Role.officer, 31, "信息员乙")
    await session.commit()


def named(payload: dict[str, object]) -> list[object]:
    """The names an escalation lists, each a line the renderer words in the reader's
    language."""
    content, _ = decode(payload)
    assert isinstance(content, Text)
    names = content.params["names"]
    assert isinstance(names, TextList)
    return [line.params["name"] for line in names.texts]


async def outbox_rows(session: AsyncSession, source: str) -> list[OutboxMessage]:
    return list(
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.source == source).order_by(OutboxMessage.id)
        )
    )


async def test_a_scheduled_notice_fans_out_once_when_due(session: AsyncSession) -> None:
    await county(session)
    notice = await create_notice(
        session,
        NoticeDraft(
            author_telegram_id=ADMIN,
            scope_node_id=None,
            levels=["building", "unit"],
            wants_ack=True,
            send_at=utcnow() + timedelta(hours=1),
            text="明天停水",
        ),
        COUNTY_WIDE,
    )
    assert notice.status == NoticeStatus.scheduled
    assert await dispatch_due_notices(session, (ADMIN,)) == []
    assert await outbox_rows(session, f"notice:{notice.id}") == []

    # Downtime past the due time: the sweep catches it up once.
    await session.execute(
        update(Notice).values(send_at=utcnow() - timedelta(minutes=5)).where(Notice.id == notice.id)
    )
    await session.commit()
    assert await dispatch_due_notices(session, (ADMIN,)) == [notice.id]
    assert await dispatch_due_notices(session, (ADMIN,)) == []
    rows = await outbox_rows(session, f"notice:{notice.id}")
    assert sorted(row.chat_id for row in rows) == [20, 30, 31]  # not the grid lead
    # The rows name the notice and the action, never its text or a keyboard.
    ack = [["acknowledge_notice", notice.id]]
    assert all(row.payload == {"notice": notice.id, "actions": ack} for row in rows)


async def test_unacknowledged_are_reminded_then_named_to_the_lead_above(
    session: AsyncSession, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await county(session)
    notice = await create_notice(
        session,
        NoticeDraft(
            author_telegram_id=ADMIN,
            scope_node_id=None,
            levels=["grid", "building", "unit"],
            wants_ack=True,
            send_at=None,
            text="请核对名单",
        ),
        COUNTY_WIDE,
    )
    assert await acknowledge(session, notice.id, 10) is True
    assert await acknowledge(session, notice.id, 10) is False
    assert await acknowledge(session, notice.id, 999) is None

    config = Config()
    config.admins.telegram_ids = [ADMIN]
    await remind_and_escalate(session_factory, config)  # too early: nothing
    assert await outbox_rows(session, f"notice:{notice.id}:remind") == []

    await session.execute(update(Notice).values(dispatched_at=utcnow() - timedelta(hours=2)))
    await session.commit()
    await remind_and_escalate(session_factory, config)
    await remind_and_escalate(session_factory, config)
    reminders = await outbox_rows(session, f"notice:{notice.id}:remind")
    assert sorted(row.chat_id for row in reminders) == [20, 30, 31]
    assert all(row.payload["params"] == {"id": notice.id} for row in reminders)

    await session.execute(update(Notice).values(reminded_at=utcnow() - timedelta(hours=2)))
    await session.commit()
    await remind_and_escalate(session_factory, config)
    await remind_and_escalate(session_factory, config)
    escalations = {
        row.chat_id: named(row.payload)
        for row in await outbox_rows(session, f"notice:{notice.id}:escalate")
    }
    # The building lead answers to the grid lead; the unit posts to the building lead.
    assert set(escalations) == {10, 20}
    assert escalations[10] == ["楼栋长"]
    assert escalations[20] == ["单元长甲", "信息员乙"]
    acked = await session.scalar(
        select(func.count()).where(
            NoticeRecipient.notice_id == notice.id, NoticeRecipient.acked_at.is_not(None)
        )
    )
    assert acked == 1


async def test_a_notice_goes_only_to_a_scope_its_author_holds(session: AsyncSession) -> None:
    await county(session)
    building = await node_by_path(session, "片区01/幸福小区/1号楼")
    grid = await node_by_path(session, "片区01/幸福小区")
    assert building is not None and grid is not None
    building_lead = await scope_of(session, 20, [ADMIN])

    def draft(scope_node_id: int | None, levels: list[str]) -> NoticeDraft:
        return NoticeDraft(
            author_telegram_id=20,
            scope_node_id=scope_node_id,
            levels=levels,
            wants_ack=False,
            send_at=None,
            text="通知",
        )

    for scope_node_id, levels in ((grid.id, ["unit"]), (None, ["unit"]), (building.id, ["grid"])):
        with pytest.raises(NoticeRefused):
            await create_notice(session, draft(scope_node_id, levels), building_lead)
    notice = await create_notice(session, draft(building.id, ["unit"]), building_lead)
    assert sorted(row.chat_id for row in await outbox_rows(session, f"notice:{notice.id}")) == [
        30,
        31,
    ]
