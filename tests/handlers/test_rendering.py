"""Texts cut to Telegram's limit stay valid HTML; previews are plain text, escaped once."""

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from bot.i18n import create_i18n, t
from handlers.rendering import ELLIPSIS, clip_html, plain_preview

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
