"""Filling in one household's form: a step per field with buttons (or a typed number or
text), a summary, then save or cancel.

The conversation lives in the FSM storage (the database, or Redis), so it survives a
restart. Its buttons carry a token of the conversation and the step they answer: a button
of another household's conversation, or of a step already answered, is refused rather than
taken for an answer here. Nothing is saved until the summary is confirmed, and the domain
checks the whole answer set again then.
"""

import secrets
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.forms import consequences
from bot.i18n import t
from handlers.report_common import refuse, reporter_of, sheet_view, show
from handlers.report_views import (
    FieldAnswer,
    FormConfirm,
    step_keyboard,
    step_text,
    summary_keyboard,
    summary_text,
)
from models.base import utcnow
from models.forms import Answer, FieldKind, Form
from models.org import Member
from models.refusals import Refused
from models.report_saving import Saved, save_report
from models.reports import HouseholdCard, Reporter
from models.rounds import ReportHow, form_by_version

# Conversation tokens fit PostgreSQL's and callback data's integers alike.
TOKEN_LIMIT = 2**31 - 1


class Reporting(StatesGroup):
    field = State()
    confirm = State()


def prefill_of(form: Form, card: HouseholdCard) -> dict[str, Answer]:
    """What the steps offer to keep: this round's answers when correcting, else the last
    report's, with the household's attributes as they stand."""
    if card.answers is not None:
        return {key: value for key, value in card.answers.items() if value is not None}
    prefill = form.copied(card.last_answers or {})
    for field in form.household_fields():
        value = card.attributes.get(field.id)
        if value is not None and field.accepts(value):
            prefill[field.id] = list(value) if isinstance(value, list) else value
    return prefill


async def start_form(
    callback: CallbackQuery, bot: Bot, state: FSMContext, form: Form, card: HouseholdCard
) -> None:
    first = form.next_step(-1, {})
    assert first is not None  # a form has at least one field, and the first has no condition
    data: dict[str, Any] = {
        "token": secrets.randbelow(TOKEN_LIMIT) + 1,
        "form_version": form.version,
        "round_id": card.round_id,
        "household_id": card.household_id,
        "unit_id": card.unit_id,
        "unit_path": card.unit_path,
        "room": card.room,
        "revision": card.revision,
        "started_at": utcnow().isoformat(),
        "prefill": prefill_of(form, card),
        "answers": {},
        "step": first,
    }
    _enter(form, data)
    await state.set_state(Reporting.field)
    await state.set_data(data)
    await show(callback, bot, *_step(form, data))


def _enter(form: Form, data: dict[str, Any]) -> None:
    """A multi-choice step starts from what the household had."""
    field = form.fields[data["step"]]
    if field.kind is FieldKind.multi and field.id not in data["answers"]:
        previous = data["prefill"].get(field.id)
        data["answers"][field.id] = list(previous) if field.accepts(previous) else []


def _step(
    form: Form, data: dict[str, Any], problem: str | None = None
) -> tuple[str, InlineKeyboardMarkup | None]:
    step = data["step"]
    return (
        step_text(form, step, data["room"], problem),
        step_keyboard(form, step, data["token"], data["answers"], data["prefill"]),
    )


def _summary(
    form: Form, data: dict[str, Any], problem: str | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    text = summary_text(form, data["unit_path"], data["room"], data["answers"])
    return (f"{problem}\n{text}" if problem else text), summary_keyboard(data["token"])


async def _advance(
    state: FSMContext, form: Form, data: dict[str, Any], value: Answer | None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Record the answer to the current step and move on: the next step asked, or the
    summary. Returns what to show."""
    field = form.fields[data["step"]]
    if value is None:
        data["answers"].pop(field.id, None)
    else:
        data["answers"][field.id] = value
    following = form.next_step(data["step"], data["answers"])
    if following is None:
        data["step"] = -1
        await state.set_state(Reporting.confirm)
        await state.set_data(data)
        return _summary(form, data)
    data["step"] = following
    _enter(form, data)
    await state.set_data(data)
    return _step(form, data)


# --- buttons ------------------------------------------------------------------------------


async def field_pressed(
    callback: CallbackQuery,
    callback_data: FieldAnswer,
    state: FSMContext,
    session: AsyncSession,
    bot: Bot,
) -> None:
    data = await state.get_data()
    current = await state.get_state() == Reporting.field.state
    if (
        not current
        or data.get("token") != callback_data.token
        or data.get("step") != callback_data.step
    ):
        await callback.answer(t("reports.stale_button"), show_alert=True)
        return
    form = await form_by_version(session, data["form_version"])
    field = form.fields[data["step"]]
    op, index = callback_data.op, callback_data.value
    value: Answer | None
    if op == "toggle" and field.kind is FieldKind.multi and 0 <= index < len(field.choices):
        chosen: list[str] = data["answers"].get(field.id, [])
        choice = field.choices[index].id
        data["answers"][field.id] = [
            item.id for item in field.choices if (item.id in chosen) != (item.id == choice)
        ]
        await state.set_data(data)
        await show(callback, bot, *_step(form, data))
        await callback.answer()
        return
    if op == "set" and field.kind is FieldKind.integer and field.accepts(index):
        value = index
    elif op == "set" and field.kind is FieldKind.single and 0 <= index < len(field.choices):
        value = field.choices[index].id
    elif op == "done" and field.kind is FieldKind.multi:
        value = list(data["answers"].get(field.id, []))
    elif op == "skip" and field.optional:
        value = None
    elif op == "keep" and field.accepts(data["prefill"].get(field.id)):
        value = data["prefill"][field.id]
    else:
        await callback.answer(t("reports.stale_button"), show_alert=True)
        return
    await show(callback, bot, *await _advance(state, form, data, value))
    await callback.answer()


async def confirm_pressed(
    callback: CallbackQuery,
    callback_data: FormConfirm,
    state: FSMContext,
    session: AsyncSession,
    config: Config,
    member: Member | None,
    bot: Bot,
) -> None:
    data = await state.get_data()
    current = await state.get_state() == Reporting.confirm.state
    if not current or data.get("token") != callback_data.token:
        await callback.answer(t("reports.stale_button"), show_alert=True)
        return
    reporter = await reporter_of(callback.from_user.id, member, session, config)
    if reporter is None:
        await state.clear()
        await callback.answer(t("reports.not_yours"), show_alert=True)
        return
    if not callback_data.save:
        await state.clear()
        header = t("reports.cancelled", room=data["room"])
        await _back_to_sheet(callback, bot, session, config, reporter, data, header)
        await callback.answer()
        return
    try:
        saved = await save_report(
            session,
            reporter,
            consequences(config),
            round_id=data["round_id"],
            household_id=data["household_id"],
            revision=data["revision"],
            how=ReportHow.form,
            answers=data["answers"],
            started_at=datetime.fromisoformat(data["started_at"]),
        )
    except Refused as refused:
        await state.clear()
        await refuse(callback, refused)
        return
    # Saved and committed: only now does the bot say so.
    await state.clear()
    await _back_to_sheet(callback, bot, session, config, reporter, data, saved_header(saved))
    await callback.answer(t("reports.saved_toast"))


async def _back_to_sheet(
    callback: CallbackQuery,
    bot: Bot,
    session: AsyncSession,
    config: Config,
    reporter: Reporter,
    data: dict[str, Any],
    header: str,
) -> None:
    try:
        view = await sheet_view(
            session, reporter, data["round_id"], data["unit_id"], config, header
        )
    except Refused as refused:
        await bot.send_message(callback.from_user.id, t(refused.key, **refused.params))
        return
    await show(callback, bot, *view)


def saved_header(saved: Saved) -> str:
    lines = [
        t(
            "reports.saved",
            room=saved.room,
            how=t(f"reports.how.{saved.how.value}"),
            done=saved.progress.done,
            total=saved.progress.total,
        )
    ]
    if saved.alert_ids:
        lines.append(t("reports.alerts_raised"))
    if saved.need_ids:
        lines.append(t("reports.needs_opened", count=len(saved.need_ids)))
    if saved.flagged:
        lines.append(t("reports.flagged"))
    return "\n".join(lines)


# --- typed input --------------------------------------------------------------------------


async def field_typed(message: Message, state: FSMContext, session: AsyncSession) -> None:
    data = await state.get_data()
    form = await form_by_version(session, data["form_version"])
    field = form.fields[data["step"]]
    text = message.text
    if field.kind in (FieldKind.single, FieldKind.multi) or text is None:
        problem = t("reports.use_buttons") if text is not None else t("reports.type_please")
        text_shown, markup = _step(form, data, problem)
        await message.answer(text_shown, reply_markup=markup)
        return
    try:
        value: Answer = (
            field.parse_number(text) if field.kind is FieldKind.integer else field.parse_text(text)
        )
    except Refused as refused:
        text_shown, markup = _step(form, data, t(refused.key, **refused.params))
        await message.answer(text_shown, reply_markup=markup)
        return
    text_shown, markup = await _advance(state, form, data, value)
    await message.answer(text_shown, reply_markup=markup)


async def summary_typed(message: Message, state: FSMContext, session: AsyncSession) -> None:
    data = await state.get_data()
    form = await form_by_version(session, data["form_version"])
    text_shown, markup = _summary(form, data, t("reports.use_buttons"))
    await message.answer(text_shown, reply_markup=markup)
