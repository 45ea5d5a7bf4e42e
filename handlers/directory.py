"""/tree and /whois: who holds which post, for admins and for leads in their own subtrees.

A path or @username typed by the caller is quoted back cut short (``shown``), and one
holding control characters is no path at all: it never reaches the database, which on
PostgreSQL refuses NUL.
"""

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.rendering import post_title
from models.access import Scope, scope_of
from models.directory import (
    coverage_by_child,
    coverage_by_level,
    holdings,
    log_lookup,
    members_by_username,
)
from models.org import Node
from models.posts import node_by_path, posts_of
from models.text import has_control_characters, shown


async def caller_scope(message: Message, session: AsyncSession, config: Config) -> Scope | None:
    """The caller's scope, or None after telling them they have none."""
    user = message.from_user
    scope = await scope_of(session, user.id, config.admins.telegram_ids) if user else None
    if scope is None or scope.is_empty:
        await message.answer(t("directory.no_scope"))
        return None
    return scope


async def visible_node(
    message: Message, session: AsyncSession, scope: Scope, path: str
) -> Node | None:
    node = None if has_control_characters(path) else await node_by_path(session, path)
    if node is None or not scope.sees(node):
        # The same answer for "no such node" and "not yours": a path outside one's scope
        # reveals nothing.
        await message.answer(t("directory.not_in_scope", path=shown(path)))
        return None
    return node


async def tree(
    message: Message, command: CommandObject, session: AsyncSession, config: Config
) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None:
        return
    path = (command.args or "").strip()
    if path:
        node = await visible_node(message, session, scope, path)
        if node is None:
            return
        roots: list[Node | None] = [node]
    elif scope.is_admin:
        roots = [None]
    else:
        roots = [await session.get(Node, node_id) for node_id, _ in sorted(scope.roots)]
    for root in roots:
        await message.answer(await render_tree(session, root))


async def render_tree(session: AsyncSession, node: Node | None) -> str:
    lines = [t("tree.title", path=node.path if node else t("tree.county"))]
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
    children = await coverage_by_child(session, node)
    if children:
        lines.append(t("tree.children"))
        lines.extend(
            t("tree.child", path=child.label, filled=child.filled, posts=child.posts)
            for child in children
        )
    return "\n".join(lines)


async def whois(
    message: Message, command: CommandObject, session: AsyncSession, config: Config
) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None:
        return
    target = (command.args or "").strip()
    if not target:
        await message.answer(t("whois.usage"))
        return
    actor = message.from_user.id if message.from_user else None
    if has_control_characters(target):
        await message.answer(t("directory.not_in_scope", path=shown(target)))
        return
    if target.startswith("@"):
        await whois_member(message, session, scope, target)
    else:
        node = await visible_node(message, session, scope, target)
        if node is None:
            return
        lines = [t("whois.node", path=node.path)]
        for holding in await holdings(session, node.id):
            title = post_title(node.level, holding.role)
            if holding.holder_name:
                lines.append(
                    t(
                        "whois.held",
                        title=title,
                        name=holding.holder_name,
                        phone=holding.holder_phone or "—",
                    )
                )
            else:
                lines.append(
                    t(
                        "whois.vacant",
                        title=title,
                        name=holding.roster_name or "—",
                        phone=holding.roster_phone or "—",
                    )
                )
        await message.answer("\n".join(lines))
    await log_lookup(session, actor, target)


async def whois_member(
    message: Message, session: AsyncSession, scope: Scope, username: str
) -> None:
    # A username may have passed between accounts: each member last seen with it is shown.
    sections = []
    for member in await members_by_username(session, username):
        visible = []
        for post in await posts_of(session, member.id):
            node = await session.get(Node, post.node_id)
            if node is not None and scope.sees(node):
                visible.append(post)
        if not visible and not scope.is_admin:
            continue
        lines = [t("whois.member", name=member.name, phone=member.phone or "—")]
        lines.extend(
            t("whois.member_post", title=post_title(post.level, post.role), path=post.path)
            for post in visible
        )
        sections.append("\n".join(lines))
    if not sections:
        await message.answer(t("whois.unknown_member", username=shown(username)))
        return
    await message.answer("\n\n".join(sections))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    router.message.register(tree, Command("tree"))
    router.message.register(whois, Command("whois"))
    return router
