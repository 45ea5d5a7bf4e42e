import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.org import Household, Member, Node, Post
from models.roster import (
    ImportReport,
    RosterSource,
    RosterValidationError,
    import_roster,
    plan_prune,
)
from models.roster_parse import parse_sources
from models.status import county_counts
from models.system import AuditEntry

EXAMPLES = Path(__file__).parent.parent / "examples"
HOUSEHOLDS_HEADER = "community,zone,grid,building,unit,room\n"
PEOPLE_HEADER = "path,role,name,phone\n"


def csv_file(name: str, text: str) -> RosterSource:
    return RosterSource(name, text.encode())


def households(*rows: str, name: str = "households.csv") -> RosterSource:
    return csv_file(name, HOUSEHOLDS_HEADER + "".join(f"{row}\n" for row in rows))


def people(*rows: str, name: str = "people.csv") -> RosterSource:
    return csv_file(name, PEOPLE_HEADER + "".join(f"{row}\n" for row in rows))


def example(name: str) -> RosterSource:
    return RosterSource(name, (EXAMPLES / name).read_bytes())


def xlsx_file(name: str, rows: list[list[object]]) -> RosterSource:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return RosterSource(name, buffer.getvalue())


async def problems_of(
    session: AsyncSession, sources: list[RosterSource], *, prune: bool = False
) -> list[str]:
    before = await county_counts(session)
    with pytest.raises(RosterValidationError) as raised:
        await import_roster(session, sources, prune=prune)
    assert await county_counts(session) == before, "a failed import wrote something"
    return [str(problem) for problem in raised.value.errors]


def zeros() -> ImportReport:
    return ImportReport(0, 0, 0, 0, 0, 0, 0, [], 0)


# --- the header ---------------------------------------------------------------------------


async def test_missing_unknown_empty_and_repeated_columns_are_named(session: AsyncSession) -> None:
    sources = [
        csv_file("a.csv", "community,zone,grid,building,unit\nC,Z,G,B,U\n"),
        csv_file("b.csv", "community,zone,grid,building,unit,room,notes\nC,Z,G,B,U,101,x\n"),
        csv_file("c.csv", "community,zone,,grid,building,unit,room\n"),
        csv_file("d.csv", "path,role,name,phone,role\n"),
        csv_file("e.csv", "姓名,电话\n"),
    ]
    assert await problems_of(session, sources) == [
        "a.csv:1: missing column room",
        "b.csv:1: unknown column notes (a households file has "
        "community, zone, grid, building, unit, room)",
        "c.csv:1: empty header in column C",
        "d.csv:1: column role appears twice (columns B and E)",
        "e.csv:1: cannot tell what the file holds: a households file has the columns "
        "community, zone, grid, building, unit, room; a people file has path, role, name, phone",
    ]


async def test_header_is_the_first_non_blank_line_in_any_case_with_a_bom(
    session: AsyncSession,
) -> None:
    text = "\n\ufeff Community ,ZONE,Grid,building,unit,room,,\n社区,片区,小区,1号楼,1单元,101,,\n"
    source = RosterSource("h.csv", ("\ufeff" + text.lstrip("\n\ufeff")).encode())
    report = await import_roster(session, [source])
    assert (report.zones, report.households) == (1, 1)
    # Blank lines still count as a spreadsheet user counts them.
    blank_first = csv_file("blank.csv", "\n" + HOUSEHOLDS_HEADER + "\n社区,片区,小区,1号楼,,101\n")
    assert await problems_of(session, [blank_first]) == ["blank.csv:4: empty cell in column unit"]


# --- rows of a households file ------------------------------------------------------------


async def test_every_bad_row_is_listed_with_its_line_and_nothing_is_written(
    session: AsyncSession,
) -> None:
    await import_roster(session, [example("households.csv")])
    source = households(
        "东门社区,县教育局片区,新小区,1号楼,1单元,101",  # line 2: fine
        "东门社区,县教育局片区,新小区,1号楼,,102",  # 3
        "东门社区,县教育局片区,新小区,1/2号楼,1单元,103",  # 4
        "东门社区,县教育局片区,新小区,1号楼,1单元,101",  # 5
        ",县教育局片区,新小区,1号楼,1单元,",  # 6
        "东门社区,县教育局片区,新小区,1号楼,1单元,104,extra",  # 7
    )
    assert await problems_of(session, [source]) == [
        "households.csv:3: empty cell in column unit",
        'households.csv:4: building name "1/2号楼" contains "/"',
        "households.csv:5: duplicate room 101 in unit 县教育局片区/新小区/1号楼/1单元 "
        "(first on line 2)",
        "households.csv:6: empty cell in column community",
        "households.csv:6: empty cell in column room",
        "households.csv:7: a value in column G, which has no header",
    ]


async def test_a_compound_under_two_zones_or_in_two_communities_is_refused(
    session: AsyncSession,
) -> None:
    source = households(
        "东门社区,一片区,幸福小区,1号楼,1单元,101",
        "东门社区,二片区,幸福小区,1号楼,1单元,101",
        "西门社区,一片区,幸福小区,1号楼,1单元,102",
        # The same name in another community is another compound.
        "西门社区,二片区,和谐小区,1号楼,1单元,101",
        "南关社区,三片区,和谐小区,1号楼,1单元,101",
    )
    assert await problems_of(session, [source]) == [
        "households.csv:3: compound 幸福小区 of community 东门社区 is under zone 二片区 here "
        "but under zone 一片区 on line 2",
        "households.csv:4: grid 一片区/幸福小区 is in community 西门社区 here "
        "but in community 东门社区 on line 2",
    ]


async def test_an_existing_compound_cannot_move_to_another_zone_or_community(
    session: AsyncSession,
) -> None:
    await import_roster(session, [example("households.csv")])
    source = households(
        "园林路社区,县教育局片区,阳光小区,9号楼,1单元,101",
        "东门社区,县卫健局片区,康乐家园,1号楼,1单元,101",
    )
    assert await problems_of(session, [source]) == [
        "households.csv:2: compound 阳光小区 of community 园林路社区 is under zone 县卫健局片区 "
        "in the database, not 县教育局片区",
        "households.csv:3: grid 县卫健局片区/康乐家园 is in community 园林路社区 "
        "in the database, not 东门社区",
    ]


async def test_a_duplicate_in_another_file_names_that_file(session: AsyncSession) -> None:
    first = households("C,Z,G,B,U,101", name="one.csv")
    second = households("C,Z,G,B,U,102", "C,Z,G,B,U,101", name="two.csv")
    assert await problems_of(session, [first, second]) == [
        "two.csv:3: duplicate room 101 in unit Z/G/B/U (first on one.csv line 2)"
    ]


async def test_overlong_names_are_refused_before_the_database_sees_them(
    session: AsyncSession,
) -> None:
    source = households(f"C,{'区' * 201},G,B,U,101", f"C,Z,G,B,U,{'9' * 101}")
    assert await problems_of(session, [source]) == [
        "households.csv:2: zone name is longer than 200 characters",
        "households.csv:3: room is longer than 100 characters",
    ]


# --- unreadable files ---------------------------------------------------------------------


async def test_unreadable_files_get_one_problem_on_line_zero(session: AsyncSession) -> None:
    gbk = RosterSource(
        "gbk.csv", (HOUSEHOLDS_HEADER + "东门社区,一片区,小区,1,1,101\n").encode("gbk")
    )
    sources = [
        RosterSource("roster.txt", b"community,zone\n"),
        gbk,
        RosterSource("broken.xlsx", b"PK\x03\x04 not really a workbook"),
        RosterSource("empty.csv", b""),
        RosterSource("blank.xlsx", xlsx_file("x.xlsx", []).content),
    ]
    problems = await problems_of(session, sources)
    assert problems[0] == "roster.txt:0: unsupported file type: send a .csv or .xlsx file"
    assert problems[1] == (
        "gbk.csv:0: cannot read the file: it is not UTF-8 text (in Excel, save as “CSV UTF-8”)"
    )
    assert problems[2].startswith("broken.xlsx:0: cannot read the file as an Excel workbook")
    assert problems[3:] == ["empty.csv:0: the file is empty", "blank.xlsx:0: the file is empty"]


# --- people -------------------------------------------------------------------------------


async def test_people_fill_the_roster_of_posts_named_in_the_same_import(
    session: AsyncSession,
) -> None:
    # The people file may come first: paths are checked against all households files.
    report = await import_roster(session, [example("people.csv"), example("households.csv")])
    assert report.people == 8
    rows = await session.execute(
        select(Node.path, Post.role, Post.roster_name, Post.roster_phone)
        .join(Node, Node.id == Post.node_id)
        .where(Post.roster_name.is_not(None))
        .order_by(Node.path, Post.role)
    )
    assert ("县卫健局片区", "officer", "李娜", "+8613909710001") in rows.all()
    assert await import_roster(session, [example("people.csv")]) == zeros()

    changed = people(
        "县卫健局片区,officer,李娜,13909719999", "县卫健局片区,lead,张建国,13800138000"
    )
    assert (await import_roster(session, [changed])).people == 1
    phone = await session.scalar(
        select(Post.roster_phone)
        .join(Node, Node.id == Post.node_id)
        .where(Node.path == "县卫健局片区", Post.role == "officer")
    )
    assert phone == "+8613909719999"


async def test_every_bad_people_row_is_listed(session: AsyncSession) -> None:
    await import_roster(session, [example("households.csv")])
    source = people(
        "县卫健局片区,lead,张建国,13800138000",  # 2: fine
        "县卫健局片区,boss,李娜,13909710001",  # 3
        "县卫健局片区/阳光小区,lead,王芳,1390971000",  # 4
        " 县卫健局片区 ,LEAD,张建国,13800138000",  # 5: the same post as line 2
        "县卫健局片区/无名小区,lead,赵强,13909710004",  # 6
        "县卫健局片区/阳光小区/1号楼/1单元/101,lead,马秀兰,13909710005",  # 7
        "县卫健局片区//1号楼,lead,马秀兰,13909710005",  # 8
        "县卫健局片区,officer,,",  # 9
    )
    assert await problems_of(session, [source]) == [
        'people.csv:3: unknown role "boss" (use lead or officer)',
        'people.csv:4: malformed phone "1390971000" (write a mainland mobile such as '
        "13800138000 or an international number starting with +)",
        "people.csv:5: duplicate lead for 县卫健局片区 (first on line 2)",
        "people.csv:6: no zone, grid, building or unit 县卫健局片区/无名小区 in the database "
        "or in the households files",
        "people.csv:7: path 县卫健局片区/阳光小区/1号楼/1单元/101 has 5 names; a zone, grid, "
        "building or unit has 1 to 4",
        "people.csv:8: path 县卫健局片区//1号楼 has an empty name between two “/”",
        "people.csv:9: empty cell in column name",
        "people.csv:9: empty cell in column phone",
    ]


# --- csv and xlsx -------------------------------------------------------------------------


async def test_xlsx_and_csv_give_the_same_roster(session: AsyncSession) -> None:
    from_csv = parse_sources([example("households.csv")])
    from_xlsx = parse_sources([example("households.xlsx")])
    assert from_csv.problems == from_xlsx.problems == []
    assert [(n.level, n.path, n.community) for n in from_csv.nodes.values()] == [
        (n.level, n.path, n.community) for n in from_xlsx.nodes.values()
    ]
    assert {unit: set(rooms) for unit, rooms in from_csv.rooms.items()} == {
        unit: set(rooms) for unit, rooms in from_xlsx.rooms.items()
    }
    first = await import_roster(session, [example("households.xlsx")])
    assert (first.zones, first.grids, first.buildings, first.units, first.households) == (
        2,
        4,
        6,
        8,
        40,
    )
    assert await import_roster(session, [example("households.csv")]) == zeros()


async def test_xlsx_numbers_read_as_text_and_rows_are_counted_like_excel(
    session: AsyncSession,
) -> None:
    source = xlsx_file(
        "roster.xlsx",
        [
            ["community", "zone", "grid", "building", "unit", "room"],
            ["社区", "片区", "小区", 1, 1, 101],
            [],
            ["社区", "片区", "小区", 1, 1, 102.0],
            ["社区", "片区", "小区", 1, None, 103],
        ],
    )
    assert await problems_of(session, [source]) == ["roster.xlsx:5: empty cell in column unit"]
    phones = xlsx_file(
        "people.xlsx", [["path", "role", "name", "phone"], ["片区", "lead", "甲", 13800138000]]
    )
    good = xlsx_file(
        "good.xlsx",
        [
            ["community", "zone", "grid", "building", "unit", "room"],
            ["社区", "片区", "小区", 1, 1, 101.0],
        ],
    )
    report = await import_roster(session, [good, phones])
    assert (report.households, report.people) == (1, 1)
    assert await session.scalar(select(Household.room)) == "101"
    assert await session.scalar(select(Node.path).where(Node.level == "unit")) == "片区/小区/1/1"


# --- idempotence, growth and pruning ------------------------------------------------------


async def test_importing_twice_adds_nothing_and_both_are_audited(session: AsyncSession) -> None:
    first = await import_roster(session, [example("households.csv")], actor_telegram_id=42)
    assert first == ImportReport(2, 4, 6, 8, 40, 2 * (2 + 4 + 6 + 8), 0, [], 0)
    assert (
        await import_roster(session, [example("households.csv")], actor_telegram_id=42) == zeros()
    )
    counts = await county_counts(session)
    assert counts == {
        "communities": 2,
        "zones": 2,
        "grids": 4,
        "buildings": 6,
        "units": 8,
        "households": 40,
        "posts": 40,
        "posts_filled": 0,
        "members": 0,
    }
    audits = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(entry.action, entry.actor_telegram_id) for entry in audits] == [
        ("roster.import", 42),
        ("roster.import", 42),
    ]
    assert audits[0].detail["households"] == 40
    assert audits[0].detail["files"] == ["households.csv"]


async def test_nodes_carry_their_ancestors_and_their_own_id(session: AsyncSession) -> None:
    await import_roster(session, [households("C,Z,G,B,U,101")])
    nodes = {node.level: node for node in await session.scalars(select(Node))}
    zone, grid, building, unit = (nodes[level] for level in ("zone", "grid", "building", "unit"))
    assert (zone.parent_id, grid.parent_id, building.parent_id, unit.parent_id) == (
        None,
        zone.id,
        grid.id,
        building.id,
    )
    assert (unit.zone_id, unit.grid_id, unit.building_id, unit.unit_id) == (
        zone.id,
        grid.id,
        building.id,
        unit.id,
    )
    assert (zone.zone_id, zone.grid_id) == (zone.id, None)
    assert (grid.community, zone.community, unit.path) == ("C", None, "Z/G/B/U")
    household = await session.scalar(select(Household))
    assert household is not None
    assert (household.zone_id, household.grid_id, household.building_id, household.unit_id) == (
        zone.id,
        grid.id,
        building.id,
        unit.id,
    )


async def test_a_grown_file_adds_only_what_is_new(session: AsyncSession) -> None:
    await import_roster(session, [households("C,Z,G,B,U,101", "C,Z,G,B,U,102")])
    grown = households(
        "C,Z,G,B,U,101", "C,Z,G,B,U,102", "C,Z,G,B,U,103", "C,Z,G,B,V,101", "C,Z,H,B,U,101"
    )
    report = await import_roster(session, [grown])
    assert report == ImportReport(0, 1, 1, 2, 3, 8, 0, [], 0)
    assert (await county_counts(session))["households"] == 5


async def test_a_shrunk_file_deletes_nothing_without_prune(session: AsyncSession) -> None:
    await import_roster(session, [households("C,Z,G,B,U,101", "C,Z,G,B,V,101")])
    assert await import_roster(session, [households("C,Z,G,B,U,101")]) == zeros()
    assert (await county_counts(session))["units"] == 2


async def test_prune_removes_what_the_households_files_lack(session: AsyncSession) -> None:
    await import_roster(
        session,
        [households("C,Z,G,B,U,101", "C,Z,G,B,U,102", "C,Z,G,B,V,101", "C,Z,G,B,V,102")],
    )
    kept = households("C,Z,G,B,U,101", "C,Z,G,B,U,103")
    plan = await plan_prune(session, [kept])
    assert plan.nodes == ["Z/G/B/V"]
    assert plan.households == ["Z/G/B/U 102", "Z/G/B/V 101", "Z/G/B/V 102"]
    assert plan.held_posts == []
    assert (await county_counts(session))["households"] == 4, "planning wrote something"

    report = await import_roster(session, [kept], prune=True)
    assert report == ImportReport(0, 0, 0, 0, 1, 0, 0, ["Z/G/B/V"], 3)
    counts = await county_counts(session)
    assert (counts["units"], counts["households"], counts["posts"]) == (1, 2, 8)
    rooms = await session.scalars(select(Household.room).order_by(Household.room))
    assert rooms.all() == ["101", "103"]


async def test_prune_refuses_to_remove_a_post_someone_holds(session: AsyncSession) -> None:
    await import_roster(session, [households("C,Z,G,B,U,101", "C,Z,H,B,U,101")])
    member = Member(telegram_id=7, name="张三")
    session.add(member)
    await session.flush()
    grid_id = await session.scalar(select(Node.id).where(Node.path == "Z/H"))
    await session.execute(
        update(Post).where(Post.node_id == grid_id, Post.role == "lead").values(holder_id=member.id)
    )
    await session.commit()

    kept = households("C,Z,G,B,U,101")
    plan = await plan_prune(session, [kept])
    assert plan.nodes == ["Z/H", "Z/H/B", "Z/H/B/U"]
    assert plan.held_posts == ["Z/H lead (张三)"]
    assert await problems_of(session, [kept], prune=True) == [
        "households.csv:0: cannot remove grid Z/H: its lead post is held by 张三"
    ]


async def test_prune_needs_a_households_file(session: AsyncSession) -> None:
    await import_roster(session, [example("households.csv")])
    assert await problems_of(session, [example("people.csv")], prune=True) == [
        "people.csv:0: pruning needs a households file: it deletes what the households files lack"
    ]


async def test_prune_refuses_an_empty_households_file_and_people_it_would_remove(
    session: AsyncSession,
) -> None:
    await import_roster(session, [households("C,Z,G,B,U,101", "C,Y,H,B,U,101")])
    assert await problems_of(session, [households()], prune=True) == [
        "households.csv:0: the households files have no rows: pruning would remove the whole county"
    ]
    sources = [households("C,Z,G,B,U,101"), people("Y/H,lead,甲,13800138000")]
    assert await problems_of(session, sources, prune=True) == [
        "people.csv:2: Y/H is not in the households files, so pruning would remove it"
    ]


async def test_semicolon_separated_csv_from_a_european_excel_is_read(
    session: AsyncSession,
) -> None:
    source = csv_file("h.csv", HOUSEHOLDS_HEADER.replace(",", ";") + "C;Z;G;B;U;101\n")
    assert (await import_roster(session, [source])).households == 1


async def test_progress_is_reported_through_a_callback(
    session: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    heard: dict[str, list[int]] = {}
    totals: dict[str, int | None] = {}

    def progress(stage: str, advance: int, total: int | None) -> None:
        heard.setdefault(stage, []).append(advance)
        if total is not None:
            totals[stage] = total

    report = await import_roster(session, [example("households.csv")], progress=progress)
    assert report.households == 40
    assert sum(heard["reading households.csv"]) == 40
    assert totals["reading households.csv"] == 41  # the header's line and the rows'
    assert sum(heard["writing"]) == totals["writing"]
    assert capsys.readouterr() == ("", "")  # the domain prints nothing itself


# --- property: any small valid tree ---------------------------------------------------------

names = st.sampled_from(["1", "2", "东", "A b", "楼"])
padding = st.sampled_from(["", " ", "  "])


@st.composite
def small_trees(draw: st.DrawFn) -> list[tuple[str, ...]]:
    """Rows of a valid households file; compound names are unique so no zone clash."""
    rows: list[tuple[str, ...]] = []
    for zone in draw(st.sets(names, min_size=1, max_size=3)):
        for grid in draw(st.sets(names, min_size=1, max_size=2)):
            community = draw(st.sampled_from(["东门社区", "西门社区"]))
            for building in draw(st.sets(names, min_size=1, max_size=2)):
                for unit in draw(st.sets(names, min_size=1, max_size=2)):
                    for room in draw(st.sets(st.sampled_from(["101", "102", "201"]), min_size=1)):
                        rows.append((community, zone, f"{zone}-{grid}小区", building, unit, room))
    return draw(st.permutations(rows))


async def wipe(session: AsyncSession) -> None:
    for table in (AuditEntry, Household, Post, Node):
        await session.execute(delete(table))
    await session.commit()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=small_trees(), pad=padding, as_xlsx=st.booleans())
async def test_any_small_tree_imports_to_its_distinct_paths_once(
    session: AsyncSession, rows: list[tuple[str, ...]], pad: str, as_xlsx: bool
) -> None:
    await wipe(session)
    padded = [[f"{pad}{cell}{pad}" for cell in row] for row in rows]
    if as_xlsx:
        source = xlsx_file("h.xlsx", [list(HOUSEHOLDS_HEADER.strip().split(",")), *padded])
    else:
        source = households(*(",".join(row) for row in padded))

    report = await import_roster(session, [source])

    assert report.zones == len({row[1] for row in rows})
    assert report.grids == len({row[1:3] for row in rows})
    assert report.buildings == len({row[1:4] for row in rows})
    assert report.units == len({row[1:5] for row in rows})
    assert report.households == len(rows)
    counts = await county_counts(session)
    assert counts["communities"] == len({row[0] for row in rows})
    assert counts["households"] == len(rows)
    assert counts["posts"] == 2 * (report.zones + report.grids + report.buildings + report.units)
    paths = set(await session.scalars(select(Node.path)))
    assert paths == {"/".join(row[1 : 1 + depth]) for row in rows for depth in range(1, 5)}
    assert await import_roster(session, [source]) == zeros()
    assert await session.scalar(select(func.count()).select_from(Household)) == len(rows)
