"""/alert end to end: the leads above get it once, in their own language, with the button;
the first acknowledgement is told to the others; nobody acknowledging, it climbs to the
command centre once; a group chat never sees it."""

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from bot.config import Config
from models.alerts import Alert
from models.base import utcnow
from models.org import Member, Role
from models.posts import bind, node_by_path, post_at
from scheduler.response_jobs import sweep_alerts_and_needs
from tests.emulator import BotMessage, TelegramEmulator
from tests.handlers.fixtures import ADMIN_ID, GROUP_ID, forged_press, open_chats
from tests.response_fixtures import (
    ABOVE_UNIT,
    BUILDING,
    BUILDING_LEAD,
    ENGLISH_READERS,
    GRID_OFFICER,
    OTHER_GRID_LEAD,
    OUTSIDER,
    UNIT_LEAD,
    UNIT_OFFICER,
    member_id,
)

NOT_ABOVE = (UNIT_OFFICER, OUTSIDER, OTHER_GRID_LEAD)


def label(telegram_id: int) -> str:
    return "🙋 I'll handle it" if telegram_id in ENGLISH_READERS else "🙋 我来处理"


async def raise_text_alert(emulator: TelegramEmulator, text: str) -> BotMessage:
    sender = emulator.user(user_id=UNIT_LEAD)
    await sender.send("/alert")
    assert "请说明情况" in (await sender.next_message()).text
    await sender.send(text)
    return await sender.next_message()


async def test_an_alert_reaches_the_leads_above_once_and_the_first_taker_is_told(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    text = "3楼有老人摔倒 <急> & 需要担架_*[]"
    confirmation = await raise_text_alert(emulator, text)
    assert "上报 #1 已发出" in confirmation.text and "5 人" in confirmation.text

    for telegram_id in ABOVE_UNIT:
        delivered = await emulator.user(user_id=telegram_id).next_message(timeout=10)
        assert text in delivered.text  # verbatim, through HTML escaping
        assert "马秀兰" in delivered.text
        assert delivered.buttons() == [[(label(telegram_id), "alack:1")]]
    for telegram_id in NOT_ABOVE:
        assert all(text not in m.text for m in emulator.user(user_id=telegram_id).messages())
    assert len(emulator.sent(method="sendMessage", chat_id=7002)) == 2  # welcome + alert

    officer = emulator.user(user_id=GRID_OFFICER)
    answer = await emulator.callback_answer(
        await officer.press(officer.messages()[-1], label(GRID_OFFICER))
    )
    assert answer["text"] == "You took #1; the others are told."
    await emulator.wait_until(lambda: officer.messages()[-1].reply_markup is None, timeout=5)
    for telegram_id in (ABOVE_UNIT - {GRID_OFFICER}) | {UNIT_LEAD}:
        told = await emulator.user(user_id=telegram_id).next_message(timeout=10)
        assert "马晓东" in told.text and "#1" in told.text

    building_lead = emulator.user(user_id=BUILDING_LEAD)
    alert_message = next(m for m in building_lead.messages() if m.buttons())
    late = await emulator.callback_answer(await building_lead.press(alert_message, "🙋 我来处理"))
    assert late["show_alert"] and "马晓东" in late["text"]
    outsider = emulator.user(user_id=OUTSIDER)
    refused = await emulator.callback_answer(await forged_press(emulator, outsider, "alack:1"))
    assert refused["text"] == "This alert is outside your area."
    async with session_factory() as session:
        alert = await session.get(Alert, 1)
        assert alert is not None and alert.acknowledged_by_telegram_id == GRID_OFFICER
    assert emulator.bot_messages(GROUP_ID) == []


async def test_nobody_acknowledging_it_climbs_to_the_command_centre_once(
    emulator: TelegramEmulator,
    application: Application,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    await raise_text_alert(emulator, "楼道有烟味")
    for telegram_id in ABOVE_UNIT:
        await emulator.user(user_id=telegram_id).next_message(timeout=10)
    # Not yet: the set time has not passed.
    assert await sweep_alerts_and_needs(session_factory, config) == 0
    async with session_factory() as session:
        minutes = config.alerts.escalate_after_min
        await session.execute(
            update(Alert).values(created_at=utcnow() - timedelta(minutes=minutes, seconds=1))
        )
        await session.commit()
    assert await sweep_alerts_and_needs(session_factory, config) == 1
    assert await sweep_alerts_and_needs(session_factory, config) == 0
    application.sender.wake()
    admin = emulator.user(user_id=ADMIN_ID)
    escalated = await admin.next_message(timeout=10)
    assert "已上报县指挥部" in escalated.text and "楼道有烟味" in escalated.text
    answer = await emulator.callback_answer(await admin.press(escalated, "🙋 我来处理"))
    assert "#1" in answer["text"]
    for telegram_id in ABOVE_UNIT:
        told = await emulator.user(user_id=telegram_id).next_message(timeout=10)
        assert "指挥部" in told.text and "#1" in told.text
    assert [m for m in admin.messages() if "楼道有烟味" in (m.text or "")] == [escalated]
    assert emulator.bot_messages(GROUP_ID) == []


async def test_a_member_of_two_posts_picks_one_and_sends_a_photo(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    async with session_factory() as session:
        building = await node_by_path(session, BUILDING)
        assert building is not None
        post = await post_at(session, building.id, Role.officer)
        assert post is not None
        member = await session.get(Member, await member_id(session, UNIT_LEAD))
        assert member is not None
        await bind(session, post, member, None, how="test")
        await session.commit()
    sender = emulator.user(user_id=UNIT_LEAD)
    await sender.send("/alert")
    choice = await sender.next_message()
    assert "多个岗位" in choice.text
    await sender.press(choice, "单元长 · 县卫健局片区/阳光小区/1号楼/1单元")
    assert "请说明情况" in (await sender.next_message()).text
    await sender.send_raw({"location": {"latitude": 36.93, "longitude": 101.68}})
    assert "文字、照片或语音" in (await sender.next_message()).text
    await sender.send_photo(b"\xff\xd8 a photo", caption="电梯困人")
    assert "上报 #1 已发出" in (await sender.next_message()).text
    for telegram_id in ABOVE_UNIT:
        delivered = await emulator.user(user_id=telegram_id).next_message(timeout=10)
        assert delivered.method == "copyMessage" and delivered.kind == "photo"
        assert delivered.caption is not None and "电梯困人" in delivered.caption
        assert delivered.buttons() == [[(label(telegram_id), "alack:1")]]
    # The sender holds the building's officer post too, but is not told of their own alert.
    assert all("电梯困人" not in (m.caption or "") for m in sender.messages())


async def test_without_a_post_there_is_nothing_to_raise_and_groups_are_ignored(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_chats(emulator, session_factory)
    stranger = emulator.user(user_id=7999, first_name="路人", language_code="zh")
    await stranger.send("/alert 有情况")
    assert "还没有登记岗位" in (await stranger.next_message()).text
    lead = emulator.user(user_id=UNIT_LEAD)
    await lead.send("/alert 单元门禁坏了", chat=GROUP_ID)
    # One line in private chat, with the text: raised at once.
    await lead.send("/alert 单元门禁坏了")
    assert "上报 #1 已发出" in (await lead.next_message()).text
    # A voice message goes on as it is, the heading as its caption.
    await lead.send("/alert")
    await lead.next_message()
    recording = emulator.world.add_file(b"OggS voice", "voice", None, "audio/ogg")
    voice = {"file_id": recording.file_id, "file_unique_id": recording.file_unique_id}
    await lead.send_raw({"voice": {**voice, "duration": 4, "mime_type": "audio/ogg"}})
    assert "上报 #2 已发出" in (await lead.next_message()).text
    zone_lead = emulator.user(user_id=7001)
    delivered = await emulator.wait_until(
        lambda: next((m for m in zone_lead.messages() if m.kind == "voice"), None), timeout=10
    )
    assert delivered.caption is not None and "#2" in delivered.caption
    assert delivered.buttons() == [[("🙋 我来处理", "alack:2")]]
    # The group got a pointer to the private chat, and nothing of what was written there.
    (pointer,) = emulator.bot_messages(GROUP_ID)
    assert "/alert" in pointer.text and "私聊" in pointer.text and "门禁" not in pointer.text
