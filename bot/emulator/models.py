"""Plain records shared by the emulator's modules."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

FaultKind = Literal["429", "5xx", "timeout", "drop", "blocked", "chat_not_found", "migrate"]

SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "copyMessage"})


class ApiError(Exception):
    """A Bot API error answer: raised by method handlers, turned into JSON by the server."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    @classmethod
    def bad_request(cls, text: str, parameters: dict[str, Any] | None = None) -> ApiError:
        return cls(400, f"Bad Request: {text}", parameters)

    @classmethod
    def forbidden(cls, text: str) -> ApiError:
        return cls(403, f"Forbidden: {text}")

    @classmethod
    def too_many(cls, retry_after: int) -> ApiError:
        return cls(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class UploadedFile:
    """A multipart file part as the bot sent it."""

    name: str
    filename: str | None
    content_type: str | None
    content: bytes = field(repr=False)


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes | None = field(repr=False)
    file_name: str | None = None
    mime_type: str | None = None

    @property
    def size(self) -> int:
        return len(self.content or b"")


@dataclass
class RecordedRequest:
    time: float
    method: str
    params: dict[str, Any]
    status: int | str | None = None  # None while still being answered; "dropped" for no answer
    error: str | None = None
    result: Any = None
    fault: str | None = None
    via_webhook: bool = False  # a method call the bot put into its webhook response


@dataclass
class WebhookDelivery:
    time: float
    update_id: int
    url: str
    status: int | str  # HTTP status of the receiver, or "error" when unreachable
    error: str | None = None


@dataclass
class Fault:
    kind: FaultKind
    method: str | None = None
    chat_id: int | None = None
    times: int = 1
    retry_after: int = 1
    delay: float | None = None
    deliver: bool = True

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {get_args(FaultKind)}")

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.times <= 0:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id


@dataclass
class BotMessage:
    """A message the bot sent, as it currently looks (edits applied)."""

    message_id: int
    chat_id: int
    kind: str  # "text", "photo", "document", or the content key of a copied message
    time: float
    date: int
    method: str
    text: str | None = None  # what the reader sees
    raw_text: str | None = None  # what the bot sent
    parse_mode: str | None = None
    entities: list[dict[str, Any]] | None = None
    caption: str | None = None
    raw_caption: str | None = None
    caption_entities: list[dict[str, Any]] | None = None
    reply_markup: dict[str, Any] | None = None
    photo: str | None = None  # file_id of the largest size
    document: str | None = None  # file_id
    reply_to_message_id: int | None = None
    media: dict[str, Any] = field(default_factory=dict, repr=False)  # API fields: photo, document…
    edit_date: int | None = None
    edit_count: int = 0
    deleted: bool = False

    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Rows of (text, callback_data or url) of the inline or reply keyboard."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        result: list[list[tuple[str, str | None]]] = []
        for row in rows:
            out: list[tuple[str, str | None]] = []
            for button in row:
                if isinstance(button, str):
                    out.append((button, None))
                else:
                    out.append((button["text"], button.get("callback_data") or button.get("url")))
            result.append(out)
        return result


class Signal:
    """Wakes every waiter when anything in the emulator changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), max(seconds, 0))
        except TimeoutError:
            return False
        return True
