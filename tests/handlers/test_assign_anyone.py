"""/assign finds anyone who has messaged the bot, registered or not, by @username or by
Telegram id (#11 item 13)."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.org import Member, Post
from models.posts import node_by_path, post_at
from tests.emulator import BotMessage, EmuUser, TelegramEmulator
from tests.fixtures import UNIT
from tests.handlers.fixtures import ADMIN_ID, import_examples


async def reply_with(person: EmuUser, needle: str, tries: int = 5) -> BotMessage:
    seen: list[str] = []
    for _ in range(tries):
        message = await person.next_message(timeout=10)
        if needle in (message.text or ""):
            return message
        seen.append(message.text or "")
    raise AssertionError(f"no message with {needle!r}; got {seen}")


async def holder(session_factory: async_sessionmaker[AsyncSession], role: str) -> int | None:
    async with session_factory() as session:
        node = await node_by_path(session, UNIT)
        assert node is not None
        post = await post_at(session, node.id, role)
        assert post is not None
        return await session.scalar(
            select(Member.telegram_id)
            .join(Post, Post.holder_id == Member.id)
            .where(Post.id == post.id)
        )


async def test_assign_finds_whoever_has_messaged_the_bot(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")

    # Never registered, only said /start: found by @username, in any case.
    newcomer = emulator.user(
        user_id=4101, first_name="新来的", username="NewFace", language_code="en"
    )
    await newcomer.send("/start")
    await newcomer.next_message()
    await admin.send(f"/assign {UNIT} lead @newface")
    assert "新来的" in (await reply_with(admin, "已任命")).text
    assert await holder(session_factory, "lead") == newcomer.id
    # Told in the language of their Telegram client.
    await reply_with(newcomer, "appointed you")

    # Someone who only wrote some text: found by their Telegram id.
    quiet = emulator.user(user_id=4102, first_name="少言", language_code="zh")
    await quiet.send("你好")
    await quiet.next_message()
    await admin.send(f"/assign {UNIT} officer {quiet.id}")
    await reply_with(admin, "已任命 少言")
    assert await holder(session_factory, "officer") == quiet.id

    # Nobody by that name or id has written to the bot.
    await admin.send(f"/assign {UNIT} officer @ghost")
    await reply_with(admin, "找不到")
    await admin.send(f"/assign {UNIT} officer 99999999999999999999999")
    await reply_with(admin, "找不到")


async def test_a_username_names_whoever_was_last_seen_with_it(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    before = emulator.user(user_id=4201, first_name="旧主", username="relay", language_code="zh")
    await before.send("/start")
    await before.next_message()
    # The username passed to another account, which then wrote to the bot.
    after = emulator.user(user_id=4202, first_name="新主", username="relay", language_code="zh")
    await after.send("/start")
    await after.next_message()

    await admin.send(f"/assign {UNIT} lead @relay")
    assert "新主" in (await reply_with(admin, "已任命")).text
    assert await holder(session_factory, "lead") == after.id
