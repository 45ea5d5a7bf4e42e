"""The sweep for need tickets: those nobody could be told of go to the command centre;
those past their time limit climb to the zone lead and officer, once per opening."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.base import utcnow
from models.chain import holders_at, private_addresses
from models.needs import (
    URGENT_KINDS,
    Need,
    NeedLimits,
    NeedStatus,
    mark_routed,
    need_params,
    tell_about,
)
from models.org import Node


def overdue(limits: NeedLimits, now: datetime) -> ColumnElement[bool]:
    """Tickets whose time limit, counted from their opening, has passed."""
    listed = [
        and_(Need.kind == kind, Need.opened_at <= now - limits.of(kind)) for kind in limits.hours
    ]
    others = and_(Need.kind.not_in(list(limits.hours)), Need.opened_at <= now - limits.of(""))
    return or_(*listed, others) if listed else others


async def sweep_needs(
    session: AsyncSession,
    limits: NeedLimits,
    command_centre: Sequence[int],
    now: datetime | None = None,
) -> int:
    """Tickets nobody could be told of go to the command centre; tickets past their time
    limit (open or taken, not yet resolved) climb to the zone lead and officer (the
    command centre when both are vacant), once per opening. Each in its own transaction.
    Returns how many tickets were moved on."""
    moment = now or utcnow()
    moved = 0
    unrouted = list(
        await session.scalars(
            select(Need.id).where(Need.status == NeedStatus.open, Need.routed_at.is_(None))
        )
    )
    recipients = private_addresses(command_centre)
    for need_id in unrouted if recipients else []:
        need = await session.get(Need, need_id)
        unit = await session.get(Node, need.unit_node_id) if need else None
        if need is None or unit is None:
            continue
        params = await need_params(session, need, unit)
        await tell_about(
            session,
            need.id,
            need.cycle,
            "cc",
            recipients,
            "need.opened",
            params,
            take=True,
            urgent=need.kind in URGENT_KINDS,
        )
        await mark_routed(session, need.id)
        await session.commit()
        moved += 1
    late = list(
        await session.scalars(
            select(Need.id)
            .where(
                Need.status.in_((NeedStatus.open.value, NeedStatus.taken.value)),
                Need.escalated_at.is_(None),
                overdue(limits, moment),
            )
            .order_by(Need.id)
        )
    )
    for need_id in late:
        need = await session.get(Need, need_id, populate_existing=True)
        unit = await session.get(Node, need.unit_node_id) if need else None
        if need is None or unit is None:
            continue
        claimed = await session.execute(
            update(Need)
            .where(Need.id == need_id, Need.cycle == need.cycle, Need.escalated_at.is_(None))
            .values(escalated_at=moment),
            execution_options={"synchronize_session": False},
        )
        if not getattr(claimed, "rowcount", 0):
            await session.rollback()
            continue
        params = await need_params(session, need, unit)
        params["hours"] = _hours(limits.of(need.kind))
        params["taken_by"] = need.taken_by_name or "—"
        above = await holders_at(session, [unit.zone_id] if unit.zone_id else [])
        await tell_about(
            session,
            need.id,
            need.cycle,
            "overdue",
            above or recipients,
            "need.overdue",
            params,
            take=need.status == NeedStatus.open,
            urgent=need.kind in URGENT_KINDS,
        )
        record(session, "need.escalated", None, need_id=need.id, cycle=need.cycle)
        await session.commit()
        moved += 1
    return moved


def _hours(limit: timedelta) -> int | float:
    hours = limit.total_seconds() / 3600
    return int(hours) if hours == int(hours) else round(hours, 1)


async def purge_needs_older_than(session: AsyncSession, retention_days: int) -> int:
    """Tickets settled (resolved or confirmed) and opened more than ``retention_days`` ago
    go, with the household's note, as old reports do; an unsettled one stays a duty.
    Commits."""
    cutoff = utcnow() - timedelta(days=retention_days)
    result = await session.execute(
        delete(Need).where(
            Need.opened_at < cutoff,
            Need.status.in_((NeedStatus.resolved.value, NeedStatus.confirmed.value)),
        ),
        execution_options={"synchronize_session": False},
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
