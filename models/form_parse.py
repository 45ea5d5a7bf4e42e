"""Reading a household report form's definition, a TOML file (``models.forms`` holds the
form it describes): the whole definition is checked, every problem collected and named by
its field, and reported together in one ``FormError``.

A form's version is a digest of its definition; a form kept with a round is parsed once
per process and version.
"""

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.forms import (
    LABEL_LOCALES,
    OPERATORS,
    SEVERITIES,
    AlertRule,
    Choice,
    Condition,
    FieldKind,
    FieldScope,
    Form,
    FormError,
    FormField,
    NeedRule,
)

# Values past PostgreSQL's int32 are refused there; a form has no use for them.
LARGEST_NUMBER = 1_000_000
LONGEST_TEXT = 1000
MOST_CHOICES = 24
_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def load_form(path: Path) -> Form:
    """The form in the TOML file at ``path``; raises ``FormError``."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FormError(source, [f"cannot read the file: {error}"]) from None
    try:
        definition = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FormError(source, [f"not valid TOML: {error}"]) from None
    return parse_form(definition, source)


_PARSED: dict[str, Form] = {}


def cached_form(version: str) -> Form | None:
    """The form of ``version`` if this process has parsed it already."""
    return _PARSED.get(version)


def form_from_stored(definition: Mapping[str, Any]) -> Form:
    """A form kept with a round, parsed once per process and version."""
    version = version_of(definition)
    form = _PARSED.get(version)
    if form is None:
        form = _PARSED[version] = parse_form(definition, f"version {version}")
    return form


def version_of(definition: Mapping[str, Any]) -> str:
    """A digest of the definition: any edit of the file is a new version."""
    canonical = json.dumps(definition, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_form(definition: Mapping[str, Any], source: str) -> Form:
    """Check the whole definition and build the form; raises ``FormError`` listing every
    problem, each naming its field."""
    reader = _Reader()
    form = reader.form(definition)
    if reader.errors:
        raise FormError(source, reader.errors)
    assert form is not None
    return form


class _Reader:
    """Reads a definition, collecting every problem rather than stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, where: str, problem: str) -> None:
        self.errors.append(f"{where}: {problem}")

    def form(self, definition: Mapping[str, Any]) -> Form | None:
        self.unknown_keys("form", definition, {"title", "fields", "alerts", "needs"})
        if "title" in definition:
            self.labels("form title", definition["title"])
        raw_fields = definition.get("fields")
        if not isinstance(raw_fields, list) or not raw_fields:
            self.fail("form", "needs at least one [[fields]] entry")
            raw_fields = []
        fields: list[FormField] = []
        for index, raw in enumerate(raw_fields):
            field = self.field(index, raw, fields)
            if field is not None:
                if any(earlier.id == field.id for earlier in fields):
                    self.fail(f'field "{field.id}"', "the id is used twice")
                else:
                    fields.append(field)
        alerts = [
            alert
            for index, raw in enumerate(self.table_list(definition, "alerts"))
            if (alert := self.alert(index, raw, fields)) is not None
        ]
        needs = [
            rule
            for index, raw in enumerate(self.table_list(definition, "needs"))
            if (rule := self.need(index, raw, fields)) is not None
        ]
        if self.errors:
            return None
        return Form(version_of(definition), tuple(fields), tuple(alerts), tuple(needs), definition)

    def table_list(self, definition: Mapping[str, Any], key: str) -> list[Any]:
        value = definition.get(key, [])
        if not isinstance(value, list):
            self.fail("form", f'"{key}" must be a list of tables ([[{key}]])')
            return []
        return value

    def unknown_keys(self, where: str, table: Mapping[str, Any], known: set[str]) -> None:
        for key in sorted(set(table) - known):
            self.fail(where, f'unknown key "{key}"')

    def labels(self, where: str, value: object) -> dict[str, str]:
        if not isinstance(value, dict):
            self.fail(where, 'needs a label table: { zh_Hans = "…", en = "…" }')
            return {}
        labels: dict[str, str] = {}
        for locale in LABEL_LOCALES:
            text = value.get(locale)
            if not isinstance(text, str) or not text.strip():
                self.fail(where, f"needs a {locale} label")
            elif len(text) > 200:
                self.fail(where, f"the {locale} label is longer than 200 characters")
            else:
                labels[locale] = text.strip()
        for locale in sorted(set(value) - set(LABEL_LOCALES)):
            self.fail(where, f'unknown label language "{locale}" (use zh_Hans and en)')
        return labels

    def field(self, index: int, raw: object, earlier: list[FormField]) -> FormField | None:
        if not isinstance(raw, dict):
            self.fail(f"fields[{index}]", "must be a table")
            return None
        field_id = raw.get("id")
        if not isinstance(field_id, str) or not _ID.match(field_id):
            self.fail(
                f"fields[{index}]", "needs an id of a-z, 0-9 and _ starting with a letter (≤ 32)"
            )
            return None
        where = f'field "{field_id}"'
        errors_before = len(self.errors)
        try:
            kind = FieldKind(str(raw.get("kind")))
        except ValueError:
            self.fail(where, f"kind must be one of {', '.join(FieldKind)}")
            return None
        known = {"id", "kind", "label", "scope", "optional", "copy_on_no_change", "when"}
        known |= {
            FieldKind.integer: {"min", "max"},
            FieldKind.single: {"choices"},
            FieldKind.multi: {"choices"},
            FieldKind.text: {"max_length"},
        }[kind]
        self.unknown_keys(where, raw, known)
        labels = self.labels(f"{where} label", raw.get("label"))
        try:
            scope = FieldScope(raw.get("scope", "round"))
        except ValueError:
            self.fail(where, 'scope must be "round" or "household"')
            scope = FieldScope.round
        optional = self.flag(where, raw, "optional", False)
        copy = self.flag(where, raw, "copy_on_no_change", True)
        minimum = maximum = max_length = 0
        choices: tuple[Choice, ...] = ()
        if kind is FieldKind.integer:
            minimum = self.number(where, raw, "min", 0)
            maximum = self.number(where, raw, "max", None)
            if minimum > maximum:
                self.fail(where, f"min {minimum} is greater than max {maximum}")
        elif kind is FieldKind.text:
            max_length = self.number(where, raw, "max_length", None)
            if not 1 <= max_length <= LONGEST_TEXT:
                self.fail(where, f"max_length must be between 1 and {LONGEST_TEXT}")
        else:
            choices = self.choices(where, raw.get("choices"))
        when = None
        if "when" in raw:
            when = self.condition(f"{where} when", raw["when"], earlier, {"field"})
            if when is not None and scope is FieldScope.household:
                self.fail(where, "a household attribute is always asked: remove when")
        if len(self.errors) > errors_before:
            return None
        return FormField(
            field_id,
            kind,
            labels,
            scope,
            minimum,
            maximum,
            max_length,
            choices,
            optional,
            copy,
            when,
        )

    def flag(self, where: str, raw: Mapping[str, Any], key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(where, f"{key} must be true or false")
            return default
        return value

    def number(self, where: str, raw: Mapping[str, Any], key: str, default: int | None) -> int:
        value = raw.get(key, default)
        if value is None:
            self.fail(where, f"needs {key}")
            return 0
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(where, f"{key} must be a whole number")
            return 0
        if abs(value) > LARGEST_NUMBER:
            self.fail(where, f"{key} must lie within ±{LARGEST_NUMBER}")
            return 0
        return value

    def choices(self, where: str, raw: object) -> tuple[Choice, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail(where, 'needs choices: [{ id = "…", label = { zh_Hans = "…", en = "…" } }]')
            return ()
        if len(raw) > MOST_CHOICES:
            self.fail(where, f"has more than {MOST_CHOICES} choices")
        choices: list[Choice] = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                self.fail(f"{where} choices[{index}]", "needs an id and a label")
                continue
            choice_id = item["id"]
            choice_where = f'{where} choice "{choice_id}"'
            if not _ID.match(choice_id):
                self.fail(choice_where, "the id must be a-z, 0-9 and _ starting with a letter")
            if any(choice.id == choice_id for choice in choices):
                self.fail(choice_where, "the id is used twice")
            self.unknown_keys(choice_where, item, {"id", "label"})
            choices.append(
                Choice(choice_id, self.labels(f"{choice_where} label", item.get("label")))
            )
        return tuple(choices)

    def condition(
        self, where: str, raw: object, fields: list[FormField], extra: set[str]
    ) -> Condition | None:
        if not isinstance(raw, dict):
            self.fail(where, "must be a table with field, operator and value")
            return None
        self.unknown_keys(where, raw, {"operator", "value"} | extra)
        field = next((f for f in fields if f.id == raw.get("field")), None)
        if field is None:
            self.fail(where, f'field "{raw.get("field")}" is not a field declared before it')
            return None
        operator = raw.get("operator")
        allowed = OPERATORS[field.kind]
        if operator not in allowed:
            self.fail(
                where, f'operator for {field.kind} field "{field.id}" must be one of {allowed}'
            )
            return None
        value = raw.get("value")
        if operator == "in" and (not isinstance(value, list) or not value):
            self.fail(where, '"in" takes a list of values')
            return None
        for item in value if isinstance(value, list) and operator == "in" else [value]:
            if not self.value_fits(field, item):
                self.fail(where, f'value {item!r} is not a possible answer to "{field.id}"')
                return None
        return Condition(field.id, str(operator), value)

    def value_fits(self, field: FormField, value: object) -> bool:
        if field.kind is FieldKind.integer:
            return isinstance(value, int) and not isinstance(value, bool)
        if field.kind is FieldKind.text:
            return isinstance(value, str)
        return isinstance(value, str) and field.choice(value) is not None

    def alert(self, index: int, raw: object, fields: list[FormField]) -> AlertRule | None:
        name = raw.get("field") if isinstance(raw, dict) else None
        where = f'alerts[{index}] (field "{name}")'
        condition = self.condition(where, raw, fields, {"field", "severity"})
        severity = raw.get("severity") if isinstance(raw, dict) else None
        if severity not in SEVERITIES:
            self.fail(where, f"severity must be one of {', '.join(SEVERITIES)}")
            return None
        if condition is None:
            return None
        return AlertRule(condition.field, condition.operator, condition.value, str(severity))

    def need(self, index: int, raw: object, fields: list[FormField]) -> NeedRule | None:
        if not isinstance(raw, dict):
            self.fail(f"needs[{index}]", "must be a table with field, choice and kind")
            return None
        where = f'needs[{index}] (field "{raw.get("field")}")'
        self.unknown_keys(where, raw, {"field", "choice", "kind", "note_field"})
        field = next((f for f in fields if f.id == raw.get("field")), None)
        if field is None or field.kind not in (FieldKind.single, FieldKind.multi):
            self.fail(where, "field must name a single or multi choice field")
            return None
        if field.scope is FieldScope.household:
            # Kept between rounds, it would open the same need again every round.
            self.fail(
                where, f'"{field.id}" is a household attribute: a need comes from a round field'
            )
            return None
        choice = raw.get("choice")
        if not isinstance(choice, str) or field.choice(choice) is None:
            self.fail(where, f'choice {choice!r} is not a choice of "{field.id}"')
            return None
        kind = raw.get("kind")
        if not isinstance(kind, str) or not _ID.match(kind):
            self.fail(where, "kind must be a-z, 0-9 and _ (medicine, food, doctor…)")
            return None
        note_field = raw.get("note_field")
        if note_field is not None:
            note = next((f for f in fields if f.id == note_field), None)
            if note is None or note.kind is not FieldKind.text:
                self.fail(where, f'note_field "{note_field}" must name a text field')
                return None
        return NeedRule(field.id, choice, kind, note_field)
