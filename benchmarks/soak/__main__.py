"""``python -m benchmarks.soak [--scale S] [--units N] [--seed K] [--database URL] [--redis URL]
[--replicas 2]``: replicas on PostgreSQL, or on one SQLite file (the worker's lock is a file
beside it). The last line is the promised figures as JSON; the exit code is 1 when a
promised zero is not zero (or repeats exceed the in-flight bound, or the token was logged)."""

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from benchmarks.soak.day import SoakDay, SoakOptions
from bot.demo.tally import Progress


def parse(argv: list[str] | None = None) -> SoakOptions:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    parser.add_argument("--scale", type=float, default=0.05, help="1: the whole seed county")
    parser.add_argument("--units", type=int, help="at most this many units (a small day)")
    parser.add_argument("--speed", type=float, default=20.0, help="Telegram time speed-up")
    parser.add_argument("--seed", type=int, default=12, help="the people and the kill moments")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--database", default="", help="postgresql+asyncpg://… (a server)")
    parser.add_argument("--redis", default="", help="redis://… (conversation state)")
    parser.add_argument("--replicas", type=int, default=0, help="webhook replicas and a worker")
    parser.add_argument("--workdir", type=Path, help="keep the logs and configs here")
    arguments = parser.parse_args(argv)
    return SoakOptions(
        scale=arguments.scale,
        units=arguments.units,
        speed=arguments.speed,
        seed=arguments.seed,
        kills=arguments.kills,
        database=arguments.database,
        redis=arguments.redis,
        replicas=arguments.replicas,
        workdir=arguments.workdir,
    )


async def soak(options: SoakOptions) -> int:
    # SIGTERM ends the run as Ctrl-C does: the bot processes are stopped on the way out.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    progress = Progress()
    with tempfile.TemporaryDirectory(prefix="wuji-soak-") as temporary:
        workdir = options.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        day = SoakDay(options, workdir, progress)
        progress.start()
        try:
            run = await day.play()
        finally:
            progress.stop()
    day.tally.print_table()
    figures = day.figures
    print()
    for kill in run.kills:
        print(f"SIGKILL {kill.process} at {kill.at_s:.0f} s; up again after {kill.back_up_s} s")
    print(
        f"repeats after kills: {figures.notice_repeats} notice, {figures.ladder_repeats} "
        f"ladder (bound: {figures.repeat_bound}); token in the logs: {figures.token_in_logs}; "
        f"notices sent: {figures.notices}"
    )
    for problem in figures.problems[:20]:
        print(f"  {problem}")
    print(figures.line())
    return 0 if figures.kept(options.kills) else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(soak(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
