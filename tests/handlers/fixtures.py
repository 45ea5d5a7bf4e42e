"""Builders shared by the end-to-end tests: the bot polling the emulator, the example county,
people registering and holding posts, volunteers claiming in a bound group."""

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from bot.config import Config
from models.access import scope_of
from models.groups import bind_group
from models.org import Member, Post
from models.people import GroupChat
from models.posts import bind, node_by_path, post_at
from models.registration import get_or_create_member
from models.system import AuditEntry
from tests.emulator import BotMessage, EmuGroup, EmuUser, TelegramEmulator
from tests.fixtures import BUILDING, GRID, OTHER_ZONE, UNIT, import_example_county
from tests.response_fixtures import PEOPLE, seat_county

ADMIN_ID = 900_001
BOT_TOKEN = "123456:TEST-wuji-token-for-the-emulator"
# Telegram's own limits hold in the emulator, with time passing this much faster.
TIME_SCALE = 10.0
GROUP_ID = -4001


@asynccontextmanager
async def polling_bot(config: Config, *, workers: bool = True) -> AsyncIterator[Application]:
    """One bot process's life: built, migrated, polling until the block ends. Without
    ``workers`` neither the clock nor the outbox sender runs: the process dies (or the
    block ends) before anything queued is sent."""
    application = Application.build(config)
    await application.prepare()
    if workers:
        await application.start_workers()
    polling = asyncio.create_task(
        application.dispatcher.start_polling(
            application.bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    try:
        yield application
    finally:
        with suppress(RuntimeError):
            await application.dispatcher.stop_polling()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, timeout=10)
        await application.close()


async def handled(emulator: TelegramEmulator, application: Application) -> None:
    """Wait until the bot has handled every update sent to it so far.

    Polling confirms a batch of updates (the next getUpdates' offset) only after it has
    started a task for each; so once the emulator holds none unconfirmed, waiting for the
    tasks in flight is waiting for them all.
    """
    await emulator.wait_until(
        lambda: not emulator.pending_updates, message="the bot did not fetch its updates"
    )
    await application.finish_updates_in_flight()


# --- the example county -----------------------------------------------------------------


async def import_examples(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        await import_example_county(session)


async def seat(
    session_factory: async_sessionmaker[AsyncSession],
    user: EmuUser,
    path: str,
    role: str = "lead",
) -> None:
    """The user holds the post, as after registering; the bot may write to them."""
    user.state.started = True
    async with session_factory() as session:
        node = await node_by_path(session, path)
        assert node is not None
        post = await post_at(session, node.id, role)
        assert post is not None
        member = await get_or_create_member(session, user.id, user.first_name, None, "zh_Hans")
        await bind(session, post, member, None, how="test")
        await session.commit()


async def audit_actions(session_factory: async_sessionmaker[AsyncSession]) -> list[str]:
    async with session_factory() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


# --- registering by invite --------------------------------------------------------------


async def invite_link(emulator: TelegramEmulator, path: str, role: str) -> str:
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send(f"/invite {path} {role}")
    # Notices about earlier registrations may still be arriving in the admin's chat.
    for _ in range(5):
        reply = await admin.next_message()
        match = re.search(r"https://t\.me/\w+\?start=([A-Za-z0-9_-]+)", reply.text or "")
        if match:
            return match.group(1)
    raise AssertionError(f"no invite link for {path} {role}")


async def start_registering(person: EmuUser, token: str, phone: str) -> BotMessage:
    """Walks the conversation up to its last step; returns the message with the Confirm
    button."""
    await person.send(f"/start {token}")
    offered = (await person.next_message()).text or ""
    assert "分享" in offered or "share" in offered
    await person.send_contact(phone_number=phone)
    await person.next_message()  # phone received, keyboard removed
    return await person.next_message()


def confirm_button(person: EmuUser) -> str:
    return "✅ 确认" if person.language_code != "en" else "✅ Confirm"


async def register(person: EmuUser, token: str, phone: str) -> str:
    """Walks the whole conversation and returns the bot's last word."""
    confirmation = await start_registering(person, token, phone)
    await person.press(confirmation, confirm_button(person))
    return (await person.next_message()).text or ""


# --- groups and claims ------------------------------------------------------------------

UNIT_LEAD = "单元长 · 1号楼/1单元"
LIU_PHONE = "+8613909719999"
CHEN_PHONE = "+8613909718888"


async def press_forged(
    emulator: TelegramEmulator, user: EmuUser, message: BotMessage, data: str
) -> str:
    """A callback with data no button of the message carries, as a modified client sends."""
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


async def forged_press(emulator: TelegramEmulator, user: EmuUser, data: str) -> str:
    """``press_forged`` on the last message the bot sent the user."""
    return await press_forged(emulator, user, user.messages()[-1], data)


def group_texts(emulator: TelegramEmulator, group: EmuGroup | int) -> str:
    """Everything the group was shown: texts and button labels."""
    parts: list[str] = []
    for message in emulator.bot_messages(group, include_deleted=True):
        parts.append(message.text or message.caption or "")
        parts += [text for row in message.buttons() for text, _ in row]
    return "\n".join(parts)


async def open_chats(
    emulator: TelegramEmulator, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The example county with people seated (``tests.response_fixtures``), each of whom
    opened the bot, and a group chat bound to the compound."""
    await seat_county(session_factory)
    async with session_factory() as session:
        grid = await node_by_path(session, GRID)
        assert grid is not None
        session.add(GroupChat(chat_id=GROUP_ID, title="阳光小区志愿者群", node_id=grid.id))
        await session.commit()
    emulator.group(chat_id=GROUP_ID, title="阳光小区志愿者群")
    for telegram_id, name in [(p[2], p[3]) for p in PEOPLE] + [(ADMIN_ID, "指挥部")]:
        person = emulator.user(user_id=telegram_id, first_name=name, language_code="zh")
        await person.send("/start")
        await person.next_message()


async def bound_compound(
    emulator: TelegramEmulator, session_factory: async_sessionmaker[AsyncSession]
) -> tuple[EmuGroup, dict[str, EmuUser]]:
    """阳光小区's group, bound; its grid lead and 1号楼's lead and officer registered."""
    await import_examples(session_factory)
    people = {
        "wang": emulator.user(user_id=2002, first_name="王芳", language_code="zh"),
        "zhao": emulator.user(user_id=2005, first_name="赵强", language_code="zh"),
        "sun": emulator.user(user_id=2006, first_name="孙丽", language_code="zh"),
        "han": emulator.user(user_id=2009, first_name="韩志明", language_code="zh"),
    }
    await seat(session_factory, people["wang"], GRID)
    await seat(session_factory, people["zhao"], BUILDING)
    await seat(session_factory, people["sun"], BUILDING, "officer")
    await seat(session_factory, people["han"], OTHER_ZONE)
    group = emulator.group(GROUP_ID, "阳光小区志愿者群")
    async with session_factory() as session:
        grid = await node_by_path(session, GRID)
        assert grid is not None
        scope = await scope_of(session, ADMIN_ID, [ADMIN_ID])
        await bind_group(session, group.id, group.title, grid.id, scope, ADMIN_ID)
    return group, people


async def volunteer_taps(
    emulator: TelegramEmulator, volunteer: EmuUser, group: EmuGroup, button: str = UNIT_LEAD
) -> dict[str, object]:
    volunteer.mark_read(group)
    await volunteer.command("vacancies", chat=group, mention=True)
    listing = await volunteer.next_message(chat=group)
    return await emulator.callback_answer(await volunteer.press(listing, button))


async def share_phone(volunteer: EmuUser, phone: str) -> BotMessage:
    """Shares the phone; returns the message with the Confirm button."""
    await volunteer.send_contact(phone_number=phone)
    assert "已收到" in ((await volunteer.next_message()).text or "")
    return await volunteer.next_message()


async def share_and_confirm(volunteer: EmuUser, phone: str) -> str:
    confirmation = await share_phone(volunteer, phone)
    await volunteer.press(confirmation, "✅ 确认")
    return (await volunteer.next_message()).text or ""


async def holder_of_unit_lead(session_factory: async_sessionmaker[AsyncSession]) -> int | None:
    async with session_factory() as session:
        node = await node_by_path(session, UNIT)
        assert node is not None
        return await session.scalar(
            select(Member.telegram_id)
            .join(Post, Post.holder_id == Member.id)
            .where(Post.node_id == node.id, Post.role == "lead")
        )
