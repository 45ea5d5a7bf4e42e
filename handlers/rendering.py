"""Shared pieces of what the bot shows: post titles and paths."""

import html
import re
from typing import Protocol

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
