"""Volunteers' group chats end to end: the bot added and removed, /bind, /unbind, migration."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.people import GroupChat
from models.posts import node_by_path
from tests.emulator import TelegramEmulator
from tests.fixtures import BUILDING, GRID, OTHER_ZONE
from tests.handlers.fixtures import (
    ADMIN_ID,
    GROUP_ID,
    audit_actions,
    group_texts,
    handled,
    import_examples,
    press_forged,
    seat,
)


async def node_id(session_factory: async_sessionmaker[AsyncSession], path: str) -> int:
    async with session_factory() as session:
        node = await node_by_path(session, path)
        assert node is not None
        return node.id


async def bound_node(
    session_factory: async_sessionmaker[AsyncSession], chat_id: int
) -> tuple[bool, int | None]:
    """(the group is known, the node it is bound to)."""
    async with session_factory() as session:
        group = await session.get(GroupChat, chat_id)
        return group is not None, group.node_id if group else None


async def test_the_bot_added_asks_for_bind_and_removed_forgets_the_binding(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    await seat(session_factory, wang, GRID)
    group = emulator.group(GROUP_ID, "阳光小区志愿者群")
    await emulator.add_bot_to_group(group, by=wang)
    prompt = await wang.next_message(chat=group)
    assert "/bind" in prompt.text and "个人信息" in prompt.text
    assert await bound_node(session_factory, group.id) == (True, None)

    await wang.command("bind", GRID, chat=group, mention=True)
    bound = await wang.next_message(chat=group)
    assert bound.text.startswith(f"已绑定：{GRID}（空缺岗位 11 个）")
    grid_id = await node_id(session_factory, GRID)
    assert await bound_node(session_factory, group.id) == (True, grid_id)

    await emulator.remove_bot_from_group(group, by=wang)
    await handled(emulator, application)
    assert await bound_node(session_factory, group.id) == (False, None)
    assert (await audit_actions(session_factory))[-2:] == ["group.bound", "group.unbound"]
    assert "王芳" not in group_texts(emulator, group)


async def test_bind_is_refused_to_people_without_a_post(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    group = emulator.group(GROUP_ID, "阳光小区志愿者群")
    stranger = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    await stranger.command("bind", chat=group, mention=True)
    assert "只有已登记岗位" in (await stranger.next_message(chat=group)).text
    await stranger.command("bind", GRID, chat=group)
    assert "只有已登记岗位" in (await stranger.next_message(chat=group)).text
    await stranger.command("unbind", chat=group)
    assert "尚未绑定" in (await stranger.next_message(chat=group)).text
    await stranger.command("vacancies", chat=group, mention=True)
    assert "/bind" in (await stranger.next_message(chat=group)).text
    await stranger.send("/bind")
    assert "群里" in (await stranger.next_message()).text
    assert await bound_node(session_factory, group.id) == (False, None)


async def test_a_lead_picks_a_node_and_a_forged_node_is_refused(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=2002, first_name="王芳", language_code="zh")
    await seat(session_factory, wang, GRID)
    await seat(session_factory, wang, BUILDING, "officer")
    group = emulator.group(GROUP_ID, "阳光小区志愿者群")

    await wang.command("bind", chat=group, mention=True)
    choose = await wang.next_message(chat=group)
    assert [row[0][0] for row in choose.buttons()] == [GRID, BUILDING]

    other_zone = await node_id(session_factory, OTHER_ZONE)
    forged = await press_forged(emulator, wang, choose, f"gbind:{other_zone}")
    answer = await emulator.callback_answer(forged)
    assert answer["show_alert"] and "无权" in answer["text"]
    assert await bound_node(session_factory, group.id) == (False, None)

    await emulator.callback_answer(await wang.press(choose, GRID))
    await emulator.wait_until(lambda: (choose.text or "").startswith("已绑定"))
    # Two posts of the compound's twelve are held.
    assert choose.text.startswith(f"已绑定：{GRID}（空缺岗位 10 个）")
    assert choose.buttons() == []
    assert await bound_node(session_factory, group.id) == (
        True,
        await node_id(session_factory, GRID),
    )

    await wang.command("bind", BUILDING, chat=group)
    assert "/unbind" in (await wang.next_message(chat=group)).text

    outsider = emulator.user(user_id=2009, first_name="韩志明", language_code="zh")
    await seat(session_factory, outsider, OTHER_ZONE)
    outsider.mark_read(group)
    await outsider.command("unbind", chat=group, mention=True)
    assert "只有绑定本群的人" in (await outsider.next_message(chat=group)).text
    wang.mark_read(group)
    await wang.command("unbind", chat=group, mention=True)
    assert f"已解除本群与 {GRID} 的绑定" in (await wang.next_message(chat=group)).text
    assert await bound_node(session_factory, group.id) == (True, None)
    actions = await audit_actions(session_factory)
    assert actions.count("group.bound") == 1 and actions.count("group.unbound") == 1
    texts = group_texts(emulator, group)
    assert "王芳" not in texts and "韩志明" not in texts


async def test_an_admin_binds_by_path_and_migration_keeps_the_binding(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    group = emulator.group(GROUP_ID, "阳光小区志愿者群")
    await emulator.add_bot_to_group(group, by=admin)
    await admin.next_message(chat=group)

    await admin.command("bind", chat=group, mention=True)
    assert "/bind 县卫健局片区/阳光小区" in (await admin.next_message(chat=group)).text
    await admin.command("bind", "县卫健局片区/没有这个小区", chat=group)
    assert "找不到路径" in (await admin.next_message(chat=group)).text
    await admin.command("bind", GRID, chat=group)
    assert (await admin.next_message(chat=group)).text.startswith(f"已绑定：{GRID}")

    old_id = group.id
    new_id = group.migrate(by=admin)
    await handled(emulator, application)
    assert await bound_node(session_factory, new_id) == (True, await node_id(session_factory, GRID))
    assert await bound_node(session_factory, old_id) == (False, None)
    await admin.command("vacancies", chat=group, mention=True)
    assert GRID in (await admin.next_message(chat=group)).text
