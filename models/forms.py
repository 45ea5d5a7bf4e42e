"""The household report form as data: its fields, alert rules and needs, and what a saved
report's answers match."""

from dataclasses import dataclass


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
