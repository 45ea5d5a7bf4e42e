"""``python -m benchmarks``: every benchmark in a process of its own, its last JSON line read,
BENCHMARKS.md written with each figure, its target, the machine and the command."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.__main__ import BENCHMARKS, Benchmark, last_json, run_one
from benchmarks.report import ROOT, Outcome, Target, below, markdown


def test_the_last_json_object_line_is_the_figures() -> None:
    output = 'seeding…\n{"a": 1}\n{"import_s": 2.5, "rss_mb": 90}\nbye\n[1, 2]\n{broken\n'
    assert last_json(output) == {"import_s": 2.5, "rss_mb": 90}
    assert last_json("no figures at all\n") is None


def test_every_benchmark_module_on_main_is_in_the_table() -> None:
    modules = {benchmark.module for benchmark in BENCHMARKS}
    on_disk = {
        f"benchmarks.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "benchmarks").iterdir()
        if (path.suffix == ".py" and path.stem not in {"__init__", "__main__", "report", "record"})
        or (path.is_dir() and (path / "__main__.py").exists())
    }
    assert on_disk <= modules


def test_a_failing_benchmark_is_written_as_failed_with_its_last_error_line() -> None:
    broken = Benchmark("broken", "benchmarks.no_such_benchmark", [], [], [])
    outcome = run_one(broken, quick=True, timeout=60)
    assert outcome.figures is None
    assert outcome.error is not None
    assert outcome.error.startswith("exit 1:")
    assert "No module named benchmarks.no_such_benchmark" in outcome.error
    text = markdown([outcome], {"CPU": "x"}, "2026-12-03 10:00", "python -m benchmarks", "")
    assert "| broken | — | **failed** |" in text
    assert "No module named benchmarks.no_such_benchmark" in text


def test_a_missed_target_is_marked_and_a_figure_without_one_is_shown() -> None:
    outcome = Outcome(
        "chase",
        ["python", "-m", "benchmarks.chase", "--scale", "1"],
        12.0,
        figures={"sweep_ms": 400.0, "households": 34788, "extra": 3},
        targets=[
            Target("households", "households"),
            Target("sweep_ms", "slowest step, ms", "< 100 ms", below(100)),
        ],
    )
    text = markdown([outcome], {"CPU": "x"}, "2026-12-03 10:00", "python -m benchmarks", "")
    assert "| chase | slowest step, ms | 400.0 | < 100 ms | **not met** |" in text
    assert "| households | `households` | 34,788 |  |  |" in text
    assert "python -m benchmarks.chase --scale 1" in text
    assert "`extra` 3" in text
    assert "0 targets met, 1 not met" in text


def test_quick_roster_run_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "roster", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    for heading in ("CPU", "cores", "RAM", "OS", "Python", "SQLite", "PostgreSQL"):
        assert f"| {heading}" in text
    assert "load average (1, 5, 15 min)" in text.split("## roster\n")[1]
    assert "python -m benchmarks.roster --scale 1 --households-per-unit 2" in text
    assert "| roster | import, s |" in text
    assert "| < 10 s | met |" in text or "| < 10 s | **not met** |" in text
    assert "Quick scales" in text
    assert "no benchmark failed" in text
    # Written after each benchmark; the last write is the finished file.
    assert "Unfinished" not in text
    [roster] = json.loads(out.with_suffix(".json").read_text())["benchmarks"].values()
    assert roster["quick"] is True and roster["figures"]["households"] > 0


def test_a_figure_inside_a_figure_is_read_by_its_dotted_key() -> None:
    outcome = Outcome(
        "directory",
        ["python", "-m", "benchmarks.directory"],
        5.0,
        figures={"tap_zone": {"median_ms": 12.5, "p95_ms": 30.0}, "posts": 8202},
        targets=[Target("tap_zone.median_ms", "tap, a zone, median ms", "< 20 ms", below(20))],
    )
    [(_, value, met)] = outcome.verdicts()
    assert value == 12.5 and met is True
    text = markdown([outcome], {"CPU": "x"}, "2026-12-03 10:00", "python -m benchmarks", "")
    assert "| tap, a zone, median ms | `tap_zone.median_ms` | 12.5 | < 20 ms | met |" in text
    assert "`posts` 8,202" in text and "`tap_zone`" not in text.split("Also printed")[1]
