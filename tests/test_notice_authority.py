"""A scheduled notice outlives no authority: its author's scope is checked again when it
is due, and the author or the command centre may cancel it before it goes."""

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope, scope_of
from models.base import utcnow
from models.groups import BindResult, bind_group
from models.notice_delivery import dispatch_due_notices
from models.notices import (
    Cancellation,
    Notice,
    NoticeDraft,
    NoticeRecipient,
    NoticeStatus,
    cancel_notice,
    create_notice,
)
from models.outbox.table import OutboxMessage
from models.resignation import leave_post
from models.system import AuditEntry
from tests.fixtures import (
    BUILDING,
    GRID,
    UNIT,
    hold_post,
    import_example_county,
    node_at,
    post_id,
)

ADMINS = (900_001,)
GROUP = -5001
LIU, CHEN, STRANGER = 5001, 5002, 6666
UNIT_2 = "县卫健局片区/阳光小区/1号楼/2单元"
OTHER_UNIT = "县卫健局片区/阳光小区/2号楼/1单元"


async def scope(session: AsyncSession, telegram_id: int) -> Scope:
    return await scope_of(session, telegram_id, ADMINS)


async def compound(session: AsyncSession, path: str = GRID) -> None:
    """The example county; 阳光小区's group bound; 1号楼's lead (3002) and officer (3003)."""
    await import_example_county(session)
    admin = await scope(session, ADMINS[0])
    target = await node_at(session, path)
    outcome = await bind_group(session, GROUP, "阳光小区志愿者", target.id, admin, ADMINS[0])
    assert outcome.result is BindResult.bound
    await hold_post(session, 3002, BUILDING)
    await hold_post(session, 3003, BUILDING, "officer")


async def told(session: AsyncSession, chat_id: int, key: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.source == key)
    )
    return int(count or 0)


# --- notices outlive no authority (#4) ---------------------------------------------------


async def schedule(session: AsyncSession, author: int, path: str) -> int:
    node = await node_at(session, path)
    notice = await create_notice(
        session,
        NoticeDraft(
            author_telegram_id=author,
            scope_node_id=node.id,
            levels=["unit"],
            wants_ack=True,
            send_at=utcnow() + timedelta(hours=1),
            text="明天停水",
        ),
        await scope(session, author),
    )
    return notice.id


async def come_due(session: AsyncSession, notice_id: int) -> None:
    await session.execute(
        update(Notice).where(Notice.id == notice_id).values(send_at=utcnow() - timedelta(minutes=1))
    )
    await session.commit()


async def status_of(session: AsyncSession, notice_id: int) -> str | None:
    return await session.scalar(select(Notice.status).where(Notice.id == notice_id))


async def test_a_scheduled_notice_whose_author_left_is_cancelled_at_dispatch(
    session: AsyncSession,
) -> None:
    await compound(session)
    await hold_post(session, 3030, UNIT)
    grid_lead = await hold_post(session, 3001, GRID)
    notice = await schedule(session, 3001, GRID)
    kept = await schedule(session, 3002, BUILDING)
    await leave_post(session, await post_id(session, GRID), grid_lead.id, 3001, ADMINS)
    await come_due(session, notice)
    await come_due(session, kept)

    assert sorted(await dispatch_due_notices(session, ADMINS)) == sorted([notice, kept])
    assert await status_of(session, notice) == NoticeStatus.cancelled
    recipients = await session.scalar(
        select(func.count()).select_from(NoticeRecipient).where(NoticeRecipient.notice_id == notice)
    )
    assert recipients == 0
    assert await told(session, 3030, f"notice:{notice}") == 0
    assert await told(session, 3001, "notice.cancelled_without_scope") == 1
    # The building lead still holds the building: that notice goes.
    assert await status_of(session, kept) == NoticeStatus.dispatched
    assert await told(session, 3030, f"notice:{kept}") == 1
    assert await dispatch_due_notices(session, ADMINS) == []

    # The command centre's own notices go whatever posts it holds.
    county = (
        await create_notice(
            session,
            NoticeDraft(
                ADMINS[0], None, ["unit"], False, utcnow() + timedelta(hours=1), text="全县"
            ),
            await scope(session, ADMINS[0]),
        )
    ).id
    await come_due(session, county)
    assert await dispatch_due_notices(session, ADMINS) == [county]
    assert await status_of(session, county) == NoticeStatus.dispatched


async def test_the_author_or_the_command_centre_cancels_a_notice_not_yet_sent(
    session: AsyncSession,
) -> None:
    await compound(session)
    await hold_post(session, 3030, UNIT)
    notice = await schedule(session, 3002, BUILDING)
    # The building's officer sees the same subtree, but did not write the notice.
    for someone_else in (3003, STRANGER):
        outcome = await cancel_notice(
            session, notice, someone_else, await scope(session, someone_else)
        )
        assert outcome is Cancellation.forbidden
    assert await status_of(session, notice) == NoticeStatus.scheduled
    cancelled = await cancel_notice(session, notice, 3002, await scope(session, 3002))
    assert cancelled is Cancellation.cancelled
    again = await cancel_notice(session, notice, 3002, await scope(session, 3002))
    assert again is Cancellation.already_cancelled
    await come_due(session, notice)
    assert await dispatch_due_notices(session, ADMINS) == []
    assert await told(session, 3030, f"notice:{notice}") == 0

    by_admin = await schedule(session, 3002, BUILDING)
    admin = await scope(session, ADMINS[0])
    assert await cancel_notice(session, by_admin, ADMINS[0], admin) is Cancellation.cancelled
    sent = await schedule(session, 3002, BUILDING)
    await come_due(session, sent)
    await dispatch_due_notices(session, ADMINS)
    too_late = await cancel_notice(session, sent, 3002, await scope(session, 3002))
    assert too_late is Cancellation.already_dispatched
    assert await cancel_notice(session, 10**9, 3002, admin) is Cancellation.unknown
    audit = list(await session.scalars(select(AuditEntry.action)))
    assert audit.count("notice.cancelled") == 2
