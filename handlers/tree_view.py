"""The directory's tap-through view: a node with its posts and counts, a page of its
children as buttons, and a button back up that never leaves the caller's scope."""

import math
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Raw, t
from handlers.ids import ROW_ID_MAX
from handlers.rendering import clip_html, post_title
from models.access import Scope
from models.directory import (
    ChildCoverage,
    Holding,
    children_page,
    coverage_by_level,
    holdings,
    unreachable_under,
)
from models.org import LEVELS, Level, Node
from models.text import shown

# Children per page: buttons a phone shows without scrolling, lines that fit one message.
PAGE_SIZE = 10
# A name in a list or on a button is cut to this: node names may be long.
NAME_CHARS = 48
BUTTON_NAME_CHARS = 28


class TreeOpen(CallbackData, prefix="tree"):
    """A node of the directory (0: the caller's top, the county for an admin) and a page
    of its children."""

    node_id: Annotated[int, Field(ge=0, le=ROW_ID_MAX)]
    page: Annotated[int, Field(ge=0, le=100_000)] = 0


async def top_nodes(session: AsyncSession, scope: Scope) -> list[Node]:
    """The nodes of a member's posts, without those inside another of them: where the
    member's directory starts."""
    nodes = [
        node
        for node in [await session.get(Node, node_id) for node_id, _ in sorted(scope.roots)]
        if node is not None
    ]
    return [
        node
        for node in nodes
        if not any(
            other.id != node.id and Scope(False, frozenset({(other.id, other.level)})).sees(node)
            for other in nodes
        )
    ]


async def tree_view(
    session: AsyncSession, scope: Scope, node: Node | None, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    """The text and buttons for ``node`` (None: the county for an admin, else the caller's
    own top), the caller's scope already checked."""
    tops: list[Node] | None = None
    if node is None and not scope.is_admin:
        tops = await top_nodes(session, scope)
        if len(tops) != 1:
            return tops_view(tops)
        node = tops[0]
    lines = [t("tree.title", path=node.path if node else t("tree.county"))]
    if node is not None:
        lines.extend(
            own_post_line(node.level, holding) for holding in await holdings(session, node.id)
        )
    for level in await coverage_by_level(session, node):
        lines.append(
            t(
                "tree.level",
                level=t(f"level.{level.label}"),
                nodes=level.nodes,
                posts=level.posts,
                filled=level.filled,
                vacant=level.vacant,
            )
        )
    unreachable = await unreachable_under(session, node)
    if unreachable:
        lines.append(t("tree.unreachable", count=unreachable))
    buttons = InlineKeyboardBuilder()
    children = await children_page(session, node, max(page, 0) * PAGE_SIZE, PAGE_SIZE)
    pages = max(1, math.ceil(children.total / PAGE_SIZE))
    if page >= pages:  # children removed since the button was made
        page = pages - 1
        children = await children_page(session, node, page * PAGE_SIZE, PAGE_SIZE)
    if children.total:
        child_level = LEVELS[0 if node is None else Level(node.level).depth + 1]
        lines.append(
            t(
                "tree.children_page",
                level=t(f"level.{child_level.value}"),
                first=page * PAGE_SIZE + 1,
                last=page * PAGE_SIZE + len(children.children),
                total=children.total,
            )
        )
        for child in children.children:
            lines.append(child_line(child, child_level))
            buttons.button(text=child_button(child), callback_data=TreeOpen(node_id=child.node_id))
        buttons.adjust(2)
    node_id = node.id if node else 0
    navigation = InlineKeyboardBuilder()
    if page > 0:
        navigation.button(
            text=t("tree.prev"), callback_data=TreeOpen(node_id=node_id, page=page - 1)
        )
    if page + 1 < pages:
        navigation.button(
            text=t("tree.next"), callback_data=TreeOpen(node_id=node_id, page=page + 1)
        )
    buttons.attach(navigation)
    up = await up_button(session, scope, node, tops)
    if up is not None:
        text, target = up
        buttons.row()
        buttons.button(text=text, callback_data=TreeOpen(node_id=target))
    return clip_html("\n".join(lines)), buttons.as_markup()


def own_post_line(level: str, holding: Holding) -> str:
    title = post_title(level, holding.role)
    if holding.holder_name:
        return t("tree.held", title=title, name=shown(holding.holder_name, NAME_CHARS))
    return t("tree.vacant", title=title)


def child_line(child: ChildCoverage, child_level: Level) -> str:
    name = shown(child.name, NAME_CHARS)
    counts = t(
        "tree.child_counts",
        filled=child.filled,
        posts=child.posts,
        vacant=child.vacant,
    )
    below = ""
    if child.children and child_level.depth + 1 < len(LEVELS):
        below = t(
            "tree.child_below",
            level=t(f"level.{LEVELS[child_level.depth + 1].value}"),
            count=child.children,
        )
    unreachable = t("tree.child_unreachable", count=child.unreachable) if child.unreachable else ""
    return t(
        "tree.child", name=name, below=Raw(below), counts=Raw(counts), unreachable=Raw(unreachable)
    )


def child_button(child: ChildCoverage) -> str:
    """Button labels are plain text, short enough for a phone's half width."""
    label = f"{shown(child.name, BUTTON_NAME_CHARS)} · {child.filled}/{child.posts}"
    if child.unreachable:
        label += f" · ⚠{child.unreachable}"
    return label


async def up_button(
    session: AsyncSession, scope: Scope, node: Node | None, tops: list[Node] | None
) -> tuple[str, int] | None:
    """The label and node (0: the caller's top) one step up, if the caller may go there."""
    if node is None:
        return None
    parent = await session.get(Node, node.parent_id) if node.parent_id else None
    if parent is not None and scope.sees(parent):
        return t("tree.up", name=shown(parent.name, BUTTON_NAME_CHARS)), parent.id
    if scope.is_admin:
        return t("tree.up_county"), 0
    if tops is None:
        tops = await top_nodes(session, scope)
    if len(tops) > 1:
        return t("tree.up_mine"), 0
    return None  # the caller's own node: nothing above is theirs to see


def tops_view(tops: list[Node]) -> tuple[str, InlineKeyboardMarkup]:
    buttons = InlineKeyboardBuilder()
    lines = [t("tree.tops", count=len(tops))]
    for top in tops:
        lines.append(t("tree.top", path=top.path))
        buttons.button(text=shown(top.path, 60), callback_data=TreeOpen(node_id=top.id))
    buttons.adjust(1)
    return clip_html("\n".join(lines)), buttons.as_markup()
