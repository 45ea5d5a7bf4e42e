"""Invitations and registration end to end: an admin invites, a person registers in chat."""

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.base import utcnow
from models.org import Member, Post
from models.people import Invite
from models.status import county_counts
from tests.emulator import TelegramEmulator
from tests.fixtures import GRID, UNIT, ZONE
from tests.handlers.fixtures import ADMIN_ID, import_examples, invite_link, register


async def test_invited_person_registers_and_sees_their_post(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    token = await invite_link(emulator, ZONE, "lead")
    assert len(token) <= 64

    zhang = emulator.user(user_id=2001, first_name="张建国", language_code="zh-hans")
    done = await register(zhang, token, "+86 138 0013 8000")
    assert "登记成功" in done and "片区长" in done
    admin = emulator.user(user_id=ADMIN_ID)
    told = await admin.next_message()
    assert "张建国" in told.text and "片区长" in told.text

    await zhang.send("/me")
    mine = await zhang.next_message()
    assert ZONE in mine.text and "片区长" in mine.text
    async with session_factory() as session:
        assert (await county_counts(session))["posts_filled"] == 1

    # The lead above a grid post is the zone lead: told when the grid lead registers.
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="en")
    grid_token = await invite_link(emulator, GRID, "lead")
    done = await register(wang, grid_token, "8613909710002")
    assert "registered as" in done and "grid lead" in done
    assert "王芳" in (await zhang.next_message()).text

    # A used link, and a post already held, each get their own clear message.
    stranger = emulator.user(user_id=2003, first_name="Stranger", language_code="en")
    await stranger.send(f"/start {token}")
    assert "already been used" in (await stranger.next_message()).text


async def test_the_database_keeps_only_a_hash_of_the_token(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    token = await invite_link(emulator, UNIT, "officer")
    async with session_factory() as session:
        stored = list(await session.scalars(select(Invite.token_hash)))
    assert stored and token not in stored and all(len(value) == 64 for value in stored)


async def test_wrong_input_at_each_step_gets_a_reprompt(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    token = await invite_link(emulator, UNIT, "officer")
    ma = emulator.user(user_id=2010, first_name="马", language_code="zh")
    await ma.send(f"/start {token}")
    await ma.next_message()
    await ma.send("13909710099")
    assert "分享我的手机号" in (await ma.next_message()).text
    await ma.send_contact(phone_number="+8613909710098", user_id=3333)
    assert "本人" in (await ma.next_message()).text
    await ma.send_contact(phone_number="+8613909710099")
    await ma.next_message()
    await ma.next_message()
    await ma.send("好的")
    assert "确认" in (await ma.next_message()).text
    await ma.send("/cancel")
    assert (await ma.next_message()).text == "已取消。"
    async with session_factory() as session:
        assert (await county_counts(session))["posts_filled"] == 0


async def test_expired_revoked_and_unknown_links_are_explained(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    first = await invite_link(emulator, UNIT, "officer")
    second = await invite_link(emulator, UNIT, "officer")  # revokes the first
    person = emulator.user(user_id=2020, first_name="韩", language_code="zh")
    await person.send(f"/start {first}")
    assert "收回" in (await person.next_message()).text
    async with session_factory() as session:
        await session.execute(update(Invite).values(expires_at=utcnow() - timedelta(minutes=1)))
        await session.commit()
    await person.send(f"/start {second}")
    assert "过期" in (await person.next_message()).text
    await person.send("/start NoSuchToken123")
    assert "无效" in (await person.next_message()).text


async def test_a_phone_unlike_the_roster_waits_for_the_command_centre(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    token = await invite_link(emulator, UNIT, "lead")  # the roster says 13909710005
    person = emulator.user(user_id=2030, first_name="马秀兰", language_code="zh")
    done = await register(person, token, "+8613900000000")
    assert "审核" in done
    admin = emulator.user(user_id=ADMIN_ID)
    review = await admin.next_message()
    assert "手机号与花名册不一致" in review.text and "+8613900000000" in review.text
    async with session_factory() as session:
        assert (await county_counts(session))["posts_filled"] == 0

    await admin.press(review, "✅ 同意")
    assert "县指挥部已批准您的登记" in (await person.next_message(timeout=10)).text
    async with session_factory() as session:
        assert (await county_counts(session))["posts_filled"] == 1


async def test_leaving_frees_the_post_and_tells_the_lead_above(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    zhang = emulator.user(user_id=2001, first_name="张建国", language_code="zh")
    await register(zhang, await invite_link(emulator, ZONE, "lead"), "8613800138000")
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    await register(wang, await invite_link(emulator, GRID, "lead"), "8613909710002")
    assert "王芳" in (await zhang.next_message()).text

    await wang.send("/leave")
    choose = await wang.next_message()
    await wang.press(choose, choose.buttons()[0][0][0])
    confirm = await wang.next_message()
    await wang.press(confirm, "确定卸任")
    assert "已卸任" in (await wang.next_message()).text
    assert "空缺" in (await zhang.next_message()).text
    async with session_factory() as session:
        grid_lead = await session.scalar(
            select(Post).join(Member, Member.id == Post.holder_id).where(Member.telegram_id == 2002)
        )
        assert grid_lead is None
        assert (await county_counts(session))["posts_filled"] == 1
