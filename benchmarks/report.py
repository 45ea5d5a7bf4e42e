"""What ``python -m benchmarks`` writes: the machine a run was on, and ``BENCHMARKS.md``."""

import asyncio
import contextlib
import os
import platform
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    """One figure a benchmark prints, and what the issue asks of it (None: shown, no target)."""

    key: str
    label: str
    target: str | None = None
    met: Callable[[Any], bool] | None = None


def below(limit: float) -> Callable[[Any], bool]:
    return lambda value: float(value) < limit


def at_least(limit: float) -> Callable[[Any], bool]:
    return lambda value: float(value) >= limit


def zero(value: Any) -> bool:
    return float(value) == 0


@dataclass(frozen=True)
class Ran:
    """When and where one benchmark ran."""

    date: str  # UTC, to the minute
    commit: str  # short
    dirty: bool  # tracked files differed from the commit (the runner's own output aside)
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]

    def said(self, quick: bool) -> str:
        return (
            f"{self.date} (UTC) at `{self.commit}`"
            + (" with changes not committed" if self.dirty else "")
            + (", at quick scales" if quick else "")
            + f"; load average (1, 5, 15 min) {_loads(self.load_start)} at its start, "
            f"{_loads(self.load_end)} at its end."
        )


def _loads(load: Sequence[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in load)


@dataclass
class Outcome:
    name: str
    command: list[str]
    seconds: float
    figures: dict[str, Any] | None = None
    error: str | None = None
    targets: Sequence[Target] = field(default_factory=list)
    quick: bool = False
    ran: Ran | None = None
    # Carried over from the file an earlier run wrote: this run did not run the benchmark.
    earlier: bool = False

    def verdicts(self) -> list[tuple[Target, Any, bool | None]]:
        """(target, value, met) for each figure of the table; met is None without a target
        or without the figure (the benchmark no longer prints it)."""
        figures = self.figures or {}
        rows = []
        for target in self.targets:
            # "tap_zone.median_ms": a figure inside a figure.
            value: Any = figures
            for part in target.key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            met = None
            if target.met is not None and value is not None:
                met = bool(target.met(value))
            rows.append((target, value, met))
        return rows


@dataclass(frozen=True)
class NotRun:
    """A benchmark with no outcome yet, from this run or an earlier one."""

    name: str
    command: list[str]


def machine(postgres_url: str | None) -> dict[str, str]:
    """What stays the same from run to run; each benchmark's commit and load are its own."""
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "RAM": _memory(),
        "OS": _os_name(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": _postgres_version(postgres_url),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    pretty = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    kernel = f"{platform.system()} {platform.release()}"
    return f"{pretty} ({kernel})" if pretty else kernel


def _postgres_version(url: str | None) -> str:
    """The server's version when ``url`` answers, else the client tools' version."""
    if url:
        try:
            return asyncio.run(_server_version(url))
        except Exception as error:
            reason = f"server at the given URL did not answer: {type(error).__name__}"
    else:
        reason = "no server URL given (--postgres)"
    for tool in ("postgres", "psql"):
        path = shutil.which(tool)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
            return f"{out.stdout.strip()} ({reason})"
    return f"not found ({reason})"


async def _server_version(url: str) -> str:
    import asyncpg

    plain = make_url(url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(plain)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


@contextlib.contextmanager
def own_database(server_url: str, name: str) -> Iterator[str]:
    """A fresh database on the server for one benchmark (which empties and fills the one it
    is given), dropped afterwards; yields its URL."""
    database = "wuji_bench_" + "".join(c if c.isalnum() else "_" for c in name)
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{database}"'))
    try:
        yield str(make_url(server_url).set(database=database).render_as_string(False))
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def _admin(server_url: str, statement: str) -> None:
    import asyncpg

    url = make_url(server_url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: ""}[met]


def _ran(outcome: Outcome) -> str:
    if outcome.ran is None or not outcome.earlier:
        return "this run"
    return f"earlier: {outcome.ran.date}, `{outcome.ran.commit}`"


def markdown(
    entries: Sequence[Outcome | NotRun],
    host: dict[str, str],
    started: str,
    command: str,
    note: str,
) -> str:
    """``entries`` in the table's order: what this run measured, what it carried over from an
    earlier run's file (``Outcome.earlier``), and the benchmarks never run."""
    outcomes = [entry for entry in entries if isinstance(entry, Outcome)]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {started} (UTC). Every figure below is what one run "
        "printed as its last JSON line; each benchmark ran in a process of its own, one after "
        "another. The command under each heading reproduces its figures. A benchmark this run "
        "did not run keeps the figures of the latest run that did (the column *ran* and its "
        "section say when, and at which commit).",
        "",
    ]
    quick = [outcome.name for outcome in outcomes if outcome.quick]
    if quick:
        lines += [
            f"**Quick scales** (`--quick`) for {', '.join(quick)}: smaller than the issues', "
            "so the verdicts say nothing about the targets, which are set for the issues' "
            "scales.",
            "",
        ]
    if note:
        lines += [note, ""]
    lines += ["## The machine", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in host.items()]
    met = sum(1 for o in outcomes for _, _, m in o.verdicts() if m)
    missed = sum(1 for o in outcomes for _, _, m in o.verdicts() if m is False)
    failed = [o.name for o in outcomes if o.error is not None]
    never = [entry.name for entry in entries if isinstance(entry, NotRun)]
    lines += [
        "",
        "## Summary",
        "",
        f"{met} targets met, {missed} not met"
        + (f"; failed: {', '.join(failed)}" if failed else "; no benchmark failed")
        + (f"; not run yet: {', '.join(never)}" if never else "")
        + ".",
        "",
        "| benchmark | figure | measured | target | | ran |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries:
        if isinstance(entry, NotRun):
            lines.append(f"| {entry.name} | — | not run yet | | | |")
        elif entry.error is not None:
            lines.append(f"| {entry.name} | — | **failed** | | {entry.error} | {_ran(entry)} |")
        else:
            for target, value, verdict in entry.verdicts():
                if target.target is not None:
                    lines.append(
                        f"| {entry.name} | {target.label} | {_shown(value)} | {target.target} "
                        f"| {_verdict(verdict)} | {_ran(entry)} |"
                    )
    for entry in entries:
        lines += ["", f"## {entry.name}", "", "```sh", " ".join(entry.command), "```", ""]
        if isinstance(entry, NotRun):
            lines += ["Not run yet."]
            continue
        lines += _section(entry)
    return "\n".join(lines) + "\n"


def _section(outcome: Outcome) -> list[str]:
    lines: list[str] = []
    if outcome.ran is not None:
        lines += [
            ("From an earlier run: ran" if outcome.earlier else "Ran")
            + f" on {outcome.ran.said(outcome.quick)}",
            "",
        ]
    if outcome.error is not None:
        return [*lines, f"**Failed** after {outcome.seconds:.0f} s: `{outcome.error}`"]
    lines += [
        f"Took {outcome.seconds:.0f} s.",
        "",
        "| figure | key | measured | target | |",
        "|---|---|---|---|---|",
    ]
    for target, value, verdict in outcome.verdicts():
        lines.append(
            f"| {target.label} | `{target.key}` | {_shown(value)} | {target.target or ''} "
            f"| {_verdict(verdict)} |"
        )
    known = {target.key.split(".")[0] for target in outcome.targets}
    others = {k: v for k, v in (outcome.figures or {}).items() if k not in known}
    if others:
        lines += [
            "",
            "Also printed: " + ", ".join(f"`{k}` {_shown(v)}" for k, v in others.items()),
        ]
    return lines
