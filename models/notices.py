"""Notices down the tree (上情下达): composed once, fanned out to every holder of the chosen
posts in a subtree (and the group chats bound inside it) through the outbox, acknowledged
with one button, rolled up by grid and building, reminded, then named to the lead above.

Fan-out, reminders and escalations each write their outbox rows in the transaction that
records them, with dedupe keys, so a crash or a second run adds nothing twice. Here: the
tables, drafting, who may send, creating, cancelling and the fan-out; ``models.notice_delivery``
sends the scheduled ones when due, shows them, takes the 收到 and keeps the progress message,
``models.notice_followup`` reminds and escalates, ``models.notice_rollups`` reads them back.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

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
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.access import Scope
from models.audit import record
from models.base import Base, utcnow
from models.messages import Action, ActionKind, NoticeBody
from models.org import LEVELS, Level, Member, Node, Post, under
from models.outbox.table import OutgoingMessage, enqueue
from models.people import GroupChat

logger = logging.getLogger(__name__)


class NoticeKind(StrEnum):
    # HTML written by the author, already escaped.
    text = "text"
    # The author's own message (a photo, a document…), sent on as it is.
    copy = "copy"


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
    # "text" (HTML, already escaped) or "copy" (the author's message, sent on as it is,
    # under the header and its own caption, kept as HTML in ``text``).
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
        # The newest acknowledgement, read by the console's look for changes every few
        # seconds: one index entry, where a month of county-wide notices is ~700k rows.
        Index("ix_notice_recipients_acked_at", "acked_at"),
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
    # A text notice's HTML, or a copied message's caption as HTML.
    text: str | None = None
    # The author's message to copy (a photo, a document…); None: a text notice.
    from_chat_id: int | None = None
    message_id: int | None = None


# How far ahead a notice may be scheduled.
LONGEST_DELAY = timedelta(days=30)


def within_send_window(send_at: datetime, now: datetime | None = None) -> bool:
    """A notice is scheduled for a moment after now and at most ``LONGEST_DELAY`` ahead."""
    moment = now or utcnow()
    return moment < send_at <= moment + LONGEST_DELAY


def source_of(notice_id: int) -> str:
    return f"notice:{notice_id}"


def levels_below(scope_level: str | None) -> list[str]:
    """The levels a notice from ``scope_level`` can reach: its own and those below."""
    start = 0 if scope_level is None else Level(scope_level).depth
    return [level.value for level in LEVELS[start:]]


async def recipients_of(
    session: AsyncSession, scope: Node | None, levels: list[str]
) -> list[tuple[int, int, int, str]]:
    """(member id, telegram id, node id, role) of each holder of a post of ``levels`` in
    the subtree, each member once, by the highest of their posts there."""
    rows = await session.execute(
        select(Member.id, Member.telegram_id, Node.id, Post.role, Node.level)
        .join(Post, Post.holder_id == Member.id)
        .join(Node, Node.id == Post.node_id)
        .where(under(scope), Node.level.in_(levels))
    )
    best: dict[int, tuple[int, int, int, str, int]] = {}
    for member_id, telegram_id, node_id, role, level in rows:
        depth = Level(level).depth
        if member_id not in best or depth < best[member_id][4]:
            best[member_id] = (member_id, telegram_id, node_id, role, depth)
    return [entry[:4] for entry in best.values()]


class NoticeRefused(Exception):
    """The author may not send this notice: the scope is not theirs, or a level lies
    above it."""


async def may_send_to(session: AsyncSession, scope: Scope, scope_node_id: int | None) -> bool:
    """Admins send to the whole county or any node; a lead or officer to a node of its own
    subtrees."""
    if scope_node_id is None:
        return scope.is_admin
    node = await session.get(Node, scope_node_id)
    return node is not None and scope.sees(node)


async def create_notice(session: AsyncSession, draft: NoticeDraft, scope: Scope) -> Notice:
    """Records the notice; when it is due now, fans it out in the same transaction.
    Raises ``NoticeRefused`` for a scope the author does not hold. Commits."""
    if not await may_send_to(session, scope, draft.scope_node_id):
        raise NoticeRefused(draft.scope_node_id)
    scope_node = await session.get(Node, draft.scope_node_id) if draft.scope_node_id else None
    allowed = set(levels_below(scope_node.level if scope_node else None))
    if not draft.levels or not set(draft.levels) <= allowed:
        raise NoticeRefused(draft.scope_node_id)
    # A time that passed while the author confirmed is sent at once by the sweep; only a
    # time beyond the window is refused.
    if draft.send_at is not None and draft.send_at > utcnow() + LONGEST_DELAY:
        raise NoticeRefused(draft.scope_node_id)
    notice = Notice(
        author_telegram_id=draft.author_telegram_id,
        scope_node_id=draft.scope_node_id,
        levels=draft.levels,
        kind=NoticeKind.copy if draft.from_chat_id is not None else NoticeKind.text,
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
        await fan_out(session, notice)
    await session.commit()
    return notice


class Cancellation(StrEnum):
    cancelled = "cancelled"
    unknown = "unknown"
    # Neither the author nor the command centre.
    forbidden = "forbidden"
    already_dispatched = "already_dispatched"
    already_cancelled = "already_cancelled"


async def cancel_notice(
    session: AsyncSession, notice_id: int, telegram_id: int, scope: Scope
) -> Cancellation:
    """The author, or the command centre, withdraws a notice not yet sent. Commits."""
    notice = await session.get(Notice, notice_id)
    if notice is None:
        return Cancellation.unknown
    if notice.author_telegram_id != telegram_id and not scope.is_admin:
        return Cancellation.forbidden
    result = await session.execute(
        update(Notice)
        .where(Notice.id == notice_id, Notice.status == NoticeStatus.scheduled)
        .values(status=NoticeStatus.cancelled),
        execution_options={"synchronize_session": False},
    )
    if not getattr(result, "rowcount", 0):
        await session.rollback()
        status = await session.scalar(select(Notice.status).where(Notice.id == notice_id))
        if status == NoticeStatus.cancelled:
            return Cancellation.already_cancelled
        return Cancellation.already_dispatched
    by = "author" if notice.author_telegram_id == telegram_id else "command_centre"
    record(session, "notice.cancelled", telegram_id, notice_id=notice_id, by=by)
    await session.commit()
    return Cancellation.cancelled


async def bound_groups_in(session: AsyncSession, scope: Node | None) -> list[int]:
    """Chat ids of the group chats bound to a node inside the subtree."""
    rows = await session.scalars(
        select(GroupChat.chat_id).join(Node, Node.id == GroupChat.node_id).where(under(scope))
    )
    return list(rows)


async def fan_out(session: AsyncSession, notice: Notice) -> None:
    scope = await session.get(Node, notice.scope_node_id) if notice.scope_node_id else None
    recipients = [
        recipient
        for recipient in await recipients_of(session, scope, list(notice.levels))
        # The author knows what they wrote; chasing them for it is noise.
        if recipient[1] != notice.author_telegram_id
    ]
    if recipients:
        await session.execute(
            insert(NoticeRecipient),
            [
                {"notice_id": notice.id, "member_id": member_id, "node_id": node_id, "role": role}
                for member_id, _, node_id, role in recipients
            ],
        )
    body = NoticeBody(notice.id)
    source = source_of(notice.id)
    # Members acknowledge; a group only reads.
    actions = (Action(ActionKind.acknowledge_notice, notice.id),) if notice.wants_ack else ()
    messages = [
        OutgoingMessage(
            chat_id=telegram_id,
            member_id=member_id,
            content=body,
            actions=actions,
            dedupe_key=f"{source}:member:{member_id}",
            source=source,
        )
        for member_id, telegram_id, _, _ in recipients
    ]
    messages.extend(
        OutgoingMessage(
            chat_id=chat_id, content=body, dedupe_key=f"{source}:chat:{chat_id}", source=source
        )
        for chat_id in await bound_groups_in(session, scope)
    )
    await enqueue(session, messages)
    # The log's line per notice sent (a person running the county reads it).
    logger.info(
        "notice %d to %s: %d members, %d group chats",
        notice.id,
        scope.path if scope else "the county",
        len(recipients),
        len(messages) - len(recipients),
    )
    notice.status = NoticeStatus.dispatched
    notice.dispatched_at = utcnow()
    record(
        session,
        "notice.dispatched",
        notice.author_telegram_id,
        notice_id=notice.id,
        recipients=len(recipients),
    )
