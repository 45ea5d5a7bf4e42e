"""A notice on its way and back: the scheduled ones sent when their time comes (or cancelled
when their author no longer holds the scope), what a delivery adapter shows, the 收到 pressed,
and the author's progress message."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import scope_of
from models.audit import record
from models.base import utcnow
from models.messages import PostRef
from models.notices import (
    Notice,
    NoticeKind,
    NoticeRecipient,
    NoticeStatus,
    fan_out,
    may_send_to,
    source_of,
)
from models.notify import tell
from models.org import Member, Node, Post
from models.posts import Recipient


@dataclass(frozen=True)
class NoticeContent:
    """What a delivery adapter needs to show a notice."""

    notice_id: int
    kind: NoticeKind
    text: str | None
    from_chat_id: int | None
    message_id: int | None
    # The post the author sent it from; None: the command centre.
    author_post: PostRef | None = None
    dispatched_at: datetime | None = None


async def dispatch_due_notices(
    session: AsyncSession, command_centre_ids: Sequence[int]
) -> list[int]:
    """Fans out every scheduled notice whose time has come (missed ones after downtime
    too), each in its own transaction; the author's authority is checked again first, so a
    notice whose author no longer holds its scope (left the post, revoked) is cancelled
    instead and the author told. Returns the ids of the notices settled either way."""
    due = list(
        await session.scalars(
            select(Notice.id).where(
                Notice.status == NoticeStatus.scheduled, Notice.send_at <= utcnow()
            )
        )
    )
    settled: list[int] = []
    for notice_id in due:
        notice = await session.get(Notice, notice_id, with_for_update=True)
        if notice is None or notice.status != NoticeStatus.scheduled:
            continue
        author = await scope_of(session, notice.author_telegram_id, tuple(command_centre_ids))
        allowed = await may_send_to(session, author, notice.scope_node_id)
        # Settled by a conditional update, so that a Cancel pressed meanwhile stands even on
        # SQLite, where the lock above does nothing.
        claimed = await session.execute(
            update(Notice)
            .where(Notice.id == notice_id, Notice.status == NoticeStatus.scheduled)
            .values(status=NoticeStatus.dispatched if allowed else NoticeStatus.cancelled),
            execution_options={"synchronize_session": False},
        )
        if not getattr(claimed, "rowcount", 0):
            await session.rollback()
            continue
        if allowed:
            await fan_out(session, notice)
        else:
            record(
                session,
                "notice.cancelled",
                None,
                notice_id=notice_id,
                reason="author_without_scope",
            )
            await tell(
                session,
                [await _author(session, notice.author_telegram_id)],
                "notice.cancelled_without_scope",
                {"id": notice_id},
                dedupe=f"{source_of(notice_id)}:cancelled",
            )
        await session.commit()
        settled.append(notice_id)
    return settled


async def _author(session: AsyncSession, telegram_id: int) -> Recipient:
    member_id = await session.scalar(select(Member.id).where(Member.telegram_id == telegram_id))
    return Recipient(telegram_id, member_id)


async def notice_contents(session: AsyncSession, notice_ids: set[int]) -> dict[int, NoticeContent]:
    """What each notice shows, with its header's facts: the author's post, its number and
    when it went out."""
    notices = list(await session.scalars(select(Notice).where(Notice.id.in_(notice_ids))))
    scopes = {
        node.id: node.path
        for node in await session.scalars(
            select(Node).where(Node.id.in_({n.scope_node_id for n in notices if n.scope_node_id}))
        )
    }
    contents: dict[int, NoticeContent] = {}
    for notice in notices:
        scope_path = scopes.get(notice.scope_node_id) if notice.scope_node_id else None
        contents[notice.id] = NoticeContent(
            notice.id,
            NoticeKind(notice.kind),
            notice.text,
            notice.from_chat_id,
            notice.message_id,
            author_post=await _author_post(session, notice.author_telegram_id, scope_path),
            dispatched_at=notice.dispatched_at or notice.send_at,
        )
    return contents


async def _author_post(
    session: AsyncSession, telegram_id: int, scope_path: str | None
) -> PostRef | None:
    """The author's post at the notice's scope or above it; None (the command centre) for a
    county-wide notice or an author who holds none there."""
    if scope_path is None:
        return None
    rows = await session.execute(
        select(Node.level, Post.role, Node.path)
        .join(Post, Post.node_id == Node.id)
        .join(Member, Member.id == Post.holder_id)
        .where(Member.telegram_id == telegram_id)
    )
    covering = [
        PostRef(level, role, path)
        for level, role, path in rows
        if scope_path == path or scope_path.startswith(path + "/")
    ]
    if not covering:
        return None
    return max(covering, key=lambda post: len(post.path))


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


async def acknowledged_at(
    session: AsyncSession, notice_id: int, telegram_id: int
) -> datetime | None:
    """When the member acknowledged the notice; None if they have not (or never got it)."""
    return await session.scalar(
        select(NoticeRecipient.acked_at)
        .join(Member, Member.id == NoticeRecipient.member_id)
        .where(NoticeRecipient.notice_id == notice_id, Member.telegram_id == telegram_id)
    )


async def set_progress_message(
    session: AsyncSession, notice_id: int, chat_id: int, message_id: int
) -> None:
    await session.execute(
        update(Notice)
        .where(Notice.id == notice_id)
        .values(progress_chat_id=chat_id, progress_message_id=message_id)
    )
    await session.commit()


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
