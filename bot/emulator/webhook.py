"""Pushes queued updates to the bot's webhook, retrying until it answers 2xx.

By default one update at a time to the URL the bot set. ``balance`` puts a load balancer in
front, as a deployment with several webhook replicas has: each update goes to the next
backend in turn (round-robin), and a backend that refuses the connection or drops it is
passed over for the next one at once. ``lanes`` deliveries run at once (Telegram opens up to
``max_connections``), never two of one chat, so each chat's updates keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import (
    ClientConnectionError,
    ClientError,
    ClientResponse,
    ClientSession,
    ClientTimeout,
    MultipartReader,
)

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
        # The load balancer's backends; empty: the URL the bot set, directly.
        self.backends: list[str] = []
        self._turn = 0
        self._lanes = 1
        self._in_flight: set[int] = set()
        self._busy_chats: set[int] = set()

    def balance(self, backends: Sequence[str], lanes: int = 1) -> None:
        """Deliver to ``backends`` round-robin instead of the webhook's URL (which then
        stands for the balancer's public address), ``lanes`` updates at once. Call it
        before the emulator starts for more than one lane."""
        self.backends = list(backends)
        self._lanes = max(1, lanes)

    async def run(self) -> None:
        async with ClientSession(timeout=ClientTimeout(total=self.timeout)) as session:
            await asyncio.gather(*(self._lane(session) for _ in range(self._lanes)))

    async def _lane(self, session: ClientSession) -> None:
        failures = 0
        while not self.closing.is_set():
            hook = self.world.webhook
            update = self._take() if hook is not None else None
            if hook is None or update is None:
                await self.world.changed.wait(1.0)
                continue
            try:
                delivered = await self._deliver(session, hook, update)
            finally:
                self._release(update)
            if delivered:
                failures = 0
            else:
                failures += 1
                # Telegram backs off too; kept short so tests stay quick.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), min(0.05 * 2**failures, 1.0))

    def _take(self) -> dict[str, Any] | None:
        """The oldest update not in flight whose chat has none in flight."""
        for update in self.world.updates:
            chat = _chat_of(update)
            if update["update_id"] in self._in_flight or chat in self._busy_chats:
                continue
            self._in_flight.add(update["update_id"])
            self._busy_chats.add(chat)
            return update
        return None

    def _release(self, update: dict[str, Any]) -> None:
        self._in_flight.discard(update["update_id"])
        self._busy_chats.discard(_chat_of(update))
        self.world.changed.fire()

    def _targets(self, hook: Webhook) -> list[str]:
        if not self.backends:
            return [hook.url]
        first = self._turn % len(self.backends)
        self._turn += 1
        return self.backends[first:] + self.backends[:first]

    async def _deliver(self, session: ClientSession, hook: Webhook, update: dict[str, Any]) -> bool:
        headers = {}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        call: tuple[str, dict[str, Any]] | None = None
        error: str | None = None
        for url in self._targets(hook):
            status: int | str
            error = None
            try:
                async with session.post(url, json=update, headers=headers) as response:
                    status = response.status
                    if 200 <= status < 300:
                        call = await _method_in_reply(response)
                    else:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except (ClientError, TimeoutError) as exc:
                status, error = "error", f"Connection failed: {type(exc).__name__}: {exc}"
                self.deliveries.append(
                    WebhookDelivery(time.monotonic(), update["update_id"], url, status, error)
                )
                if self.backends and isinstance(exc, ClientConnectionError):
                    continue  # the balancer tries the next backend
                break
            self.deliveries.append(
                WebhookDelivery(time.monotonic(), update["update_id"], url, status, error)
            )
            break
        if error is not None:
            hook.last_error_date, hook.last_error_message = int(time.time()), error
            self.world.changed.fire()
            return False
        self.world.updates = [u for u in self.world.updates if u is not update]
        self.world.changed.fire()
        if call is not None:
            await self.on_method(*call)
        return True


def _chat_of(update: dict[str, Any]) -> int:
    """The chat an update belongs to (the user's id for one without a chat)."""
    for key, value in update.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        chat = value.get("chat") or (value.get("message") or {}).get("chat")
        if isinstance(chat, dict) and "id" in chat:
            return int(chat["id"])
        sender = value.get("from")
        if isinstance(sender, dict) and "id" in sender:
            return int(sender["id"])
    return 0


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
