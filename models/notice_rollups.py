"""Reading a notice's acknowledgements back: rolled up by grid and building, the missing
named, the recent notices listed — each inside the reader's scope."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.notices import Notice, NoticeRecipient
from models.org import Level, Member, Node, under


@dataclass(frozen=True)
class Rollup:
    label: str
    recipients: int
    acked: int


async def rollup(
    session: AsyncSession, notice_id: int, level: Level, within: Node | None
) -> list[Rollup]:
    """Acknowledgements per node of ``level`` (grid or building), for recipients at or below
    it, inside ``within`` (None: all)."""
    column = getattr(Node, level.ancestor_column)
    parent = Node.__table__.alias("rolled")
    rows = await session.execute(
        select(parent.c.path, func.count(NoticeRecipient.id), func.count(NoticeRecipient.acked_at))
        .select_from(NoticeRecipient)
        .join(Node, Node.id == NoticeRecipient.node_id)
        .join(parent, parent.c.id == column)
        .where(NoticeRecipient.notice_id == notice_id, under(within))
        .group_by(parent.c.path)
        .order_by(parent.c.path)
    )
    return [Rollup(path, total, acked) for path, total, acked in rows]


async def totals(session: AsyncSession, notice_id: int, within: Node | None) -> Rollup:
    row = (
        await session.execute(
            select(func.count(NoticeRecipient.id), func.count(NoticeRecipient.acked_at))
            .join(Node, Node.id == NoticeRecipient.node_id)
            .where(NoticeRecipient.notice_id == notice_id, under(within))
        )
    ).one()
    return Rollup("", int(row[0]), int(row[1]))


async def missing(
    session: AsyncSession, notice_id: int, within: Node | None, limit: int = 50
) -> list[tuple[str, str, str, str]]:
    """(name, node path, role, phone) of recipients who have not acknowledged, inside
    ``within``: the reader is their superior and may call them."""
    rows = await session.execute(
        select(Member.name, Node.path, NoticeRecipient.role, Member.phone)
        .select_from(NoticeRecipient)
        .join(Member, Member.id == NoticeRecipient.member_id)
        .join(Node, Node.id == NoticeRecipient.node_id)
        .where(
            NoticeRecipient.notice_id == notice_id,
            NoticeRecipient.acked_at.is_(None),
            under(within),
        )
        .order_by(Node.path)
        .limit(limit)
    )
    return [(name, path, role, phone or "") for name, path, role, phone in rows]


async def reading_roots(session: AsyncSession, scope: Scope) -> list[Node | None]:
    """The subtrees in which the reader may see a notice's acknowledgements: the county
    (None) for admins, else each subtree the member holds a post at."""
    if scope.is_admin:
        return [None]
    roots = [await session.get(Node, node_id) for node_id, _ in sorted(scope.roots)]
    return [root for root in roots if root is not None]


async def recent_notices_for(
    session: AsyncSession, scope: Scope, telegram_id: int, limit: int = 10
) -> list[tuple[Notice, int, int]]:
    """The notices a reader may list: all of them for admins, else their own."""
    return await recent_notices(session, None if scope.is_admin else telegram_id, limit)


async def recent_notices(
    session: AsyncSession, author_telegram_id: int | None, limit: int = 10
) -> list[tuple[Notice, int, int]]:
    """Recent notices (by the author, or all for None) with recipients and acknowledgements."""
    query = (
        select(
            Notice,
            func.count(NoticeRecipient.id),
            func.count(NoticeRecipient.acked_at),
        )
        .outerjoin(NoticeRecipient, NoticeRecipient.notice_id == Notice.id)
        .group_by(Notice.id)
        .order_by(Notice.id.desc())
        .limit(limit)
    )
    if author_telegram_id is not None:
        query = query.where(Notice.author_telegram_id == author_telegram_id)
    return [(notice, total, acked) for notice, total, acked in await session.execute(query)]


@dataclass(frozen=True)
class ReceivedNotice:
    notice: Notice
    acked_at: datetime | None


async def received_notices(
    session: AsyncSession, telegram_id: int, limit: int = 10
) -> list[ReceivedNotice]:
    """The notices the member received, newest first, with when they acknowledged each."""
    rows = await session.execute(
        select(Notice, NoticeRecipient.acked_at)
        .join(NoticeRecipient, NoticeRecipient.notice_id == Notice.id)
        .join(Member, Member.id == NoticeRecipient.member_id)
        .where(Member.telegram_id == telegram_id)
        .order_by(Notice.id.desc())
        .limit(limit)
    )
    return [ReceivedNotice(notice, acked_at) for notice, acked_at in rows]
