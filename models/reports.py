"""Household reports (入户摸排): who may report for a unit, what its households look like in
the round, and one household's report card. Saving lives in ``models.report_saving``.

A unit is reported by the holders of its lead and officer posts; when both posts are vacant,
by anyone holding a post above it (and the command centre), so that no unit drops out.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Scope
from models.audit import record
from models.base import as_utc, utcnow
from models.fixed_rows import fixed_row
from models.org import Household, Level, Node, Post, subtree
from models.refusals import Refused
from models.rounds import HouseholdReport, ReportRound, ReportStatus, is_open
from models.sqlite_driver import QUICK

# Ids from callback data are checked before they reach PostgreSQL, which refuses integers
# past int32 with an error rather than finding nothing.
LARGEST_ID = 2**31 - 1


@dataclass(frozen=True)
class Reporter:
    """Who is reporting: their Telegram id (for the audit), member record and scope."""

    telegram_id: int
    member_id: int | None
    scope: Scope


async def may_report(session: AsyncSession, scope: Scope, unit: Node) -> bool:
    if unit.level != Level.unit:
        return False
    if (unit.id, Level.unit.value) in scope.roots:
        return True
    return scope.sees(unit) and not await _has_holder(session, unit.id)


_HELD = select(exists().where(Post.node_id == bindparam("node_id"), Post.holder_id.is_not(None)))


async def _has_holder(session: AsyncSession, node_id: int) -> bool:
    return bool(await session.scalar(_HELD, {"node_id": node_id}))


@dataclass(frozen=True)
class UnitChoice:
    node_id: int
    path: str
    # A vacant unit reported from above.
    vacant: bool


async def reportable_units(
    session: AsyncSession, scope: Scope, limit: int = 30
) -> tuple[list[UnitChoice], bool]:
    """The units the member reports for: its own, then vacant units below its other posts
    (every vacant unit of the county for the command centre), by path; and whether there
    are more than ``limit``."""
    own_ids = sorted(node_id for node_id, level in scope.roots if level == Level.unit)
    # Nodes never change once written: remembered, not read again at every /report.
    own = [node for node_id in own_ids if (node := await fixed_row(session, Node, node_id))]
    choices = [
        UnitChoice(node.id, node.path, vacant=False)
        for node in sorted(own, key=lambda node: node.path)
    ]
    above = [subtree(node_id, level) for node_id, level in scope.roots if level != Level.unit]
    if scope.is_admin or above:
        held = exists().where(Post.node_id == Node.id, Post.holder_id.is_not(None))
        query = select(Node.id, Node.path).where(Node.level == Level.unit, ~held)
        if not scope.is_admin:
            query = query.where(or_(*above))
        rows = await session.execute(query.order_by(Node.path).limit(limit + 1))
        choices += [UnitChoice(node_id, path, vacant=True) for node_id, path in rows]
    return choices[:limit], len(choices) > limit


async def reportable_unit(session: AsyncSession, scope: Scope, unit_id: int) -> Node:
    """The unit, when the member may report for it; otherwise ``Refused`` that says the
    same whether or not it exists."""
    unit = await fixed_row(session, Node, unit_id) if 0 < unit_id <= LARGEST_ID else None
    if unit is None or not await may_report(session, scope, unit):
        raise Refused("reports.not_yours")
    return unit


async def round_for_button(
    session: AsyncSession, round_id: int, now: datetime | None = None
) -> ReportRound:
    """The round a button names, while it is open; ``Refused`` for a round that closed."""
    report_round = (
        await fixed_row(session, ReportRound, round_id) if 0 < round_id <= LARGEST_ID else None
    )
    if report_round is None:
        raise Refused("reports.not_yours")
    if not is_open(report_round, now or utcnow()):
        raise Refused("reports.round_closed", date=report_round.date.isoformat())
    return report_round


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    alerts: int

    @property
    def remaining(self) -> int:
        return self.total - self.done


# The statements of every report button: built once, their values bound at each execution;
# each reads a few rows by key, on the event loop on SQLite (``QUICK``).
_PROGRESS = (
    select(HouseholdReport.status, HouseholdReport.alert, func.count())
    .where(
        HouseholdReport.round_id == bindparam("round_id"),
        HouseholdReport.unit_id == bindparam("unit_id"),
    )
    .group_by(HouseholdReport.status, HouseholdReport.alert)
    .execution_options(**QUICK)
)
_SHEET = (
    select(
        HouseholdReport.household_id,
        Household.room,
        HouseholdReport.status,
        HouseholdReport.alert,
    )
    .join(Household, Household.id == HouseholdReport.household_id)
    .where(
        HouseholdReport.round_id == bindparam("round_id"),
        HouseholdReport.unit_id == bindparam("unit_id"),
    )
    .execution_options(**QUICK)
)
_TARGET = (
    select(HouseholdReport, ReportRound, Household, Node)
    .join(ReportRound, ReportRound.id == HouseholdReport.round_id)
    .join(Household, Household.id == HouseholdReport.household_id)
    .join(Node, Node.id == Household.unit_id)
    .where(HouseholdReport.round_id == bindparam("round_id"))
    .where(HouseholdReport.household_id == bindparam("household_id"))
    .execution_options(**QUICK)
)
# Each household's newest earlier report with answers, and only that one: a household has a
# report in every round its retention keeps (30 by default), each with its answers to decode.
# The newest round's date is found first, from the reports' status alone, then its one report.
_NEWEST = (
    select(HouseholdReport.household_id, func.max(ReportRound.date).label("date"))
    .join(ReportRound, ReportRound.id == HouseholdReport.round_id)
    .where(
        HouseholdReport.household_id.in_(bindparam("household_ids", expanding=True)),
        # Saved as reported exactly when it has answers (``report_saving``).
        HouseholdReport.status == ReportStatus.reported,
        ReportRound.date < bindparam("before"),
    )
    .group_by(HouseholdReport.household_id)
    .subquery("newest")
)
_LAST_ANSWERS = (
    select(HouseholdReport.household_id, HouseholdReport.answers, ReportRound.date)
    .select_from(_NEWEST)
    .join(ReportRound, ReportRound.date == _NEWEST.c.date)
    .join(
        HouseholdReport,
        (HouseholdReport.round_id == ReportRound.id)
        & (HouseholdReport.household_id == _NEWEST.c.household_id),
    )
    .execution_options(**QUICK)
)


async def unit_progress(session: AsyncSession, round_id: int, unit_id: int) -> Progress:
    rows = await session.execute(_PROGRESS, {"round_id": round_id, "unit_id": unit_id})
    done = total = alerts = 0
    for status, alert, count in rows:
        total += count
        if status != ReportStatus.missing:
            done += count
        if alert:
            alerts += count
    return Progress(done, total, alerts)


@dataclass(frozen=True)
class HouseholdLine:
    household_id: int
    room: str
    status: ReportStatus
    alert: bool


@dataclass(frozen=True)
class UnitSheet:
    """A unit's households in a round, with their marks: what ``/report`` lists."""

    round_id: int
    round_date: date
    due_at: datetime
    unit_id: int
    unit_path: str
    lines: list[HouseholdLine]
    progress: Progress


async def unit_sheet(
    session: AsyncSession, reporter: Reporter, round_id: int, unit_id: int
) -> UnitSheet:
    report_round = await round_for_button(session, round_id)
    unit = await reportable_unit(session, reporter.scope, unit_id)
    rows = await session.execute(_SHEET, {"round_id": round_id, "unit_id": unit.id})
    lines = sorted(
        (
            HouseholdLine(household_id, room, ReportStatus(status), alert)
            for household_id, room, status, alert in rows
        ),
        key=lambda line: room_order(line.room),
    )
    done = sum(1 for line in lines if line.status is not ReportStatus.missing)
    alerts = sum(1 for line in lines if line.alert)
    return UnitSheet(
        report_round.id,
        report_round.date,
        as_utc(report_round.due_at),
        unit.id,
        unit.path,
        lines,
        Progress(done, len(lines), alerts),
    )


def room_order(room: str) -> list[tuple[int, Any]]:
    """Rooms in the order of a building: 101, 102, 201 … 1001, numbers compared as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", room)]


@dataclass(frozen=True)
class HouseholdCard:
    """One household in the round, as the reporter sees it before choosing what to do."""

    round_id: int
    # The version of the form the round was opened with.
    form_version: str
    household_id: int
    unit_id: int
    unit_path: str
    room: str
    status: ReportStatus
    revision: int
    alert: bool
    # This round's answers once reported.
    answers: Mapping[str, Any] | None
    # The last answers of an earlier round ("no change since last report" copies them).
    last_answers: Mapping[str, Any] | None
    last_date: date | None
    # The household's attributes kept between rounds.
    attributes: Mapping[str, Any]


@dataclass(frozen=True)
class Target:
    """A household's report row in an open round, with what authorised it."""

    report: HouseholdReport
    report_round: ReportRound
    household: Household
    unit: Node


async def target(
    session: AsyncSession,
    reporter: Reporter,
    round_id: int,
    household_id: int,
    now: datetime | None = None,
) -> Target:
    """The household's report in the round, when the reporter may report for its unit and the
    round is open; ``Refused`` otherwise (the same words for a household that is not theirs
    and one that does not exist)."""
    if not (0 < household_id <= LARGEST_ID and 0 < round_id <= LARGEST_ID):
        raise Refused("reports.not_yours")
    row = (
        await session.execute(_TARGET, {"round_id": round_id, "household_id": household_id})
    ).first()
    if row is None or not await may_report(session, reporter.scope, row[3]):
        raise Refused("reports.not_yours")
    report, report_round, household, unit = row
    if not is_open(report_round, now or utcnow()):
        raise Refused("reports.round_closed", date=report_round.date.isoformat())
    return Target(report, report_round, household, unit)


async def household_card(
    session: AsyncSession,
    reporter: Reporter,
    round_id: int,
    household_id: int,
    now: datetime | None = None,
) -> HouseholdCard:
    """The household's report card; reading it is audited (household data is sensitive):
    the audit row is added to the session, and the caller commits it, with whatever else
    the update writes, before it shows the card."""
    found = await target(session, reporter, round_id, household_id, now)
    last = await last_answers(session, [household_id], found.report_round.date)
    last_answers_of, last_date = last.get(household_id, (None, None))
    report = found.report
    card = HouseholdCard(
        round_id=round_id,
        form_version=found.report_round.form_version,
        household_id=household_id,
        unit_id=found.unit.id,
        unit_path=found.unit.path,
        room=found.household.room,
        status=ReportStatus(report.status),
        revision=report.revision,
        alert=report.alert,
        answers=dict(report.answers) if report.answers is not None else None,
        last_answers=last_answers_of,
        last_date=last_date,
        attributes=dict(found.household.attributes or {}),
    )
    record(
        session,
        "report.viewed",
        reporter.telegram_id,
        round_id=round_id,
        household_id=household_id,
    )
    return card


async def last_answers(
    session: AsyncSession, household_ids: list[int], before: date
) -> dict[int, tuple[dict[str, Any], date]]:
    """Each household's answers of its latest report with answers in a round before
    ``before``, and that round's date."""
    if not household_ids:
        return {}
    rows = await session.execute(_LAST_ANSWERS, {"household_ids": household_ids, "before": before})
    return {household_id: (dict(answers), day) for household_id, answers, day in rows}


@dataclass(frozen=True)
class UnchangedPreview:
    """What "all remaining: no change" would do, to confirm before it does it."""

    sheet: UnitSheet
    # Households not yet reported that have an earlier report to copy.
    copyable: int
    # Rooms not yet reported with nothing to copy: they need the form.
    without_last: list[str]


async def unchanged_preview(
    session: AsyncSession, reporter: Reporter, round_id: int, unit_id: int
) -> UnchangedPreview:
    sheet = await unit_sheet(session, reporter, round_id, unit_id)
    remaining = [line for line in sheet.lines if line.status is ReportStatus.missing]
    last = await last_answers(session, [line.household_id for line in remaining], sheet.round_date)
    without = [line.room for line in remaining if line.household_id not in last]
    return UnchangedPreview(sheet, len(remaining) - len(without), without)
