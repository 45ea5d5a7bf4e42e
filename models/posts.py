"""Posts: finding them by path, binding and freeing them, and who stands above them."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.base import utcnow
from models.org import Member, Node, Post, Role


@dataclass(frozen=True)
class PostView:
    post_id: int
    node_id: int
    level: str
    path: str
    role: str
    holder_id: int | None


def normalized_path(path: str) -> str:
    return "/".join(part.strip() for part in path.strip().strip("/").split("/"))


async def node_by_path(session: AsyncSession, path: str) -> Node | None:
    return await session.scalar(select(Node).where(Node.path == normalized_path(path)))


async def nearest_node(session: AsyncSession, path: str) -> tuple[Node | None, list[str]]:
    """For a path that names no node: the deepest of its leading parts that does (None when
    none does), and the names of the nodes under it (the county's top nodes for None)."""
    parts = normalized_path(path).split("/")
    parent = None
    for depth in range(len(parts) - 1, 0, -1):
        parent = await node_by_path(session, "/".join(parts[:depth]))
        if parent is not None:
            break
    under = Node.parent_id.is_(None) if parent is None else Node.parent_id == parent.id
    names = list(await session.scalars(select(Node.name).where(under).order_by(Node.path)))
    return parent, names


async def post_at(session: AsyncSession, node_id: int, role: Role | str) -> Post | None:
    return await session.scalar(select(Post).where(Post.node_id == node_id, Post.role == role))


async def post_view(session: AsyncSession, post_id: int) -> PostView | None:
    row = (
        await session.execute(
            select(Post.id, Node.id, Node.level, Node.path, Post.role, Post.holder_id)
            .join(Node, Node.id == Post.node_id)
            .where(Post.id == post_id)
        )
    ).first()
    return PostView(*row) if row else None


async def posts_of(session: AsyncSession, member_id: int) -> list[PostView]:
    rows = await session.execute(
        select(Post.id, Node.id, Node.level, Node.path, Post.role, Post.holder_id)
        .join(Node, Node.id == Post.node_id)
        .where(Post.holder_id == member_id)
        .order_by(Node.path, Post.role)
    )
    return [PostView(*row) for row in rows]


@dataclass(frozen=True)
class Recipient:
    """Someone to tell: a member (``member_id``) or a command-centre address from the
    config (``member_id`` None). Messages are rendered in the reader's language when sent."""

    telegram_id: int
    member_id: int | None = None


async def superiors_of(session: AsyncSession, node_id: int) -> list[Recipient]:
    """Whoever holds the lead and officer posts one level up (empty for a
    zone: above zones sits the command centre, whose ids come from the config)."""
    node = await session.get(Node, node_id)
    if node is None or node.parent_id is None:
        return []
    rows = await session.execute(
        select(Member.telegram_id, Member.id)
        .join(Post, Post.holder_id == Member.id)
        .where(Post.node_id == node.parent_id)
        .order_by(Post.role)
    )
    return [Recipient(telegram_id, member_id) for telegram_id, member_id in rows]


async def bind(
    session: AsyncSession, post: Post, member: Member, actor: int | None, how: str
) -> None:
    """Give ``post`` to ``member`` within the caller's transaction."""
    post.holder_id = member.id
    post.held_since = utcnow()
    record(session, "post.bound", actor, post_id=post.id, member_id=member.id, how=how)


async def release(session: AsyncSession, post: Post, actor: int | None, how: str) -> None:
    record(session, "post.released", actor, post_id=post.id, member_id=post.holder_id, how=how)
    post.holder_id = None
    post.held_since = None
