"""/tree, /whois and the command centre's /revoke, /assign and /audit."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.status import county_counts
from tests.emulator import TelegramEmulator
from tests.handlers.conftest import ADMIN_ID
from tests.handlers.test_registration import GRID, ZONE, import_examples, invite_link, register

OTHER_ZONE = "县教育局片区"


async def test_tree_and_whois_show_a_lead_their_subtree_only(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=3001, first_name="王芳", username="WangFang", language_code="zh")
    await register(wang, await invite_link(emulator, GRID, "lead"), "8613909710002")

    await wang.send("/tree")
    tree = await wang.next_message()
    assert GRID in tree.text and "已到岗 1" in tree.text
    assert OTHER_ZONE not in tree.text

    await wang.send(f"/tree {OTHER_ZONE}")
    assert "不在您负责的范围内" in (await wang.next_message()).text
    await wang.send(f"/whois {OTHER_ZONE}")
    assert "不在您负责的范围内" in (await wang.next_message()).text

    await wang.send(f"/whois {GRID}")
    whois = await wang.next_message()
    assert "王芳" in whois.text and "+8613909710002" in whois.text
    assert "马晓东" in whois.text  # the vacant officer post's roster name

    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    admin.mark_read()
    await admin.send("/whois @wangfang")
    assert GRID in (await admin.next_message()).text
    await admin.send("/tree")
    county = await admin.next_message()
    assert "全县" in county.text and ZONE in county.text and OTHER_ZONE in county.text


async def test_a_member_without_posts_sees_nothing(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    nobody = emulator.user(user_id=3002, first_name="路人", language_code="zh")
    await nobody.send(f"/whois {GRID}")
    assert "还没有登记岗位" in (await nobody.next_message()).text
    await nobody.send(f"/revoke {GRID} lead")
    assert "只有县指挥部" in (await nobody.next_message()).text


async def test_revoke_and_assign_change_posts_and_tell_the_member(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await import_examples(session_factory)
    wang = emulator.user(user_id=3001, first_name="王芳", username="wangfang", language_code="en")
    await register(wang, await invite_link(emulator, GRID, "lead"), "8613909710002")
    admin = emulator.user(user_id=ADMIN_ID)  # speaks Chinese, as invite_link made it

    await admin.send(f"/revoke {GRID} lead")
    for _ in range(3):
        asked = await admin.next_message()
        if "确定解除" in asked.text:
            break
    await admin.press(asked, "✅ 确定解除")
    for _ in range(3):
        reply = await admin.next_message()
        if "已解除" in reply.text:
            break
    assert "王芳" in reply.text
    assert "relieved you of" in (await wang.next_message()).text
    async with session_factory() as session:
        assert (await county_counts(session))["posts_filled"] == 0

    await admin.send(f"/assign {GRID} officer @WangFang")
    assert "已任命" in (await admin.next_message()).text
    assert "appointed you" in (await wang.next_message()).text
    async with session_factory() as session:
        assert (await county_counts(session))["posts_filled"] == 1

    await admin.send(f"/assign {GRID} officer @nobody")
    assert "找不到" in (await admin.next_message()).text
    await admin.send("/assign")
    assert "用法" in (await admin.next_message()).text

    await admin.send("/audit 50")
    audit = await admin.next_message()
    # Readable events in the county's time: what happened, to which post, to whom.
    for label in ("导入名册", "生成邀请", "就任岗位", "离开岗位"):
        assert label in audit.text
    assert f"社区网格信息员（{GRID}）" in audit.text and "王芳" in audit.text
    assert "post_id" not in audit.text and "member_id" not in audit.text
