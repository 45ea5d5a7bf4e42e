"""A crash between an event's commit and its messages' sending loses nothing, end to end.

The bot runs as a process that never sends from its outbox (no sender, no clock); the
handler's own reply after the event's commit fails (Telegram answers 502), so the handler
stops right there; then the process ends. A bot started afresh must deliver every message
the event owes, exactly once. Before the messaging core, handlers queued those messages
after replying: the failed reply lost them.
"""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from models.registration import get_or_create_member
from tests.emulator import EmuUser, Fault, RecordedRequest, TelegramEmulator
from tests.fixtures import GRID, ZONE, deliver_queued, delivered
from tests.handlers.fixtures import (
    ADMIN_ID,
    LIU_PHONE,
    bound_compound,
    handled,
    import_examples,
    invite_link,
    polling_bot,
    seat,
    share_phone,
    start_registering,
    volunteer_taps,
)


def reply_fails(emulator: TelegramEmulator, person: EmuUser) -> Fault:
    """The bot's next message to ``person`` gets a 502."""
    return emulator.inject(Fault("5xx", method="sendMessage", chat_id=person.id))


def failed_reply(emulator: TelegramEmulator, fault: Fault) -> str:
    """The text of the reply the fault refused: proof the handler got past its commit."""
    assert fault.times == 0, "the handler never replied"
    refused: list[RecordedRequest] = [
        request
        for request in emulator.requests
        if request.fault == fault.kind and request.params.get("chat_id") == fault.chat_id
    ]
    return str(refused[-1].params.get("text"))


def told(emulator: TelegramEmulator, person: EmuUser, phrase: str) -> list[str]:
    return [text for text in delivered(emulator, person.id) if phrase in text]


def buttons(emulator: TelegramEmulator, person: EmuUser) -> list[str]:
    (request,) = emulator.sent(method="sendMessage", chat_id=person.id)
    markup = request.params.get("reply_markup") or {}
    return [button["text"] for row in markup.get("inline_keyboard", []) for button in row]


async def test_registration(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    zhang = emulator.user(user_id=2001, first_name="张建国", language_code="zh")
    await seat(session_factory, zhang, ZONE)
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    async with polling_bot(config, workers=False) as application:
        confirmation = await start_registering(
            wang, await invite_link(emulator, GRID, "lead"), "8613909710002"
        )
        fault = reply_fails(emulator, wang)
        await wang.press(confirmation, "✅ 确认")
        await handled(emulator, application)
    assert "登记成功" in failed_reply(emulator, fault)
    assert delivered(emulator, zhang.id) == []

    await deliver_queued(config, session_factory)
    (text,) = delivered(emulator, zhang.id)
    assert "王芳 已登记为" in text


async def test_leave(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    zhang = emulator.user(user_id=2001, first_name="张建国", language_code="zh")
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    await seat(session_factory, zhang, ZONE)
    await seat(session_factory, wang, GRID)
    async with polling_bot(config, workers=False) as application:
        await wang.send("/leave")
        choose = await wang.next_message()
        await wang.press(choose, choose.buttons()[0][0][0])
        confirm = await wang.next_message()
        fault = reply_fails(emulator, wang)
        await wang.press(confirm, "确定卸任")
        await handled(emulator, application)
    assert "已卸任" in failed_reply(emulator, fault)
    assert delivered(emulator, zhang.id) == []

    await deliver_queued(config, session_factory)
    (text,) = delivered(emulator, zhang.id)
    assert "王芳 已卸任" in text


async def test_revoke(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    await seat(session_factory, wang, GRID)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    async with polling_bot(config, workers=False) as application:
        await admin.send(f"/revoke {GRID} lead")
        asked = await admin.next_message()
        fault = reply_fails(emulator, admin)
        await admin.press(asked, "✅ 确定解除")
        await handled(emulator, application)
    assert "已解除 王芳" in failed_reply(emulator, fault)
    assert delivered(emulator, wang.id) == []

    await deliver_queued(config, session_factory)
    (text,) = delivered(emulator, wang.id)
    assert "县指挥部已解除您的" in text


async def test_assign(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    wang.state.started = True
    async with session_factory() as session:
        await get_or_create_member(session, wang.id, "王芳", None, "zh_Hans")
        await session.commit()
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    async with polling_bot(config, workers=False) as application:
        fault = reply_fails(emulator, admin)
        await admin.send(f"/assign {GRID} lead {wang.id}")
        await handled(emulator, application)
    assert "已任命 王芳" in failed_reply(emulator, fault)
    assert delivered(emulator, wang.id) == []

    await deliver_queued(config, session_factory)
    (text,) = delivered(emulator, wang.id)
    assert "县指挥部已任命您为" in text


async def test_claim(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    deciders = [people["zhao"], people["sun"]]
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    async with polling_bot(config, workers=False) as application:
        await volunteer_taps(emulator, liu, group)
        await liu.next_message()
        confirmation = await share_phone(liu, LIU_PHONE)
        fault = reply_fails(emulator, liu)
        await liu.press(confirmation, "✅ 确认")
        await handled(emulator, application)
    assert "已提交" in failed_reply(emulator, fault)
    assert [delivered(emulator, decider.id) for decider in deciders] == [[], []]

    await deliver_queued(config, session_factory)
    for decider in deciders:
        (text,) = delivered(emulator, decider.id)
        assert "刘志愿" in text and LIU_PHONE in text
        assert buttons(emulator, decider) == ["✅ 同意", "❌ 不同意"]


async def test_decision(
    emulator: TelegramEmulator,
    config: Config,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    zhao = people["zhao"]
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    async with polling_bot(config):  # the claim goes to its deciders as usual
        await volunteer_taps(emulator, liu, group)
        await liu.next_message()
        confirmation = await share_phone(liu, LIU_PHONE)
        await liu.press(confirmation, "✅ 确认")
        asked = await zhao.next_message()

    async with polling_bot(config, workers=False) as application:
        fault = reply_fails(emulator, zhao)
        await zhao.press(asked, "✅ 同意")
        await handled(emulator, application)
    assert "您已同意 刘志愿" in failed_reply(emulator, fault)
    assert told(emulator, liu, "已获批准") == []

    await deliver_queued(config, session_factory)
    assert len(told(emulator, liu, "已获批准")) == 1
