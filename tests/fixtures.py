"""Builders shared by the suite.

- messages with verbatim texts for the sender's tests, and the renderer that shows them;
- organisations: a small tree, and the example county of ``examples/``;
- the bot's own parts against the emulator: its config, and a sender started afresh;
- the fast tier: a Bot whose session records calls instead of making them, and updates.
"""

import itertools
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import InlineKeyboardMarkup, Message, Update, User
from babel.messages.pofile import read_po
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_bot, build_sender
from bot.config import Config
from bot.i18n import LOCALES_DIR, create_i18n
from handlers.outbound import TelegramRenderer
from models.messages import Text
from models.org import Member, Node, Post
from models.outbox.delivery import ClaimedMessage
from models.outbox.table import OutgoingMessage
from models.posts import bind, node_by_path, post_at
from models.registration import get_or_create_member
from models.roster import RosterSource, import_roster
from tests.emulator import TelegramEmulator

# --- messages with texts of their own ---------------------------------------------------

# The sender's tests queue texts of their own; no catalog holds them.
VERBATIM = "test.verbatim"


def say(chat_id: int, text: str, **fields: Any) -> OutgoingMessage:
    """A message whose text is ``text`` (HTML) as it is."""
    return OutgoingMessage(chat_id=chat_id, content=Text(VERBATIM, {"text": text}), **fields)


class VerbatimRenderer(TelegramRenderer):
    """Wuji's Telegram renderer, which also sends the texts of ``say`` verbatim."""

    def __init__(self, *, paid_broadcast: bool = False) -> None:
        super().__init__(create_i18n("zh_Hans"), paid_broadcast=paid_broadcast)

    def render(self, message: ClaimedMessage) -> TelegramMethod[Any]:
        content = message.content
        if not (isinstance(content, Text) and content.key == VERBATIM):
            return super().render(message)
        with self.i18n.context(), self.i18n.use_locale(self.locale_of(message)):
            markup = self._keyboard(self.locale_of(message), message.actions)
        return SendMessage(
            chat_id=message.chat_id,
            text=str(content.params["text"]),
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            allow_paid_broadcast=self.paid,
        )


def catalog_keys(locale: str) -> set[str]:
    """Every key the locale's catalogs translate."""
    keys: set[str] = set()
    for po_path in (LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po"):
        with po_path.open("rb") as po_file:
            keys |= {
                str(message.id) for message in read_po(po_file) if message.id and message.string
            }
    return keys


# --- organisations ----------------------------------------------------------------------


@dataclass
class Tree:
    """A zone with one grid: the zone's lead and officer stand above the grid's lead."""

    zone: Node
    grid: Node
    zone_lead: Member
    zone_officer: Member
    grid_lead: Member


async def small_tree(session: AsyncSession) -> Tree:
    zone = Node(level="zone", name="县委办片区", path="县委办片区")
    session.add(zone)
    await session.flush()
    zone.zone_id = zone.id
    grid = Node(
        level="grid",
        name="金桥小区",
        path="县委办片区/金桥小区",
        parent_id=zone.id,
        zone_id=zone.id,
    )
    session.add(grid)
    await session.flush()
    grid.grid_id = grid.id
    zone_lead = Member(telegram_id=101, name="王片长", reachable=True)
    zone_officer = Member(telegram_id=102, name="李信息员", reachable=True)
    grid_lead = Member(telegram_id=201, name="张<网格长>", reachable=True)
    session.add_all([zone_lead, zone_officer, grid_lead])
    await session.flush()
    session.add_all(
        [
            Post(node_id=zone.id, role="lead", holder_id=zone_lead.id),
            Post(node_id=zone.id, role="officer", holder_id=zone_officer.id),
            Post(node_id=grid.id, role="lead", holder_id=grid_lead.id),
            Post(node_id=grid.id, role="officer"),
        ]
    )
    await session.commit()
    return Tree(zone, grid, zone_lead, zone_officer, grid_lead)


# The example county of examples/households.csv and examples/people.csv.
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ZONE = "县卫健局片区"
GRID = "县卫健局片区/阳光小区"
BUILDING = "县卫健局片区/阳光小区/1号楼"
UNIT = "县卫健局片区/阳光小区/1号楼/1单元"
OTHER_ZONE = "县教育局片区"


async def import_example_county(session: AsyncSession) -> None:
    await import_roster(
        session,
        [
            RosterSource(name, (EXAMPLES / name).read_bytes())
            for name in ("households.csv", "people.csv")
        ],
    )


async def node_at(session: AsyncSession, path: str) -> Node:
    found = await node_by_path(session, path)
    assert found is not None, path
    return found


async def post_id(session: AsyncSession, path: str, role: str = "lead") -> int:
    post = await post_at(session, (await node_at(session, path)).id, role)
    assert post is not None, (path, role)
    return post.id


async def hold_post(
    session: AsyncSession,
    telegram_id: int,
    path: str,
    role: str = "lead",
    *,
    name: str | None = None,
    locale: str | None = None,
) -> Member:
    """The member (made if new) holds the post, as after registering. Commits."""
    member = await get_or_create_member(
        session, telegram_id, name or f"member {telegram_id}", None, locale
    )
    post = await session.get(Post, await post_id(session, path, role))
    assert post is not None
    await bind(session, post, member, None, how="test")
    await session.commit()
    return member


# --- the bot's own parts against the emulator -------------------------------------------

IDLE_TIMEOUT_S = 30.0


def emulated_config(emulator: TelegramEmulator, db_url: str, admin_ids: list[int]) -> Config:
    """The bot's configuration against ``emulator``, pacing the outbox at Telegram's limits
    in the emulator's time (``Limits.time_scale`` times faster than wall time)."""
    scale = emulator.limits.time_scale
    config = Config()
    config.telegram.token = SecretStr(emulator.token)
    config.telegram.api_server = emulator.base_url
    config.telegram.request_timeout_s = 5
    config.database.url = db_url
    config.admins.telegram_ids = admin_ids
    config.outbox.rate_per_s *= scale
    config.outbox.private_chat_per_s *= scale
    config.outbox.group_chat_per_min *= scale
    config.outbox.poll_interval_s = 0.1
    # Tests run at any hour of the county's day: quiet hours are tested on their own.
    config.outbox.quiet_hours = False
    return config


def started(emulator: TelegramEmulator, *user_ids: int) -> None:
    for user_id in user_ids:
        emulator.user(user_id).state.started = True  # as if each had pressed Start


async def deliver_queued(config: Config, session_factory: async_sessionmaker[AsyncSession]) -> None:
    """What a bot process started afresh sends: its own Bot and a sender built as
    ``bot.app`` builds them, sending until nothing is pending or in flight."""
    bot = build_bot(config)
    try:
        i18n = create_i18n(config.i18n.default_locale)
        sender = build_sender(config, session_factory, bot, i18n)
        await sender.run_until_idle(IDLE_TIMEOUT_S)
    finally:
        await bot.session.close()


def delivered(emulator: TelegramEmulator, chat_id: int) -> list[str]:
    """The texts of every message the emulator accepted for ``chat_id``, in order; a message
    sent twice is there twice."""
    return [
        str(request.params.get("text"))
        for request in emulator.sent(method="sendMessage", chat_id=chat_id)
    ]


# --- the fast tier: updates fed to the dispatcher, calls recorded -----------------------

FAST_BOT_TOKEN = "42:TEST-wuji-fast-tier"
FAST_BOT_USER = {"id": 42, "is_bot": True, "first_name": "Wuji", "username": "wuji_fast_bot"}


class RecordingSession(BaseSession):
    """A bot session that sends nothing: it records each method called and answers it as
    Telegram would, from canned results (a sent message gets the next message id)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        # What each sendMessage returned: the messages a user may then press buttons of.
        self.messages: list[Message] = []
        self._message_ids = itertools.count(1)
        self._answers: dict[type[TelegramMethod[Any]], Callable[[Bot, Any], Any]] = {
            SendMessage: self._sent_message,
            AnswerCallbackQuery: lambda _bot, _method: True,
            EditMessageReplyMarkup: lambda _bot, _method: True,
            EditMessageText: lambda _bot, _method: True,
            DeleteMessage: lambda _bot, _method: True,
            GetMe: lambda bot, _method: User.model_validate(FAST_BOT_USER, context={"bot": bot}),
        }

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 (BaseSession's signature)
    ) -> Any:
        self.calls.append(method)
        answer = self._answers.get(type(method))
        if answer is None:
            raise NotImplementedError(f"no canned answer for {type(method).__name__}")
        return answer(bot, method)

    def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError("the fast tier downloads nothing")

    async def close(self) -> None:
        pass

    def _sent_message(self, bot: Bot, method: SendMessage) -> Message:
        chat_id = int(method.chat_id)
        markup = method.reply_markup
        message = Message.model_validate(
            {
                "message_id": next(self._message_ids),
                "date": datetime.now(UTC),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": FAST_BOT_USER,
                "text": method.text,
                # Telegram's Message carries inline keyboards only (a reply keyboard, or
                # its removal, is not echoed back).
                "reply_markup": markup.model_dump(exclude_none=True)
                if isinstance(markup, InlineKeyboardMarkup)
                else None,
            },
            context={"bot": bot},
        )
        self.messages.append(message)
        return message

    def sent(self, chat_id: int | None = None) -> list[SendMessage]:
        return [
            call
            for call in self.calls
            if isinstance(call, SendMessage) and (chat_id is None or call.chat_id == chat_id)
        ]

    def callback_answers(self) -> list[AnswerCallbackQuery]:
        return [call for call in self.calls if isinstance(call, AnswerCallbackQuery)]


def recording_bot() -> Bot:
    """A Bot as ``bot.app.build_bot`` makes it, whose session only records."""
    return Bot(
        FAST_BOT_TOKEN,
        session=RecordingSession(),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


_update_ids = itertools.count(1)


def a_user(
    user_id: int, first_name: str = "User", language_code: str | None = "zh"
) -> dict[str, Any]:
    """A Telegram user as updates carry it."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        user["language_code"] = language_code
    return user


def message_update(bot: Bot, user: dict[str, Any], text: str) -> Update:
    """A private message from ``user``; a leading /command is marked as Telegram marks it."""
    message: dict[str, Any] = {
        "message_id": next(_update_ids),
        "date": datetime.now(UTC),
        "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
        "from": user,
        "text": text,
    }
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return Update.model_validate(
        {"update_id": next(_update_ids), "message": message}, context={"bot": bot}
    )


def callback_update(bot: Bot, user: dict[str, Any], data: str, message: Message) -> Update:
    """``user`` pressing a button carrying ``data`` under the bot's ``message``."""
    query = {
        "id": str(next(_update_ids)),
        "from": user,
        "chat_instance": f"{user['id']}17",
        "message": message.model_dump(by_alias=True, exclude_none=True),
        "data": data,
    }
    return Update.model_validate(
        {"update_id": next(_update_ids), "callback_query": query}, context={"bot": bot}
    )
