"""The late units: households still missing, the posts' holders, the ladder steps
fired about them."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.chase import ChaseStep
from models.console.common import report_within
from models.org import Member, Node, Post, Role
from models.rounds import HouseholdReport, ReportRound, ReportStatus


@dataclass(frozen=True)
class PostHolder:
    role: str
    # "held", "vacant" or "unreachable".
    state: str
    name: str | None


@dataclass(frozen=True)
class LateUnitRow:
    unit_id: int
    path: str
    missing: int
    lead: PostHolder
    officer: PostHolder
    # Ladder steps fired for this unit or a node above it in the round, by step name.
    steps: list[str]


async def late_units(
    session: AsyncSession, report_round: ReportRound, node: Node | None, limit: int = 40
) -> tuple[list[LateUnitRow], int]:
    """The units with households still missing, most missing first, with their posts'
    holders and the ladder steps fired about them; and how many late units there are."""
    missing = (
        select(HouseholdReport.unit_id.label("unit_id"), func.count().label("missing"))
        .where(
            HouseholdReport.round_id == report_round.id,
            HouseholdReport.status == ReportStatus.missing.value,
            report_within(node),
        )
        .group_by(HouseholdReport.unit_id)
        .subquery()
    )
    top = (
        select(
            missing.c.unit_id,
            missing.c.missing,
            # Every late unit's count in the same pass: a window over the grouped rows.
            func.count().over().label("late_units"),
        )
        .order_by(missing.c.missing.desc(), missing.c.unit_id)
        .limit(limit)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                Node.id,
                Node.path,
                top.c.missing,
                top.c.late_units,
                Node.zone_id,
                Node.grid_id,
                Node.building_id,
                Post.role,
                Member.name,
                Member.reachable,
            )
            .join(top, top.c.unit_id == Node.id)
            .outerjoin(Post, Post.node_id == Node.id)
            .outerjoin(Member, Member.id == Post.holder_id)
        )
    ).all()
    ancestors: set[int] = set()
    units: dict[int, dict[str, Any]] = {}
    count = int(rows[0][3]) if rows else 0
    for unit_id, path, count_missing, _, zone_id, grid_id, building_id, role, name, reach in rows:
        entry = units.setdefault(
            unit_id,
            {
                "path": path,
                "missing": int(count_missing),
                "above": (zone_id, grid_id, building_id),
                "posts": {},
            },
        )
        ancestors.update(i for i in (zone_id, grid_id, building_id, unit_id) if i is not None)
        if role is not None:
            state = "vacant" if name is None else ("held" if reach else "unreachable")
            entry["posts"][role] = PostHolder(role, state, name)
    fired: dict[int, list[str]] = {}
    if ancestors:
        for node_id, step in await session.execute(
            select(ChaseStep.node_id, ChaseStep.step)
            .where(ChaseStep.round_id == report_round.id, ChaseStep.node_id.in_(sorted(ancestors)))
            .order_by(ChaseStep.fired_at)
        ):
            fired.setdefault(node_id, []).append(step)
    late = []
    for unit_id, entry in units.items():
        steps = [
            step for ancestor in (*entry["above"], unit_id) for step in fired.get(ancestor, [])
        ]
        late.append(
            LateUnitRow(
                unit_id,
                entry["path"],
                entry["missing"],
                entry["posts"].get(Role.lead.value, PostHolder(Role.lead.value, "vacant", None)),
                entry["posts"].get(
                    Role.officer.value, PostHolder(Role.officer.value, "vacant", None)
                ),
                sorted(set(steps), key=_step_minutes),
            )
        )
    late.sort(key=lambda row: (-row.missing, row.path))
    return late, count


def _step_minutes(name: str) -> int:
    """A ladder step's minutes from the due time, read off its name ("building+30")."""
    for index, character in enumerate(name):
        if character in "+-":
            tail = name[index:]
            return int(tail) if tail[1:].isdigit() else 0
    return 0
