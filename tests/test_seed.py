import csv
from collections import Counter
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Household, Node
from models.roster import ImportReport
from models.seed import seed_demo, seed_rows, write_households_csv
from models.status import county_counts, households_under


def shape(rows: list[tuple[str, ...]]) -> dict[str, int]:
    return {
        "communities": len({row[0] for row in rows}),
        "zones": len({row[1] for row in rows}),
        "grids": len({row[1:3] for row in rows}),
        "buildings": len({row[1:4] for row in rows}),
        "units": len({row[1:5] for row in rows}),
        "households": len(rows),
    }


async def test_seed_county_has_the_articles_exact_counts(session: AsyncSession) -> None:
    report = await seed_demo(session, households_per_unit=1)
    assert report == ImportReport(47, 188, 967, 2_899, 2_899, 8_202, 0, [], 0)
    assert await county_counts(session) == {
        "communities": 11,
        "zones": 47,
        "grids": 188,
        "buildings": 967,
        "units": 2_899,
        "households": 2_899,
        "posts": 8_202,
        "posts_filled": 0,
        "members": 0,
    }
    assert await seed_demo(session, households_per_unit=1) == ImportReport(
        0, 0, 0, 0, 0, 0, 0, [], 0
    )


def test_seed_counts_are_spread_evenly_and_names_read_like_a_county() -> None:
    rows = list(seed_rows(households_per_unit=12))
    assert shape(rows) == {
        "communities": 11,
        "zones": 47,
        "grids": 188,
        "buildings": 967,
        "units": 2_899,
        "households": 34_788,
    }
    grids_per_zone = Counter(zone for zone, _ in {row[1:3] for row in rows})
    assert set(grids_per_zone.values()) == {4}
    buildings_per_grid = Counter(row[:2] for row in {row[1:4] for row in rows})
    assert Counter(buildings_per_grid.values()) == {5: 161, 6: 27}
    units_per_building = Counter(row[:3] for row in {row[1:5] for row in rows})
    assert Counter(units_per_building.values()) == {3: 965, 2: 2}
    # A compound belongs to one community.
    assert len({row[0:3] for row in rows}) == 188
    community, zone, grid, building, unit, room = rows[0]
    assert community.endswith("社区") and zone.endswith("片区")
    assert grid.endswith(("小区", "家园", "花园", "苑", "新村", "家属院"))
    assert (building, unit, room) == ("1号楼", "1单元", "101")
    assert [row[5] for row in rows[:12]] == [
        "101", "102", "201", "202", "301", "302", "401", "402", "501", "502", "601", "602",
    ]  # fmt: skip
    assert rows == list(seed_rows(households_per_unit=12)), "not deterministic"


def test_scale_ten_multiplies_every_level() -> None:
    assert shape(list(seed_rows(households_per_unit=1, scale=10))) == {
        "communities": 110,
        "zones": 470,
        "grids": 1_880,
        "buildings": 9_670,
        "units": 28_990,
        "households": 28_990,
    }


def test_households_csv_holds_the_seed_rows(tmp_path: Path) -> None:
    path = tmp_path / "seed.csv"
    assert write_households_csv(path, households_per_unit=2) == 2 * 2_899
    with path.open(encoding="utf-8", newline="") as file:
        lines = list(csv.reader(file))
    assert lines[0] == ["community", "zone", "grid", "building", "unit", "room"]
    assert [tuple(line) for line in lines[1:]] == list(seed_rows(households_per_unit=2))


async def test_households_under_any_node_are_those_of_its_subtree(session: AsyncSession) -> None:
    await seed_demo(session, households_per_unit=2)
    located = select(Household.id, Node.path).join(Node, Node.id == Household.unit_id)
    where = {household_id: path for household_id, path in await session.execute(located)}
    rows = list(seed_rows(households_per_unit=2))
    # The last zone's last compound, building and unit: several of each level share a name.
    zone, grid, building, unit = rows[-1][1:5]
    paths = [
        zone,
        f"{zone}/{grid}",
        f"{zone}/{grid}/{building}",
        f"{zone}/{grid}/{building}/{unit}",
    ]
    for path in paths:
        node_id = await session.scalar(select(Node.id).where(Node.path == path))
        assert node_id is not None
        expected = {
            f"{unit_path} {row[5]}"
            for row in rows
            if (unit_path := "/".join(row[1:5])) == path or unit_path.startswith(f"{path}/")
        }
        under = await households_under(session, node_id)
        assert len(under) == len(expected)
        assert {f"{where[household_id]} {room}" for household_id, room in under} == expected
    assert await households_under(session, -1) == []
