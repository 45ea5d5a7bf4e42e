"""The Telegram adapter renders every queued message in its reader's language.

The catalog keys are found in the domain's code, not listed here: every key that reaches
``models.messages.Text`` or ``models.notify.tell`` (directly, through a helper that passes
its ``key`` on, or as what a helper returns), and every word put into a text as a ``Term``.
A key added to the domain is then checked without anyone remembering to add it.
"""

import ast
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import CopyMessage, SendMessage
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.i18n import create_i18n
from handlers.outbound import TelegramRenderer
from models.messages import Action, ActionKind, NoticeBody, Param, PostRef, Text
from models.notice_delivery import NoticeContent
from models.notices import NoticeKind
from models.org import LEVELS, Role
from models.outbox.delivery import ClaimedMessage
from tests.fixtures import catalog_keys

MODELS = Path(__file__).resolve().parent.parent.parent / "models"
# Chinese characters, and the punctuation and full-width forms that go with them.
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
READER = 4242


# --- finding the keys in the domain's code ----------------------------------------------


@dataclass(frozen=True)
class Sink:
    """A function whose argument at ``position`` (or named ``keyword``) is a catalog key."""

    position: int
    keyword: str


# What every queued text goes through; helpers that pass a ``key`` on are found below.
SINKS = {"Text": Sink(0, "key"), "tell": Sink(2, "key")}
# The plumbing itself, which passes on whatever key it is given.
PLUMBING = {"models/messages.py", "models/notify.py"}


@dataclass(frozen=True)
class Found:
    keys: frozenset[str]
    # Prefixes of keys built at run time (f"need.kind.{kind}"): every key with one counts.
    prefixes: frozenset[str]
    # Where a key could not be read from the code: the test must be taught that form.
    unresolved: tuple[str, ...]


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(MODELS.rglob("*.py")):
        relative = path.relative_to(MODELS.parent).as_posix()
        if "/migrations/" not in relative and relative not in PLUMBING:
            yield relative, ast.parse(path.read_text(encoding="utf-8"))


def _imports_text_of_messages(module: ast.Module) -> bool:
    """``Text`` is also SQLAlchemy's column type: only ``models.messages.Text`` counts."""
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "models.messages"
        and any(alias.name == "Text" for alias in node.names)
        for node in ast.walk(module)
    )


def _argument(call: ast.Call, sink: Sink) -> ast.expr | None:
    if len(call.args) > sink.position and not isinstance(call.args[sink.position], ast.Starred):
        return call.args[sink.position]
    return next((kw.value for kw in call.keywords if kw.arg == sink.keyword), None)


def _functions(module: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [
        node
        for node in ast.walk(module)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def _sink_calls(
    module: ast.Module, sinks: dict[str, Sink]
) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef | None, ast.Call, Sink]]:
    text_counts = _imports_text_of_messages(module)
    owner: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for function in _functions(module):
        for node in ast.walk(function):
            owner.setdefault(id(node), function)
    for node in ast.walk(module):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name is None or name not in sinks or (name == "Text" and not text_counts):
            continue
        yield owner.get(id(node)), node, sinks[name]


def _forwarders(modules: list[tuple[str, ast.Module]]) -> dict[str, Sink]:
    """Every function that hands one of its parameters on as a key, to a fixed point."""
    sinks = dict(SINKS)
    while True:
        added = False
        for _, module in modules:
            for function, call, sink in _sink_calls(module, sinks):
                argument = _argument(call, sink)
                if function is None or not isinstance(argument, ast.Name):
                    continue
                parameters = [a.arg for a in function.args.posonlyargs + function.args.args]
                keywords = parameters + [a.arg for a in function.args.kwonlyargs]
                if argument.id in keywords and function.name not in sinks:
                    position = parameters.index(argument.id) if argument.id in parameters else -1
                    sinks[function.name] = Sink(position, argument.id)
                    added = True
        if not added:
            return sinks


def _constants(node: ast.AST) -> tuple[set[str], set[str]]:
    """The string constants an expression may take, and the constant heads of f-strings."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    pieces = {
        id(piece)
        for part in ast.walk(node)
        if isinstance(part, ast.JoinedStr)
        for piece in part.values
    }
    for part in ast.walk(node):
        if (
            isinstance(part, ast.Constant)
            and isinstance(part.value, str)
            and id(part) not in pieces
        ):
            keys.add(part.value)
        elif isinstance(part, ast.JoinedStr):
            head = part.values[0] if part.values else None
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                prefixes.add(head.value)
    return keys, prefixes


@cache
def domain_keys() -> Found:
    modules = list(_modules())
    sinks = _forwarders(modules)
    keys: set[str] = set()
    prefixes: set[str] = set()
    unresolved: list[str] = []
    returns = {
        function.name: [n.value for n in ast.walk(function) if isinstance(n, ast.Return)]
        for _, module in modules
        for function in _functions(module)
    }
    for relative, module in modules:
        for function, call, sink in _sink_calls(module, sinks):
            argument = _argument(call, sink)
            where = f"{relative}:{call.lineno}"
            if (
                isinstance(argument, ast.Name)
                and function is not None
                and any(
                    argument.id == a.arg
                    for a in function.args.posonlyargs
                    + function.args.args
                    + function.args.kwonlyargs
                )
            ):
                continue  # a forwarder: its callers name the keys
            if isinstance(argument, ast.Call) and _name(argument.func) in returns:
                # A helper that picks the key: every string it may return.
                for value in returns[_name(argument.func) or ""]:
                    if value is not None:
                        found, heads = _constants(value)
                        keys |= found
                        prefixes |= heads
                continue
            if isinstance(argument, ast.Constant | ast.IfExp | ast.JoinedStr):
                found, heads = _constants(argument)
                keys |= found
                prefixes |= heads
                if found or heads:
                    continue
            unresolved.append(f"{where}: {ast.unparse(argument) if argument else '?'}")
    return Found(frozenset(keys), frozenset(prefixes), tuple(unresolved))


def domain_terms() -> tuple[set[str], set[str]]:
    """Words put into texts as ``Term``: their keys, and heads of keys built at run time."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    for _, module in _modules():
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and _name(node.func) == "Term" and node.args:
                found, heads = _constants(node.args[0])
                keys |= found
                prefixes |= heads
    return keys, prefixes


# --- rendering --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return create_i18n("zh_Hans")


def with_prefixes(keys: set[str], prefixes: set[str]) -> set[str]:
    known = catalog_keys("en")
    return keys | {key for key in known if any(key.startswith(head) for head in prefixes)}


def fields_of(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def literals_of(template: str) -> list[str]:
    return [text.strip() for text, _, _, _ in string.Formatter().parse(template) if text.strip()]


def sample(name: str) -> Param:
    """A value for a text's parameter, free of Chinese, so that any Chinese in the result
    comes from the text itself (or a post's title)."""
    if name == "post":
        return PostRef("unit", "lead", "Health Zone/Sunny Garden/Building 1/Unit 1")
    if name in {"id", "count", "hours", "days", "total", "done", "n"}:
        return 7
    return f"sample {name}"


def claimed(content: Text | NoticeBody, locale: str, **fields: Any) -> ClaimedMessage:
    return ClaimedMessage(
        id=1,
        chat_id=READER,
        member_id=1,
        content=content,
        actions=fields.pop("actions", ()),
        attempts=0,
        locale=locale,
        **fields,
    )


def rendered_text(renderer: TelegramRenderer, message: ClaimedMessage) -> str:
    method = renderer.render(message)
    assert isinstance(method, SendMessage)
    return method.text


def labels(renderer: TelegramRenderer, message: ClaimedMessage) -> list[str]:
    method = renderer.render(message)
    assert isinstance(method, SendMessage | CopyMessage)
    markup = method.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    return [button.text for row in markup.inline_keyboard for button in row]


def test_the_keys_of_every_queued_text_are_found_in_the_domain(i18n: I18n) -> None:
    found = domain_keys()
    assert found.unresolved == (), "teach domain_keys() this way of naming a key"
    # The messages of the issue "One messaging core", at the least.
    assert {
        "registration.superior_told",
        "registration.phone_review",
        "leave.superior_told",
        "revoke.holder_told",
        "assign.member_told",
        "claims.decide",
        "claims.approved",
        "claims.declined",
        "claims.post_taken",
        "registration.approved",
        "registration.declined",
        "outbox.unreachable",
        "notice.reminder",
        "notice.escalation",
    } <= found.keys
    missing = with_prefixes(set(found.keys), set(found.prefixes)) - catalog_keys("en")
    assert missing == set()


def queued_keys() -> list[str]:
    found = domain_keys()
    return sorted(with_prefixes(set(found.keys), set(found.prefixes)))


@pytest.mark.parametrize("key", queued_keys())
def test_an_english_reader_gets_the_english_text(i18n: I18n, key: str) -> None:
    template = i18n.gettext(key, locale="en")
    params = {name: sample(name) for name in fields_of(template)}
    renderer = TelegramRenderer(i18n)  # Chinese unless the reader's language says otherwise

    english = rendered_text(renderer, claimed(Text(key, params), "en"))
    assert CJK.search(english) is None, english
    position = 0
    for literal in literals_of(template):
        position = english.index(literal, position)  # the English catalog's words, in order
    chinese = rendered_text(renderer, claimed(Text(key, params), "zh_Hans"))
    assert CJK.search(chinese), f"{key}: the sample shows no Chinese either way"


@pytest.mark.parametrize(
    ("level", "role"), [(level.value, role.value) for level in LEVELS for role in Role]
)
def test_every_post_is_named_in_english(i18n: I18n, level: str, role: str) -> None:
    post = PostRef(level, role, "Health Zone/Sunny Garden")
    english = rendered_text(
        TelegramRenderer(i18n), claimed(Text("assign.member_told", {"post": post}), "en")
    )
    assert CJK.search(english) is None, english
    assert i18n.gettext(f"post.{level}.{role}", locale="en") in english


def test_every_word_put_into_a_text_is_english(i18n: I18n) -> None:
    keys, prefixes = domain_terms()
    terms = with_prefixes(keys, prefixes)
    assert terms, "no Term found: the search no longer matches the code"
    for term in sorted(terms):
        assert CJK.search(i18n.gettext(term, locale="en")) is None, term


def test_a_notice_keeps_its_authors_words_and_its_button_speaks_english(i18n: I18n) -> None:
    notice = NoticeContent(
        notice_id=12, kind=NoticeKind.text, text="明天停水", from_chat_id=None, message_id=None
    )
    message = claimed(
        NoticeBody(12),
        "en",
        notice=notice,
        actions=(Action(ActionKind.acknowledge_notice, 12),),
    )
    renderer = TelegramRenderer(i18n)
    header, words = rendered_text(renderer, message).split("\n\n", 1)
    assert words == "明天停水"
    assert "Notice #12" in header and CJK.search(header) is None, header
    assert labels(renderer, message) == [i18n.gettext("notice.ack_button", locale="en")]


def test_every_button_speaks_english_and_each_action_has_its_own(i18n: I18n) -> None:
    renderer = TelegramRenderer(i18n)
    english: dict[ActionKind, str] = {}
    for kind in ActionKind:
        content = Text("notice.reminder", {"id": 7})
        action = (Action(kind, 7),)
        (label,) = labels(renderer, claimed(content, "en", actions=action))
        (chinese,) = labels(renderer, claimed(content, "zh_Hans", actions=action))
        assert CJK.search(label) is None, (kind, label)
        assert label != chinese, (kind, label)
        english[kind] = label
    assert len(set(english.values())) == len(english), english
