"""/import in chat: the command centre sends the roster as a document."""

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.status import county_counts
from tests.emulator import TelegramEmulator
from tests.handlers.conftest import ADMIN_ID

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"

BAD_ROSTER = (
    "community,zone,grid,building,unit,room\n"
    "东关社区,片区01,幸福小区,1号楼,1单元,101\n"
    "东关社区,片区01,幸福小区,1号楼,1单元,101\n"
    "东关社区,片区01,幸福小区,,1单元,102\n"
    "东关社区,片区01,幸福小区,1号楼,1单元,<b>&103\n"
).encode()


async def test_a_bad_row_is_listed_by_line_and_nothing_is_written(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="en")
    await admin.send_document("households.csv", BAD_ROSTER, caption="/import")
    reply = await admin.next_message()
    assert "2 problem(s); nothing was imported" in reply.text
    assert "households.csv:3:" in reply.text and "households.csv:4:" in reply.text
    async with session_factory() as session:
        counts = await county_counts(session)
    assert counts["households"] == 0 and counts["zones"] == 0


async def test_import_in_two_steps_then_a_summary(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send("/import")
    assert "花名册" in (await admin.next_message()).text
    await admin.send("这是花名册")
    assert ".xlsx" in (await admin.next_message()).text
    await admin.send_document("notes.txt", b"hello")
    assert "不是 .csv 或 .xlsx" in (await admin.next_message()).text
    content = (EXAMPLES / "households.xlsx").read_bytes()
    await admin.send_document("households.xlsx", content)
    summary = await admin.next_message()
    assert "已导入" in summary.text
    async with session_factory() as session:
        counts = await county_counts(session)
    assert counts["households"] > 0
    assert f"住户 {counts['households']}" in summary.text

    # The same file again adds nothing.
    await admin.send_document("households.xlsx", content, caption="/import")
    assert "住户 0" in (await admin.next_message()).text


async def test_only_the_command_centre_may_import(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    volunteer = emulator.user(user_id=4242, first_name="志愿者", language_code="zh")
    await volunteer.send_document(
        "households.csv", (EXAMPLES / "households.csv").read_bytes(), caption="/import"
    )
    assert "只有县指挥部" in (await volunteer.next_message()).text
    async with session_factory() as session:
        assert (await county_counts(session))["households"] == 0
