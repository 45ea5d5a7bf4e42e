"""Sending one rendered Bot API call for the outbox, as cheaply as a message can go.

The sender's own HTTP session: a pool as large as its concurrency, no request middlewares
(a 429 must reach the sender, which pauses every send at once, rather than be retried
inside the request as direct replies are), JSON bodies, and an answer read only for the
id of the message sent.
"""

from typing import Any

import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods.base import TelegramMethod
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout, FormData

JSON_BODY = {"Content-Type": "application/json"}


class TelegramTransport:
    def __init__(self, bot: Bot, connections: int) -> None:
        session = bot.session
        self._session = AiohttpSession(
            api=session.api,
            timeout=session.timeout,
            json_loads=orjson.loads,
            json_dumps=_json_dumps,
            limit=connections,
        )
        # aiogram's helpers (checking an answer, preparing values) want a Bot; this one
        # shares the token and defaults, not the session.
        self.bot = Bot(bot.token, session=self._session, default=bot.default)

    @property
    def token(self) -> str:
        return self.bot.token

    async def send(self, method: TelegramMethod[Any]) -> int:
        """Sends ``method`` and returns the id of the message sent; raises aiogram's
        exceptions for whatever Telegram answered otherwise.

        The parameters go as one JSON body instead of a form: the Bot API takes either
        (https://core.telegram.org/bots/api#making-requests), and building the form took
        a tenth of the sender's time per message. Reading only the message id spares
        building the whole Message (chat, sender, entities: a model each). A file to upload
        goes as multipart form data, the one way the Bot API takes it.
        """
        session = self._session
        parameters: dict[str, Any] = {}
        files: dict[str, InputFile] = {}
        for key, value in method.model_dump(warnings=False, exclude_none=True).items():
            prepared = session.prepare_value(value, bot=self.bot, files=files, _dumps_json=False)
            if prepared is not None and prepared != "":  # what the form leaves out
                parameters[key] = prepared
        body: bytes | FormData = orjson.dumps(parameters)
        headers: dict[str, str] | None = JSON_BODY
        if files:
            # An upload (a chart the domain drew) can only go as multipart form data.
            body, headers = session.build_form_data(self.bot, method), None
        client = await session.create_session()
        url = session.api.api_url(token=self.bot.token, method=method.__api_method__)
        try:
            async with client.post(
                url,
                data=body,
                headers=headers,
                timeout=ClientTimeout(total=session.timeout),
            ) as response:
                content = await response.read()
                status = response.status
        except TimeoutError as error:
            raise TelegramNetworkError(method=method, message="Request timeout error") from error
        except ClientError as error:
            message = f"{type(error).__name__}: {error}"
            raise TelegramNetworkError(method=method, message=message) from error
        if status == 200:
            try:
                answer = orjson.loads(content)
                return int(answer["result"]["message_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                pass  # not what a sent message looks like: aiogram judges it below
        # Raises the exception that fits the answer (flood control, forbidden, a garbled
        # answer as a decode error…).
        session.check_response(
            bot=self.bot,
            method=method,
            status_code=status,
            content=content.decode(errors="replace"),
        )
        raise TelegramNetworkError(method=method, message="an answer without a message id")

    async def close(self) -> None:
        await self._session.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
