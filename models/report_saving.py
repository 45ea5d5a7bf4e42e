"""Saving household reports: a filled-in form, "no change since last report" and "nobody
home" ("all remaining: no change" for a unit is ``models.unit_saving``).

A save names the revision of the report it read; the row is updated only if that is still
its revision, so a double tap or an update delivered twice saves once (on SQLite as on
PostgreSQL: the database refuses the second write, no lock needed). Whatever the saved
answers set off — alerts up the tree, needs, the "nobody home" flag — is written in the
same transaction as the report, so it is all there once the bot says "saved", or none of it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import raise_report_alerts
from models.audit import record
from models.base import utcnow
from models.forms import AlertMatch, Answer, Form, FormField, NeedRequest
from models.needs import open_report_needs
from models.notify import above_or_command_centre, tell
from models.org import Household
from models.refusals import Refused
from models.reports import (
    Progress,
    Reporter,
    Target,
    last_answers,
    target,
    unit_progress,
)
from models.rounds import HouseholdReport, ReportHow, ReportRound, ReportStatus, form_of
from models.sqlite_driver import QUICK


@dataclass(frozen=True)
class Consequences:
    """Settings a save needs beyond the report itself."""

    # "Nobody home" in this many rounds running is flagged to the building lead.
    nobody_home_flag_after: int
    # Telegram ids of the command centre: told when nobody above can be.
    command_centre: Sequence[int]


@dataclass(frozen=True)
class Saved:
    report_id: int
    unit_id: int
    room: str
    how: ReportHow
    progress: Progress
    alert_ids: list[int]
    need_ids: list[int]
    # The household was just flagged for being away too many rounds running.
    flagged: bool


async def save_report(
    session: AsyncSession,
    reporter: Reporter,
    consequences: Consequences,
    *,
    round_id: int,
    household_id: int,
    revision: int,
    how: ReportHow,
    answers: Mapping[str, object] | None = None,
    started_at: datetime | None = None,
    now: datetime | None = None,
) -> Saved:
    """Save the household's report of the round, or correct it. ``revision`` is the report's
    revision the reporter saw; a report saved since is ``Refused("reports.already_saved")``.
    Commits."""
    moment = now or utcnow()
    found = await target(session, reporter, round_id, household_id, moment)
    room = found.household.room
    if found.report.revision != revision:
        raise Refused("reports.already_saved", room=room)
    form = await form_of(session, found.report_round)
    if how is ReportHow.form:
        saved_answers: dict[str, Answer] | None = form.clean(answers or {})
    elif how is ReportHow.no_change:
        last = await last_answers(session, [household_id], found.report_round.date)
        saved_answers = (
            unchanged_answers(form, last[household_id][0], found.household)
            if household_id in last
            else None
        )
        if saved_answers is None:
            raise Refused("reports.no_last_report", room=room)
    else:
        how = ReportHow.nobody_home
        saved_answers = None
    saved = await _write(
        session,
        reporter,
        consequences,
        form,
        found,
        how,
        saved_answers,
        started_at,
        moment,
        revision,
    )
    if saved is None:
        await session.rollback()
        raise Refused("reports.already_saved", room=room)
    record(
        session,
        "report.saved",
        reporter.telegram_id,
        round_id=round_id,
        household_id=household_id,
        how=how.value,
    )
    await session.commit()
    alert_ids, need_ids, flagged = saved
    return Saved(
        found.report.id,
        found.unit.id,
        room,
        how,
        await unit_progress(session, round_id, found.unit.id),
        alert_ids,
        need_ids,
        flagged,
    )


def unchanged_answers(
    form: Form, last: Mapping[str, Any], household: Household
) -> dict[str, Answer] | None:
    """The last answers this form still takes, with the household's attributes as they are;
    None when they no longer make a whole report (the form has gained a question)."""
    answers = form.copied(last)
    answers.update(_attributes(form.household_fields(), household.attributes or {}))
    try:
        return form.clean(answers)
    except Refused:
        return None


def _attributes(fields: Sequence[FormField], values: Mapping[str, Any]) -> dict[str, Answer]:
    kept: dict[str, Answer] = {}
    for field in fields:
        value = values.get(field.id)
        if value is not None and field.accepts(value):
            kept[field.id] = list(value) if isinstance(value, list) else value
    return kept


# A report saved if still at the revision read: built once, its values bound at each
# execution. Every save runs it; "all remaining" runs it once for the unit's households, as
# one executemany. On the table, not the mapped class: an ORM update given a list of
# parameters would be the ORM's bulk update by primary key, not this statement.
_REPORTS = cast(Table, HouseholdReport.__table__)
SAVE_AT_REVISION = (
    update(_REPORTS)
    .where(
        _REPORTS.c.id == bindparam("report_id"),
        _REPORTS.c.revision == bindparam("read_revision"),
    )
    .values(
        status=bindparam("new_status", type_=_REPORTS.c.status.type),
        how=bindparam("new_how", type_=_REPORTS.c.how.type),
        answers=bindparam("new_answers", type_=_REPORTS.c.answers.type),
        form_version=bindparam("new_form_version", type_=_REPORTS.c.form_version.type),
        alert=bindparam("new_alert", type_=_REPORTS.c.alert.type),
        revision=_REPORTS.c.revision + 1,
        nobody_home_since=bindparam(
            "new_nobody_home_since", type_=_REPORTS.c.nobody_home_since.type
        ),
        reporter_member_id=bindparam(
            "new_reporter_member_id", type_=_REPORTS.c.reporter_member_id.type
        ),
        reported_at=bindparam("new_reported_at", type_=_REPORTS.c.reported_at.type),
        started_at=bindparam("new_started_at", type_=_REPORTS.c.started_at.type),
    )
)


def save_parameters(
    report_id: int,
    revision: int,
    how: ReportHow,
    answers: Mapping[str, object] | None,
    form: Form,
    alert: bool,
    reporter: Reporter,
    now: datetime,
    *,
    nobody_home_since: date | None = None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """One report's values for ``SAVE_AT_REVISION``: no answers is "nobody home"."""
    return {
        "report_id": report_id,
        "read_revision": revision,
        "new_status": ReportStatus.nobody_home if answers is None else ReportStatus.reported,
        "new_how": how.value,
        "new_answers": answers,
        "new_form_version": form.version,
        "new_alert": alert,
        "new_nobody_home_since": nobody_home_since,
        "new_reporter_member_id": reporter.member_id,
        "new_reported_at": now,
        "new_started_at": started_at,
    }


async def _write(
    session: AsyncSession,
    reporter: Reporter,
    consequences: Consequences,
    form: Form,
    found: Target,
    how: ReportHow,
    answers: dict[str, Answer] | None,
    started_at: datetime | None,
    now: datetime,
    revision: int,
) -> tuple[list[int], list[int], bool] | None:
    """The report row updated if still at the revision read, and what its answers set off;
    None when it was saved meanwhile. No commit."""
    report, household = found.report, found.household
    nobody_home_since = (
        await _streak_start(session, household.id, found.report_round)
        if how is ReportHow.nobody_home
        else None
    )
    matches = form.alert_matches(answers) if answers is not None else []
    result = await session.execute(
        SAVE_AT_REVISION,
        save_parameters(
            report.id,
            revision,
            how,
            answers,
            form,
            bool(matches),
            reporter,
            now,
            nobody_home_since=nobody_home_since,
            started_at=started_at,
        ),
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    if answers is not None and how is ReportHow.form:
        attributes = _attributes(form.household_fields(), answers)
        if attributes:
            household.attributes = {**(household.attributes or {}), **attributes}
    needs = form.needs_of(answers) if answers is not None else []
    alert_ids, need_ids = await set_off(session, reporter, consequences, found, matches, needs)
    flagged = False
    if nobody_home_since is not None:
        flagged = await _flag_if_away_too_long(session, consequences, found, nobody_home_since)
    return alert_ids, need_ids, flagged


async def set_off(
    session: AsyncSession,
    reporter: Reporter,
    consequences: Consequences,
    found: Target,
    matches: list[AlertMatch],
    needs: list[NeedRequest],
) -> tuple[list[int], list[int]]:
    """What a saved report's answers set off, in its transaction: the alerts its ``matches``
    raise and the needs it opens; their ids. No commit."""
    alert_ids: list[int] = []
    if matches:
        # One alert per report and field: a correction that still matches repeats none.
        alert_ids = await raise_report_alerts(
            session,
            report_id=found.report.id,
            household_id=found.household.id,
            unit_node_id=found.unit.id,
            reporter_member_id=reporter.member_id,
            matches=matches,
            command_centre=consequences.command_centre,
        )
    need_ids: list[int] = []
    if needs:
        # One ticket per report and kind: a correction opens only the kinds it adds.
        need_ids = await open_report_needs(
            session,
            report_id=found.report.id,
            household_id=found.household.id,
            unit_node_id=found.unit.id,
            reporter_member_id=reporter.member_id,
            needs=needs,
            command_centre=consequences.command_centre,
        )
    return alert_ids, need_ids


async def _streak_start(
    session: AsyncSession, household_id: int, report_round: ReportRound
) -> date:
    """The first round of the "nobody home" streak that a "nobody home" now continues: the
    streak of the household's report in the round before, or this round."""
    previous = (
        await session.execute(
            select(HouseholdReport.status, HouseholdReport.nobody_home_since, ReportRound.date)
            .join(ReportRound, ReportRound.id == HouseholdReport.round_id)
            .where(
                HouseholdReport.household_id == household_id, ReportRound.date < report_round.date
            )
            .order_by(ReportRound.date.desc())
            .limit(1)
            .execution_options(**QUICK)
        )
    ).first()
    if previous is not None and previous[0] == ReportStatus.nobody_home:
        return previous[1] or previous[2]
    return report_round.date


async def _flag_if_away_too_long(
    session: AsyncSession, consequences: Consequences, found: Target, since: date
) -> bool:
    """The building lead and officer (whoever stands above the unit) hear of a household
    nobody has found at home ``nobody_home_flag_after`` rounds running: once per streak."""
    rounds = await session.scalar(
        select(func.count())
        .select_from(HouseholdReport)
        .join(ReportRound, ReportRound.id == HouseholdReport.round_id)
        .where(
            HouseholdReport.household_id == found.household.id,
            HouseholdReport.status == ReportStatus.nobody_home,
            ReportRound.date >= since,
            ReportRound.date <= found.report_round.date,
        )
    )
    if rounds != consequences.nobody_home_flag_after:
        return False
    recipients = await above_or_command_centre(session, found.unit.id, consequences.command_centre)
    await tell(
        session,
        recipients,
        "reports.nobody_home_flag",
        {"unit": found.unit.path, "room": found.household.room, "rounds": int(rounds)},
        # A correction that says "nobody home" again flags this streak no second time.
        dedupe=f"nobody_home:{found.household.id}:{since.isoformat()}",
    )
    return True
