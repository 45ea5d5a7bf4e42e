"""Texts cut to Telegram's limit stay valid HTML; previews are plain text, escaped once."""

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.emulator.html_text import parse_html
from bot.i18n import create_i18n, t
from handlers.rendering import ELLIPSIS, clip_html, plain_preview, split_html, utf16_length

PIECES = st.lists(
    st.sampled_from(
        ["<b>", "</b>", "<i>", "</i>", "&amp;", "&lt;", "&gt;", "网格", "a", " ", "\n"]
    ),
    max_size=400,
)


def balanced(pieces: list[str]) -> str:
    """Well-formed HTML from the pieces: a closing tag only where its tag is open."""
    out: list[str] = []
    stack: list[str] = []
    for piece in pieces:
        if piece.startswith("</"):
            if stack and stack[-1] == piece[2:-1]:
                out.append(piece)
                stack.pop()
        elif piece.startswith("<"):
            out.append(piece)
            stack.append(piece[1:-1])
        else:
            out.append(piece)
    return "".join(out) + "".join(f"</{tag}>" for tag in reversed(stack))


@given(PIECES, st.integers(min_value=12, max_value=300))
def test_a_clipped_text_is_short_and_cuts_no_tag_or_entity(pieces: list[str], limit: int) -> None:
    text = balanced(pieces)
    clipped = clip_html(text, limit)
    assert len(clipped) <= limit
    if len(text) <= limit:
        assert clipped == text
        return
    assert clipped.endswith(ELLIPSIS) or re.search(r"…(</[bi]>)+$", clipped)
    # Every tag complete and closed, every entity whole.
    assert re.sub(r"</?[bi]>", "", clipped).count("<") == 0
    assert re.findall(r"&[a-z]*;?", clipped) == re.findall(r"&(?:amp|lt|gt);", clipped)
    opened = re.findall(r"<([bi])>", clipped)
    closed = re.findall(r"</([bi])>", clipped)
    assert sorted(opened) == sorted(closed)


def test_a_long_notice_list_is_cut_before_a_tag() -> None:
    text = "<b>" + "通" * 5000 + "</b>"
    clipped = clip_html(text, 100)
    assert clipped == "<b>" + "通" * (100 - len("<b></b>") - 1) + "…</b>"


def test_a_preview_is_escaped_once_when_it_goes_into_a_message() -> None:
    i18n = create_i18n("zh_Hans")
    preview = plain_preview("<b>A &amp; B</b> 停水")
    assert preview == "A & B 停水"
    with i18n.context():
        line = t("notice.list_entry", id=1, when="", acked=0, total=1, rate="0%", preview=preview)
    assert "A &amp; B" in line and "&amp;amp;" not in line
    assert html.unescape(line).count("A & B") == 1


REPEATED = st.sampled_from(["<b>名单</b>", "• 1号楼：到岗 0/6", "😀", "x"])
LINES = st.lists(
    st.one_of(
        st.sampled_from(["<blockquote>", "</blockquote>"]),
        st.tuples(REPEATED, st.integers(min_value=1, max_value=40)).map(lambda p: p[0] * p[1]),
    ),
    min_size=1,
    max_size=200,
)


def well_nested(lines: list[str]) -> str:
    """Lines of a text where one blockquote at a time may span lines."""
    out, open_quote = [], False
    for line in lines:
        if line == "<blockquote>":
            line = "x" if open_quote else line
            open_quote = True
        elif line == "</blockquote>":
            line = line if open_quote else "x"
            open_quote = False
        out.append(line)
    return "\n".join(out) + ("</blockquote>" if open_quote else "")


@settings(deadline=None)  # a busy machine, not the splitter, sets the time
@given(LINES, st.integers(min_value=120, max_value=700))
def test_a_split_text_keeps_every_line_in_parts_that_fit_and_parse(
    lines: list[str], limit: int
) -> None:
    text = well_nested(lines)
    parts = split_html(text, limit)
    for part in parts:
        assert utf16_length(part) <= limit
        parse_html(part)  # Telegram's parser takes it: every tag closed where it is opened
    if all(utf16_length(line) + 2 * len("<blockquote>") < limit for line in lines):
        # Nothing was clipped: the parts read as the whole, markup aside.
        assert [parse_html(part)[0] for part in parts] and "".join(
            parse_html(part)[0] for part in parts
        ).replace("\n", "") == parse_html(text)[0].replace("\n", "")


def test_a_long_list_is_split_between_lines_and_a_single_overlong_line_clipped() -> None:
    lines = [f"• 第 {n} 栋：到岗 0/6" for n in range(1000)]
    parts = split_html("<b>名单</b>\n" + "\n".join(lines))
    assert len(parts) > 1 and all(utf16_length(part) <= 4096 for part in parts)
    assert "\n".join(parts).count("• 第") == 1000
    (clipped,) = split_html("<i>" + "长" * 5000 + "</i>")
    assert clipped.endswith("…</i>") and utf16_length(clipped) <= 4096
