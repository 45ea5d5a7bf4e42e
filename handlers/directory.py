"""/tree, /whois and /mylead: who holds which post, for admins and for leads in their own
subtrees.

``/tree`` is tapped through: a node's children are buttons (a page at a time) and a button
leads back up, never above the caller's own scope; every press is checked against the
scope again, so a forged button for another node gets a refusal and no data. A path,
name or @username typed by the caller is quoted back cut short (``shown``), and one holding
control characters reaches no query: PostgreSQL refuses NUL.
"""

from contextlib import suppress

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.filters import Matches, private_buttons
from handlers.ids import RowId
from handlers.rendering import answer_in_parts, clip_html, post_title
from handlers.tree_view import TreeOpen, tree_view
from models.access import Scope, scope_of
from models.directory import Holding, holdings, log_lookup, members_by_username
from models.directory_search import above_member, search_roster
from models.org import Member, Node
from models.posts import node_by_path, posts_of
from models.text import has_control_characters, shown

# Matches offered as buttons at most; past this the caller is asked to type more.
WHOIS_MATCHES = 10


class WhoisOpen(CallbackData, prefix="whoisn"):
    node_id: RowId


class MyLeadOpen(CallbackData, prefix="mylead"):
    """The button under /me that answers as /mylead does."""


async def caller_scope(message: Message, session: AsyncSession, config: Config) -> Scope | None:
    """The caller's scope, or None after telling them they have none."""
    user = message.from_user
    scope = await scope_of(session, user.id, config.admins.telegram_ids) if user else None
    if scope is None or scope.is_empty:
        await message.answer(t("directory.no_scope"))
        return None
    return scope


async def find_visible_node(session: AsyncSession, scope: Scope, path: str) -> Node | None:
    node = None if has_control_characters(path) else await node_by_path(session, path)
    return node if node is not None and scope.sees(node) else None


async def visible_node(
    message: Message, session: AsyncSession, scope: Scope, path: str
) -> Node | None:
    """The node at ``path`` if the scope sees it, or None after saying so. The same answer
    for "no such node" and "not yours": a path outside one's scope reveals nothing."""
    node = await find_visible_node(session, scope, path)
    if node is None:
        await message.answer(t("directory.not_in_scope", path=shown(path)))
    return node


async def tree(
    message: Message, command: CommandObject, session: AsyncSession, config: Config
) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None:
        return
    path = (command.args or "").strip()
    node: Node | None = None
    if path:
        node = await visible_node(message, session, scope, path)
        if node is None:
            return
    text, markup = await tree_view(session, scope, node, 0)
    await message.answer(text, reply_markup=markup)


async def tree_pressed(
    callback: CallbackQuery, callback_data: TreeOpen, session: AsyncSession, config: Config
) -> None:
    scope = await scope_of(session, callback.from_user.id, config.admins.telegram_ids)
    node: Node | None = None
    if callback_data.node_id:
        node = await session.get(Node, callback_data.node_id)
    if scope.is_empty or (callback_data.node_id and (node is None or not scope.sees(node))):
        await callback.answer(t("directory.button_refused"), show_alert=True)
        return
    await callback.answer()
    text, markup = await tree_view(session, scope, node, callback_data.page)
    if isinstance(callback.message, Message):
        with suppress(TelegramBadRequest):  # pressed twice: "message is not modified"
            await callback.message.edit_text(text, reply_markup=markup)


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
        await message.answer(t("whois.nobody", query=shown(target)))
        return
    if target.startswith("@"):
        await whois_member(message, session, scope, target)
    elif node := await find_visible_node(session, scope, target):
        await message.answer(await node_holdings(session, node))
    else:
        await whois_search(message, session, scope, target)
    await log_lookup(session, actor, target)


async def whois_search(message: Message, session: AsyncSession, scope: Scope, query: str) -> None:
    found = await search_roster(session, scope, query, WHOIS_MATCHES)
    if not found.total:
        await message.answer(t("whois.nobody", query=shown(query)))
        return
    if found.total == 1:
        node = await session.get(Node, found.matches[0].node_id)
        if node is not None:
            await message.answer(await node_holdings(session, node))
            return
    buttons = InlineKeyboardBuilder()
    for match in found.matches:
        title = post_title(match.level, match.role)
        name = shown(match.name or t("whois.no_name"), 24)
        buttons.button(
            text=f"{name} · {title} · {shown(match.path, 40)}",
            callback_data=WhoisOpen(node_id=match.node_id),
        )
    buttons.adjust(1)
    key = "whois.matches" if found.total <= WHOIS_MATCHES else "whois.matches_more"
    await message.answer(
        t(key, query=shown(query), count=found.total, shown=len(found.matches)),
        reply_markup=buttons.as_markup(),
    )


async def whois_pressed(
    callback: CallbackQuery, callback_data: WhoisOpen, session: AsyncSession, config: Config
) -> None:
    scope = await scope_of(session, callback.from_user.id, config.admins.telegram_ids)
    node = await session.get(Node, callback_data.node_id)
    if node is None or not scope.sees(node):
        await callback.answer(t("directory.button_refused"), show_alert=True)
        return
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(await node_holdings(session, node))
    await log_lookup(session, callback.from_user.id, node.path)


def holding_line(level: str, holding: Holding) -> str:
    title = post_title(level, holding.role)
    if holding.holder_name:
        return t(
            "whois.held", title=title, name=holding.holder_name, phone=holding.holder_phone or "—"
        )
    return t(
        "whois.vacant",
        title=title,
        name=holding.roster_name or "—",
        phone=holding.roster_phone or "—",
    )


async def node_holdings(session: AsyncSession, node: Node) -> str:
    lines = [t("whois.node", path=node.path)]
    lines.extend(holding_line(node.level, holding) for holding in await holdings(session, node.id))
    return clip_html("\n".join(lines))


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
    await answer_in_parts(message, "\n\n".join(sections))


async def my_lead(message: Message, session: AsyncSession, member: Member | None) -> None:
    await answer_in_parts(message, await lead_text(session, member))
    await log_lookup(session, message.from_user.id if message.from_user else None, "/mylead")


async def my_lead_pressed(
    callback: CallbackQuery, session: AsyncSession, member: Member | None
) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        await answer_in_parts(callback.message, await lead_text(session, member))
    await log_lookup(session, callback.from_user.id, "/mylead")


async def lead_text(session: AsyncSession, member: Member | None) -> str:
    aboves = await above_member(session, member.id) if member else []
    if not aboves:
        return t("mylead.none")
    sections = [t("mylead.title")]
    for above in aboves:
        lines = [t("mylead.post", title=post_title(above.level, above.role), path=above.path)]
        if above.own_lead is not None:
            lines.append(holding_line(above.level, above.own_lead))
        if above.parent_path is None or above.parent_level is None:
            lines.append(t("mylead.command_centre"))
        else:
            lines.append(t("mylead.parent", path=above.parent_path))
            lines.extend(holding_line(above.parent_level, holding) for holding in above.parent)
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    router.message.register(tree, Command("tree"))
    router.message.register(whois, Command("whois"))
    router.message.register(my_lead, Command("mylead"))
    # Phones and names: buttons of private chats only.
    private = private_buttons(router, TreeOpen, WhoisOpen, MyLeadOpen)
    private.callback_query.register(tree_pressed, TreeOpen.filter())
    private.callback_query.register(whois_pressed, WhoisOpen.filter())
    private.callback_query.register(my_lead_pressed, MyLeadOpen.filter())
    return router
