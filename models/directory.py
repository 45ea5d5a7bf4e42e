"""Who holds what: coverage of posts by level and by child node, and post holders."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from models.audit import record
from models.base import as_utc
from models.messages import PostRef
from models.org import LEVELS, Level, Member, Node, Post, under
from models.refusals import Refused
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


@dataclass(frozen=True)
class ChildCoverage:
    """One child of a node as the directory shows it: its own children, the posts of its
    whole subtree (filled and vacant) and the members holding them whom the bot cannot
    reach."""

    node_id: int
    name: str
    children: int
    posts: int
    filled: int
    unreachable: int

    @property
    def vacant(self) -> int:
        return self.posts - self.filled


@dataclass(frozen=True)
class ChildrenPage:
    total: int
    children: list[ChildCoverage]


def _children_of(node: Node | None) -> ColumnElement[bool]:
    if node is None:
        return Node.level == Level.zone.value
    return Node.parent_id == node.id


async def children_page(
    session: AsyncSession, node: Node | None, offset: int, limit: int
) -> ChildrenPage:
    """A page of the node's children (the zones for None) by name, each with the counts of
    its subtree: two queries whatever the page's size."""
    total = await session.scalar(select(func.count(Node.id)).where(_children_of(node))) or 0
    child_depth = 0 if node is None else Level(node.level).depth + 1
    if not total or child_depth >= len(LEVELS):
        return ChildrenPage(0, [])
    page = list(
        (
            await session.execute(
                select(Node.id, Node.name)
                .where(_children_of(node))
                .order_by(Node.name, Node.id)
                .offset(offset)
                .limit(limit)
            )
        ).all()
    )
    child_column = getattr(Node, LEVELS[child_depth].ancestor_column)
    unreachable = case((Member.reachable.is_(False), Member.id))
    grandchild = case((Node.parent_id == child_column, Node.id))
    rows = await session.execute(
        select(
            child_column,
            func.count(func.distinct(grandchild)),
            func.count(Post.id),
            func.count(Post.holder_id),
            func.count(func.distinct(unreachable)),
        )
        .select_from(Node)
        .outerjoin(Post, Post.node_id == Node.id)
        .outerjoin(Member, Member.id == Post.holder_id)
        .where(child_column.in_([node_id for node_id, _ in page]))
        .group_by(child_column)
    )
    counts = {row[0]: tuple(row[1:]) for row in rows}
    return ChildrenPage(
        total,
        [
            ChildCoverage(node_id, name, *counts.get(node_id, (0, 0, 0, 0)))
            for node_id, name in page
        ],
    )


async def unreachable_under(session: AsyncSession, node: Node | None) -> int:
    """Members holding a post in the subtree whom the bot cannot reach (blocked, never
    started)."""
    count = await session.scalar(
        select(func.count(func.distinct(Member.id)))
        .select_from(Node)
        .join(Post, Post.node_id == Node.id)
        .join(Member, Member.id == Post.holder_id)
        .where(under(node), Member.reachable.is_(False))
    )
    return count or 0


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


async def members_by_username(session: AsyncSession, username: str) -> list[Member]:
    """Every member last seen with the @username. Usernames pass from one account to
    another and each member keeps the one it was last seen with, so there may be several."""
    rows = await session.scalars(
        select(Member).where(Member.username == username.lstrip("@").lower()).order_by(Member.id)
    )
    return list(rows)


async def member_by_username(session: AsyncSession, username: str) -> Member | None:
    """The one member last seen with the @username; ``Refused`` when several were, since the
    name then does not tell who is meant (the Telegram id does)."""
    members = await members_by_username(session, username)
    if len(members) > 1:
        raise Refused(
            "assign.ambiguous_username", username=username.lstrip("@"), count=len(members)
        )
    return members[0] if members else None


async def recent_audit(session: AsyncSession, limit: int) -> list[AuditEntry]:
    rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return list(rows)


@dataclass(frozen=True)
class AuditView:
    """An audit entry as a person reads it: who (a name when the actor is a member), what,
    and the posts and people it concerns by path and name rather than by id."""

    at: datetime
    actor: str
    action: str
    post: PostRef | None
    member: str | None
    other: dict[str, str]


async def readable_audit(session: AsyncSession, limit: int) -> list[AuditView]:
    entries = await recent_audit(session, limit)
    actor_ids = {entry.actor_telegram_id for entry in entries if entry.actor_telegram_id}
    member_ids = {_int(entry.detail.get("member_id")) for entry in entries} - {None}
    post_ids = {_int(entry.detail.get("post_id")) for entry in entries} - {None}
    actors: dict[int, str] = {
        telegram_id: name
        for telegram_id, name in await session.execute(
            select(Member.telegram_id, Member.name).where(Member.telegram_id.in_(actor_ids))
        )
    }
    members: dict[int, str] = {
        member_id: name
        for member_id, name in await session.execute(
            select(Member.id, Member.name).where(Member.id.in_(member_ids))
        )
    }
    posts = {
        post_id: PostRef(level, role, path)
        for post_id, level, role, path in await session.execute(
            select(Post.id, Node.level, Post.role, Node.path)
            .join(Node, Node.id == Post.node_id)
            .where(Post.id.in_(post_ids))
        )
    }
    views = []
    for entry in entries:
        detail = dict(entry.detail)
        post_id = _int(detail.pop("post_id", None))
        member_id = _int(detail.pop("member_id", None))
        actor = entry.actor_telegram_id
        views.append(
            AuditView(
                at=as_utc(entry.at),
                actor=actors.get(actor, str(actor)) if actor else "—",
                action=entry.action,
                post=posts.get(post_id) if post_id is not None else None,
                member=members.get(member_id) if member_id is not None else None,
                # Lists of ids say nothing to a reader; the entry's counts do.
                other={
                    key: _short(value)
                    for key, value in sorted(detail.items())
                    if not key.endswith("_ids")
                },
            )
        )
    return views


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _short(value: object) -> str:
    """A list of ids (an invite batch's posts, say) is counted, not spelled out."""
    if isinstance(value, list):
        return f"×{len(value)}"
    return str(value)[:80]


async def log_lookup(session: AsyncSession, actor: int | None, target: str) -> None:
    """Reads of people's details are audited like changes. Commits."""
    record(session, "directory.whois", actor, target=target)
    await session.commit()
