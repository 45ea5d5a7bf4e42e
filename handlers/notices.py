"""The "收到" button on every notice, Cancel on one scheduled for later, /notices, and
/notice N: who has acknowledged."""

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.actions import NoticeAck, NoticeCancel
from handlers.directory import caller_scope
from handlers.filters import private_buttons
from handlers.rendering import clip_html, plain_preview
from models.access import scope_of
from models.base import as_utc
from models.notice_rollups import missing, reading_roots, recent_notices_for, rollup, totals
from models.notices import Cancellation, acknowledge, cancel_notice
from models.org import Level

# --- acknowledgement --------------------------------------------------------------------


async def acknowledged(
    callback: CallbackQuery, callback_data: NoticeAck, session: AsyncSession
) -> None:
    outcome = await acknowledge(session, callback_data.notice_id, callback.from_user.id)
    if outcome is None:
        await callback.answer(t("notice.not_a_recipient"), show_alert=True)
        return
    await callback.answer(t("notice.acked") if outcome else t("notice.already_acked"))
    if isinstance(callback.message, Message) and callback.message.reply_markup is not None:
        await callback.message.edit_reply_markup(reply_markup=None)


async def cancel_pressed(
    callback: CallbackQuery, callback_data: NoticeCancel, session: AsyncSession, config: Config
) -> None:
    user = callback.from_user
    scope = await scope_of(session, user.id, config.admins.telegram_ids)
    outcome = await cancel_notice(session, callback_data.notice_id, user.id, scope)
    if outcome is not Cancellation.cancelled:
        await callback.answer(
            t(f"notice.cancel_{outcome.value}", id=callback_data.notice_id), show_alert=True
        )
        return
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(
            t("notice.cancel_done", id=callback_data.notice_id), reply_markup=None
        )


# --- reading back -------------------------------------------------------------------------


async def list_notices(message: Message, session: AsyncSession, config: Config) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None or message.from_user is None:
        return
    notices = await recent_notices_for(session, scope, message.from_user.id)
    if not notices:
        await message.answer(t("notice.none"))
        return
    lines = [t("notice.list_title")]
    for notice, total, acked in notices:
        rate = f"{100 * acked // total}%" if total else "—"
        lines.append(
            t(
                "notice.list_entry",
                id=notice.id,
                when=as_utc(notice.send_at).strftime("%m-%d %H:%M UTC"),
                acked=acked,
                total=total,
                rate=rate,
                preview=plain_preview(notice.text) if notice.text else t("notice.media"),
            )
        )
    await message.answer("\n".join(lines))


async def show_notice(
    message: Message, command: CommandObject, session: AsyncSession, config: Config
) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None:
        return
    notice_id = int((command.args or "0").strip())
    sections = []
    for root in await reading_roots(session, scope):
        overall = await totals(session, notice_id, root)
        if overall.recipients == 0:
            continue
        lines = [
            t(
                "notice.rollup_title",
                id=notice_id,
                scope=root.path if root else t("tree.county"),
                acked=overall.acked,
                total=overall.recipients,
            )
        ]
        for level in (Level.grid, Level.building):
            if root is not None and Level(root.level).depth > level.depth:
                continue
            rows = await rollup(session, notice_id, level, root)
            if rows:
                lines.append(t(f"notice.rollup_{level.value}"))
                lines.extend(
                    t("notice.rollup_row", path=row.label, acked=row.acked, total=row.recipients)
                    for row in rows[:25]
                )
        late = await missing(session, notice_id, root)
        if late:
            lines.append(t("notice.missing", count=overall.recipients - overall.acked))
            lines.extend(
                t("notice.missing_row", name=name, path=path) for name, path, _role in late
            )
        sections.append("\n".join(lines))
    if not sections:
        await message.answer(t("notice.not_visible", id=notice_id))
        return
    for section in sections:
        await message.answer(clip_html(section))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    # Notices reach groups without buttons: these are a member's own, in private chat.
    private = private_buttons(router, NoticeAck, NoticeCancel)
    private.callback_query.register(acknowledged, NoticeAck.filter())
    private.callback_query.register(cancel_pressed, NoticeCancel.filter())
    router.message.register(list_notices, Command("notices"))
    router.message.register(
        show_notice, Command("notice"), F.text.regexp(r"^/notice(@\w+)?\s+\d+\s*$")
    )
    return router
