"""The member behind an update comes from an in-process cache: a change to the member, or
to the posts it holds, is seen by the very next update."""

from typing import Any, cast

from aiogram import Bot, Dispatcher
from aiogram.methods import SendMessage
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.language import LanguageChoice
from models.members import set_locale
from tests.fixtures import (
    UNIT,
    RecordingSession,
    a_user,
    callback_update,
    hold_post,
    import_example_county,
    message_update,
)
from tests.handlers.fixtures import ADMIN_ID

LEAD = a_user(3001, "单元长", "zh-hans")
ADMIN = a_user(ADMIN_ID, "指挥部")


def calls(bot: Bot) -> RecordingSession:
    return cast(RecordingSession, bot.session)


async def reply_to(
    dispatcher: Dispatcher, bot: Bot, user: dict[str, Any], text: str
) -> SendMessage:
    before = len(calls(bot).sent())
    await dispatcher.feed_update(bot, message_update(bot, user, text))
    replies = calls(bot).sent()[before:]
    assert len(replies) == 1, replies
    return replies[0]


async def seated_lead(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        await import_example_county(session)
        await hold_post(session, LEAD["id"], UNIT)


async def test_a_lang_change_is_seen_by_the_next_update(
    dispatcher: Dispatcher,
    bot: Bot,
    i18n: I18n,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seated_lead(session_factory)
    chinese, english = (i18n.gettext("help.text", locale=locale) for locale in ("zh_Hans", "en"))
    # Read once and kept in Chinese, the client's language.
    assert (await reply_to(dispatcher, bot, LEAD, "/help")).text == chinese
    assert (await reply_to(dispatcher, bot, LEAD, "/help")).text == chinese

    menu = await reply_to(dispatcher, bot, LEAD, "/lang")
    shown = next(message for message in calls(bot).messages if message.text == menu.text)
    pressed = callback_update(bot, LEAD, LanguageChoice(locale="en").pack(), shown)
    await dispatcher.feed_update(bot, pressed)
    assert (await reply_to(dispatcher, bot, LEAD, "/help")).text == english

    # Changed by the domain outside any update (another task of this process).
    async with session_factory() as session:
        await set_locale(session, LEAD["id"], LEAD["first_name"], "zh_Hans")
    assert (await reply_to(dispatcher, bot, LEAD, "/help")).text == chinese


async def test_a_revoked_post_is_seen_by_the_next_update(
    dispatcher: Dispatcher,
    bot: Bot,
    i18n: I18n,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seated_lead(session_factory)
    no_scope = i18n.gettext("directory.no_scope", locale="zh_Hans")
    assert (await reply_to(dispatcher, bot, LEAD, "/report")).text != no_scope

    asked = await reply_to(dispatcher, bot, ADMIN, f"/revoke {UNIT} lead")
    shown = next(message for message in calls(bot).messages if message.text == asked.text)
    assert asked.reply_markup is not None
    confirm = asked.reply_markup.inline_keyboard[0][0].callback_data
    assert confirm is not None
    await dispatcher.feed_update(bot, callback_update(bot, ADMIN, confirm, shown))
    assert (await reply_to(dispatcher, bot, LEAD, "/report")).text == no_scope
