"""``python -m benchmarks --only …`` keeps the other benchmarks' latest outcomes: it reads them
from the JSON file the earlier run wrote beside BENCHMARKS.md, and marks them as carried over
with their date and commit. Fake benchmark modules (a print each) stand for the real ones."""

import json
import subprocess
from pathlib import Path

import pytest

import benchmarks.__main__ as runner
from benchmarks.__main__ import Benchmark
from benchmarks.report import ROOT, Target, at_least

SPEED = [Target("speed", "speed, per s", "≥ 10", at_least(10))]


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Four benchmarks in modules of their own: alpha, beta and gamma print figures, delta
    fails; the runner's table holds only them."""
    modules = tmp_path / "modules"
    modules.mkdir()
    for name, body in (
        ("alpha", 'print("warming up")\nprint(\'{"speed": 12}\')'),
        ("beta", 'print(\'{"speed": 7, "extra": 1}\')'),
        ("gamma", "print('{\"speed\": 30}')"),
        ("delta", "raise SystemExit('delta broke')"),
    ):
        (modules / f"fake_{name}.py").write_text(body + "\n")
    monkeypatch.syspath_prepend(str(modules))
    monkeypatch.setenv("PYTHONPATH", str(modules))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.setattr(
        runner,
        "BENCHMARKS",
        [
            Benchmark(name, f"fake_{name}", ["--full"], ["--small"], SPEED)
            for name in ("alpha", "beta", "gamma", "delta")
        ],
    )
    return tmp_path / "BENCHMARKS.md"


def rows(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"| {name} |")]


def section(text: str, name: str) -> str:
    return text.split(f"\n## {name}\n")[1].split("\n## ")[0]


def test_only_keeps_the_other_benchmarks_figures_from_the_json_file(
    fakes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path = fakes.with_suffix(".json")
    assert runner.main(["--only", "alpha", "beta", "delta", "--out", str(fakes)]) == 1
    assert f"no {json_path} yet" in capsys.readouterr().err
    first = json.loads(json_path.read_text())["benchmarks"]
    assert list(first) == ["alpha", "beta", "delta"]
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert first["alpha"]["command"] == ["python", "-m", "fake_alpha", "--full"]
    assert first["alpha"]["figures"] == {"speed": 12}
    assert first["alpha"]["error"] is None and first["alpha"]["seconds"] >= 0
    assert first["alpha"]["commit"] == head and isinstance(first["alpha"]["dirty"], bool)
    assert len(first["alpha"]["load_start"]) == len(first["alpha"]["load_end"]) == 3
    assert first["delta"]["figures"] is None and "delta broke" in first["delta"]["error"]
    text = fakes.read_text()
    assert rows(text, "gamma") == ["| gamma | — | not run yet | | | |"]
    assert "Not run yet." in section(text, "gamma")

    # As if beta and delta had run days ago, at another commit.
    record = json.loads(json_path.read_text())
    for name in ("beta", "delta"):
        record["benchmarks"][name] |= {"date": "2026-11-30 09:15", "commit": "abc1234"}
    record["benchmarks"]["beta"]["load_start"] = [7.5, 6.25, 5.0]
    json_path.write_text(json.dumps(record))
    (fakes.parent / "modules" / "fake_alpha.py").write_text("print('{\"speed\": 9.5}')\n")

    # delta's failure is carried over, not this run's: the run succeeds.
    assert runner.main(["--only", "alpha", "--out", str(fakes)]) == 0
    after = json.loads(json_path.read_text())["benchmarks"]
    assert after["alpha"]["figures"] == {"speed": 9.5}
    assert after["beta"] == record["benchmarks"]["beta"]
    assert after["delta"] == record["benchmarks"]["delta"]
    assert "gamma" not in after

    text = fakes.read_text()
    assert rows(text, "alpha") == ["| alpha | speed, per s | 9.5 | ≥ 10 | **not met** | this run |"]
    assert rows(text, "beta") == [
        "| beta | speed, per s | 7 | ≥ 10 | **not met** | earlier: 2026-11-30 09:15, `abc1234` |"
    ]
    assert rows(text, "delta")[0].startswith("| delta | — | **failed** |")
    assert rows(text, "delta")[0].endswith("| earlier: 2026-11-30 09:15, `abc1234` |")
    assert rows(text, "gamma") == ["| gamma | — | not run yet | | | |"]
    beta = section(text, "beta")
    assert "python -m fake_beta --full" in beta
    assert "From an earlier run: ran on 2026-11-30 09:15 (UTC) at `abc1234`" in beta
    assert "7.50, 6.25, 5.00 at its start" in beta and "`extra` 1" in beta
    assert section(text, "alpha").startswith("\n```sh\npython -m fake_alpha --full\n```\n\nRan on ")
    assert f"at `{head}`" in section(text, "alpha")
    assert "0 targets met, 2 not met; failed: delta; not run yet: gamma." in text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"written": "2026-12-01 10:00", "benchm', "Invalid JSON"),
        ("[1, 2]", "the file"),
        (
            json.dumps(
                {
                    "written": "2026-12-01 10:00",
                    "command": "python -m benchmarks",
                    "benchmarks": {"beta": {"command": ["python"], "figures": {"speed": 1}}},
                }
            ),
            "benchmarks.beta.error: Field required",
        ),
    ],
    ids=["cut short", "not an object", "a field missing"],
)
def test_an_unreadable_json_file_is_said_and_written_afresh(
    fakes: Path, capsys: pytest.CaptureFixture[str], content: str, reason: str
) -> None:
    json_path = fakes.with_suffix(".json")
    json_path.write_text(content)
    assert runner.main(["--only", "alpha", "--out", str(fakes)]) == 0
    err = capsys.readouterr().err
    assert f"{json_path} cannot be read, so no earlier figures are carried over" in err
    assert reason in err and "Traceback" not in err
    assert list(json.loads(json_path.read_text())["benchmarks"]) == ["alpha"]
    text = fakes.read_text()
    for name in ("beta", "gamma", "delta"):
        assert rows(text, name) == [f"| {name} | — | not run yet | | | |"]


def test_the_json_file_is_not_the_markdown_file(fakes: Path) -> None:
    with pytest.raises(SystemExit):
        runner.main(["--only", "alpha", "--out", str(fakes.with_suffix(".json"))])
