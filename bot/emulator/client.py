"""Handles for tests playing Telegram users and groups against the bot."""

from __future__ import annotations

import asyncio
import mimetypes
import time
from typing import TYPE_CHECKING, Any, Literal

from .html_text import utf16_len
from .models import BotMessage
from .state import GroupState, UserState

if TYPE_CHECKING:
    from .server import TelegramEmulator


class EmuUser:
    def __init__(self, emu: TelegramEmulator, state: UserState) -> None:
        self._emu = emu
        self.state = state
        self._cursors: dict[int, int] = {}  # chat id -> how many bot messages this reader took

    def __repr__(self) -> str:
        return f"EmuUser({self.id}, {self.first_name!r})"

    @property
    def id(self) -> int:
        return self.state.id

    @property
    def first_name(self) -> str:
        return self.state.first_name

    @property
    def username(self) -> str | None:
        return self.state.username

    @property
    def language_code(self) -> str | None:
        return self.state.language_code

    @property
    def started(self) -> bool:
        return self.state.started

    @property
    def blocked(self) -> bool:
        return self.state.blocked

    def to_api(self) -> dict[str, Any]:
        return self.state.to_api()

    def _chat(self, chat: int | EmuUser | EmuGroup | None) -> int:
        return self.id if chat is None else chat_id_of(chat)

    # --- writing -------------------------------------------------------------

    async def send_raw(
        self,
        content: dict[str, Any],
        chat: int | EmuGroup | None = None,
        reply_to: BotMessage | int | None = None,
    ) -> dict[str, Any]:
        """Send any message content (e.g. {"location": {...}}); returns the message dict."""
        world = self._emu.world
        chat_id = self._chat(chat)
        if chat_id > 0:
            if chat_id != self.id:
                raise ValueError("a user can only write to the bot in their own private chat")
            if self.state.blocked:
                self.unblock_bot()  # writing to a blocked bot restarts it, as in the apps
            self.state.started = True
            bot_sees = True
        else:
            group = world.groups.get(chat_id)
            if group is None:
                raise ValueError(f"unknown chat {chat_id}; create it with emu.group()")
            if group.migrated_to is not None:
                raise ValueError(f"group {chat_id} was migrated to {group.migrated_to}")
            bot_sees = group.bot_present
        reply_id = reply_to.message_id if isinstance(reply_to, BotMessage) else reply_to
        message = world.store_message(chat_id, self.to_api(), content, reply_id, bot_sees=bot_sees)
        await asyncio.sleep(0)
        return message

    async def send(
        self,
        text: str,
        chat: int | EmuGroup | None = None,
        reply_to: BotMessage | int | None = None,
    ) -> dict[str, Any]:
        if not text:
            raise ValueError("Telegram apps do not send empty messages")
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        return await self.send_raw(content, chat, reply_to)

    async def command(
        self,
        name: str,
        args: str | None = None,
        chat: int | EmuGroup | None = None,
        mention: bool = False,
    ) -> dict[str, Any]:
        """Send "/name args"; mention=True writes "/name@botname" as group members often do."""
        text = f"/{name}"
        if mention:
            text += f"@{self._emu.bot_user['username']}"
        if args:
            text += f" {args}"
        return await self.send(text, chat)

    async def send_contact(
        self,
        phone_number: str,
        user_id: int | Literal["self"] | None = "self",
        first_name: str | None = None,
        last_name: str | None = None,
        chat: int | EmuGroup | None = None,
    ) -> dict[str, Any]:
        """A shared contact; by default the user's own (user_id = own id), as the button sends."""
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name or self.first_name,
        }
        if last_name:
            contact["last_name"] = last_name
        if user_id is not None:
            contact["user_id"] = self.id if user_id == "self" else user_id
        return await self.send_raw({"contact": contact}, chat)

    async def send_document(
        self,
        filename: str,
        content: bytes,
        caption: str | None = None,
        chat: int | EmuGroup | None = None,
        mime_type: str | None = None,
    ) -> dict[str, Any]:
        world = self._emu.world
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        stored = world.add_file(content, "documents", filename, mime)
        message: dict[str, Any] = {"document": world.document_api(stored)}
        if caption:
            message["caption"] = caption
        return await self.send_raw(message, chat)

    async def send_photo(
        self, content: bytes, caption: str | None = None, chat: int | EmuGroup | None = None
    ) -> dict[str, Any]:
        world = self._emu.world
        large = world.add_file(content, "photos", None, "image/jpeg")
        message: dict[str, Any] = {"photo": world.photo_sizes(large)}
        if caption:
            message["caption"] = caption
        return await self.send_raw(message, chat)

    async def press(
        self, message: BotMessage | int, button: str, chat: int | EmuGroup | None = None
    ) -> str:
        """Press an inline button found by its text or callback_data; returns the query id."""
        world = self._emu.world
        if isinstance(message, BotMessage):
            chat_id, message_id = message.chat_id, message.message_id
        else:
            chat_id, message_id = self._chat(chat), int(message)
        stored = world.log(chat_id).messages.get(message_id)
        if not isinstance(stored, BotMessage) or stored.deleted:
            raise AssertionError(f"no bot message {message_id} in chat {chat_id}")
        markup = stored.reply_markup or {}
        buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
        found = next((b for b in buttons if b["text"] == button), None) or next(
            (b for b in buttons if b.get("callback_data") == button), None
        )
        if found is None:
            raise AssertionError(
                f"message {message_id} has no inline button {button!r}; "
                f"its buttons now: {stored.buttons()}"
            )
        if "callback_data" not in found:
            raise AssertionError(f"button {button!r} does not send a callback: {found}")
        query_id = world.new_callback_query(self.id, chat_id, message_id, found["callback_data"])
        world.push_update(
            "callback_query",
            {
                "id": query_id,
                "from": self.to_api(),
                "message": world.bot_message_api(stored),
                "chat_instance": f"{abs(chat_id)}17",
                "data": found["callback_data"],
            },
        )
        await asyncio.sleep(0)
        return query_id

    def block_bot(self) -> None:
        if not self.state.blocked:
            self.state.blocked = True
            self._emu.world.member_update(self.id, self.to_api(), "member", "kicked")

    def unblock_bot(self) -> None:
        if self.state.blocked:
            self.state.blocked = False
            self._emu.world.member_update(self.id, self.to_api(), "kicked", "member")

    # --- reading -------------------------------------------------------------

    def messages(self, chat: int | EmuGroup | None = None) -> list[BotMessage]:
        """Every bot message in the chat (private by default), edits applied."""
        return self._emu.bot_messages(self._chat(chat))

    def mark_read(self, chat: int | EmuGroup | None = None) -> None:
        """Skip everything already in the chat, so next_message waits for something new."""
        chat_id = self._chat(chat)
        self._cursors[chat_id] = len(self._emu.bot_messages(chat_id, include_deleted=True))

    async def next_message(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test's deadline, named in the failure it raises)
        chat: int | EmuGroup | None = None,
    ) -> BotMessage:
        """The next bot message in the chat this reader has not taken yet."""
        chat_id = self._chat(chat)
        deadline = time.monotonic() + timeout
        while True:
            messages = self._emu.bot_messages(chat_id, include_deleted=True)
            taken = self._cursors.get(chat_id, 0)
            if taken < len(messages):
                self._cursors[chat_id] = taken + 1
                return messages[taken]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self!r} got no new bot message within {timeout}s; "
                    + self._emu.describe_chat(chat_id, taken)
                )
            await self._emu.world.chat_signal(chat_id).wait(remaining)


class EmuGroup:
    """A group; after a migration it stands for the supergroup that replaced it."""

    def __init__(self, emu: TelegramEmulator, chat_id: int) -> None:
        self._emu = emu
        self.original_id = chat_id

    def __repr__(self) -> str:
        return f"EmuGroup({self.id}, {self.title!r})"

    @property
    def state(self) -> GroupState:
        state = self._emu.world.groups[self.original_id]
        while state.migrated_to is not None:
            state = self._emu.world.groups[state.migrated_to]
        return state

    @property
    def id(self) -> int:
        return self.state.id

    @property
    def title(self) -> str:
        return self.state.title

    @property
    def type(self) -> str:
        return self.state.type

    def to_api(self) -> dict[str, Any]:
        return self.state.chat_api()

    def migrate(self, by: EmuUser | None = None) -> int:
        """Upgrade to a supergroup; returns its new id and queues both service messages."""
        return self._emu.world.migrate_group(self.id, by.to_api() if by else None)

    def messages(self) -> list[BotMessage]:
        return self._emu.bot_messages(self.id)


ChatRef = int | EmuUser | EmuGroup


def chat_id_of(chat: ChatRef) -> int:
    if isinstance(chat, EmuUser | EmuGroup):
        return chat.id
    return int(chat)
