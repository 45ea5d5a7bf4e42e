"""What the fake Telegram knows: users, chats, messages, files and the update queue."""

from __future__ import annotations

import itertools
import mimetypes
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .models import ApiError, BotMessage, Signal, StoredFile

ALL_UPDATE_TYPES = frozenset(
    {"message", "edited_message", "callback_query", "my_chat_member", "chat_member"}
)
# Telegram leaves these out unless allowed_updates asks for them explicitly.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
COPYABLE_CONTENT = (
    "text", "photo", "document", "contact", "location", "sticker", "video", "audio", "voice",
    "animation",
)  # fmt: skip
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


@dataclass
class UserState:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    is_premium: bool = False
    started: bool = False  # has written to the bot in private, so the bot may write back
    blocked: bool = False

    def to_api(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                user[key] = getattr(self, key)
        if self.is_premium:
            user["is_premium"] = True
        return user

    def chat_api(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key):
                chat[key] = getattr(self, key)
        return chat


@dataclass
class GroupState:
    id: int
    title: str
    type: str  # "group" or "supergroup"
    # None: never added or removed explicitly; the bot counts as a member so simple tests work.
    bot_status: str | None = None
    migrated_to: int | None = None

    @property
    def bot_present(self) -> bool:
        return self.bot_status in (None, "member", "administrator")

    def chat_api(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "title": self.title}


@dataclass
class ChatLog:
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    messages: dict[int, dict[str, Any] | BotMessage] = field(default_factory=dict)
    bot_messages: list[BotMessage] = field(default_factory=list)


@dataclass
class CallbackQuery:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answer: dict[str, Any] | None = None


@dataclass
class Webhook:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


class World:
    def __init__(self, bot_user: dict[str, Any]) -> None:
        self.bot_user = bot_user
        self.users: dict[int, UserState] = {}
        self.groups: dict[int, GroupState] = {}
        self.logs: dict[int, ChatLog] = {}
        self.files: dict[str, StoredFile] = {}
        self.updates: list[dict[str, Any]] = []
        self.allowed_updates: list[str] | None = None
        self.webhook: Webhook | None = None
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.callback_queries: dict[str, CallbackQuery] = {}
        self.changed = Signal()
        self._chat_signals: dict[int, Signal] = {}
        self.poll_generation = 0
        self._update_ids = itertools.count(10_000_001)
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(4_829_170_000_000_001)

    # --- chats ---------------------------------------------------------------

    def chat_signal(self, chat_id: int) -> Signal:
        """Fires when the bot sends to this chat; readers wait here, not on every change."""
        return self._chat_signals.setdefault(chat_id, Signal())

    def log(self, chat_id: int) -> ChatLog:
        return self.logs.setdefault(chat_id, ChatLog())

    def chat_api(self, chat_id: int) -> dict[str, Any]:
        if chat_id in self.users:
            return self.users[chat_id].chat_api()
        return self.groups[chat_id].chat_api()

    def resolve_target(self, chat_id: Any) -> int:
        """The chat a bot may write to, or the error Telegram would answer."""
        if chat_id is None or chat_id == "":
            raise ApiError.bad_request("chat_id is empty")
        if not isinstance(chat_id, int):
            raise ApiError.bad_request("chat not found")
        if chat_id > 0:
            user = self.users.get(chat_id)
            if user is None or not user.started:
                raise ApiError.bad_request("chat not found")
            if user.blocked:
                raise ApiError.forbidden("bot was blocked by the user")
            return chat_id
        group = self.groups.get(chat_id)
        if group is None:
            raise ApiError.bad_request("chat not found")
        if group.migrated_to is not None:
            raise ApiError.bad_request(
                "group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": group.migrated_to},
            )
        if not group.bot_present:
            raise ApiError.forbidden(f"bot was kicked from the {group.type} chat")
        return chat_id

    def migrate_group(self, chat_id: int, by: dict[str, Any] | None = None) -> int:
        group = self.groups[chat_id]
        if group.migrated_to is not None:
            return group.migrated_to
        if group.type != "group":
            raise ValueError(f"chat {chat_id} is a {group.type}, only groups migrate")
        new = GroupState(
            id=-(10**12 + abs(chat_id)), title=group.title, type="supergroup",
            bot_status=group.bot_status,
        )  # fmt: skip
        self.groups[new.id] = new
        group.migrated_to = new.id
        sender = by or GROUP_ANONYMOUS_BOT
        seen = group.bot_present
        self.store_message(chat_id, sender, {"migrate_to_chat_id": new.id}, bot_sees=seen)
        self.store_message(new.id, sender, {"migrate_from_chat_id": chat_id}, bot_sees=seen)
        return new.id

    # --- messages ------------------------------------------------------------

    def store_message(
        self,
        chat_id: int,
        sender: dict[str, Any],
        content: dict[str, Any],
        reply_to: int | None = None,
        *,
        bot_sees: bool,
    ) -> dict[str, Any]:
        log = self.log(chat_id)
        message: dict[str, Any] = {
            "message_id": next(log.ids),
            "from": sender,
            "chat": self.chat_api(chat_id),
            "date": int(time.time()),
            **content,
        }
        if reply_to is not None and reply_to in log.messages:
            message["reply_to_message"] = self.message_api(chat_id, reply_to)
        log.messages[message["message_id"]] = message
        if bot_sees:
            self.push_update("message", message)
        self.changed.fire()
        return message

    def add_bot_message(self, chat_id: int, **fields: Any) -> BotMessage:
        log = self.log(chat_id)
        message = BotMessage(
            message_id=next(log.ids), chat_id=chat_id, time=time.monotonic(),
            date=int(time.time()), **fields,
        )  # fmt: skip
        log.messages[message.message_id] = message
        log.bot_messages.append(message)
        self.chat_signal(chat_id).fire()
        self.changed.fire()
        return message

    def message_api(self, chat_id: int, message_id: int) -> dict[str, Any]:
        stored = self.log(chat_id).messages[message_id]
        if isinstance(stored, dict):
            return {k: v for k, v in stored.items() if k != "reply_to_message"}
        return self.bot_message_api(stored)

    def bot_message_api(self, message: BotMessage) -> dict[str, Any]:
        api: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self.bot_user,
            "chat": self.chat_api(message.chat_id),
            "date": message.date,
        }
        if message.text is not None:
            api["text"] = message.text
            if message.entities:
                api["entities"] = message.entities
        api.update(message.media)
        if message.caption:
            api["caption"] = message.caption
            if message.caption_entities:
                api["caption_entities"] = message.caption_entities
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            api["reply_markup"] = message.reply_markup  # Telegram echoes only inline keyboards
        if message.edit_date is not None:
            api["edit_date"] = message.edit_date
        reply_to = message.reply_to_message_id
        if reply_to is not None and reply_to in self.log(message.chat_id).messages:
            api["reply_to_message"] = self.message_api(message.chat_id, reply_to)
        return api

    # --- files ---------------------------------------------------------------

    def add_file(
        self, content: bytes | None, folder: str, file_name: str | None, mime_type: str | None
    ) -> StoredFile:
        n = next(self._file_ids)
        extension = ""
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1]
        elif mime_type:
            extension = mimetypes.guess_extension(mime_type) or ""
        stored = StoredFile(
            file_id=f"EMU{folder[:3].upper()}{n:06d}{secrets.token_hex(6)}",
            file_unique_id=f"U{n:06d}",
            file_path=f"{folder}/file_{n}{extension}",
            content=content, file_name=file_name, mime_type=mime_type,
        )  # fmt: skip
        self.files[stored.file_id] = stored
        return stored

    def file_by_path(self, path: str) -> StoredFile | None:
        return next((f for f in self.files.values() if f.file_path == path), None)

    def photo_sizes(self, large: StoredFile) -> list[dict[str, Any]]:
        """A thumbnail and the picture itself, smallest first, as Telegram sends them."""
        thumbnail = self.add_file(large.content, "photos", None, "image/jpeg")
        return [photo_size(thumbnail, 90, 68), photo_size(large, 800, 600)]

    def document_api(self, stored: StoredFile) -> dict[str, Any]:
        document: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        return document

    # --- updates -------------------------------------------------------------

    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        allowed = self.allowed_updates
        wanted = kind in allowed if allowed else kind not in _OPT_IN_UPDATES
        if not wanted:
            return None  # Telegram never creates updates the bot opted out of
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
        self.changed.fire()
        return update

    def confirm_updates(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:
            self.updates = self.updates[offset:]
        else:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def new_callback_query(self, user_id: int, chat_id: int, message_id: int, data: str) -> str:
        query = CallbackQuery(str(next(self._query_ids)), user_id, chat_id, message_id, data)
        self.callback_queries[query.id] = query
        return query.id

    def member_update(
        self, chat_id: int, by: dict[str, Any], old: str, new: str
    ) -> dict[str, Any] | None:
        def member(status: str) -> dict[str, Any]:
            if status == "administrator":
                return {
                    "status": status, "user": self.bot_user, "can_be_edited": False,
                    "is_anonymous": False, "can_manage_chat": True, "can_delete_messages": True,
                    "can_manage_video_chats": False, "can_restrict_members": True,
                    "can_promote_members": False, "can_change_info": True,
                    "can_invite_users": True, "can_post_stories": False,
                    "can_edit_stories": False, "can_delete_stories": False,
                    "can_send_welcome_messages": False,
                }  # fmt: skip
            if status == "kicked":
                return {"status": status, "user": self.bot_user, "until_date": 0}
            return {"status": status, "user": self.bot_user}

        payload = {
            "chat": self.chat_api(chat_id),
            "from": by,
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        return self.push_update("my_chat_member", payload)


def photo_size(stored: StoredFile, width: int, height: int) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "width": width,
        "height": height,
        "file_size": stored.size,
    }
