"""/assign refuses an @username seen on several members and asks for the Telegram id;
/whois shows each of them."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.org import Member, Post
from models.posts import node_by_path, post_at
from models.registration import get_or_create_member
from tests.emulator import TelegramEmulator
from tests.fixtures import UNIT
from tests.handlers.fixtures import (
    ADMIN_ID,
    bound_compound,
    holder_of_unit_lead,
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


# --- /assign @username (#15) ---------------------------------------------------------


async def test_assign_refuses_a_username_seen_on_several_members(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await bound_compound(emulator, session_factory)
    async with session_factory() as session:
        await get_or_create_member(session, 7001, "前主人", None, None, "lucky_star")
        await get_or_create_member(session, 7002, "新主人", None, None, "lucky_star")
        await session.commit()
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send(f"/assign {UNIT} lead @lucky_star")
    refused = await admin.next_message()
    assert "2 位成员" in refused.text and "数字 ID" in refused.text
    assert await holder_of_unit_lead(session_factory) is None

    await admin.send(f"/assign {UNIT} lead 7002")
    assert "新主人" in (await admin.next_message()).text
    async with session_factory() as session:
        holder = await session.scalar(
            select(Member.telegram_id)
            .join(Post, Post.holder_id == Member.id)
            .where(Post.id == await post_id_at(session_factory, UNIT))
        )
    assert holder == 7002

    # /whois names each member last seen with it rather than whichever comes first.
    await admin.send("/whois @lucky_star")
    whois = await admin.next_message()
    assert "前主人" in whois.text and "新主人" in whois.text
