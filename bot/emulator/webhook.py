"""Pushes queued updates to the bot's webhook, one at a time, retrying until it answers 2xx."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, MultipartReader

from .models import WebhookDelivery
from .params import normalize, read_multipart
from .state import Webhook, World

MethodCall = Callable[[str, dict[str, Any]], Awaitable[None]]


class WebhookDeliverer:
    def __init__(
        self, world: World, closing: asyncio.Event, on_method: MethodCall, timeout: float = 10.0
    ) -> None:
        self.world = world
        self.closing = closing
        self.on_method = on_method
        self.timeout = timeout
        self.deliveries: list[WebhookDelivery] = []

    async def run(self) -> None:
        failures = 0
        async with ClientSession(timeout=ClientTimeout(total=self.timeout)) as session:
            while not self.closing.is_set():
                hook = self.world.webhook
                if hook is None or not self.world.updates:
                    await self.world.changed.wait(1.0)
                    continue
                if await self._deliver(session, hook, self.world.updates[0]):
                    failures = 0
                else:
                    failures += 1
                    # Telegram backs off too; kept short so tests stay quick.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.closing.wait(), min(0.05 * 2**failures, 1.0))

    async def _deliver(self, session: ClientSession, hook: Webhook, update: dict[str, Any]) -> bool:
        headers = {}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        call: tuple[str, dict[str, Any]] | None = None
        error: str | None = None
        status: int | str
        try:
            async with session.post(hook.url, json=update, headers=headers) as response:
                status = response.status
                if 200 <= status < 300:
                    call = await _method_in_reply(response)
                else:
                    error = f"Wrong response from the webhook: {status} {response.reason}"
        except (ClientError, TimeoutError) as exc:
            status, error = "error", f"Connection failed: {type(exc).__name__}: {exc}"
        self.deliveries.append(
            WebhookDelivery(time.monotonic(), update["update_id"], hook.url, status, error)
        )
        if error is not None:
            hook.last_error_date, hook.last_error_message = int(time.time()), error
            self.world.changed.fire()
            return False
        self.world.updates = [u for u in self.world.updates if u is not update]
        self.world.changed.fire()
        if call is not None:
            await self.on_method(*call)
        return True


async def _method_in_reply(response: ClientResponse) -> tuple[str, dict[str, Any]] | None:
    """A webhook may answer with one Bot API call, as JSON or as multipart form data."""
    if response.content_type == "multipart/form-data":
        params = await read_multipart(MultipartReader(response.headers, response.content))
    elif response.content_type == "application/json":
        try:
            body = json.loads(await response.text())
        except ValueError:
            return None
        params = normalize(body) if isinstance(body, dict) else {}
    else:
        return None
    method = params.pop("method", None)
    return (str(method), params) if method else None
