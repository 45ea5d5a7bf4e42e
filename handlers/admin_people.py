"""Command-centre commands about people: /invite."""

from datetime import timedelta

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.deep_linking import create_deep_link
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from bot.invite_sheet import invite_sheet
from handlers.filters import IsAdmin
from models.invite_batch import InviteRefused, invite_to_post, invite_vacant_posts
from models.org import Role
from models.posts import node_by_path

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")


@router.message(Command("invite"), ~IsAdmin())
async def invite_refused(message: Message) -> None:
    await message.answer(t("admin.only"))


@router.message(Command("invite"))
async def invite(
    message: Message, command: CommandObject, session: AsyncSession, bot: Bot, config: Config
) -> None:
    words = (command.args or "").split()
    role_word = words[-1] if len(words) > 1 and words[-1] in {"lead", "officer"} else None
    path = " ".join(words[:-1] if role_word else words)
    if not path:
        await message.answer(t("invite.usage"))
        return
    node = await node_by_path(session, path)
    if node is None:
        await message.answer(t("path.unknown", path=path))
        return
    username = (await bot.me()).username or ""
    ttl = timedelta(days=config.invites.ttl_days)
    actor = message.from_user.id if message.from_user else None

    def link_for(token: str) -> str:
        return create_deep_link(username, "start", token)

    if role_word:
        try:
            row = await invite_to_post(session, node, Role(role_word), ttl, actor, link_for)
        except InviteRefused as refused:
            await message.answer(t(refused.key, **refused.params))
            return
        await message.answer(t("invite.link", path=row.path, role=row.role, link=row.link))
        return
    rows = await invite_vacant_posts(session, node, ttl, actor, link_for)
    if not rows:
        await message.answer(t("invite.none_vacant", path=node.path))
        return
    await message.answer_document(
        BufferedInputFile(invite_sheet(rows), filename="invites.xlsx"),
        caption=t("invite.sheet", count=len(rows), path=node.path),
    )
