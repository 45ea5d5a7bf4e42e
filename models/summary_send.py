"""The daily summary worded and queued (PRODUCT.md §3.9): each subtree's day that
``models.summary`` collected, in the catalog's words, with its chart, queued for every
reader with the day's ``chase_summaries`` row in one transaction, so that a day's summary
goes once.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.charts import purge_charts, store_chart
from models.chase_sweep import insert_ignoring
from models.chase_texts import capped
from models.messages import Chart, Param, Term, Text, TextList
from models.outbox.table import OutgoingMessage, enqueue
from models.summary import ChaseSummary, DaySummaries, NodeSummary

# Charts are kept this long after they were drawn (sent long before).
CHART_RETENTION = timedelta(days=7)
# Late units a summary names; the rest are counted.
SUMMARY_LINES = 15


def summary_text(summary: NodeSummary, day: date, has_round: bool) -> Text:
    """The summary in the catalog's words."""
    below = summary.level if summary.level is not None else None
    late_lines = [
        Text(
            "chase.line_units",
            {"unit": unit.below(below) if below else unit.path, "missing": unit.missing},
        )
        for unit in summary.late
    ]
    done = summary.reported + summary.nobody_home
    notices = [
        Text(
            "chase.summary_notice",
            {"notice": acks.notice_id, "acked": acks.acked, "recipients": acks.recipients},
        )
        for acks in summary.notice_acks()
    ]
    params: dict[str, Param] = {
        "scope": summary.path if summary.path else Term("chase.county"),
        "date": day.isoformat(),
        "done": done,
        "expected": summary.expected,
        "percent": 100 * done // summary.expected if summary.expected else 0,
        "reported": summary.reported,
        "nobody_home": summary.nobody_home,
        "late_units": len(summary.late),
        "missing": summary.missing,
        "lines": capped(late_lines, SUMMARY_LINES) if late_lines else TextList(()),
        "alerts": summary.alerts,
        "alerts_open": summary.alerts_open,
        "needs_open": summary.needs_open,
        "notices": TextList(tuple(notices) or (Text("chase.summary_no_notices"),)),
    }
    return Text("chase.summary" if has_round else "chase.summary_no_round", params)


def chart_caption(summary: NodeSummary, day: date, codes: bool) -> Text:
    legend = " · ".join(f"{bar.code} {bar.name}" for bar in summary.bars) if codes else ""
    return Text(
        "chase.chart_caption_codes" if codes else "chase.chart_caption",
        {
            "scope": summary.path if summary.path else Term("chase.county"),
            "date": day.isoformat(),
            "legend": legend[:900],
        },
    )


@dataclass(frozen=True)
class DrawnFor:
    """A chart drawn for one summary in one language."""

    png: bytes
    codes: bool


async def queue_summaries(
    session: AsyncSession,
    day_summaries: DaySummaries,
    charts: Mapping[tuple[str, str | None], DrawnFor],
    now: datetime | None = None,
) -> int:
    """Queue every reader's summary and chart (``charts`` by summary key and locale) with
    the day's ``chase_summaries`` row; nothing when the day's summary went already. Returns
    the messages queued. Commits."""
    moment = now or utcnow()
    day = day_summaries.day
    row = {"day": day, "at": moment, "messages": 0}
    if not await insert_ignoring(session, ChaseSummary, [row], ["day"]):
        await session.rollback()
        return 0
    image_ids: dict[tuple[str, str | None], int] = {}
    for drawn_for, drawn in charts.items():
        image_ids[drawn_for] = await store_chart(session, drawn.png)
    messages: list[OutgoingMessage] = []
    charts_after: list[OutgoingMessage] = []
    has_round = day_summaries.round_id is not None
    for summary in day_summaries.summaries:
        text = summary_text(summary, day, has_round)
        for reader in summary.readers:
            address = reader.recipient.telegram_id
            key = f"chase.summary:{day.isoformat()}:{summary.key}:{address}"
            messages.append(
                OutgoingMessage(
                    chat_id=address,
                    member_id=reader.recipient.member_id,
                    content=text,
                    dedupe_key=key,
                    source=f"chase.summary:{day.isoformat()}",
                )
            )
            drawn_for = (summary.key, reader.locale)
            if drawn_for not in image_ids:
                continue
            caption = chart_caption(summary, day, charts[drawn_for].codes)
            charts_after.append(
                OutgoingMessage(
                    chat_id=address,
                    member_id=reader.recipient.member_id,
                    content=Chart(image_ids[drawn_for], caption),
                    dedupe_key=f"{key}:chart",
                    source=f"chase.summary:{day.isoformat()}",
                )
            )
    # Each reader's text goes before their chart: the sender takes equal rows by id.
    queued = await enqueue(session, messages + charts_after)
    await session.execute(
        update(ChaseSummary).where(ChaseSummary.day == day).values(messages=queued),
        execution_options={"synchronize_session": False},
    )
    await purge_charts(session, CHART_RETENTION)
    await session.commit()
    return queued
