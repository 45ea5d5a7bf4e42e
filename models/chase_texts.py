"""The words of the ladder's messages, as catalog texts: a unit lead's missing rooms, a
building lead's late units with their leads, a grid lead's units, a zone lead's grids."""

from collections.abc import Mapping
from zoneinfo import ZoneInfo

from models.base import as_utc
from models.chase import LadderStep
from models.lateness import LateUnit, PostState, PostStatus, Rollup, roll_up
from models.messages import Param, Text, TextList
from models.org import Level
from models.rounds import ReportRound

# Lines of one message; the rest are counted ("… and 12 more").
MAX_LINES = 25
# Rooms named to a unit lead; a unit rarely has more.
MAX_ROOMS = 60


class Composer:
    """The words of one step's messages, as catalog texts."""

    def __init__(self, step: LadderStep, report_round: ReportRound, timezone: str) -> None:
        self.step = step
        due = as_utc(report_round.due_at).astimezone(ZoneInfo(timezone))
        self.due = due.strftime("%H:%M")
        self.date = report_round.date.isoformat()
        minutes = step.minutes
        timing = "before" if minutes < 0 else "due" if minutes == 0 else "after"
        self.when = TextList(
            (Text(f"chase.when_{timing}", {"due": self.due, "minutes": abs(minutes)}),)
        )

    def unit(self, unit: LateUnit, rooms: Mapping[int, list[str]]) -> Text:
        unit_rooms = rooms.get(unit.unit_id, [])
        shown = ", ".join(unit_rooms[:MAX_ROOMS]) + (" …" if len(unit_rooms) > MAX_ROOMS else "")
        return Text(
            "chase.unit",
            {
                "when": self.when,
                "unit": unit.path,
                "missing": unit.missing,
                "rooms": shown,
                "date": self.date,
            },
        )

    def above(self, group: Rollup, leads: Mapping[int, PostStatus]) -> Text:
        level = self.step.level
        params: dict[str, Param] = {
            "when": self.when,
            "node": group.path,
            "units": len(group.units),
            "missing": group.missing,
            "date": self.date,
        }
        if level is Level.building:
            lines = [_unit_line(unit, level, leads.get(unit.unit_id)) for unit in group.units]
        elif level is Level.grid:
            lines = [
                Text("chase.line_units", {"unit": unit.below(level), "missing": unit.missing})
                for unit in group.units
            ]
        else:
            grids = roll_up(group.units, Level.grid)
            params["grids"] = len(grids)
            lines = [_grid_line(grid) for grid in grids]
        params["lines"] = capped(lines)
        return Text(f"chase.{level.value}", params)


def capped(lines: list[Text], limit: int = MAX_LINES) -> TextList:
    if len(lines) <= limit:
        return TextList(tuple(lines))
    more = Text("chase.more", {"count": len(lines) - limit + 1})
    return TextList((*lines[: limit - 1], more))


def _unit_line(unit: LateUnit, level: Level, lead: PostStatus | None) -> Text:
    params: dict[str, Param] = {"unit": unit.below(level), "missing": unit.missing}
    if lead is None or lead.state is PostState.vacant:
        return Text("chase.line_unit_vacant", params)
    params["name"] = lead.name or ""
    if lead.state is PostState.unreachable:
        return Text("chase.line_unit_unreachable", params)
    return Text("chase.line_unit", params)


def _grid_line(grid: Rollup) -> Text:
    worst = max(grid.units, key=lambda unit: unit.missing)  # the first of the worst
    return Text(
        "chase.line_grid",
        {
            "grid": grid.units[0].name_at(Level.grid),
            "units": len(grid.units),
            "missing": grid.missing,
            "worst": worst.below(Level.grid),
            "worst_missing": worst.missing,
        },
    )
