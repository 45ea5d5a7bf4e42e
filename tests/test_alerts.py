"""Alerts in the domain: who is told, once; the first acknowledgement; the climb to the
command centre after the set time, once."""

from datetime import date, time, timedelta
from pathlib import Path

import pytest
from aiogram.methods import SendMessage
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import create_i18n
from handlers.outbound import TelegramRenderer
from models.alert_followup import Acknowledged, acknowledge_alert, escalate_unacknowledged
from models.alert_views import open_alert_count
from models.alerts import (
    ALERT_PRIORITY,
    Alert,
    AlertRefused,
    MemberAlert,
    raise_member_alert,
    raise_report_alerts,
)
from models.base import utcnow
from models.form_parse import load_form
from models.forms import AlertMatch
from models.messages import ActionKind, AlertBody, decode
from models.org import Post
from models.outbox.delivery import claim_due
from models.outbox.table import OutboxMessage
from models.people import GroupChat
from models.rounds import HouseholdReport, RoundSchedule, open_round
from tests.response_fixtures import (
    ABOVE_UNIT,
    ADMIN,
    BUILDING,
    BUILDING_LEAD,
    GRID,
    GRID_LEAD,
    GRID_OFFICER,
    OUTSIDER,
    UNIT,
    UNIT_LEAD,
    ZONE,
    ZONE_LEAD,
    audited,
    household,
    key_of,
    member_id,
    node_id,
    queued,
    seat_county,
)

COMMAND_CENTRE = [ADMIN]
DEFAULT_FORM = Path(__file__).resolve().parent.parent / "bot" / "forms" / "household.toml"
FEVER = AlertMatch("symptoms", ">", 0, "high", 2)
POSITIVE = AlertMatch("test_status", "==", "positive", "critical", "positive")


@pytest.fixture
async def county(session_factory: async_sessionmaker[AsyncSession]) -> None:
    await seat_county(session_factory)


async def unit_lead_alert(session: AsyncSession, text: str = "3楼有老人摔倒") -> int:
    member = await member_id(session, UNIT_LEAD)
    post = await session.scalar(select(Post.id).where(Post.holder_id == member))
    assert post is not None
    raised = await raise_member_alert(
        session,
        member_id=member,
        post_id=post,
        alert=MemberAlert(text=text),
        command_centre=COMMAND_CENTRE,
    )
    return raised.alert_id


async def test_a_members_alert_reaches_the_leads_above_once_and_only_them(
    county: None, session: AsyncSession
) -> None:
    alert_id = await unit_lead_alert(session)
    rows = await queued(session, f"alert:{alert_id}")
    assert sorted(row.chat_id for row in rows) == sorted(ABOVE_UNIT)
    for row in rows:
        content, actions = decode(row.payload)
        assert content == AlertBody(alert_id)
        assert [(a.kind, a.target_id) for a in actions] == [
            (ActionKind.acknowledge_alert, alert_id)
        ]
        # Ahead of any broadcast in the outbox.
        assert row.priority == ALERT_PRIORITY
    assert await audited(session, "alert.raised") == 1
    assert await open_alert_count(session, None) == 1


async def test_an_alert_from_a_post_not_held_is_refused(
    county: None, session: AsyncSession
) -> None:
    member = await member_id(session, UNIT_LEAD)
    someone_elses = await session.scalar(
        select(Post.id).where(Post.holder_id == await member_id(session, GRID_LEAD))
    )
    assert someone_elses is not None
    with pytest.raises(AlertRefused):
        await raise_member_alert(
            session,
            member_id=member,
            post_id=someone_elses,
            alert=MemberAlert(text="x"),
            command_centre=COMMAND_CENTRE,
        )


async def test_a_zone_leads_alert_goes_straight_to_the_command_centre(
    county: None, session: AsyncSession
) -> None:
    member = await member_id(session, ZONE_LEAD)
    post = await session.scalar(select(Post.id).where(Post.holder_id == member))
    assert post is not None
    raised = await raise_member_alert(
        session,
        member_id=member,
        post_id=post,
        alert=MemberAlert(text="片区物资告急"),
        command_centre=[ADMIN, -100200300],  # a group id among the admins is skipped
    )
    assert raised.to_command_centre
    rows = await queued(session, f"alert:{raised.alert_id}")
    assert [(row.chat_id, key_of(row)) for row in rows] == [(ADMIN, "alert")]
    # Already with the command centre: the sweep does not send it again.
    later = utcnow() + timedelta(hours=2)
    assert await escalate_unacknowledged(session, timedelta(minutes=15), [ADMIN], later) == []


async def test_report_alerts_one_per_field_never_repeated_never_to_a_group(
    county: None, session: AsyncSession
) -> None:
    session.add(GroupChat(chat_id=-4001, title="阳光小区群", node_id=await node_id(session, GRID)))
    await session.commit()
    unit = await node_id(session, UNIT)
    home = await household(session, UNIT, "101")
    reporter = await member_id(session, UNIT_LEAD)
    weaker_fever = AlertMatch("symptoms", ">=", 1, "low", 2)
    ids = await raise_report_alerts(
        session,
        report_id=41,
        household_id=home,
        unit_node_id=unit,
        reporter_member_id=reporter,
        matches=[weaker_fever, FEVER, POSITIVE],
        command_centre=COMMAND_CENTRE,
    )
    await session.commit()
    assert len(ids) == 2
    alerts = {
        a.rule_field: a for a in await session.scalars(select(Alert).where(Alert.id.in_(ids)))
    }
    assert alerts["symptoms"].severity == "high"  # the most severe rule of the field
    assert alerts["test_status"].answer == "positive"
    for alert_id in ids:
        rows = await queued(session, f"alert:{alert_id}")
        assert sorted(row.chat_id for row in rows) == sorted(ABOVE_UNIT)
    # A correction saved again raises nothing new.
    again = await raise_report_alerts(
        session,
        report_id=41,
        household_id=home,
        unit_node_id=unit,
        reporter_member_id=reporter,
        matches=[FEVER, POSITIVE],
        command_centre=COMMAND_CENTRE,
    )
    await session.commit()
    assert again == []
    to_groups = await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id < 0))
    assert list(to_groups) == []


async def test_the_first_acknowledgement_takes_it_and_the_others_are_told(
    county: None, session: AsyncSession
) -> None:
    alert_id = await unit_lead_alert(session)
    outsider = await acknowledge_alert(session, alert_id, OUTSIDER, "祁玉梅", COMMAND_CENTRE)
    assert outsider.outcome is Acknowledged.refused
    forged = await acknowledge_alert(session, 2**40, GRID_LEAD, "x", COMMAND_CENTRE)
    assert forged.outcome is Acknowledged.missing
    first = await acknowledge_alert(session, alert_id, GRID_OFFICER, "x", COMMAND_CENTRE)
    assert first.outcome is Acknowledged.taken and first.by_name == "马晓东"
    second = await acknowledge_alert(session, alert_id, BUILDING_LEAD, "y", COMMAND_CENTRE)
    assert second.outcome is Acknowledged.already and second.by_name == "马晓东"
    told = [row for row in await queued(session, f"alert:{alert_id}") if key_of(row) != "alert"]
    # Everyone it went to, and its sender, except the one who took it; once each.
    expected = (ABOVE_UNIT - {GRID_OFFICER}) | {UNIT_LEAD}
    assert sorted(row.chat_id for row in told) == sorted(expected)
    assert {key_of(row) for row in told} == {"alert.taken_by"}
    assert await audited(session, "alert.acknowledged") == 1
    assert await open_alert_count(session, None) == 0
    # Acknowledged: it never climbs.
    later = utcnow() + timedelta(hours=2)
    assert (
        await escalate_unacknowledged(session, timedelta(minutes=15), COMMAND_CENTRE, later) == []
    )


async def test_unacknowledged_it_climbs_to_the_command_centre_once_after_the_set_time(
    county: None, session: AsyncSession
) -> None:
    alert_id = await unit_lead_alert(session)
    after = timedelta(minutes=15)
    assert await escalate_unacknowledged(session, after, COMMAND_CENTRE) == []
    await session.execute(
        update(Alert).where(Alert.id == alert_id).values(created_at=utcnow() - after)
    )
    await session.commit()
    assert await escalate_unacknowledged(session, after, COMMAND_CENTRE) == [alert_id]
    assert await escalate_unacknowledged(session, after, COMMAND_CENTRE) == []
    rows = [r for r in await queued(session, f"alert:{alert_id}") if r.chat_id == ADMIN]
    assert [key_of(row) for row in rows] == ["alert.escalated"]
    assert await audited(session, "alert.escalated") == 1
    # The command centre may take it now, and the leads above are told.
    taken = await acknowledge_alert(session, alert_id, ADMIN, "指挥部", COMMAND_CENTRE)
    assert taken.outcome is Acknowledged.taken and taken.by_name == "指挥部"
    told = [r for r in await queued(session, f"alert:{alert_id}") if key_of(r) == "alert.taken_by"]
    assert sorted(row.chat_id for row in told) == sorted(ABOVE_UNIT | {UNIT_LEAD})


async def test_where_every_post_above_is_vacant_the_command_centre_hears_at_once(
    county: None, session: AsyncSession
) -> None:
    await session.execute(
        update(Post)
        .where(Post.node_id.in_([await node_id(session, p) for p in (ZONE, GRID, BUILDING)]))
        .values(holder_id=None)
    )
    await session.commit()
    alert_id = await unit_lead_alert(session)
    rows = await queued(session, f"alert:{alert_id}")
    assert [(row.chat_id, key_of(row)) for row in rows] == [(ADMIN, "alert")]


async def test_a_report_alert_words_field_and_answer_in_each_readers_language(
    county: None, session: AsyncSession
) -> None:
    form = load_form(DEFAULT_FORM)
    schedule = RoundSchedule(time(7), time(10), time(7), "Asia/Shanghai")
    report_round = await open_round(session, schedule, form, date(2026, 12, 3))
    home = await household(session, UNIT, "202")
    report_id = await session.scalar(
        select(HouseholdReport.id).where(
            HouseholdReport.round_id == report_round.id, HouseholdReport.household_id == home
        )
    )
    assert report_id is not None
    matches = form.alert_matches({"symptoms": 2, "test_status": "positive"})
    ids = await raise_report_alerts(
        session,
        report_id=report_id,
        household_id=home,
        unit_node_id=await node_id(session, UNIT),
        reporter_member_id=await member_id(session, UNIT_LEAD),
        matches=matches,
        command_centre=COMMAND_CENTRE,
    )
    await session.commit()
    assert len(ids) == 2
    renderer = TelegramRenderer(create_i18n("zh_Hans"))
    texts: dict[int, list[str]] = {}
    for claimed in await claim_due(session, 100):
        method = renderer.render(claimed)
        assert isinstance(method, SendMessage)
        texts.setdefault(claimed.chat_id, []).append(method.text)
    assert set(texts) == ABOVE_UNIT
    chinese = "\n".join(texts[BUILDING_LEAD])
    assert "检测情况：<b>阳性</b>" in chinese and "（紧急）" in chinese
    assert "发热或有症状人数：<b>2</b>" in chinese and "202 户" in chinese and "马秀兰" in chinese
    english = "\n".join(texts[GRID_OFFICER])
    assert "Test status: <b>Positive</b>" in english and "(critical)" in english
    assert f"{UNIT}  room 202" in english
