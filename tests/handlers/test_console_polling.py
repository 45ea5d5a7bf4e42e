"""The console in polling mode: ``run`` without a webhook serves it on ``[console] host:port``
from the polling process, whose /console link opens it; /help and the command menu offer
/console to those who may use it, and only when it is served."""

import asyncio
import re
from contextlib import suppress

import aiohttp
import pytest

from bot.app import Application
from bot.config import Config
from tests.emulator import TelegramEmulator
from tests.handlers.fixtures import ADMIN_ID, handled
from tests.handlers.test_process import free_port

STRANGER = 1_060


@pytest.fixture
def console_config(config: Config) -> Config:
    port = free_port()
    config.console.enabled = True
    config.console.host = "127.0.0.1"
    config.console.port = port
    config.console.base_url = f"http://127.0.0.1:{port}"
    return config


async def test_polling_serves_the_console_that_its_link_opens(
    emulator: TelegramEmulator, console_config: Config, engine: object
) -> None:
    application = Application.build(console_config)
    await application.prepare()
    polling = asyncio.create_task(application.run_polling())
    try:
        admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
        await admin.send("/console")
        found = None
        while found is None:  # the reply, past anything else the bot may send meanwhile
            found = re.search(
                r"(http://\S+/console/login\?token=(\S+))",
                (await admin.next_message(timeout=30)).text or "",
            )
        link, token = found.groups()
        # The console is served on an IP address: cookies from one need an unsafe jar.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(link) as landing:
                assert landing.status == 200
                assert token in await landing.text()
            login = link.split("?")[0]
            async with browser.post(login, data={"token": token}) as opened:
                # Redirected, with the session cookie, to the county's page.
                assert opened.status == 200
                page = await opened.text()
            assert "<html" in page and "全县" in page
            base = console_config.console.base_url
            async with browser.get(f"{base}/health") as health:
                assert health.status == 200
    finally:
        with suppress(RuntimeError):
            await application.dispatcher.stop_polling()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, timeout=10)
        await application.close()


async def test_help_and_the_menu_offer_the_console_to_those_who_may_use_it(
    emulator: TelegramEmulator, console_config: Config, engine: object
) -> None:
    from tests.handlers.fixtures import polling_bot

    async with polling_bot(console_config) as application:
        admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
        await admin.send("/help")
        assert "/console — 指挥大屏" in (await admin.next_message(timeout=30)).text
        stranger = emulator.user(user_id=STRANGER, first_name="路人", language_code="zh")
        await stranger.send("/help")
        assert "/console" not in (await stranger.next_message(timeout=30)).text
        await handled(emulator, application)
    private = {c["command"] for c in emulator.commands({"type": "all_private_chats"}, "zh")}
    assert "console" in private


async def test_without_the_console_neither_help_nor_the_menu_mention_it(
    emulator: TelegramEmulator, application: Application
) -> None:
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")
    await admin.send("/help")
    assert "/console" not in (await admin.next_message(timeout=30)).text
    private = {c["command"] for c in emulator.commands({"type": "all_private_chats"}, "zh")}
    assert "console" not in private and "late" in private
