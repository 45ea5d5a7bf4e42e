"""A handler that fails gets the member an apology in their own language, even though the
failed update's session is rolled back under the member record the cache handed out; a NUL
in a message (which PostgreSQL refuses in text) does not make one fail."""

from typing import Any, cast

from aiogram import Bot, Dispatcher
from aiogram.methods import SendMessage
from aiogram.methods.base import TelegramMethod
from aiogram.utils.i18n import I18n
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.alerts import Alert
from models.registration import get_or_create_member
from tests.fixtures import (
    UNIT,
    RecordingSession,
    a_user,
    hold_post,
    import_example_county,
    message_update,
)

MEMBER = a_user(3101, "Alice", "zh-hans")  # her client says Chinese; she chose English


class FailingOnce(RecordingSession):
    """Refuses the first sendMessage whose text is ``refuse``."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse: str | None = refuse

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 (BaseSession's signature)
    ) -> Any:
        if isinstance(method, SendMessage) and method.text == self.refuse:
            self.refuse = None
            self.calls.append(method)
            raise RuntimeError("the network went away")
        return await super().make_request(bot, method, timeout)


async def test_a_member_whose_update_fails_gets_the_apology_in_their_language(
    dispatcher: Dispatcher, i18n: I18n, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with session_factory() as session:
        await get_or_create_member(session, MEMBER["id"], "Alice", None, "en")
        await session.commit()
    help_text = i18n.gettext("help.text", locale="en")
    bot = Bot("42:TEST-wuji-fast-tier", session=FailingOnce(help_text))
    calls = cast(FailingOnce, bot.session)
    await dispatcher.feed_update(bot, message_update(bot, MEMBER, "/me"))  # cached now
    await dispatcher.feed_update(bot, message_update(bot, MEMBER, "/help"))
    texts = [call.text for call in calls.sent()]
    assert texts[-2:] == [help_text, i18n.gettext("errors.generic", locale="en")]


async def test_a_nul_in_an_alerts_text_is_stored_as_a_replacement_character(
    dispatcher: Dispatcher, bot: Bot, i18n: I18n, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # PostgreSQL refuses NUL in text: the alert would fail instead of going up.
    async with session_factory() as session:
        await import_example_county(session)
        await hold_post(session, MEMBER["id"], UNIT)
    await dispatcher.feed_update(bot, message_update(bot, MEMBER, "/alert 漏水\x00了"))
    texts = [call.text for call in cast(RecordingSession, bot.session).sent()]
    assert i18n.gettext("errors.generic", locale="en") not in texts
    assert i18n.gettext("errors.generic", locale="zh_Hans") not in texts
    async with session_factory() as session:
        assert list(await session.scalars(select(Alert.text))) == ["漏水\ufffd了"]
