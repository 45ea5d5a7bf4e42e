"""The console's queries (models.console) on the example county mid-round: SQLite, and
PostgreSQL when TEST_DATABASE_URL is set."""

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import console
from models.alerts import Alert
from models.base import utcnow
from models.chase import ChaseStep
from models.messages import Text
from models.needs import Need, NeedLimits
from models.notices import Notice, NoticeRecipient
from models.org import Household, Member, Node
from models.outbox.table import OutboxMessage, OutboxStatus, OutgoingMessage, enqueue
from models.posts import node_by_path
from models.rounds import ReportHow
from models.system import AuditEntry
from tests.console.fixtures import ADMIN_ID, county_in_round, save
from tests.fixtures import BUILDING, GRID, UNIT, ZONE, hold_post, node_at


async def households_of(session: AsyncSession, path: str) -> list[int]:
    node = await node_at(session, path)
    column = getattr(Household, f"{node.level}_id")
    return list(
        await session.scalars(select(Household.id).where(column == node.id).order_by(Household.id))
    )


async def test_progress_per_zone_worst_first_nobody_home_counts_and_on_time(
    session: AsyncSession,
) -> None:
    report_round = await county_in_round(session)
    health = await households_of(session, ZONE)
    await save(session, report_round, health[0])
    await save(session, report_round, health[1], ReportHow.nobody_home)
    await save(session, report_round, health[2], late=True)

    zones = await console.progress(session, report_round, None)

    assert [(zone.name, zone.expected, zone.reported, zone.on_time) for zone in zones] == [
        ("县教育局片区", 22, 0, 0),
        ("县卫健局片区", 18, 3, 2),
    ]
    assert zones[0].band == "red" and zones[1].on_time_share == 2 / 3
    grids = await console.progress(session, report_round, await node_at(session, ZONE))
    assert {grid.level for grid in grids} == {"grid"}
    assert sum(grid.expected for grid in grids) == 18


async def test_a_unit_shows_its_households_with_answers_in_the_readers_language(
    session: AsyncSession,
) -> None:
    from bot.forms import DEFAULT_FORM_PATH
    from models.form_parse import load_form

    report_round = await county_in_round(session)
    unit = await node_at(session, UNIT)
    first = (await households_of(session, UNIT))[0]
    await save(session, report_round, first)
    rows = await console.households(session, report_round, unit, load_form(DEFAULT_FORM_PATH), "en")
    assert rows[0].status == "reported" and rows[0].reported_at is not None
    assert any(label == "People at home" for label, _ in rows[0].answers) or rows[0].answers
    assert all(row.status == "missing" and not row.answers for row in rows[1:])
    hidden = await console.households(session, report_round, unit, None, "en")
    assert hidden[0].answers == []
    assert console.child_level(unit) is None
    assert [crumb.name for crumb in await console.breadcrumbs(session, unit)] == UNIT.split("/")


async def test_late_units_name_holders_vacancies_and_the_ladder_steps_fired(
    session: AsyncSession,
) -> None:
    report_round = await county_in_round(session)
    for household_id in (await households_of(session, UNIT))[:2]:
        await save(session, report_round, household_id)
    lead = await hold_post(session, 301, UNIT, name="赵单元长")
    lead.reachable = False
    unit = await node_at(session, UNIT)
    building = await node_at(session, BUILDING)
    session.add_all(
        [
            ChaseStep(round_id=report_round.id, node_id=unit.id, step="unit+0"),
            ChaseStep(round_id=report_round.id, node_id=building.id, step="building+30"),
        ]
    )
    await session.commit()

    late, count = await console.late_units(session, report_round, await node_at(session, ZONE))

    assert count == len(late) > 0
    row = next(row for row in late if row.unit_id == unit.id)
    assert row.lead.state == "unreachable" and row.lead.name == "赵单元长"
    assert row.officer.state == "vacant"
    assert row.steps == ["unit+0", "building+30"]
    assert row.missing == len(await households_of(session, UNIT)) - 2
    assert late == sorted(late, key=lambda found: (-found.missing, found.path))
    other, _ = await console.late_units(
        session, report_round, await node_at(session, "县教育局片区")
    )
    assert unit.id not in {found.unit_id for found in other}


async def test_alerts_and_needs_by_age_overdue_first_with_who_took_them(
    session: AsyncSession,
) -> None:
    await county_in_round(session)
    unit = await node_at(session, UNIT)
    now = utcnow()
    session.add_all(
        [
            Alert(
                origin="member", node_id=unit.id, text="发烧", created_at=now - timedelta(minutes=5)
            ),
            Alert(origin="member", node_id=unit.id, text="x", created_at=now - timedelta(hours=2)),
            Need(
                kind="medicine",
                unit_node_id=unit.id,
                opened_at=now - timedelta(hours=5),
                created_at=now - timedelta(hours=5),
                status="taken",
                taken_by_name="马晓东",
            ),
            Need(
                kind="food",
                unit_node_id=unit.id,
                opened_at=now - timedelta(hours=30),
                created_at=now - timedelta(hours=30),
                status="confirmed",
            ),
        ]
    )
    await session.commit()

    found = await console.open_items(
        session,
        await node_at(session, ZONE),
        timedelta(minutes=15),
        NeedLimits({"medicine": 4}),
        now,
    )

    assert found.buckets == {("alert", "lt1h"): 1, ("alert", "1to4h"): 1, ("need", "4to24h"): 1}
    # Overdue first, oldest first among them: the 5-hour-old need, then the 2-hour-old alert.
    assert [(item.kind, item.overdue) for item in found.items] == [
        ("need", True),
        ("alert", True),
        ("alert", False),
    ]
    assert found.items[0].taken_by == "马晓东" and found.items[1].taken_by is None
    elsewhere = await console.open_items(
        session, await node_at(session, "县教育局片区"), timedelta(minutes=15), NeedLimits({}), now
    )
    assert elsewhere.items == []


async def test_notices_sent_delivered_acknowledged_per_child_node(session: AsyncSession) -> None:
    await county_in_round(session)
    grid = await node_at(session, GRID)
    building = await node_at(session, BUILDING)
    first = await hold_post(session, 401, GRID)
    second = await hold_post(session, 402, BUILDING)
    notice = Notice(author_telegram_id=1, levels=["grid", "building"], kind="text", text="今晚停水")
    session.add(notice)
    await session.flush()
    session.add_all(
        [
            NoticeRecipient(
                notice_id=notice.id,
                member_id=first.id,
                node_id=grid.id,
                role="lead",
                acked_at=utcnow(),
            ),
            NoticeRecipient(
                notice_id=notice.id, member_id=second.id, node_id=building.id, role="lead"
            ),
            OutboxMessage(
                chat_id=401,
                member_id=first.id,
                kind="text",
                payload={},
                status="sent",
                dedupe_key=f"notice:{notice.id}:member:{first.id}",
                source=f"notice:{notice.id}",
            ),
            OutboxMessage(
                chat_id=402,
                member_id=second.id,
                kind="text",
                payload={},
                status="pending",
                dedupe_key=f"notice:{notice.id}:member:{second.id}",
                source=f"notice:{notice.id}",
            ),
        ]
    )
    await session.commit()

    by_building = await console.notices(session, grid)
    by_zone = await console.notices(session, await node_at(session, ZONE))

    assert [(row.node_name, row.sent, row.delivered, row.acknowledged) for row in by_building] == [
        ("", 1, 1, 1),
        ("1号楼", 1, 0, 0),
    ]
    assert [(row.node_name, row.sent, row.delivered, row.acknowledged) for row in by_zone] == [
        ("阳光小区", 2, 1, 1)
    ]
    assert await console.notices(session, await node_at(session, "县教育局片区")) == []


async def test_coverage_counts_vacant_unreachable_and_silent_posts(session: AsyncSession) -> None:
    await county_in_round(session)
    active = await hold_post(session, 501, GRID)
    silent = await hold_post(session, 502, BUILDING)
    gone = await hold_post(session, 503, UNIT)
    gone.reachable = False
    session.add(AuditEntry(action="report.saved", actor_telegram_id=active.telegram_id))
    old = utcnow() - timedelta(days=10)
    for entry in await session.scalars(
        select(AuditEntry).where(AuditEntry.actor_telegram_id == silent.telegram_id)
    ):
        entry.at = old
    await session.commit()

    rows = await console.coverage(session, await node_at(session, ZONE), silent_days=3)

    assert len(rows) >= 1 and all(row.name for row in rows if row.node_id is not None)
    grid_row = next(row for row in rows if row.name == "阳光小区")
    assert grid_row.unreachable == 1 and grid_row.silent == 1
    assert grid_row.vacant == grid_row.posts - 3
    county = await console.coverage(session, None, silent_days=3)
    nodes = len(list(await session.scalars(select(Node.id))))
    assert sum(row.posts for row in county) == 2 * nodes
    assert {row.name for row in county} == {"县卫健局片区", "县教育局片区"}
    assert isinstance(await session.get(Member, silent.id), Member)


async def test_trend_over_rounds_and_the_data_version_moves_with_a_save(
    session: AsyncSession,
) -> None:
    from bot.forms import DEFAULT_FORM_PATH
    from models.form_parse import load_form
    from models.rounds import open_round
    from tests.console.fixtures import SCHEDULE, today

    yesterday_round = await county_in_round(session, today() - timedelta(days=1))
    for household_id in (await households_of(session, ZONE))[:9]:
        await save(session, yesterday_round, household_id)
    today_round = await open_round(session, SCHEDULE, load_form(DEFAULT_FORM_PATH), today())
    before = await console.data_version(session)
    await save(session, today_round, (await households_of(session, ZONE))[0], late=True)
    saved = await console.data_version(session)
    assert saved != before
    # A message queued moves it, and so does its delivery.
    await enqueue(session, [OutgoingMessage(chat_id=ADMIN_ID, content=Text("help.text"))])
    await session.commit()
    queued = await console.data_version(session)
    assert queued != saved
    await session.execute(update(OutboxMessage).values(status=OutboxStatus.sent.value))
    await session.commit()
    assert await console.data_version(session) != queued

    rounds = await console.recent_rounds(session)
    points = await console.trend(session, rounds, await node_at(session, ZONE))

    assert [(p.expected, p.reported, p.on_time) for p in points] == [(18, 9, 9), (18, 1, 0)]
    assert points[0].completeness == 0.5 and points[1].timeliness == 0
    assert await node_by_path(session, ZONE) is not None
