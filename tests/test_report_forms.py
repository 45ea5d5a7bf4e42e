"""The report form as data: the loader names the field of every problem, and the rules."""

import tomllib
from pathlib import Path

import pytest

from bot.config import Config, ConfigError
from bot.forms import DEFAULT_FORM_PATH, load_report_form
from models.form_parse import load_form, parse_form
from models.forms import AlertMatch, FormError, NeedRequest
from models.refusals import Refused

LABEL = '{ zh_Hans = "标签", en = "Label" }'


def form_errors(toml: str) -> list[str]:
    with pytest.raises(FormError) as raised:
        parse_form(tomllib.loads(toml), "test.toml")
    return raised.value.errors


def test_the_shipped_form_is_product_34() -> None:
    form = load_form(DEFAULT_FORM_PATH)
    assert [field.id for field in form.fields] == [
        "people_at_home",
        "symptoms",
        "test_status",
        "isolation",
        "vulnerable",
        "needs",
        "needs_other",
        "note",
    ]
    isolation = form.field("isolation")
    assert isolation is not None
    assert [choice.id for choice in isolation.choices] == [
        "none",
        "home",
        "centralised",
        "monitoring",
    ]
    vulnerable = form.field("vulnerable")
    assert vulnerable is not None and vulnerable.scope == "household"
    assert {choice.id for choice in vulnerable.choices} == {
        "elderly_alone",
        "aged_80_plus",
        "disabled",
        "pregnant",
        "infant",
        "chronic_illness",
    }
    for field in form.fields:
        assert field.label("zh_Hans") and field.label("en")
    # No names or ID numbers of residents: the only free text is length-capped.
    assert all(field.max_length <= 200 for field in form.fields)


def test_the_rules_of_the_shipped_form() -> None:
    form = load_form(DEFAULT_FORM_PATH)
    calm = {"people_at_home": 3, "symptoms": 0, "test_status": "negative", "needs": []}
    assert form.alert_matches(calm) == []
    assert form.alert_matches({**calm, "symptoms": 2, "test_status": "positive"}) == [
        AlertMatch("symptoms", ">", 0, "high", 2),
        AlertMatch("test_status", "==", "positive", "critical", "positive"),
    ]
    assert form.needs_of({**calm, "needs": ["food", "other"], "needs_other": "轮椅"}) == [
        NeedRequest("food", None),
        NeedRequest("other", "轮椅"),
    ]


def test_an_answer_is_named_in_both_languages() -> None:
    form = load_form(DEFAULT_FORM_PATH)
    assert form.answer_labels("test_status", "positive") == {
        "zh_Hans": ("检测情况", "阳性"),
        "en": ("Test status", "Positive"),
    }
    assert form.answer_labels("symptoms", 2)["en"] == ("People with fever or symptoms", "2")
    assert (
        form.answer_labels("vulnerable", ["infant", "disabled"])["zh_Hans"][1] == "婴幼儿、残疾人"
    )
    assert form.answer_labels("unknown", 1) == {}


def test_a_field_is_asked_only_when_its_condition_holds() -> None:
    form = load_form(DEFAULT_FORM_PATH)
    needs = [field.id for field in form.fields].index("needs")
    assert form.fields[form.next_step(needs, {"needs": ["food"]}) or 0].id == "note"
    assert form.fields[form.next_step(needs, {"needs": ["other"]}) or 0].id == "needs_other"


def test_clean_checks_a_whole_form_again() -> None:
    form = load_form(DEFAULT_FORM_PATH)
    answers = {
        "people_at_home": 2,
        "symptoms": 0,
        "test_status": "negative",
        "isolation": "none",
        "vulnerable": ["aged_80_plus"],
        "needs": ["food"],
        "needs_other": "not asked, so dropped",
        "smuggled": "dropped",
    }
    cleaned = form.clean(answers)
    assert "needs_other" not in cleaned and "smuggled" not in cleaned and "note" not in cleaned
    for field_id, bad in [
        ("people_at_home", 31),
        ("people_at_home", "2"),
        ("test_status", "maybe"),
        ("vulnerable", ["aged_80_plus", "aged_80_plus"]),
        ("isolation", None),
    ]:
        with pytest.raises(Refused) as refused:
            form.clean({**answers, field_id: bad})
        assert refused.value.params == {"field": field_id}


def test_typed_numbers_and_texts_are_checked_with_a_reason() -> None:
    form = load_form(DEFAULT_FORM_PATH)
    people, note = form.field("people_at_home"), form.field("note")
    assert people is not None and note is not None
    assert people.parse_number(" 12 ") == 12
    assert people.parse_number("１２") == 12  # full-width digits, as Chinese keyboards type
    for typed, key in [("三", "reports.not_a_number"), ("abc", "reports.not_a_number")]:
        with pytest.raises(Refused) as refused:
            people.parse_number(typed)
        assert refused.value.key == key
    for typed in ("31", "-1", "99999999999999999999"):
        with pytest.raises(Refused) as refused:
            people.parse_number(typed)
        assert refused.value.key == "reports.out_of_range"
    assert note.parse_text("门口\x00放药") == "门口放药"
    with pytest.raises(Refused) as refused:
        note.parse_text("长" * 201)
    assert refused.value.key == "reports.text_too_long"
    assert refused.value.params == {"limit": 200, "length": 201}


BROKEN_FORMS = [
    (
        f'[[fields]]\nid = "people"\nkind = "integer"\nmin = 5\nmax = 3\nlabel = {LABEL}\n',
        'field "people": min 5 is greater than max 3',
    ),
    (
        '[[fields]]\nid = "people"\nkind = "integer"\nmax = 3\nlabel = { zh_Hans = "人数" }\n',
        'field "people" label: needs a en label',
    ),
    (
        f'[[fields]]\nid = "people"\nkind = "integer"\nmax = 3\nmaximum = 4\nlabel = {LABEL}\n',
        'field "people": unknown key "maximum"',
    ),
    (
        f'[[fields]]\nid = "people"\nkind = "integer"\nlabel = {LABEL}\n',
        'field "people": needs max',
    ),
    (
        f'[[fields]]\nid = "status"\nkind = "single"\nlabel = {LABEL}\n',
        'field "status": needs choices',
    ),
    (
        f'[[fields]]\nid = "status"\nkind = "dropdown"\nlabel = {LABEL}\n',
        'field "status": kind must be one of integer, single, multi, text',
    ),
    (
        f'[[fields]]\nid = "note"\nkind = "text"\nmax_length = 5000\nlabel = {LABEL}\n',
        'field "note": max_length must be between 1 and 1000',
    ),
    (
        f'[[fields]]\nid = "note"\nkind = "text"\nmax_length = 9\nlabel = {LABEL}\n'
        f'[[fields]]\nid = "note"\nkind = "text"\nmax_length = 9\nlabel = {LABEL}\n',
        'field "note": the id is used twice',
    ),
    (
        f'[[fields]]\nid = "status"\nkind = "single"\nlabel = {LABEL}\n'
        f'choices = [{{ id = "a", label = {LABEL} }}, {{ id = "a", label = {LABEL} }}]\n',
        'field "status" choice "a": the id is used twice',
    ),
    (
        f'[[fields]]\nid = "people"\nkind = "integer"\nmax = 9\nlabel = {LABEL}\n'
        '[[alerts]]\nfield = "fever"\noperator = ">"\nvalue = 0\nseverity = "high"\n',
        'alerts[0] (field "fever"): field "fever" is not a field declared before it',
    ),
    (
        f'[[fields]]\nid = "people"\nkind = "integer"\nmax = 9\nlabel = {LABEL}\n'
        '[[alerts]]\nfield = "people"\noperator = "contains"\nvalue = 0\nseverity = "high"\n',
        'alerts[0] (field "people"): operator for integer field "people" must be one of',
    ),
    (
        f'[[fields]]\nid = "people"\nkind = "integer"\nmax = 9\nlabel = {LABEL}\n'
        '[[alerts]]\nfield = "people"\noperator = ">"\nvalue = 0\nseverity = "panic"\n',
        'alerts[0] (field "people"): severity must be one of critical, high, medium, low',
    ),
    (
        f'[[fields]]\nid = "status"\nkind = "single"\nlabel = {LABEL}\n'
        f'choices = [{{ id = "a", label = {LABEL} }}]\n'
        '[[alerts]]\nfield = "status"\noperator = "=="\nvalue = "b"\nseverity = "high"\n',
        'alerts[0] (field "status"): value \'b\' is not a possible answer to "status"',
    ),
    (
        f'[[fields]]\nid = "needs"\nkind = "multi"\nlabel = {LABEL}\n'
        f'choices = [{{ id = "food", label = {LABEL} }}]\n'
        '[[needs]]\nfield = "needs"\nchoice = "medicine"\nkind = "medicine"\n',
        'needs[0] (field "needs"): choice \'medicine\' is not a choice of "needs"',
    ),
    (
        f'[[fields]]\nid = "other"\nkind = "text"\nmax_length = 9\nlabel = {LABEL}\n'
        'when = { field = "needs", operator = "contains", value = "other" }\n'
        f'[[fields]]\nid = "needs"\nkind = "multi"\nlabel = {LABEL}\n'
        f'choices = [{{ id = "other", label = {LABEL} }}]\n',
        'field "other" when: field "needs" is not a field declared before it',
    ),
    (
        f'[[fields]]\nid = "care"\nkind = "multi"\nscope = "household"\nlabel = {LABEL}\n'
        f'choices = [{{ id = "food", label = {LABEL} }}]\n'
        '[[needs]]\nfield = "care"\nchoice = "food"\nkind = "food"\n',
        'needs[0] (field "care"): "care" is a household attribute',
    ),
    ('title = "x"\n', "form: needs at least one [[fields]] entry"),
    (
        f'feilds = 1\n[[fields]]\nid = "people"\nkind = "integer"\nmax = 9\nlabel = {LABEL}\n',
        'form: unknown key "feilds"',
    ),
]


@pytest.mark.parametrize(("toml", "expected"), BROKEN_FORMS)
def test_every_error_names_its_field(toml: str, expected: str) -> None:
    errors = form_errors(toml)
    assert any(error.startswith(expected) for error in errors), errors


def test_every_error_is_reported_at_once() -> None:
    toml = (
        f'[[fields]]\nid = "people"\nkind = "integer"\nmin = 5\nmax = 3\nlabel = {LABEL}\n'
        f'[[fields]]\nid = "Note"\nkind = "text"\nmax_length = 9\nlabel = {LABEL}\n'
        f'[[fields]]\nid = "status"\nkind = "single"\nlabel = {LABEL}\n'
    )
    errors = form_errors(toml)
    assert len(errors) == 3
    assert errors[0].startswith('field "people"')
    assert errors[1].startswith("fields[1]: needs an id")
    assert errors[2].startswith('field "status"')


def test_a_bad_form_file_stops_the_start_naming_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "form.toml"
    path.write_text(
        f'[[fields]]\nid = "people"\nkind = "integer"\nmin = 5\nmax = 3\nlabel = {LABEL}\n',
        encoding="utf-8",
    )
    config = Config()
    config.reports.form = str(path)
    with pytest.raises(ConfigError) as raised:
        load_report_form(config)
    assert 'field "people": min 5 is greater than max 3' in str(raised.value)
    assert str(path) in str(raised.value)

    path.write_text("[[fields]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_report_form(config)
    config.reports.form = str(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_report_form(config)


def test_a_changed_file_is_a_new_version(tmp_path: Path) -> None:
    text = DEFAULT_FORM_PATH.read_text(encoding="utf-8")
    path = tmp_path / "form.toml"
    path.write_text(text.replace("max = 30", "max = 40", 1), encoding="utf-8")
    assert load_form(path).version != load_form(DEFAULT_FORM_PATH).version
    path.write_text("# a comment changes nothing\n" + text, encoding="utf-8")
    assert load_form(path).version == load_form(DEFAULT_FORM_PATH).version
