"""The household report form as data: its fields, alert rules and needs, and what a saved
report's answers match.

A county edits the form (a TOML file, ``bot/forms/household.toml`` by default) without a
release. It is checked as a whole when the bot starts (``models.form_parse`` reads it),
every problem naming its field; a round keeps the version of the form it opened with
(stored with the round), so a changed file applies from the next round and old reports
keep their answers.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from models.refusals import Refused

LABEL_LOCALES = ("zh_Hans", "en")
# As models.alerts ranks them, most severe first.
SEVERITIES = ("critical", "high", "medium", "low")

Answer = int | str | list[str]


@dataclass(frozen=True)
class AlertMatch:
    """An alert rule a saved report met: ``answer`` is the household's answer to ``field``."""

    field: str
    operator: str
    value: object
    severity: str
    answer: object


@dataclass(frozen=True)
class NeedRequest:
    """A need a saved report asked for: ``kind`` as the form names it (``medicine``…)."""

    kind: str
    note: str | None


class FieldKind(StrEnum):
    integer = "integer"
    single = "single"
    multi = "multi"
    text = "text"


class FieldScope(StrEnum):
    # Answered in each round.
    round = "round"
    # Kept with the household between rounds (vulnerable people…).
    household = "household"


class FormError(Exception):
    """The form definition is not usable; ``errors`` each name the field they are about."""

    def __init__(self, source: str, errors: Sequence[str]) -> None:
        self.source = source
        self.errors = list(errors)
        lines = "\n".join(f"  - {error}" for error in self.errors)
        super().__init__(f"report form {source} has {len(self.errors)} error(s):\n{lines}")


# Operators by the kind of field they apply to; "in" takes a list of values.
OPERATORS: dict[FieldKind, tuple[str, ...]] = {
    FieldKind.integer: ("==", "!=", ">", ">=", "<", "<=", "in"),
    FieldKind.single: ("==", "!=", "in"),
    FieldKind.multi: ("contains",),
    FieldKind.text: ("==", "!="),
}


@dataclass(frozen=True)
class Choice:
    id: str
    labels: Mapping[str, str]

    def label(self, locale: str) -> str:
        return self.labels.get(locale) or self.labels[LABEL_LOCALES[0]]


@dataclass(frozen=True)
class Condition:
    """``answers[field] operator value``: an alert rule's test, or when a field is asked."""

    field: str
    operator: str
    value: object

    def holds(self, answers: Mapping[str, object]) -> bool:
        return compare(answers.get(self.field), self.operator, self.value)


def compare(answer: object, operator: str, value: object) -> bool:
    """Whether ``answer`` meets ``operator value``; an answer that is missing meets nothing."""
    if answer is None:
        return False
    if operator == "contains":
        return isinstance(answer, list) and value in answer
    if operator == "in":
        return isinstance(value, list) and answer in value
    if operator == "==":
        return answer == value
    if operator == "!=":
        return answer != value
    if not (isinstance(answer, int) and isinstance(value, int)):
        return False
    if operator == ">":
        return answer > value
    if operator == ">=":
        return answer >= value
    if operator == "<":
        return answer < value
    return operator == "<=" and answer <= value


@dataclass(frozen=True)
class FormField:
    id: str
    kind: FieldKind
    labels: Mapping[str, str]
    scope: FieldScope = FieldScope.round
    minimum: int = 0
    maximum: int = 0
    max_length: int = 0
    choices: tuple[Choice, ...] = ()
    optional: bool = False
    # "No change since last report" copies the last answer; a need or a note is asked anew.
    copy_on_no_change: bool = True
    when: Condition | None = None

    def label(self, locale: str) -> str:
        return self.labels.get(locale) or self.labels[LABEL_LOCALES[0]]

    def choice(self, choice_id: str) -> Choice | None:
        return next((choice for choice in self.choices if choice.id == choice_id), None)

    def parse_number(self, text: str) -> int:
        """A typed number, or ``Refused`` with the catalog key that says what is wrong."""
        cleaned = text.strip().replace(" ", "")
        try:
            number = int(cleaned)
        except ValueError:
            raise Refused(
                "reports.not_a_number", minimum=self.minimum, maximum=self.maximum
            ) from None
        if not self.minimum <= number <= self.maximum:
            raise Refused("reports.out_of_range", minimum=self.minimum, maximum=self.maximum)
        return number

    def parse_text(self, text: str) -> str:
        """Typed text without control characters (PostgreSQL refuses NUL), or ``Refused``."""
        cleaned = "".join(c for c in text if c == "\n" or c.isprintable()).strip()
        if not cleaned:
            raise Refused("reports.text_empty")
        if len(cleaned) > self.max_length:
            raise Refused("reports.text_too_long", limit=self.max_length, length=len(cleaned))
        return cleaned

    def accepts(self, answer: object) -> bool:
        """The answer has this field's shape and lies within its bounds."""
        if self.kind is FieldKind.integer:
            return (
                isinstance(answer, int)
                and not isinstance(answer, bool)
                and self.minimum <= answer <= self.maximum
            )
        if self.kind is FieldKind.single:
            return isinstance(answer, str) and self.choice(answer) is not None
        if self.kind is FieldKind.multi:
            return (
                isinstance(answer, list)
                and all(isinstance(item, str) and self.choice(item) for item in answer)
                and len(set(answer)) == len(answer)
            )
        return isinstance(answer, str) and 0 < len(answer) <= self.max_length


@dataclass(frozen=True)
class AlertRule:
    field: str
    operator: str
    value: object
    severity: str


@dataclass(frozen=True)
class NeedRule:
    """Choosing ``choice`` in ``field`` asks for a need of ``kind``; its note is the answer to
    ``note_field`` when there is one."""

    field: str
    choice: str
    kind: str
    note_field: str | None = None


@dataclass(frozen=True)
class Form:
    version: str
    fields: tuple[FormField, ...]
    alerts: tuple[AlertRule, ...]
    needs: tuple[NeedRule, ...]
    # The definition as read, kept with the rounds that use this version.
    definition: Mapping[str, Any]

    def field(self, field_id: str) -> FormField | None:
        return next((field for field in self.fields if field.id == field_id), None)

    def asked(self, field: FormField, answers: Mapping[str, object]) -> bool:
        return field.when is None or field.when.holds(answers)

    def next_step(self, after: int, answers: Mapping[str, object]) -> int | None:
        """The index of the next field to ask after index ``after`` (-1: the first), skipping
        fields whose condition the answers so far do not meet; None when all are asked."""
        for index in range(after + 1, len(self.fields)):
            if self.asked(self.fields[index], answers):
                return index
        return None

    def clean(self, answers: Mapping[str, object]) -> dict[str, Answer]:
        """The answers of a whole form checked again (they come from a conversation's stored
        state): each asked field answered within bounds, unasked and unknown ones dropped.
        Raises ``Refused("reports.answer_invalid", field=…)``."""
        cleaned: dict[str, Answer] = {}
        for field in self.fields:
            if not self.asked(field, cleaned):
                continue
            answer = answers.get(field.id)
            if answer is None:
                if field.optional or field.kind is FieldKind.multi:
                    if field.kind is FieldKind.multi:
                        cleaned[field.id] = []
                    continue
                raise Refused("reports.answer_invalid", field=field.id)
            if not field.accepts(answer):
                raise Refused("reports.answer_invalid", field=field.id)
            cleaned[field.id] = _copy(answer)
        return cleaned

    def copied(self, last: Mapping[str, object]) -> dict[str, Answer]:
        """What "no change since last report" keeps of the last answers: the per-round
        answers this form still accepts, except those asked anew each time."""
        kept: dict[str, Answer] = {}
        for field in self.fields:
            if field.scope is not FieldScope.round or not field.copy_on_no_change:
                continue
            answer = last.get(field.id)
            if answer is not None and field.accepts(answer) and self.asked(field, kept):
                kept[field.id] = _copy(answer)
        return kept

    def answer_labels(self, field_id: str, answer: object) -> dict[str, tuple[str, str]]:
        """The field's label and the answer's, per language ({"zh_Hans": ("检测情况", "阳性")}),
        for texts that name an answer (an alert) outside the form; empty for an unknown field."""
        field = self.field(field_id)
        if field is None:
            return {}
        labels: dict[str, tuple[str, str]] = {}
        for locale in LABEL_LOCALES:
            items = answer if isinstance(answer, list) else [answer]
            shown = [
                choice.label(locale) if (choice := field.choice(str(item))) else str(item)
                for item in items
            ]
            labels[locale] = (field.label(locale), "、".join(shown))
        return labels

    def household_fields(self) -> tuple[FormField, ...]:
        return tuple(field for field in self.fields if field.scope is FieldScope.household)

    def alert_matches(self, answers: Mapping[str, object]) -> list[AlertMatch]:
        return [
            AlertMatch(rule.field, rule.operator, rule.value, rule.severity, answers[rule.field])
            for rule in self.alerts
            if compare(answers.get(rule.field), rule.operator, rule.value)
        ]

    def needs_of(self, answers: Mapping[str, object]) -> list[NeedRequest]:
        requests = []
        for rule in self.needs:
            if not compare_choice(answers.get(rule.field), rule.choice):
                continue
            note = answers.get(rule.note_field) if rule.note_field else None
            requests.append(NeedRequest(rule.kind, note if isinstance(note, str) else None))
        return requests


def _copy(answer: object) -> Answer:
    """An answer ``FormField.accepts`` has checked, as a value of its own."""
    if isinstance(answer, list):
        return [str(item) for item in answer]
    if isinstance(answer, int):
        return answer
    return str(answer)


def compare_choice(answer: object, choice: str) -> bool:
    return answer == choice or (isinstance(answer, list) and choice in answer)
