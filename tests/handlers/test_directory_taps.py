"""The directory tapped through: /tree's buttons down and back up within one's scope, /whois
by name or phone, /mylead."""

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from handlers.tree_view import TreeOpen
from models.org import Member
from models.posts import node_by_path
from tests.emulator import BotMessage, EmuUser, TelegramEmulator
from tests.fixtures import BUILDING, GRID, OTHER_ZONE, UNIT, ZONE
from tests.handlers.fixtures import ADMIN_ID, handled, import_examples, press_forged, seat


def labels(message: BotMessage) -> list[str]:
    return [text for row in message.buttons() for text, _ in row]


async def tap(
    emulator: TelegramEmulator,
    application: Application,
    user: EmuUser,
    view: BotMessage,
    label: str,
) -> BotMessage:
    """Press a button of ``view`` and return the message as the press left it."""
    await emulator.callback_answer(await user.press(view, label))
    await handled(emulator, application)
    (edited,) = [m for m in user.messages() if m.message_id == view.message_id]
    return edited


async def node_id(session_factory: async_sessionmaker[AsyncSession], path: str) -> int:
    async with session_factory() as session:
        node = await node_by_path(session, path)
        assert node is not None
        return node.id


async def test_a_lead_taps_down_and_back_up_but_never_above_their_own_node(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=3101, first_name="王芳", language_code="zh")
    await seat(session_factory, wang, GRID)

    await wang.send("/tree")
    grid = await wang.next_message()
    text = grid.text or ""
    assert text.startswith(GRID) and "网格长：王芳" in text and "社区网格信息员：空缺" in text
    # Each child with its own children, posts filled of all, vacancies.
    assert "• 1号楼：单元 2 个 · 到岗 0/6 · 空缺 6" in text
    assert labels(grid) == ["1号楼 · 0/6", "2号楼 · 0/4"]  # no way up: the grid is hers

    building = await tap(emulator, application, wang, grid, "1号楼 · 0/6")
    assert (building.text or "").startswith(BUILDING)
    assert labels(building) == ["1单元 · 0/2", "2单元 · 0/2", "⬆ 上级：阳光小区"]
    unit = await tap(emulator, application, wang, building, "1单元 · 0/2")
    assert (unit.text or "").startswith(UNIT) and labels(unit) == ["⬆ 上级：1号楼"]
    back = await tap(emulator, application, wang, unit, "⬆ 上级：1号楼")
    back = await tap(emulator, application, wang, back, "⬆ 上级：阳光小区")
    assert (back.text or "").startswith(GRID)

    # A forged button for a node outside her scope: a refusal, and the message unchanged.
    other = TreeOpen(node_id=await node_id(session_factory, OTHER_ZONE)).pack()
    answer = await emulator.callback_answer(await press_forged(emulator, wang, back, other))
    assert answer["show_alert"] and "不在您负责的范围内" in str(answer["text"])
    await handled(emulator, application)
    (still,) = [m for m in wang.messages() if m.message_id == back.message_id]
    assert (still.text or "").startswith(GRID) and OTHER_ZONE not in (still.text or "")
    # Nor may she climb past her own node with a forged "up".
    zone = TreeOpen(node_id=await node_id(session_factory, ZONE)).pack()
    answer = await emulator.callback_answer(await press_forged(emulator, wang, back, zone))
    assert answer["show_alert"]

    # Typing a path still opens that node, with its buttons.
    await wang.send(f"/tree {BUILDING}")
    typed = await wang.next_message()
    assert (typed.text or "").startswith(BUILDING) and "⬆ 上级：阳光小区" in labels(typed)
    await wang.send(f"/tree {OTHER_ZONE}")
    assert "不在您负责的范围内" in ((await wang.next_message()).text or "")


async def test_the_command_centre_opens_the_county_and_sees_who_cannot_be_reached(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=3102, first_name="王芳", language_code="zh")
    await seat(session_factory, wang, GRID)
    async with session_factory() as session:
        await session.execute(
            update(Member).where(Member.telegram_id == wang.id).values(reachable=False)
        )
        await session.commit()

    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send("/tree")
    county = await admin.next_message()
    assert (county.text or "").startswith("全县")
    assert "联系不上的人员：1" in (county.text or "")
    assert "• 县卫健局片区：网格 2 个 · 到岗 1/20 · 空缺 19 · 联系不上 1" in (county.text or "")
    assert labels(county) == ["县卫健局片区 · 1/20 · ⚠1", "县教育局片区 · 0/20"]
    zone = await tap(emulator, application, admin, county, "县卫健局片区 · 1/20 · ⚠1")
    assert "阳光小区 · 1/12 · ⚠1" in labels(zone) and "⬆ 全县" in labels(zone)
    county = await tap(emulator, application, admin, zone, "⬆ 全县")
    assert (county.text or "").startswith("全县")


async def test_whois_finds_people_by_name_or_phone_within_scope(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    zhang = emulator.user(user_id=3103, first_name="张建国", language_code="zh")
    await seat(session_factory, zhang, ZONE)

    # A roster name (the post is vacant): the node with its posts, the phone beside it.
    await zhang.send("/whois 马晓东")
    found = (await zhang.next_message()).text or ""
    assert found.startswith(GRID) and "马晓东，+8613909710003" in found
    # A full phone written any way, or its last four digits.
    await zhang.send("/whois 139-0971-0004")
    assert (await zhang.next_message()).text.startswith(BUILDING)  # type: ignore[union-attr]
    await zhang.send("/whois 0005")
    assert "马秀兰" in ((await zhang.next_message()).text or "")
    # Several matches: a short list of buttons; a press opens the post's node.
    await zhang.send("/whois 马")
    several = await zhang.next_message()
    assert "2 个岗位" in (several.text or "")
    assert labels(several) == [
        "马晓东 · 社区网格信息员 · 县卫健局片区/阳光小区",
        "马秀兰 · 单元长 · 县卫健局片区/阳光小区/1号楼/1单元",
    ]
    await zhang.press(several, labels(several)[1])
    assert ((await zhang.next_message()).text or "").startswith(UNIT)
    # Outside his zone, nobody, whatever is typed; the answer says what can be typed.
    for query in ("韩志明", "13909710006", "0007", "nobody"):
        await zhang.send(f"/whois {query}")
        nobody = (await zhang.next_message()).text or ""
        assert "不在您负责的范围内" in nobody and "后 4 位" in nobody, query
    # A forged press for a post outside his scope is refused.
    outside = await node_id(session_factory, OTHER_ZONE)
    answer = await emulator.callback_answer(
        await press_forged(emulator, zhang, several, f"whoisn:{outside}")
    )
    assert answer["show_alert"] and "不在您负责的范围内" in str(answer["text"])


async def test_my_lead_names_the_post_above_with_its_phone(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    zhang = emulator.user(user_id=3104, first_name="张建国", language_code="zh")
    await seat(session_factory, zhang, ZONE)
    ma = emulator.user(user_id=3105, first_name="马晓东", language_code="zh")
    await seat(session_factory, ma, GRID, "officer")
    async with session_factory() as session:
        await session.execute(
            update(Member).where(Member.telegram_id == zhang.id).values(phone="+8613800138000")
        )
        await session.commit()

    # An officer: its own lead first (vacant: the roster's name), then the zone's posts.
    await ma.send("/mylead")
    lead = (await ma.next_message()).text or ""
    assert "您的岗位：社区网格信息员（县卫健局片区/阳光小区）" in lead
    assert "网格长：空缺（花名册：王芳，+8613909710002）" in lead
    assert "上一级 县卫健局片区" in lead
    assert "片区长：张建国，+8613800138000" in lead
    assert "包联单位信息员：空缺（花名册：李娜，+8613909710001）" in lead
    # The same from the button under /me.
    await ma.send("/me")
    mine = await ma.next_message()
    await ma.press(mine, "👤 我的上级")
    assert "片区长：张建国，+8613800138000" in ((await ma.next_message()).text or "")
    # A zone lead: the command centre.
    await zhang.send("/mylead")
    assert "县指挥部" in ((await zhang.next_message()).text or "")
    stranger = emulator.user(user_id=3106, first_name="路人", language_code="zh")
    await stranger.send("/mylead")
    assert "还没有登记岗位" in ((await stranger.next_message()).text or "")
    # /help and the menu name it.
    await stranger.send("/help")
    assert "/mylead" in ((await stranger.next_message()).text or "")
