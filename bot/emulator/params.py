"""Turn Bot API request parameters (JSON, urlencoded or multipart) into typed Python values."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web

from .models import ApiError, UploadedFile

# Form encodings carry everything as strings; these are the fields whose type matters here.
_JSON_FIELDS = {
    "reply_markup", "entities", "caption_entities", "allowed_updates", "scope", "commands",
    "link_preview_options", "reply_parameters", "media", "message_ids",
}  # fmt: skip
_INT_FIELDS = {
    "chat_id", "from_chat_id", "message_id", "offset", "limit", "timeout", "reply_to_message_id",
    "message_thread_id", "max_connections", "cache_time", "user_id",
}  # fmt: skip
_BOOL_FIELDS = {
    "show_alert", "disable_notification", "protect_content", "drop_pending_updates",
    "disable_web_page_preview", "allow_sending_without_reply", "has_spoiler",
    "disable_content_type_detection", "show_caption_above_media",
}  # fmt: skip
_INTEGER = re.compile(r"-?\d+")


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Decode JSON-in-strings, ints and bools; replace attach://name by the uploaded file."""
    attached: set[str] = set()
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode()
        if isinstance(value, str):
            target = raw.get(value.removeprefix("attach://"))
            if value.startswith("attach://") and isinstance(target, UploadedFile):
                attached.add(value.removeprefix("attach://"))
                value = target
            elif key in _JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    raise ApiError.bad_request(f"can't parse {key} JSON object") from None
            elif key in _INT_FIELDS and _INTEGER.fullmatch(value):
                value = int(value)
            elif key in _BOOL_FIELDS:
                value = value.lower() in ("true", "1")
        params[key] = value
    for name in attached:
        params.pop(name, None)
    return params


async def read_request(request: web.Request) -> dict[str, Any]:
    raw: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return normalize(raw)
    content_type = request.content_type
    try:
        if content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ApiError.bad_request("request body must be a JSON object")
            raw.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    raw[key] = UploadedFile(key, value.filename, value.content_type, content)
                else:
                    raw[key] = value
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    except ValueError:
        raise ApiError.bad_request("can't parse request body") from None
    return normalize(raw)


async def read_multipart(reader: MultipartReader) -> dict[str, Any]:
    """A multipart body outside aiohttp.web: aiogram's webhook answers use it."""
    raw: dict[str, Any] = {}
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename:
            content_type = part.headers.get("Content-Type")
            raw[part.name] = UploadedFile(part.name, part.filename, content_type, await part.read())
        else:
            raw[part.name] = await part.text()
    return normalize(raw)
