"""The directory's queries on the seed county (or a multiple of it), every post named in the
roster with a phone.

    python -m benchmarks.directory [--scale 1] [--repeat 30] [--database-url URL]

What one /tree tap costs in the database (a node's coverage per level, its unreachable
members, a page of ten children with their counts: ``handlers.tree_view.tree_view`` minus
the rendering) for the county, the first zone and its first grid; and what one /whois
search costs for a name, a full phone and a phone's last four digits, each over the whole
county as the command centre searches it. Medians and 95th percentiles of ``--repeat``
runs, in milliseconds. The last line printed is one JSON object.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.access import Scope
from models.db import create_engine, create_session_factory
from models.directory import children_page, coverage_by_level, unreachable_under
from models.directory_search import search_roster
from models.migrate import upgrade
from models.org import Level, Node, Post
from models.seed import seed_demo

COUNTY = Scope(is_admin=True, roots=frozenset())


async def seed(session_factory: async_sessionmaker[AsyncSession], scale: int) -> None:
    async with session_factory() as session:
        await seed_demo(session, households_per_unit=1, scale=scale)
        post_ids = list(await session.scalars(select(Post.id).order_by(Post.id)))
        await session.execute(
            update(Post),
            [
                {"id": post_id, "roster_name": f"人员{post_id}", "roster_phone": phone(post_id)}
                for post_id in post_ids
            ],
        )
        await session.commit()


def phone(post_id: int) -> str:
    return f"+86137{post_id:08d}"


async def tap(session: AsyncSession, node: Node | None) -> None:
    await coverage_by_level(session, node)
    await unreachable_under(session, node)
    await children_page(session, node, 0, 10)


async def timed(
    session_factory: async_sessionmaker[AsyncSession],
    repeat: int,
    run: Callable[[AsyncSession], Awaitable[object]],
) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        async with session_factory() as session:
            started = time.perf_counter()
            await run(session)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2),
    }


async def main(scale: int, repeat: int, database_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'directory.db'}"
        engine = create_engine(url)
        await upgrade(engine)
        session_factory = create_session_factory(engine)
        await seed(session_factory, scale)
        async with session_factory() as session:
            zone = await session.scalar(
                select(Node).where(Node.level == Level.zone.value).order_by(Node.name)
            )
            assert zone is not None
            grid = await session.scalar(
                select(Node).where(Node.parent_id == zone.id).order_by(Node.name)
            )
            assert grid is not None
            posts = await session.scalar(select(Post.id).order_by(Post.id.desc()))
            assert posts is not None
        figures = {
            "tap_county": await timed(session_factory, repeat, lambda s: tap(s, None)),
            "tap_zone": await timed(session_factory, repeat, lambda s: tap(s, zone)),
            "tap_grid": await timed(session_factory, repeat, lambda s: tap(s, grid)),
            "whois_name": await timed(
                session_factory, repeat, lambda s: search_roster(s, COUNTY, "人员4711", 10)
            ),
            "whois_phone": await timed(
                session_factory, repeat, lambda s: search_roster(s, COUNTY, phone(posts), 10)
            ),
            "whois_last4": await timed(
                session_factory, repeat, lambda s: search_roster(s, COUNTY, "4711", 10)
            ),
        }
        await engine.dispose()
    return {"benchmark": "directory", "scale": scale, "posts": posts, "repeat": repeat, **figures}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments.scale, arguments.repeat, arguments.database_url))
    for name, value in result.items():
        if isinstance(value, dict):
            print(f"{name:12} median {value['median_ms']:8.2f} ms   p95 {value['p95_ms']:8.2f} ms")
    print(json.dumps(result))
