"""What the command centre's web console shows, read set-based: one query per panel
(progress, late units, alerts and needs, notices, post coverage, trend), from a node down
(the county for None), never a query per node.

- ``common``: colour bands, age buckets, the level below a node, breadcrumbs, the round;
- ``progress``: households reported per child node, their totals, a unit's households,
  the trend over recent rounds;
- ``late``: the late units, their posts' holders and the ladder steps fired;
- ``items``: open alerts and needs, the latest notices;
- ``coverage``: posts vacant, unreachable or silent;
- ``changes``: the fingerprint the live updates watch.

The export is ``models.exports``', the same in the console as in chat and on the command line.

Access is the caller's business (``models.access.scope_of`` on every request); these
functions read what lies under the node they are given.
"""

from models.console.changes import data_version
from models.console.common import (
    AGE_BUCKETS,
    AMBER_FROM,
    GREEN_FROM,
    age_bucket,
    band,
    breadcrumbs,
    child_level,
    latest_round,
    nodes_by_id,
    report_within,
)
from models.console.coverage import CoverageRow, coverage
from models.console.items import NoticeRow, OpenItem, OpenItems, notices, open_items
from models.console.late import LateUnitRow, PostHolder, late_units
from models.console.progress import (
    ChildProgress,
    HouseholdRow,
    Totals,
    TrendPoint,
    households,
    progress,
    recent_rounds,
    total_of,
    trend,
)

__all__ = [
    "AGE_BUCKETS",
    "AMBER_FROM",
    "GREEN_FROM",
    "ChildProgress",
    "CoverageRow",
    "HouseholdRow",
    "LateUnitRow",
    "NoticeRow",
    "OpenItem",
    "OpenItems",
    "PostHolder",
    "Totals",
    "TrendPoint",
    "age_bucket",
    "band",
    "breadcrumbs",
    "child_level",
    "coverage",
    "data_version",
    "households",
    "late_units",
    "latest_round",
    "nodes_by_id",
    "notices",
    "open_items",
    "progress",
    "recent_rounds",
    "report_within",
    "total_of",
    "trend",
]
