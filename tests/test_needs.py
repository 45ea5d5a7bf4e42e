"""Need tickets in the domain: routed to the grid, round their whole life, re-authorised on
every step, and overdue ones climbing to the zone lead once."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.access import scope_of
from models.alert_followup import purge_alerts_older_than
from models.alerts import Alert, raise_report_alerts
from models.base import utcnow
from models.forms import AlertMatch, NeedRequest
from models.messages import ActionKind, Term, Text, decode
from models.need_followup import purge_needs_older_than, sweep_needs
from models.need_steps import Changed, NeedStep, allowed_steps, change_need
from models.need_views import need_for, needs_in_scope, open_need_count
from models.needs import NEED_PRIORITY, Need, NeedLimits, NeedStatus, open_report_needs
from models.org import Post
from models.outbox.table import URGENT_PRIORITY, OutboxMessage
from tests.response_fixtures import (
    ADMIN,
    BUILDING_LEAD,
    GRID,
    GRID_LEAD,
    GRID_OFFICER,
    OTHER_GRID_LEAD,
    OUTSIDER,
    UNIT,
    UNIT_LEAD,
    UNIT_OFFICER,
    ZONE_LEAD,
    ZONE_OFFICER,
    audited,
    household,
    key_of,
    member_id,
    node_id,
    queued,
    seat_county,
)

COMMAND_CENTRE = [ADMIN]
LIMITS = NeedLimits({"medicine": 4, "food": 24, "doctor": 2, "other": 24})


@pytest.fixture
async def county(session_factory: async_sessionmaker[AsyncSession]) -> None:
    await seat_county(session_factory)


async def report_needs(
    session: AsyncSession,
    needs: list[NeedRequest],
    report_id: int = 41,
    command_centre: list[int] | None = None,
) -> list[int]:
    ids = await open_report_needs(
        session,
        report_id=report_id,
        household_id=await household(session, UNIT, "101"),
        unit_node_id=await node_id(session, UNIT),
        reporter_member_id=await member_id(session, UNIT_LEAD),
        needs=needs,
        command_centre=COMMAND_CENTRE if command_centre is None else command_centre,
    )
    await session.commit()
    return ids


def told(rows: list[OutboxMessage], key: str) -> list[int]:
    return sorted(row.chat_id for row in rows if key_of(row) == key)


async def step(
    session: AsyncSession, need_id: int, what: NeedStep, who: int, note: str | None = None
) -> Changed:
    change = await change_need(session, need_id, what, who, "x", COMMAND_CENTRE, note=note)
    return change.outcome


async def test_a_report_opens_a_ticket_per_kind_for_the_grid_once(
    county: None, session: AsyncSession
) -> None:
    needs = [NeedRequest("medicine", None), NeedRequest("other", "需要买尿不湿 <急>")]
    medicine, other = await report_needs(session, needs)
    assert await report_needs(session, needs) == []  # a correction opens nothing again
    rows = await queued(session, f"need:{other}")
    assert told(rows, "need.opened") == [GRID_LEAD, GRID_OFFICER]
    content, actions = decode(rows[0].payload)
    assert isinstance(content, Text)
    assert content.params["kind"] == Term("need.kind.other")
    assert content.params["note"] == "需要买尿不湿 <急>"
    assert [(a.kind, a.target_id) for a in actions] == [(ActionKind.take_need, other)]
    assert rows[0].priority == NEED_PRIORITY
    # Medicine cannot wait for the morning: its opening passes quiet hours.
    assert {row.priority for row in await queued(session, f"need:{medicine}")} == {URGENT_PRIORITY}
    assert await audited(session, "need.opened") == 2
    assert await open_need_count(session, None) == 2
    assert medicine != other


async def test_a_need_goes_round_its_whole_life(county: None, session: AsyncSession) -> None:
    (need_id,) = await report_needs(session, [NeedRequest("medicine", None)])
    assert await allowed_steps(session, need_id, GRID_OFFICER, COMMAND_CENTRE) == [NeedStep.take]
    assert await step(session, need_id, NeedStep.take, GRID_OFFICER) is Changed.done
    assert await step(session, need_id, NeedStep.take, GRID_LEAD) is Changed.stale
    rows = await queued(session, f"need:{need_id}")
    assert told(rows, "need.taken_by") == [GRID_LEAD]  # the other handler, not the taker

    assert await step(session, need_id, NeedStep.resolve, GRID_OFFICER, "药已送到") is Changed.done
    rows = await queued(session, f"need:{need_id}")
    assert told(rows, "need.resolved") == [UNIT_LEAD, UNIT_OFFICER]
    resolved = next(row for row in rows if key_of(row) == "need.resolved")
    _, actions = decode(resolved.payload)
    assert [a.kind for a in actions] == [ActionKind.confirm_need, ActionKind.reopen_need]
    # Handlers do not confirm their own work; the unit does.
    assert await step(session, need_id, NeedStep.confirm, GRID_OFFICER) is Changed.refused

    assert await step(session, need_id, NeedStep.confirm, UNIT_OFFICER) is Changed.done
    assert await step(session, need_id, NeedStep.confirm, UNIT_LEAD) is Changed.stale
    need = await session.get(Need, need_id, populate_existing=True)
    assert need is not None and need.status == NeedStatus.confirmed
    assert need.resolution == "药已送到" and need.taken_by_name == "马晓东"
    rows = await queued(session, f"need:{need_id}")
    assert told(rows, "need.confirmed") == [GRID_LEAD, GRID_OFFICER]
    for action in ("need.taken", "need.resolved", "need.confirmed"):
        assert await audited(session, action) == 1
    assert await open_need_count(session, None) == 0


async def test_a_reopened_need_goes_back_to_the_grid_and_round_again(
    county: None, session: AsyncSession
) -> None:
    (need_id,) = await report_needs(session, [NeedRequest("food", None)])
    await step(session, need_id, NeedStep.take, GRID_LEAD)
    await step(session, need_id, NeedStep.resolve, GRID_LEAD, "已送米面油")
    assert await step(session, need_id, NeedStep.reopen, UNIT_LEAD) is Changed.done
    need = await session.get(Need, need_id, populate_existing=True)
    assert need is not None
    assert (need.status, need.cycle, need.taken_by_name) == (NeedStatus.open, 1, None)
    rows = await queued(session, f"need:{need_id}")
    assert told(rows, "need.reopened") == [GRID_LEAD, GRID_OFFICER]
    assert await audited(session, "need.reopened") == 1
    # Round again: taken by someone else this time, resolved and confirmed.
    assert await step(session, need_id, NeedStep.take, GRID_OFFICER) is Changed.done
    assert await step(session, need_id, NeedStep.resolve, GRID_OFFICER, "补送") is Changed.done
    assert await step(session, need_id, NeedStep.confirm, UNIT_LEAD) is Changed.done


async def test_steps_are_refused_to_anyone_outside_the_ticket(
    county: None, session: AsyncSession
) -> None:
    (need_id,) = await report_needs(session, [NeedRequest("doctor", None)])
    for stranger in (OTHER_GRID_LEAD, OUTSIDER, BUILDING_LEAD, UNIT_LEAD, 999_999):
        assert await step(session, need_id, NeedStep.take, stranger) is Changed.refused
    assert await step(session, 10_000, NeedStep.take, GRID_LEAD) is Changed.missing
    # Ids past int32 from a forged button find nothing, on PostgreSQL too.
    assert await step(session, 2**31, NeedStep.take, GRID_LEAD) is Changed.missing
    assert await need_for(session, 2**40, GRID_LEAD, COMMAND_CENTRE) is None
    # Resolving what nobody took is out of turn.
    assert await step(session, need_id, NeedStep.resolve, GRID_LEAD, "x") is Changed.stale
    # The zone above the grid and the command centre may take it.
    assert await allowed_steps(session, need_id, ZONE_LEAD, COMMAND_CENTRE) == [NeedStep.take]
    assert await step(session, need_id, NeedStep.take, ADMIN) is Changed.done
    need = await session.get(Need, need_id, populate_existing=True)
    assert need is not None and need.taken_by_name == "x"  # no member: the name given


async def test_reading_tickets_is_scoped_paged_and_audited(
    county: None, session: AsyncSession
) -> None:
    for report_id in range(1, 11):
        await report_needs(session, [NeedRequest("food", None)], report_id=report_id)
    grid_scope = await scope_of(session, GRID_LEAD, COMMAND_CENTRE)
    first = await needs_in_scope(session, grid_scope, GRID_LEAD, 0, per_page=8)
    assert (first.total, first.pages, len(first.needs)) == (10, 2, 8)
    last = await needs_in_scope(session, grid_scope, GRID_LEAD, 99, per_page=8)
    assert (last.page, len(last.needs)) == (1, 2)
    outsider = await scope_of(session, OUTSIDER, COMMAND_CENTRE)
    assert (await needs_in_scope(session, outsider, OUTSIDER, 0)).total == 0
    assert await need_for(session, first.needs[0].id, OUTSIDER, COMMAND_CENTRE) is None
    view = await need_for(session, first.needs[0].id, UNIT_LEAD, COMMAND_CENTRE)
    assert view is not None and view.room == "101" and view.path == UNIT
    assert await audited(session, "need.listed") == 2
    assert await audited(session, "need.read") == 1


async def test_an_overdue_ticket_climbs_to_the_zone_lead_once(
    county: None, session: AsyncSession
) -> None:
    medicine, food = await report_needs(
        session, [NeedRequest("medicine", None), NeedRequest("food", None)]
    )
    await step(session, medicine, NeedStep.take, GRID_OFFICER)
    three_hours_on = utcnow() + timedelta(hours=3)
    assert await sweep_needs(session, LIMITS, COMMAND_CENTRE, three_hours_on) == 0
    five_hours_on = utcnow() + timedelta(hours=5)
    assert await sweep_needs(session, LIMITS, COMMAND_CENTRE, five_hours_on) == 1
    assert await sweep_needs(session, LIMITS, COMMAND_CENTRE, five_hours_on) == 0
    rows = await queued(session, f"need:{medicine}")
    assert told(rows, "need.overdue") == [ZONE_LEAD, ZONE_OFFICER]
    overdue = next(row for row in rows if key_of(row) == "need.overdue")
    content, actions = decode(overdue.payload)
    assert isinstance(content, Text) and content.params["taken_by"] == "马晓东"
    assert actions == ()  # taken already: the zone is told, not asked to take it
    assert told(await queued(session, f"need:{food}"), "need.overdue") == []
    # A day on, the food ticket is late too: it climbs, with Take, since nobody took it.
    day_on = utcnow() + timedelta(hours=25)
    assert await sweep_needs(session, LIMITS, COMMAND_CENTRE, day_on) == 1
    food_rows = await queued(session, f"need:{food}")
    assert told(food_rows, "need.overdue") == [ZONE_LEAD, ZONE_OFFICER]
    assert await audited(session, "need.escalated") == 2


async def test_a_vacant_grid_sends_tickets_to_the_command_centre(
    county: None, session: AsyncSession
) -> None:
    grid = await node_id(session, GRID)
    await session.execute(update(Post).where(Post.node_id == grid).values(holder_id=None))
    await session.commit()
    (at_once,) = await report_needs(session, [NeedRequest("medicine", None)])
    assert told(await queued(session, f"need:{at_once}"), "need.opened") == [ADMIN]
    # Without the command centre's addresses, the next sweep tells it.
    (later,) = await report_needs(session, [NeedRequest("food", None)], 42, command_centre=[])
    assert await queued(session, f"need:{later}") == []
    assert await sweep_needs(session, LIMITS, COMMAND_CENTRE) == 1
    assert await sweep_needs(session, LIMITS, COMMAND_CENTRE) == 0
    assert told(await queued(session, f"need:{later}"), "need.opened") == [ADMIN]
    no_groups = await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id < 0))
    assert list(no_groups) == []


async def test_settled_tickets_and_old_alerts_are_purged_with_the_reports(
    county: None, session: AsyncSession
) -> None:
    settled, still_open = await report_needs(
        session, [NeedRequest("medicine", "胰岛素"), NeedRequest("food", None)]
    )
    await step(session, settled, NeedStep.take, GRID_LEAD)
    await step(session, settled, NeedStep.resolve, GRID_LEAD, "已送")
    alert_ids = await raise_report_alerts(
        session,
        report_id=41,
        household_id=await household(session, UNIT, "101"),
        unit_node_id=await node_id(session, UNIT),
        reporter_member_id=None,
        matches=[AlertMatch("symptoms", ">", 0, "high", 3)],
        command_centre=COMMAND_CENTRE,
    )
    await session.commit()
    assert await purge_needs_older_than(session, 30) == 0
    assert await purge_alerts_older_than(session, 30) == 0
    long_ago = utcnow() - timedelta(days=31)
    await session.execute(update(Need).values(opened_at=long_ago))
    await session.execute(update(Alert).values(created_at=long_ago))
    await session.commit()
    assert await purge_needs_older_than(session, 30) == 1
    assert await purge_alerts_older_than(session, 30) == len(alert_ids) == 1
    remaining = list(await session.scalars(select(Need.id)))
    assert remaining == [still_open]  # an open ticket is still somebody's duty
