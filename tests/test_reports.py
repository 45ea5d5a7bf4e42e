"""Rounds and household reports in the domain: opening, saving once, "no change", the
"nobody home" streak, correction until the round closes, and the purge."""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config, ConfigError, load_config
from bot.forms import DEFAULT_FORM_PATH, consequences, round_schedule
from models import unit_saving
from models.access import scope_of
from models.base import utcnow
from models.form_parse import load_form
from models.forms import Form
from models.org import Household, Member, Node
from models.outbox.table import OutboxMessage
from models.posts import bind, node_by_path, post_at
from models.refusals import Refused
from models.report_saving import Consequences, save_report
from models.reports import (
    _LAST_ANSWERS,
    Reporter,
    household_card,
    last_answers,
    reportable_units,
    unit_sheet,
)
from models.roster import RosterSource, import_roster
from models.rounds import (
    HouseholdReport,
    ReportHow,
    ReportRound,
    ReportStatus,
    RoundSchedule,
    current_round,
    form_of,
    open_round,
    purge_rounds_older_than,
)
from models.system import AuditEntry
from models.unit_saving import save_unit_unchanged

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
UNIT = "县卫健局片区/阳光小区/1号楼/1单元"
OTHER_UNIT = "县卫健局片区/阳光小区/1号楼/2单元"
BUILDING = "县卫健局片区/阳光小区/1号楼"
SCHEDULE = RoundSchedule(time(7), time(10), time(7), "Asia/Shanghai", nobody_home_flag_after=3)
SETTINGS = Consequences(nobody_home_flag_after=3, command_centre=(900_001,))
CALM = {
    "people_at_home": 3,
    "symptoms": 0,
    "test_status": "negative",
    "isolation": "none",
    "vulnerable": ["aged_80_plus"],
    "needs": [],
    "note": "一切正常",
}


@pytest.fixture
def form() -> Form:
    return load_form(DEFAULT_FORM_PATH)


async def county(session: AsyncSession) -> None:
    await import_roster(
        session, [RosterSource("households.csv", (EXAMPLES / "households.csv").read_bytes())]
    )


async def seat(session: AsyncSession, path: str, role: str, telegram_id: int) -> Member:
    member = Member(telegram_id=telegram_id, name=f"成员{telegram_id}", reachable=True)
    session.add(member)
    await session.flush()
    node = await node_by_path(session, path)
    assert node is not None
    post = await post_at(session, node.id, role)
    assert post is not None
    await bind(session, post, member, None, how="test")
    await session.commit()
    return member


async def reporter_for(session: AsyncSession, member: Member) -> Reporter:
    scope = await scope_of(session, member.telegram_id, [])
    return Reporter(member.telegram_id, member.id, scope)


async def households_of(session: AsyncSession, path: str) -> list[Household]:
    unit = await node_by_path(session, path)
    assert unit is not None
    return list(
        await session.scalars(
            select(Household).where(Household.unit_id == unit.id).order_by(Household.room)
        )
    )


def inside(report_round: ReportRound) -> datetime:
    """A moment while the round is open."""
    return report_round.opens_at.replace(tzinfo=UTC) + timedelta(hours=1)


async def report_row(session: AsyncSession, round_id: int, household_id: int) -> HouseholdReport:
    row = await session.scalar(
        select(HouseholdReport)
        .where(HouseholdReport.round_id == round_id, HouseholdReport.household_id == household_id)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


# --- the schedule -------------------------------------------------------------------------


def test_a_day_round_runs_from_opening_to_the_next_opening() -> None:
    opens, due, closes = SCHEDULE.instants(date(2026, 3, 2))
    assert opens == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # 07:00 in Xining
    assert due == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert closes == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    # 06:59 local still belongs to yesterday's round.
    assert SCHEDULE.day_at(datetime(2026, 3, 2, 22, 59, tzinfo=UTC)) == date(2026, 3, 2)
    assert SCHEDULE.day_at(datetime(2026, 3, 2, 23, 0, tzinfo=UTC)) == date(2026, 3, 3)


def test_a_round_that_closes_in_the_evening_leaves_the_night_without_a_round() -> None:
    schedule = RoundSchedule(time(7), time(10), time(20), "Asia/Shanghai")
    night = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)  # 21:30 local
    assert schedule.day_at(night) is None
    assert schedule.next_opening(night) == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)


def test_the_config_refuses_a_due_time_outside_the_round(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[reports]\nopen_time = "07:00"\nclose_time = "12:00"\ndue_time = "13:00"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"'reports\.due_time'"):
        load_config(path, environ={})
    path.write_text('[reports]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'reports\.timezone'.*unknown time zone"):
        load_config(path, environ={})
    path.write_text('[reports]\ndue_time = "25:00"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'reports\.due_time'"):
        load_config(path, environ={})


def test_the_round_time_zone_is_the_countys_by_default() -> None:
    config = Config()
    config.i18n.timezone = "Asia/Urumqi"
    assert round_schedule(config).timezone == "Asia/Urumqi"
    config.reports.timezone = "Asia/Shanghai"
    assert round_schedule(config).timezone == "Asia/Shanghai"
    assert consequences(config).nobody_home_flag_after == 3


# --- opening ------------------------------------------------------------------------------


async def test_a_round_opens_once_and_freezes_who_is_expected(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    day = date(2026, 3, 2)
    first = await open_round(session, SCHEDULE, form, day)
    again = await open_round(session, SCHEDULE, form, day)
    assert first.id == again.id
    assert first.households_expected == 40
    rows = await session.scalar(select(func.count()).select_from(HouseholdReport))
    assert rows == 40
    # A household added during the round is expected from the next one.
    unit = await node_by_path(session, UNIT)
    assert unit is not None and unit.zone_id and unit.grid_id and unit.building_id
    session.add(
        Household(
            unit_id=unit.id,
            room="301",
            zone_id=unit.zone_id,
            grid_id=unit.grid_id,
            building_id=unit.building_id,
        )
    )
    await session.commit()
    during = await current_round(session, SCHEDULE, form, inside(first))
    assert during is not None and during.id == first.id
    assert await session.scalar(select(func.count()).select_from(HouseholdReport)) == 40
    following = await current_round(session, SCHEDULE, form, inside(first) + timedelta(days=1))
    assert following is not None and following.date == day + timedelta(days=1)
    assert following.households_expected == 41


async def test_a_changed_form_applies_from_the_next_round(
    session: AsyncSession, form: Form, tmp_path: Path
) -> None:
    await county(session)
    today = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
    changed_path = tmp_path / "form.toml"
    changed_path.write_text(
        DEFAULT_FORM_PATH.read_text(encoding="utf-8").replace("max = 30", "max = 60", 1),
        encoding="utf-8",
    )
    changed = load_form(changed_path)
    # The bot restarts with the changed file in the middle of the round.
    same = await current_round(session, SCHEDULE, changed, inside(today))
    assert same is not None and same.form_version == form.version
    field = (await form_of(session, same)).field("people_at_home")
    assert field is not None and field.maximum == 30
    tomorrow = await current_round(session, SCHEDULE, changed, inside(today) + timedelta(days=1))
    assert tomorrow is not None and tomorrow.form_version == changed.version
    field = (await form_of(session, tomorrow)).field("people_at_home")
    assert field is not None and field.maximum == 60


# --- saving -------------------------------------------------------------------------------


async def test_a_report_saves_once_however_often_it_is_sent(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    lead = await seat(session, UNIT, "lead", 5001)
    reporter = await reporter_for(session, lead)
    report_round = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
    household = (await households_of(session, UNIT))[0]
    saved = await save_report(
        session,
        reporter,
        SETTINGS,
        round_id=report_round.id,
        household_id=household.id,
        revision=0,
        how=ReportHow.form,
        answers=CALM,
        now=inside(report_round),
    )
    assert (saved.progress.done, saved.progress.total) == (1, 4)
    with pytest.raises(Refused) as refused:
        await save_report(
            session,
            reporter,
            SETTINGS,
            round_id=report_round.id,
            household_id=household.id,
            revision=0,
            how=ReportHow.form,
            answers={**CALM, "people_at_home": 4},
            now=inside(report_round),
        )
    assert refused.value.key == "reports.already_saved"
    row = await report_row(session, report_round.id, household.id)
    assert row.revision == 1 and row.answers and row.answers["people_at_home"] == 3
    assert row.form_version == form.version and row.status == ReportStatus.reported
    saves = await session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "report.saved")
    )
    assert saves == 1
    # The household's attributes are kept between rounds.
    await session.refresh(household)
    assert household.attributes == {"vulnerable": ["aged_80_plus"]}


async def test_a_correction_until_the_round_closes_and_none_after(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "officer", 5002))
    report_round = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
    household = (await households_of(session, UNIT))[1]
    common = {"round_id": report_round.id, "household_id": household.id}
    after_close = report_round.closes_at.replace(tzinfo=UTC) + timedelta(minutes=1)
    await save_report(
        session, reporter, SETTINGS, **common, revision=0, how=ReportHow.nobody_home,
        now=inside(report_round),
    )  # fmt: skip
    corrected = await save_report(
        session, reporter, SETTINGS, **common, revision=1, how=ReportHow.form, answers=CALM,
        now=inside(report_round),
    )  # fmt: skip
    assert corrected.progress.done == 1
    row = await report_row(session, report_round.id, household.id)
    assert row.status == ReportStatus.reported and row.revision == 2
    with pytest.raises(Refused) as refused:
        await save_report(
            session, reporter, SETTINGS, **common, revision=2, how=ReportHow.nobody_home,
            now=after_close,
        )  # fmt: skip
    assert refused.value.key == "reports.round_closed"
    assert refused.value.params == {"date": "2026-03-02"}


async def test_a_household_of_another_unit_is_refused_like_one_that_does_not_exist(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "lead", 5001))
    await seat(session, OTHER_UNIT, "lead", 5003)
    report_round = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
    other = (await households_of(session, OTHER_UNIT))[0]
    for household_id in (other.id, 999_999, 2**40):
        with pytest.raises(Refused) as refused:
            await household_card(
                session, reporter, report_round.id, household_id, inside(report_round)
            )
        assert refused.value.key == "reports.not_yours"
    other_unit = await node_by_path(session, OTHER_UNIT)
    assert other_unit is not None
    with pytest.raises(Refused):
        await save_unit_unchanged(
            session,
            reporter,
            SETTINGS,
            round_id=report_round.id,
            unit_id=other_unit.id,
            now=inside(report_round),
        )


async def test_a_lead_above_reports_only_for_vacant_units(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    building_lead = await seat(session, BUILDING, "lead", 5004)
    await seat(session, OTHER_UNIT, "officer", 5005)  # 2单元 has someone; 1单元 is vacant
    reporter = await reporter_for(session, building_lead)
    units, more = await reportable_units(session, reporter.scope)
    assert [unit.path for unit in units] == [UNIT] and not more
    report_round = await current_round(session, SCHEDULE, form)
    assert report_round is not None
    unit = await node_by_path(session, UNIT)
    other = await node_by_path(session, OTHER_UNIT)
    assert unit is not None and other is not None
    sheet = await unit_sheet(session, reporter, report_round.id, unit.id)
    assert [line.room for line in sheet.lines] == ["101", "102", "201", "202"]
    with pytest.raises(Refused):
        await unit_sheet(session, reporter, report_round.id, other.id)


async def test_no_change_copies_the_last_answers_but_asks_needs_anew(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "lead", 5001))
    yesterday = await open_round(session, SCHEDULE, form, date(2026, 3, 1))
    today = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
    first, second, *_rest = await households_of(session, UNIT)
    with pytest.raises(Refused) as refused:
        await save_report(
            session, reporter, SETTINGS, round_id=yesterday.id, household_id=first.id,
            revision=0, how=ReportHow.no_change, now=inside(yesterday),
        )  # fmt: skip
    assert refused.value.key == "reports.no_last_report"
    await save_report(
        session, reporter, SETTINGS, round_id=yesterday.id, household_id=first.id, revision=0,
        how=ReportHow.form, answers={**CALM, "needs": ["food"]}, now=inside(yesterday),
    )  # fmt: skip
    await save_report(
        session, reporter, SETTINGS, round_id=today.id, household_id=first.id, revision=0,
        how=ReportHow.no_change, now=inside(today),
    )  # fmt: skip
    row = await report_row(session, today.id, first.id)
    assert row.how == ReportHow.no_change
    assert row.answers == {
        "people_at_home": 3,
        "symptoms": 0,
        "test_status": "negative",
        "isolation": "none",
        "vulnerable": ["aged_80_plus"],
        "needs": [],
    }

    # All remaining: the second household has no earlier report and is left for the form.
    unit = await node_by_path(session, UNIT)
    assert unit is not None
    outcome = await save_unit_unchanged(
        session, reporter, SETTINGS, round_id=today.id, unit_id=unit.id, now=inside(today)
    )
    assert outcome.saved == 0 and outcome.without_last == ["102", "201", "202"]
    await save_report(
        session, reporter, SETTINGS, round_id=yesterday.id, household_id=second.id,
        revision=0, how=ReportHow.form, answers=CALM, now=inside(yesterday),
    )  # fmt: skip
    outcome = await save_unit_unchanged(
        session, reporter, SETTINGS, round_id=today.id, unit_id=unit.id, now=inside(today)
    )
    assert outcome.saved == 1 and outcome.without_last == ["201", "202"]
    assert (outcome.progress.done, outcome.progress.total) == (2, 4)
    again = await save_unit_unchanged(
        session, reporter, SETTINGS, round_id=today.id, unit_id=unit.id, now=inside(today)
    )
    assert again.saved == 0
    row = await report_row(session, today.id, second.id)
    assert row.how == ReportHow.unit_no_change and row.revision == 1


async def test_the_last_answers_are_the_newest_earlier_reports_one_row_a_household(
    session: AsyncSession, form: Form
) -> None:
    """Of many earlier rounds, a household's last answers are those of its newest report
    with answers ("nobody home" has none) before the round asked about; the statement
    returns that one row per household, not one per round kept."""
    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "lead", 5001))
    first, second, third, *_rest = await households_of(session, UNIT)
    rounds = [await open_round(session, SCHEDULE, form, date(2026, 3, day)) for day in (1, 2, 3, 4)]
    for day, report_round in enumerate(rounds[:3], start=1):
        for household in (first, second):
            nobody_home = household is second and day == 3
            await save_report(
                session, reporter, SETTINGS, round_id=report_round.id,
                household_id=household.id, revision=0,
                how=ReportHow.nobody_home if nobody_home else ReportHow.form,
                answers=None if nobody_home else {**CALM, "people_at_home": day},
                now=inside(report_round),
            )  # fmt: skip
    households = [first.id, second.id, third.id]
    last = await last_answers(session, households, rounds[3].date)
    assert {
        household: (answers["people_at_home"], day) for household, (answers, day) in last.items()
    } == {
        first.id: (3, date(2026, 3, 3)),
        second.id: (2, date(2026, 3, 2)),
    }
    # Before the third round, the second's.
    before_third = await last_answers(session, households, rounds[2].date)
    assert {household: day for household, (_answers, day) in before_third.items()} == {
        first.id: date(2026, 3, 2),
        second.id: date(2026, 3, 2),
    }
    rows = await session.execute(
        _LAST_ANSWERS, {"household_ids": households, "before": rounds[3].date}
    )
    assert len(rows.all()) == 2


# --- nobody home --------------------------------------------------------------------------


async def flags(session: AsyncSession) -> list[OutboxMessage]:
    return list(
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.source == "reports.nobody_home_flag")
        )
    )


async def test_nobody_home_three_rounds_running_is_flagged_once_per_streak(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "lead", 5001))
    building_lead = await seat(session, BUILDING, "lead", 5004)
    building_officer = await seat(session, BUILDING, "officer", 5006)
    household = (await households_of(session, UNIT))[2]
    start = date(2026, 3, 1)

    async def report(day: int, how: ReportHow, revision: int = 0) -> bool:
        report_round = await open_round(session, SCHEDULE, form, start + timedelta(days=day))
        saved = await save_report(
            session, reporter, SETTINGS, round_id=report_round.id, household_id=household.id,
            revision=revision, how=how, answers=CALM, now=inside(report_round),
        )  # fmt: skip
        return saved.flagged

    assert not await report(0, ReportHow.nobody_home)
    assert not await report(1, ReportHow.nobody_home)
    assert await report(2, ReportHow.nobody_home)
    told = await flags(session)
    assert {message.chat_id for message in told} == {
        building_lead.telegram_id,
        building_officer.telegram_id,
    }
    assert told[0].payload["params"]["unit"] == UNIT
    assert told[0].payload["params"]["room"] == "201"
    assert told[0].payload["params"]["rounds"] == 3
    # A correction that says "nobody home" again, and a fourth round, tell nobody again.
    assert not await report(2, ReportHow.form, revision=1)
    assert await report(2, ReportHow.nobody_home, revision=2)
    assert not await report(3, ReportHow.nobody_home)
    assert len(await flags(session)) == 2
    # Someone is home: the streak ends, and a new one of three is flagged again.
    assert not await report(4, ReportHow.form)
    assert not await report(5, ReportHow.nobody_home)
    assert not await report(6, ReportHow.nobody_home)
    assert await report(7, ReportHow.nobody_home)
    assert len(await flags(session)) == 4


async def test_a_flag_goes_to_the_command_centre_when_the_building_is_vacant(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "lead", 5001))
    household = (await households_of(session, UNIT))[0]
    settings = Consequences(nobody_home_flag_after=1, command_centre=(900_001,))
    report_round = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
    saved = await save_report(
        session, reporter, settings, round_id=report_round.id, household_id=household.id,
        revision=0, how=ReportHow.nobody_home, now=inside(report_round),
    )  # fmt: skip
    assert saved.flagged
    assert [message.chat_id for message in await flags(session)] == [900_001]


# --- retention ----------------------------------------------------------------------------


async def test_reports_older_than_the_retention_are_purged(
    session: AsyncSession, form: Form
) -> None:
    await county(session)
    old = (await open_round(session, SCHEDULE, form, date(2026, 1, 1))).id
    recent = (await open_round(session, SCHEDULE, form, date(2026, 3, 1))).id
    purged = await purge_rounds_older_than(session, 30, now=datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert purged == 40
    session.expire_all()
    assert await session.get(ReportRound, old) is None
    assert await session.get(ReportRound, recent) is not None
    remaining = await session.scalar(select(func.count()).select_from(HouseholdReport))
    assert remaining == 40
    assert await session.scalar(select(func.count()).select_from(Node)) > 0


# --- alerts and needs, in the saving transaction --------------------------------------------


async def test_a_saved_report_raises_its_alerts_and_needs_in_the_same_transaction(
    session: AsyncSession, form: Form, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.alerts import Alert
    from models.needs import Need

    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "lead", 5001))
    building_lead = await seat(session, BUILDING, "lead", 5004)
    grid_lead = await seat(session, "县卫健局片区/阳光小区", "lead", 5007)
    report_round = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
    first, second, *_ = await households_of(session, UNIT)
    round_id, second_id = report_round.id, second.id
    feverish = {**CALM, "symptoms": 2, "needs": ["medicine"]}
    saved = await save_report(
        session, reporter, SETTINGS, round_id=report_round.id, household_id=first.id,
        revision=0, how=ReportHow.form, answers=feverish, now=inside(report_round),
    )  # fmt: skip
    assert len(saved.alert_ids) == 1 and len(saved.need_ids) == 1
    assert saved.progress.alerts == 1
    alert = await session.get(Alert, saved.alert_ids[0])
    assert alert is not None and alert.report_id == saved.report_id
    assert (alert.rule_field, alert.answer, alert.severity) == ("symptoms", 2, "high")
    need = await session.get(Need, saved.need_ids[0])
    assert need is not None and need.kind == "medicine" and need.report_id == saved.report_id
    told = {
        message.chat_id
        for message in await session.scalars(select(OutboxMessage))
        if message.source.startswith("alert:")
    }
    assert {building_lead.telegram_id, grid_lead.telegram_id} <= told

    # A correction repeats no alert and opens only the need it adds.
    corrected = await save_report(
        session, reporter, SETTINGS, round_id=report_round.id, household_id=first.id,
        revision=1, how=ReportHow.form, answers={**feverish, "symptoms": 3,
        "needs": ["medicine", "food"]}, now=inside(report_round),
    )  # fmt: skip
    assert corrected.alert_ids == [] and len(corrected.need_ids) == 1
    assert await session.scalar(select(func.count()).select_from(Alert)) == 1
    assert await session.scalar(select(func.count()).select_from(Need)) == 2

    # When raising the alert fails, the report is not saved either: one transaction.
    async def broken(*args: object, **kwargs: object) -> list[int]:
        raise RuntimeError("the alerts table is unavailable")

    monkeypatch.setattr("models.report_saving.raise_report_alerts", broken)
    with pytest.raises(RuntimeError):
        await save_report(
            session, reporter, SETTINGS, round_id=report_round.id, household_id=second.id,
            revision=0, how=ReportHow.form, answers=feverish, now=inside(report_round),
        )  # fmt: skip
    await session.rollback()
    row = await report_row(session, round_id, second_id)
    assert row.status == ReportStatus.missing and row.revision == 0
    assert await session.scalar(select(func.count()).select_from(Need)) == 2


async def test_no_change_repeats_a_standing_alert_but_asks_no_need_again(
    session: AsyncSession, form: Form
) -> None:
    from models.alerts import Alert
    from models.needs import Need

    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "lead", 5001))
    yesterday = await open_round(session, SCHEDULE, form, date(2026, 3, 1))
    today = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
    household = (await households_of(session, UNIT))[0]
    positive = {**CALM, "test_status": "positive", "needs": ["doctor"]}
    await save_report(
        session, reporter, SETTINGS, round_id=yesterday.id, household_id=household.id,
        revision=0, how=ReportHow.form, answers=positive, now=inside(yesterday),
    )  # fmt: skip
    unit = await node_by_path(session, UNIT)
    assert unit is not None
    outcome = await save_unit_unchanged(
        session, reporter, SETTINGS, round_id=today.id, unit_id=unit.id, now=inside(today)
    )
    assert outcome.saved == 1 and len(outcome.alert_ids) == 1
    assert await session.scalar(select(func.count()).select_from(Alert)) == 2
    assert await session.scalar(select(func.count()).select_from(Need)) == 1


async def test_all_remaining_saves_each_household_its_own_copy_and_skips_one_saved_meanwhile(
    session_factory: async_sessionmaker[AsyncSession],
    form: Form,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "All remaining" writes the unit's households in one executemany: each gets its own last
    answers and its own alert mark; a household another lead saved between the read of the
    unit and the write keeps that lead's report."""
    async with session_factory() as session:
        await county(session)
        lead = await seat(session, UNIT, "lead", 5001)
        officer = await seat(session, UNIT, "officer", 5002)
        reporter = await reporter_for(session, lead)
        yesterday = await open_round(session, SCHEDULE, form, date(2026, 3, 1))
        today = await open_round(session, SCHEDULE, form, date(2026, 3, 2))
        first, second, third, fourth = await households_of(session, UNIT)
        for people, household in enumerate((first, second, third, fourth), start=1):
            answers = {**CALM, "people_at_home": people}
            if household is second:
                answers["test_status"] = "positive"  # an alert rule
            await save_report(
                session, reporter, SETTINGS, round_id=yesterday.id,
                household_id=household.id, revision=0, how=ReportHow.form,
                answers=answers, now=inside(yesterday),
            )  # fmt: skip
        unit = await node_by_path(session, UNIT)
        assert unit is not None
        unit_id, today_id = unit.id, today.id
        ids = [household.id for household in (first, second, third, fourth)]

    # Another lead saves the fourth household after the unit was read, before the write.
    real_last_answers = unit_saving.last_answers

    async def meanwhile(*args: Any, **kwargs: Any) -> Any:
        async with session_factory() as other:
            other_reporter = await reporter_for(other, officer)
            await save_report(
                other, other_reporter, SETTINGS, round_id=today_id, household_id=ids[3],
                revision=0, how=ReportHow.form, answers={**CALM, "people_at_home": 9},
                now=inside(today),
            )  # fmt: skip
        return await real_last_answers(*args, **kwargs)

    monkeypatch.setattr(unit_saving, "last_answers", meanwhile)
    async with session_factory() as session:
        reporter = await reporter_for(session, lead)
        outcome = await save_unit_unchanged(
            session, reporter, SETTINGS, round_id=today_id, unit_id=unit_id, now=inside(today)
        )
        assert outcome.saved == 3 and outcome.without_last == []
        assert len(outcome.alert_ids) == 1
    async with session_factory() as session:
        rows = [await report_row(session, today_id, household_id) for household_id in ids]
        assert [row.answers["people_at_home"] for row in rows if row.answers] == [1, 2, 3, 9]
        assert [row.how for row in rows] == [ReportHow.unit_no_change] * 3 + [ReportHow.form]
        assert [row.alert for row in rows] == [False, True, False, False]
        assert [row.revision for row in rows] == [1, 1, 1, 1]
        assert all(row.status == ReportStatus.reported for row in rows)
        assert rows[0].reported_at is not None and rows[0].started_at is None


async def test_the_clock_opens_the_round_on_time_and_purges_old_ones(
    session_factory: async_sessionmaker[AsyncSession], form: Form
) -> None:
    from scheduler.report_jobs import open_due_round, purge_old_reports

    async with session_factory() as session:
        await county(session)
        old = (await open_round(session, SCHEDULE, form, date(2020, 1, 1))).id
    await open_due_round(session_factory, SCHEDULE, form)
    await open_due_round(session_factory, SCHEDULE, form)
    await purge_old_reports(session_factory, 30)
    async with session_factory() as session:
        rounds = list(await session.scalars(select(ReportRound)))
        assert [report_round.date for report_round in rounds] == [SCHEDULE.day_at(utcnow())]
        assert rounds[0].households_expected == 40 and rounds[0].id != old


async def test_no_change_is_refused_when_the_form_has_gained_a_question(
    session: AsyncSession, form: Form, tmp_path: Path
) -> None:
    await county(session)
    reporter = await reporter_for(session, await seat(session, UNIT, "lead", 5001))
    yesterday = await open_round(session, SCHEDULE, form, date(2026, 3, 1))
    household = (await households_of(session, UNIT))[0]
    await save_report(
        session, reporter, SETTINGS, round_id=yesterday.id, household_id=household.id,
        revision=0, how=ReportHow.form, answers=CALM, now=inside(yesterday),
    )  # fmt: skip
    changed_path = tmp_path / "form.toml"
    changed_path.write_text(
        DEFAULT_FORM_PATH.read_text(encoding="utf-8")
        + '[[fields]]\nid = "masks"\nkind = "integer"\nmax = 99\n'
        + 'label = { zh_Hans = "口罩数", en = "Masks" }\n',
        encoding="utf-8",
    )
    today = await open_round(session, SCHEDULE, load_form(changed_path), date(2026, 3, 2))
    with pytest.raises(Refused) as refused:
        await save_report(
            session, reporter, SETTINGS, round_id=today.id, household_id=household.id,
            revision=0, how=ReportHow.no_change, now=inside(today),
        )  # fmt: skip
    assert refused.value.key == "reports.no_last_report"
    unit = await node_by_path(session, UNIT)
    assert unit is not None
    outcome = await save_unit_unchanged(
        session, reporter, SETTINGS, round_id=today.id, unit_id=unit.id, now=inside(today)
    )
    assert outcome.saved == 0 and "101" in outcome.without_last
