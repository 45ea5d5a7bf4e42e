"""The chase end to end, through the real application and the Bot API emulator: ``/late``
shows the caller's subtree only, naming vacant and unreachable posts; the ladder's 🔔 nudge
goes once per step, and a forged press on someone else's node is refused; the daily
summary's chart goes out as a photo through the real sender.

The bot polls without its clock, so that the ladder runs at the moments a test chooses
(``sweep_ladder``) and nothing fires at the wall clock's time behind its back; what was
queued is sent by a sender built as the application builds it (``deliver_queued``)."""

from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from bot.config import Config
from bot.forms import DEFAULT_FORM_PATH, round_schedule
from bot.i18n import create_i18n
from handlers.actions import LateNudge
from models.base import as_utc
from models.chase import ChaseStep
from models.form_parse import load_form
from models.org import Member
from models.rounds import HouseholdReport, ReportRound, ReportStatus, current_round
from scheduler.chase_jobs import send_daily_summary, sweep_ladder
from tests.emulator import BotMessage, EmuUser, TelegramEmulator
from tests.fixtures import deliver_queued
from tests.handlers.fixtures import handled, polling_bot, press_forged
from tests.response_fixtures import (
    BUILDING,
    BUILDING_LEAD,
    GRID,
    GRID_LEAD,
    GRID_OFFICER,
    OTHER_GRID,
    OTHER_GRID_LEAD,
    UNIT,
    UNIT_LEAD,
    UNIT_OFFICER,
    node_id,
    seat_county,
)

# 1号楼's second unit: both its posts are vacant.
VACANT_UNIT = "县卫健局片区/阳光小区/1号楼/2单元"
OTHER_BUILDING = "县卫健局片区/阳光小区/2号楼"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def application(config: Config, engine: object) -> AsyncIterator[Application]:
    async with polling_bot(config, workers=False) as application:
        yield application


async def late_round(
    emulator: TelegramEmulator, session_factory: async_sessionmaker[AsyncSession], config: Config
) -> ReportRound:
    """The example county seated (``tests.response_fixtures``), everyone having opened the
    bot; the round open now, in which only 1号楼's two units and 康乐家园 are late; 1单元's
    lead blocked the bot."""
    await seat_county(session_factory)
    async with session_factory() as session:
        report_round = await current_round(
            session, round_schedule(config), load_form(DEFAULT_FORM_PATH)
        )
        assert report_round is not None
        late = [await node_id(session, path) for path in (UNIT, VACANT_UNIT, OTHER_GRID)]
        await session.execute(
            update(HouseholdReport)
            .where(
                HouseholdReport.round_id == report_round.id,
                HouseholdReport.unit_id.not_in(late[:2]),
                HouseholdReport.grid_id != late[2],
            )
            .values(status=ReportStatus.reported)
        )
        await session.execute(
            update(Member).where(Member.telegram_id == UNIT_LEAD).values(reachable=False)
        )
        await session.commit()
    for telegram_id in (BUILDING_LEAD, GRID_LEAD, GRID_OFFICER, UNIT_OFFICER, OTHER_GRID_LEAD):
        emulator.user(user_id=telegram_id, language_code="zh").state.started = True
    return report_round


async def late_of(user: EmuUser, args: str = "") -> BotMessage:
    user.mark_read()
    await user.send(f"/late {args}".strip())
    return await user.next_message()


async def test_late_shows_only_the_callers_subtree_and_names_vacant_and_unreachable_posts(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    await late_round(emulator, session_factory, config)
    building_lead = emulator.user(user_id=BUILDING_LEAD)
    building_lead.mark_read()
    await building_lead.send("/help")
    assert "/late [路径] — 谁还没报" in ((await building_lead.next_message()).text or "")
    shown = (await late_of(building_lead)).text or ""
    assert "2 个单元、8 户未报" in shown
    assert "• 1单元：4 户未报（101, 102, 201, 202）" in shown
    assert "单元长 马秀兰（联系不上） · 社会信息员 韩梅" in shown
    assert "• 2单元：4 户未报（101, 102, 201, 202）" in shown
    assert "单元长空缺 · 社会信息员空缺" in shown
    assert "康乐家园" not in shown

    # The grid lead sees the same units from the grid, and not the other grid's.
    grid_lead = emulator.user(user_id=GRID_LEAD)
    grid_view = await late_of(grid_lead)
    assert "• 1号楼/1单元：4 户未报" in (grid_view.text or "")
    assert "• 1号楼/2单元：4 户未报" in (grid_view.text or "")
    assert "康乐家园" not in (grid_view.text or "")
    by_path = (await late_of(grid_lead, BUILDING)).text or ""
    assert "⏰ 县卫健局片区/阳光小区/1号楼" in by_path and "单元长空缺" in by_path
    # A drill-down press into the building (as a longer list would offer) edits the view.
    async with session_factory() as session:
        building = await node_id(session, BUILDING)
    await emulator.callback_answer(
        await press_forged(emulator, grid_lead, grid_view, f"late:{building}")
    )
    await handled(emulator, application)
    (drilled,) = [m for m in grid_lead.messages() if m.message_id == grid_view.message_id]
    assert "⏰ 县卫健局片区/阳光小区/1号楼 ·" in (drilled.text or "")
    assert "单元长 马秀兰（联系不上） · 社会信息员 韩梅" in (drilled.text or "")

    refused = await late_of(grid_lead, OTHER_GRID)
    assert "不在您负责的范围内" in (refused.text or "")
    assert "4 户" not in (refused.text or "")
    nothing = await late_of(grid_lead, OTHER_BUILDING)
    assert "都报完了" in (nothing.text or "")

    # A forged drill-down into the other grid is refused as well.
    async with session_factory() as session:
        other_grid = await node_id(session, OTHER_GRID)
    query = await press_forged(emulator, grid_lead, grid_view, f"late:{other_grid}")
    answer = await emulator.callback_answer(query)
    assert answer.get("show_alert") and "不在你负责的范围内" in str(answer.get("text"))


async def test_a_nudge_goes_once_per_step_and_a_forged_one_is_refused(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    report_round = await late_round(emulator, session_factory, config)
    due = as_utc(report_round.due_at)
    # The day's ladder up to the grid step, each step at its time: the unit's officer (its
    # lead blocked the bot) twice, the building lead, then both grids' leads and officers.
    queued = [
        await sweep_ladder(session_factory, config, due + timedelta(minutes=minutes))
        for minutes in (-60, 0, 30, 60)
    ]
    assert queued == [0, 1, 1, 3]
    await deliver_queued(config, session_factory)

    grid_lead = emulator.user(user_id=GRID_LEAD)
    (told,) = grid_lead.messages()
    assert "网格 县卫健局片区/阳光小区 有 2 个单元、共 8 户未报" in (told.text or "")
    assert "1号楼/1单元：4 户" in (told.text or "")
    assert "康乐家园" not in (told.text or "")
    other_lead = emulator.user(user_id=OTHER_GRID_LEAD)
    (other_told,) = other_lead.messages()
    assert "康乐家园" in (other_told.text or "")

    unit_officer = emulator.user(user_id=UNIT_OFFICER)
    unit_officer.mark_read()
    answer = await emulator.callback_answer(await grid_lead.press(told, "🔔 催一下"))
    # The unit lead who blocked the bot and the vacant unit are not written to.
    assert answer["text"] == "已再次提醒 2 个单元（1 条消息）。"
    await deliver_queued(config, session_factory)
    nudged = await unit_officer.next_message()
    assert "🔔 王芳 催报" in (nudged.text or "")
    assert "县卫健局片区/阳光小区/1号楼/1单元 还有 4 户未报" in (nudged.text or "")

    # Once per step, whoever presses: the grid officer's copy (in English) says so.
    grid_officer = emulator.user(user_id=GRID_OFFICER)
    (officer_copy,) = grid_officer.messages()
    again = await emulator.callback_answer(await grid_officer.press(officer_copy, "🔔 Nudge"))
    assert "already" in str(again["text"])
    await deliver_queued(config, session_factory)
    assert unit_officer.messages()[-1].message_id == nudged.message_id

    # 康乐家园's lead forges a press on 阳光小区's step: refused, nothing queued.
    async with session_factory() as session:
        grid_step = await session.scalar(
            select(ChaseStep.id).where(
                ChaseStep.node_id == await node_id(session, GRID), ChaseStep.step == "grid+60"
            )
        )
    assert grid_step is not None
    forged = await press_forged(
        emulator, other_lead, other_told, LateNudge(step_id=grid_step).pack()
    )
    refused = await emulator.callback_answer(forged)
    assert refused["text"] == "这不在你负责的范围内。"
    # Nor can the building lead nudge the grid's step from below.
    building_lead = emulator.user(user_id=BUILDING_LEAD)
    building_lead.mark_read()
    await building_lead.send("/start")
    await building_lead.next_message()
    below = await press_forged(
        emulator, building_lead, building_lead.messages()[-1], LateNudge(step_id=grid_step).pack()
    )
    assert (await emulator.callback_answer(below))["text"] == "这不在你负责的范围内。"
    await deliver_queued(config, session_factory)
    assert unit_officer.messages()[-1].message_id == nudged.message_id


async def test_the_daily_summary_chart_goes_out_as_a_photo(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    report_round = await late_round(emulator, session_factory, config)
    evening = datetime.combine(report_round.date, time(18, 20), tzinfo=SHANGHAI)
    i18n = create_i18n(config.i18n.default_locale)
    assert await send_daily_summary(session_factory, config, i18n, evening) > 0
    await deliver_queued(config, session_factory)

    grid_lead = emulator.user(user_id=GRID_LEAD)
    photos = [message for message in grid_lead.messages() if message.kind == "photo"]
    assert len(photos) == 1
    (photo,) = photos
    assert photo.photo is not None and emulator.download(photo.photo)
    assert "上报进度" in (photo.caption or "")
    (request,) = emulator.sent("sendPhoto", chat_id=GRID_LEAD)
    assert request.status == 200
    # The building lead is not among the summary's readers.
    assert not emulator.sent("sendPhoto", chat_id=BUILDING_LEAD)
