"""Notices down the tree, composed in chat and delivered through the outbox."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.members import member_by_telegram_id
from models.posts import node_by_path
from tests.emulator import TelegramEmulator
from tests.fixtures import GRID, ZONE
from tests.handlers.fixtures import ADMIN_ID
from tests.handlers.notice_fixtures import (
    ENGLISH_READER,
    OTHER_UNIT,
    PEOPLE,
    compose,
    seat_people,
)


async def test_a_county_notice_reaches_everyone_and_acknowledgements_roll_up(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seat_people(emulator, session_factory)
    text = "明早 8 点全员核酸 <全县> & 请带身份证_*[]！😷"
    await compose(emulator, ADMIN_ID, text, "全县")

    for _, _, telegram_id, _ in PEOPLE:
        delivered = await emulator.user(user_id=telegram_id).next_message(timeout=10)
        # byte for byte, through HTML escaping, under its header
        assert delivered.text.split("\n\n", 1)[1] == text
        label = "Received" if telegram_id == ENGLISH_READER else "收到"
        assert delivered.buttons()[0][0][0] == label

    admin = emulator.user(user_id=ADMIN_ID)
    final = await emulator.wait_until(
        lambda: next(
            (m for m in admin.messages() if "发送完毕" in m.text and "6/6" in m.text), None
        ),
        timeout=15,
    )
    assert final is not None

    wang = emulator.user(user_id=7002)
    query = await wang.press(wang.messages()[-1], "收到")
    assert (await emulator.callback_answer(query))["text"] == "已确认收到，谢谢！"
    query = await emulator.user(user_id=7006).press(
        emulator.user(user_id=7006).messages()[-1], "Received"
    )
    await emulator.callback_answer(query)

    admin.mark_read()
    await admin.send("/notices")
    assert "2/6" in (await admin.next_message()).text
    await admin.send("/notice 1")
    rollup = await admin.next_message()
    assert "已确认 2/6" in rollup.text
    assert f"{GRID}：1/4" in rollup.text  # grid lead acked; officer, building, unit did not
    assert "马晓东" in rollup.text and "王芳" not in rollup.text.split("未确认")[1]

    # The grid lead sees only the grid's part, and who is missing there.
    wang.mark_read()
    await wang.send("/notice 1")
    grid_view = await wang.next_message()
    assert "已确认 1/4" in grid_view.text
    assert "张建国" not in grid_view.text and "祁玉梅" not in grid_view.text


async def test_a_lead_sends_only_inside_their_subtree(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seat_people(emulator, session_factory)
    await compose(emulator, 7002, "楼道消杀，今晚 7 点", GRID, ack=False)
    for telegram_id in (7003, 7004, 7005):
        delivered = await emulator.user(user_id=telegram_id).next_message(timeout=10)
        assert delivered.text.endswith("\n\n楼道消杀，今晚 7 点")
        assert delivered.reply_markup is None
    await emulator.wait_until(
        lambda: len(emulator.sent(method="sendMessage", chat_id=7005)) >= 2, timeout=10
    )
    for outsider in (7001, 7006):
        texts = [message.text for message in emulator.user(user_id=outsider).messages()]
        assert not any("楼道消杀" in text for text in texts)


async def test_a_stranger_cannot_acknowledge_or_compose(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seat_people(emulator, session_factory)
    stranger = emulator.user(user_id=7999, first_name="路人", language_code="zh")
    await stranger.send("/notice")
    assert "还没有登记岗位" in (await stranger.next_message()).text


async def test_groups_bound_inside_the_scope_get_it_without_the_button(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    from models.people import GroupChat

    await seat_people(emulator, session_factory)
    inside = emulator.group(chat_id=-4001, title="阳光小区志愿者群")
    outside = emulator.group(chat_id=-4002, title="育才家属院志愿者群")
    async with session_factory() as session:
        grid = await node_by_path(session, GRID)
        other = await node_by_path(session, OTHER_UNIT)
        assert grid is not None and other is not None
        session.add(GroupChat(chat_id=inside.id, title=inside.title, node_id=grid.id))
        session.add(GroupChat(chat_id=outside.id, title=outside.title, node_id=other.id))
        await session.commit()

    await compose(emulator, 7001, "今晚停水通知", ZONE)
    got = await emulator.wait_until(lambda: emulator.bot_messages(inside.id), timeout=10)
    assert [message.text.split("\n\n")[-1] for message in got] == ["今晚停水通知"]
    assert got[0].reply_markup is None
    await emulator.wait_until(
        lambda: any(
            m.text.endswith("今晚停水通知") for m in emulator.user(user_id=7005).messages()
        ),
        timeout=10,
    )
    assert emulator.bot_messages(outside.id) == []


async def test_blocking_the_bot_marks_the_member_unreachable_and_tells_the_lead_above(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seat_people(emulator, session_factory)
    unit_lead = emulator.user(user_id=7005)
    unit_lead.block_bot()  # Telegram sends the bot a my_chat_member update
    building_lead = emulator.user(user_id=7004)
    warning = await building_lead.next_message(timeout=10)
    assert "马秀兰" in warning.text
    async with session_factory() as session:
        member = await member_by_telegram_id(session, 7005)
        assert member is not None and member.reachable is False

    await unit_lead.send("/me")  # writing again unblocks it
    await unit_lead.next_message()

    async def reachable_again() -> bool:
        # The unblocking (a my_chat_member update) and /me are two updates: the reply to
        # one may come before the other is committed.
        async with session_factory() as session:
            member = await member_by_telegram_id(session, 7005)
            return member is not None and member.reachable

    for _ in range(50):
        if await reachable_again():
            break
        await asyncio.sleep(0.1)
    assert await reachable_again()
