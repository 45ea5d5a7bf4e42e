"""/report: a unit lead (or its officer; a lead above for a vacant unit) reports on each
household of the unit in the current round, in private chat.

/report → the unit's households with marks (done, missing, alert), paged → one household →
"no change since last report" | "nobody home" | "fill in" (``handlers.report_form``) →
saved, back to the list. "All remaining: no change" for the unit with one confirmation.
Every button names the round and the household or unit by id and is checked again: a
button of a closed round or of someone else's household is refused in words, never shown
data.
"""

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.forms import consequences, round_schedule
from bot.i18n import t
from handlers.filters import NOT_A_COMMAND, Matches
from handlers.report_common import refuse, reporter_of, sheet_view, show
from handlers.report_form import (
    Reporting,
    confirm_pressed,
    field_pressed,
    field_typed,
    saved_header,
    start_form,
    summary_typed,
)
from handlers.report_views import (
    FieldAnswer,
    FormConfirm,
    HouseholdAction,
    HouseholdPick,
    UnitAllSame,
    UnitPick,
    card_keyboard,
    card_text,
    confirm_all_keyboard,
    local_time,
    units_keyboard,
)
from models.base import utcnow
from models.forms import Form
from models.org import Member
from models.posts import node_by_path
from models.refusals import Refused
from models.report_saving import save_report
from models.reports import household_card, may_report, reportable_units, unchanged_preview
from models.rounds import ReportHow, current_round, form_by_version
from models.text import shown
from models.unit_saving import save_unit_unchanged


async def start_report(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    config: Config,
    state: FSMContext,
    member: Member | None,
    report_form: Form,
) -> None:
    if message.from_user is None:
        return
    await state.clear()
    reporter = await reporter_of(message.from_user.id, member, session, config)
    if reporter is None:
        await message.answer(t("directory.no_scope"))
        return
    schedule = round_schedule(config)
    report_round = await current_round(session, schedule, report_form)
    if report_round is None:
        opens = local_time(schedule.next_opening(utcnow()), schedule.timezone)
        await message.answer(t("reports.no_round", opens=opens))
        return
    path = (command.args or "").strip()
    if path:
        unit = await node_by_path(session, path)
        if unit is None or not await may_report(session, reporter.scope, unit):
            await message.answer(t("reports.unit_not_yours", path=shown(path)))
            return
        unit_ids = [unit.id]
    else:
        units, more = await reportable_units(session, reporter.scope)
        if not units:
            await message.answer(t("reports.no_units"))
            return
        if len(units) > 1 or more:
            text = t("reports.pick_unit") + ("\n" + t("reports.more_units") if more else "")
            await message.answer(text, reply_markup=units_keyboard(report_round.id, units))
            return
        unit_ids = [units[0].node_id]
    text, markup = await sheet_view(session, reporter, report_round.id, unit_ids[0], config)
    await message.answer(text, reply_markup=markup)


async def unit_picked(
    callback: CallbackQuery,
    callback_data: UnitPick,
    session: AsyncSession,
    config: Config,
    state: FSMContext,
    member: Member | None,
    bot: Bot,
) -> None:
    reporter = await reporter_of(callback.from_user.id, member, session, config)
    if reporter is None:
        await callback.answer(t("reports.not_yours"), show_alert=True)
        return
    try:
        view = await sheet_view(
            session,
            reporter,
            callback_data.round_id,
            callback_data.unit_id,
            config,
            page=callback_data.page,
        )
    except Refused as refused:
        await refuse(callback, refused)
        return
    await _leave_form(state)
    await show(callback, bot, *view)
    await callback.answer()


async def household_picked(
    callback: CallbackQuery,
    callback_data: HouseholdPick,
    session: AsyncSession,
    config: Config,
    state: FSMContext,
    member: Member | None,
    bot: Bot,
) -> None:
    reporter = await reporter_of(callback.from_user.id, member, session, config)
    if reporter is None:
        await callback.answer(t("reports.not_yours"), show_alert=True)
        return
    try:
        card = await household_card(
            session, reporter, callback_data.round_id, callback_data.household_id
        )
    except Refused as refused:
        await refuse(callback, refused)
        return
    form = await form_by_version(session, card.form_version)
    await _leave_form(state)
    # The view's audit row, in one commit with the update's claim, before the card shows.
    await session.commit()
    await show(callback, bot, card_text(card, form), card_keyboard(card))
    await callback.answer()


async def household_acted(
    callback: CallbackQuery,
    callback_data: HouseholdAction,
    session: AsyncSession,
    config: Config,
    state: FSMContext,
    member: Member | None,
    bot: Bot,
) -> None:
    reporter = await reporter_of(callback.from_user.id, member, session, config)
    if reporter is None:
        await callback.answer(t("reports.not_yours"), show_alert=True)
        return
    round_id, household_id = callback_data.round_id, callback_data.household_id
    try:
        if callback_data.action == "fill":
            card = await household_card(session, reporter, round_id, household_id)
            if card.revision != callback_data.revision:
                raise Refused("reports.already_saved", room=card.room)
            form = await form_by_version(session, card.form_version)
            # The view's audit row lands with the form's first state, committed at once.
            await start_form(callback, bot, state, form, card)
            await callback.answer()
            return
        how = ReportHow.no_change if callback_data.action == "same" else ReportHow.nobody_home
        saved = await save_report(
            session,
            reporter,
            consequences(config),
            round_id=round_id,
            household_id=household_id,
            revision=callback_data.revision,
            how=how,
        )
    except Refused as refused:
        await refuse(callback, refused)
        return
    await _leave_form(state)
    view = await sheet_view(session, reporter, round_id, saved.unit_id, config, saved_header(saved))
    await show(callback, bot, *view)
    await callback.answer(t("reports.saved_toast"))


async def all_same_pressed(
    callback: CallbackQuery,
    callback_data: UnitAllSame,
    session: AsyncSession,
    config: Config,
    state: FSMContext,
    member: Member | None,
    bot: Bot,
) -> None:
    reporter = await reporter_of(callback.from_user.id, member, session, config)
    if reporter is None:
        await callback.answer(t("reports.not_yours"), show_alert=True)
        return
    round_id, unit_id = callback_data.round_id, callback_data.unit_id
    try:
        if not callback_data.confirmed:
            preview = await unchanged_preview(session, reporter, round_id, unit_id)
            lines = [
                t("reports.all_same_confirm", path=preview.sheet.unit_path, count=preview.copyable)
            ]
            if preview.without_last:
                lines.append(
                    t(
                        "reports.all_same_without_last",
                        count=len(preview.without_last),
                        rooms="、".join(preview.without_last),
                    )
                )
            await show(callback, bot, "\n".join(lines), confirm_all_keyboard(round_id, unit_id))
            await callback.answer()
            return
        outcome = await save_unit_unchanged(
            session, reporter, consequences(config), round_id=round_id, unit_id=unit_id
        )
    except Refused as refused:
        await refuse(callback, refused)
        return
    await _leave_form(state)
    lines = [
        t(
            "reports.all_same_saved",
            count=outcome.saved,
            done=outcome.progress.done,
            total=outcome.progress.total,
        )
    ]
    if outcome.alert_ids:
        lines.append(t("reports.alerts_raised"))
    if outcome.without_last:
        lines.append(
            t(
                "reports.all_same_without_last",
                count=len(outcome.without_last),
                rooms="、".join(outcome.without_last),
            )
        )
    view = await sheet_view(session, reporter, round_id, unit_id, config, "\n".join(lines))
    await show(callback, bot, *view)
    await callback.answer(t("reports.saved_toast"))


async def _leave_form(state: FSMContext) -> None:
    """Going back to the list or to a household ends a form left half-filled."""
    if await state.get_state() is not None:
        await state.clear()


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    # Household data is shown by editing the pressed message: never one in a group chat.
    router.callback_query.filter(Matches(F.message.chat.type == "private"))
    router.message.register(start_report, Command("report"))
    # The most pressed first: each button kind tried parses the callback data again.
    router.callback_query.register(household_picked, HouseholdPick.filter())
    router.callback_query.register(household_acted, HouseholdAction.filter())
    router.callback_query.register(field_pressed, FieldAnswer.filter())
    router.callback_query.register(all_same_pressed, UnitAllSame.filter())
    router.callback_query.register(confirm_pressed, FormConfirm.filter())
    router.callback_query.register(unit_picked, UnitPick.filter())
    router.message.register(field_typed, StateFilter(Reporting.field), NOT_A_COMMAND)
    router.message.register(summary_typed, StateFilter(Reporting.confirm), NOT_A_COMMAND)
    return router
