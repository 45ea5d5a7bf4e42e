"""Commands about people: /invite (the command centre, and leads within their subtrees),
and the command centre's /revoke, /assign, /audit."""

from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Annotated
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.deep_linking import create_deep_link
from aiogram.utils.i18n import I18n
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import LOCALES, Raw, t
from handlers.contact import confirm_keyboard
from handlers.filters import IsAdmin, Matches, private_buttons
from handlers.ids import ROW_ID_MAX, RowId
from handlers.rendering import answer_in_parts, describe_post, post_title
from models.access import scope_of
from models.assignments import assign_post, revoke_post_by_id, revoke_preview
from models.directory import AuditView, readable_audit
from models.invite_batch import InviteRow, invite_to_post, invite_vacant_posts
from models.invites import withdraw_earlier_invites, withdraw_tokens
from models.messages import PostRef
from models.org import LEVELS, Node, Role
from models.posts import node_by_path
from models.refusals import Refused
from models.seen_users import person_to_appoint
from models.spreadsheets import xlsx_bytes
from models.text import shown


async def invite(
    message: Message, command: CommandObject, session: AsyncSession, bot: Bot, config: Config
) -> None:
    """The command centre, or a lead or officer for the vacant posts of its own subtree."""
    words = (command.args or "").split()
    named = named_role(words[-1]) if len(words) > 1 else None
    path = " ".join(words[:-1] if named else words)
    if not path:
        await message.answer(t("invite.usage"))
        return
    node = await node_by_path(session, path)
    if node is None:
        await message.answer(t("path.unknown", path=shown(path)))
        return
    if named is not None and not named.fits(node):
        await message.answer(t("invite.no_post", path=node.path, role=named.word))
        return
    actor = message.from_user.id if message.from_user else 0
    scope = await scope_of(session, actor, config.admins.telegram_ids)
    username = (await bot.me()).username or ""
    ttl = timedelta(days=config.invites.ttl_days)

    def link_for(token: str) -> str:
        return create_deep_link(username, "start", token)

    try:
        if named:
            row = await invite_to_post(session, node, named.role, ttl, actor, link_for, scope=scope)
            await message.answer(invite_text(row))
            return
        rows = await invite_vacant_posts(
            session, node, ttl, actor, link_for, scope=scope, withdraw_earlier=False
        )
    except Refused as refused:
        await message.answer(refusal_text(refused, node))
        return
    if not rows:
        await message.answer(t("invite.none_vacant", path=node.path))
        return
    tokens = {row.post_id: row.token for row in rows}
    try:
        await message.answer_document(
            BufferedInputFile(invite_sheet_in_readers_words(rows), filename="invites.xlsx"),
            caption=t("invite.sheet", count=len(rows), path=node.path),
        )
    except TelegramAPIError:
        # The sheet never arrived: its links go, and those handed out before keep working.
        await withdraw_tokens(session, tokens)
        await message.answer(t("invite.sheet_failed"))
        return
    await withdraw_earlier_invites(session, tokens, actor)


def invite_sheet_in_readers_words(rows: list[InviteRow]) -> bytes:
    """The invite sheet as its reader reads it: headings and every post's title in the
    reader's language (单元长, not "unit lead"), beside whom the roster names and the link."""
    columns = ("path", "post", "name", "phone", "link")
    return xlsx_bytes(
        tuple(t(f"invite.sheet_{column}") for column in columns),
        (
            (row.path, post_title(row.level, row.role), row.roster_name, row.roster_phone, row.link)
            for row in rows
        ),
        title=t("invite.sheet_title"),
    )


def invite_text(row: InviteRow) -> str:
    """One post's link, with whom the roster names for it: the reader (the command centre,
    or a lead whose subtree holds the post) checks the link goes to that person."""
    if row.roster_name or row.roster_phone:
        roster = t("invite.roster", name=row.roster_name or "—", phone=row.roster_phone or "—")
    else:
        roster = t("invite.roster_none")
    return t(
        "invite.link",
        path=row.path,
        role=post_title(row.level, row.role),
        link=row.link,
        roster=Raw(roster),
    )


def refusal_text(refused: Refused, node: Node | None = None) -> str:
    """The refusal's text, the post's role in the reader's words (片区长, unit lead) rather
    than the key the domain names it by."""
    params: dict[str, object] = {
        name: describe_post(value) if isinstance(value, PostRef) else value
        for name, value in refused.params.items()
    }
    role = params.get("role")
    if node is not None and isinstance(role, str) and role in Role.__members__:
        params["role"] = post_title(node.level, role)
    return t(refused.key, **params)


@dataclass(frozen=True)
class NamedRole:
    """A role as typed: ``lead`` / ``officer``, or a post's title in either language
    (单元长, 社会信息员), which also names its level."""

    word: str
    role: Role
    level: str | None = None

    def fits(self, node: Node) -> bool:
        return self.level is None or self.level == node.level


def named_role(word: str) -> NamedRole | None:
    if word in Role.__members__:
        return NamedRole(word, Role(word))
    catalogs = I18n.get_current(no_error=False)
    for locale in LOCALES:
        for level in LEVELS:
            for role in Role:
                if catalogs.gettext(f"post.{level}.{role}", locale=locale) == word:
                    return NamedRole(word, role, level)
    return None


def parse_path_and_role(args: str | None) -> tuple[str, NamedRole | None, list[str]]:
    """``PATH role [extra…]`` where PATH may itself hold spaces."""
    words = (args or "").split()
    for index, word in enumerate(words):
        named = named_role(word)
        if named is not None:
            return " ".join(words[:index]), named, words[index + 1 :]
    return " ".join(words), None, []


ADMIN_COMMANDS = Command("revoke", "assign", "audit")


async def admin_command_refused(message: Message) -> None:
    await message.answer(t("admin.only"))


class RevokeStep(CallbackData, prefix="revoke"):
    """The command centre's answer to "relieve X of this post?"; ``holder_id`` is the
    member it was shown (0: the post was vacant), so that a later change is not undone."""

    post_id: RowId
    holder_id: Annotated[int, Field(ge=0, le=ROW_ID_MAX)]
    confirm: bool


async def revoke(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
) -> None:
    """Asks first: relieving someone of a post takes effect at once and tells them."""
    path, named, _ = parse_path_and_role(command.args)
    node = await node_by_path(session, path) if path else None
    if named is None or node is None:
        await message.answer(
            t("revoke.usage") if named is None else t("path.unknown", path=shown(path))
        )
        return
    if not named.fits(node):
        await message.answer(t("invite.no_post", path=node.path, role=named.word))
        return
    try:
        preview = await revoke_preview(session, node, named.role)
    except Refused as refused:
        await message.answer(refusal_text(refused, node))
        return
    post_text = describe_post(preview.post)
    holder = preview.former_holder
    question = (
        t("revoke.ask", name=holder.name, post=post_text)
        if holder is not None
        else t("revoke.ask_vacant", post=post_text)
    )
    step = partial(RevokeStep, post_id=preview.post.post_id, holder_id=holder.id if holder else 0)
    await message.answer(
        question,
        reply_markup=confirm_keyboard(
            step(confirm=True), step(confirm=False), t("revoke.yes") if holder else None
        ),
    )


async def revoke_decided(
    callback: CallbackQuery, callback_data: RevokeStep, session: AsyncSession
) -> None:
    await remove_buttons(callback)
    if not callback_data.confirm:
        await callback.answer()
        await reply(callback, t("revoke.cancelled"))
        return
    try:
        change = await revoke_post_by_id(
            session,
            callback_data.post_id,
            callback.from_user.id,
            expected_holder_id=callback_data.holder_id or None,
        )
    except Refused as refused:
        text = refusal_text(refused)
        await callback.answer(text, show_alert=True)
        await reply(callback, text)
        return
    await callback.answer()
    post_text = describe_post(change.post)
    if change.former_holder is None:
        await reply(callback, t("revoke.was_vacant", post=post_text))
        return
    await reply(callback, t("revoke.done", post=post_text, name=change.former_holder.name))


async def admin_button_refused(callback: CallbackQuery) -> None:
    await callback.answer(t("admin.only"), show_alert=True)


async def remove_buttons(callback: CallbackQuery) -> None:
    """A question answered (or pressed again later): its buttons go."""
    if isinstance(callback.message, Message) and callback.message.reply_markup is not None:
        with suppress(TelegramBadRequest):
            await callback.message.edit_reply_markup(reply_markup=None)


async def reply(callback: CallbackQuery, text: str) -> None:
    if isinstance(callback.message, Message):
        await callback.message.answer(text)


async def assign(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
) -> None:
    path, named, rest = parse_path_and_role(command.args)
    node = await node_by_path(session, path) if path else None
    if named is None or not rest:
        await message.answer(t("assign.usage"))
        return
    if node is None:
        await message.answer(t("path.unknown", path=shown(path)))
        return
    if not named.fits(node):
        await message.answer(t("invite.no_post", path=node.path, role=named.word))
        return
    who = rest[0]
    try:
        member = await person_to_appoint(session, who)
    except Refused as refused:
        await message.answer(t(refused.key, **refused.params))
        return
    if member is None:
        await message.answer(t("assign.unknown_member", who=who))
        return
    actor = message.from_user.id if message.from_user else 0
    try:
        change = await assign_post(session, node, named.role, member, actor)
    except Refused as refused:
        await message.answer(refusal_text(refused, node))
        return
    post_text = describe_post(change.post)
    await message.answer(t("assign.done", post=post_text, name=member.name))


async def audit(
    message: Message, command: CommandObject, session: AsyncSession, config: Config
) -> None:
    arg = (command.args or "").strip()
    if arg and not arg.isdigit():
        await message.answer(t("audit.usage"))
        return
    limit = min(int(arg or 20), 100)
    entries = await readable_audit(session, limit)
    if not entries:
        await message.answer(t("audit.empty"))
        return
    zone = ZoneInfo(config.i18n.timezone)
    lines = [t("audit.title", count=len(entries))]
    lines.extend(audit_row(entry, zone) for entry in entries)
    await answer_in_parts(message, "\n".join(lines))


def audit_row(entry: AuditView, zone: ZoneInfo) -> str:
    label_key = f"audit.action.{entry.action}"
    label = t(label_key)
    detail = " ".join(f"{key}={value}" for key, value in entry.other.items())
    return t(
        "audit.row",
        at=entry.at.astimezone(zone).strftime("%m-%d %H:%M"),
        actor=entry.actor,
        # An event recorded by a newer feature than the catalog shows by its own name.
        action=entry.action if label == label_key else label,
        post=Raw(" · " + str(describe_post(entry.post))) if entry.post else "",
        member=f" · {entry.member}" if entry.member else "",
        detail=f" · {detail}" if detail else "",
    )


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    router.message.register(invite, Command("invite"))
    router.message.register(admin_command_refused, ADMIN_COMMANDS, ~IsAdmin())
    router.callback_query.register(admin_button_refused, RevokeStep.filter(), ~IsAdmin())
    # Everything past here is the command centre's alone, whatever is registered later.
    admin = Router(name=f"{__name__}.admin")
    admin.message.filter(Matches(F.chat.type == "private"), IsAdmin())
    admin.callback_query.filter(IsAdmin())
    admin.message.register(revoke, Command("revoke"))
    private = private_buttons(admin, RevokeStep)
    private.callback_query.register(revoke_decided, RevokeStep.filter())
    admin.message.register(assign, Command("assign"))
    admin.message.register(audit, Command("audit"))
    router.include_router(admin)
    return router
