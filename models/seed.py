"""The seed county of the article (Datong, 2022): 11 communities, 47 zones, 188 compounds,
967 buildings and 2,899 units, so 8,202 posts, with made-up but plausible names.

Deterministic: the same arguments always give the same rows, so seeding twice adds
nothing. ``scale`` multiplies every level; counts are spread as evenly as they go
(4 compounds per zone; 27 compounds of 6 buildings and 161 of 5; 965 buildings of
3 units and 2 of 2).
"""

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Level, Node
from models.roster import ImportReport, ProgressCallback, RosterSource, import_roster
from models.roster_parse import HOUSEHOLD_COLUMNS

COMMUNITIES = 11
ZONES = 47
GRIDS = 188
BUILDINGS = 967
UNITS = 2_899
HOUSEHOLDS_PER_UNIT = 12
DOORS_PER_FLOOR = 2

# Community names in the style of a county seat's neighbourhoods.
COMMUNITY_NAMES = (
    "园林路", "东门", "西门", "南关", "北关", "景阳", "新城", "向阳", "桥头", "城关", "河滨",
    "和平", "团结", "幸福", "朝阳", "长宁", "人民路", "解放路", "文化街", "建设路",
    "丰盛", "健康路",
)  # fmt: skip
# Zones are named after the county-level unit that partners them (包联单位).
PARTNER_UNITS = (
    "县委办", "县政府办", "县纪委监委", "县委组织部", "县委宣传部", "县委统战部", "县委政法委",
    "县发改局", "县教育局", "县工信局", "县公安局", "县民政局", "县司法局", "县财政局", "县人社局",
    "县自然资源局", "县生态环境局", "县住建局", "县交通运输局", "县水利局", "县农业农村局",
    "县商务局", "县文体旅游局", "县卫健局", "县退役军人事务局", "县应急管理局", "县审计局",
    "县市场监管局", "县统计局", "县医保局", "县林草局", "县信访局", "县城管局", "县总工会",
    "团县委", "县妇联", "县科协", "县残联", "县税务局", "县人民法院", "县人民检察院",
    "县融媒体中心", "县供电公司", "县自来水公司", "县人武部", "县气象局", "县行政审批局",
)  # fmt: skip
COMPOUND_WORDS = (
    "金桥", "阳光", "幸福", "和谐", "康乐", "锦绣", "怡景", "华府", "盛世", "丽景",
    "翠苑", "春晖", "滨河", "东方", "紫荆", "祥和", "安居", "馨园", "福苑", "青山",
    "绿洲", "世纪", "嘉园", "南山", "北川", "湟水", "园林", "育才", "桃园", "银河",
    "明珠", "丰泽", "康宁", "龙泉", "凤凰", "新华", "兴盛", "长安", "永安", "金城",
)  # fmt: skip
# 家属院: the old work-unit compounds (老旧小区) the article worries about.
COMPOUND_KINDS = ("小区", "家园", "花园", "苑", "新村", "家属院")
DIGITS = "零一二三四五六七八九"


def seed_rows(
    households_per_unit: int = HOUSEHOLDS_PER_UNIT, scale: int = 1
) -> Iterator[tuple[str, str, str, str, str, str]]:
    """(community, zone, grid, building, unit, room) of every household of the seed county."""
    grids = GRIDS * scale
    communities = COMMUNITIES * scale
    rooms = [_room(index) for index in range(households_per_unit)]
    grid_index = building_index = 0
    for zone_index in range(ZONES * scale):
        zone = _zone_name(zone_index)
        for _ in range(_share(zone_index, grids, ZONES * scale)):
            grid = _compound_name(grid_index)
            community = _community_name(grid_index * communities // grids)
            for building in range(1, _share(grid_index, BUILDINGS * scale, grids) + 1):
                units = _share(building_index, UNITS * scale, BUILDINGS * scale)
                for unit in range(1, units + 1):
                    for room in rooms:
                        yield community, zone, grid, f"{building}号楼", f"{unit}单元", room
                building_index += 1
            grid_index += 1


def write_households_csv(
    path: Path, households_per_unit: int = HOUSEHOLDS_PER_UNIT, scale: int = 1
) -> int:
    """Write the seed county as a households CSV with its header; returns the households."""
    with path.open("w", encoding="utf-8", newline="") as file:
        return _write_csv(file, households_per_unit, scale)


async def seed_demo(
    session: AsyncSession,
    households_per_unit: int = HOUSEHOLDS_PER_UNIT,
    scale: int = 1,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import the seed county through the ordinary roster import; commits."""
    buffer = io.StringIO()
    _write_csv(buffer, households_per_unit, scale)
    source = RosterSource("seed.csv", buffer.getvalue().encode())
    del buffer
    return await import_roster(session, [source], progress=progress)


def _write_csv(file: TextIO, households_per_unit: int, scale: int) -> int:
    writer = csv.writer(file)
    writer.writerow(HOUSEHOLD_COLUMNS)
    count = 0
    for row in seed_rows(households_per_unit, scale):
        writer.writerow(row)
        count += 1
    return count


def _share(index: int, total: int, parts: int) -> int:
    """How many of ``total`` things part ``index`` of ``parts`` gets; the remainder is
    spread evenly rather than heaped on the first parts."""
    return (index + 1) * total // parts - index * total // parts


def _room(index: int) -> str:
    floor, door = divmod(index, DOORS_PER_FLOOR)
    return f"{floor + 1}{door + 1:02d}"


def _zone_name(index: int) -> str:
    round_, position = divmod(index, len(PARTNER_UNITS))
    return f"{PARTNER_UNITS[position]}{_ordinal(round_)}片区"


def _community_name(index: int) -> str:
    round_, position = divmod(index, len(COMMUNITY_NAMES))
    return f"{COMMUNITY_NAMES[position]}{_ordinal(round_)}社区"


def _compound_name(index: int) -> str:
    round_, position = divmod(index, len(COMPOUND_WORDS) * len(COMPOUND_KINDS))
    kind, word = divmod(position, len(COMPOUND_WORDS))
    phase = f"{_chinese_number(round_ + 1)}期" if round_ else ""
    return f"{COMPOUND_WORDS[word]}{COMPOUND_KINDS[kind]}{phase}"


def _ordinal(round_: int) -> str:
    """Nothing for the first of a name, then 二, 三 … for the next ones."""
    return _chinese_number(round_ + 1) if round_ else ""


def _chinese_number(number: int) -> str:
    if number >= 100:
        return str(number)
    tens, ones = divmod(number, 10)
    text = (DIGITS[tens] if tens > 1 else "") + ("十" if tens else "")
    return text + (DIGITS[ones] if ones else "")


def seed_paths(scale: int = 1) -> set[str]:
    """The path of every node of the seed county: zones, grids, buildings and units."""
    paths: set[str] = set()
    for _community, zone, grid, building, unit, _room in seed_rows(1, scale):
        grid_path = f"{zone}/{grid}"
        paths.update((zone, grid_path, f"{grid_path}/{building}", f"{grid_path}/{building}/{unit}"))
    return paths


async def seeded_scale(session: AsyncSession) -> int | None:
    """The scale of the seed county the database holds (its nodes are all the seed county's
    at that scale, its zones more than a smaller one has), or None when it holds other nodes
    or none."""
    zones = await session.scalar(select(func.count()).where(Node.level == Level.zone))
    if not zones:
        return None
    scale = -(-zones // ZONES)
    return None if await foreign_nodes(session, scale, limit=1) else scale


async def foreign_nodes(session: AsyncSession, scale: int = 1, limit: int = 3) -> list[str]:
    """Paths of nodes in the database that the seed county does not have, at most
    ``limit`` in path order: seeding into another county's database would mix the two."""
    seed = seed_paths(scale)
    foreign: list[str] = []
    for path in await session.scalars(select(Node.path).order_by(Node.path)):
        if path not in seed:
            foreign.append(path)
            if len(foreign) == limit:
                break
    return foreign
