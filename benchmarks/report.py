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


@dataclass
class Outcome:
    name: str
    command: list[str]
    seconds: float
    figures: dict[str, Any] | None = None
    error: str | None = None
    targets: Sequence[Target] = field(default_factory=list)

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


def machine(postgres_url: str | None) -> dict[str, str]:
    load = os.getloadavg()
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "RAM": _memory(),
        "OS": _os_name(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": _postgres_version(postgres_url),
        "load average at start (1, 5, 15 min)": ", ".join(f"{value:.2f}" for value in load),
        "commit": _commit(),
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


def _commit() -> str:
    out = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


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


def markdown(
    outcomes: Sequence[Outcome],
    host: dict[str, str],
    started: str,
    command: str,
    quick: bool,
    note: str,
) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {started} (UTC). Every figure below is what one run "
        "printed as its last JSON line; each benchmark ran in a process of its own, one after "
        "another. The command under each heading reproduces its figures.",
        "",
    ]
    if quick:
        lines += [
            "**Quick scales** (`--quick`): smaller than the issues', so the verdicts say "
            "nothing about the targets, which are set for the issues' scales.",
            "",
        ]
    if note:
        lines += [note, ""]
    lines += ["## The machine", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in host.items()]
    met = sum(1 for o in outcomes for _, _, m in o.verdicts() if m)
    missed = sum(1 for o in outcomes for _, _, m in o.verdicts() if m is False)
    failed = [o.name for o in outcomes if o.error is not None]
    lines += [
        "",
        "## Summary",
        "",
        f"{met} targets met, {missed} not met"
        + (f"; failed: {', '.join(failed)}" if failed else "; no benchmark failed")
        + ".",
        "",
        "| benchmark | figure | measured | target | |",
        "|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        if outcome.error is not None:
            lines.append(f"| {outcome.name} | — | **failed** | | {outcome.error} |")
            continue
        for target, value, verdict in outcome.verdicts():
            if target.target is None:
                continue
            lines.append(
                f"| {outcome.name} | {target.label} | {_shown(value)} | {target.target} "
                f"| {_verdict(verdict)} |"
            )
    for outcome in outcomes:
        lines += ["", f"## {outcome.name}", "", "```sh", " ".join(outcome.command), "```", ""]
        if outcome.error is not None:
            lines += [f"**Failed** after {outcome.seconds:.0f} s: `{outcome.error}`"]
            continue
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
    return "\n".join(lines) + "\n"
