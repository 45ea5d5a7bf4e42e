"""/start, /help, /me, /lang, /cancel, the fallbacks and a stale button, fed straight to
the dispatcher."""

from typing import Any, cast

from aiogram import Bot, Dispatcher
from aiogram.methods import SendMessage
from aiogram.types import Update
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.language import LanguageChoice
from handlers.registration import RegistrationStep
from models.members import member_by_telegram_id
from tests.fixtures import RecordingSession, a_user, callback_update, message_update
from tests.handlers.fixtures import ADMIN_ID

CHINESE = a_user(1001, "王", "zh-hans")
ENGLISH = a_user(1002, "Alice", "en")


def calls(bot: Bot) -> RecordingSession:
    return cast(RecordingSession, bot.session)


async def feed(dispatcher: Dispatcher, bot: Bot, update: Update) -> None:
    await dispatcher.feed_update(bot, update)


async def reply_to(
    dispatcher: Dispatcher, bot: Bot, user: dict[str, Any], text: str
) -> SendMessage:
    """What the bot answered ``user`` writing ``text``: exactly one message, to them."""
    before = len(calls(bot).sent())
    await feed(dispatcher, bot, message_update(bot, user, text))
    replies = calls(bot).sent()[before:]
    assert len(replies) == 1, replies
    assert replies[0].chat_id == user["id"]
    return replies[0]


def text_of(i18n: I18n, key: str, locale: str = "zh_Hans") -> str:
    return i18n.gettext(key, locale=locale)


async def test_help_for_a_newcomer_and_for_an_admin(
    dispatcher: Dispatcher, bot: Bot, i18n: I18n
) -> None:
    assert (await reply_to(dispatcher, bot, CHINESE, "/help")).text == text_of(i18n, "help.text")
    english = await reply_to(dispatcher, bot, ENGLISH, "/help")
    assert english.text == text_of(i18n, "help.text", "en")
    admin = await reply_to(dispatcher, bot, a_user(ADMIN_ID, "指挥部"), "/help")
    assert admin.text == text_of(i18n, "help.text") + "\n\n" + text_of(i18n, "help.admin")


async def test_start_welcomes_and_an_unknown_invite_is_explained(
    dispatcher: Dispatcher, bot: Bot, i18n: I18n
) -> None:
    welcome = await reply_to(dispatcher, bot, CHINESE, "/start")
    assert welcome.text == text_of(i18n, "start.welcome")
    unknown = await reply_to(dispatcher, bot, CHINESE, "/start NoSuchToken123")
    assert unknown.text == text_of(i18n, "invite.unknown")


async def test_me_without_a_post(dispatcher: Dispatcher, bot: Bot, i18n: I18n) -> None:
    assert (await reply_to(dispatcher, bot, CHINESE, "/me")).text == text_of(i18n, "me.none")
    english = await reply_to(dispatcher, bot, ENGLISH, "/me")
    assert english.text == text_of(i18n, "me.none", "en")


async def test_lang_switches_and_the_choice_outlasts_the_clients_language(
    dispatcher: Dispatcher,
    bot: Bot,
    i18n: I18n,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    menu = await reply_to(dispatcher, bot, CHINESE, "/lang")
    assert menu.text == text_of(i18n, "lang.choose")
    (sent_menu,) = calls(bot).messages
    assert sent_menu.reply_markup is not None
    buttons = {
        b.text: b.callback_data for row in sent_menu.reply_markup.inline_keyboard for b in row
    }
    assert buttons == {
        "简体中文": LanguageChoice(locale="zh_Hans").pack(),
        "English": LanguageChoice(locale="en").pack(),
    }

    await feed(dispatcher, bot, callback_update(bot, CHINESE, buttons["English"] or "", sent_menu))
    (answer,) = calls(bot).callback_answers()
    assert not answer.show_alert
    assert calls(bot).sent()[-1].text == "Language set to English."
    async with session_factory() as session:
        member = await member_by_telegram_id(session, CHINESE["id"])
    assert member is not None and member.locale == "en"

    # The client still says Chinese; the member's own choice wins.
    assert (await reply_to(dispatcher, bot, CHINESE, "/me")).text == text_of(i18n, "me.none", "en")


async def test_cancel_with_nothing_to_cancel(dispatcher: Dispatcher, bot: Bot, i18n: I18n) -> None:
    reply = await reply_to(dispatcher, bot, CHINESE, "/cancel")
    assert reply.text == text_of(i18n, "cancel.nothing")


async def test_unknown_command_and_stray_text_point_to_help(
    dispatcher: Dispatcher, bot: Bot, i18n: I18n
) -> None:
    unknown = await reply_to(dispatcher, bot, CHINESE, "/frobnicate")
    assert unknown.text == text_of(i18n, "fallback.unknown_command")
    stray = await reply_to(dispatcher, bot, CHINESE, "你好")
    assert stray.text == text_of(i18n, "fallback.no_conversation")


async def test_a_stale_button_gets_an_alert_and_nothing_else(
    dispatcher: Dispatcher, bot: Bot, i18n: I18n
) -> None:
    await reply_to(dispatcher, bot, CHINESE, "/help")
    (old_message,) = calls(bot).messages
    sent_before = len(calls(bot).sent())
    for data in (RegistrationStep(confirm=True).pack(), "no-such-button:1"):
        await feed(dispatcher, bot, callback_update(bot, CHINESE, data, old_message))
    assert [(a.text, a.show_alert) for a in calls(bot).callback_answers()] == [
        (text_of(i18n, "fallback.stale_button"), True)
    ] * 2
    assert len(calls(bot).sent()) == sent_before
