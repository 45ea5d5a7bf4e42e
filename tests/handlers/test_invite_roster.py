"""The single-post invite and the phone-mismatch review name whom the roster means for the
post beside the link or the sharer, and every role in the reader's own words (#11 item 12)."""

import io

from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from tests.emulator import BotMessage, EmuUser, TelegramEmulator
from tests.fixtures import BUILDING, OTHER_ZONE, UNIT
from tests.handlers.fixtures import ADMIN_ID, import_examples, invite_link, register, seat

# examples/people.csv: the unit lead of 1号楼/1单元.
ROSTER_NAME = "马秀兰"
ROSTER_DIGITS = "13909710005"


async def reply_with(person: EmuUser, needle: str, tries: int = 5) -> BotMessage:
    """The first new message holding ``needle``: messages queued about other things (a
    registration told to the lead above) may arrive around the reply."""
    seen: list[str] = []
    for _ in range(tries):
        message = await person.next_message(timeout=10)
        if needle in (message.text or ""):
            return message
        seen.append(message.text or "")
    raise AssertionError(f"no message with {needle!r}; got {seen}")


def no_internal_role(text: str) -> None:
    """A Chinese text names roles in Chinese: no key like "lead" shows through."""
    assert "lead" not in text and "officer" not in text, text


async def switch_to_english(person: EmuUser) -> None:
    await person.send("/lang")
    await person.press(await reply_with(person, "Choose your language"), "English")
    await reply_with(person, "Language set")


async def test_a_single_post_invite_names_the_roster_person_in_the_readers_words(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send(f"/invite {UNIT} lead")
    link = await reply_with(admin, "start=")
    assert "单元长" in (link.text or "")
    assert ROSTER_NAME in (link.text or "") and ROSTER_DIGITS in (link.text or "")
    no_internal_role(link.text or "")

    # In English the title is English; the roster names nobody for the unit's officer.
    await switch_to_english(admin)
    await admin.send(f"/invite {UNIT} officer")
    english_link = await reply_with(admin, "start=")
    assert "social officer" in (english_link.text or "")
    assert "roster names nobody" in (english_link.text or "")

    # A building lead may invite to the unit below it and sees the roster's person too.
    zhao = emulator.user(user_id=2005, first_name="赵强", language_code="zh")
    await seat(session_factory, zhao, BUILDING)
    await zhao.send(f"/invite {UNIT} lead")
    lead_link = await reply_with(zhao, "start=")
    assert ROSTER_NAME in (lead_link.text or "") and "单元长" in (lead_link.text or "")

    # A lead of another zone gets neither a link nor the roster's person.
    han = emulator.user(user_id=2009, first_name="韩志明", language_code="zh")
    await seat(session_factory, han, OTHER_ZONE)
    await han.send(f"/invite {UNIT} lead")
    refused = await han.next_message()
    assert "start=" not in (refused.text or "")
    assert ROSTER_NAME not in (refused.text or "") and ROSTER_DIGITS not in (refused.text or "")


async def test_refusals_name_the_post_by_its_title(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    holder = emulator.user(user_id=2030, first_name="马秀兰", language_code="zh")
    await seat(session_factory, holder, UNIT)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send(f"/invite {UNIT} lead")
    held = await reply_with(admin, "已有人担任")
    assert "单元长" in (held.text or "")
    no_internal_role(held.text or "")

    await switch_to_english(admin)
    await admin.send(f"/assign {UNIT} lead {ADMIN_ID}")
    english = await reply_with(admin, "already held")
    assert "unit lead" in (english.text or "")


async def test_the_phone_review_shows_the_roster_beside_the_sharer(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="Desk", language_code="en")
    # The review is queued for the command centre: its language is the one it chose.
    await switch_to_english(admin)
    token = await invite_link(emulator, UNIT, "lead")
    person = emulator.user(user_id=2030, first_name="Xiulan", language_code="zh")
    assert "审核" in await register(person, token, "+8613900000000")

    review = await reply_with(admin, "review")
    text = review.text or ""
    assert "unit lead" in text
    assert "Xiulan" in text and "+8613900000000" in text
    assert ROSTER_NAME in text and ROSTER_DIGITS in text
    assert [label for row in review.buttons() for label, _ in row]

    # The open claims list it the same way, for a review taken up later.
    await admin.send("/claims")
    listed = (await reply_with(admin, "unlike the roster")).text or ""
    assert "Xiulan" in listed and "+8613900000000" in listed
    assert f"the roster names {ROSTER_NAME}" in listed and ROSTER_DIGITS in listed


async def test_a_post_may_be_named_by_its_title(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send(f"/invite {UNIT} 单元长")
    link = await reply_with(admin, "start=")
    assert "单元长" in (link.text or "") and ROSTER_NAME in (link.text or "")
    # A title of another level names no post at this node.
    await admin.send(f"/invite {BUILDING} 单元长")
    assert "没有 单元长 岗位" in ((await reply_with(admin, "岗位")).text or "")
    await admin.send("/invite")
    usage = (await reply_with(admin, "用法")).text or ""
    assert "单元长" in usage


async def test_the_invite_sheet_speaks_the_readers_language(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send(f"/invite {BUILDING}")
    sheet = await admin.next_message(timeout=10)
    assert sheet.document is not None, sheet.text
    book = load_workbook(io.BytesIO(emulator.download(sheet.document)))
    header, *rows = [list(row) for row in book.active.iter_rows(values_only=True)]
    assert header == ["路径", "岗位", "名单姓名", "名单电话", "邀请链接"]
    posts = {row[1] for row in rows}
    assert "单元长" in posts and "楼栋长" in posts, posts
    for row in rows:
        no_internal_role(str(row[1]))
        assert str(row[4]).startswith("https://t.me/") and "start=" in str(row[4])
    roster_row = next(row for row in rows if row[0] == UNIT and row[1] == "单元长")
    assert roster_row[2] == ROSTER_NAME and ROSTER_DIGITS in str(roster_row[3])

    await switch_to_english(admin)
    await admin.send(f"/invite {UNIT}")
    english = await admin.next_message(timeout=10)
    assert english.document is not None, english.text
    book = load_workbook(io.BytesIO(emulator.download(english.document)))
    header, *rows = [list(row) for row in book.active.iter_rows(values_only=True)]
    assert header == ["Path", "Post", "Roster name", "Roster phone", "Invite link"]
    assert {row[1] for row in rows} <= {"unit lead", "social officer"}, rows
