"""Claiming vacant posts end to end: a volunteer in a bound group claims, the lead above
decides in private chat; the group never sees a name or a phone."""

import re

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from models.status import county_counts
from tests.emulator import BotMessage, EmuGroup, Fault, TelegramEmulator
from tests.fixtures import BUILDING
from tests.handlers.fixtures import (
    ADMIN_ID,
    CHEN_PHONE,
    LIU_PHONE,
    UNIT_LEAD,
    audit_actions,
    bound_compound,
    group_texts,
    holder_of_unit_lead,
    press_forged,
    share_and_confirm,
    share_phone,
    volunteer_taps,
)


def assert_nothing_personal(emulator: TelegramEmulator, group: EmuGroup, *names: str) -> None:
    shown = group_texts(emulator, group)
    for secret in (*names, LIU_PHONE, CHEN_PHONE, "13909719999", "13909718888"):
        assert secret not in shown, secret


async def test_vacancies_page_in_the_group_and_in_a_leads_private_chat(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    await liu.command("vacancies", chat=group, mention=True)
    listing = await liu.next_message(chat=group)
    # Twelve posts in the compound, three of them held.
    assert "共有空缺岗位 9 个（第 1/2 页）" in listing.text
    rows = listing.buttons()
    assert len(rows) == 9 and rows[-1] == [("下一页 ▶", "gvac:1")]
    assert rows[0][0][0] == "社区网格信息员 · 阳光小区" and rows[1][0][0] == UNIT_LEAD

    await emulator.callback_answer(await liu.press(listing, "下一页 ▶"))
    await emulator.wait_until(lambda: "第 2/2 页" in (listing.text or ""))
    assert [text for row in listing.buttons() for text, _ in row] == [
        "社会信息员 · 2号楼/1单元",
        "◀ 上一页",
    ]
    await emulator.callback_answer(await liu.press(listing, "◀ 上一页"))
    await emulator.wait_until(lambda: "第 1/2 页" in (listing.text or ""))
    # Page numbers come from buttons: out of range, the nearest page is shown.
    await emulator.callback_answer(await press_forged(emulator, liu, listing, "gvac:-3"))
    await emulator.callback_answer(await press_forged(emulator, liu, listing, "gvac:7"))
    await emulator.wait_until(lambda: "第 2/2 页" in (listing.text or ""))

    wang = people["wang"]
    await wang.send("/vacancies")
    mine = await wang.next_message()
    assert "您负责范围内的空缺岗位共 9 个" in mine.text and f"{BUILDING}/1单元" in mine.text
    await emulator.callback_answer(await wang.press(mine, "下一页 ▶"))
    await emulator.wait_until(lambda: "第 2/2 页" in (mine.text or ""))
    assert "2号楼/1单元" in mine.text

    await liu.send("/vacancies")
    assert "志愿者请在小区群里" in (await liu.next_message()).text
    assert_nothing_personal(emulator, group, "王芳", "赵强", "孙丽", "刘志愿")


async def test_a_claim_approved_by_the_lead_above_binds_the_post(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    zhao, sun, han = people["zhao"], people["sun"], people["han"]
    async with session_factory() as session:
        filled = (await county_counts(session))["posts_filled"]
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True  # has talked to the bot before: it can write first

    answer = await volunteer_taps(emulator, liu, group)
    assert "私聊" in str(answer["text"]) and not answer["url"]
    offer = await liu.next_message()
    assert "1号楼/1单元" in offer.text and offer.buttons()[0][0][0] == "📱 分享我的手机号"

    # Each wrong input gets its own re-prompt.
    await liu.send("13909719999")
    assert "分享我的手机号" in (await liu.next_message()).text
    await liu.send_contact(phone_number="+8613900000000", user_id=3333)
    assert "本人" in (await liu.next_message()).text
    await liu.send_contact(phone_number=LIU_PHONE)
    await liu.next_message()
    confirmation = await liu.next_message()
    assert LIU_PHONE in confirmation.text
    await liu.send("好的")
    assert "确认" in (await liu.next_message()).text
    await liu.press(confirmation, "✅ 确认")
    sent = await liu.next_message()
    assert "已提交" in sent.text

    asked = await zhao.next_message()
    assert "刘志愿" in asked.text and LIU_PHONE in asked.text and "1号楼/1单元" in asked.text
    asked_officer = await sun.next_message()
    assert "刘志愿" in asked_officer.text

    # Someone who does not manage the post presses the button (a forged press).
    refused = await emulator.callback_answer(await han.press(asked, "✅ 同意"))
    assert refused["show_alert"] and "无权" in str(refused["text"])
    assert await holder_of_unit_lead(session_factory) is None

    await zhao.press(asked, "✅ 同意")
    assert "您已同意 刘志愿 认领" in (await zhao.next_message()).text
    assert "已获批准" in (await liu.next_message()).text
    assert await holder_of_unit_lead(session_factory) == liu.id
    async with session_factory() as session:
        assert (await county_counts(session))["posts_filled"] == filled + 1
    await emulator.wait_until(lambda: asked.buttons() == [])

    late = await emulator.callback_answer(await sun.press(asked_officer, "❌ 不同意"))
    assert late["show_alert"] and "已获批准" in str(late["text"])
    assert await holder_of_unit_lead(session_factory) == liu.id

    await liu.send("/me")
    assert "单元长" in (await liu.next_message()).text
    actions = await audit_actions(session_factory)
    assert actions.count("claim.opened") == 1 and actions.count("claim.approved") == 1
    assert_nothing_personal(emulator, group, "王芳", "赵强", "孙丽", "刘志愿")


async def test_a_second_claimer_is_told_and_a_declined_post_opens_again(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    zhao = people["zhao"]
    # Chen never started the bot: the tap opens a deep link into the private chat.
    chen = emulator.user(user_id=5002, first_name="陈志愿", language_code="zh")
    answer = await volunteer_taps(emulator, chen, group)
    # The link carries a token issued to Chen, never the post's id.
    match = re.fullmatch(
        r"https://t\.me/wuji_test_bot\?start=(claim_[A-Za-z0-9_-]{32})", str(answer["url"])
    )
    assert match, answer
    assert chen.messages() == []
    await chen.send(f"/start {match.group(1)}")
    assert "1号楼/1单元" in (await chen.next_message()).text
    assert "已提交" in await share_and_confirm(chen, CHEN_PHONE)
    asked = await zhao.next_message()

    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    busy = await volunteer_taps(emulator, liu, group)
    assert busy["show_alert"] and "已有人申请认领" in str(busy["text"])
    # Chen's link is Chen's alone.
    await liu.send(f"/start {match.group(1)}")
    assert "发给另一位志愿者" in (await liu.next_message()).text

    await zhao.press(asked, "❌ 不同意")
    assert "您已拒绝 陈志愿 认领" in (await zhao.next_message()).text
    assert "未获批准" in (await chen.next_message()).text
    assert await holder_of_unit_lead(session_factory) is None

    # The post is open to claims again; /cancel leaves the conversation.
    again = await volunteer_taps(emulator, liu, group)
    assert "私聊" in str(again["text"])
    await liu.next_message()
    await liu.send("/cancel")
    assert (await liu.next_message()).text == "已取消。"
    await liu.send_contact(phone_number=LIU_PHONE)
    assert "/help" in (await liu.next_message()).text  # no conversation any more

    actions = await audit_actions(session_factory)
    assert actions.count("claim.opened") == 1 and actions.count("claim.declined") == 1
    assert_nothing_personal(emulator, group, "王芳", "赵强", "孙丽", "刘志愿", "陈志愿")


async def test_a_volunteer_withdraws_and_the_deciders_buttons_go_stale(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    await volunteer_taps(emulator, liu, group)
    await liu.next_message()
    await liu.send_contact(phone_number=LIU_PHONE)
    await liu.next_message()
    confirmation = await liu.next_message()
    await liu.press(confirmation, "取消")
    assert "已取消认领" in (await liu.next_message()).text
    # The confirmation's buttons are gone; a press replayed from an old client is stale.
    assert confirmation.buttons() == []
    stale = await emulator.callback_answer(
        await press_forged(emulator, liu, confirmation, "claim:1")
    )
    assert stale["show_alert"]

    await volunteer_taps(emulator, liu, group)
    await liu.next_message()
    sent_text = await share_and_confirm(liu, LIU_PHONE)
    assert "已提交" in sent_text
    sent: BotMessage = liu.messages()[-1]
    asked = await people["zhao"].next_message()
    await liu.press(sent, "撤回申请")
    assert "已撤回" in (await liu.next_message()).text
    late = await emulator.callback_answer(await people["zhao"].press(asked, "✅ 同意"))
    assert "已撤回" in str(late["text"])
    assert await holder_of_unit_lead(session_factory) is None


async def test_the_command_centre_decides_when_nobody_above_can_be_reached(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    # 1号楼's lead and officer never opened the bot, so they cannot be asked.
    people["zhao"].state.started = people["sun"].state.started = False
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    admin.state.started = True
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    await volunteer_taps(emulator, liu, group)
    await liu.next_message()
    assert "已提交" in await share_and_confirm(liu, LIU_PHONE)
    asked = await admin.next_message()
    assert "刘志愿" in asked.text
    await admin.press(asked, "✅ 同意")
    assert "您已同意" in (await admin.next_message()).text
    assert "已获批准" in (await liu.next_message()).text
    assert await holder_of_unit_lead(session_factory) == liu.id


async def test_a_failed_send_to_the_volunteer_still_puts_the_claim_to_its_deciders(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    group, people = await bound_compound(emulator, session_factory)
    liu = emulator.user(user_id=5001, first_name="刘志愿", language_code="zh")
    liu.state.started = True
    await volunteer_taps(emulator, liu, group)
    await liu.next_message()
    confirmation = await share_phone(liu, LIU_PHONE)
    # Telegram refuses the bot's next message to the volunteer: "your claim is sent".
    refused = emulator.inject(Fault("5xx", method="sendMessage", chat_id=liu.id))
    await liu.press(confirmation, "✅ 确认")

    for decider in (people["zhao"], people["sun"]):
        asked = await decider.next_message(timeout=10)
        assert "刘志愿" in asked.text and LIU_PHONE in asked.text
        assert asked.buttons() == [[("✅ 同意", "claimd:1:1"), ("❌ 不同意", "claimd:1:0")]]
    assert refused.times == 0
    assert "已提交" not in "".join(message.text or "" for message in liu.messages())
