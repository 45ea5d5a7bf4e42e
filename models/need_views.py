"""Reading need tickets: the ones in a member's subtrees, paged, and one at a time; both
reads of household data, so both are audited."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope, scope_of
from models.audit import record
from models.base import as_utc
from models.needs import LARGEST_ID, UNSETTLED, Need, NeedStatus
from models.org import Household, Node, subtree


@dataclass(frozen=True)
class NeedView:
    id: int
    kind: str
    note: str | None
    status: NeedStatus
    path: str
    room: str | None
    opened_at: datetime
    taken_by_name: str | None
    resolution: str | None
    unit_node_id: int


def _in_scope(scope: Scope) -> ColumnElement[bool]:
    if scope.is_admin:
        return true()
    if not scope.roots:
        return false()
    return or_(*(subtree(node_id, level) for node_id, level in sorted(scope.roots)))


def _views() -> Select[Need, str, str]:
    # The room is None for a household that has gone (an outer join).
    return (
        select(Need, Node.path, Household.room)
        .join(Node, Node.id == Need.unit_node_id)
        .outerjoin(Household, Household.id == Need.household_id)
    )


def _view(need: Need, path: str, room: str | None) -> NeedView:
    return NeedView(
        id=need.id,
        kind=need.kind,
        note=need.note,
        status=NeedStatus(need.status),
        path=path,
        room=room,
        opened_at=as_utc(need.opened_at),
        taken_by_name=need.taken_by_name,
        resolution=need.resolution,
        unit_node_id=need.unit_node_id,
    )


@dataclass(frozen=True)
class NeedPage:
    needs: list[NeedView]
    total: int
    page: int
    pages: int


async def needs_in_scope(
    session: AsyncSession, scope: Scope, telegram_id: int, page: int, per_page: int = 8
) -> NeedPage:
    """Tickets not yet confirmed inside the member's subtrees, oldest opening first; the
    page is clamped into range. The read is audited (household data). Commits."""
    where = and_(Need.status.in_([status.value for status in UNSETTLED]), _in_scope(scope))
    total = await session.scalar(
        select(func.count()).select_from(Need).join(Node, Node.id == Need.unit_node_id).where(where)
    )
    pages = max(1, -(-int(total or 0) // per_page))
    page = min(max(page, 0), pages - 1)
    rows = await session.execute(
        _views()
        .where(where)
        .order_by(Need.opened_at, Need.id)
        .offset(page * per_page)
        .limit(per_page)
    )
    views = [_view(need, path, room) for need, path, room in rows]
    if views:
        record(session, "need.listed", telegram_id, need_ids=[view.id for view in views])
        await session.commit()
    return NeedPage(views, int(total or 0), page, pages)


async def need_for(
    session: AsyncSession, need_id: int, telegram_id: int, command_centre: Sequence[int]
) -> NeedView | None:
    """One ticket, when it lies inside the member's subtrees (audited); None otherwise.
    Commits."""
    if not 0 < need_id <= LARGEST_ID:
        return None
    scope = await scope_of(session, telegram_id, list(command_centre))
    row = (await session.execute(_views().where(Need.id == need_id, _in_scope(scope)))).first()
    if row is None:
        return None
    need, path, room = row
    record(session, "need.read", telegram_id, need_id=need_id)
    await session.commit()
    return _view(need, path, room)


async def open_need_count(session: AsyncSession, node: Node | None) -> int:
    """Tickets not yet resolved in the subtree of ``node`` (the county for None)."""
    statement = (
        select(func.count())
        .select_from(Need)
        .join(Node, Node.id == Need.unit_node_id)
        .where(Need.status.in_((NeedStatus.open.value, NeedStatus.taken.value)))
    )
    if node is not None:
        statement = statement.where(subtree(node.id, node.level))
    return int(await session.scalar(statement) or 0)
