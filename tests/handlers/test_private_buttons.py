"""Buttons that show or change one person's own data work in private chats only: a
modified client pressing them in a group gets an alert, and the group sees nothing."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.org import Post
from models.posts import node_by_path, post_at
from tests.emulator import TelegramEmulator
from tests.fixtures import GRID
from tests.handlers.fixtures import (
    bound_compound,
    group_texts,
    press_forged,
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


# --- private buttons in a group (#14) ------------------------------------------------


async def test_private_buttons_forged_in_a_group_are_refused_and_show_nothing(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    wang = people["wang"]  # the grid lead, a member of the group
    wang.mark_read(group)
    await wang.command("vacancies", chat=group, mention=True)
    listing = await wang.next_message(chat=group)
    shown = (listing.text, listing.buttons())
    grid_lead = await post_id_at(session_factory, GRID)
    forged = [
        "pvac:0",  # the lead's own vacancies
        f"leave:{grid_lead}:0",  # "leave which post?" naming the lead's post
        f"leave:{grid_lead}:1",  # leaving it
        "reg:1",
        "claim:1",
        "claimd:1:1",
        "claimw:1",
        "ack:1",
        "ncancel:1",
        "nsc:0",
        "ncf:1",
    ]
    for data in forged:
        answer = await emulator.callback_answer(await press_forged(emulator, wang, listing, data))
        assert answer["show_alert"] and PRIVATE_ONLY in str(answer["text"]), (data, answer)
    # Nothing was shown in the group, nothing changed there, and the post is still held.
    assert (listing.text, listing.buttons()) == shown
    assert len(emulator.bot_messages(group, include_deleted=True)) == 1
    assert "王芳" not in group_texts(emulator, group) and GRID + "/" not in listing.text
    assert wang.messages() == []
    async with session_factory() as session:
        post = await session.get(Post, grid_lead)
        assert post is not None and post.holder_id is not None

    # In the lead's private chat the same button works.
    await wang.send("/vacancies")
    mine = await wang.next_message()
    answer = await emulator.callback_answer(await wang.press(mine, "下一页 ▶"))
    assert not answer["show_alert"]
    await emulator.wait_until(lambda: "第 2/2 页" in (mine.text or ""))
