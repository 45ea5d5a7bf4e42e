"""What a queued message says, in words no channel owns.

A message is a text of the catalogs (a key and its parameters) or a reference to a notice
(later: an alert, a need, a ladder step), with the actions its reader may take ("acknowledge
notice 12"). A channel adapter renders it at delivery, in the reader's language: the
Telegram one builds HTML and an inline keyboard; a WeCom one would build a template card.
Nothing here knows a chat, a keyboard or a callback string.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class ActionKind(StrEnum):
    acknowledge_notice = "acknowledge_notice"
    approve_claim = "approve_claim"
    decline_claim = "decline_claim"
    withdraw_claim = "withdraw_claim"
    cancel_notice = "cancel_notice"
    acknowledge_alert = "acknowledge_alert"
    take_need = "take_need"
    resolve_need = "resolve_need"
    confirm_need = "confirm_need"
    reopen_need = "reopen_need"
    nudge_late = "nudge_late"
    nudge_notice = "nudge_notice"


@dataclass(frozen=True)
class Action:
    """Something the reader can do about the message, on one record."""

    kind: ActionKind
    target_id: int


@dataclass(frozen=True)
class PostRef:
    """A post, named in the reader's language when the message is rendered."""

    level: str
    role: str
    path: str


@dataclass(frozen=True)
class Term:
    """A word of the catalogs (e.g. a kind of need), put into a text in the reader's
    language when it is rendered."""

    key: str


@dataclass(frozen=True)
class TextList:
    """Texts of the catalogs, each rendered in the reader's language, one per line: the
    lines of a list (the late units of a building) put into another text."""

    texts: tuple["Text", ...]


Param = str | int | float | PostRef | Term | TextList


@dataclass(frozen=True)
class Text:
    """A text of the catalogs: ``key`` with ``params`` filled in by the renderer."""

    key: str
    params: Mapping[str, Param] = field(default_factory=dict)


@dataclass(frozen=True)
class NoticeBody:
    """The content of a notice, as its author gave it."""

    notice_id: int


@dataclass(frozen=True)
class AlertBody:
    """An alert with its own content (the sender's words, photo or voice, or a report's
    finding); ``escalated`` when it goes on to the command centre unacknowledged."""

    alert_id: int
    escalated: bool = False


@dataclass(frozen=True)
class Chart:
    """An image the domain drew (``models.charts``), with a caption of the catalogs."""

    image_id: int
    caption: Text | None = None


Content = Text | NoticeBody | AlertBody | Chart


def encode(content: Content, actions: tuple[Action, ...] = ()) -> dict[str, Any]:
    """The JSON an outbox row keeps."""
    payload: dict[str, Any]
    if isinstance(content, NoticeBody):
        payload = {"notice": content.notice_id}
    elif isinstance(content, AlertBody):
        payload = {"alert": content.alert_id, "escalated": content.escalated}
    elif isinstance(content, Chart):
        caption = _encode_text(content.caption) if content.caption else None
        payload = {"chart": content.image_id, "caption": caption}
    else:
        payload = _encode_text(content)
    if actions:
        payload["actions"] = [[action.kind.value, action.target_id] for action in actions]
    return payload


def decode(payload: Mapping[str, Any]) -> tuple[Content, tuple[Action, ...]]:
    content: Content
    if "notice" in payload:
        content = NoticeBody(int(payload["notice"]))
    elif "alert" in payload:
        content = AlertBody(int(payload["alert"]), bool(payload.get("escalated")))
    elif "chart" in payload:
        caption = payload.get("caption")
        content = Chart(int(payload["chart"]), _decode_text(caption) if caption else None)
    else:
        content = _decode_text(payload)
    actions = tuple(
        Action(ActionKind(kind), int(target)) for kind, target in payload.get("actions") or ()
    )
    return content, actions


def _encode_text(text: Text) -> dict[str, Any]:
    return {"key": text.key, "params": {k: _encode_param(v) for k, v in text.params.items()}}


def _decode_text(payload: Mapping[str, Any]) -> Text:
    params = {k: _decode_param(v) for k, v in dict(payload.get("params") or {}).items()}
    return Text(str(payload["key"]), params)


# Most parameters are plain: one type check, ahead of the others, for each of thousands.
_PLAIN = frozenset((str, int, float))


def _encode_param(value: Param) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, PostRef):
        return {"post": [value.level, value.role, value.path]}
    if isinstance(value, TextList):
        return {"texts": [_encode_text(text) for text in value.texts]}
    if isinstance(value, Term):
        return {"term": value.key}
    return value


def _decode_param(value: Any) -> Param:
    if isinstance(value, dict) and "post" in value:
        level, role, path = value["post"]
        return PostRef(str(level), str(role), str(path))
    if isinstance(value, dict) and "term" in value:
        return Term(str(value["term"]))
    if isinstance(value, dict) and "texts" in value:
        return TextList(tuple(_decode_text(text) for text in value["texts"]))
    if isinstance(value, str | int | float):
        return value
    return str(value)


class MessagesWaiting(Protocol):
    """Told after a commit that queued messages, so that delivery starts at once instead of
    at the sender's next look; the outbox sender implements it."""

    def wake(self) -> None: ...
