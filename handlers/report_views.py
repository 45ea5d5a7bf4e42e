"""What the report conversation shows: the unit's sheet, a household's card, a form step and
the summary, with their buttons. Buttons carry ids only (Telegram allows 64 bytes) and are
checked again when pressed."""

import html
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.i18n import Raw, t
from models.forms import FieldKind, Form, FormField
from models.reports import HouseholdCard, UnitChoice, UnitSheet
from models.rounds import ReportStatus

SHEET_PAGE = 24
NUMBER_BUTTONS = 10
MARKS = {
    ReportStatus.missing: "▫️",
    ReportStatus.reported: "✅",
    ReportStatus.nobody_home: "🚪",
}


class UnitPick(CallbackData, prefix="ru"):
    """A unit's sheet of households, at a page."""

    round_id: int
    unit_id: int
    page: int = 0


class HouseholdPick(CallbackData, prefix="rh"):
    round_id: int
    household_id: int


class HouseholdAction(CallbackData, prefix="ra"):
    """ "no change", "nobody home" or "fill in" for a household, at the revision shown."""

    round_id: int
    household_id: int
    revision: int
    action: str  # same | away | fill


class UnitAllSame(CallbackData, prefix="rs"):
    """ "All remaining: no change" for a unit; asked, then confirmed."""

    round_id: int
    unit_id: int
    confirmed: bool


class FieldAnswer(CallbackData, prefix="rf"):
    """An answer to the form's step ``step`` of the conversation ``token``."""

    token: int
    step: int
    op: str  # set | toggle | done | skip | keep
    value: int = 0


class FormConfirm(CallbackData, prefix="rc"):
    token: int
    save: bool


def reader_locale() -> str:
    return str(I18n.get_current(no_error=False).current_locale)


# Every button is a copy of this one with its own text and data: a copy with two fields
# replaced costs a ninth of ``model_construct`` (which resolves the defaults of all of the
# button's fields) and half of a checked ``InlineKeyboardButton(...)``.
_BUTTON = InlineKeyboardButton(text="·", callback_data="·")


def button(text: str, data: CallbackData | str) -> InlineKeyboardButton:
    """A button carrying ``data`` (packed, or to pack). Built without pydantic's checks:
    its two fields are strings made here, and a sheet builds one per household."""
    packed = data if isinstance(data, str) else data.pack()
    return _BUTTON.model_copy(update={"text": text, "callback_data": packed})


def pick_data(round_id: int, household_id: int) -> str:
    """``HouseholdPick(round_id=…, household_id=…).pack()``, without building the model (a
    sheet packs one per household)."""
    separator = HouseholdPick.__separator__
    return f"{HouseholdPick.__prefix__}{separator}{int(round_id)}{separator}{int(household_id)}"


def keyboard(buttons: Sequence[InlineKeyboardButton], *sizes: int) -> InlineKeyboardMarkup:
    """The buttons in rows of ``sizes``, the last size repeated for the rest: the layout of
    aiogram's builder with ``adjust(*sizes)``, built directly (the builder copies every
    button, a good part of a report tap's time)."""

    def rows() -> Iterator[list[InlineKeyboardButton]]:
        start, row = 0, 0
        while start < len(buttons):
            size = sizes[min(row, len(sizes) - 1)]
            yield list(buttons[start : start + size])
            start, row = start + size, row + 1

    return InlineKeyboardMarkup(inline_keyboard=list(rows()))


# --- choosing a unit ----------------------------------------------------------------------


def units_keyboard(round_id: int, units: list[UnitChoice]) -> InlineKeyboardMarkup:
    buttons = [
        button(
            f"{unit.path} · {t('reports.vacant')}" if unit.vacant else unit.path,
            UnitPick(round_id=round_id, unit_id=unit.node_id),
        )
        for unit in units
    ]
    return keyboard(buttons, 1)


# --- the unit's sheet ---------------------------------------------------------------------


def sheet_text(sheet: UnitSheet, timezone: str, header: str | None = None) -> str:
    due = sheet.due_at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")
    lines = [header] if header else []
    lines.append(
        t(
            "reports.sheet_title",
            path=sheet.unit_path,
            date=sheet.round_date.isoformat(),
            due=due,
            done=sheet.progress.done,
            total=sheet.progress.total,
        )
    )
    if sheet.progress.alerts:
        lines.append(t("reports.sheet_alerts", count=sheet.progress.alerts))
    if sheet.progress.total and not sheet.progress.remaining:
        lines.append(t("reports.sheet_all_done"))
    lines.append(t("reports.sheet_legend"))
    return "\n".join(lines)


def sheet_keyboard(sheet: UnitSheet, page: int) -> InlineKeyboardMarkup:
    pages = max(1, -(-len(sheet.lines) // SHEET_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = sheet.lines[page * SHEET_PAGE : (page + 1) * SHEET_PAGE]
    buttons = [
        button(
            f"{'⚠️' if line.alert else MARKS[line.status]} {line.room}",
            pick_data(sheet.round_id, line.household_id),
        )
        for line in shown
    ]
    sizes = [4] * -(-len(shown) // 4)
    if sheet.progress.remaining:
        buttons.append(
            button(
                t("reports.all_same_button", count=sheet.progress.remaining),
                UnitAllSame(round_id=sheet.round_id, unit_id=sheet.unit_id, confirmed=False),
            )
        )
        sizes.append(1)
    if pages > 1:
        for target, label in ((page - 1, "◀"), (page + 1, "▶")):
            if 0 <= target < pages:
                buttons.append(
                    button(
                        f"{label} {target + 1}/{pages}",
                        UnitPick(round_id=sheet.round_id, unit_id=sheet.unit_id, page=target),
                    )
                )
        sizes.append(2)
    return keyboard(buttons, *sizes)


# --- a household --------------------------------------------------------------------------


def answer_text(field: FormField, answer: object, locale: str) -> str:
    if answer is None:
        return t("reports.skipped")
    if field.kind is FieldKind.single and isinstance(answer, str):
        choice = field.choice(answer)
        return choice.label(locale) if choice else answer
    if field.kind is FieldKind.multi and isinstance(answer, list):
        labels = [choice.label(locale) for item in answer if (choice := field.choice(item))]
        return "、".join(labels) if labels else t("reports.none_chosen")
    return str(answer)


def answers_text(form: Form, answers: Mapping[str, object]) -> str:
    locale = reader_locale()
    lines = [
        t(
            "reports.answer_line",
            label=field.label(locale),
            value=answer_text(field, answers.get(field.id), locale),
        )
        for field in form.fields
        if field.id in answers or (form.asked(field, answers) and not field.optional)
    ]
    return "\n".join(lines)


def card_text(card: HouseholdCard, form: Form) -> str:
    lines = [
        t("reports.household_title", path=card.unit_path, room=card.room),
        t(f"reports.status.{card.status.value}"),
    ]
    if card.answers is not None:
        lines.append(answers_text(form, card.answers))
    elif card.last_answers is not None and card.last_date is not None:
        lines.append(t("reports.last_report", date=card.last_date.isoformat()))
        lines.append(answers_text(form, card.last_answers))
    elif card.status is ReportStatus.missing:
        lines.append(t("reports.no_last"))
    return "\n".join(lines)


def card_keyboard(card: HouseholdCard) -> InlineKeyboardMarkup:
    def action(name: str) -> HouseholdAction:
        return HouseholdAction(
            round_id=card.round_id,
            household_id=card.household_id,
            revision=card.revision,
            action=name,
        )

    buttons = []
    if card.last_answers is not None:
        buttons.append(button(t("reports.button.no_change"), action("same")))
    buttons.append(button(t("reports.button.nobody_home"), action("away")))
    fill = (
        "reports.button.fill" if card.status is ReportStatus.missing else "reports.button.correct"
    )
    buttons.append(button(t(fill), action("fill")))
    buttons.append(
        button(
            t("reports.button.back"),
            UnitPick(round_id=card.round_id, unit_id=card.unit_id),
        )
    )
    return keyboard(buttons, 3 if card.last_answers is not None else 2, 1)


# --- a form step --------------------------------------------------------------------------


def step_text(form: Form, step: int, room: str, problem: str | None = None) -> str:
    field = form.fields[step]
    lines = [problem] if problem else []
    lines.append(
        t(
            "reports.step_title",
            room=room,
            index=step + 1,
            count=len(form.fields),
            label=field.label(reader_locale()),
        )
    )
    if field.kind is FieldKind.integer:
        lines.append(t("reports.step_integer", minimum=field.minimum, maximum=field.maximum))
    elif field.kind is FieldKind.single:
        lines.append(t("reports.step_single"))
    elif field.kind is FieldKind.multi:
        lines.append(t("reports.step_multi"))
    else:
        lines.append(t("reports.step_text", limit=field.max_length))
    return "\n".join(lines)


def step_keyboard(
    form: Form,
    step: int,
    token: int,
    answers: Mapping[str, object],
    prefill: Mapping[str, object],
) -> InlineKeyboardMarkup | None:
    field = form.fields[step]
    locale = reader_locale()
    buttons: list[InlineKeyboardButton] = []
    sizes: list[int] = []

    def answer(op: str, value: int = 0) -> FieldAnswer:
        return FieldAnswer(token=token, step=step, op=op, value=value)

    if field.kind is FieldKind.integer:
        top = min(field.maximum, field.minimum + NUMBER_BUTTONS - 1)
        numbers = range(field.minimum, top + 1)
        buttons += [button(str(number), answer("set", number)) for number in numbers]
        sizes += [5] * -(-len(numbers) // 5)
    elif field.kind is FieldKind.single:
        current = prefill.get(field.id)
        for index, choice in enumerate(field.choices):
            mark = "● " if choice.id == current else ""
            buttons.append(button(mark + choice.label(locale), answer("set", index)))
        sizes += [2] * -(-len(field.choices) // 2)
    elif field.kind is FieldKind.multi:
        chosen = answers.get(field.id)
        chosen = chosen if isinstance(chosen, list) else []
        for index, choice in enumerate(field.choices):
            mark = "☑️" if choice.id in chosen else "⬜"
            buttons.append(button(f"{mark} {choice.label(locale)}", answer("toggle", index)))
        sizes += [2] * -(-len(field.choices) // 2)
        buttons.append(button(t("reports.button.done"), answer("done")))
        sizes.append(1)
    previous = prefill.get(field.id)
    if field.kind in (FieldKind.integer, FieldKind.text) and previous is not None:
        shown = answer_text(field, previous, locale)
        if len(shown) > 20:
            shown = shown[:19] + "…"
        buttons.append(button(t("reports.button.keep", value=shown), answer("keep")))
        sizes.append(1)
    if field.optional:
        buttons.append(button(t("reports.button.skip"), answer("skip")))
        sizes.append(1)
    if not sizes:
        return None
    return keyboard(buttons, *sizes)


# --- the summary --------------------------------------------------------------------------


def summary_text(form: Form, path: str, room: str, answers: Mapping[str, object]) -> str:
    lines = [
        t("reports.summary_title", path=path, room=room),
        answers_text(form, answers),
    ]
    locale = reader_locale()
    matches = form.alert_matches(answers)
    if matches:
        labels = [field.label(locale) for match in matches if (field := form.field(match.field))]
        lines.append(t("reports.summary_alerts", fields=Raw("、".join(t_escape(labels)))))
    needs = form.needs_of(answers)
    if needs:
        kinds = [need.kind for need in needs]
        lines.append(t("reports.summary_needs", kinds=_need_labels(form, kinds, locale)))
    return "\n".join(lines)


def _need_labels(form: Form, kinds: list[str], locale: str) -> Raw:
    labels = []
    for rule in form.needs:
        field = form.field(rule.field)
        choice = field.choice(rule.choice) if field else None
        if rule.kind in kinds and choice is not None:
            labels.append(choice.label(locale))
    return Raw("、".join(t_escape(labels)))


def t_escape(texts: list[str]) -> list[str]:
    """Labels come from the form file: escaped before they join an HTML text."""
    return [html.escape(text, quote=False) for text in texts]


def summary_keyboard(token: int) -> InlineKeyboardMarkup:
    return keyboard(
        [
            button(t("reports.button.save"), FormConfirm(token=token, save=True)),
            button(t("reports.button.cancel"), FormConfirm(token=token, save=False)),
        ],
        2,
    )


def confirm_all_keyboard(round_id: int, unit_id: int) -> InlineKeyboardMarkup:
    return keyboard(
        [
            button(
                t("reports.button.confirm"),
                UnitAllSame(round_id=round_id, unit_id=unit_id, confirmed=True),
            ),
            button(t("reports.button.back"), UnitPick(round_id=round_id, unit_id=unit_id)),
        ],
        2,
    )


def local_time(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
