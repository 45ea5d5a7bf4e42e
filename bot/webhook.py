"""The webhook endpoint: aiogram's request handler, answering 400 to a body that is not a
Telegram update instead of failing with 500."""

from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookRequestHandler(SimpleRequestHandler):
    async def handle(self, request: web.Request) -> web.Response:
        # The secret is checked first, so that a stranger learns nothing from the answer.
        if self.verify_secret(request.headers.get(SECRET_HEADER, ""), self.bot):
            try:
                raw = await request.json(loads=self.bot.session.json_loads)
                Update.model_validate(raw, context={"bot": self.bot})
            except ValueError:  # not UTF-8, not JSON, or JSON that is not an update
                return web.Response(status=400, text="Bad Request: the body is not an update")
        return await super().handle(request)
