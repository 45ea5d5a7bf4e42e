"""Claims keep their promises end to end, against abuse and failed sends: a claim starts
only from a tap in the group, by whoever tapped, at most one open per volunteer; a claim is
never stranded (its deciders, or the command centre, are asked even when a send fails, and
expiry tells the volunteer at last); deciders list what awaits them."""

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.base import utcnow
from models.people import Claim
from models.posts import node_by_path, post_at
from scheduler.claim_jobs import expire_undecided_claims
from tests.emulator import BotMessage, EmuUser, Fault, TelegramEmulator
from tests.fixtures import UNIT
from tests.handlers.fixtures import (
    ADMIN_ID,
    CHEN_PHONE,
    LIU_PHONE,
    bound_compound,
    holder_of_unit_lead,
    share_and_confirm,
    share_phone,
    volunteer_taps,
)

UNIT_2_LEAD = "单元长 · 1号楼/2单元"
PRIVATE_ONLY = "只能在与我的私聊中使用"


async def post_id_at(
    session_factory: async_sessionmaker[AsyncSession], path: str, role: str = "lead"
) -> int:
    async with session_factory() as session:
        node = await node_by_path(session, path)
        assert node is not None
        post = await post_at(session, node.id, role)
        assert post is not None
        return post.id


async def claims_by_status(session_factory: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with session_factory() as session:
        rows = await session.execute(
            select(Claim.status, func.count()).group_by(Claim.status).order_by(Claim.status)
        )
        return {status: count for status, count in rows}


async def age_claims(session_factory: async_sessionmaker[AsyncSession], hours: int) -> None:
    """Every claim opened ``hours`` earlier than it was."""
    async with session_factory() as session:
        await session.execute(update(Claim).values(created_at=utcnow() - timedelta(hours=hours)))
        await session.commit()


async def the_clock_expires_claims(application: Application) -> int:
    """What the clock's claims sweep does, run now instead of in a few minutes."""
    expired = await expire_undecided_claims(application.session_factory, application.config)
    application.sender.wake()
    return expired


async def expiry_told(emulator: TelegramEmulator, volunteer: EmuUser) -> str:
    """The text of the message telling the volunteer their claim expired, once it came."""
    return await emulator.wait_until(
        lambda: next(
            (m.text for m in volunteer.messages() if "已自动失效" in (m.text or "")), None
        ),
        timeout=10,
        message=f"{volunteer!r} was not told the claim expired",
    )


# --- a claim starts only from a tap, by whoever tapped (#2) --------------------------


async def test_an_outsider_cannot_start_a_claim_from_a_post_id(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    _, people = await bound_compound(emulator, session_factory)
    stranger = emulator.user(user_id=6666, first_name="陌生人", language_code="zh")
    unit_lead = await post_id_at(session_factory, UNIT)
    # Post ids are small integers: the deep link a client could guess.
    for guess in (f"claim_{unit_lead}", f"claim_{unit_lead + 1}", "claim_" + "A" * 32):
        await stranger.send(f"/start {guess}")
        refused = await stranger.next_message()
        assert "认领链接无效" in refused.text and "1号楼" not in refused.text
    await stranger.send_contact(phone_number="+8613900006666")
    assert "/help" in (await stranger.next_message()).text  # no conversation was started
    assert await claims_by_status(session_factory) == {}
    assert people["zhao"].messages() == []


async def test_a_claim_link_works_for_the_volunteer_who_tapped_and_only_once(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    chen = emulator.user(user_id=5002, first_name="陈志愿", language_code="zh")
    answer = await volunteer_taps(emulator, chen, group)
    link = str(answer["url"]).rsplit("start=", 1)[1]
    assert link.startswith("claim_") and str(await post_id_at(session_factory, UNIT)) not in link

    # Passed on to someone else (a screenshot, a forward): refused.
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    await liu.send(f"/start {link}")
    assert "发给另一位志愿者" in (await liu.next_message()).text
    await liu.send_contact(phone_number=LIU_PHONE)
    assert "/help" in (await liu.next_message()).text

    await chen.send(f"/start {link}")
    assert "1号楼/1单元" in (await chen.next_message()).text
    assert "已提交" in await share_and_confirm(chen, CHEN_PHONE)
    await people["zhao"].next_message()
    await chen.send(f"/start {link}")
    assert "用过了" in (await chen.next_message()).text
    assert await claims_by_status(session_factory) == {"open": 1}


async def test_a_volunteer_may_hold_one_open_claim_at_a_time(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, _ = await bound_compound(emulator, session_factory)
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    await volunteer_taps(emulator, liu, group)
    await liu.next_message()
    assert "已提交" in await share_and_confirm(liu, LIU_PHONE)
    second = await volunteer_taps(emulator, liu, group, UNIT_2_LEAD)
    assert second["show_alert"] and "上限" in str(second["text"])
    assert await claims_by_status(session_factory) == {"open": 1}


# --- no claim is stranded (#3) -------------------------------------------------------


async def test_a_failed_reply_strands_no_claim_and_expiry_tells_the_volunteer(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    zhao = people["zhao"]
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    await volunteer_taps(emulator, liu, group)
    await liu.next_message()
    confirmation = await share_phone(liu, LIU_PHONE)
    # Telegram fails the bot's reply "your claim is sent", after the claim's commit.
    failed = emulator.inject(Fault("5xx", method="sendMessage", chat_id=liu.id))
    await liu.press(confirmation, "✅ 确认")
    asked = await zhao.next_message(timeout=10)
    assert "刘志愿" in asked.text and LIU_PHONE in asked.text
    assert "刘志愿" in (await people["sun"].next_message(timeout=10)).text
    assert failed.times == 0

    # Nobody decides. Not yet due: the claim stays open.
    assert await the_clock_expires_claims(application) == 0
    await age_claims(session_factory, 73)
    assert await the_clock_expires_claims(application) == 1
    # (The apology for the failed reply may still be on its way: the expiry is looked for.)
    told = await expiry_told(emulator, liu)
    assert "1号楼/1单元" in told and "72 小时内无人审批" in told
    assert await claims_by_status(session_factory) == {"expired": 1}
    late = await emulator.callback_answer(await zhao.press(asked, "✅ 同意"))
    assert late["show_alert"] and "已失效" in str(late["text"])
    assert await holder_of_unit_lead(session_factory) is None
    # Once only; and the post can be claimed again.
    assert await the_clock_expires_claims(application) == 0
    again = await volunteer_taps(emulator, liu, group)
    assert "私聊" in str(again["text"])


async def test_deciders_who_never_started_the_bot_leave_it_to_the_command_centre_then_expiry(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    people["zhao"].state.started = people["sun"].state.started = False
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    admin.state.started = True
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    await volunteer_taps(emulator, liu, group)
    await liu.next_message()
    assert "已提交" in await share_and_confirm(liu, LIU_PHONE)
    asked = await admin.next_message(timeout=10)
    assert "刘志愿" in asked.text and asked.buttons()[0][0][0] == "✅ 同意"

    await age_claims(session_factory, 80)
    assert await the_clock_expires_claims(application) == 1
    assert "无人审批" in await expiry_told(emulator, liu)
    late = await emulator.callback_answer(await admin.press(asked, "❌ 不同意"))
    assert "已失效" in str(late["text"])


async def test_the_clock_sweeps_claims(application: Application) -> None:
    # The clock starts in the background once the process has become the worker.
    for _ in range(100):
        if application.clock.scheduler is not None:
            break
        await asyncio.sleep(0.05)
    scheduler = application.clock.scheduler
    assert scheduler is not None
    job = scheduler.get_job("expire_claims")
    assert job is not None and job.trigger.interval <= timedelta(minutes=10)


# --- what a decider has before them --------------------------------------------------


def row_labels(message: BotMessage) -> list[str]:
    return [text for row in message.buttons() for text, _ in row]


async def test_deciders_list_their_open_claims_and_decide_from_the_list(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    zhao, wang, han = people["zhao"], people["wang"], people["han"]
    volunteers = [
        (emulator.user(user_id=5001, first_name="刘志愿", language_code="zh"), LIU_PHONE, None),
        (
            emulator.user(user_id=5002, first_name="陈志愿", language_code="zh"),
            CHEN_PHONE,
            UNIT_2_LEAD,
        ),
    ]
    for volunteer, phone, button in volunteers:
        volunteer.state.started = True
        await volunteer_taps(emulator, volunteer, group, *([button] if button else []))
        await volunteer.next_message()
        assert "已提交" in await share_and_confirm(volunteer, phone)

    for _ in volunteers:  # each claim's own request, through the outbox
        assert "岗位认领申请" in (await zhao.next_message(timeout=10)).text
    await zhao.send("/claims")
    listing = await zhao.next_message()
    assert "共 2 份" in listing.text
    assert "1. 刘志愿" in listing.text and "2. 陈志愿" in listing.text
    assert "1号楼/2单元" in listing.text and CHEN_PHONE in listing.text
    assert row_labels(listing) == ["✅ 1 同意", "❌ 1 不同意", "✅ 2 同意", "❌ 2 不同意"]

    await zhao.press(listing, "✅ 2 同意")
    assert "您已同意 陈志愿 认领" in (await zhao.next_message()).text
    await emulator.wait_until(lambda: len(listing.buttons()) == 1)
    assert row_labels(listing) == ["✅ 1 同意", "❌ 1 不同意"]

    wang.mark_read()
    await wang.send("/claims")  # the grid lead decides below the buildings too
    assert "共 1 份" in (await wang.next_message()).text
    await han.send("/claims")  # a lead of another zone
    assert "没有待您审批" in (await han.next_message()).text
    outsider = emulator.user(user_id=6666, first_name="陌生人", language_code="zh")
    await outsider.send("/claims")
    assert "刘志愿" not in (await outsider.next_message()).text
