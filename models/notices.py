"""Notices down the tree (上情下达): composed once, fanned out to every holder of the chosen
posts in a subtree (and the group chats bound inside it) through the outbox, acknowledged
with one button, rolled up by grid and building, reminded, then named to the lead above.

Fan-out, reminders and escalations each write their outbox rows in the transaction that
records them, with dedupe keys, so a crash or a second run adds nothing twice.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.audit import record
from models.base import Base, utcnow
from models.org import LEVELS, Level, Member, Node, Post
from models.outbox import MessageKind, OutgoingMessage, enqueue
from models.people import GroupChat


class NoticeStatus(StrEnum):
    scheduled = "scheduled"
    dispatched = "dispatched"
    cancelled = "cancelled"


class Notice(Base):
    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_status_send_at", "status", "send_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_telegram_id: Mapped[int] = mapped_column(BigInteger)
    # None: the whole county (admins only).
    scope_node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"))
    # Levels whose posts receive it; both the lead and the officer of each node do.
    levels: Mapped[list[str]] = mapped_column(JSON)
    # "text" (HTML, already escaped) or "copy" (the author's message, sent on as it is).
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    from_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    wants_ack: Mapped[bool] = mapped_column(Boolean, default=True)
    send_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.scheduled)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column()
    # The author's message that shows delivery progress, edited as it goes.
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_final: Mapped[bool] = mapped_column(Boolean, default=False)
    reminded_at: Mapped[datetime | None] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()


class NoticeRecipient(Base):
    __tablename__ = "notice_recipients"
    __table_args__ = (
        UniqueConstraint("notice_id", "member_id", name="uq_notice_recipients_notice_member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # The post it came by (the highest one if the member holds several in the scope).
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    acked_at: Mapped[datetime | None] = mapped_column()


@dataclass(frozen=True)
class NoticeDraft:
    author_telegram_id: int
    scope_node_id: int | None
    levels: list[str]
    wants_ack: bool
    send_at: datetime | None
    text: str | None = None
    from_chat_id: int | None = None
    message_id: int | None = None


def source_of(notice_id: int) -> str:
    return f"notice:{notice_id}"


def levels_below(scope_level: str | None) -> list[str]:
    """The levels a notice from ``scope_level`` can reach: its own and those below."""
    start = 0 if scope_level is None else Level(scope_level).depth
    return [level.value for level in LEVELS[start:]]


def _subtree(scope: Node | None) -> Any:
    if scope is None:
        return True
    return getattr(Node, Level(scope.level).ancestor_column) == scope.id


async def recipients_of(
    session: AsyncSession, scope: Node | None, levels: list[str]
) -> list[tuple[int, int, int, str]]:
    """(member id, telegram id, node id, role) of each holder of a post of ``levels`` in
    the subtree, each member once, by the highest of their posts there."""
    rows = await session.execute(
        select(Member.id, Member.telegram_id, Node.id, Post.role, Node.level)
        .join(Post, Post.holder_id == Member.id)
        .join(Node, Node.id == Post.node_id)
        .where(_subtree(scope), Node.level.in_(levels))
    )
    best: dict[int, tuple[int, int, int, str, int]] = {}
    for member_id, telegram_id, node_id, role, level in rows:
        depth = Level(level).depth
        if member_id not in best or depth < best[member_id][4]:
            best[member_id] = (member_id, telegram_id, node_id, role, depth)
    return [entry[:4] for entry in best.values()]


async def create_notice(session: AsyncSession, draft: NoticeDraft) -> Notice:
    """Records the notice; when it is due now, fans it out in the same transaction.
    Commits."""
    notice = Notice(
        author_telegram_id=draft.author_telegram_id,
        scope_node_id=draft.scope_node_id,
        levels=draft.levels,
        kind=MessageKind.text.value if draft.text is not None else MessageKind.copy.value,
        text=draft.text,
        from_chat_id=draft.from_chat_id,
        message_id=draft.message_id,
        wants_ack=draft.wants_ack,
        send_at=draft.send_at or utcnow(),
        status=NoticeStatus.scheduled,
    )
    session.add(notice)
    await session.flush()
    record(session, "notice.created", draft.author_telegram_id, notice_id=notice.id)
    if draft.send_at is None:
        await _fan_out(session, notice)
    await session.commit()
    return notice


async def dispatch_due_notices(session: AsyncSession) -> list[int]:
    """Fans out every scheduled notice whose time has come (missed ones after downtime
    too), each in its own transaction. Returns their ids."""
    due = list(
        await session.scalars(
            select(Notice.id).where(
                Notice.status == NoticeStatus.scheduled, Notice.send_at <= utcnow()
            )
        )
    )
    for notice_id in due:
        notice = await session.get(Notice, notice_id, with_for_update=True)
        if notice is not None and notice.status == NoticeStatus.scheduled:
            await _fan_out(session, notice)
            await session.commit()
    return due


async def bound_groups_in(session: AsyncSession, scope: Node | None) -> list[int]:
    """Chat ids of the group chats bound to a node inside the subtree."""
    rows = await session.scalars(
        select(GroupChat.chat_id).join(Node, Node.id == GroupChat.node_id).where(_subtree(scope))
    )
    return list(rows)


def ack_markup(notice_id: int, label: str) -> dict[str, Any]:
    return {"inline_keyboard": [[{"text": label, "callback_data": f"ack:{notice_id}"}]]}


async def _fan_out(session: AsyncSession, notice: Notice) -> None:
    scope = await session.get(Node, notice.scope_node_id) if notice.scope_node_id else None
    recipients = await recipients_of(session, scope, list(notice.levels))
    if recipients:
        await session.execute(
            insert(NoticeRecipient),
            [
                {"notice_id": notice.id, "member_id": member_id, "node_id": node_id, "role": role}
                for member_id, _, node_id, role in recipients
            ],
        )
    # The button's label is in the reader's language at delivery; here it is bilingual,
    # because one outbox row serves whoever reads it.
    markup = ack_markup(notice.id, "收到 / Received") if notice.wants_ack else None
    messages = [
        _message(notice, telegram_id, f"member:{member_id}", markup, member_id)
        for member_id, telegram_id, _, _ in recipients
    ]
    groups = await session.scalars(
        select(GroupChat.chat_id).join(Node, Node.id == GroupChat.node_id).where(_subtree(scope))
    )
    messages.extend(_message(notice, chat_id, f"chat:{chat_id}", None, None) for chat_id in groups)
    await enqueue(session, messages)
    notice.status = NoticeStatus.dispatched
    notice.dispatched_at = utcnow()
    record(
        session,
        "notice.dispatched",
        notice.author_telegram_id,
        notice_id=notice.id,
        recipients=len(recipients),
    )


def _message(
    notice: Notice,
    chat_id: int,
    key: str,
    markup: dict[str, Any] | None,
    member_id: int | None,
) -> OutgoingMessage:
    common: dict[str, Any] = {
        "chat_id": chat_id,
        "member_id": member_id,
        "reply_markup": markup,
        "dedupe_key": f"{source_of(notice.id)}:{key}",
        "source": source_of(notice.id),
    }
    if notice.kind == MessageKind.copy:
        return OutgoingMessage(
            kind=MessageKind.copy,
            from_chat_id=notice.from_chat_id,
            message_id=notice.message_id,
            **common,
        )
    return OutgoingMessage(text=notice.text, **common)


async def acknowledge(session: AsyncSession, notice_id: int, telegram_id: int) -> bool | None:
    """Marks the member's receipt. None: not a recipient; False: already acknowledged.
    Commits."""
    member_id = await session.scalar(select(Member.id).where(Member.telegram_id == telegram_id))
    if member_id is None:
        return None
    recipient = await session.scalar(
        select(NoticeRecipient).where(
            NoticeRecipient.notice_id == notice_id, NoticeRecipient.member_id == member_id
        )
    )
    if recipient is None:
        return None
    if recipient.acked_at is not None:
        return False
    recipient.acked_at = utcnow()
    await session.commit()
    return True


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
        .where(NoticeRecipient.notice_id == notice_id, _subtree(within))
        .group_by(parent.c.path)
        .order_by(parent.c.path)
    )
    return [Rollup(path, total, acked) for path, total, acked in rows]


async def totals(session: AsyncSession, notice_id: int, within: Node | None) -> Rollup:
    row = (
        await session.execute(
            select(func.count(NoticeRecipient.id), func.count(NoticeRecipient.acked_at))
            .join(Node, Node.id == NoticeRecipient.node_id)
            .where(NoticeRecipient.notice_id == notice_id, _subtree(within))
        )
    ).one()
    return Rollup("", int(row[0]), int(row[1]))


async def missing(
    session: AsyncSession, notice_id: int, within: Node | None, limit: int = 50
) -> list[tuple[str, str, str]]:
    """(name, node path, role) of recipients who have not acknowledged, inside ``within``."""
    rows = await session.execute(
        select(Member.name, Node.path, NoticeRecipient.role)
        .select_from(NoticeRecipient)
        .join(Member, Member.id == NoticeRecipient.member_id)
        .join(Node, Node.id == NoticeRecipient.node_id)
        .where(
            NoticeRecipient.notice_id == notice_id,
            NoticeRecipient.acked_at.is_(None),
            _subtree(within),
        )
        .order_by(Node.path)
        .limit(limit)
    )
    return [(name, path, role) for name, path, role in rows]


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


async def set_progress_message(
    session: AsyncSession, notice_id: int, chat_id: int, message_id: int
) -> None:
    await session.execute(
        update(Notice)
        .where(Notice.id == notice_id)
        .values(progress_chat_id=chat_id, progress_message_id=message_id)
    )
    await session.commit()


@dataclass(frozen=True)
class Straggler:
    """A recipient who has not acknowledged yet."""

    member_id: int
    telegram_id: int
    locale: str | None
    name: str
    node_id: int
    path: str
    role: str
    level: str
    parent_id: int | None


async def notices_to_remind(session: AsyncSession, after: timedelta) -> list[Notice]:
    return list(
        await session.scalars(
            select(Notice).where(
                Notice.status == NoticeStatus.dispatched,
                Notice.wants_ack.is_(True),
                Notice.reminded_at.is_(None),
                Notice.dispatched_at <= utcnow() - after,
            )
        )
    )


async def notices_to_escalate(session: AsyncSession, after: timedelta) -> list[Notice]:
    return list(
        await session.scalars(
            select(Notice).where(
                Notice.status == NoticeStatus.dispatched,
                Notice.wants_ack.is_(True),
                Notice.escalated_at.is_(None),
                Notice.reminded_at <= utcnow() - after,
            )
        )
    )


async def stragglers(session: AsyncSession, notice_id: int) -> list[Straggler]:
    rows = await session.execute(
        select(
            Member.id,
            Member.telegram_id,
            Member.locale,
            Member.name,
            Node.id,
            Node.path,
            NoticeRecipient.role,
            Node.level,
            Node.parent_id,
        )
        .select_from(NoticeRecipient)
        .join(Member, Member.id == NoticeRecipient.member_id)
        .join(Node, Node.id == NoticeRecipient.node_id)
        .where(NoticeRecipient.notice_id == notice_id, NoticeRecipient.acked_at.is_(None))
        .order_by(Node.path)
    )
    return [Straggler(*row) for row in rows]


async def holders_at(
    session: AsyncSession, node_ids: set[int]
) -> dict[int, list[tuple[int, str | None]]]:
    """(telegram id, locale) of the lead and officer of each node."""
    found: dict[int, list[tuple[int, str | None]]] = {node_id: [] for node_id in node_ids}
    if not node_ids:
        return found
    rows = await session.execute(
        select(Post.node_id, Member.telegram_id, Member.locale)
        .join(Member, Member.id == Post.holder_id)
        .where(Post.node_id.in_(node_ids))
        .order_by(Post.role)
    )
    for node_id, telegram_id, locale in rows:
        found[node_id].append((telegram_id, locale))
    return found


async def dispatched_with_open_progress(session: AsyncSession) -> list[Notice]:
    return list(
        await session.scalars(
            select(Notice).where(
                Notice.status == NoticeStatus.dispatched,
                Notice.progress_message_id.is_not(None),
                Notice.progress_final.is_(False),
            )
        )
    )
