"""In a group, /help lists only what works there, and a private-only command gets a pointer
to the private chat instead of silence."""

from typing import cast

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiogram.utils.i18n import I18n

from handlers.common import PRIVATE_ONLY
from tests.fixtures import RecordingSession, a_user, message_update

GROUP_ID = -100_777
MEMBER = a_user(1201, "志愿者", "zh-hans")


def in_group(bot: Bot, text: str) -> Update:
    update = message_update(bot, MEMBER, text)
    assert update.message is not None
    group = {"id": GROUP_ID, "type": "supergroup", "title": "阳光小区志愿者群"}
    raw = update.model_dump(by_alias=True, exclude_none=True)
    raw["message"]["chat"] = group
    return Update.model_validate(raw, context={"bot": bot})


async def test_group_help_lists_what_works_there(
    dispatcher: Dispatcher, bot: Bot, i18n: I18n
) -> None:
    recording = cast(RecordingSession, bot.session)
    await dispatcher.feed_update(bot, in_group(bot, "/help"))
    (reply,) = recording.sent()
    assert reply.chat_id == GROUP_ID
    assert reply.text == i18n.gettext("help.group", locale="zh_Hans")
    assert "/report" not in reply.text and "/vacancies" in reply.text


async def test_a_private_only_command_in_a_group_points_to_the_private_chat(
    dispatcher: Dispatcher, bot: Bot
) -> None:
    recording = cast(RecordingSession, bot.session)
    for command in ("report", "me", "notice", "late"):
        assert command in PRIVATE_ONLY
        before = len(recording.sent())
        await dispatcher.feed_update(bot, in_group(bot, f"/{command}"))
        (reply,) = recording.sent()[before:]
        assert reply.chat_id == GROUP_ID
        assert f"/{command}" in reply.text and "私聊" in reply.text
