"""Hostile and unlucky input end to end: a former admin in the middle of an import, long
cells, rosters past the limits; long and control-character arguments, forged button ids; a
button whose handler fails after answering; an update delivered twice."""

import asyncio
import io
from pathlib import Path

from aiogram.types import Update
from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from bot.config import Config
from models.roster import RosterSource, import_roster
from models.status import county_counts
from tests.emulator import BotMessage, EmuUser, Fault, TelegramEmulator
from tests.handlers.conftest import ADMIN_ID

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
ZONE = "县卫健局片区"
APOLOGY = "抱歉，处理时出了问题"


async def import_examples(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        await import_roster(
            session,
            [
                RosterSource("households.csv", (EXAMPLES / "households.csv").read_bytes()),
                RosterSource("people.csv", (EXAMPLES / "people.csv").read_bytes()),
            ],
        )


async def households_count(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        return (await county_counts(session))["households"]


def forged_press(emulator: TelegramEmulator, user: EmuUser, message: BotMessage, data: str) -> str:
    """A callback with data no button carries, as a modified client sends it."""
    world = emulator.world
    query_id = world.new_callback_query(user.id, message.chat_id, message.message_id, data)
    world.push_update(
        "callback_query",
        {
            "id": query_id,
            "from": user.to_api(),
            "message": world.bot_message_api(message),
            "chat_instance": "forged",
            "data": data,
        },
    )
    return query_id


# --- /import ----------------------------------------------------------------------------------


async def test_a_former_admin_cannot_finish_an_import(
    emulator: TelegramEmulator,
    application: Application,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="en")
    await admin.send("/import")
    assert "Send the roster file" in (await admin.next_message()).text
    config.admins.telegram_ids = []  # removed from the command centre meanwhile
    await admin.send_document("households.csv", (EXAMPLES / "households.csv").read_bytes())
    assert "Only the county command centre" in (await admin.next_message()).text
    assert await households_count(session_factory) == 0
    # The waiting state is gone: another file is not taken for a roster either.
    await admin.send_document("households.csv", (EXAMPLES / "households.csv").read_bytes())
    assert "Only the county command centre" not in (await admin.next_message()).text
    assert await households_count(session_factory) == 0


async def test_long_cells_give_the_problem_list_not_an_apology(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="en")
    rows = "".join(f"{ZONE},lead,张{index},{index}{'1' * 5_000}\n" for index in range(30))
    people = f"path,role,name,phone\n{rows}".encode()
    await admin.send_document("people.csv", people, caption="/import")
    reply = await admin.next_message()
    assert "people.csv has 30 problem(s); nothing was imported" in reply.text
    assert 'people.csv:2: malformed phone "011111' in reply.text
    assert len(reply.text) < 4_096
    listing = await admin.next_message()
    assert listing.kind == "document" and "All 30 problems" in (listing.caption or "")


async def test_a_roster_past_the_limits_is_refused_naming_the_setting(
    emulator: TelegramEmulator,
    application: Application,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="en")
    config.roster.max_rows = 3
    households = (EXAMPLES / "households.csv").read_bytes()
    await admin.send_document("households.csv", households, caption="/import")
    reply = (await admin.next_message()).text
    assert "households.csv has more than 3 rows" in reply and "[roster] max_rows" in reply

    config.roster.max_rows = 500_000
    config.roster.max_xlsx_mb = 1
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["community", "zone", "grid", "building", "unit", "room"])
    for index in range(6_000):
        sheet.append(["园林路社区", ZONE, "阳光小区", "1号楼", f"{index // 20}单元", str(index)])
    content = io.BytesIO()
    workbook.save(content)
    await admin.send_document("households.xlsx", content.getvalue(), caption="/import")
    reply = (await admin.next_message()).text
    assert "households.xlsx unpacks to " in reply
    assert "more than the 1 MB one import takes ([roster] max_xlsx_mb" in reply
    assert await households_count(session_factory) == 0


# --- long and control-character arguments ---------------------------------------------------


async def test_a_long_or_nul_path_is_quoted_short_not_answered_with_an_apology(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    long_path = "片" * 4_080
    await admin.send(f"/tree {long_path}")
    reply = (await admin.next_message()).text
    assert "不在您负责的范围内" in reply and len(reply) < 200
    assert "片" * 63 + "…" in reply

    for command in ("/tree", "/whois"):
        await admin.send(f"{command} {ZONE}\x00")
        reply = (await admin.next_message()).text
        assert "不在您负责的范围内" in reply and "\x00" not in reply
        assert f"{ZONE}\ufffd" in reply

    await admin.send(f"/whois @{'a' * 4_000}")
    reply = (await admin.next_message()).text
    assert "找不到" in reply and len(reply) < 200

    # The same path without the NUL is found.
    await admin.send(f"/tree {ZONE}")
    assert ZONE in (await admin.next_message()).text
    assert APOLOGY not in "\n".join(m.text or "" for m in admin.messages())

    group = emulator.group(-4101, "阳光小区志愿者群")
    for path in (f"{ZONE}\x00", "楼" * 4_080):
        await admin.command("bind", path, chat=group)
        reply = (await admin.next_message(chat=group)).text
        assert "找不到路径" in reply and len(reply) < 300 and "\x00" not in reply
    assert APOLOGY not in "\n".join(m.text or "" for m in group.messages())


async def test_forged_node_ids_out_of_range_are_stale_buttons(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    stranger = emulator.user(user_id=4102, first_name="路人", language_code="zh")
    group = emulator.group(-4102, "阳光小区志愿者群")
    await stranger.command("bind", chat=group)
    refused = await stranger.next_message(chat=group)
    for node_id in ("0", "-1", str(2**31), str(2**63), "9" * 30):
        answer = await emulator.callback_answer(
            forged_press(emulator, stranger, refused, f"gbind:{node_id}")
        )
        assert answer["show_alert"] and "按钮已失效" in answer["text"], node_id
    assert len(group.messages()) == 1  # no apology either


# --- a button that fails after it was answered ----------------------------------------------


async def test_a_button_that_fails_after_its_answer_gets_the_apology_in_the_chat(
    emulator: TelegramEmulator, application: Application
) -> None:
    li = emulator.user(user_id=4103, first_name="李", language_code="zh-hans")
    await li.send("/lang")
    menu = await li.next_message()
    # /lang answers the press first, then says so in a message: that message fails.
    emulator.inject(Fault("5xx", method="sendMessage", chat_id=li.id))
    query = await li.press(menu, "English")
    answer = await emulator.callback_answer(query)
    assert answer["text"] is None  # the handler's own, empty answer
    apology = (await li.next_message()).text
    assert apology.startswith(("Sorry, something went wrong", APOLOGY)), apology


# --- an update delivered twice ----------------------------------------------------------------


async def test_an_update_delivered_twice_is_handled_once(
    emulator: TelegramEmulator, application: Application
) -> None:
    alice = emulator.user(user_id=4104, first_name="Alice", language_code="en")
    await alice.send("hi")  # the chat exists once the user wrote
    await alice.next_message()
    raw = {
        "update_id": 77_000_001,
        "message": {
            "message_id": 9_001,
            "date": 1_700_000_000,
            "chat": {"id": alice.id, "type": "private", "first_name": "Alice"},
            "from": alice.to_api(),
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        },
    }
    bot, dispatcher = application.bot, application.dispatcher

    def update() -> Update:
        return Update.model_validate(raw, context={"bot": bot})

    await dispatcher.feed_update(bot, update())
    await dispatcher.feed_update(bot, update())
    # Two deliveries at once, as to two webhook replicas: one of them goes on.
    raw["update_id"] = 77_000_002
    await asyncio.gather(
        dispatcher.feed_update(bot, update()), dispatcher.feed_update(bot, update())
    )
    await asyncio.sleep(0.2)
    helps = [m for m in alice.messages() if "/lang" in (m.text or "")]
    assert len(helps) == 2
