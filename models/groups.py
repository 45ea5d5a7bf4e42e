"""Volunteers' group chats: which groups the bot is in, and the node each is bound to.

A bound group sees counts and statuses of its node's subtree only, never a person's data.
"""

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.audit import record
from models.base import utcnow
from models.org import Member, Node, Post, under
from models.people import GroupChat


@dataclass(frozen=True)
class NodeView:
    node_id: int
    level: str
    name: str
    path: str


@dataclass(frozen=True)
class Binding:
    """A group's node and how many posts under it are vacant."""

    chat_id: int
    node: NodeView
    vacant_posts: int


class BindResult(StrEnum):
    bound = "bound"
    unknown_node = "unknown_node"
    forbidden = "forbidden"
    already_bound = "already_bound"


@dataclass(frozen=True)
class BindOutcome:
    result: BindResult
    binding: Binding | None = None


class UnbindResult(StrEnum):
    unbound = "unbound"
    not_bound = "not_bound"
    forbidden = "forbidden"


def node_view(node: Node) -> NodeView:
    return NodeView(node.id, node.level, node.name, node.path)


async def vacant_count(session: AsyncSession, node: Node) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Post)
        .join(Node, Node.id == Post.node_id)
        .where(under(node), Post.holder_id.is_(None))
    )
    return int(count or 0)


async def record_group(session: AsyncSession, chat_id: int, title: str) -> None:
    """The bot was added to a group: remember it, unbound. Commits."""
    group = await session.get(GroupChat, chat_id)
    if group is None:
        session.add(GroupChat(chat_id=chat_id, title=title))
    else:
        group.title = title
        group.node_id = group.bound_by = group.bound_at = None
    await session.commit()


async def forget_group(session: AsyncSession, chat_id: int, actor: int | None) -> None:
    """The bot left or was removed: the group and its binding are forgotten. Commits."""
    group = await session.get(GroupChat, chat_id)
    if group is None:
        return
    if group.node_id is not None:
        record(
            session, "group.unbound", actor, chat_id=chat_id, node_id=group.node_id, how="removed"
        )
    await session.execute(
        delete(GroupChat).where(GroupChat.chat_id == chat_id),
        execution_options={"synchronize_session": False},
    )
    await session.commit()


async def migrate_group(session: AsyncSession, old_chat_id: int, new_chat_id: int) -> bool:
    """A group became a supergroup under a new id; its binding moves along. Commits; True
    when this call moved it.

    Telegram posts a service message in each of the two chats and both may be handled at
    once, so every step is one statement that finds nothing left to do the second time.
    """
    old = (
        await session.execute(
            select(GroupChat.node_id, GroupChat.bound_by, GroupChat.bound_at).where(
                GroupChat.chat_id == old_chat_id
            )
        )
    ).first()
    if old is None:
        return False
    new_exists = select(GroupChat.chat_id).where(GroupChat.chat_id == new_chat_id).exists()
    moved = await session.execute(
        update(GroupChat)
        .where(GroupChat.chat_id == old_chat_id, ~new_exists)
        .values(chat_id=new_chat_id),
        execution_options={"synchronize_session": False},
    )
    if not getattr(moved, "rowcount", 0):
        # The bot met the supergroup on its own first: the old binding goes there, unless
        # the supergroup was bound itself meanwhile.
        await session.execute(
            update(GroupChat)
            .where(GroupChat.chat_id == new_chat_id, GroupChat.node_id.is_(None))
            .values(node_id=old.node_id, bound_by=old.bound_by, bound_at=old.bound_at),
            execution_options={"synchronize_session": False},
        )
        await session.execute(
            delete(GroupChat).where(GroupChat.chat_id == old_chat_id),
            execution_options={"synchronize_session": False},
        )
    record(session, "group.migrated", None, chat_id=old_chat_id, new_chat_id=new_chat_id)
    await session.commit()
    return bool(getattr(moved, "rowcount", 0))


async def binding_of(session: AsyncSession, chat_id: int) -> Binding | None:
    row = (
        await session.execute(
            select(GroupChat.chat_id, Node)
            .join(Node, Node.id == GroupChat.node_id)
            .where(GroupChat.chat_id == chat_id)
        )
    ).first()
    if row is None:
        return None
    chat, node = row
    return Binding(chat, node_view(node), await vacant_count(session, node))


async def nodes_held_by(session: AsyncSession, telegram_id: int) -> list[NodeView]:
    """The nodes at which the member holds a post, each once, in path order."""
    nodes = await session.scalars(
        select(Node)
        .join(Post, Post.node_id == Node.id)
        .join(Member, Member.id == Post.holder_id)
        .where(Member.telegram_id == telegram_id)
        .distinct()
        .order_by(Node.path)
    )
    return [node_view(node) for node in nodes]


async def bind_group(
    session: AsyncSession, chat_id: int, title: str, node_id: int, scope: Scope, actor: int
) -> BindOutcome:
    """Bind the group to a node inside the caller's scope. Commits."""
    node = await session.get(Node, node_id)
    if node is None:
        return BindOutcome(BindResult.unknown_node)
    if not scope.sees(node):
        return BindOutcome(BindResult.forbidden)
    group = await session.get(GroupChat, chat_id, with_for_update=True)
    if group is not None and group.node_id is not None:
        current = await binding_of(session, chat_id)
        return BindOutcome(BindResult.already_bound, current)
    if group is None:
        # The bot was in the group before it kept track of groups.
        group = GroupChat(chat_id=chat_id, title=title)
        session.add(group)
    group.title = title
    group.node_id = node.id
    group.bound_by = actor
    group.bound_at = utcnow()
    record(session, "group.bound", actor, chat_id=chat_id, node_id=node.id, title=title)
    await session.commit()
    return BindOutcome(
        BindResult.bound, Binding(chat_id, node_view(node), await vacant_count(session, node))
    )


async def unbind_group(
    session: AsyncSession, chat_id: int, scope: Scope, actor: int
) -> tuple[UnbindResult, NodeView | None]:
    """Whoever bound the group, anyone whose scope sees its node, or an admin. Commits."""
    group = await session.get(GroupChat, chat_id, with_for_update=True)
    node = await session.get(Node, group.node_id) if group and group.node_id else None
    if group is None or node is None:
        return UnbindResult.not_bound, None
    if group.bound_by != actor and not scope.sees(node):
        return UnbindResult.forbidden, node_view(node)
    group.node_id = group.bound_by = group.bound_at = None
    record(session, "group.unbound", actor, chat_id=chat_id, node_id=node.id, how="unbind")
    await session.commit()
    return UnbindResult.unbound, node_view(node)
