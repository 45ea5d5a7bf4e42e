"""Needs (生活保障、看病就医): a need a household report asks for becomes a ticket for the grid
lead and its officer (the command centre while both are vacant), with a time limit per
kind. Someone takes it, resolves it with a note, and the unit's lead confirms or reopens
it; a ticket past its time limit climbs to the zone lead, once per opening.

Every change is re-authorised, audited, and tells the people concerned through the outbox
in its own transaction, under dedupe keys.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    UniqueConstraint,
    and_,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.access import Scope, scope_of
from models.audit import record
from models.base import Base, as_utc, utcnow
from models.chain import holders_at, private_addresses
from models.forms import NeedRequest
from models.messages import Action, ActionKind, Param, Term, Text
from models.org import Household, Level, Member, Node, subtree
from models.outbox.table import OutgoingMessage, enqueue
from models.posts import Recipient

# Ahead of broadcasts, behind alerts.
NEED_PRIORITY = 5
NOTE_LENGTH = 500
NAME_LENGTH = 200
# The kinds the catalogs name; a form may add others, shown as the form spells them.
KNOWN_KINDS = ("medicine", "food", "doctor", "other")


class NeedStatus(StrEnum):
    open = "open"
    taken = "taken"
    resolved = "resolved"
    confirmed = "confirmed"


# Not yet confirmed by the unit: what /needs lists.
UNSETTLED = (NeedStatus.open, NeedStatus.taken, NeedStatus.resolved)


class Need(Base):
    __tablename__ = "needs"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'taken', 'resolved', 'confirmed')", name="status"),
        # One ticket per report and kind: saving or correcting a report again adds none.
        UniqueConstraint("report_id", "kind", name="uq_needs_report_kind"),
        Index("ix_needs_status_opened_at", "status", "opened_at"),
        Index("ix_needs_unit_node_id", "unit_node_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(NOTE_LENGTH))
    report_id: Mapped[int | None] = mapped_column(Integer)
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("households.id", ondelete="SET NULL")
    )
    unit_node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    reporter_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=NeedStatus.open)
    # How many times it was reopened; keys each opening's messages apart.
    cycle: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The time limit runs from here: the report, or the last reopening.
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When somebody was told of this opening; None while nobody could be (the sweep then
    # tells the command centre).
    routed_at: Mapped[datetime | None] = mapped_column()
    taken_at: Mapped[datetime | None] = mapped_column()
    taken_by_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    taken_by_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    resolution: Mapped[str | None] = mapped_column(String(NOTE_LENGTH))
    confirmed_at: Mapped[datetime | None] = mapped_column()
    # When this opening climbed to the zone lead; set once per opening.
    escalated_at: Mapped[datetime | None] = mapped_column()


@dataclass(frozen=True)
class NeedLimits:
    """Hours to meet each kind of need (``[needs] due_hours``); a kind not listed gets
    ``other``'s, or a day."""

    hours: Mapping[str, float]

    def of(self, kind: str) -> timedelta:
        return timedelta(hours=self.hours.get(kind, self.hours.get("other", 24.0)))

    def due_at(self, need: "Need | NeedView") -> datetime:
        return as_utc(need.opened_at) + self.of(need.kind)


def source_of(need_id: int) -> str:
    return f"need:{need_id}"


def kind_param(kind: str) -> Param:
    return Term(f"need.kind.{kind}") if kind in KNOWN_KINDS else kind


# --- opening ----------------------------------------------------------------------------


async def open_report_needs(
    session: AsyncSession,
    *,
    report_id: int,
    household_id: int,
    unit_node_id: int,
    reporter_member_id: int | None,
    needs: list[NeedRequest],
    command_centre: Sequence[int] = (),
) -> list[int]:
    """A ticket for each kind of need the report asks for, told to the grid's lead and
    officer in the caller's transaction (no commit). Kinds already ticketed for this
    report add nothing. When the grid's posts are vacant the command centre is told: at
    once when ``command_centre`` is given, else by the next sweep. Returns the new ids."""
    unit = await session.get(Node, unit_node_id)
    if unit is None or not needs:
        return []
    room = await session.scalar(select(Household.room).where(Household.id == household_id))
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    handlers = await _grid_handlers(session, unit)
    reporter_id = (
        await session.scalar(select(Member.telegram_id).where(Member.id == reporter_member_id))
        if reporter_member_id
        else None
    )
    opened: list[int] = []
    for request in {request.kind: request for request in needs}.values():
        now = utcnow()
        note = request.note.strip()[:NOTE_LENGTH] if request.note else None
        need_id = await session.scalar(
            insert(Need)
            .values(
                kind=request.kind[:32],
                note=note or None,
                report_id=report_id,
                household_id=household_id,
                unit_node_id=unit.id,
                reporter_member_id=reporter_member_id,
                status=NeedStatus.open.value,
                cycle=0,
                created_at=now,
                opened_at=now,
            )
            .on_conflict_do_nothing(index_elements=["report_id", "kind"])
            .returning(Need.id)
        )
        if need_id is None:
            continue
        params: dict[str, Param] = {
            "id": need_id,
            "kind": kind_param(request.kind),
            "path": unit.path,
            "room": room or "",
            "note": note or "—",
        }
        recipients = handlers or private_addresses(command_centre)
        await _tell(session, need_id, 0, "open", recipients, "need.opened", params, take=True)
        if recipients:
            await _mark_routed(session, need_id)
        record(
            session,
            "need.opened",
            reporter_id,
            need_id=need_id,
            report_id=report_id,
            household_id=household_id,
            kind=request.kind,
        )
        opened.append(need_id)
    return opened


async def _grid_handlers(session: AsyncSession, unit: Node) -> list[Recipient]:
    return await holders_at(session, [unit.grid_id] if unit.grid_id else [])


async def _mark_routed(session: AsyncSession, need_id: int) -> None:
    await session.execute(
        update(Need).where(Need.id == need_id).values(routed_at=utcnow()),
        execution_options={"synchronize_session": False},
    )


async def _tell(
    session: AsyncSession,
    need_id: int,
    cycle: int,
    step: str,
    recipients: Sequence[Recipient],
    key: str,
    params: Mapping[str, Param],
    *,
    take: bool = False,
    settle: bool = False,
    besides: int | None = None,
) -> int:
    """``key`` to each private chat among ``recipients``, once per need, opening and step;
    with the buttons that step offers its readers."""
    actions: tuple[Action, ...] = ()
    if take:
        actions = (Action(ActionKind.take_need, need_id),)
    elif settle:
        actions = (
            Action(ActionKind.confirm_need, need_id),
            Action(ActionKind.reopen_need, need_id),
        )
    source = source_of(need_id)
    content = Text(key, dict(params))
    seen: set[int] = set()
    messages: list[OutgoingMessage] = []
    for recipient in recipients:
        address = recipient.telegram_id
        if address <= 0 or address == besides or address in seen:
            continue
        seen.add(address)
        messages.append(
            OutgoingMessage(
                chat_id=address,
                member_id=recipient.member_id,
                content=content,
                actions=actions,
                dedupe_key=f"{source}:{cycle}:{step}:{address}",
                source=source,
                priority=NEED_PRIORITY,
            )
        )
    return await enqueue(session, messages)


# --- who may do what --------------------------------------------------------------------


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
    need = await session.get(Need, need_id, populate_existing=True)
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
    need = await session.get(Need, need_id, populate_existing=True)
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
    need = await session.get(Need, need_id, populate_existing=True)
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
        await _route(session, need, unit, command_centre, "need.reopened")
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


async def _route(
    session: AsyncSession, need: Need, unit: Node, command_centre: Sequence[int], key: str
) -> None:
    """A (re)opening to the grid's lead and officer, or the command centre, with Take."""
    people = await _grid_handlers(session, unit) or private_addresses(command_centre)
    params = await _params(session, need, unit)
    await _tell(session, need.id, need.cycle, "open", people, key, params, take=True)
    if people:
        await _mark_routed(session, need.id)


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
    params = await _params(session, need, unit)
    params["name"] = by_name
    handlers = await _grid_handlers(session, unit)
    if step is NeedStep.take:
        # The other handlers, so that nobody does it twice.
        await _tell(
            session, need.id, cycle, "taken", handlers, "need.taken_by", params, besides=actor
        )
    elif step is NeedStep.resolve:
        params["resolution"] = need.resolution or "—"
        unit_side = await _unit_side(session, need, unit)
        await _tell(
            session, need.id, cycle, "resolved", unit_side, "need.resolved", params, settle=True
        )
    elif step is NeedStep.confirm:
        await _tell(
            session,
            need.id,
            cycle,
            "confirmed",
            [*taker, *handlers],
            "need.confirmed",
            params,
            besides=actor,
        )
    else:
        # Whoever had taken it hears that it is open again (the grid does by ``_route``).
        await _tell(session, need.id, cycle, "reopened", taker, "need.reopened", params, take=True)


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


# --- the sweep ----------------------------------------------------------------------------


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
        params = await _params(session, need, unit)
        await _tell(
            session, need.id, need.cycle, "cc", recipients, "need.opened", params, take=True
        )
        await _mark_routed(session, need.id)
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
        params = await _params(session, need, unit)
        params["hours"] = _hours(limits.of(need.kind))
        params["taken_by"] = need.taken_by_name or "—"
        above = await holders_at(session, [unit.zone_id] if unit.zone_id else [])
        await _tell(
            session,
            need.id,
            need.cycle,
            "overdue",
            above or recipients,
            "need.overdue",
            params,
            take=need.status == NeedStatus.open,
        )
        record(session, "need.escalated", None, need_id=need.id, cycle=need.cycle)
        await session.commit()
        moved += 1
    return moved


def _hours(limit: timedelta) -> int | float:
    hours = limit.total_seconds() / 3600
    return int(hours) if hours == int(hours) else round(hours, 1)


async def _params(session: AsyncSession, need: Need, unit: Node) -> dict[str, Param]:
    room = await session.scalar(select(Household.room).where(Household.id == need.household_id))
    return {
        "id": need.id,
        "kind": kind_param(need.kind),
        "path": unit.path,
        "room": room or "",
        "note": need.note or "—",
    }


# --- reading ----------------------------------------------------------------------------


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
