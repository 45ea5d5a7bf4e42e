"""What the hostile-input test (``tests/test_fuzz.py``) needs besides its strategies: a bot
session answering every method the bot calls and remembering what each reader was shown,
the county's personal data with who may see it, and the database's consistency checks."""

import io
import itertools
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    DeleteMyCommands,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    SendChatAction,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import BufferedInputFile, File, InlineKeyboardMarkup, Message, MessageId
from openpyxl import load_workbook
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import Base
from models.org import Household, Member, Node, Post
from models.rounds import HouseholdReport, ReportRound, ReportStatus
from models.system import HandledUpdate
from tests.fixtures import FAST_BOT_USER, RecordingSession


@dataclass(frozen=True)
class Shown:
    """Something a reader saw: a chat (a user's id, or a group's) and the text of it."""

    chat_id: int
    text: str
    method: str


class FuzzSession(RecordingSession):
    """The fast tier's recording session, answering every method the bot may call, keeping
    the messages with buttons each chat was shown (latest markup), and the bytes a
    download returns."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(10_000)
        self.download: bytes = b""
        self.buttons: dict[int, list[Message]] = {}
        # Callback query id -> who pressed (its answer goes to them).
        self.pressers: dict[str, int] = {}
        self._answers.update(
            {
                SendMessage: self._remember_sent,
                SendDocument: self._message_of,
                SendPhoto: self._message_of,
                CopyMessage: lambda _bot, _m: MessageId(message_id=next(self._ids)),
                EditMessageText: self._edited,
                EditMessageReplyMarkup: self._edited,
                EditMessageCaption: lambda _bot, _m: True,
                SendChatAction: lambda _bot, _m: True,
                SetMyCommands: lambda _bot, _m: True,
                DeleteMyCommands: lambda _bot, _m: True,
                GetFile: lambda _bot, m: File(
                    file_id=m.file_id, file_unique_id="u" + m.file_id, file_path="documents/f"
                ),
            }
        )

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        yield self.download

    def _remember_sent(self, bot: Bot, method: SendMessage) -> Message:
        chat_id = int(method.chat_id)
        markup = method.reply_markup
        inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
        message = Message.model_validate(
            {
                "message_id": next(self._ids),
                "date": datetime.now(UTC),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": FAST_BOT_USER,
                "text": method.text,
                "reply_markup": inline.model_dump(exclude_none=True) if inline else None,
            },
            context={"bot": bot},
        )
        if inline is not None:
            self.buttons.setdefault(chat_id, []).append(message)
        return message

    def _message_of(self, bot: Bot, method: Any) -> Message:
        return Message.model_validate(
            {
                "message_id": next(self._ids),
                "date": datetime.now(UTC),
                "chat": {"id": int(method.chat_id), "type": "private"},
                "from": FAST_BOT_USER,
            },
            context={"bot": bot},
        )

    def _edited(self, bot: Bot, method: Any) -> bool:
        markup = method.reply_markup
        if method.chat_id is None or not isinstance(markup, InlineKeyboardMarkup):
            return True
        chat_id = int(method.chat_id)
        for message in self.buttons.get(chat_id, []):
            if message.message_id == method.message_id:
                edited = message.model_copy(update={"reply_markup": markup})
                self.buttons[chat_id].append(edited)
                break
        return True

    def shown_since(self, start: int) -> list[Shown]:
        """Everything the calls from ``start`` on showed, and to whom."""
        shown: list[Shown] = []
        for call in self.calls[start:]:
            name = type(call).__name__
            if isinstance(call, AnswerCallbackQuery):
                presser = self.pressers.get(call.callback_query_id)
                if presser is not None and call.text:
                    shown.append(Shown(presser, call.text, name))
                continue
            chat_id = getattr(call, "chat_id", None)
            if chat_id is None:
                continue
            parts = [
                str(getattr(call, "text", None) or ""),
                str(getattr(call, "caption", None) or ""),
            ]
            markup = getattr(call, "reply_markup", None)
            if isinstance(markup, InlineKeyboardMarkup):
                parts += [button.text for row in markup.inline_keyboard for button in row]
            document = getattr(call, "document", None)
            if isinstance(document, BufferedInputFile):
                parts.append(file_text(document.filename or "", document.data))
            shown.append(Shown(int(chat_id), "\n".join(parts), name))
        return shown


def file_text(filename: str, data: bytes) -> str:
    """Every cell of a sent spreadsheet, as text."""
    if filename.endswith(".xlsx"):
        book = load_workbook(io.BytesIO(data), read_only=True)
        return "\n".join(
            str(value)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for value in row
            if value is not None
        )
    return data.decode("utf-8", errors="replace")


class RecordedTransport:
    """The outbox sender's transport, through the recording session: what the outbox
    delivers is recorded beside the direct replies."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @property
    def token(self) -> str:
        return self.bot.token

    async def send(self, method: TelegramMethod[Any]) -> int:
        sent = await self.bot(method)
        return int(getattr(sent, "message_id", 0))

    async def close(self) -> None:
        pass


# --- personal data and its scope --------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    """A piece of personal or household data, bound to a node. ``down``: household data,
    for readers at the node or above; otherwise a person's name or phone, which the chain
    through the node may see (those above manage them, those below report to them)."""

    text: str
    path: str
    down: bool = False


def normalised(text: str) -> str:
    """Digits separated by spaces or dashes joined, so that a phone is found however
    written."""
    return re.sub(r"(?<=\d)[\s\-]+(?=\d)", "", text)


def may_see(secret: Secret, held: set[str]) -> bool:
    for path in held:
        if secret.path == path or secret.path.startswith(path + "/"):
            return True
        if not secret.down and path.startswith(secret.path + "/"):
            return True
    return False


def leaks(
    shown: list[Shown], secrets: list[Secret], held: dict[int, set[str]], admins: set[int]
) -> list[str]:
    """What a reader was shown and may not see: groups nothing personal, a private reader
    only data of the chain of the posts it holds (``held``: telegram id -> node paths)."""
    found = []
    for item in shown:
        if item.chat_id in admins:
            continue
        text = normalised(item.text)
        for secret in secrets:
            if secret.text in text and (
                item.chat_id < 0 or not may_see(secret, held.get(item.chat_id, set()))
            ):
                where = f"{item.method} to {item.chat_id}"
                found.append(f"{where} shows {secret.text!r} ({secret.path}): {item.text[:300]!r}")
    return found


async def posts_held(session: AsyncSession) -> dict[int, set[str]]:
    rows = await session.execute(
        select(Member.telegram_id, Node.path)
        .join(Post, Post.holder_id == Member.id)
        .join(Node, Node.id == Post.node_id)
    )
    held: dict[int, set[str]] = {}
    for telegram_id, path in rows:
        held.setdefault(telegram_id, set()).add(path)
    return held


# --- the database's consistency ---------------------------------------------------------


async def inconsistencies(session: AsyncSession, bot_id: int, update_ids: set[int]) -> list[str]:
    """Orphans along every foreign key, rounds with more reports than households, and the
    updates handled other than once each."""
    problems: list[str] = []
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            parents = key.column.table.alias("parent")
            child, parent = key.parent, parents.c[key.column.name]
            orphans = await session.scalar(
                select(func.count())
                .select_from(table.outerjoin(parents, child == parent))
                .where(and_(child.is_not(None), parent.is_(None)))
            )
            if orphans:
                problems.append(f"{orphans} rows of {table.name}.{child.name} point nowhere")
    households = await session.scalar(select(func.count()).select_from(Household)) or 0
    rows = await session.execute(
        select(
            ReportRound.id,
            ReportRound.households_expected,
            func.count(HouseholdReport.id),
            func.count(HouseholdReport.id).filter(HouseholdReport.status != ReportStatus.missing),
        )
        .outerjoin(HouseholdReport, HouseholdReport.round_id == ReportRound.id)
        .group_by(ReportRound.id, ReportRound.households_expected)
    )
    for round_id, expected, reports, done in rows:
        if not done <= reports <= households:
            problems.append(
                f"round {round_id}: {done} done of {reports} reports, {expected} expected, "
                f"{households} households"
            )
    handled = set(
        await session.scalars(select(HandledUpdate.update_id).where(HandledUpdate.bot_id == bot_id))
    )
    if handled != update_ids:
        problems.append(
            f"handled updates differ: {len(handled - update_ids)} unknown, "
            f"{len(update_ids - handled)} not recorded"
        )
    return problems
