"""Builders of the notice tests: six people seated down one branch and one outside it, and
a notice composed in chat."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.org import Member, Role
from models.posts import bind, node_by_path, post_at
from tests.emulator import TelegramEmulator
from tests.fixtures import BUILDING, GRID, UNIT, ZONE
from tests.handlers.fixtures import import_examples

OTHER_UNIT = "县教育局片区/育才家属院/2号楼/1单元"

PEOPLE = [
    (ZONE, Role.lead, 7001, "张建国"),
    (GRID, Role.lead, 7002, "王芳"),
    (GRID, Role.officer, 7003, "马晓东"),
    (BUILDING, Role.lead, 7004, "赵强"),
    (UNIT, Role.lead, 7005, "马秀兰"),
    (OTHER_UNIT, Role.lead, 7006, "祁玉梅"),
]
ENGLISH_READER = 7006


async def seat_people(
    emulator: TelegramEmulator, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await import_examples(session_factory)
    async with session_factory() as session:
        for path, role, telegram_id, name in PEOPLE:
            # One reads English: the button comes in each reader's own language.
            locale = "en" if telegram_id == ENGLISH_READER else "zh_Hans"
            member = Member(telegram_id=telegram_id, name=name, locale=locale)
            session.add(member)
            await session.flush()
            node = await node_by_path(session, path)
            assert node is not None
            post = await post_at(session, node.id, role)
            assert post is not None
            await bind(session, post, member, None, how="test")
        await session.commit()
    for _, _, telegram_id, name in PEOPLE:
        # Each has opened the bot once, so Telegram lets it write to them.
        person = emulator.user(user_id=telegram_id, first_name=name, language_code="zh")
        await person.send("/start")
        await person.next_message()


async def compose(
    emulator: TelegramEmulator, author_id: int, text: str, scope_button: str, ack: bool = True
) -> None:
    author = emulator.user(user_id=author_id, first_name="作者", language_code="zh")
    author.mark_read()
    await author.send("/notice")
    assert "通知内容" in (await author.next_message()).text
    await author.send(text)
    await author.press(await author.next_message(), scope_button)
    levels = await author.next_message()
    await author.press(levels, "下一步 ▶")
    await author.press(await author.next_message(), "需要确认" if ack else "不需要确认")
    await author.press(await author.next_message(), "立即发送")
    assert "预览" in (await author.next_message()).text
    assert (await author.next_message()).text == text
    summary = await author.next_message()
    assert "请确认发送" in summary.text
    await author.press(summary, "✅ 确认发送")
