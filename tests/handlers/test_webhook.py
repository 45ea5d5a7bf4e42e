"""Webhook mode: the secret token is checked (and long enough), updates are handled before
the answer and once, a body that is not an update gets 400."""

from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from bot.app import Application
from bot.config import Config, ConfigError
from bot.preflight import check_webhook
from tests.emulator import TelegramEmulator

SECRET = "wuji-webhook-secret_0123456789"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
async def webhook_server(config: Config, engine: object) -> AsyncIterator[TestServer]:
    config.telegram.mode = "webhook"
    config.webhook.secret_token = SecretStr(SECRET)
    config.webhook.url = "https://wuji.example.org/telegram"
    application = Application.build(config)
    await application.prepare()
    server = TestServer(application.web_app(SECRET), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()
        await application.close()


def message_update(update_id: int, user_id: int, text: str) -> dict[str, object]:
    user = {"id": user_id, "is_bot": False, "first_name": "Alice", "language_code": "en"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Alice"},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }


async def test_a_wrong_or_missing_secret_gets_401_and_is_not_handled(
    webhook_server: TestServer, emulator: TelegramEmulator
) -> None:
    url = str(webhook_server.make_url("/telegram"))
    async with ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
            async with http.post(url, json=message_update(1, 5001, "/help"), headers=headers) as r:
                assert r.status == 401
    assert emulator.bot_messages(5001) == []


async def test_the_right_secret_gets_the_update_handled_before_the_answer(
    webhook_server: TestServer, emulator: TelegramEmulator
) -> None:
    emulator.user(user_id=5002, first_name="Alice", language_code="en")
    await emulator.user(user_id=5002).send("hi")  # the chat exists once the user wrote
    url = str(webhook_server.make_url("/telegram"))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with ClientSession() as http:
        async with http.post(url, json=message_update(2, 5002, "/help"), headers=headers) as r:
            assert r.status == 200
        # Handled before answering: the reply is already there.
        assert any("/lang" in message.text for message in emulator.bot_messages(5002))


async def test_health_reports_the_database(webhook_server: TestServer) -> None:
    async with ClientSession() as http, http.get(webhook_server.make_url("/health")) as response:
        assert response.status == 200
        assert (await response.json()) == {"status": "ok", "database": "ok"}


async def test_a_body_that_is_not_an_update_gets_400_after_the_secret_check(
    webhook_server: TestServer,
) -> None:
    url = str(webhook_server.make_url("/telegram"))
    bodies = [b"", b"not json", b"\xff\xfe", b"[]", b'{"update_id": "one"}', b'{"message": 1}']
    async with ClientSession() as http:
        for body in bodies:
            async with http.post(url, data=body, headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 400, body
            async with http.post(url, data=body, headers={SECRET_HEADER: "guess"}) as response:
                assert response.status == 401, body


async def test_an_update_delivered_twice_is_handled_once(
    webhook_server: TestServer, emulator: TelegramEmulator
) -> None:
    emulator.user(user_id=5003, first_name="Alice", language_code="en")
    await emulator.user(user_id=5003).send("hi")
    url = str(webhook_server.make_url("/telegram"))
    async with ClientSession() as http:
        for _ in range(2):  # Telegram sends it again when it missed the first answer
            async with http.post(
                url, json=message_update(3, 5003, "/help"), headers={SECRET_HEADER: SECRET}
            ) as response:
                assert response.status == 200
    assert len([m for m in emulator.bot_messages(5003) if "/lang" in (m.text or "")]) == 1


@pytest.mark.parametrize("secret", ["", "short_secret", "a" * 15])
def test_webhook_mode_refuses_a_missing_or_short_secret(secret: str) -> None:
    config = Config()
    config.telegram.mode = "webhook"
    config.webhook.url = "https://wuji.example.org/telegram"
    config.webhook.secret_token = SecretStr(secret)
    with pytest.raises(ConfigError, match=r"\[webhook\] secret_token"):
        check_webhook(config)
    config.webhook.secret_token = SecretStr("a" * 16)
    assert check_webhook(config) == "a" * 16
