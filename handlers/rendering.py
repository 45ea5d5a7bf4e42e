"""Shared pieces of what the bot shows: post titles and paths, and texts made to fit
Telegram's limit on a message's length."""

import html
import re
from typing import Protocol

from aiogram.types import InlineKeyboardMarkup, Message

from bot.i18n import Raw, t


class NamedPost(Protocol):
    """A post as the domain gives it (``PostView``, ``PostRef``)."""

    @property
    def level(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def path(self) -> str: ...


def post_title(level: str, role: str) -> str:
    """e.g. 单元长 / unit lead, 物业信息员 / property officer."""
    return t(f"post.{level}.{role}")


def describe_post(post: NamedPost) -> Raw:
    """The post as HTML, ready to go into another text."""
    return Raw(t("post.described", title=post_title(post.level, post.role), path=post.path))


def post_button_text(post: NamedPost) -> str:
    """Button labels are plain text, not HTML."""
    return f"{post_title(post.level, post.role)} · {post.path}"


# Telegram refuses a message longer than this (https://core.telegram.org/bots/api#sendmessage).
MESSAGE_LIMIT = 4096
ELLIPSIS = "…"


def clip_html(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` (Telegram HTML) cut to at most ``limit`` characters, never inside a tag or
    an entity, with the tags still open closed again and "…" where it was cut."""
    if len(text) <= limit:
        return text
    open_tags: list[str] = []
    kept = 0  # characters of ``text`` that are kept
    index = 0
    while index < len(text):
        if text[index] == "<":
            end = text.find(">", index)
            if end < 0:
                break
            piece = text[index : end + 1]
        elif text[index] == "&":
            end = text.find(";", index)
            piece = text[index : end + 1] if 0 < end - index <= 10 else "&"
        else:
            piece = text[index]
        closing = "".join(f"</{tag}>" for tag in reversed(open_tags))
        if index + len(piece) + len(closing) + len(ELLIPSIS) + _closing_growth(piece) > limit:
            break
        if piece.startswith("</"):
            name = piece[2:-1].strip().split()[0] if len(piece) > 3 else ""
            if name in open_tags:
                open_tags.reverse()
                open_tags.remove(name)
                open_tags.reverse()
        elif piece.startswith("<") and not piece.endswith("/>"):
            open_tags.append(piece[1:-1].strip().split()[0])
        index += len(piece)
        kept = index
    return text[:kept] + ELLIPSIS + "".join(f"</{tag}>" for tag in reversed(open_tags))


def _closing_growth(piece: str) -> int:
    """How much longer the closing tags get when ``piece`` opens a tag."""
    if piece.startswith("<") and not piece.startswith("</") and not piece.endswith("/>"):
        return len(piece[1:-1].strip().split()[0]) + 3
    return 0


def plain_preview(html_text: str, length: int = 40) -> str:
    """The first ``length`` characters a reader sees of an HTML text, as plain text (``t``
    escapes it once when it goes into another message)."""
    plain = html.unescape(re.sub(r"<[^>]*>", "", html_text))
    return plain if len(plain) <= length else plain[: length - 1] + ELLIPSIS


_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>")


def utf16_length(text: str) -> int:
    """Telegram counts a text's length, like its entities' offsets, in UTF-16 code units:
    an emoji outside the BMP counts twice."""
    return len(text.encode("utf-16-le")) // 2


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` (Telegram HTML) as consecutive messages of at most ``limit`` UTF-16 units,
    split between lines. A tag open across a split (a ``<blockquote>`` of many lines) is
    closed at the end of one part and opened again at the start of the next; a single line
    too long for a message is clipped (``clip_html``) into a part of its own."""
    if utf16_length(text) <= limit:
        return [text]
    parts: list[str] = []
    lines: list[str] = []
    size = 0
    open_tags: list[tuple[str, str]] = []  # (name, opening tag) of the tags open so far
    for line in text.split("\n"):
        reopen = "".join(tag for _, tag in open_tags)
        after = _tags_after(open_tags, line)
        closing = "".join(f"</{name}>" for name, _ in reversed(after))
        if utf16_length(reopen + line + closing) > limit:
            if lines:
                parts.append("\n".join(lines) + _closing(open_tags))
                lines, size = [], 0
            piece = reopen + line + closing
            parts.append(clip_html(piece, limit - _surrogates(piece)))
        else:
            if lines and size + 1 + utf16_length(line + closing) > limit:
                parts.append("\n".join(lines) + _closing(open_tags))
                lines, size = [], 0
            piece = line if lines or not parts else reopen + line
            size += utf16_length(piece) + (1 if lines else 0)
            lines.append(piece)
        open_tags = after
    if lines:
        parts.append("\n".join(lines) + _closing(open_tags))
    return [part for part in parts if part.strip()]


def _tags_after(open_tags: list[tuple[str, str]], line: str) -> list[tuple[str, str]]:
    """The tags open after ``line``, given those open before it."""
    after = list(open_tags)
    for match in _TAG.finditer(line):
        closing_tag, name = match.group(1), match.group(2).lower()
        if not closing_tag:
            after.append((name, match.group(0)))
        elif any(open_name == name for open_name, _ in after):
            index = max(i for i, (open_name, _) in enumerate(after) if open_name == name)
            del after[index]
    return after


def _closing(open_tags: list[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(open_tags))


def _surrogates(text: str) -> int:
    """Characters of ``text`` that Telegram counts twice (``clip_html`` counts them once)."""
    return utf16_length(text) - len(text)


async def answer_in_parts(
    message: Message, text: str, reply_markup: InlineKeyboardMarkup | None = None
) -> None:
    """Answer with ``text`` in as many messages as it takes, the buttons under the last."""
    parts = split_html(text)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        await message.answer(part, reply_markup=reply_markup if last else None)
