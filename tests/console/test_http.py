"""The console over HTTP (aiohttp's test client): the bot's one-time link, the session
cookie, scope on every request, the live stream and the export."""

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from models.console_auth import ConsoleLink, issue_link
from models.members import member_by_telegram_id
from models.org import Member, Post
from models.posts import release
from models.registration import get_or_create_member
from models.spreadsheets import FORMULA_STARTS
from models.system import AuditEntry
from tests.console.fixtures import ADMIN_ID, console_app, console_config, county_in_round
from tests.fixtures import GRID, OTHER_ZONE, UNIT, hold_post, node_at

# The console's test client: aiohttp's is generic in the request and application types.
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def config(db_url: str) -> Config:
    return console_config(db_url)


@pytest.fixture
async def client(
    config: Config, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Client]:
    async with TestClient(TestServer(console_app(config, session_factory))) as client:
        yield client


async def admin(session: AsyncSession) -> Member:
    return await get_or_create_member(session, ADMIN_ID, "指挥中心", None, "zh_Hans")


async def log_in(client: Client, token: str) -> None:
    landing = await client.get(f"/console/login?token={token}")
    assert landing.status == 200 and token in await landing.text()
    opened = await client.post("/console/login", data={"token": token}, allow_redirects=False)
    assert opened.status == 303, await opened.text()


async def test_the_link_opens_once_and_sets_a_strict_httponly_cookie(
    client: Client,
    session: AsyncSession,
) -> None:
    await county_in_round(session)
    token = await issue_link(session, await admin(session), timedelta(minutes=5))
    stored = await session.scalar(select(ConsoleLink.token_hash))
    assert stored is not None and token not in stored

    opened = await client.post("/console/login", data={"token": token}, allow_redirects=False)
    cookie = opened.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    county = await client.get("/console/node/county")
    assert county.status == 200
    assert "县卫健局片区" in await county.text()

    again = await client.post("/console/login", data={"token": token}, allow_redirects=False)
    assert again.status == 403
    assert "县卫健局片区" not in await again.text()


async def test_an_expired_link_opens_nothing(
    client: Client,
    session: AsyncSession,
) -> None:
    await county_in_round(session)
    token = await issue_link(
        session, await admin(session), timedelta(minutes=5), now=_minutes_ago(6)
    )
    opened = await client.post("/console/login", data={"token": token}, allow_redirects=False)
    assert opened.status == 403
    assert (await client.get("/console/node/county")).status == 401


async def test_https_base_url_makes_the_cookie_secure(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    config = console_config(db_url, base_url="https://wuji.example.org")
    token = await issue_link(session, await admin(session), timedelta(minutes=5))
    async with TestClient(TestServer(console_app(config, session_factory))) as client:
        opened = await client.post("/console/login", data={"token": token}, allow_redirects=False)
    assert "Secure" in opened.headers["Set-Cookie"]


async def test_a_lead_sees_its_subtree_and_gets_403_without_data_elsewhere(
    client: Client,
    session: AsyncSession,
) -> None:
    await county_in_round(session)
    lead = await hold_post(session, 701, GRID, name="王芳")
    token = await issue_link(session, lead, timedelta(minutes=5))
    await log_in(client, token)
    grid = await node_at(session, GRID)
    other = await node_at(session, OTHER_ZONE)

    home = await client.get("/console/", allow_redirects=False)
    assert home.headers["Location"] == f"/console/node/{grid.id}"
    own = await client.get(f"/console/node/{grid.id}")
    assert own.status == 200 and "1号楼" in await own.text()
    for path in (
        f"/console/node/{other.id}",
        "/console/node/county",
        "/console/node/999999",
        f"/console/stream/{other.id}",
        f"/console/export/{other.id}.xlsx",
    ):
        refused = await client.get(path)
        body = await refused.text()
        assert refused.status == 403, path
        assert OTHER_ZONE not in body and "县卫健局片区" not in body and "panels" not in body


async def test_console_again_or_losing_the_post_ends_the_session_at_once(
    client: Client,
    session: AsyncSession,
) -> None:
    await county_in_round(session)
    lead = await hold_post(session, 702, GRID)
    grid = await node_at(session, GRID)
    await log_in(client, await issue_link(session, lead, timedelta(minutes=5)))
    assert (await client.get(f"/console/node/{grid.id}")).status == 200

    await issue_link(session, lead, timedelta(minutes=5))  # /console asked again
    assert (await client.get(f"/console/node/{grid.id}")).status == 401

    await log_in(client, await issue_link(session, lead, timedelta(minutes=5)))
    assert (await client.get(f"/console/node/{grid.id}")).status == 200
    post = await session.scalar(select(Post).where(Post.holder_id == lead.id))
    assert post is not None
    await release(session, post, None, how="test")
    await session.commit()
    ended = await client.get(f"/console/node/{grid.id}")
    assert ended.status == 401 and "1号楼" not in await ended.text()


async def test_views_and_exports_are_audited_and_the_export_is_injection_safe(
    client: Client,
    session: AsyncSession,
) -> None:
    from tests.console.fixtures import CALM, save

    report_round = await county_in_round(session)
    unit = await node_at(session, UNIT)
    household_id = await _first_household(session, unit.id)
    await save(session, report_round, household_id, answers={**CALM, "note": "=HYPERLINK(1)"})
    await log_in(client, await issue_link(session, await admin(session), timedelta(minutes=5)))

    page = await client.get(f"/console/node/{unit.id}")
    assert page.status == 200 and "=HYPERLINK(1)" in await page.text()
    csv_body = await (await client.get(f"/console/export/{unit.id}.csv")).text()
    # The same file as /export in chat: reports with a column per field, needs, coverage.
    assert "住户报告" in csv_body and "需求" in csv_body and "岗位到岗" in csv_body
    cells = [cell for row in csv.reader(io.StringIO(csv_body.lstrip("\ufeff"))) for cell in row]
    assert "=HYPERLINK(1)" in csv_body
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    xlsx = await client.get("/console/export/county.xlsx")
    assert xlsx.status == 200 and (await xlsx.read())[:2] == b"PK"
    actions = list(await session.scalars(select(AuditEntry.action)))
    assert {"console.session_opened", "console.viewed", "export.round"} <= set(actions)
    exports = list(
        await session.scalars(select(AuditEntry).where(AuditEntry.action == "export.round"))
    )
    assert [entry.detail["via"] for entry in exports] == ["console", "console"]


async def test_an_export_before_any_round_says_there_is_none(
    client: Client,
    session: AsyncSession,
) -> None:
    from tests.console.fixtures import import_example_county

    await import_example_county(session)
    await log_in(client, await issue_link(session, await admin(session), timedelta(minutes=5)))
    none = await client.get("/console/export/county.csv")
    assert none.status == 404 and await none.text() == "暂无上报轮次。"
    assert (
        await session.scalar(select(AuditEntry).where(AuditEntry.action == "export.round")) is None
    )


async def test_the_stream_pushes_panels_when_a_report_is_saved(
    client: Client,
    session: AsyncSession,
) -> None:
    from tests.console.fixtures import save

    report_round = await county_in_round(session)
    unit = await node_at(session, UNIT)
    await log_in(client, await issue_link(session, await admin(session), timedelta(minutes=5)))
    page = await client.get(f"/console/node/{unit.id}")
    generation = re.search(r"\?g=(\d+)", await page.text())
    assert generation is not None
    stream = await client.get(f"/console/stream/{unit.id}?g={generation.group(1)}")
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    await save(session, report_round, await _first_household(session, unit.id))
    pushed = b""
    while b"\n\n" not in pushed.split(b"event: panels", 1)[-1] or b"event: panels" not in pushed:
        pushed += await stream.content.readany()
    assert "已报".encode() in pushed.split(b"event: panels", 1)[1]
    stream.close()
    assert await member_by_telegram_id(session, ADMIN_ID) is not None


def _minutes_ago(minutes: int) -> datetime:
    from models.base import utcnow

    return utcnow() - timedelta(minutes=minutes)


async def _first_household(session: AsyncSession, unit_id: int) -> int:
    from models.org import Household

    found = await session.scalar(
        select(Household.id).where(Household.unit_id == unit_id).order_by(Household.id)
    )
    assert found is not None
    return found
