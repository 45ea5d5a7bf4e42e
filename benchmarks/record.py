"""Every benchmark's latest outcome, machine-readable, beside BENCHMARKS.md (``--out`` with
``.json`` for its suffix): what a run with ``--only`` carries over for the benchmarks it does
not run, so that BENCHMARKS.md always holds every benchmark's latest figures."""

import os
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from benchmarks.report import ROOT, Outcome, Ran, Target


class Entry(BaseModel):
    """One benchmark's outcome as a run wrote it."""

    command: list[str]
    figures: dict[str, Any] | None
    error: str | None
    seconds: float
    quick: bool
    date: str
    commit: str
    dirty: bool
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]


class Record(BaseModel):
    written: str
    command: str
    benchmarks: dict[str, Entry]


class Unreadable(Exception):
    """The file is there but is not a record a run wrote (its reason is the message)."""


def path_beside(out: Path) -> Path:
    return out.with_suffix(".json")


def read(path: Path, targets: Mapping[str, Sequence[Target]]) -> dict[str, Outcome]:
    """The outcomes of the benchmarks in ``targets`` (benchmarks since removed are left out),
    each marked as from an earlier run."""
    try:
        record = Record.model_validate_json(path.read_bytes())
    except OSError as error:
        raise Unreadable(str(error)) from error
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise Unreadable(f"{where}: {first['msg']}{more}") from error
    return {
        name: Outcome(
            name,
            entry.command,
            entry.seconds,
            entry.figures,
            entry.error,
            targets[name],
            quick=entry.quick,
            ran=Ran(entry.date, entry.commit, entry.dirty, entry.load_start, entry.load_end),
            earlier=True,
        )
        for name, entry in record.benchmarks.items()
        if name in targets
    }


def write(path: Path, outcomes: Sequence[Outcome], written: str, command: str) -> None:
    """Through a file beside it, so that a run stopped while writing leaves the last one whole."""
    entries = {
        outcome.name: Entry(
            command=outcome.command,
            figures=outcome.figures,
            error=outcome.error,
            seconds=round(outcome.seconds, 1),
            quick=outcome.quick,
            date=outcome.ran.date,
            commit=outcome.ran.commit,
            dirty=outcome.ran.dirty,
            load_start=outcome.ran.load_start,
            load_end=outcome.ran.load_end,
        )
        for outcome in outcomes
        if outcome.ran is not None
    }
    record = Record(written=written, command=command, benchmarks=entries)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M")


def load() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def checkout(aside: Sequence[Path] = ()) -> tuple[str, bool]:
    """The commit the checkout is at, and whether its tracked files differ from it; the files
    in ``aside`` (what the run itself writes, BENCHMARKS.md among them) do not count."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit is None:
        return "unknown", False
    inside = [path.resolve() for path in aside if path.resolve().is_relative_to(ROOT)]
    excluded = [f":(exclude){path.relative_to(ROOT)}" for path in inside]
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return commit, bool(status)


def _git(*arguments: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None
