"""The demo county's data: the seed roster at a scale, and yesterday's reports (the county is
on its second day, so "no change since last report" has a last report to repeat)."""

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.forms import load_report_form, round_schedule
from models.audit import record
from models.invites import create_invites
from models.org import Household, Node, Post
from models.roster import RosterSource, import_roster
from models.rounds import HouseholdReport, ReportHow, ReportStatus, open_round
from models.seed import ZONES, seed_demo, seed_rows

CALM = {
    "people_at_home": 2,
    "symptoms": 0,
    "test_status": "negative",
    "isolation": "none",
    "vulnerable": [],
    "needs": [],
}


@dataclass
class PostToFill:
    post_id: int
    level: str
    role: str
    path: str
    node_id: int
    parent_id: int | None


async def import_county(session: AsyncSession, scale: float, units: int | None = None) -> int:
    """The seed county (``scale`` 1: all of it, 2: twice it); below 1, its first zones; with
    ``units``, only that many units of them. Returns households imported."""
    if scale >= 1 and units is None:
        report = await seed_demo(session, scale=math.ceil(scale))
        return report.households
    zones = max(1, round(ZONES * min(scale, 1)))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["community", "zone", "grid", "building", "unit", "room"])
    rows = groupby(seed_rows(), key=lambda row: row[1])
    units_seen: set[tuple[str, ...]] = set()
    for index, (_zone, zone_rows) in enumerate(rows):
        if index >= zones:
            break
        for row in zone_rows:
            units_seen.add(tuple(row[:5]))
            if units is not None and len(units_seen) > units:
                break
            writer.writerow(row)
    source = RosterSource("households.csv", buffer.getvalue().encode("utf-8"))
    return (await import_roster(session, [source])).households


async def posts_top_down(session: AsyncSession) -> list[PostToFill]:
    order = {"zone": 0, "grid": 1, "building": 2, "unit": 3}
    rows = await session.execute(
        select(Post.id, Node.level, Post.role, Node.path, Node.id, Node.parent_id).join(
            Node, Node.id == Post.node_id
        )
    )
    posts = [PostToFill(*row) for row in rows]
    posts.sort(key=lambda post: (order[post.level], post.path, post.role))
    return posts


async def invite_posts(session: AsyncSession, post_ids: list[int], admin_id: int) -> dict[int, str]:
    """A week's invite for each of the posts (post id → token), in one transaction, as
    ``python -m bot invite PATH --all`` makes them."""
    tokens = await create_invites(session, post_ids, timedelta(days=7), admin_id)
    await session.commit()
    return tokens


async def report_yesterday(session: AsyncSession, config: Config, admin_id: int) -> int:
    """Yesterday's round, every household reported calm (the county's history), written in
    one statement: the rows ``save_report`` would leave for these answers (no alert, no need
    follows from them), the households' attributes the form keeps, and one audit entry."""
    schedule = round_schedule(config)
    form = load_report_form(config)
    today = datetime.now(UTC).astimezone(schedule.zone).date()
    yesterday = await open_round(session, schedule, form, today - timedelta(days=1))
    answers = form.clean(CALM)
    assert not form.alert_matches(answers) and not form.needs_of(answers)
    attributes = {f.id: answers[f.id] for f in form.household_fields() if f.id in answers}
    reported_at = yesterday.opens_at.replace(tzinfo=UTC) + timedelta(seconds=30)
    saved = await session.execute(
        update(HouseholdReport)
        .where(
            HouseholdReport.round_id == yesterday.id,
            HouseholdReport.status == ReportStatus.missing,
        )
        .values(
            status=ReportStatus.reported,
            how=ReportHow.form.value,
            answers=answers,
            form_version=form.version,
            alert=False,
            revision=HouseholdReport.revision + 1,
            reported_at=reported_at,
        )
        .execution_options(synchronize_session=False)
    )
    if attributes:
        await session.execute(
            update(Household)
            .values(attributes=attributes)
            .execution_options(synchronize_session=False)
        )
    count = int(getattr(saved, "rowcount", 0))
    record(session, "report.history", admin_id, round_id=yesterday.id, households=count)
    await session.commit()
    return count
