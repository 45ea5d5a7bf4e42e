""" "All remaining: no change": a unit's households not yet reported this round saved with
their last answers, in one statement and one transaction.

Each row is saved only if still at the revision read, as ``models.report_saving`` saves one:
a household another lead saved meanwhile keeps that lead's report. What each copy's answers
set off (a standing alert, a need) is raised in the same transaction.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import record
from models.base import utcnow
from models.forms import Answer, Form
from models.org import Household
from models.report_saving import Consequences, set_off, unchanged_answers
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
    rows = (
        await session.execute(
            select(HouseholdReport, Household)
            .join(Household, Household.id == HouseholdReport.household_id)
            .where(
                HouseholdReport.round_id == round_id,
                HouseholdReport.unit_id == unit.id,
                HouseholdReport.status == ReportStatus.missing,
            )
            .execution_options(**QUICK)
        )
    ).all()
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
    """A unit's households saved with their copied answers by one statement, each if still
    at the revision read (one saved meanwhile is left as it is), then what each saved one's
    answers set off; how many were saved, and the alerts raised. No commit."""
    if not copies:
        return 0, []
    matches = {found.report.id: form.alert_matches(answers) for found, answers in copies}
    answers_type = HouseholdReport.answers.type
    saved_ids = set(
        await session.scalars(
            update(HouseholdReport)
            .where(
                # By primary key (a pair of columns IN a list is a table scan on SQLite),
                # each row at the revision read.
                HouseholdReport.id.in_([found.report.id for found, _ in copies]),
                HouseholdReport.revision
                == case(
                    {found.report.id: found.report.revision for found, _ in copies},
                    value=HouseholdReport.id,
                ),
            )
            .values(
                status=ReportStatus.reported,
                how=ReportHow.unit_no_change,
                answers=case(
                    {found.report.id: literal(answers, answers_type) for found, answers in copies},
                    value=HouseholdReport.id,
                ),
                form_version=form.version,
                alert=case(
                    {report_id: literal(bool(met)) for report_id, met in matches.items()},
                    value=HouseholdReport.id,
                ),
                revision=HouseholdReport.revision + 1,
                nobody_home_since=None,
                reporter_member_id=reporter.member_id,
                reported_at=now,
                started_at=None,
            )
            .returning(HouseholdReport.id)
            .execution_options(synchronize_session=False)
        )
    )
    alert_ids: list[int] = []
    for found, answers in copies:
        if found.report.id in saved_ids:
            needs = form.needs_of(answers)
            raised, _ = await set_off(
                session, reporter, consequences, found, matches[found.report.id], needs
            )
            alert_ids += raised
    return len(saved_ids), alert_ids
