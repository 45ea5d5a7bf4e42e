"""Post coverage: per child node, the posts vacant, unreachable or silent."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.console.common import child_level
from models.org import Member, Node, Post, under
from models.system import AuditEntry


@dataclass(frozen=True)
class CoverageRow:
    node_id: int | None
    name: str
    posts: int
    vacant: int
    unreachable: int
    silent: int


async def coverage(
    session: AsyncSession, node: Node | None, silent_days: int, now: datetime | None = None
) -> list[CoverageRow]:
    """Per child node: the posts at or below it, how many are vacant, held by someone
    unreachable, or held by someone with nothing in the audit log for ``silent_days``."""
    moment = now or utcnow()
    level = child_level(node)
    child_column = getattr(Node, level.ancestor_column) if level else Node.id
    child = Node.__table__.alias("child")
    active = (
        select(Member.id)
        .join(AuditEntry, AuditEntry.actor_telegram_id == Member.telegram_id)
        .where(AuditEntry.at >= moment - timedelta(days=silent_days))
        .distinct()
    )
    held = Post.holder_id.is_not(None)
    rows = await session.execute(
        select(
            child.c.id,
            child.c.name,
            func.count(Post.id),
            func.sum(case((held, 0), else_=1)),
            func.sum(case((and_(held, Member.reachable.is_(False)), 1), else_=0)),
            func.sum(
                case(
                    (and_(held, Member.reachable.is_(True), Member.id.not_in(active)), 1),
                    else_=0,
                )
            ),
        )
        .select_from(Post)
        .join(Node, Node.id == Post.node_id)
        .outerjoin(Member, Member.id == Post.holder_id)
        .outerjoin(child, child.c.id == child_column)
        .where(under(node))
        .group_by(child.c.id, child.c.name)
    )
    found = [
        CoverageRow(
            node_id, name or "", int(posts), int(vacant or 0), int(unreach or 0), int(silent or 0)
        )
        for node_id, name, posts, vacant, unreach, silent in rows
    ]
    return sorted(found, key=lambda row: (-(row.vacant + row.unreachable), row.name))
