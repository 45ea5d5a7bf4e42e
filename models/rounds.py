"""Reporting rounds: one a day (a date in the county's time zone), each with its opening, due
and closing instants and the form version it was opened with.

Opening a round freezes who is expected: one ``household_reports`` row per household, in
state ``missing``, which a report then fills in place. Progress, chasing and exports read
these rows; a household added during the round is expected from the next one.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, as_utc, utcnow
from models.db import dialect_insert
from models.form_parse import cached_form, form_from_stored
from models.forms import Form
from models.org import Household
from models.sqlite_driver import QUICK


class ReportForm(Base):
    """A version of the form definition, kept as long as a round uses it."""

    __tablename__ = "report_forms"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportRound(Base):
    __tablename__ = "report_rounds"
    __table_args__ = (UniqueConstraint("date", name="uq_report_rounds_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The round's day in the county's time zone.
    date: Mapped[date] = mapped_column(Date)
    opens_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    # Reports can be corrected until then.
    closes_at: Mapped[datetime] = mapped_column()
    form_version: Mapped[str] = mapped_column(ForeignKey("report_forms.version"))
    households_expected: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportStatus(StrEnum):
    missing = "missing"
    reported = "reported"
    nobody_home = "nobody_home"


class ReportHow(StrEnum):
    form = "form"
    no_change = "no_change"
    # "All remaining: no change" for a whole unit.
    unit_no_change = "unit_no_change"
    nobody_home = "nobody_home"


class HouseholdReport(Base):
    """One household's report in one round, updated in place until the round closes."""

    __tablename__ = "household_reports"
    __table_args__ = (
        UniqueConstraint("round_id", "household_id", name="uq_household_reports_round_household"),
        CheckConstraint("status IN ('missing', 'reported', 'nobody_home')", name="status"),
        Index("ix_household_reports_round_unit", "round_id", "unit_id"),
        Index("ix_household_reports_round_building", "round_id", "building_id"),
        Index("ix_household_reports_round_grid", "round_id", "grid_id"),
        Index("ix_household_reports_round_zone", "round_id", "zone_id"),
        # A household's reports by status and round: its last answers ("no change" copies
        # them) are read from this index alone, without the rows.
        Index("ix_household_reports_household_status_round", "household_id", "status", "round_id"),
        # The households still unreported, read by the ladder, /late and the console: a
        # small index however many have reported (queries name the status as a literal).
        Index(
            "ix_household_reports_missing",
            "round_id",
            "unit_id",
            "building_id",
            "grid_id",
            "zone_id",
            "household_id",
            sqlite_where=text("status = 'missing'"),
            postgresql_where=text("status = 'missing'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("report_rounds.id", ondelete="CASCADE"))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    # The household's ancestors, so that a subtree's reports are one indexed equality.
    zone_id: Mapped[int] = mapped_column(Integer)
    grid_id: Mapped[int] = mapped_column(Integer)
    building_id: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.missing)
    how: Mapped[str | None] = mapped_column(String(16))
    # Field id → answer, under the round's form version (household attributes included as
    # they stood when saved). None while missing and for "nobody home".
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    form_version: Mapped[str | None] = mapped_column(String(32))
    # The saved answers meet an alert rule.
    alert: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped by every save: a save names the revision it read, so a second tap saves nothing.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    # The first round of the "nobody home" streak this report continues.
    nobody_home_since: Mapped[date | None] = mapped_column(Date)
    reporter_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    reported_at: Mapped[datetime | None] = mapped_column()
    # When the reporter began filling in the form (quality checks: a form saved in seconds).
    started_at: Mapped[datetime | None] = mapped_column()


@dataclass(frozen=True)
class RoundSchedule:
    """When rounds open, fall due and close, in the county's time zone. A closing time not
    after the opening time lies on the next day; equal to it, the round stays open until
    the next one opens."""

    open_time: time
    due_time: time
    close_time: time
    timezone: str
    # A household "nobody home" in this many rounds running is flagged to the building.
    nobody_home_flag_after: int = 3
    retention_days: int = 30

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def instants(self, day: date) -> tuple[datetime, datetime, datetime]:
        """The round of ``day``: when it opens, falls due and closes (aware, UTC)."""
        opens = datetime.combine(day, self.open_time, tzinfo=self.zone)
        due = datetime.combine(day, self.due_time, tzinfo=self.zone)
        closes = datetime.combine(day, self.close_time, tzinfo=self.zone)
        if due <= opens:
            due += timedelta(days=1)
        if closes <= opens:
            closes += timedelta(days=1)
        return opens.astimezone(UTC), due.astimezone(UTC), closes.astimezone(UTC)

    def day_at(self, now: datetime) -> date | None:
        """The day whose round is open at ``now``, if any."""
        local = now.astimezone(self.zone).date()
        for day in (local, local - timedelta(days=1)):
            opens, _due, closes = self.instants(day)
            if opens <= now < closes:
                return day
        return None

    def next_opening(self, now: datetime) -> datetime:
        local = now.astimezone(self.zone).date()
        for day in (local, local + timedelta(days=1)):
            opens = self.instants(day)[0]
            if opens > now:
                return opens
        return self.instants(local + timedelta(days=2))[0]


def is_open(report_round: ReportRound, now: datetime) -> bool:
    return as_utc(report_round.opens_at) <= now < as_utc(report_round.closes_at)


# The round open at a moment: built once (every /report asks).
_OPEN_AT = (
    select(ReportRound)
    .where(ReportRound.opens_at <= bindparam("moment"), ReportRound.closes_at > bindparam("moment"))
    .order_by(ReportRound.opens_at.desc())
    .limit(1)
    .execution_options(**QUICK)
)


async def current_round(
    session: AsyncSession, schedule: RoundSchedule, form: Form, now: datetime | None = None
) -> ReportRound | None:
    """The round open at ``now``, opened on the spot when the schedule says one should be
    (the first to ask opens it; asking again changes nothing). None between rounds."""
    moment = now or utcnow()
    found = await session.scalar(_OPEN_AT, {"moment": moment})
    if found is not None:
        return found
    day = schedule.day_at(moment)
    if day is None:
        return None
    report_round = await open_round(session, schedule, form, day)
    return report_round if is_open(report_round, moment) else None


async def open_round(
    session: AsyncSession, schedule: RoundSchedule, form: Form, day: date
) -> ReportRound:
    """The round of ``day``, with every household of the county expected in it. Idempotent:
    when two callers race, the database keeps the first and the second reads it. Commits."""
    existing = await round_on(session, day)
    if existing is not None:
        return existing
    await _upsert_ignoring_conflict(
        session,
        ReportForm,
        {"version": form.version, "definition": dict(form.definition), "created_at": utcnow()},
        ["version"],
    )
    opens, due, closes = schedule.instants(day)
    created = await _upsert_ignoring_conflict(
        session,
        ReportRound,
        {
            "date": day,
            "opens_at": opens,
            "due_at": due,
            "closes_at": closes,
            "form_version": form.version,
            "households_expected": 0,
            "created_at": utcnow(),
        },
        ["date"],
    )
    report_round = await round_on(session, day)
    assert report_round is not None
    if created:
        await _expect_every_household(session, report_round)
    await session.commit()
    return report_round


async def _expect_every_household(session: AsyncSession, report_round: ReportRound) -> None:
    columns = ["round_id", "household_id", "zone_id", "grid_id", "building_id", "unit_id"]
    rows = select(
        literal(report_round.id),
        Household.id,
        Household.zone_id,
        Household.grid_id,
        Household.building_id,
        Household.unit_id,
    )
    await session.execute(
        # The columns left out take their scalar defaults: missing, revision 0, no alert.
        insert(HouseholdReport).from_select(columns, rows)
    )
    report_round.households_expected = int(
        await session.scalar(
            select(func.count())
            .select_from(HouseholdReport)
            .where(HouseholdReport.round_id == report_round.id)
        )
        or 0
    )


async def _upsert_ignoring_conflict(
    session: AsyncSession, table: type[Base], values: Mapping[str, Any], keys: list[str]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; whether the row was inserted."""
    dialect = session.get_bind().dialect.name
    builder = dialect_insert(dialect)
    statement = builder(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def round_on(session: AsyncSession, day: date) -> ReportRound | None:
    return await session.scalar(select(ReportRound).where(ReportRound.date == day))


async def latest_round_dates(session: AsyncSession, limit: int = 5) -> list[date]:
    """The dates of the newest rounds kept, newest first."""
    return list(
        await session.scalars(
            select(ReportRound.date).order_by(ReportRound.date.desc()).limit(limit)
        )
    )


async def form_of(session: AsyncSession, report_round: ReportRound) -> Form:
    """The form the round was opened with."""
    return await form_by_version(session, report_round.form_version)


async def form_of_round_id(session: AsyncSession, round_id: int) -> Form:
    version = await session.scalar(
        select(ReportRound.form_version).where(ReportRound.id == round_id)
    )
    if version is None:
        raise LookupError(f"no round {round_id}")
    return await form_by_version(session, version)


async def form_by_version(session: AsyncSession, version: str) -> Form:
    cached = cached_form(version)
    if cached is not None:
        return cached
    definition = await session.scalar(
        select(ReportForm.definition).where(ReportForm.version == version)
    )
    if definition is None:
        raise LookupError(f"form version {version} is not stored")
    return form_from_stored(definition)


async def previous_round(session: AsyncSession, report_round: ReportRound) -> ReportRound | None:
    return await session.scalar(
        select(ReportRound)
        .where(ReportRound.date < report_round.date)
        .order_by(ReportRound.date.desc())
        .limit(1)
    )


async def purge_rounds_older_than(
    session: AsyncSession, retention_days: int, now: datetime | None = None
) -> int:
    """Forget the reports of rounds that closed more than ``retention_days`` ago, with the
    rounds themselves and the form versions no round uses any more; returns how many
    reports went. Commits."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    old = select(ReportRound.id).where(ReportRound.closes_at < cutoff)
    # Plain SQL deletes: SQLite hands back naive datetimes, which Python cannot compare with
    # the cutoff to update objects already loaded.
    plain = {"synchronize_session": False}
    result = await session.execute(
        delete(HouseholdReport).where(HouseholdReport.round_id.in_(old)),
        execution_options=plain,
    )
    await session.execute(
        delete(ReportRound).where(ReportRound.closes_at < cutoff), execution_options=plain
    )
    await session.execute(
        delete(ReportForm).where(ReportForm.version.not_in(select(ReportRound.form_version))),
        execution_options=plain,
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
