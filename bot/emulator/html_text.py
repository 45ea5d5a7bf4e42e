"""Telegram's parse_mode=HTML: the text a reader sees plus its entities, or Telegram's error."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

_NAMED_ENTITIES = {"lt", "gt", "amp", "quot"}
_ENTITY = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z0-9]+));")
# A complete tag; Telegram allows '>' only as the end of a tag, so no quoting rules are needed.
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?>")
_SPECIAL = re.compile(r"[<&]")

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}
_ALLOWED_TAGS = {*_SIMPLE_TAGS, "a", "span", "tg-emoji"}


class EntityParseError(ValueError):
    """The text would make Telegram answer "can't parse entities"."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Return (plain text, entities with UTF-16 offsets) or raise EntityParseError."""
    _check_lexical(text)
    parser = _TelegramHtml(text)
    parser.feed(text)
    parser.close()
    return "".join(parser.out), sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def _check_lexical(text: str) -> None:
    """Reject what html.parser would quietly accept: bare '<', bare '&', unknown entities."""
    pos = 0
    while match := _SPECIAL.search(text, pos):
        start = match.start()
        if text[start] == "&":
            entity = _ENTITY.match(text, start)
            if entity is None:
                raise EntityParseError(
                    f'Can\'t parse "&" at byte offset {_byte_offset(text, start)}: '
                    "escape it as &amp;"
                )
            name = entity.group(3)
            if name is not None and name not in _NAMED_ENTITIES:
                raise EntityParseError(
                    f'Unsupported HTML entity "&{name};" at byte offset {_byte_offset(text, start)}'
                )
            if name is None:
                code = int(entity.group(1) or entity.group(2), 10 if entity.group(1) else 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise EntityParseError(
                        f"Invalid numeric entity at byte offset {_byte_offset(text, start)}"
                    )
            pos = entity.end()
            continue
        tag = _TAG.match(text, start)
        if tag is None:
            word = re.match(r"/?([^\s<>/]*)", text[start + 1 :])
            name = word.group(1) if word else ""
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, start)}'
            )
        pos = tag.end()


class _TelegramHtml(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.out: list[str] = []
        self.entities: list[dict[str, Any]] = []
        self._stack: list[dict[str, Any]] = []
        self._offset = 0  # in UTF-16 code units, as Telegram counts
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def _here(self) -> int:
        line, col = self.getpos()
        return _byte_offset(self.source, self._line_starts[line - 1] + col)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag not in _ALLOWED_TAGS or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {self._here()}')
        self._stack.append({"tag": tag, "attrs": attributes, "offset": self._offset})

    def handle_endtag(self, tag: str) -> None:
        if not self._stack:
            raise EntityParseError(f'Unexpected end tag "{tag}" at byte offset {self._here()}')
        frame = self._stack.pop()
        if frame["tag"] != tag:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {self._here()}, "
                f'expected "</{frame["tag"]}>", found "</{tag}>"'
            )
        self._add_entity(frame)

    def handle_data(self, data: str) -> None:
        self.out.append(data)
        self._offset += utf16_len(data)

    def handle_comment(self, data: str) -> None:
        raise EntityParseError(f"Unsupported comment at byte offset {self._here()}")

    def close(self) -> None:
        super().close()
        if self._stack:
            raise EntityParseError(
                f'Can\'t find end tag corresponding to start tag "{self._stack[-1]["tag"]}"'
            )

    def _add_entity(self, frame: dict[str, Any]) -> None:
        tag, attrs = frame["tag"], frame["attrs"]
        length = self._offset - frame["offset"]
        entity: dict[str, Any] = {"offset": frame["offset"], "length": length}
        if tag == "code" and self._stack and self._stack[-1]["tag"] == "pre":
            # <pre><code class="language-x"> is one pre entity with a language, as in Telegram.
            language = attrs.get("class", "").removeprefix("language-")
            if language:
                self._stack[-1]["language"] = language
            return
        if tag == "a":
            if not attrs.get("href"):
                return
            entity.update(type="text_link", url=attrs["href"])
        elif tag == "span":
            entity["type"] = "spoiler"
        elif tag == "tg-emoji":
            entity.update(type="custom_emoji", custom_emoji_id=attrs.get("emoji-id", ""))
        elif tag == "blockquote" and "expandable" in attrs:
            entity["type"] = "expandable_blockquote"
        else:
            entity["type"] = _SIMPLE_TAGS[tag]
            if tag == "pre" and frame.get("language"):
                entity["language"] = frame["language"]
        if length > 0:
            self.entities.append(entity)
