"""Who holds what: coverage of posts by level and by child node, and post holders."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.org import LEVELS, Level, Member, Node, Post, under
from models.system import AuditEntry


@dataclass(frozen=True)
class Coverage:
    label: str
    nodes: int
    posts: int
    filled: int

    @property
    def vacant(self) -> int:
        return self.posts - self.filled


@dataclass(frozen=True)
class Holding:
    role: str
    holder_name: str | None
    holder_phone: str | None
    holder_username: str | None
    roster_name: str | None
    roster_phone: str | None


async def coverage_by_level(session: AsyncSession, node: Node | None) -> list[Coverage]:
    """Nodes, posts and filled posts per level in the subtree (the county for None)."""
    rows = await session.execute(
        select(
            Node.level,
            func.count(func.distinct(Node.id)),
            func.count(Post.id),
            func.count(Post.holder_id),
        )
        .join(Post, Post.node_id == Node.id)
        .where(under(node))
        .group_by(Node.level)
    )
    by_level = {
        level: Coverage(level, nodes, posts, filled) for level, nodes, posts, filled in rows
    }
    return [by_level[level.value] for level in LEVELS if level.value in by_level]


async def coverage_by_child(
    session: AsyncSession, node: Node | None, limit: int = 30
) -> list[Coverage]:
    """For each child of the node (each zone for None): posts and filled posts in the
    child's whole subtree, in one grouped query."""
    child_depth = 0 if node is None else Level(node.level).depth + 1
    if child_depth >= len(LEVELS):
        return []
    child_column = getattr(Node, LEVELS[child_depth].ancestor_column)
    child = Node.__table__.alias("child")
    rows = await session.execute(
        select(
            child.c.path,
            func.count(func.distinct(Node.id)),
            func.count(Post.id),
            func.count(Post.holder_id),
        )
        .select_from(Node)
        .join(Post, Post.node_id == Node.id)
        .join(child, child.c.id == child_column)
        .where(under(node))
        .group_by(child.c.path)
        .order_by(child.c.path)
        .limit(limit)
    )
    return [Coverage(path, nodes, posts, filled) for path, nodes, posts, filled in rows]


async def holdings(session: AsyncSession, node_id: int) -> list[Holding]:
    rows = await session.execute(
        select(
            Post.role,
            Member.name,
            Member.phone,
            Member.username,
            Post.roster_name,
            Post.roster_phone,
        )
        .outerjoin(Member, Member.id == Post.holder_id)
        .where(Post.node_id == node_id)
        .order_by(Post.role)
    )
    return [Holding(*row) for row in rows]


async def member_by_username(session: AsyncSession, username: str) -> Member | None:
    return await session.scalar(
        select(Member).where(Member.username == username.lstrip("@").lower())
    )


async def recent_audit(session: AsyncSession, limit: int) -> list[AuditEntry]:
    rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return list(rows)


async def log_lookup(session: AsyncSession, actor: int | None, target: str) -> None:
    """Reads of people's details are audited like changes. Commits."""
    record(session, "directory.whois", actor, target=target)
    await session.commit()
