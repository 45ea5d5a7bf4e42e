"""The "收到" button on every notice, Cancel on one scheduled for later, /notices, and
/notice N: who has acknowledged."""

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import Raw, t
from handlers.actions import NoticeAck, NoticeCancel, NoticeNudge, button
from handlers.directory import caller_scope
from handlers.filters import Matches, private_buttons
from handlers.rendering import answer_in_parts, plain_preview
from models.access import scope_of
from models.base import as_utc
from models.messages import Action, ActionKind
from models.notice_delivery import acknowledge, acknowledged_at
from models.notice_followup import Nudge, nudge
from models.notice_rollups import (
    missing,
    reading_roots,
    received_notices,
    recent_notices_for,
    rollup,
    totals,
)
from models.notices import Cancellation, cancel_notice
from models.org import Level

# --- acknowledgement --------------------------------------------------------------------


def county_time(moment: datetime, config: Config, pattern: str = "%m-%d %H:%M") -> str:
    return as_utc(moment).astimezone(ZoneInfo(config.i18n.timezone)).strftime(pattern)


async def acknowledged(
    callback: CallbackQuery, callback_data: NoticeAck, session: AsyncSession, config: Config
) -> None:
    notice_id, user_id = callback_data.notice_id, callback.from_user.id
    outcome = await acknowledge(session, notice_id, user_id)
    if outcome is None:
        await callback.answer(t("notice.not_a_recipient"), show_alert=True)
        return
    await callback.answer(t("notice.acked") if outcome else t("notice.already_acked"))
    at = await acknowledged_at(session, notice_id, user_id)
    if not isinstance(callback.message, Message) or at is None:
        return
    # The receipt stays on the message itself, not only in a toast that fades.
    label = t("notice.acked_button", time=county_time(at, config, "%H:%M"))
    current = callback.message.reply_markup
    if current is not None and current.inline_keyboard[0][0].text == label:
        return
    receipt = InlineKeyboardButton(text=label, callback_data=callback_data.pack())
    await callback.message.edit_reply_markup(
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[receipt]])
    )


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
    received = await received_notices(session, message.from_user.id)
    if not notices and not received:
        await message.answer(t("notice.none"))
        return
    lines = [t("notice.list_title")] if notices else []
    for notice, total, acked in notices:
        rate = f"{100 * acked // total}%" if total else "—"
        lines.append(
            t(
                "notice.list_entry",
                id=notice.id,
                when=county_time(notice.send_at, config),
                acked=acked,
                total=total,
                rate=rate,
                preview=plain_preview(notice.text) if notice.text else t("notice.media"),
            )
        )
    if received:
        lines.append(t("notice.received_title"))
    for entry in received:
        if entry.acked_at is not None:
            state = t("notice.received_acked", time=county_time(entry.acked_at, config))
        else:
            state = t(
                "notice.received_open" if entry.notice.wants_ack else "notice.received_no_ack"
            )
        lines.append(
            t(
                "notice.received_entry",
                id=entry.notice.id,
                when=county_time(entry.notice.dispatched_at or entry.notice.send_at, config),
                state=Raw(state),
                preview=plain_preview(entry.notice.text)
                if entry.notice.text
                else t("notice.media"),
            )
        )
    await answer_in_parts(message, "\n".join(lines))


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
                t("notice.missing_row_phone", name=name, phone=phone, path=path)
                for name, path, _role, phone in late
            )
        sections.append(("\n".join(lines), bool(late)))
    if not sections:
        await message.answer(t("notice.not_visible", id=notice_id))
        return
    nudge_markup = InlineKeyboardMarkup(
        inline_keyboard=[[button(Action(ActionKind.nudge_notice, notice_id))]]
    )
    for section, anyone_missing in sections:
        await answer_in_parts(message, section, nudge_markup if anyone_missing else None)


async def nudge_pressed(
    callback: CallbackQuery, callback_data: NoticeNudge, session: AsyncSession, config: Config
) -> None:
    scope = await scope_of(session, callback.from_user.id, config.admins.telegram_ids)
    if not scope.is_admin and not scope.roots:
        await callback.answer(t("notice.nudge_forbidden"), show_alert=True)
        return
    outcome, count = await nudge(session, callback_data.notice_id, callback.from_user.id, scope)
    if outcome is Nudge.already:
        await callback.answer(t("notice.nudge_already"), show_alert=True)
    elif outcome is Nudge.nobody:
        await callback.answer(t("notice.nudge_forbidden"), show_alert=True)
    else:
        await callback.answer(t("notice.nudged", count=count))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    # Notices reach groups without buttons: these are a member's own, in private chat.
    private = private_buttons(router, NoticeAck, NoticeCancel, NoticeNudge)
    private.callback_query.register(nudge_pressed, NoticeNudge.filter())
    private.callback_query.register(acknowledged, NoticeAck.filter())
    private.callback_query.register(cancel_pressed, NoticeCancel.filter())
    router.message.register(list_notices, Command("notices"))
    router.message.register(
        show_notice, Command("notice"), Matches(F.text.regexp(r"^/notice(@\w+)?\s+\d+\s*$"))
    )
    return router
