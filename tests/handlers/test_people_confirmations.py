"""/revoke asks first, /leave can be cancelled, /cancel takes the contact button away, and
someone holding no post is told how to register when they try /notice (#11 item 13)."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from handlers.admin_people import RevokeStep
from models.posts import node_by_path, post_at
from tests.emulator import BotMessage, EmuUser, TelegramEmulator
from tests.fixtures import GRID, UNIT
from tests.handlers.fixtures import (
    ADMIN_ID,
    import_examples,
    invite_link,
    press_forged,
    seat,
)


async def reply_with(person: EmuUser, needle: str, tries: int = 5) -> BotMessage:
    """The first new message holding ``needle``: messages queued about other things may
    arrive around the reply."""
    seen: list[str] = []
    for _ in range(tries):
        message = await person.next_message(timeout=10)
        if needle in (message.text or ""):
            return message
        seen.append(message.text or "")
    raise AssertionError(f"no message with {needle!r}; got {seen}")


def labels(message: BotMessage) -> list[str]:
    return [label for row in message.buttons() for label, _ in row]


async def holder_of(
    session_factory: async_sessionmaker[AsyncSession], path: str, role: str = "lead"
) -> int | None:
    async with session_factory() as session:
        node = await node_by_path(session, path)
        assert node is not None
        post = await post_at(session, node.id, role)
        assert post is not None
        return post.holder_id


async def test_revoke_asks_first_and_a_stale_or_forged_answer_changes_nothing(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    await seat(session_factory, wang, GRID)
    held_by = await holder_of(session_factory, GRID)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")

    # Cancel: nothing changes, the question loses its buttons.
    await admin.send(f"/revoke {GRID} lead")
    asked = await reply_with(admin, "确定解除")
    assert "王芳" in (asked.text or "") and "网格长" in (asked.text or "")
    assert labels(asked) == ["✅ 确定解除", "取消"]
    await admin.press(asked, "取消")
    await reply_with(admin, "已取消")
    shown = next(m for m in admin.messages() if m.message_id == asked.message_id)
    assert labels(shown) == []
    assert await holder_of(session_factory, GRID) == held_by

    # Two questions open; the second is confirmed, then the first is stale.
    await admin.send(f"/revoke {GRID} lead")
    first = await reply_with(admin, "确定解除")
    await admin.send(f"/revoke {GRID} lead")
    second = await reply_with(admin, "确定解除")
    await admin.press(second, "✅ 确定解除")
    assert "王芳" in (await reply_with(admin, "已解除")).text
    assert await holder_of(session_factory, GRID) is None
    await reply_with(wang, "县指挥部已解除您的")

    # Meanwhile someone else takes the post: the first question must not relieve them.
    li = emulator.user(user_id=2003, first_name="李新", language_code="zh")
    await seat(session_factory, li, GRID)
    query = await admin.press(first, "✅ 确定解除")
    answer = await emulator.callback_answer(query)
    assert "已有变化" in str(answer.get("text")) and answer.get("show_alert")
    await reply_with(admin, "未做任何改动")
    assert await holder_of(session_factory, GRID) is not None

    # A forged button naming no post, and one pressed by someone not in the command centre.
    forged = RevokeStep(post_id=999_999, holder_id=0, confirm=True).pack()
    answer = await emulator.callback_answer(await press_forged(emulator, admin, first, forged))
    assert "不存在" in str(answer.get("text"))
    stranger = emulator.user(user_id=3005, first_name="路人", language_code="zh")
    await stranger.send("/start")
    await stranger.next_message()
    own = RevokeStep(post_id=1, holder_id=0, confirm=True).pack()
    answer = await emulator.callback_answer(
        await press_forged(emulator, stranger, stranger.messages()[-1], own)
    )
    assert "只有县指挥部" in str(answer.get("text"))
    assert await holder_of(session_factory, GRID) is not None


async def test_leave_has_a_cancel_button_at_each_step(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    await seat(session_factory, wang, GRID)
    held_by = await holder_of(session_factory, GRID)

    await wang.send("/leave")
    choose = await reply_with(wang, "卸任哪个岗位")
    assert labels(choose)[-1] == "取消"
    await wang.press(choose, "取消")
    await reply_with(wang, "岗位不变")

    await wang.send("/leave")
    choose = await reply_with(wang, "卸任哪个岗位")
    await wang.press(choose, choose.buttons()[0][0][0])
    confirm = await reply_with(wang, "确定卸任")
    assert labels(confirm) == ["确定卸任", "取消"]
    await wang.press(confirm, "取消")
    await reply_with(wang, "岗位不变")
    assert await holder_of(session_factory, GRID) == held_by


async def test_cancel_takes_the_contact_button_away(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    token = await invite_link(emulator, UNIT, "lead")
    person = emulator.user(user_id=2030, first_name="马秀兰", language_code="zh")
    await person.send(f"/start {token}")
    offered = await person.next_message()
    assert (offered.reply_markup or {}).get("keyboard"), offered.reply_markup
    await person.send("/cancel")
    cancelled = await reply_with(person, "已取消")
    assert cancelled.reply_markup == {"remove_keyboard": True}

    # The one-time keyboard may still be showing after the conversation is over.
    await person.send("/cancel")
    nothing = await reply_with(person, "没有进行中")
    assert nothing.reply_markup == {"remove_keyboard": True}


async def test_a_stranger_is_told_how_to_register_for_notices(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    stranger = emulator.user(user_id=3006, first_name="路人", language_code="zh")
    await stranger.send("/notice")
    refused = (await stranger.next_message()).text or ""
    assert "还没有登记岗位" in refused and "邀请链接" in refused and "发通知" in refused
    assert "组织架构" not in refused

    visitor = emulator.user(user_id=3007, first_name="Visitor", language_code="en")
    await visitor.send("/notice")
    refused = (await visitor.next_message()).text or ""
    assert "not registered" in refused and "invite link" in refused
