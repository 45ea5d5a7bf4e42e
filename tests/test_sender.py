"""The outbox sender against the Telegram emulator: delivery, faults and pacing.

Telegram's limits hold in the emulator with time running ``SCALE`` times faster, and the
sender's pacing is scaled alike, so a second of Telegram time is a tenth of a second here.
"""

import asyncio
import html
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_bot
from bot.config import Config
from bot.config_sections import OutboxConfig
from models.messages import Action, ActionKind, NoticeBody
from models.notices import Notice, NoticeKind
from models.org import Member
from models.outbox.delivery import Outcome, record_outcomes
from models.outbox.table import (
    OutboxMessage,
    OutboxStatus,
    OutgoingMessage,
    delivery_counts,
    enqueue,
)
from models.people import GroupChat
from scheduler import sender as sender_module
from scheduler.ratelimit import Wakeup
from scheduler.sender import OutboxSender
from tests.emulator import Fault, FaultKind, Limits, TelegramEmulator
from tests.fixtures import VerbatimRenderer, say, small_tree

TOKEN = "123456:TEST-wuji-outbox"
SCALE = 10.0
IDLE_TIMEOUT_S = 30.0


def scaled(scale: float = SCALE, **overrides: object) -> OutboxConfig:
    """The default pacing, with time running ``scale`` times faster."""
    defaults = OutboxConfig()
    values: dict[str, object] = {
        "rate_per_s": defaults.rate_per_s * scale,
        "private_chat_per_s": defaults.private_chat_per_s * scale,
        "group_chat_per_min": defaults.group_chat_per_min * scale,
        "poll_interval_s": 0.1,
        "retry_base_s": 0.05,
        "retry_max_s": 0.5,
        "concurrency": 8,
    }
    values.update(overrides)
    return OutboxConfig.model_validate(values)


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, limits=Limits(time_scale=SCALE)) as emulator:
        yield emulator


def emulator_bot(emulator: TelegramEmulator, timeout: float = 2.0) -> Bot:
    return Bot(TOKEN, session=AiohttpSession(api=emulator.api_server, timeout=timeout))


@pytest.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    bot = emulator_bot(emulator)
    yield bot
    await bot.session.close()


def started(emulator: TelegramEmulator, *user_ids: int) -> None:
    for user_id in user_ids:
        emulator.user(user_id).state.started = True  # as if each had pressed Start


async def queue(
    session_factory: async_sessionmaker[AsyncSession], messages: list[OutgoingMessage]
) -> None:
    async with session_factory() as session:
        await enqueue(session, messages)
        await session.commit()


async def send_all(
    session_factory: async_sessionmaker[AsyncSession],
    bot: Bot,
    config: OutboxConfig | None = None,
) -> None:
    await sender_for(session_factory, bot, config or scaled()).run_until_idle(IDLE_TIMEOUT_S)


def sender_for(
    session_factory: async_sessionmaker[AsyncSession], bot: Bot, config: OutboxConfig
) -> OutboxSender:
    renderer = VerbatimRenderer(paid_broadcast=config.allow_paid_broadcast)
    return OutboxSender(session_factory, bot, config, renderer=renderer)


async def outbox_rows(session_factory: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with session_factory() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def texts(emulator: TelegramEmulator, chat_id: int) -> list[str | None]:
    return [message.text for message in emulator.bot_messages(chat_id)]


def sends(emulator: TelegramEmulator, chat_id: int | None = None) -> list[float]:
    """Arrival times of every send request (answered or not), to ``chat_id`` or any."""
    return [
        request.time
        for request in emulator.requests
        if request.method == "sendMessage"
        and (chat_id is None or request.params.get("chat_id") == chat_id)
    ]


async def test_a_notice_reaches_everyone_once_and_verbatim(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    notice = "通知：3号楼 <明天> 9:00 核酸 & 物资_发放 *2* [A栋] 🏠🚑 café"
    users = range(1001, 1041)
    started(emulator, *users)
    await queue(
        session_factory,
        [say(user, html.escape(notice), source="notice:1") for user in users],
    )
    await send_all(session_factory, bot)

    assert all(texts(emulator, user) == [notice] for user in users)
    async with session_factory() as session:
        assert (await delivery_counts(session, "notice:1"))[OutboxStatus.sent] == 40
    assert all(
        row.telegram_message_id and row.sent_at for row in await outbox_rows(session_factory)
    )
    assert not [request for request in emulator.requests if request.status == 429]


async def test_a_flood_storm_pauses_every_send_and_loses_nothing(
    emulator: TelegramEmulator, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # The application's own Bot, whose session retries a 429 inside the request: the
    # sender must see the 429 all the same, to hold every send.
    config = Config()
    config.telegram.token = SecretStr(TOKEN)
    config.telegram.api_server = emulator.base_url
    app_bot = build_bot(config)
    users = range(2001, 2061)
    started(emulator, *users)
    await queue(session_factory, [say(user, "storm") for user in users])
    emulator.inject(Fault("429", method="sendMessage", times=4, retry_after=1))
    try:
        await send_all(session_factory, app_bot, scaled(concurrency=16))
    finally:
        await app_bot.session.close()

    assert all(texts(emulator, user) == ["storm"] for user in users)
    floods = [request.time for request in emulator.requests if request.status == 429]
    assert len(floods) == 4
    for flood in floods:
        # Sends already on the wire may still land just after; then nothing for 1 s.
        during_pause = [t for t in sends(emulator) if flood + 0.2 < t < flood + 0.95]
        assert during_pause == [], f"{len(during_pause)} send(s) during the pause"
    assert {row.attempts for row in await outbox_rows(session_factory)} == {1}


async def test_server_errors_are_retried_until_the_message_goes(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    started(emulator, 3001, 3002)
    emulator.inject(Fault("5xx", chat_id=3001, times=2))
    await queue(session_factory, [say(u, "hi") for u in (3001, 3002)])
    await send_all(session_factory, bot)

    assert texts(emulator, 3001) == ["hi"] and texts(emulator, 3002) == ["hi"]
    assert len(sends(emulator, 3001)) == 3
    first, second = await outbox_rows(session_factory)
    assert (first.status, first.attempts) == ("sent", 3)
    assert (second.status, second.attempts) == ("sent", 1)


@pytest.mark.parametrize("kind", ["timeout", "drop"])
async def test_a_send_without_answer_is_retried(
    kind: FaultKind,
    emulator: TelegramEmulator,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    started(emulator, 3101)
    # A timeout here means Telegram never got the message (deliver=False); had it, the
    # retry would repeat it: the Bot API offers no way to tell.
    emulator.inject(Fault(kind, chat_id=3101, delay=1.5, deliver=False))
    bot = emulator_bot(emulator, timeout=0.5)
    await queue(session_factory, [say(3101, "retry me")])
    try:
        await send_all(session_factory, bot)
    finally:
        await bot.session.close()

    assert texts(emulator, 3101) == ["retry me"]
    (row,) = await outbox_rows(session_factory)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_exhausted_retries_leave_the_message_failed_with_its_reason(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    started(emulator, 3201, 3202)
    emulator.inject(Fault("5xx", chat_id=3201, times=100))
    await queue(
        session_factory,
        [say(u, "x", source="notice:3") for u in (3201, 3202)],
    )
    await send_all(session_factory, bot, scaled(max_attempts=3))

    assert texts(emulator, 3201) == [] and texts(emulator, 3202) == ["x"]
    assert len(sends(emulator, 3201)) == 3
    failed, _ = await outbox_rows(session_factory)
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert "after 3 attempts" in failed.last_error and "Bad Gateway" in failed.last_error
    async with session_factory() as session:
        counts = await delivery_counts(session, "notice:3")
    assert (counts[OutboxStatus.failed], counts[OutboxStatus.sent]) == (1, 1)


@pytest.mark.parametrize("how", ["blocked", "never started"])
async def test_an_unreachable_member_is_flagged_and_the_lead_above_told_once(
    how: str,
    emulator: TelegramEmulator,
    bot: Bot,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        tree = await small_tree(session)
    started(emulator, 101, 102)
    if how == "blocked":
        started(emulator, 201)
        emulator.user(201).block_bot()
    await queue(
        session_factory,
        [say(201, f"notice {n}", member_id=tree.grid_lead.id) for n in range(3)],
    )
    await send_all(session_factory, bot)

    async with session_factory() as session:
        member = await session.get(Member, tree.grid_lead.id)
    assert member is not None and not member.reachable
    expected = "blocked" if how == "blocked" else "chat not found"
    assert member.unreachable_reason is not None and expected in member.unreachable_reason
    statuses = [row.status for row in await outbox_rows(session_factory) if row.chat_id == 201]
    assert statuses == ["unreachable"] * 3
    for superior in (101, 102):
        (told,) = texts(emulator, superior)
        assert told is not None and "张<网格长>" in told and "无法接收" in told


async def test_a_migrated_group_gets_its_messages_under_the_new_id(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    group = emulator.group(-555, "金桥小区志愿者")
    async with session_factory() as session:
        session.add(GroupChat(chat_id=-555, title="金桥小区志愿者"))
        await session.commit()
    new_id = group.migrate()
    await queue(session_factory, [say(-555, f"第{n}条") for n in (1, 2)])
    await send_all(session_factory, bot)

    assert texts(emulator, new_id) == ["第1条", "第2条"]
    assert texts(emulator, -555) == []
    async with session_factory() as session:
        assert list(await session.scalars(select(GroupChat.chat_id))) == [new_id]
    assert {row.chat_id for row in await outbox_rows(session_factory)} == {new_id}


async def test_pacing_keeps_a_burst_to_one_chat_and_one_group_under_the_limits(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    # Fast enough to keep the suite short, slow enough that a loaded machine keeps the pace.
    scale = 10.0
    async with TelegramEmulator(token=TOKEN, limits=Limits(time_scale=scale)) as emulator:
        emulator.group(-777, "楼栋群")
        started(emulator, 4001, *range(4100, 4130))
        burst = [say(4001, f"私{n}") for n in range(12)]
        burst += [say(-777, f"群{n}") for n in range(24)]
        burst += [say(user, "其他") for user in range(4100, 4130)]
        await queue(session_factory, burst)
        bot = emulator_bot(emulator)
        try:
            await send_all(session_factory, bot, scaled(scale, concurrency=16))
        finally:
            await bot.session.close()

        assert [r for r in emulator.requests if r.status == 429] == []
        assert texts(emulator, 4001) == [f"私{n}" for n in range(12)]
        assert texts(emulator, -777) == [f"群{n}" for n in range(24)]
        # Evenly spaced, not a burst and a wait (the first send may be late: it connects).
        for chat_id, gap in ((4001, 1 / scale), (-777, 3 / scale)):
            times = sends(emulator, chat_id)
            assert times[-1] - times[0] > 0.9 * gap * (len(times) - 1)
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert min(gaps) > 0.5 * gap, gaps


async def test_every_kind_of_message_is_sent(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    author, reader = emulator.user(5001), emulator.user(5002)
    started(emulator, 5002)
    photo = await author.send_photo(b"\xff\xd8jpeg", caption="原图")
    async with session_factory() as session:
        copied = Notice(
            author_telegram_id=5001,
            levels=["unit"],
            kind=NoticeKind.copy,
            text="原图",  # its own caption, kept as HTML
            from_chat_id=5001,
            message_id=photo["message_id"],
        )
        written = Notice(
            author_telegram_id=5001, levels=["unit"], kind=NoticeKind.text, text="<b>停水</b>通知"
        )
        session.add_all([copied, written])
        await session.commit()
        ack = (Action(ActionKind.acknowledge_notice, written.id),)
        await enqueue(
            session,
            [
                say(5002, "<b>请确认</b>", actions=ack),
                OutgoingMessage(chat_id=5002, content=NoticeBody(written.id), actions=ack),
                OutgoingMessage(chat_id=5002, content=NoticeBody(copied.id)),
            ],
        )
        await session.commit()
    await send_all(session_factory, bot)

    confirm, notice, picture = reader.messages()
    button = [[("收到", f"ack:{written.id}")]]
    assert (confirm.text, confirm.buttons()) == ("请确认", button)
    # A written notice comes under its header (who sent it, its number, when).
    header, body = notice.text.split("\n\n", 1)
    assert header.startswith(f"📢 通知 #{written.id}") and body == "停水通知"
    assert notice.buttons() == button
    # A copied one carries the header in its caption, above its own.
    assert picture.kind == "photo" and picture.caption is not None
    header, own = picture.caption.split("\n\n", 1)
    assert header.startswith(f"📢 通知 #{copied.id}") and own == "原图"


async def test_paid_broadcast_is_asked_for_on_every_send(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    started(emulator, 6001, 6002)
    await queue(session_factory, [say(u, "x") for u in (6001, 6002)])
    config = scaled(allow_paid_broadcast=True, paid_rate_per_s=1000 * SCALE)
    sender = sender_for(session_factory, bot, config)
    assert sender.pacer.interval == pytest.approx(1 / (1000 * SCALE))
    await sender.run_until_idle(IDLE_TIMEOUT_S)
    flags = [r.params.get("allow_paid_broadcast") for r in emulator.requests if r.status == 200]
    assert flags == [True, True]  # the sender's requests are JSON


async def test_a_message_enqueued_twice_by_key_arrives_once(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    started(emulator, 7001)
    message = say(7001, "一次", dedupe_key="notice:5:member:9")
    await queue(session_factory, [message])
    await queue(session_factory, [message])
    await send_all(session_factory, bot)
    await queue(session_factory, [message])  # even after it went
    await send_all(session_factory, bot)
    assert texts(emulator, 7001) == ["一次"]


async def test_rows_left_in_flight_by_a_crash_go_on_start(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    started(emulator, 8001, 8002)
    await queue(session_factory, [say(u, "x") for u in (8001, 8002)])
    async with session_factory() as session:
        await session.execute(update(OutboxMessage).values(status="sending"))
        await session.commit()
    await send_all(session_factory, bot)
    assert texts(emulator, 8001) == ["x"] and texts(emulator, 8002) == ["x"]


async def test_stopping_puts_back_what_was_not_sent(
    emulator: TelegramEmulator, bot: Bot, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    emulator.group(-888, "单元群")
    await queue(session_factory, [say(-888, str(n)) for n in range(6)])
    sender = sender_for(session_factory, bot, scaled())
    await sender.start()
    await emulator.wait_until(lambda: len(texts(emulator, -888)) >= 2, timeout=10)
    await sender.stop()
    statuses = {row.status for row in await outbox_rows(session_factory)}
    assert "sending" not in statuses and "pending" in statuses

    await send_all(session_factory, bot)
    assert texts(emulator, -888) == [str(n) for n in range(6)]


async def test_wake_sends_at_once_rather_than_at_the_next_poll(
    emulator: TelegramEmulator,
    bot: Bot,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started(emulator, 9001)
    asleep = asyncio.Event()

    class WatchedWakeup(Wakeup):
        async def wait(self, seconds: float | None, since: asyncio.Event | None = None) -> None:
            if seconds == 30:
                asleep.set()  # the claimer found nothing and sleeps for the whole poll
            await super().wait(seconds, since)

    monkeypatch.setattr(sender_module, "Wakeup", WatchedWakeup)
    sender = sender_for(session_factory, bot, scaled(poll_interval_s=30))
    await sender.start()
    try:
        await asyncio.wait_for(asleep.wait(), IDLE_TIMEOUT_S)
        await queue(session_factory, [say(9001, "now")])
        sender.wake()
        await emulator.wait_until(lambda: texts(emulator, 9001) == ["now"], timeout=2)
    finally:
        await sender.stop()


async def test_a_wake_while_the_claim_reads_the_outbox_is_not_lost(
    emulator: TelegramEmulator,
    bot: Bot,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started(emulator, 9002)
    look = sender_module.next_due_at
    reads = 0
    sender = sender_for(session_factory, bot, scaled(poll_interval_s=30))

    async def committed_meanwhile(session: AsyncSession, *args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        due = await look(session, *args, **kwargs)
        reads += 1
        if reads == 1:  # a row committed, and the sender woken, after the claim saw nothing
            await queue(session_factory, [say(9002, "meanwhile")])
            sender.wake()
        return due

    monkeypatch.setattr(sender_module, "next_due_at", committed_meanwhile)
    await sender.start()
    try:
        await emulator.wait_until(lambda: texts(emulator, 9002) == ["meanwhile"], timeout=3)
    finally:
        await sender.stop()


async def test_an_outcome_the_database_refuses_does_not_hold_up_the_others(
    emulator: TelegramEmulator,
    bot: Bot,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started(emulator, *range(9101, 9111))
    await queue(session_factory, [say(u, "x") for u in range(9101, 9111)])
    ids = [row.id for row in await outbox_rows(session_factory)]
    poisoned = ids[3]
    record = record_outcomes  # what scheduler.sender calls, here wrapped
    recorded: set[int] = set()
    refused = asyncio.Event()
    settled = asyncio.Event()

    async def refusing(session: AsyncSession, outcomes: Sequence[Outcome], *args: Any) -> None:
        if any(outcome.id == poisoned for outcome in outcomes):
            refused.set()
            raise IntegrityError("UPDATE outbox", {}, Exception("a bug"))
        await record(session, outcomes, *args)
        recorded.update(outcome.id for outcome in outcomes)
        if refused.is_set() and recorded >= set(ids) - {poisoned}:
            settled.set()

    monkeypatch.setattr(sender_module, "record_outcomes", refusing)
    sender = sender_for(session_factory, bot, scaled())
    await sender.start()
    try:
        await asyncio.wait_for(settled.wait(), IDLE_TIMEOUT_S)
    finally:
        await sender.stop()
    assert all(texts(emulator, u) == ["x"] for u in range(9101, 9111))
    statuses = {row.id: row.status for row in await outbox_rows(session_factory)}
    assert statuses.pop(poisoned) == "sending"  # put back at the next start
    assert set(statuses.values()) == {"sent"}
