"""Need tickets end to end: the grid takes one, resolves it with a note, the unit confirms
or reopens it; /needs lists what is in scope; a forged press on someone else's ticket is
refused; an overdue ticket climbs once; a group chat never sees one."""

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from bot.config import Config
from models.base import utcnow
from models.forms import NeedRequest
from models.needs import Need, NeedStatus, open_report_needs
from scheduler.response_jobs import sweep_alerts_and_needs
from tests.emulator import TelegramEmulator
from tests.handlers.fixtures import GROUP_ID, forged_press, group_texts, open_chats, press_forged
from tests.response_fixtures import (
    GRID_LEAD,
    GRID_OFFICER,
    OTHER_GRID_LEAD,
    OUTSIDER,
    UNIT,
    UNIT_LEAD,
    UNIT_OFFICER,
    ZONE_LEAD,
    ZONE_OFFICER,
    household,
    member_id,
    node_id,
)


async def report(
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    needs: list[NeedRequest],
    report_id: int = 1,
) -> list[int]:
    """What a saved household report does: tickets in its transaction."""
    async with session_factory() as session:
        ids = await open_report_needs(
            session,
            report_id=report_id,
            household_id=await household(session, UNIT, "202"),
            unit_node_id=await node_id(session, UNIT),
            reporter_member_id=await member_id(session, UNIT_LEAD),
            needs=needs,
            command_centre=application.config.admins.telegram_ids,
        )
        await session.commit()
    application.sender.wake()
    return ids


async def status_of(session_factory: async_sessionmaker[AsyncSession], need_id: int) -> str:
    async with session_factory() as session:
        need = await session.get(Need, need_id)
        assert need is not None
        return need.status


async def test_a_need_is_taken_resolved_and_confirmed(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    (need_id,) = await report(application, session_factory, [NeedRequest("medicine", None)])
    officer = emulator.user(user_id=GRID_OFFICER)  # reads English
    lead = emulator.user(user_id=GRID_LEAD)
    ticket = await officer.next_message(timeout=10)
    assert "Need #1: medicine" in ticket.text and "room 202" in ticket.text
    assert ticket.buttons() == [[("🙋 Take", f"need:{need_id}:take")]]
    assert (await lead.next_message(timeout=10)).buttons() == [[("🙋 我来办", "need:1:take")]]

    answer = await emulator.callback_answer(await officer.press(ticket, "🙋 Take"))
    assert answer["text"] == "You took #1."
    detail = await officer.next_message()
    assert "in hand" in detail.text and detail.buttons() == [[("✅ Resolved", "need:1:resolve")]]
    assert "马晓东" in (await lead.next_message(timeout=10)).text

    await officer.press(detail, "✅ Resolved")
    assert "how was need #1 met" in (await officer.next_message()).text
    await officer.send("x" * 501)
    assert "1 to 500 characters" in (await officer.next_message()).text
    await officer.send("药已送到 <门口>")
    assert "Need #1 resolved" in (await officer.next_message()).text

    unit_lead = emulator.user(user_id=UNIT_LEAD)
    resolved = await unit_lead.next_message(timeout=10)
    assert "药已送到 <门口>" in resolved.text
    assert resolved.buttons() == [
        [("👍 确认解决", "need:1:confirm"), ("↩️ 没解决", "need:1:reopen")]
    ]
    answer = await emulator.callback_answer(await unit_lead.press(resolved, "👍 确认解决"))
    assert "已确认 #1 解决" in answer["text"]
    assert await status_of(session_factory, need_id) == NeedStatus.confirmed
    assert "confirmed solved" in (await officer.next_message(timeout=10)).text
    assert emulator.bot_messages(GROUP_ID) == []


async def test_a_need_not_solved_is_reopened_for_the_grid(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    (need_id,) = await report(application, session_factory, [NeedRequest("food", None)])
    lead = emulator.user(user_id=GRID_LEAD)
    await lead.press(await lead.next_message(timeout=10), "🙋 我来办")
    detail = await emulator.wait_until(
        lambda: next(
            (m for m in lead.messages() if m.buttons() == [[("✅ 已办结", "need:1:resolve")]]), None
        ),
        timeout=5,
    )
    await lead.press(detail, "✅ 已办结")
    # The ask itself: the ticket's own text also names its 办理结果.
    await emulator.wait_until(
        lambda: any("请用一句话写下需求" in m.text for m in lead.messages()), timeout=10
    )
    await lead.send("已送米面油")
    await emulator.wait_until(
        lambda: any("已办结，已请单元确认" in m.text for m in lead.messages()), timeout=20
    )
    unit_lead = emulator.user(user_id=UNIT_LEAD)
    resolved = await emulator.wait_until(
        lambda: next((m for m in unit_lead.messages() if "没解决" in str(m.buttons())), None),
        timeout=20,
    )
    await emulator.callback_answer(await unit_lead.press(resolved, "↩️ 没解决"))
    assert await status_of(session_factory, need_id) == NeedStatus.open
    officer = emulator.user(user_id=GRID_OFFICER)
    reopened = await emulator.wait_until(
        lambda: next((m for m in officer.messages() if "open again" in m.text), None), timeout=10
    )
    assert reopened.buttons() == [[("🙋 Take", "need:1:take")]]
    # The unit officer's Confirm, on their copy of the same message, is stale now.
    unit_officer = emulator.user(user_id=UNIT_OFFICER)
    copy = await emulator.wait_until(
        lambda: next((m for m in unit_officer.messages() if m.buttons()), None), timeout=5
    )
    stale = await emulator.callback_answer(await unit_officer.press(copy, "👍 确认解决"))
    assert stale["show_alert"] and "状态已经变了" in stale["text"]


async def test_a_forged_press_on_someone_elses_ticket_is_refused(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    (need_id,) = await report(application, session_factory, [NeedRequest("doctor", None)])
    for stranger in (OTHER_GRID_LEAD, OUTSIDER, UNIT_LEAD):
        person = emulator.user(user_id=stranger)
        answer = await emulator.callback_answer(
            await forged_press(emulator, person, f"need:{need_id}:take")
        )
        assert answer["show_alert"]
        assert "不归您" in answer["text"] or "not yours" in answer["text"]
    answer = await emulator.callback_answer(
        await forged_press(emulator, emulator.user(user_id=OTHER_GRID_LEAD), "ndop:1")
    )
    assert "不在您的负责范围" in answer["text"]
    for forged in (f"need:{2**40}:take", f"ndop:{2**40}", f"ndpg:{2**40}"):
        await emulator.callback_answer(
            await forged_press(emulator, emulator.user(user_id=GRID_LEAD), forged)
        )
    assert await status_of(session_factory, need_id) == NeedStatus.open


async def test_needs_lists_the_tickets_in_scope_page_by_page(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    for report_id in range(1, 11):
        await report(application, session_factory, [NeedRequest("other", "买菜")], report_id)
    lead = emulator.user(user_id=GRID_LEAD)
    # The ten tickets arrive first, each once.
    await emulator.wait_until(
        lambda: len([m for m in lead.messages() if "需求 #" in m.text]) >= 10, timeout=15
    )
    lead.mark_read()
    await lead.send("/needs")
    listing = await lead.next_message()
    assert "未结需求 10 件" in listing.text and "第 1/2 页" in listing.text

    def shown() -> str:
        return next(m.text for m in lead.messages() if m.message_id == listing.message_id)

    await lead.press(listing, "▶")
    await emulator.wait_until(lambda: "第 2/2 页" in shown(), timeout=5)
    # A forged page far past the end shows the last one.
    await emulator.callback_answer(await forged_press(emulator, lead, "ndpg:99"))
    assert "第 2/2 页" in shown()
    page = next(m for m in lead.messages() if m.message_id == listing.message_id)
    await lead.press(page, "#10 其他 · 202")
    ticket = await lead.next_message()
    assert "买菜" in ticket.text and ticket.buttons() == [[("🙋 我来办", "need:10:take")]]
    outsider = emulator.user(user_id=OUTSIDER)
    outsider.mark_read()
    await outsider.send("/needs")
    assert (await outsider.next_message()).text == "No open needs in your area."
    assert emulator.bot_messages(GROUP_ID) == []


async def test_an_overdue_ticket_climbs_to_the_zone_once(
    emulator: TelegramEmulator,
    application: Application,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    (need_id,) = await report(application, session_factory, [NeedRequest("medicine", "胰岛素")])
    assert await sweep_alerts_and_needs(session_factory, config) == 0
    async with session_factory() as session:
        await session.execute(
            update(Need).values(opened_at=utcnow() - timedelta(hours=4, seconds=1))
        )
        await session.commit()
    assert await sweep_alerts_and_needs(session_factory, config) == 1
    assert await sweep_alerts_and_needs(session_factory, config) == 0
    application.sender.wake()
    for telegram_id in (ZONE_LEAD, ZONE_OFFICER):
        zone = emulator.user(user_id=telegram_id)
        overdue = await emulator.wait_until(
            lambda zone=zone: next((m for m in zone.messages() if "时限" in m.text), None),
            timeout=10,
        )
        assert "胰岛素" in overdue.text and "4 小时" in overdue.text
        assert overdue.buttons() == [[("🙋 我来办", f"need:{need_id}:take")]]
    zone_lead = emulator.user(user_id=ZONE_LEAD)
    assert len([m for m in zone_lead.messages() if "时限" in m.text]) == 1
    assert emulator.bot_messages(GROUP_ID) == []


async def test_alert_and_need_buttons_forged_in_a_group_show_nothing(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    (need_id,) = await report(application, session_factory, [NeedRequest("medicine", "药名")])
    lead = emulator.user(user_id=GRID_LEAD)
    group = emulator.group(chat_id=GROUP_ID)
    await emulator.add_bot_to_group(group, by=lead)
    in_group = await emulator.wait_until(lambda: emulator.bot_messages(GROUP_ID)[-1:], timeout=5)
    before = group_texts(emulator, GROUP_ID)
    for data in (f"need:{need_id}:take", f"ndop:{need_id}", "ndpg:0", "alack:1", "alpost:1"):
        answer = await emulator.callback_answer(
            await press_forged(emulator, lead, in_group[0], data)
        )
        assert answer["show_alert"] and "私聊" in str(answer["text"]), (data, answer)
    assert group_texts(emulator, GROUP_ID) == before
    assert "药名" not in before and "202" not in before
    assert await status_of(session_factory, need_id) == NeedStatus.open
