"""Every benchmark, one after another, each in a process of its own; writes BENCHMARKS.md,
and BENCHMARKS.json beside it (the same outcomes, machine-readable).

    python -m benchmarks [--quick] [--only NAME ...] [--out BENCHMARKS.md]
                         [--postgres URL] [--note TEXT] [--timeout SECONDS]

Each benchmark's last line of output is one JSON object; its figures are compared with the
targets of the issues (the table below, the one place they are kept). A benchmark that
fails is written as failed, with the last line of its error. ``--quick`` runs small scales
(what a test can afford); the default runs the issues' scales. A benchmark whose module is
not in this checkout (``soak`` until it lands) is left out and named as such. The benchmarks
a run does not run (``--only``) keep their latest outcomes, read from the JSON file an earlier
run wrote, so that BENCHMARKS.md always holds every benchmark's latest figures.
"""

import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import record
from benchmarks.report import (
    ROOT,
    NotRun,
    Outcome,
    Ran,
    Target,
    at_least,
    below,
    machine,
    markdown,
    own_database,
    zero,
)


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    # "{database}" stands for a PostgreSQL database of the run's own, "{redis}" for --redis:
    # such a benchmark runs only when --postgres names a server.
    arguments: list[str]
    quick: list[str]
    targets: list[Target]

    @property
    def needs_postgres(self) -> bool:
        return any("{database}" in argument for argument in self.arguments + self.quick)


SOAK = [
    Target("confirmed_reports", "reports the bot confirmed"),
    Target("reports_lost", "reports lost", "0", zero),
    Target("notices_lost", "notices lost", "0", zero),
    Target("notice_repeats", "notice repeats (within the in-flight bound)"),
    Target("ladder_duplicates", "ladder steps fired twice", "0", zero),
    Target("ladder_missed", "ladder steps missed", "0", zero),
    Target("group_leaks", "household answers in group chats", "0", zero),
    Target("kills", "SIGKILLs", "3", lambda value: int(value) == 3),
]

# The targets, as the issues set them (issue numbers in the labels' sources: roster #2,
# broadcast #4 and #7, updates #9, chase #10, soak #12, console #13; directory: none set).
BENCHMARKS = [
    Benchmark(
        "roster",
        "benchmarks.roster",
        ["--scale", "1"],
        ["--scale", "1", "--households-per-unit", "2"],
        [
            Target("households", "households"),
            Target("import_s", "import, s", "< 10 s", below(10)),
            Target("subtree_query_ms", "households under a zone, median ms", "< 20 ms", below(20)),
            Target("rss_mb", "peak RSS, MB", "< 300 MB", below(300)),
        ],
    ),
    Benchmark(
        "roster-x10",
        "benchmarks.roster",
        ["--scale", "10"],
        ["--scale", "2", "--households-per-unit", "2"],
        [
            Target("households", "households"),
            Target("import_s", "import, s", "< 100 s", below(100)),
            Target("subtree_query_ms", "households under a zone, median ms"),
            Target("rss_mb", "peak RSS, MB"),
        ],
    ),
    Benchmark(
        "broadcast",
        "benchmarks.broadcast",
        ["--scale-time", "10", "--recipients", "8202"],
        ["--scale-time", "20", "--recipients", "200"],
        [
            Target("recipients", "recipients"),
            Target("limit_per_s", "Telegram's limit, msg/s"),
            Target("rate_per_s", "paced rate, msg/s (Telegram time)"),
            Target("ratio", "paced rate / limit", "≥ 0.93", at_least(0.93)),
            Target("lost", "lost", "0", zero),
            Target("duplicates", "duplicates", "0", zero),
            Target("rejected_429", "429 answers", "0", zero),
            Target("baseline_rate_per_s", "naive loop, msg/s"),
            Target("ceiling_per_s", "sender ceiling, msg/s", "≥ 1,000", at_least(1000)),
        ],
    ),
    Benchmark(
        "chase",
        "benchmarks.chase",
        ["--scale", "1"],
        ["--scale", "1", "--runs", "1"],
        [
            Target("households", "households"),
            Target("sweep_ms", "slowest ladder step, median ms", "< 100 ms", below(100)),
            Target("households_x10", "households ×10"),
            Target("sweep_ms_x10", "slowest step ×10, median ms", "< 1,000 ms", below(1000)),
            Target("sweep_cpu_ms", "slowest step's sweep, CPU ms"),
            Target("sweep_cpu_ms_x10", "same ×10, CPU ms"),
            Target("record_ms", "step's own transaction, ms"),
            Target("record_ms_x10", "same ×10, ms"),
            Target("longest_transaction_ms", "longest between two commits, ms"),
            Target("longest_transaction_ms_x10", "same ×10, ms"),
            Target("all_queued_ms", "sweeps until all messages queued, ms"),
            Target("all_queued_ms_x10", "same ×10, ms"),
        ],
    ),
    Benchmark(
        "directory",
        "benchmarks.directory",
        ["--scale", "1"],
        ["--scale", "1", "--repeat", "3"],
        [
            Target("posts", "posts"),
            *(
                Target(f"{query}.{figure}", f"{label}, {figure.removesuffix('_ms')} ms")
                for query, label in (
                    ("tap_county", "/tree tap, the county"),
                    ("tap_zone", "/tree tap, a zone"),
                    ("tap_grid", "/tree tap, a grid"),
                    ("whois_name", "/whois a name"),
                    ("whois_phone", "/whois a full phone"),
                    ("whois_last4", "/whois a phone's last 4 digits"),
                )
                for figure in ("median_ms", "p95_ms")
            ),
        ],
    ),
    Benchmark(
        "updates",
        "benchmarks.updates",
        ["--leads", "2899", "--rate", "450", "--concurrency", "64"],
        ["--leads", "40", "--rate", "100", "--concurrency", "8"],
        [
            Target("processes", "processes (one a core), a dispatcher each, one database"),
            Target("updates", "updates fed at load", "≥ 10,000", at_least(10_000)),
            Target("offered_per_s", "updates arriving a second"),
            Target("updates_per_s", "updates/s served at load", "≥ 400", at_least(400)),
            Target("p95_ms", "p95 latency from arrival, ms", "< 50 ms", below(50)),
            Target("echo_updates_per_s", "echo handler, updates/s"),
            Target("ratio", "updates/s served ÷ echo"),
            Target("capacity_updates_per_s", "capacity (64 always in flight), updates/s"),
            Target("capacity_p95_ms", "capacity run: p95, ms (64 / rate by construction)"),
            Target("capacity_ratio", "capacity ÷ echo"),
        ],
    ),
    Benchmark(
        "updates-postgresql",
        "benchmarks.updates",
        ["--database", "{database}", "--leads", "2899", "--rate", "150", "--concurrency", "64"],
        ["--database", "{database}", "--leads", "40", "--rate", "100", "--concurrency", "8"],
        [
            Target("processes", "processes (one a core), a dispatcher each, one database"),
            Target("updates", "updates fed at load"),
            Target("offered_per_s", "updates arriving a second (the county's peak)"),
            Target("updates_per_s", "updates/s served (the targets are set on SQLite)"),
            Target("p95_ms", "p95 latency from arrival, ms"),
            Target("echo_updates_per_s", "echo handler, updates/s"),
            Target("capacity_updates_per_s", "capacity (64 always in flight), updates/s"),
            Target("capacity_p95_ms", "capacity run: p95, ms"),
            Target("capacity_ratio", "capacity ÷ echo"),
        ],
    ),
    Benchmark(
        "console",
        "benchmarks.console",
        ["--viewers", "50", "--rate", "100", "--seconds", "8", "--pairs", "3"],
        ["--viewers", "3", "--rate", "20", "--seconds", "1", "--pairs", "1"],
        [
            Target("page_data_ms", "county page data, median ms", "< 200 ms", below(200)),
            Target("page_data_cold_ms", "same, first build, ms"),
            Target("saves_per_s_alone", "report saves/s alone, median of the windows"),
            Target("saves_per_s_with_viewers", "report saves/s with the viewers, median"),
            Target("drop", "drop with the viewers, median of the pairs", "< 0.10", below(0.10)),
            Target("paced_achieved_per_s", "paced at 100/s with the viewers: achieved"),
            Target("paced_p95_ms", "paced: p95 ms"),
        ],
    ),
    Benchmark("soak", "benchmarks.soak", [], ["--units", "12"], SOAK),
    Benchmark(
        "soak-replicas",
        "benchmarks.soak",
        ["--database", "{database}", "--redis", "{redis}", "--replicas", "2"],
        ["--database", "{database}", "--redis", "{redis}", "--replicas", "2", "--units", "12"],
        SOAK,
    ),
]


def present(benchmark: Benchmark) -> bool:
    return importlib.util.find_spec(benchmark.module) is not None


def command_of(benchmark: Benchmark, quick: bool, database: str = "", redis: str = "") -> list[str]:
    arguments = benchmark.quick if quick else benchmark.arguments
    filled = [a.replace("{database}", database).replace("{redis}", redis) for a in arguments]
    return ["python", "-m", benchmark.module, *filled]


def last_json(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def run_one(
    benchmark: Benchmark,
    quick: bool,
    timeout: float,
    database: str = "",
    redis: str = "",
    aside: Sequence[Path] = (),
) -> Outcome:
    """The benchmark in a process of its own; its output goes on to stderr as it comes (the
    progress) and is kept (the JSON line, or the error's last line), with when and where it
    ran (``aside``: the files the run writes, which do not make the checkout dirty)."""
    command = command_of(benchmark, quick, database, redis)
    print(f"== {benchmark.name}: {shlex.join(command)}", file=sys.stderr, flush=True)
    date, load_start = record.now(), record.load()
    commit, dirty = record.checkout(aside)
    started = time.monotonic()
    outcome = Outcome(benchmark.name, command, 0.0, targets=benchmark.targets, quick=quick)
    process = subprocess.Popen(
        [sys.executable, *command[1:]],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(line)
            output.append(line)
        returncode = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    outcome.seconds = time.monotonic() - started
    outcome.ran = Ran(date, commit, dirty, load_start, record.load())
    text = "".join(output)
    figures = last_json(text)
    if outcome.seconds >= timeout:
        outcome.error = f"stopped after {timeout:.0f} s (--timeout)"
    elif returncode != 0:
        outcome.error = f"exit {returncode}: {last_line(text)}"
    elif figures is None:
        outcome.error = f"no JSON line: {last_line(text)}"
    else:
        outcome.figures = figures
    return outcome


def earlier_outcomes(path: Path) -> dict[str, Outcome]:
    """What the run before wrote, or nothing (said on stderr) when there is none to read."""
    if not path.exists():
        print(f"== no {path} yet: it is written now", file=sys.stderr)
        return {}
    try:
        return record.read(path, {benchmark.name: benchmark.targets for benchmark in BENCHMARKS})
    except record.Unreadable as error:
        print(
            f"== {path} cannot be read, so no earlier figures are carried over and it is "
            f"written afresh: {error}",
            file=sys.stderr,
        )
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small scales, for tests")
    names = [benchmark.name for benchmark in BENCHMARKS]
    parser.add_argument(
        "--only",
        nargs="+",
        choices=names,
        metavar="NAME",
        help=f"{names}; the others keep their figures from the earlier run's JSON file",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "BENCHMARKS.md", help="the JSON file goes beside it"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="a PostgreSQL server (postgresql+asyncpg://…; default $TEST_DATABASE_URL): its "
        "version is named, and the PostgreSQL benchmarks run in databases made on it",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="for the replicas")
    parser.add_argument("--note", default="", help="a paragraph for the file's head")
    parser.add_argument("--timeout", type=float, default=3600, help="per benchmark, seconds")
    arguments = parser.parse_args(argv)
    if arguments.out.suffix == ".json":
        parser.error("--out names the markdown file; the JSON file is written beside it")
    json_path = record.path_beside(arguments.out)
    started = record.now()
    host = machine(arguments.postgres)
    chosen = [b for b in BENCHMARKS if not arguments.only or b.name in arguments.only]
    latest = earlier_outcomes(json_path)
    failed = False
    left_out: list[str] = []
    shown = shlex.join(
        ["python", "-m", "benchmarks", *(argv if argv is not None else sys.argv[1:])]
    )

    def write(finished: bool) -> None:
        """Both files as they stand; written after each benchmark, so that a run cut short
        still leaves what it measured."""
        note = arguments.note
        if left_out:
            note = (note + "\n\n" if note else "") + "Not run: " + "; ".join(left_out) + "."
        if not finished:
            note = (note + "\n\n" if note else "") + "**Unfinished**: the run goes on."
        entries = [
            latest.get(b.name)
            or NotRun(b.name, command_of(b, arguments.quick, "DATABASE_URL", "REDIS_URL"))
            for b in BENCHMARKS
        ]
        text = markdown(entries, host, started, shown, note)
        arguments.out.write_text(text, encoding="utf-8")
        outcomes = [entry for entry in entries if isinstance(entry, Outcome)]
        record.write(json_path, outcomes, record.now(), shown)

    for benchmark in chosen:
        outcome = None
        if not present(benchmark):
            left_out.append(f"{benchmark.name} (`{benchmark.module}` is not in this checkout)")
        elif benchmark.needs_postgres and not arguments.postgres:
            left_out.append(f"{benchmark.name} (no PostgreSQL server: give --postgres)")
        elif benchmark.needs_postgres:
            with own_database(arguments.postgres, benchmark.name) as database:
                outcome = run_one(
                    benchmark,
                    arguments.quick,
                    arguments.timeout,
                    database,
                    arguments.redis,
                    aside=(arguments.out, json_path),
                )
        else:
            outcome = run_one(
                benchmark, arguments.quick, arguments.timeout, aside=(arguments.out, json_path)
            )
        if outcome is not None:
            latest[benchmark.name] = outcome
            failed = failed or outcome.error is not None
        write(finished=False)
    for line in left_out:
        print(f"== not run: {line}", file=sys.stderr)
    write(finished=True)
    print(f"wrote {arguments.out} and {json_path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
