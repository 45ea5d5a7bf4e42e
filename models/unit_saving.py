""" "All remaining: no change": a unit's households not yet reported this round saved with
their last answers, by one executemany of the statement every save runs, in one transaction.

Each row is saved only if still at the revision read, as ``models.report_saving`` saves one:
a household another lead saved meanwhile keeps that lead's report. What each copy's answers
set off (a standing alert, a need) is raised in the same transaction.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Result, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.base import as_utc, utcnow
from models.forms import Answer, Form
from models.org import Household
from models.report_saving import (
    SAVE_AT_REVISION,
    Consequences,
    save_parameters,
    set_off,
    unchanged_answers,
)
from models.reports import (
    Progress,
    Reporter,
    Target,
    last_answers,
    reportable_unit,
    room_order,
    round_for_button,
    unit_progress,
)
from models.rounds import HouseholdReport, ReportHow, ReportStatus, form_of
from models.sqlite_driver import QUICK

# The unit's households not yet reported this round, with their reports: built once.
_REMAINING = (
    select(HouseholdReport, Household)
    .join(Household, Household.id == HouseholdReport.household_id)
    .where(
        HouseholdReport.round_id == bindparam("round_id"),
        HouseholdReport.unit_id == bindparam("unit_id"),
        HouseholdReport.status == ReportStatus.missing,
    )
    .execution_options(**QUICK)
)


@dataclass(frozen=True)
class UnitSaved:
    saved: int
    # Rooms with no earlier report to copy: they need the form.
    without_last: list[str]
    alert_ids: list[int]
    progress: Progress


async def save_unit_unchanged(
    session: AsyncSession,
    reporter: Reporter,
    consequences: Consequences,
    *,
    round_id: int,
    unit_id: int,
    now: datetime | None = None,
) -> UnitSaved:
    """ "All remaining: no change": every household of the unit not yet reported this round
    gets its last answers again, in one transaction. Households with no earlier report are
    left for the form. A second run finds none remaining and saves nothing. Commits."""
    moment = now or utcnow()
    report_round = await round_for_button(session, round_id, moment)
    unit = await reportable_unit(session, reporter.scope, unit_id)
    form = await form_of(session, report_round)
    rows = (await session.execute(_REMAINING, {"round_id": round_id, "unit_id": unit.id})).all()
    rows = sorted(rows, key=lambda row: room_order(row[1].room))
    last = await last_answers(session, [household.id for _, household in rows], report_round.date)
    without_last: list[str] = []
    copies: list[tuple[Target, dict[str, Answer]]] = []
    for report, household in rows:
        answers = (
            unchanged_answers(form, last[household.id][0], household)
            if household.id in last
            else None
        )
        if answers is None:
            without_last.append(household.room)
        else:
            copies.append((Target(report, report_round, household, unit), answers))
    saved, alert_ids = await _write_copies(session, reporter, consequences, form, copies, moment)
    if saved:
        record(
            session,
            "report.unit_unchanged",
            reporter.telegram_id,
            round_id=round_id,
            unit_id=unit_id,
            households=saved,
        )
    await session.commit()
    return UnitSaved(
        saved, without_last, alert_ids, await unit_progress(session, round_id, unit_id)
    )


async def _write_copies(
    session: AsyncSession,
    reporter: Reporter,
    consequences: Consequences,
    form: Form,
    copies: list[tuple[Target, dict[str, Answer]]],
    now: datetime,
) -> tuple[int, list[int]]:
    """A unit's households saved with their copied answers, each if still at the revision
    read (one saved meanwhile is left as it is), then what each saved one's answers set off;
    how many were saved, and the alerts raised. No commit."""
    if not copies:
        return 0, []
    matches = {found.report.id: form.alert_matches(answers) for found, answers in copies}
    result = await session.execute(
        SAVE_AT_REVISION,
        [
            save_parameters(
                found.report.id,
                found.report.revision,
                ReportHow.unit_no_change,
                answers,
                form,
                bool(matches[found.report.id]),
                reporter,
                now,
            )
            for found, answers in copies
        ],
    )
    saved_ids = await _saved(session, result, copies, reporter, now)
    alert_ids: list[int] = []
    for found, answers in copies:
        if found.report.id in saved_ids:
            needs = form.needs_of(answers)
            raised, _ = await set_off(
                session, reporter, consequences, found, matches[found.report.id], needs
            )
            alert_ids += raised
    return len(saved_ids), alert_ids


async def _saved(
    session: AsyncSession,
    result: Result[Any],
    copies: list[tuple[Target, dict[str, Answer]]],
    reporter: Reporter,
    now: datetime,
) -> set[int]:
    """The reports the executemany saved. Where the driver counts an executemany's rows
    (SQLite) and the count is all of them, all; otherwise (asyncpg does not count them, or
    another lead saved one meanwhile) each row is read back: saved here if it is now at the
    next revision, saved by this reporter at this moment."""
    ids = [found.report.id for found, _ in copies]
    counted = (await session.connection()).dialect.supports_sane_multi_rowcount
    if counted and getattr(result, "rowcount", -1) == len(ids):
        return set(ids)
    revisions = {found.report.id: found.report.revision for found, _ in copies}
    rows = await session.execute(
        select(
            HouseholdReport.id,
            HouseholdReport.revision,
            HouseholdReport.reporter_member_id,
            HouseholdReport.reported_at,
        )
        .where(HouseholdReport.id.in_(ids))
        .execution_options(**QUICK)
    )
    return {
        report_id
        for report_id, revision, member_id, reported_at in rows
        if revision == revisions[report_id] + 1
        and member_id == reporter.member_id
        and reported_at is not None
        and as_utc(reported_at) == as_utc(now)
    }
