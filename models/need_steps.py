"""The steps of a need ticket: take, resolve (with a note), confirm or reopen; each
re-authorised from the database, applied once however often it is pressed, audited, and
told to those concerned in its transaction."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope, scope_of
from models.audit import record
from models.base import utcnow
from models.chain import holders_at
from models.needs import (
    NAME_LENGTH,
    NOTE_LENGTH,
    Need,
    NeedStatus,
    grid_handlers,
    need_by_id,
    need_params,
    route,
    tell_about,
)
from models.org import Level, Member, Node
from models.posts import Recipient


def may_handle(scope: Scope, unit: Node) -> bool:
    """Take and resolve: the grid's lead and officer, the zone's above them, the command
    centre."""
    if scope.is_admin:
        return True
    return (unit.grid_id, Level.grid.value) in scope.roots or (
        unit.zone_id,
        Level.zone.value,
    ) in scope.roots


async def may_settle(session: AsyncSession, scope: Scope, telegram_id: int, need: Need) -> bool:
    """Confirm or reopen: the unit's lead and officer, whoever reported it, the command
    centre."""
    if scope.is_admin or (need.unit_node_id, Level.unit.value) in scope.roots:
        return True
    if need.reporter_member_id is None:
        return False
    reporter = await session.scalar(
        select(Member.telegram_id).where(Member.id == need.reporter_member_id)
    )
    return reporter == telegram_id


# --- changing ---------------------------------------------------------------------------


class NeedStep(StrEnum):
    take = "take"
    resolve = "resolve"
    confirm = "confirm"
    reopen = "reopen"


class Changed(StrEnum):
    done = "done"
    # The ticket is not in the state this step starts from (a stale button, a double tap).
    stale = "stale"
    refused = "refused"
    missing = "missing"


@dataclass(frozen=True)
class NeedChange:
    outcome: Changed
    # The status the ticket is in now (after the step when ``done``).
    status: NeedStatus | None = None
    # Who has it taken, when somebody has.
    taken_by: str | None = None


# The status each step starts from, and the one it leads to.
TRANSITIONS: dict[NeedStep, tuple[tuple[NeedStatus, ...], NeedStatus]] = {
    NeedStep.take: ((NeedStatus.open,), NeedStatus.taken),
    NeedStep.resolve: ((NeedStatus.taken,), NeedStatus.resolved),
    NeedStep.confirm: ((NeedStatus.resolved,), NeedStatus.confirmed),
    NeedStep.reopen: ((NeedStatus.resolved,), NeedStatus.open),
}


async def authorise(
    session: AsyncSession,
    need_id: int,
    step: NeedStep,
    telegram_id: int,
    command_centre: Sequence[int],
) -> NeedChange:
    """Whether ``telegram_id`` may take ``step`` on the ticket now (``done`` if so),
    without changing anything: read from the database on every press."""
    need = await need_by_id(session, need_id)
    unit = await session.get(Node, need.unit_node_id) if need else None
    if need is None or unit is None:
        return NeedChange(Changed.missing)
    return await _check(session, need, unit, step, telegram_id, command_centre)


async def _check(
    session: AsyncSession,
    need: Need,
    unit: Node,
    step: NeedStep,
    telegram_id: int,
    command_centre: Sequence[int],
) -> NeedChange:
    scope = await scope_of(session, telegram_id, list(command_centre))
    if step in (NeedStep.take, NeedStep.resolve):
        allowed = may_handle(scope, unit)
    else:
        allowed = await may_settle(session, scope, telegram_id, need)
    status = NeedStatus(need.status)
    if not allowed:
        return NeedChange(Changed.refused, status, need.taken_by_name)
    if status not in TRANSITIONS[step][0]:
        return NeedChange(Changed.stale, status, need.taken_by_name)
    return NeedChange(Changed.done, status, need.taken_by_name)


async def allowed_steps(
    session: AsyncSession, need_id: int, telegram_id: int, command_centre: Sequence[int]
) -> list[NeedStep]:
    """The steps ``telegram_id`` may take on the ticket now, for the buttons it is shown."""
    need = await need_by_id(session, need_id)
    unit = await session.get(Node, need.unit_node_id) if need else None
    if need is None or unit is None:
        return []
    return [
        step
        for step in NeedStep
        if (await _check(session, need, unit, step, telegram_id, command_centre)).outcome
        is Changed.done
    ]


AUDITED_AS = {
    NeedStep.take: "need.taken",
    NeedStep.resolve: "need.resolved",
    NeedStep.confirm: "need.confirmed",
    NeedStep.reopen: "need.reopened",
}


async def change_need(
    session: AsyncSession,
    need_id: int,
    step: NeedStep,
    telegram_id: int,
    name: str,
    command_centre: Sequence[int],
    note: str | None = None,
) -> NeedChange:
    """Takes ``step`` on the ticket for ``telegram_id`` (``name`` when it is no member, e.g.
    the command centre): re-authorised, applied once however often it is pressed, audited,
    and told to those concerned. Commits."""
    need = await need_by_id(session, need_id)
    unit = await session.get(Node, need.unit_node_id) if need else None
    if need is None or unit is None:
        return NeedChange(Changed.missing)
    check = await _check(session, need, unit, step, telegram_id, command_centre)
    if check.outcome is not Changed.done:
        return check
    member = await session.scalar(select(Member).where(Member.telegram_id == telegram_id))
    by_name = (member.name if member else name)[:NAME_LENGTH]
    starts, leads_to = TRANSITIONS[step]
    cycle = need.cycle
    taker = await _taker(session, need)
    now = utcnow()
    values: dict[str, object] = {"status": leads_to.value}
    if step is NeedStep.take:
        values |= {"taken_at": now, "taken_by_telegram_id": telegram_id, "taken_by_name": by_name}
    elif step is NeedStep.resolve:
        resolution = (note or "").strip()[:NOTE_LENGTH] or None
        values |= {"resolved_at": now, "resolved_by_telegram_id": telegram_id}
        values["resolution"] = resolution
    elif step is NeedStep.confirm:
        values["confirmed_at"] = now
    else:
        values |= dict.fromkeys(REOPEN_CLEARS) | {"cycle": cycle + 1, "opened_at": now}
    # Conditional on the state read: a second press, or two people at once, change it once
    # (on SQLite too, where SELECT … FOR UPDATE does nothing).
    result = await session.execute(
        update(Need)
        .where(
            Need.id == need_id,
            Need.status.in_([status.value for status in starts]),
            Need.cycle == cycle,
        )
        .values(**values),
        execution_options={"synchronize_session": False},
    )
    if not getattr(result, "rowcount", 0):
        await session.rollback()
        again = await authorise(session, need_id, step, telegram_id, command_centre)
        if again.outcome is Changed.done:
            return NeedChange(Changed.stale, again.status, again.taken_by)
        return again
    await session.refresh(need)
    await _tell_change(session, need, unit, step, cycle, telegram_id, by_name, taker)
    if step is NeedStep.reopen:
        # A new opening: the grid hears of it again, and whoever had taken it before.
        await route(session, need, unit, command_centre, "need.reopened", also=taker)
    record(session, AUDITED_AS[step], telegram_id, need_id=need_id, cycle=cycle)
    await session.commit()
    return NeedChange(Changed.done, leads_to, need.taken_by_name)


# What a reopened ticket forgets: it starts over.
REOPEN_CLEARS = (
    "routed_at",
    "escalated_at",
    "taken_at",
    "taken_by_telegram_id",
    "taken_by_name",
    "resolved_at",
    "resolved_by_telegram_id",
    "resolution",
)


async def _tell_change(
    session: AsyncSession,
    need: Need,
    unit: Node,
    step: NeedStep,
    cycle: int,
    actor: int,
    by_name: str,
    taker: list[Recipient],
) -> None:
    params = await need_params(session, need, unit)
    params["name"] = by_name
    handlers = await grid_handlers(session, unit)
    if step is NeedStep.take:
        # The other handlers, so that nobody does it twice.
        await tell_about(
            session, need.id, cycle, "taken", handlers, "need.taken_by", params, besides=actor
        )
    elif step is NeedStep.resolve:
        params["resolution"] = need.resolution or "—"
        unit_side = await _unit_side(session, need, unit)
        await tell_about(
            session, need.id, cycle, "resolved", unit_side, "need.resolved", params, settle=True
        )
    elif step is NeedStep.confirm:
        await tell_about(
            session,
            need.id,
            cycle,
            "confirmed",
            [*taker, *handlers],
            "need.confirmed",
            params,
            besides=actor,
        )


async def _taker(session: AsyncSession, need: Need) -> list[Recipient]:
    if need.taken_by_telegram_id is None:
        return []
    member_id = await session.scalar(
        select(Member.id).where(Member.telegram_id == need.taken_by_telegram_id)
    )
    return [Recipient(need.taken_by_telegram_id, member_id)]


async def _unit_side(session: AsyncSession, need: Need, unit: Node) -> list[Recipient]:
    """Who confirms: the unit's lead and officer and whoever reported it; the building's
    holders when nobody (a vacant unit whose reporter has gone)."""
    people = await holders_at(session, [unit.id])
    if need.reporter_member_id is not None:
        reporter = await session.get(Member, need.reporter_member_id)
        if reporter is not None and all(p.member_id != reporter.id for p in people):
            people.append(Recipient(reporter.telegram_id, reporter.id))
    if not people and unit.building_id:
        people = await holders_at(session, [unit.building_id])
    return people
