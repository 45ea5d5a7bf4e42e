"""Needs (生活保障、看病就医): a need a household report asks for becomes a ticket for the grid
lead and its officer (the command centre while both are vacant), with a time limit per
kind. Someone takes it, resolves it with a note, and the unit's lead confirms or reopens
it; a ticket past its time limit climbs to the zone lead, once per opening.

Every change is re-authorised, audited, and tells the people concerned through the outbox
in its own transaction, under dedupe keys. Here: the table, opening tickets and telling
people of them; ``models.need_steps`` changes them, ``models.need_followup`` sweeps for the
late and the unrouted, ``models.need_views`` reads them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.audit import record
from models.base import Base, as_utc, utcnow
from models.chain import holders_at, private_addresses
from models.forms import NeedRequest
from models.messages import Action, ActionKind, Param, Term, Text
from models.org import Household, Member, Node
from models.outbox.table import URGENT_PRIORITY, OutgoingMessage, enqueue
from models.posts import Recipient

# Ahead of broadcasts, behind alerts.
NEED_PRIORITY = 5
NOTE_LENGTH = 500
NAME_LENGTH = 200
LARGEST_ID = 2**31 - 1
# The kinds the catalogs name; a form may add others, shown as the form spells them.
KNOWN_KINDS = ("medicine", "food", "doctor", "other")
# A sick resident cannot wait for the morning: these kinds' openings and escalations pass
# quiet hours as alerts do; the rest of a ticket's news (taken, resolved, confirmed) and
# other kinds wait.
URGENT_KINDS = frozenset({"doctor", "medicine"})


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

    def due_at(self, kind: str, opened_at: datetime) -> datetime:
        return as_utc(opened_at) + self.of(kind)


async def need_by_id(session: AsyncSession, need_id: int) -> Need | None:
    """The ticket, read afresh; an id from a button past int32 (which PostgreSQL refuses
    rather than finding nothing) is no ticket."""
    if not 0 < need_id <= LARGEST_ID:
        return None
    return await session.get(Need, need_id, populate_existing=True)


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
    handlers = await grid_handlers(session, unit)
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
        await tell_about(
            session,
            need_id,
            0,
            "open",
            recipients,
            "need.opened",
            params,
            take=True,
            urgent=request.kind in URGENT_KINDS,
        )
        if recipients:
            await mark_routed(session, need_id)
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


async def grid_handlers(session: AsyncSession, unit: Node) -> list[Recipient]:
    return await holders_at(session, [unit.grid_id] if unit.grid_id else [])


async def mark_routed(session: AsyncSession, need_id: int) -> None:
    await session.execute(
        update(Need).where(Need.id == need_id).values(routed_at=utcnow()),
        execution_options={"synchronize_session": False},
    )


async def tell_about(
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
    urgent: bool = False,
) -> int:
    """``key`` to each private chat among ``recipients``, once per need, opening and step;
    with the buttons that step offers its readers; ``urgent`` ones pass quiet hours."""
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
                priority=URGENT_PRIORITY if urgent else NEED_PRIORITY,
            )
        )
    return await enqueue(session, messages)


async def route(
    session: AsyncSession,
    need: Need,
    unit: Node,
    command_centre: Sequence[int],
    key: str,
    also: Sequence[Recipient] = (),
) -> None:
    """A (re)opening to the grid's lead and officer, or the command centre, with Take."""
    people = await grid_handlers(session, unit) or private_addresses(command_centre)
    people = [*people, *also]
    params = await need_params(session, need, unit)
    await tell_about(
        session,
        need.id,
        need.cycle,
        "open",
        people,
        key,
        params,
        take=True,
        urgent=need.kind in URGENT_KINDS,
    )
    if people:
        await mark_routed(session, need.id)


async def need_params(session: AsyncSession, need: Need, unit: Node) -> dict[str, Param]:
    room = await session.scalar(select(Household.room).where(Household.id == need.household_id))
    return {
        "id": need.id,
        "kind": kind_param(need.kind),
        "path": unit.path,
        "room": room or "",
        "note": need.note or "—",
    }
