"""The deadline ladder with a clock the test holds: a whole day's steps each fire at their
time, once; a restart across the deadline catches up once; a step missed past the horizon
is recorded as skipped; a unit that completes drops out; the messages name exactly the late
units; a nudge goes once per step."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from aiogram.utils.i18n import I18n
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.forms import DEFAULT_FORM_PATH
from bot.i18n import create_i18n
from handlers.outbound import render_text
from models.chase import ChaseRun, ChaseStep, Ladder, LadderStep, RunOutcome, default_steps, plan
from models.chase_nudge import NudgeOutcome, nudge
from models.chase_sweep import sweep
from models.form_parse import load_form
from models.forms import Form
from models.messages import Action, ActionKind, Text, decode
from models.org import Household, Level, Member, Post
from models.outbox.table import OutboxMessage
from models.posts import bind, node_by_path, post_at
from models.roster import RosterSource, import_roster
from models.rounds import HouseholdReport, ReportRound, ReportStatus, RoundSchedule, open_round
from tests.fixtures import EXAMPLES

SCHEDULE = RoundSchedule(time(7), time(10), time(7), "Asia/Shanghai")
DAY = date(2026, 12, 5)
# 10:00 in Asia/Shanghai.
DUE = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
LADDER = Ladder(timezone="Asia/Shanghai", command_centre=(900_001,))

ZONE = "县卫健局片区"
GRID = "县卫健局片区/阳光小区"
BUILDING = "县卫健局片区/阳光小区/1号楼"
UNIT_1 = "县卫健局片区/阳光小区/1号楼/1单元"
UNIT_2 = "县卫健局片区/阳光小区/1号楼/2单元"
UNIT_3 = "县卫健局片区/阳光小区/2号楼/1单元"
# Who holds which post: telegram id → (path, role).
PEOPLE = {
    11: (UNIT_1, "lead"),
    12: (UNIT_1, "officer"),
    21: (UNIT_2, "lead"),
    31: (BUILDING, "lead"),
    32: (BUILDING, "officer"),
    41: (GRID, "lead"),
    42: (GRID, "officer"),
    51: (ZONE, "lead"),
    52: (ZONE, "officer"),
}


@pytest.fixture
def form() -> Form:
    return load_form(DEFAULT_FORM_PATH)


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return create_i18n("zh_Hans")


async def county(session: AsyncSession, form: Form) -> ReportRound:
    """The example county with its posts held, and the day's round open."""
    await import_roster(
        session, [RosterSource("households.csv", (EXAMPLES / "households.csv").read_bytes())]
    )
    for telegram_id, (path, role) in PEOPLE.items():
        member = Member(telegram_id=telegram_id, name=f"成员{telegram_id}", reachable=True)
        session.add(member)
        await session.flush()
        node = await node_by_path(session, path)
        assert node is not None
        post = await post_at(session, node.id, role)
        assert post is not None
        await bind(session, post, member, None, how="test")
    await session.commit()
    return await open_round(session, SCHEDULE, form, DAY)


async def report(session: AsyncSession, round_id: int, unit: str, *rooms: str) -> None:
    """The households of ``rooms`` in ``unit`` (all of them when none is named) reported."""
    node = await node_by_path(session, unit)
    assert node is not None
    households = select(Household.id).where(Household.unit_id == node.id)
    if rooms:
        households = households.where(Household.room.in_(rooms))
    await session.execute(
        update(HouseholdReport)
        .where(HouseholdReport.round_id == round_id, HouseholdReport.household_id.in_(households))
        .values(status=ReportStatus.reported)
    )
    await session.commit()


async def report_all_but(session: AsyncSession, round_id: int, *late: str) -> None:
    """Every unit of the county reported but the ``late`` ones."""
    late_ids = [node.id for path in late if (node := await node_by_path(session, path))]
    await session.execute(
        update(HouseholdReport)
        .where(HouseholdReport.round_id == round_id, HouseholdReport.unit_id.not_in(late_ids))
        .values(status=ReportStatus.reported)
    )
    await session.commit()


async def inbox(session: AsyncSession) -> dict[int, list[tuple[Text, tuple[Action, ...]]]]:
    """What was queued for each reader, in order."""
    rows = await session.execute(
        select(OutboxMessage.chat_id, OutboxMessage.payload).order_by(OutboxMessage.id)
    )
    found: dict[int, list[tuple[Text, tuple[Action, ...]]]] = {}
    for chat_id, payload in rows:
        content, actions = decode(payload)
        assert isinstance(content, Text)
        found.setdefault(chat_id, []).append((content, actions))
    return found


def shown(i18n: I18n, text: Text, locale: str = "zh_Hans") -> str:
    with i18n.context(), i18n.use_locale(locale):
        return render_text(text)


def at(hour: int, minute: int = 0) -> datetime:
    """A moment of DAY in Asia/Shanghai."""
    return DUE + timedelta(hours=hour - 10, minutes=minute)


# --- the plan ---------------------------------------------------------------------------


def test_only_the_latest_due_step_of_a_level_fires_and_a_late_one_is_skipped() -> None:
    steps = default_steps()
    decisions = plan(steps, DUE, set(), DUE + timedelta(minutes=100), timedelta(minutes=90))
    outcomes = {decision.step.name: decision.outcome for decision in decisions}
    assert outcomes == {
        "unit-60": RunOutcome.superseded,
        "unit+0": RunOutcome.skipped,  # 100 minutes late, past the 90-minute horizon
        "building+30": RunOutcome.fired,
        "grid+60": RunOutcome.fired,
    }
    assert plan(steps, DUE, {"unit-60", "unit+0"}, DUE, timedelta(minutes=90)) == []
    assert LadderStep(timedelta(minutes=-60), Level.unit).name == "unit-60"


# --- a whole day --------------------------------------------------------------------------


async def test_a_whole_day_fires_every_step_at_its_time_once(
    session: AsyncSession, form: Form, i18n: I18n
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1, UNIT_2, UNIT_3)
    await report(session, report_round.id, UNIT_1, "101", "102")
    fired_at: dict[str, datetime] = {}
    moment = at(7)
    while moment <= at(14):
        result = await sweep(session, LADDER, moment)
        for fired in result.fired:
            assert fired.step not in fired_at, f"{fired.step} fired twice"
            fired_at[fired.step] = moment
        assert result.passed == []
        if moment == at(10, 10):
            # 1号楼/2单元 reports everything before the building lead hears of it.
            await report(session, report_round.id, UNIT_2)
        moment += timedelta(minutes=1)
    assert fired_at == {
        "unit-60": at(9),
        "unit+0": at(10),
        "building+30": at(10, 30),
        "grid+60": at(11),
        "zone+120": at(12),
    }
    runs = (await session.execute(select(ChaseRun.step, ChaseRun.outcome, ChaseRun.nodes))).all()
    assert sorted(runs) == sorted(
        [
            ("unit-60", "fired", 3),
            ("unit+0", "fired", 3),
            ("building+30", "fired", 2),
            ("grid+60", "fired", 1),
            ("zone+120", "fired", 1),
        ]
    )

    told = await inbox(session)
    unit_lead = [shown(i18n, text) for text, _ in told[11]]
    assert len(unit_lead) == 2  # −60 and 0; its officer only at 0
    assert "距截止时间 10:00 还有 60 分钟" in unit_lead[0]
    assert "还有 <b>2</b> 户未报：201, 202" in unit_lead[0]
    assert "已到截止时间 10:00" in unit_lead[1]
    assert len(told[12]) == 1
    # 1号楼/2单元 completed at 10:10: its lead heard at 09:00 and 10:00, never again.
    assert len(told[21]) == 2

    ((building_text, building_actions),) = told[31]
    building = shown(i18n, building_text)
    assert "楼栋 <b>县卫健局片区/阳光小区/1号楼</b> 有 1 个单元、共 2 户未报" in building
    assert "• 1单元：2 户未报 · 单元长 成员11" in building
    assert "2单元" not in building
    assert building_actions[0].kind is ActionKind.nudge_late
    assert len(told[32]) == 1

    ((grid_text, _),) = told[41]
    grid = shown(i18n, grid_text)
    assert "网格 <b>县卫健局片区/阳光小区</b> 有 2 个单元、共 6 户未报" in grid
    assert "• 1号楼/1单元：2 户未报" in grid and "• 2号楼/1单元：4 户未报" in grid
    assert "1号楼/2单元" not in grid

    ((zone_text, _),) = told[51]
    english = shown(i18n, zone_text, "en")
    assert "Grid 阳光小区 is late: 2 units, 6 households unreported; 2号楼/1单元 has 4" in english
    assert set(told) == {11, 12, 21, 31, 32, 41, 42, 51, 52}


async def test_a_restart_across_the_deadline_catches_up_once(
    session: AsyncSession, form: Form
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1)
    assert [fired.step for fired in (await sweep(session, LADDER, at(9, 1))).fired] == ["unit-60"]
    # Down from 09:50 to 10:20: nothing ran at 10:00.
    first = await sweep(session, LADDER, at(10, 20))
    again = await sweep(
        session,
        LADDER,
        at(
            10,
            20,
        ),
    )
    later = await sweep(session, LADDER, at(10, 21))
    assert [(fired.step, fired.messages) for fired in first.fired] == [("unit+0", 2)]
    assert again.fired == [] and later.fired == []
    messages = (await session.execute(select(OutboxMessage.chat_id))).scalars().all()
    assert sorted(messages) == [11, 11, 12]


async def test_steps_missed_past_the_horizon_are_recorded_as_skipped(
    session: AsyncSession, form: Form
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_3)
    # Down from before 09:00 until 12:10: only the grid's and the zone's steps are near enough.
    result = await sweep(session, LADDER, at(12, 10))
    assert [fired.step for fired in result.fired] == ["grid+60", "zone+120"]
    assert sorted((step, outcome) for _, step, outcome in result.passed) == [
        ("building+30", RunOutcome.skipped),
        ("unit+0", RunOutcome.skipped),
        ("unit-60", RunOutcome.superseded),
    ]
    rows = await session.execute(select(ChaseRun.step, ChaseRun.outcome))
    stored = {step: outcome for step, outcome in rows}
    assert stored["building+30"] == "skipped" and stored["unit-60"] == "superseded"
    assert (await sweep(session, LADDER, at(12, 11))).fired == []
    assert sorted((await session.execute(select(OutboxMessage.chat_id))).scalars()) == [
        41,
        42,
        51,
        52,
    ]


async def test_a_unit_that_completes_stops_its_ladder(session: AsyncSession, form: Form) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1)
    await sweep(session, LADDER, at(9))
    await report(session, report_round.id, UNIT_1)
    for moment in (at(10), at(10, 30), at(11), at(12)):
        result = await sweep(session, LADDER, moment)
        assert [fired.nodes for fired in result.fired] == [0]
    assert (await session.execute(select(OutboxMessage.chat_id))).scalars().all() == [11]
    assert (await session.execute(select(ChaseStep.step))).scalars().all() == ["unit-60"]


async def test_a_vacant_zone_is_told_to_the_command_centre_and_vacant_units_named(
    session: AsyncSession, form: Form, i18n: I18n
) -> None:
    report_round = await county(session, form)
    await report_all_but(session, report_round.id, UNIT_1, "县卫健局片区/阳光小区/1号楼/2单元")
    await session.execute(update(Member).where(Member.telegram_id == 11).values(reachable=False))
    await session.commit()
    ladder = Ladder(
        steps=(
            LadderStep(timedelta(minutes=30), Level.building),
            LadderStep(timedelta(minutes=120), Level.zone),
        ),
        timezone="Asia/Shanghai",
        command_centre=(900_001, -100),
    )
    await sweep(session, ladder, at(10, 30))
    told = await inbox(session)
    building = shown(i18n, told[31][0][0])
    assert "• 1单元：4 户未报 · 单元长 成员11（联系不上）" in building
    assert "• 2单元：4 户未报 · 单元长 成员21" in building
    # The unit lead who cannot be reached gets nothing.
    assert 11 not in told
    zone = await node_by_path(session, ZONE)
    assert zone is not None
    await session.execute(update(Post).where(Post.node_id == zone.id).values(holder_id=None))
    await session.commit()
    await sweep(session, ladder, at(12))
    told = await inbox(session)
    assert 51 not in told and -100 not in told  # a group chat never hears of households
    ((zone_text, _),) = told[900_001]
    assert "片区 <b>县卫健局片区</b> 有 1 个网格迟报（2 个单元、8 户）" in shown(i18n, zone_text)


async def test_a_nudge_reminds_the_late_units_below_once(
    session: AsyncSession, form: Form, i18n: I18n
) -> None:
    round_id = (await county(session, form)).id
    await report_all_but(session, round_id, UNIT_1, UNIT_3)
    await sweep(session, LADDER, at(11))
    step_id = await session.scalar(select(ChaseStep.id).where(ChaseStep.step == "grid+60"))
    assert step_id is not None
    before = len((await session.execute(select(OutboxMessage.id))).all())
    # A building lead of 1号楼 does not see 2号楼's grid.
    refused = await nudge(session, step_id, 31, [], "Asia/Shanghai", at(11, 5))
    assert refused.outcome is NudgeOutcome.refused
    done = await nudge(session, step_id, 41, [], "Asia/Shanghai", at(11, 5))
    assert (done.outcome, done.units, done.people) == (NudgeOutcome.nudged, 2, 2)
    again = await nudge(session, step_id, 42, [], "Asia/Shanghai", at(11, 6))
    assert again.outcome is NudgeOutcome.already
    told = await inbox(session)
    assert len((await session.execute(select(OutboxMessage.id))).all()) == before + 2
    nudged = shown(i18n, told[12][-1][0])
    assert (
        "🔔 成员41 催报" in nudged
        and "<b>县卫健局片区/阳光小区/1号楼/1单元</b> 还有 4 户未报" in nudged
    )
    forged = await nudge(session, 2**40, 41, [], "Asia/Shanghai", at(11, 6))
    assert forged.outcome is NudgeOutcome.refused
    await report(session, round_id, UNIT_1)
    await report(session, round_id, UNIT_3)
    zone_step = await session.scalar(select(ChaseStep.id).where(ChaseStep.step == "zone+120"))
    assert zone_step is None  # the zone's step is not due before 12:00
