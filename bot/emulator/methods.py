"""Bot API methods: each takes parsed params, returns the `result` or raises ApiError."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .html_text import EntityParseError, parse_html, utf16_len
from .limits import RateLimiter
from .models import ApiError, BotMessage, StoredFile, UploadedFile
from .state import COPYABLE_CONTENT, ChatLog, Webhook, World, photo_size

Handler = Callable[[dict[str, Any]], Any | Awaitable[Any]]

_CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
}  # fmt: skip
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")


def format_text(
    raw: Any, parse_mode: Any, entities: Any, *, limit: int, too_long: str
) -> tuple[str, list[dict[str, Any]] | None]:
    """Apply parse_mode like Telegram and enforce the length limit."""
    text = "" if raw is None else str(raw)
    mode = str(parse_mode or "").lower()
    if mode == "html":
        try:
            text, parsed = parse_html(text)
        except EntityParseError as error:
            raise ApiError.bad_request(f"can't parse entities: {error}") from None
        entities = parsed or None
    elif mode not in ("", "markdown", "markdownv2"):
        raise ApiError.bad_request(f"unsupported parse_mode {parse_mode}")
    # Telegram measures a text, like its entities' offsets, in UTF-16 code units after the
    # markup is parsed: tags do not count, an emoji outside the BMP counts twice.
    if utf16_len(text) > limit:
        raise ApiError.bad_request(too_long)
    return text, entities or None


def check_markup(markup: Any) -> dict[str, Any] | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError.bad_request("can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise ApiError.bad_request("can't parse inline keyboard button: text is empty")
            if set(button) == {"text"}:
                raise ApiError.bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise ApiError.bad_request("BUTTON_DATA_INVALID")
    return markup


class BotApi:
    def __init__(self, world: World, limiter: RateLimiter, closing: asyncio.Event) -> None:
        self.world = world
        self.limiter = limiter
        self.closing = closing
        names = [
            "getMe", "getUpdates", "sendMessage", "sendPhoto", "sendDocument", "copyMessage",
            "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery", "setMyCommands",
            "getMyCommands", "deleteMyCommands", "setWebhook", "deleteWebhook", "getWebhookInfo",
            "getFile", "getChat", "sendChatAction", "deleteMessage",
        ]  # fmt: skip
        snake = {name: re.sub(r"([A-Z])", r"_\1", name).lower() for name in names}
        self._table: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, getattr(self, snake[name])) for name in names
        }

    def lookup(self, method: str) -> tuple[str, Handler] | None:
        """Method names are case-insensitive in the Bot API."""
        return self._table.get(method.lower())

    # --- helpers -------------------------------------------------------------

    def _rate(self, chat_id: int) -> None:
        retry_after = self.limiter.acquire(chat_id)
        if retry_after is not None:
            raise ApiError.too_many(retry_after)

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> int | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        if message_id in self.world.log(chat_id).messages:
            return int(message_id)
        allow = reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply"))
        if allow:
            return None
        raise ApiError.bad_request("message to be replied not found")

    def _bot_message(self, params: dict[str, Any]) -> BotMessage:
        if params.get("inline_message_id"):
            raise ApiError.bad_request("inline messages are not supported by the emulator")
        chat_id = self.world.resolve_target(params.get("chat_id"))
        stored = _stored(self.world.log(chat_id), params)
        if stored is None or (isinstance(stored, BotMessage) and stored.deleted):
            raise ApiError.bad_request("message to edit not found")
        if not isinstance(stored, BotMessage):
            raise ApiError.bad_request("message can't be edited")
        return stored

    def _input_file(self, value: Any, folder: str, what: str) -> StoredFile:
        if isinstance(value, UploadedFile):
            if folder == "photos":  # Telegram recompresses every photo to JPEG
                return self.world.add_file(value.content, folder, None, "image/jpeg")
            mime = mimetypes.guess_type(value.filename or "")[0] or "application/octet-stream"
            return self.world.add_file(value.content, folder, value.filename, mime)
        if isinstance(value, str) and value in self.world.files:
            return self.world.files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            # No internet here: keep the URL's file as an empty placeholder.
            name = value.rsplit("/", 1)[-1] or None
            return self.world.add_file(None, folder, name, mimetypes.guess_type(value)[0])
        if not value:
            raise ApiError.bad_request(f"there is no {what} in the request")
        raise ApiError.bad_request("wrong file identifier/HTTP URL specified")

    def _send(self, chat_id: int, params: dict[str, Any], method: str, **fields: Any) -> BotMessage:
        markup = check_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        self._rate(chat_id)
        return self.world.add_bot_message(
            chat_id, method=method, reply_markup=markup, reply_to_message_id=reply_to, **fields
        )

    def _caption(self, params: dict[str, Any]) -> dict[str, Any]:
        caption, entities = format_text(
            params.get("caption"), params.get("parse_mode"), params.get("caption_entities"),
            limit=1024, too_long="message caption is too long",
        )  # fmt: skip
        return {
            "caption": caption or None,
            "raw_caption": params.get("caption"),
            "caption_entities": entities,
            "parse_mode": params.get("parse_mode"),
        }

    # --- methods -------------------------------------------------------------

    def get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.world.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        world = self.world
        if world.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        if "allowed_updates" in params:
            world.allowed_updates = list(params["allowed_updates"] or []) or None
        world.confirm_updates(params.get("offset"))
        world.poll_generation += 1
        generation = world.poll_generation
        world.changed.fire()
        while True:
            if world.poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if world.webhook is not None:
                raise ApiError(409, "Conflict: webhook was set while getUpdates was waiting")
            remaining = deadline - time.monotonic()
            if world.updates or remaining <= 0 or self.closing.is_set():
                return world.updates[:limit]
            await world.changed.wait(remaining)

    def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self.world.resolve_target(params.get("chat_id"))
        text, entities = format_text(
            params.get("text"), params.get("parse_mode"), params.get("entities"),
            limit=4096, too_long="message is too long",
        )  # fmt: skip
        if not text.strip():
            raise ApiError.bad_request("message text is empty")
        message = self._send(
            chat_id, params, "sendMessage", kind="text", text=text, raw_text=params.get("text"),
            parse_mode=params.get("parse_mode"), entities=entities,
        )  # fmt: skip
        return self.world.bot_message_api(message)

    def send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self.world.resolve_target(params.get("chat_id"))
        caption = self._caption(params)
        photo = params.get("photo")
        if isinstance(photo, str) and photo in self.world.files:
            sizes = [photo_size(self.world.files[photo], 800, 600)]  # resent by file_id
        else:
            sizes = self.world.photo_sizes(self._input_file(photo, "photos", "photo"))
        message = self._send(
            chat_id, params, "sendPhoto", kind="photo", photo=sizes[-1]["file_id"],
            media={"photo": sizes}, **caption,
        )  # fmt: skip
        return self.world.bot_message_api(message)

    def send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self.world.resolve_target(params.get("chat_id"))
        caption = self._caption(params)
        stored = self._input_file(params.get("document"), "documents", "document")
        message = self._send(
            chat_id, params, "sendDocument", kind="document", document=stored.file_id,
            media={"document": self.world.document_api(stored)}, **caption,
        )  # fmt: skip
        return self.world.bot_message_api(message)

    def copy_message(self, params: dict[str, Any]) -> dict[str, int]:
        world = self.world
        chat_id = world.resolve_target(params.get("chat_id"))
        from_chat = params.get("from_chat_id")
        log = world.logs.get(from_chat) if isinstance(from_chat, int) else None
        source = _stored(log, params) if log else None
        if source is None or (isinstance(source, BotMessage) and source.deleted):
            raise ApiError.bad_request("message to copy not found")
        assert isinstance(from_chat, int)
        original = world.message_api(from_chat, params["message_id"])
        kind = next((key for key in COPYABLE_CONTENT if key in original), None)
        if kind is None:
            raise ApiError.bad_request("message can't be copied")
        fields: dict[str, Any] = {"kind": kind}
        if kind == "text":
            fields.update(text=original["text"], raw_text=original["text"])
            fields["entities"] = original.get("entities")
        else:
            fields["media"] = {kind: original[kind]}
            if kind == "photo":
                fields["photo"] = original["photo"][-1]["file_id"]
            elif kind == "document":
                fields["document"] = original["document"]["file_id"]
            if "caption" in params:
                fields.update(self._caption(params))
            else:
                fields.update(
                    caption=original.get("caption"), raw_caption=original.get("caption"),
                    caption_entities=original.get("caption_entities"),
                )  # fmt: skip
        message = self._send(chat_id, params, "copyMessage", **fields)
        return {"message_id": message.message_id}

    def edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._bot_message(params)
        if message.text is None:
            raise ApiError.bad_request("there is no text in the message to edit")
        text, entities = format_text(
            params.get("text"), params.get("parse_mode"), params.get("entities"),
            limit=4096, too_long="message is too long",
        )  # fmt: skip
        if not text.strip():
            raise ApiError.bad_request("message text is empty")
        markup = check_markup(params.get("reply_markup"))
        self._apply_edit(message, markup, text=text, entities=entities)
        message.raw_text = params.get("text")
        message.parse_mode = params.get("parse_mode")
        return self.world.bot_message_api(message)

    def edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._bot_message(params)
        self._apply_edit(message, check_markup(params.get("reply_markup")))
        return self.world.bot_message_api(message)

    def _apply_edit(self, message: BotMessage, markup: dict[str, Any] | None, **text: Any) -> None:
        before = (message.text, message.entities, message.reply_markup)
        after = (text.get("text", message.text), text.get("entities", message.entities), markup)
        if before == after:
            raise ApiError.bad_request(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        message.text, message.entities, message.reply_markup = after
        message.edit_date = int(time.time())
        message.edit_count += 1
        self.world.changed.fire()

    def answer_callback_query(self, params: dict[str, Any]) -> bool:
        query = self.world.callback_queries.get(str(params.get("callback_query_id")))
        if query is None or query.answer is not None:
            raise ApiError.bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text") or "")) > 200:
            raise ApiError.bad_request("MESSAGE_TOO_LONG")
        query.answer = {
            "text": params.get("text"),
            "show_alert": bool(params.get("show_alert", False)),
            "url": params.get("url"),
            "cache_time": params.get("cache_time"),
        }
        self.world.changed.fire()
        return True

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        return scope_key(params.get("scope")), str(params.get("language_code") or "")

    def set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError.bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise ApiError.bad_request("can't parse BotCommand JSON object")
            if not _COMMAND.fullmatch(str(command.get("command", ""))):
                raise ApiError.bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise ApiError.bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(params)
        self.world.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        if not commands:
            self.world.commands.pop(key)
        return True

    def get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.world.commands.get(self._commands_key(params), [])

    def delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.world.commands.pop(self._commands_key(params), None)
        return True

    def set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return self.delete_webhook(params)
        if not url.startswith(("http://", "https://")):
            raise ApiError.bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            raise ApiError.bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self.world.updates.clear()
        if "allowed_updates" in params:
            self.world.allowed_updates = list(params["allowed_updates"] or []) or None
        self.world.webhook = Webhook(
            url=url, secret_token=secret, max_connections=int(params.get("max_connections") or 40)
        )
        self.world.changed.fire()
        return True

    def delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            self.world.updates.clear()
        self.world.webhook = None
        self.world.changed.fire()
        return True

    def get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        hook = self.world.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.world.updates),
        }
        if hook:
            info["max_connections"] = hook.max_connections
            if hook.last_error_date:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
            if self.world.allowed_updates:
                info["allowed_updates"] = self.world.allowed_updates
        return info

    def get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.world.files.get(str(params.get("file_id")))
        if stored is None:
            raise ApiError.bad_request("wrong file_id or the file is temporarily unavailable")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    def get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        world = self.world
        known = chat_id in world.users or chat_id in world.groups
        if not isinstance(chat_id, int) or not known:
            raise ApiError.bad_request("chat not found")
        if chat_id in world.groups and world.groups[chat_id].migrated_to is not None:
            world.resolve_target(chat_id)  # raises the migration error, as Telegram does
        return {
            **world.chat_api(chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                "premium_subscription": False, "gifts_from_channels": False,
            },
        }  # fmt: skip

    def send_chat_action(self, params: dict[str, Any]) -> bool:
        self.world.resolve_target(params.get("chat_id"))
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError.bad_request("wrong parameter action in request")
        return True

    def delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = self.world.resolve_target(params.get("chat_id"))
        log = self.world.log(chat_id)
        stored = _stored(log, params)
        if stored is None or (isinstance(stored, BotMessage) and stored.deleted):
            raise ApiError.bad_request("message to delete not found")
        if isinstance(stored, BotMessage):
            stored.deleted = True
        else:
            del log.messages[stored["message_id"]]
        self.world.changed.fire()
        return True


def scope_key(scope: Any) -> str:
    """Commands are stored per scope; the default scope has two spellings."""
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


def _stored(log: ChatLog, params: dict[str, Any]) -> dict[str, Any] | BotMessage | None:
    """The message ``params["message_id"]`` names in the chat; None when there is none."""
    message_id = params.get("message_id")
    return log.messages.get(message_id) if isinstance(message_id, int) else None
