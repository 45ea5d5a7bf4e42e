"""The console in a real browser: Debian's headless Chromium driven by Playwright for Python
(never ``playwright install``: its download cannot work here; ``.ci/run`` installs the
``chromium`` and ``fonts-noto-cjk`` packages). Screenshots go to tests/artifacts/."""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.types import Update
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright, expect
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_dispatcher, build_storage
from bot.config import Config
from bot.i18n import create_i18n
from models.org import Household
from tests.console.fixtures import ADMIN_ID, console_app, console_config, county_in_round, save
from tests.fixtures import (
    FAST_BOT_TOKEN,
    GRID,
    OTHER_ZONE,
    UNIT,
    RecordingSession,
    a_user,
    hold_post,
    message_update,
    node_at,
    recording_bot,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps calling out from a closed network.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def served(
    db_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[Config, str]]:
    config = console_config(db_url)
    config.telegram.token = SecretStr(FAST_BOT_TOKEN)
    server = TestServer(console_app(config, session_factory), host="127.0.0.1")
    await server.start_server()
    config.console.base_url = str(server.make_url("")).rstrip("/")
    yield config, config.console.base_url
    await server.close()


async def link_from_bot(
    config: Config, session_factory: async_sessionmaker[AsyncSession], user: dict[str, Any]
) -> str:
    """Send /console to the bot in private chat (the real dispatcher) and read the link."""
    storage, isolation = build_storage(config, session_factory)
    dispatcher = build_dispatcher(
        config, session_factory, create_i18n("zh_Hans"), storage, isolation
    )
    bot: Bot = recording_bot()
    try:
        update: Update = message_update(bot, user, "/console")
        await dispatcher.feed_update(bot, update)
        sent = cast(RecordingSession, bot.session).sent(user["id"])
    finally:
        await bot.session.close()
        await storage.close()
        await isolation.close()
    found = re.search(r"(https?://\S+/console/login\?token=[\w-]+)", sent[-1].text)
    assert found is not None, sent[-1].text
    return found.group(1)


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


async def test_an_admin_drills_from_the_county_to_a_unit_and_sees_a_report_arrive_live(
    browser: Browser,
    served: tuple[Config, str],
    session_factory: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    config, _ = served
    report_round = await county_in_round(session)
    unit = await node_at(session, UNIT)
    households = list(
        await session.scalars(
            select(Household.id).where(Household.unit_id == unit.id).order_by(Household.id)
        )
    )
    await save(session, report_round, households[1])
    link = await link_from_bot(config, session_factory, a_user(ADMIN_ID, "指挥中心", "zh-hans"))

    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    await page.goto(link)
    await expect(page).to_have_url(re.compile(r"/console/node/county$"))
    await expect(page.locator("#progress")).to_contain_text("县卫健局片区")
    await expect(page.locator("#progress .asof")).to_contain_text("数据截至")
    await shot(page, "county")

    for name in UNIT.split("/"):
        await page.locator("#progress a", has_text=name).first.click()
        await expect(page.locator(".crumbs .here")).to_have_text(name)
    await expect(page.locator("#progress table.households tbody tr")).to_have_count(len(households))
    first = page.locator(f'tr[data-household="{households[0]}"]')
    await expect(first).to_contain_text("未报")
    await shot(page, "unit-before")

    # Saved in chat (the domain call the /report conversation makes): no reload here.
    await save(session, report_round, households[0])
    await expect(first).to_contain_text("已报", timeout=10_000)
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
    await shot(page, "unit-live")

    await page.locator("#up").click()
    await expect(page.locator(".crumbs .here")).to_have_text(UNIT.split("/")[2])
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    await phone.add_cookies(await context.cookies())
    phone_page = await phone.new_page()
    await phone_page.goto(page.url)
    await shot(phone_page, "phone-building")
    await phone.close()
    await context.close()


async def test_a_grid_leads_view_refuses_a_node_outside_its_scope(
    browser: Browser,
    served: tuple[Config, str],
    session_factory: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    config, base = served
    await county_in_round(session)
    await hold_post(session, 801, GRID, name="王芳", locale="zh_Hans")
    other = await node_at(session, OTHER_ZONE)
    grid = await node_at(session, GRID)
    link = await link_from_bot(config, session_factory, a_user(801, "王芳", "zh-hans"))

    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    await page.goto(link)
    await expect(page).to_have_url(re.compile(rf"/console/node/{grid.id}$"))
    await expect(page.locator("#progress")).to_contain_text("1号楼")
    await shot(page, "grid-lead")

    response = await page.goto(f"{base}/console/node/{other.id}")
    assert response is not None and response.status == 403
    source = await page.content()
    assert OTHER_ZONE not in source and "阳光小区" not in source and 'id="panels"' not in source
    await expect(page.locator("#forbidden")).to_have_text("无权查看。")
    await page.close()


async def test_chinese_labels_render_with_a_cjk_font_not_boxes(
    browser: Browser,
    served: tuple[Config, str],
    session_factory: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    config, _ = served
    await county_in_round(session)
    link = await link_from_bot(config, session_factory, a_user(ADMIN_ID, "指挥中心", "zh-hans"))
    page = await browser.new_page()
    await page.goto(link)
    await expect(page.locator("#progress h2")).to_have_text("上报进度")
    # Draw two Chinese characters and a code point no font has (drawn as the "missing
    # glyph" box) in the page's own font: real glyphs differ from each other and from it.
    drawn = await page.evaluate(
        """() => {
          const font = getComputedStyle(document.querySelector('#progress h2')).fontFamily;
          const draw = (text) => {
            const canvas = document.createElement('canvas');
            canvas.width = 64; canvas.height = 64;
            const context = canvas.getContext('2d');
            context.font = '48px ' + font;
            context.fillText(text, 4, 52);
            return Array.from(context.getImageData(0, 0, 64, 64).data).join(',');
          };
          return [draw('上'), draw('报'), draw('\\u{10FFFD}'), draw('')];
        }"""
    )
    shang, bao, missing, blank = drawn
    assert shang != blank and bao != blank
    assert shang != bao
    assert shang != missing and bao != missing
    await page.close()
