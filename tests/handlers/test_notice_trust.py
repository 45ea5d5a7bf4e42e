"""Notices people trust (issue 11, items 5–8): a header saying from whom, which and when; the
receipt kept on the message; /notices in the county's time listing what one received; the
author not chased for their own notice."""

import re

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.org import Member
from tests.emulator import BotMessage, TelegramEmulator
from tests.fixtures import GRID
from tests.handlers.fixtures import ADMIN_ID
from tests.handlers.notice_fixtures import compose, seat_people

COUNTY_TIME = re.compile(r"\d\d-\d\d \d\d:\d\d")


async def notice_for(emulator: TelegramEmulator, telegram_id: int, words: str) -> BotMessage:
    person = emulator.user(user_id=telegram_id)
    found = await emulator.wait_until(
        lambda: next((m for m in person.messages() if words in m.text), None), timeout=10
    )
    assert found is not None
    return found


async def test_a_notice_names_its_sender_number_and_time_and_spares_its_author(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seat_people(emulator, session_factory)
    await compose(emulator, 7002, "楼道消杀，今晚 7 点", GRID)
    delivered = await notice_for(emulator, 7005, "楼道消杀")
    header, body = delivered.text.split("\n\n", 1)
    assert body == "楼道消杀，今晚 7 点"
    assert "通知 #1" in header and "网格长" in header and GRID in header
    assert COUNTY_TIME.search(header) and "UTC" not in header
    # The author's post is the one sending it: no copy, no chasing.
    await emulator.wait_until(
        lambda: len(emulator.sent(method="sendMessage", chat_id=7003)) >= 2, timeout=10
    )
    author_texts = [message.text for message in emulator.user(user_id=7002).messages()]
    assert not any(text.endswith("\n\n楼道消杀，今晚 7 点") for text in author_texts)

    await compose(emulator, ADMIN_ID, "全县明日停水", "全县")
    county = await notice_for(emulator, 7005, "全县明日停水")
    assert "通知 #2" in county.text and "县指挥部" in county.text
    english = await notice_for(emulator, 7006, "全县明日停水")
    assert "Notice #2" in english.text and "the command centre" in english.text


async def test_received_stays_on_the_message_and_in_the_recipients_notices(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seat_people(emulator, session_factory)
    await compose(emulator, ADMIN_ID, "今晚八点开会", "全县")
    unit_lead = emulator.user(user_id=7005)
    delivered = await notice_for(emulator, 7005, "今晚八点开会")

    unit_lead.mark_read()
    await unit_lead.send("/notices")
    listing = (await unit_lead.next_message()).text
    assert "我收到的通知" in listing and "#1" in listing and "未确认" in listing
    assert "UTC" not in listing

    query = await unit_lead.press(delivered, "收到")
    assert (await emulator.callback_answer(query))["text"] == "已确认收到，谢谢！"
    receipt = await emulator.wait_until(
        lambda: next(
            (
                m.buttons()[0][0][0]
                for m in unit_lead.messages()
                if m.message_id == delivered.message_id and m.buttons()
                if m.buttons()[0][0][0].startswith("✅")
            ),
            None,
        ),
        timeout=10,
    )
    assert re.fullmatch(r"✅ 已收到 \d\d:\d\d", receipt or "")
    # Pressed again, the receipt stands and says so.
    again = await unit_lead.press(delivered.message_id, receipt or "")
    assert (await emulator.callback_answer(again))["text"] != "已确认收到，谢谢！"

    unit_lead.mark_read()
    await unit_lead.send("/notices")
    listing = (await unit_lead.next_message()).text
    assert "✅ 已确认" in listing and COUNTY_TIME.search(listing)

    admin = emulator.user(user_id=ADMIN_ID)
    admin.mark_read()
    await admin.send("/notices")
    overview = (await admin.next_message()).text
    assert "#1" in overview and "UTC" not in overview and COUNTY_TIME.search(overview)


async def test_the_missing_are_listed_with_phones_and_nudged_once(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seat_people(emulator, session_factory)
    async with session_factory() as session:
        await session.execute(
            update(Member).where(Member.telegram_id == 7005).values(phone="13800007005")
        )
        await session.commit()
    await compose(emulator, ADMIN_ID, "防汛值班表", "全县")
    await notice_for(emulator, 7005, "防汛值班表")

    admin = emulator.user(user_id=ADMIN_ID)
    admin.mark_read()
    await admin.send("/notice 1")
    rollup = await admin.next_message()
    assert "马秀兰 13800007005" in rollup.text
    query = await admin.press(rollup, "🔔 提醒未确认的人")
    assert (await emulator.callback_answer(query))["text"] == "已提醒 6 人。"
    nudged = await notice_for(emulator, 7005, "提醒您")
    assert "通知 #1" in nudged.text and nudged.buttons()[0][0][0] == "收到"
    again = await admin.press(rollup, "🔔 提醒未确认的人")
    assert "已经提醒过" in (await emulator.callback_answer(again))["text"]


async def test_a_photo_notice_carries_the_header_above_its_own_caption(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seat_people(emulator, session_factory)
    author = emulator.user(user_id=ADMIN_ID, first_name="作者", language_code="zh")
    author.mark_read()
    await author.send("/notice")
    assert "通知内容" in (await author.next_message()).text
    sticker = {"file_id": "s1", "file_unique_id": "u1", "type": "regular", "width": 512}
    sticker |= {"height": 512, "is_animated": False, "is_video": False, "emoji": "👍"}
    await author.send_raw({"sticker": sticker})
    assert "不能作为通知" in (await author.next_message()).text
    await author.send_photo(b"\xff\xd8 leaflet", caption="消杀告示，请张贴")
    await author.press(await author.next_message(), "全县")
    await author.press(await author.next_message(), "下一步 ▶")
    await author.press(await author.next_message(), "需要确认")
    await author.press(await author.next_message(), "立即发送")
    assert "预览" in (await author.next_message()).text
    preview = await author.next_message()
    assert preview.caption == "消杀告示，请张贴"
    summary = await author.next_message()
    await author.press(summary, "✅ 确认发送")

    unit_lead = emulator.user(user_id=7005)
    delivered = await emulator.wait_until(
        lambda: next((m for m in unit_lead.messages() if m.caption), None), timeout=10
    )
    assert delivered is not None
    header, own = (delivered.caption or "").split("\n\n", 1)
    assert own == "消杀告示，请张贴"
    assert "通知 #1" in header and "县指挥部" in header and COUNTY_TIME.search(header)
    assert delivered.buttons() and delivered.buttons()[0][0][0] == "收到"
