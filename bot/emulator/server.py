"""The emulator: a Bot API HTTP server on loopback plus the handles tests use to play users."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from .client import ChatRef, EmuGroup, EmuUser, chat_id_of
from .limits import Limits, RateLimiter
from .methods import BotApi, scope_key
from .models import (
    SEND_METHODS,
    ApiError,
    BotMessage,
    Fault,
    RecordedRequest,
    WebhookDelivery,
)
from .params import read_request
from .state import GroupState, UserState, World
from .webhook import WebhookDeliverer

log = logging.getLogger(__name__)
T = TypeVar("T")

_NOT_FOUND = ApiError(404, "Not Found")


class TelegramEmulator:
    def __init__(
        self,
        token: str = "123456:TEST-token",
        bot_id: int = 123456,
        bot_username: str = "wuji_test_bot",
        limits: Limits | None = None,
        bot_first_name: str = "Wuji Test Bot",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` times the flood limits' buckets (a ``ManualClock`` makes them wait for
        the test, not for wall time)."""
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.world = World(self.bot_user)
        self.limiter = RateLimiter(limits or Limits(), clock)
        self._closing = asyncio.Event()
        self.api = BotApi(self.world, self.limiter, self._closing)
        self.webhook = WebhookDeliverer(self.world, self._closing, self._webhook_method_call)
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.internal_errors: list[BaseException] = []  # emulator bugs; tests may assert empty
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._users: dict[int, EmuUser] = {}
        self._groups: dict[int, EmuGroup] = {}

    @property
    def limits(self) -> Limits:
        return self.limiter.limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        self.limiter.limits = limits
        self.limiter.reset()

    @property
    def api_server(self) -> TelegramAPIServer:
        """For aiogram: ``AiohttpSession(api=emu.api_server)``; valid once started."""
        if not self.base_url:
            raise RuntimeError("start the emulator first")
        return TelegramAPIServer.from_base(self.base_url)

    # --- lifecycle -----------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._closing.clear()
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        self._spawn(self.webhook.run())
        return self.base_url

    async def stop(self) -> None:
        self._closing.set()
        self.world.changed.fire()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- HTTP ----------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        entry = self.api.lookup(name)
        record = RecordedRequest(time.monotonic(), entry[0] if entry else name, {})
        self.requests.append(record)
        try:
            record.params = await read_request(request)
        except ApiError as error:
            return _answer(self._finish(record, error))
        if request.match_info["token"] != self.token:
            return _answer(self._finish(record, ApiError(401, "Unauthorized")))
        fault = self._take_fault(record.method, record.params)
        if fault is not None:
            return await self._apply_fault(fault, request, record)
        return _answer(await self._execute(record))

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _answer(ApiError(401, "Unauthorized"))
        stored = self.world.file_by_path(request.match_info["path"])
        if stored is None or stored.content is None:
            return _answer(_NOT_FOUND)
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        return _answer(_NOT_FOUND)

    async def _execute(self, record: RecordedRequest) -> Any:
        """Run the method; returns the result or an ApiError, and completes the record."""
        entry = self.api.lookup(record.method)
        if entry is None:
            return self._finish(record, _NOT_FOUND)
        try:
            result = entry[1](record.params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as error:
            return self._finish(record, error)
        except Exception as exc:
            log.exception("emulator failed on %s", record.method)
            self.internal_errors.append(exc)
            return self._finish(record, ApiError(500, f"Internal Server Error: {exc!r}"))
        return self._finish(record, None, result)

    def _finish(self, record: RecordedRequest, error: ApiError | None, result: Any = None) -> Any:
        record.status = error.status if error else 200
        record.error = error.description if error else None
        record.result = result
        self.world.changed.fire()
        return error if error else result

    async def _webhook_method_call(self, method: str, params: dict[str, Any]) -> None:
        entry = self.api.lookup(method)
        record = RecordedRequest(
            time.monotonic(), entry[0] if entry else method, params, via_webhook=True
        )
        self.requests.append(record)
        await self._execute(record)

    # --- faults --------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def _take_fault(self, method: str, params: dict[str, Any]) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, params):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def _apply_fault(
        self, fault: Fault, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        record.fault = fault.kind
        chat_id = record.params.get("chat_id")
        if fault.kind == "timeout":
            outcome = await self._execute(record) if fault.deliver else None
            if not fault.deliver:
                record.status = "dropped"
            await self._pause(30.0 if fault.delay is None else fault.delay)
            if fault.deliver:
                return _answer(outcome)
            return _drop(request)
        if fault.kind == "drop":
            record.status = "dropped"
            self.world.changed.fire()
            return _drop(request)
        if fault.kind == "migrate":
            group = self.world.groups.get(chat_id) if isinstance(chat_id, int) else None
            if group is not None and group.type == "group":
                new_id = self.world.migrate_group(group.id)
            else:
                new_id = -(10**12 + (abs(chat_id) if isinstance(chat_id, int) else 0))
            error = ApiError.bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": new_id}
            )
        else:
            error = {
                "429": ApiError.too_many(fault.retry_after),
                "5xx": ApiError(502, "Bad Gateway"),
                "blocked": ApiError.forbidden("bot was blocked by the user"),
                "chat_not_found": ApiError.bad_request("chat not found"),
            }[fault.kind]
        return _answer(self._finish(record, error))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # --- playing users -------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "User",
        username: str | None = None,
        language_code: str | None = None,
        last_name: str | None = None,
        is_premium: bool = False,
    ) -> EmuUser:
        """Get or create a user; an existing user keeps its original details."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        if user_id not in self._users:
            state = UserState(user_id, first_name, username, last_name, language_code, is_premium)
            self.world.users[user_id] = state
            self._users[user_id] = EmuUser(self, state)
        return self._users[user_id]

    def group(self, chat_id: int, title: str = "Group", supergroup: bool = False) -> EmuGroup:
        """Get or create a group (ids < 0) or supergroup (ids -100…)."""
        if chat_id in self._groups:
            return self._groups[chat_id]
        if chat_id in self.world.groups:  # a supergroup that a migration created
            self._groups[chat_id] = EmuGroup(self, chat_id)
            return self._groups[chat_id]
        if chat_id >= 0:
            raise ValueError("group ids are negative")
        if supergroup != (chat_id <= -(10**12)):
            raise ValueError("supergroup ids look like -100xxxxxxxxxx, group ids do not")
        kind = "supergroup" if supergroup else "group"
        self.world.groups[chat_id] = GroupState(chat_id, title, kind)
        self._groups[chat_id] = EmuGroup(self, chat_id)
        return self._groups[chat_id]

    async def add_bot_to_group(self, group: EmuGroup, by: EmuUser, as_admin: bool = False) -> None:
        state = self.world.groups[group.id]
        old = state.bot_status if state.bot_status in ("member", "administrator") else "left"
        state.bot_status = "administrator" if as_admin else "member"
        self.world.member_update(state.id, by.to_api(), old, state.bot_status)
        if old == "left":
            self.world.store_message(
                state.id, by.to_api(), {"new_chat_members": [self.bot_user]}, bot_sees=True
            )
        await asyncio.sleep(0)

    async def remove_bot_from_group(self, group: EmuGroup, by: EmuUser) -> None:
        state = self.world.groups[group.id]
        old = state.bot_status or "member"
        state.bot_status = "left"
        self.world.member_update(state.id, by.to_api(), old, "left")
        await asyncio.sleep(0)

    # --- reading -------------------------------------------------------------

    def bot_messages(self, chat: ChatRef, include_deleted: bool = False) -> list[BotMessage]:
        log = self.world.logs.get(chat_id_of(chat))
        messages = list(log.bot_messages) if log else []
        return [m for m in messages if include_deleted or not m.deleted]

    def sent(
        self, method: str | None = None, chat_id: ChatRef | None = None
    ) -> list[RecordedRequest]:
        """Successful requests: sends by default, or any one method."""
        wanted_chat = None if chat_id is None else chat_id_of(chat_id)
        return [
            r
            for r in self.requests
            if r.status == 200
            and (r.method == method if method else r.method in SEND_METHODS)
            and (wanted_chat is None or r.params.get("chat_id") == wanted_chat)
        ]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self.world.updates)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return self.webhook.deliveries

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        return list(self.world.commands.get((scope_key(scope), language_code), []))

    def download(self, file_id: str) -> bytes:
        stored = self.world.files.get(file_id)
        if stored is None or stored.content is None:
            raise KeyError(f"no file content for file_id {file_id!r}")
        return stored.content

    async def callback_answer(
        self,
        query_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test's deadline, named in the failure it raises)
    ) -> dict[str, Any]:
        query = self.world.callback_queries[query_id]
        return await self.wait_until(
            lambda: query.answer,
            timeout,
            message=f"callback query {query_id} ({query.data!r}) was not answered",
        )

    async def wait_until(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 (a test's deadline, named in the failure it raises)
        interval: float = 0.02,
        message: str | None = None,
    ) -> T:
        """Wait until predicate() is truthy and return its value."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(message or f"condition not met within {timeout}s")
            # Wake on emulator changes, and poll too, for predicates over the bot's own state.
            await self.world.changed.wait(min(interval, remaining))
        return value

    def describe_chat(self, chat_id: int, read: int = 0) -> str:
        """What a chat got, for assertion messages."""
        messages = self.bot_messages(chat_id, include_deleted=True)
        lines = [f"chat {chat_id} has {len(messages)} bot message(s), {read} already read:"]
        lines += [
            f"  #{m.message_id} [{m.kind}] {(m.text or m.caption or '')[:80]!r}"
            for m in messages[-10:]
        ]
        failed = [
            r
            for r in self.requests
            if r.params.get("chat_id") == chat_id and r.status not in (200, None)
        ][-5:]
        lines += [f"  failed {r.method}: {r.status} {r.error or ''}" for r in failed]
        lines.append(f"  updates not yet fetched by the bot: {len(self.world.updates)}")
        return "\n".join(lines)


def _answer(outcome: Any) -> web.Response:
    if isinstance(outcome, ApiError):
        return web.json_response(outcome.body(), status=outcome.status)
    return web.json_response({"ok": True, "result": outcome})


def _drop(request: web.Request) -> web.Response:
    """Close the TCP connection without answering; aiohttp discards the response."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)
