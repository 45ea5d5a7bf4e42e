"""Roster import and subtree query at the seed county's size (or a multiple of it).

    python -m benchmarks.roster [--scale 1] [--households-per-unit 12]

The last line printed is one JSON object, for scripts to read.
"""

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from models.db import create_engine, create_session_factory
from models.migrate import upgrade
from models.org import Level, Node
from models.roster import RosterSource, import_roster
from models.seed import write_households_csv
from models.status import households_under

SUBTREE_RUNS = 50


async def run(scale: int, households_per_unit: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="wuji-bench-") as directory:
        csv_path = Path(directory) / "households.csv"
        households = write_households_csv(csv_path, households_per_unit, scale)
        source = RosterSource(csv_path.name, csv_path.read_bytes())
        print(f"seed county ×{scale}: {households:,} households, {len(source.content):,} bytes")

        engine = create_engine(f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}")
        try:
            await upgrade(engine)
            async with create_session_factory(engine)() as session:
                started = time.perf_counter()
                report = await import_roster(session, [source])
                import_s = time.perf_counter() - started
                print(f"import: {import_s:.2f} s ({report.households:,} households added)")

                zone_ids = list(
                    await session.scalars(
                        select(Node.id).where(Node.level == Level.zone.value).order_by(Node.id)
                    )
                )
                timings = []
                for run_index in range(SUBTREE_RUNS):
                    zone_id = zone_ids[run_index % len(zone_ids)]
                    started = time.perf_counter()
                    under = await households_under(session, zone_id)
                    timings.append((time.perf_counter() - started) * 1000)
                subtree_ms = statistics.median(timings)
                print(
                    f"households under a zone: median {subtree_ms:.2f} ms over {SUBTREE_RUNS} "
                    f"zones (last one had {len(under):,} households)"
                )
        finally:
            await engine.dispose()

    # ru_maxrss is in kilobytes on Linux.
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB")
    return {
        "households": households,
        "import_s": round(import_s, 2),
        "subtree_query_ms": round(subtree_ms, 2),
        "rss_mb": round(rss_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.roster", description=__doc__)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--households-per-unit", type=int, default=12)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(run(arguments.scale, arguments.households_per_unit))))


if __name__ == "__main__":
    main()
