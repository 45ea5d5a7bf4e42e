"""/report end to end: a unit lead reports every household of the unit in chat, every bad
input gets a clear message and a re-prompt, a conversation survives a restart, and a
repeated press saves once."""

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from bot.config import Config
from bot.forms import DEFAULT_FORM_PATH, consequences, round_schedule
from handlers.report_views import HouseholdAction, HouseholdPick, UnitAllSame, UnitPick
from models.access import scope_of
from models.base import as_utc
from models.form_parse import load_form
from models.org import Household, Member
from models.posts import bind, node_by_path, post_at
from models.report_saving import save_report
from models.reports import Reporter
from models.roster import RosterSource, import_roster
from models.rounds import HouseholdReport, ReportHow, ReportRound, current_round, open_round
from models.system import AuditEntry
from tests.emulator import BotMessage, EmuUser, TelegramEmulator
from tests.handlers.fixtures import polling_bot

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
UNIT = "县卫健局片区/阳光小区/1号楼/1单元"
OTHER_UNIT = "县卫健局片区/阳光小区/1号楼/2单元"
BUILDING = "县卫健局片区/阳光小区/1号楼"
LEAD_ID = 7005
BUILDING_LEAD_ID = 7004
OTHER_LEAD_ID = 7008

CALM_YESTERDAY = {
    "people_at_home": 2,
    "symptoms": 0,
    "test_status": "negative",
    "isolation": "none",
    "vulnerable": [],
    "needs": [],
}


async def county_with_people(
    emulator: TelegramEmulator, session_factory: async_sessionmaker[AsyncSession]
) -> dict[str, int]:
    """The example county; 1单元's lead, 2单元's lead and 1号楼's lead hold their posts.
    Returns 1单元's household ids by room."""
    async with session_factory() as session:
        await import_roster(
            session, [RosterSource("households.csv", (EXAMPLES / "households.csv").read_bytes())]
        )
        for path, telegram_id, name in (
            (UNIT, LEAD_ID, "马秀兰"),
            (OTHER_UNIT, OTHER_LEAD_ID, "李桂英"),
            (BUILDING, BUILDING_LEAD_ID, "赵强"),
        ):
            member = Member(telegram_id=telegram_id, name=name, locale="zh_Hans", reachable=True)
            session.add(member)
            await session.flush()
            node = await node_by_path(session, path)
            assert node is not None
            post = await post_at(session, node.id, "lead")
            assert post is not None
            await bind(session, post, member, None, how="test")
            emulator.user(
                user_id=telegram_id, first_name=name, language_code="zh"
            ).state.started = True
        await session.commit()
        return await rooms_of(session, UNIT)


async def rooms_of(session: AsyncSession, path: str) -> dict[str, int]:
    unit = await node_by_path(session, path)
    assert unit is not None
    rows = await session.execute(
        select(Household.room, Household.id).where(Household.unit_id == unit.id)
    )
    return {room: household_id for room, household_id in rows}


async def yesterday_reported(
    session_factory: async_sessionmaker[AsyncSession], config: Config, rooms: list[str]
) -> ReportRound:
    """The round before the current one, in which ``rooms`` of 1单元 were reported."""
    form = load_form(DEFAULT_FORM_PATH)
    schedule = round_schedule(config)
    async with session_factory() as session:
        today = await current_round(session, schedule, form)
        assert today is not None
        yesterday = await open_round(session, schedule, form, today.date - timedelta(days=1))
        member = await session.scalar(select(Member).where(Member.telegram_id == LEAD_ID))
        assert member is not None
        reporter = Reporter(LEAD_ID, member.id, await scope_of(session, LEAD_ID, []))
        households = await rooms_of(session, UNIT)
        for room in rooms:
            await save_report(
                session,
                reporter,
                consequences(config),
                round_id=yesterday.id,
                household_id=households[room],
                revision=0,
                how=ReportHow.form,
                answers=CALM_YESTERDAY,
                now=as_utc(yesterday.opens_at) + timedelta(hours=1),
            )
        return yesterday


async def tap(emulator: TelegramEmulator, user: EmuUser, message: BotMessage, label: str) -> str:
    """Press a button and wait for the bot's answer to it; returns the answer's text."""
    answer = await emulator.callback_answer(await user.press(message, label))
    return str(answer.get("text") or "")


async def forge(emulator: TelegramEmulator, user: EmuUser, message: BotMessage, data: str) -> str:
    """A press with callback data no button carries, as a modified client sends it."""
    world = emulator.world
    query_id = world.new_callback_query(user.id, message.chat_id, message.message_id, data)
    world.push_update(
        "callback_query",
        {
            "id": query_id,
            "from": user.to_api(),
            "message": world.bot_message_api(message),
            "chat_instance": "forged",
            "data": data,
        },
    )
    answer = await emulator.callback_answer(query_id)
    return str(answer.get("text") or "")


def latest(user: EmuUser) -> BotMessage:
    """The bot's last message in the user's chat, as edited since."""
    return user.messages()[-1]


async def open_sheet(user: EmuUser) -> BotMessage:
    user.mark_read()
    await user.send("/report")
    return await user.next_message()


async def fill_calm_form(emulator: TelegramEmulator, lead: EmuUser, sheet: BotMessage) -> None:
    """From the household's card to the summary: a household with nothing to report."""
    await tap(emulator, lead, sheet, "📝 填写")
    await tap(emulator, lead, sheet, "3")  # people at home
    await tap(emulator, lead, sheet, "0")  # fever or symptoms
    await tap(emulator, lead, sheet, "阴性")
    await tap(emulator, lead, sheet, "无")
    await tap(emulator, lead, sheet, "⬜ 80岁以上")
    await tap(emulator, lead, sheet, "完成 ▶")  # vulnerable people
    await tap(emulator, lead, sheet, "完成 ▶")  # no needs
    await tap(emulator, lead, sheet, "跳过 ▶")  # no note
    assert "请核对" in (sheet.text or "")


async def saved_rows(session_factory: async_sessionmaker[AsyncSession]) -> list[HouseholdReport]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(HouseholdReport).where(HouseholdReport.status != "missing")
            )
        )


async def audit_count(session_factory: async_sessionmaker[AsyncSession], action: str) -> int:
    async with session_factory() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        )
        return int(count or 0)


async def test_a_unit_lead_reports_the_whole_unit(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    await county_with_people(emulator, session_factory)
    await yesterday_reported(session_factory, config, ["201", "202"])
    lead = emulator.user(user_id=LEAD_ID)

    sheet = await open_sheet(lead)
    assert UNIT in (sheet.text or "") and "已完成 0/4" in (sheet.text or "")
    assert [label for row in sheet.buttons() for label, _ in row][:4] == [
        "▫️ 101",
        "▫️ 102",
        "▫️ 201",
        "▫️ 202",
    ]

    # 101: the whole form, a few taps.
    await tap(emulator, lead, sheet, "▫️ 101")
    assert "没有上次报告" in (sheet.text or "")
    await fill_calm_form(emulator, lead, sheet)
    assert "80岁以上" in (sheet.text or "")
    assert await tap(emulator, lead, sheet, "✅ 保存") == "已保存"
    assert "✅ 已保存：101（填写）· 已完成 1/4" in (sheet.text or "")

    # 102: nobody home, one tap.
    await tap(emulator, lead, sheet, "▫️ 102")
    await tap(emulator, lead, sheet, "🚪 无人在家")
    assert "102（无人在家）· 已完成 2/4" in (sheet.text or "")
    assert "🚪 102" in [label for row in sheet.buttons() for label, _ in row]

    # The rest as they were yesterday, with one confirmation.
    await tap(emulator, lead, sheet, "其余全部：无变化（2 户）")
    assert "其余 2 户" in (sheet.text or "")
    await tap(emulator, lead, sheet, "✅ 确认")
    assert "已保存 2 户“无变化” · 已完成 4/4" in (sheet.text or "")
    assert "本单元已全部报告" in (sheet.text or "")

    rows = await saved_rows(session_factory)
    today = [row for row in rows if row.how != "form" or row.answers != CALM_YESTERDAY]
    assert sorted(row.how or "" for row in today) == [
        "form",
        "nobody_home",
        "unit_no_change",
        "unit_no_change",
    ]
    async with session_factory() as session:
        households = await rooms_of(session, UNIT)
        household = await session.get(Household, households["101"])
        assert household is not None and household.attributes == {"vulnerable": ["aged_80_plus"]}

    # Correcting a report of this round: the form offers what was saved.
    await tap(emulator, lead, sheet, "✅ 101")
    assert "本轮：已报" in (sheet.text or "")
    await tap(emulator, lead, sheet, "📝 更正")
    await tap(emulator, lead, sheet, "沿用：3")
    await tap(emulator, lead, sheet, "2")
    assert "阴性" in [label.strip("● ") for row in sheet.buttons() for label, _ in row]
    await lead.send("/cancel")
    assert "已取消" in ((await lead.next_message()).text or "")
    # Every card read was audited: 101 shown and filled in, 102, 101 shown and corrected.
    assert await audit_count(session_factory, "report.viewed") == 5


async def test_every_bad_input_gets_a_clear_message_and_a_re_prompt(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    rooms = await county_with_people(emulator, session_factory)
    yesterday = await yesterday_reported(session_factory, config, ["101"])
    async with session_factory() as session:
        other_rooms = await rooms_of(session, OTHER_UNIT)
        other_unit = await node_by_path(session, OTHER_UNIT)
        assert other_unit is not None
        today = await current_round(session, round_schedule(config), load_form(DEFAULT_FORM_PATH))
        assert today is not None
    lead = emulator.user(user_id=LEAD_ID)
    sheet = await open_sheet(lead)

    # Buttons from yesterday's round, and other units' households, forged into the data.
    stale = await forge(
        emulator,
        lead,
        sheet,
        HouseholdPick(round_id=yesterday.id, household_id=rooms["101"]).pack(),
    )
    assert f"{yesterday.date.isoformat()} 的报告轮次，该轮已结束" in stale and "/report" in stale
    stale = await forge(
        emulator,
        lead,
        sheet,
        HouseholdAction(
            round_id=yesterday.id, household_id=rooms["102"], revision=0, action="away"
        ).pack(),
    )
    assert "该轮已结束" in stale
    for data in (
        HouseholdPick(round_id=today.id, household_id=other_rooms["101"]).pack(),
        HouseholdAction(
            round_id=today.id, household_id=other_rooms["101"], revision=0, action="away"
        ).pack(),
        HouseholdPick(round_id=today.id, household_id=2**40).pack(),
        UnitPick(round_id=today.id, unit_id=other_unit.id).pack(),
        UnitAllSame(round_id=today.id, unit_id=other_unit.id, confirmed=True).pack(),
    ):
        assert "您不能" in await forge(emulator, lead, sheet, data)
    # Nothing was saved but yesterday's one report.
    assert [row.round_id for row in await saved_rows(session_factory)] == [yesterday.id]
    assert UNIT in (sheet.text or "")  # the sheet is still there to go on from

    await tap(emulator, lead, sheet, "▫️ 102")
    await tap(emulator, lead, sheet, "📝 填写")
    lead.mark_read()

    # Letters for a number, then out of range: each time the reason and the question again.
    await lead.send("三个人")
    reply = await lead.next_message()
    assert "请输入数字（0–30 的整数），不要输入文字" in (reply.text or "")
    assert "在家人数" in (reply.text or "") and reply.buttons()
    await lead.send("31")
    reply = await lead.next_message()
    assert "超出范围：请输入 0 到 30 之间的整数" in (reply.text or "")
    assert "在家人数" in (reply.text or "")
    await lead.send("4")
    reply = await lead.next_message()
    assert "发热或有症状人数" in (reply.text or "")
    await lead.send("0")
    test_step = await lead.next_message()
    assert "检测情况" in (test_step.text or "")

    # Typing where a button is wanted.
    await lead.send("阴性")
    reply = await lead.next_message()
    assert "请点按下面的按钮" in (reply.text or "") and "检测情况" in (reply.text or "")
    await tap(emulator, lead, reply, "阴性")
    await tap(emulator, lead, reply, "无")
    await tap(emulator, lead, reply, "完成 ▶")
    await tap(emulator, lead, reply, "⬜ 其他")
    await tap(emulator, lead, reply, "完成 ▶")
    assert "其他需求" in (reply.text or "")

    # Too long a text, then a photo where text is wanted.
    lead.mark_read()
    await lead.send("药" * 101)
    too_long = await lead.next_message()
    assert "太长了：最多 100 字，您输入了 101 字" in (too_long.text or "")
    assert "其他需求" in (too_long.text or "")
    await lead.send_photo(b"\xff\xd8\xff")
    assert "请输入文字或数字" in ((await lead.next_message()).text or "")

    # A button of a step already answered is refused, not taken for this step's answer.
    assert "按钮已过期" in await tap(emulator, lead, test_step, "阳性")

    await lead.send("轮椅")
    note = await lead.next_message()
    assert "备注" in (note.text or "")
    await lead.send("<b>门口</b> & 放药")
    summary = await lead.next_message()
    assert "&lt;b&gt;" not in (summary.text or "") and "<b>门口</b> & 放药" in (summary.text or "")
    await lead.send("好的")
    again = await lead.next_message()
    assert "请点按下面的按钮" in (again.text or "") and "请核对" in (again.text or "")


async def test_a_conversation_survives_a_restart(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    rooms = await county_with_people(emulator, session_factory)
    lead = emulator.user(user_id=LEAD_ID)
    async with polling_bot(config):
        sheet = await open_sheet(lead)
        await tap(emulator, lead, sheet, "▫️ 201")
        await tap(emulator, lead, sheet, "📝 填写")
        await tap(emulator, lead, sheet, "5")
        assert "发热或有症状人数" in (sheet.text or "")

    async with polling_bot(config):
        lead.mark_read()
        await lead.send("1")
        step = await lead.next_message()
        assert "检测情况" in (step.text or "")
        for label in ("待出结果", "居家隔离", "完成 ▶", "完成 ▶", "跳过 ▶"):
            await tap(emulator, lead, step, label)
        assert "请核对" in (step.text or "")

    async with polling_bot(config):
        await tap(emulator, lead, step, "✅ 保存")
        assert "✅ 已保存：201（填写）· 已完成 1/4" in (step.text or "")
    async with session_factory() as session:
        row = await session.scalar(
            select(HouseholdReport).where(HouseholdReport.household_id == rooms["201"])
        )
        assert row is not None and row.answers is not None
        assert row.answers["people_at_home"] == 5 and row.answers["test_status"] == "pending"


async def test_a_repeated_press_saves_once(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await county_with_people(emulator, session_factory)
    lead = emulator.user(user_id=LEAD_ID)
    sheet = await open_sheet(lead)
    await tap(emulator, lead, sheet, "▫️ 101")
    await fill_calm_form(emulator, lead, sheet)

    # A double tap: both presses reach the bot before it has answered the first.
    first = await lead.press(sheet, "✅ 保存")
    second = await lead.press(sheet, "✅ 保存")
    # Either may reach the conversation first: one saves, the other finds it finished.
    answers = sorted(
        [
            str((await emulator.callback_answer(first))["text"]),
            str((await emulator.callback_answer(second))["text"]),
        ]
    )
    assert answers[0] == "已保存" and "按钮已过期" in answers[1]
    assert await audit_count(session_factory, "report.saved") == 1

    # The same update delivered twice ("nobody home" at the revision the card showed).
    await tap(emulator, lead, sheet, "▫️ 102")
    card = latest(lead)
    data = next(data for row in card.buttons() for label, data in row if label == "🚪 无人在家")
    answers = [await forge(emulator, lead, card, data) for _ in range(2)]
    assert answers[0] == "已保存" and "已经保存过了" in answers[1]
    rows = await saved_rows(session_factory)
    assert sorted(row.revision for row in rows) == [1, 1]
    assert await audit_count(session_factory, "report.saved") == 2


async def test_a_lead_above_reports_for_a_vacant_unit_only(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await county_with_people(emulator, session_factory)
    building_lead = emulator.user(user_id=BUILDING_LEAD_ID)
    building_lead.mark_read()
    await building_lead.send(f"/report {UNIT}")
    assert "您不能为" in ((await building_lead.next_message()).text or "")
    # 1号楼 has two units, both with a lead: nothing to report for from above.
    await building_lead.send("/report")
    assert "您没有要报告的单元" in ((await building_lead.next_message()).text or "")
    async with session_factory() as session:
        node = await node_by_path(session, OTHER_UNIT)
        assert node is not None
        post = await post_at(session, node.id, "lead")
        assert post is not None
        post.holder_id = None
        await session.commit()
    await building_lead.send("/report")
    sheet = await building_lead.next_message()
    assert OTHER_UNIT in (sheet.text or "") and "已完成 0/4" in (sheet.text or "")
    await tap(emulator, building_lead, sheet, "▫️ 101")
    await tap(emulator, building_lead, sheet, "🚪 无人在家")
    assert "已完成 1/4" in (sheet.text or "")


async def test_a_fever_answer_reaches_the_building_lead_at_once(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await county_with_people(emulator, session_factory)
    lead = emulator.user(user_id=LEAD_ID)
    building_lead = emulator.user(user_id=BUILDING_LEAD_ID)
    building_lead.mark_read()
    sheet = await open_sheet(lead)
    await tap(emulator, lead, sheet, "▫️ 101")
    await tap(emulator, lead, sheet, "📝 填写")
    for label in ("2", "1", "阴性", "居家健康监测", "完成 ▶", "⬜ 药品", "完成 ▶", "跳过 ▶"):
        await tap(emulator, lead, sheet, label)
    assert "⚠️ 保存后将立即上报预警：发热或有症状人数" in (sheet.text or "")
    assert "🆘 保存后将提交需求：药品" in (sheet.text or "")
    await tap(emulator, lead, sheet, "✅ 保存")
    assert "⚠️ 预警已上报" in (sheet.text or "") and "🆘 已提交 1 项需求" in (sheet.text or "")
    assert "⚠️ 101" in [label for row in sheet.buttons() for label, _ in row]
    assert "⚠️ 预警 1 户" in (sheet.text or "")

    alert = await building_lead.next_message(timeout=10)
    assert UNIT in (alert.text or "") and "101" in (alert.text or "")
    assert alert.buttons()  # to acknowledge


async def test_a_press_in_a_group_chat_never_shows_a_household(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    rooms = await county_with_people(emulator, session_factory)
    await yesterday_reported(session_factory, config, ["101"])
    lead = emulator.user(user_id=LEAD_ID)
    await open_sheet(lead)  # today's round is open
    async with session_factory() as session:
        today = await current_round(session, round_schedule(config), load_form(DEFAULT_FORM_PATH))
        assert today is not None
    group = emulator.group(-4101, "阳光小区志愿者群")
    await emulator.add_bot_to_group(group, by=lead)
    posted = await emulator.wait_until(lambda: next(iter(group.messages()), None), timeout=5)
    before = posted.text
    for data in (
        HouseholdPick(round_id=today.id, household_id=rooms["101"]).pack(),
        UnitPick(round_id=today.id, unit_id=1).pack(),
    ):
        await forge(emulator, lead, posted, data)
    assert group.messages()[0].text == before
    assert all("在家人数" not in (message.text or "") for message in group.messages())
