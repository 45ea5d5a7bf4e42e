"""Recipients the channel cannot reach, and groups whose address changed."""

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.messages import PostRef, Text
from models.org import Member, Node, Post
from models.outbox.table import OutboxMessage, OutboxStatus, OutgoingMessage, clip, enqueue
from models.people import GroupChat
from models.posts import superiors_of


async def migrate_chat(session: AsyncSession, old_chat_id: int, new_chat_id: int) -> None:
    """A group became a supergroup: its binding and its queued messages follow the new id."""
    bound = select(GroupChat.chat_id).where(GroupChat.chat_id == old_chat_id)
    taken = select(GroupChat.chat_id).where(GroupChat.chat_id == new_chat_id)
    if await session.scalar(bound) is not None:
        if await session.scalar(taken) is None:
            await session.execute(
                update(GroupChat)
                .where(GroupChat.chat_id == old_chat_id)
                .values(chat_id=new_chat_id),
                execution_options={"synchronize_session": False},
            )
        else:  # the supergroup was bound on its own meanwhile: keep that binding
            await session.execute(
                delete(GroupChat).where(GroupChat.chat_id == old_chat_id),
                execution_options={"synchronize_session": False},
            )
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.chat_id == old_chat_id,
            OutboxMessage.status.in_((OutboxStatus.pending, OutboxStatus.sending)),
        )
        .values(chat_id=new_chat_id),
        execution_options={"synchronize_session": False},
    )


async def mark_unreachable(
    session: AsyncSession, member: Member, reason: str, command_centre: Sequence[int] = ()
) -> None:
    """Flag ``member`` and, when this is news, tell whoever stands above each of its posts
    (the command centre above a zone), so that nobody silently drops out. No commit."""
    if not member.reachable:
        return
    member.reachable = False
    member.unreachable_reason = clip(reason, 200)
    posts = (
        await session.execute(
            select(Post.node_id, Post.role, Node.level, Node.path, Node.parent_id)
            .join(Node, Node.id == Post.node_id)
            .where(Post.holder_id == member.id)
            .order_by(Node.path, Post.role)
        )
    ).all()
    told: set[int] = set()
    messages: list[OutgoingMessage] = []
    day = utcnow().date().isoformat()
    for node_id, role, level, path, parent_id in posts:
        superiors = [] if parent_id is None else await superiors_of(session, node_id)
        recipients = [(s.telegram_id, s.member_id) for s in superiors] or [
            (address, None) for address in command_centre
        ]
        content = Text(
            "outbox.unreachable",
            {
                "name": member.name,
                "post": PostRef(level, role, path),
                "reason": clip(reason, 200) or "",
            },
        )
        for chat_id, member_id in recipients:
            if chat_id in told or chat_id == member.telegram_id:
                continue
            told.add(chat_id)
            messages.append(
                OutgoingMessage(
                    chat_id=chat_id,
                    member_id=member_id,
                    content=content,
                    # Per day: a member who comes back and drops out again is news again.
                    dedupe_key=f"unreachable:{member.id}:{chat_id}:{day}",
                    source=f"unreachable:{member.id}",
                    priority=1,
                )
            )
    await enqueue(session, messages)


async def member_for(session: AsyncSession, member_id: int | None, chat_id: int) -> Member | None:
    if member_id is not None:
        return await session.get(Member, member_id)
    if chat_id > 0:
        return await session.scalar(select(Member).where(Member.telegram_id == chat_id))
    return None
