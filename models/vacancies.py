"""Vacant posts, in path order and paged: what a bound group's volunteers may claim
(``models.claims``), and what a lead sees of its own subtrees."""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.org import Node, Post, subtree, under
from models.posts import PostView

_POST_COLUMNS = (Post.id, Node.id, Node.level, Node.path, Post.role, Post.holder_id)


@dataclass(frozen=True)
class VacancyPage:
    posts: list[PostView]
    total: int


async def _vacancies(
    session: AsyncSession, where: ColumnElement[bool], offset: int, limit: int
) -> VacancyPage:
    vacant = (Post.holder_id.is_(None), where)
    total = await session.scalar(
        select(func.count()).select_from(Post).join(Node, Node.id == Post.node_id).where(*vacant)
    )
    rows = await session.execute(
        select(*_POST_COLUMNS)
        .join(Node, Node.id == Post.node_id)
        .where(*vacant)
        .order_by(Node.path, Post.role, Post.id)
        .offset(offset)
        .limit(limit)
    )
    return VacancyPage([PostView(*row) for row in rows], int(total or 0))


async def vacancies_under(
    session: AsyncSession, node_id: int, offset: int, limit: int
) -> VacancyPage:
    """Vacant posts of the node's subtree (the node's own included), in path order."""
    node = await session.get(Node, node_id)
    if node is None:
        return VacancyPage([], 0)
    return await _vacancies(session, under(node), offset, limit)


async def vacancies_in_scope(
    session: AsyncSession, scope: Scope, offset: int, limit: int
) -> VacancyPage:
    """Vacant posts in every subtree the member holds a post in; all of them for admins."""
    if scope.is_admin:
        where: ColumnElement[bool] = true()
    elif scope.roots:
        where = or_(*(subtree(root_id, level) for root_id, level in sorted(scope.roots)))
    else:
        where = false()
    return await _vacancies(session, where, offset, limit)
