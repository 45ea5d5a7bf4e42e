"""/export [PATH] in private chat: the current round's reports, needs and post coverage of
one's subtrees (the county for the command centre) as an XLSX document. Audited."""

import asyncio

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import I18n
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.directory import caller_scope, visible_node
from handlers.filters import Matches
from handlers.rendering import clip_html
from models.exports import export_round, export_sheets
from models.org import Node
from models.round_status import latest_round
from models.spreadsheets import workbook_bytes

IN_GROUP = Matches(F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP}))
IN_PRIVATE = Matches(F.chat.type == ChatType.PRIVATE)


async def export_command(
    message: Message, command: CommandObject, session: AsyncSession, config: Config
) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None:
        return
    path = (command.args or "").strip()
    nodes: list[Node] | None
    if path:
        node = await visible_node(message, session, scope, path)
        if node is None:
            return
        nodes = [node]
    elif scope.is_admin:
        nodes = None
    else:
        root_ids = sorted(node_id for node_id, _level in scope.roots)
        nodes = list(await session.scalars(select(Node).where(Node.id.in_(root_ids))))
    report_round = await latest_round(session)
    if report_round is None:
        await message.answer(t("status.no_round"))
        return
    i18n = I18n.get_current(no_error=False)
    locale = i18n.current_locale
    export = await export_round(
        session,
        report_round,
        nodes,
        locale,
        message.from_user.id if message.from_user else None,
        via="chat",
    )
    sheets = export_sheets(export, i18n.gettext, config.reports.timezone or config.i18n.timezone)
    # openpyxl is slow on a county's 35,000 rows: off the event loop.
    content = await asyncio.to_thread(workbook_bytes, sheets)
    await message.answer_document(
        BufferedInputFile(content, filename=f"wuji-{export.round_date}.xlsx"),
        # Telegram takes 1,024 characters of caption; a member of many posts has many paths.
        caption=clip_html(
            t(
                "export.caption",
                date=export.round_date,
                scope=", ".join(export.paths) or t("status.county"),
                reports=len(export.reports.rows),
                needs=len(export.needs.rows),
            ),
            1024,
        ),
    )


async def private_only(message: Message) -> None:
    await message.answer(t("status.private_only"))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.register(export_command, IN_PRIVATE, Command("export"))
    router.message.register(private_only, IN_GROUP, Command("export"))
    return router
