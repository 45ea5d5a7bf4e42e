"""The Telegram emulator, driven by a real aiogram Bot as the Wuji bot will drive it."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.text_decorations import html_decoration
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.emulator import (
    EmuUser,
    EntityParseError,
    Fault,
    Limits,
    ManualClock,
    RateLimiter,
    TelegramEmulator,
    parse_html,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def clock() -> ManualClock:
    """The emulator's clock for flood limits: time passes when a test says so."""
    return ManualClock()


@pytest_asyncio.fixture
async def emu(clock: ManualClock) -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(limits=Limits(enabled=False), clock=clock) as emulator:
        yield emulator
    assert emulator.internal_errors == []


class LoopbackSession(AiohttpSession):
    """aiogram's close() sleeps 250 ms for TLS shutdown; plain loopback HTTP needs none."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(emu: TelegramEmulator, token: str | None = None, **session: Any) -> Bot:
    api = TelegramAPIServer.from_base(emu.base_url)
    assert api == emu.api_server
    return Bot(token or emu.token, session=LoopbackSession(api=api, **session))


def polling(emu: TelegramEmulator) -> bool:
    """A getUpdates is being held open by the emulator."""
    return any(r.method == "getUpdates" and r.status is None for r in emu.requests)


@pytest_asyncio.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    bot = make_bot(emu)
    yield bot
    await bot.session.close()


async def started(emu: TelegramEmulator, user_id: int = 1001, name: str = "Alice") -> EmuUser:
    user = emu.user(user_id, first_name=name, username=name.lower(), language_code="zh-hans")
    await user.command("start")
    return user


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in buttons]
    )


# --- basics -------------------------------------------------------------------


async def test_get_me(emu: TelegramEmulator, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "wuji_test_bot", True)
    assert emu.requests[-1].method == "getMe" and emu.requests[-1].status == 200


async def test_wrong_token_is_unauthorized(emu: TelegramEmulator) -> None:
    intruder = make_bot(emu, token="654321:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await intruder.get_me()
    finally:
        await intruder.session.close()


async def test_unknown_method_and_raw_encodings(emu: TelegramEmulator) -> None:
    alice = await started(emu)
    url = f"{emu.base_url}/bot{emu.token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/sendSticker", json={"chat_id": alice.id}) as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.post(f"{url}/getMe", json={}) as resp:
            assert (await resp.json())["result"]["username"] == "wuji_test_bot"
        markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
        async with http.post(
            f"{url}/sendMessage",
            json={"chat_id": alice.id, "text": "json", "reply_markup": markup},
        ) as resp:
            assert (await resp.json())["result"]["reply_markup"] == markup
        form = {"chat_id": str(alice.id), "text": "form", "reply_markup": json.dumps(markup)}
        async with http.post(f"{url}/sendmessage", data=form) as resp:
            assert (await resp.json())["ok"] is True
        async with http.get(f"{url}/sendMessage", params={"chat_id": alice.id, "text": "q"}) as r:
            assert r.status == 200
        direct = aiohttp.FormData()
        direct.add_field("chat_id", str(alice.id))
        direct.add_field("document", b"raw bytes", filename="direct.txt")
        async with http.post(f"{url}/sendDocument", data=direct) as resp:
            assert (await resp.json())["result"]["document"]["file_name"] == "direct.txt"
        form["reply_markup"] = "{not json"
        async with http.post(f"{url}/sendMessage", data=form) as resp:
            assert resp.status == 400
    assert [m.text for m in alice.messages()] == ["json", "form", "q", None]
    assert alice.messages()[1].buttons() == [[("A", "a")]]
    assert emu.download(alice.messages()[3].document or "") == b"raw bytes"
    lowercase = [r.method for r in emu.requests if r.params.get("text") == "form"]
    assert lowercase == ["sendMessage"]  # recorded by its canonical name


# --- updates --------------------------------------------------------------------


async def test_dispatcher_round_trip(emu: TelegramEmulator, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        await message.answer(f"start:{command.args}")

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        text = f"<b>echo</b> {html_decoration.quote(message.text or '')}"
        await message.answer(text, parse_mode="HTML")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        alice = emu.user(1001, first_name="Alice", language_code="zh-hans")
        await alice.command("start", "payload")
        assert (await alice.next_message()).text == "start:payload"
        await alice.send("1 < 2 & 3")
        reply = await alice.next_message()
        assert reply.text == "echo 1 < 2 & 3"
        assert reply.raw_text == "<b>echo</b> 1 &lt; 2 &amp; 3"
        assert reply.entities == [{"offset": 0, "length": 4, "type": "bold"}]
    finally:
        await dp.stop_polling()
        await polling
    offsets = [r.params.get("offset") for r in emu.requests if r.method == "getUpdates"]
    confirmed = [o for o in offsets if o is not None]
    assert confirmed == sorted(confirmed) and len(set(confirmed)) >= 2


async def test_update_ids_offset_and_long_poll(emu: TelegramEmulator, bot: Bot) -> None:
    alice = emu.user(1001, "Alice")
    for text in ("one", "two", "three"):
        await alice.send(text)
    updates = await bot.get_updates()
    ids = [u.update_id for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [u.message.message_id for u in updates if u.message] == [1, 2, 3]
    assert len(await bot.get_updates()) == 3  # not confirmed yet
    assert await bot.get_updates(offset=ids[-1] + 1) == []
    assert emu.pending_updates == []

    started_at = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(offset=ids[-1] + 1, timeout=3))
    await emu.wait_until(lambda: polling(emu))
    await alice.send("four")
    updates = await poll
    assert time.monotonic() - started_at < 1.5
    assert updates[0].update_id > ids[-1] and updates[0].message.text == "four"

    started_at = time.monotonic()
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=1) == []
    assert time.monotonic() - started_at >= 0.9


async def test_second_poller_terminates_the_first(emu: TelegramEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await emu.wait_until(lambda: polling(emu))
    second = asyncio.create_task(bot.get_updates(timeout=3))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first
    await emu.user(1001, "Alice").send("hi")
    assert [u.message.text for u in await second if u.message] == ["hi"]


async def test_allowed_updates_filter(emu: TelegramEmulator, bot: Bot) -> None:
    alice = await started(emu)
    await bot.get_updates(offset=-1, allowed_updates=["callback_query"])
    await bot.get_updates(offset=(await bot.get_updates())[-1].update_id + 1)
    await alice.send("ignored")
    message = await bot.send_message(alice.id, "pick", reply_markup=keyboard(("Go", "go")))
    await alice.press(message.message_id, "Go")
    updates = await bot.get_updates()
    assert [u.callback_query.data for u in updates if u.callback_query] == ["go"]
    assert all(u.message is None for u in updates)


async def test_message_entities_commands_and_contact(emu: TelegramEmulator, bot: Bot) -> None:
    alice = emu.user(1001, "Alice", username="alice")
    group = emu.group(-5001, title="Compound 3")
    await alice.command("report", "flood", chat=group, mention=True)
    await alice.send_contact("+8613800000001")
    await alice.send_contact("+8613800000002", user_id=None, first_name="Bob")
    updates = await bot.get_updates()
    command = updates[0].message
    assert command.text == "/report@wuji_test_bot flood"
    assert command.chat.type == "group" and command.chat.title == "Compound 3"
    assert command.entities[0].type == "bot_command" and command.entities[0].length == 21
    own, other = updates[1].message.contact, updates[2].message.contact
    assert (own.phone_number, own.user_id, own.first_name) == ("+8613800000001", 1001, "Alice")
    assert (other.user_id, other.first_name) == (None, "Bob")


# --- text and HTML -----------------------------------------------------------------


async def test_html_entities_are_decoded(emu: TelegramEmulator, bot: Bot) -> None:
    alice = await started(emu)
    await bot.send_message(alice.id, "&lt;b&gt; &amp; &quot;x&quot; &#8364;", parse_mode="HTML")
    message = await alice.next_message()
    assert message.text == '<b> & "x" €'
    assert message.raw_text == "&lt;b&gt; &amp; &quot;x&quot; &#8364;"
    assert message.entities is None and message.parse_mode == "HTML"


@pytest.mark.parametrize(
    "text",
    [
        "1 < 2",
        "Tom & Jerry",
        "&nbsp;",
        "<b>open",
        "<b>x</i>",
        "</b>",
        "<div>x</div>",
        "<span>x</span>",
    ],
)
async def test_bad_html_is_rejected(emu: TelegramEmulator, bot: Bot, text: str) -> None:
    alice = await started(emu)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(alice.id, text, parse_mode="HTML")
    assert alice.messages() == []
    await bot.send_message(alice.id, text)  # the same text without parse_mode is fine
    assert alice.messages()[0].text == text


def test_parse_html_tags() -> None:
    text, entities = parse_html(
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s>"
        '<strike>k</strike><del>d</del><a href="https://x.org/?a=1&amp;b=2">a</a><code>c</code>'
        '<pre><code class="language-python">p</code></pre><span class="tg-spoiler">h</span>'
        '<tg-spoiler>t</tg-spoiler><blockquote>q</blockquote><tg-emoji emoji-id="5">😀</tg-emoji>'
    )
    assert text == "bsieunskdacphtq😀"
    kinds = [(e["type"], e["offset"]) for e in entities]
    assert kinds == [
        ("bold", 0), ("bold", 1), ("italic", 2), ("italic", 3), ("underline", 4),
        ("underline", 5), ("strikethrough", 6), ("strikethrough", 7), ("strikethrough", 8),
        ("text_link", 9), ("code", 10), ("pre", 11), ("spoiler", 12), ("spoiler", 13),
        ("blockquote", 14), ("custom_emoji", 15),
    ]  # fmt: skip
    assert entities[9]["url"] == "https://x.org/?a=1&b=2"
    assert entities[11]["language"] == "python"
    assert entities[15]["length"] == 2  # UTF-16 code units, as Telegram counts
    with pytest.raises(EntityParseError, match="byte offset 3"):
        parse_html("é <x>")


async def test_length_limits(emu: TelegramEmulator, bot: Bot) -> None:
    alice = await started(emu)
    await bot.send_message(alice.id, "x" * 4096)
    await bot.send_message(alice.id, "<b>" + "x" * 4090 + "</b>&amp;&lt;", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(alice.id, "x" * 4097)
    # Counted as Telegram counts, in UTF-16 code units: a Chinese character once, an emoji
    # outside the BMP twice; an edit is held to the same limit.
    sent = await bot.send_message(alice.id, "网" * 4096)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(alice.id, "😀" * 2049)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.edit_message_text("网" * 4097, chat_id=alice.id, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(alice.id, " \n ")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(alice.id, "<b></b>", parse_mode="HTML")
    photo = BufferedInputFile(PNG, "p.png")
    await bot.send_photo(alice.id, photo, caption="c" * 1024)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(alice.id, photo, caption="c" * 1025)
    assert len(alice.messages()) == 4


# --- chats ----------------------------------------------------------------------


async def test_chat_errors(emu: TelegramEmulator, bot: Bot) -> None:
    silent = emu.user(2002, "Silent")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(silent.id, "hi")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "hi")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(-777, "hi")
    alice = await started(emu)
    await bot.send_message(alice.id, "before")
    alice.block_bot()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "after")
    updates = await bot.get_updates()
    blocked = updates[-1].my_chat_member
    assert (blocked.old_chat_member.status, blocked.new_chat_member.status) == ("member", "kicked")
    await alice.send("/start")  # writing again unblocks, as the Restart button does
    await bot.send_message(alice.id, "again")
    assert [m.text for m in alice.messages()] == ["before", "again"]


async def test_group_membership_updates(emu: TelegramEmulator, bot: Bot) -> None:
    alice = emu.user(1001, "Alice")
    group = emu.group(-5001, title="Compound 3")
    await emu.add_bot_to_group(group, by=alice)
    updates = await bot.get_updates()
    joined = updates[0].my_chat_member
    assert joined.chat.id == -5001 and joined.from_user.id == alice.id
    assert (joined.old_chat_member.status, joined.new_chat_member.status) == ("left", "member")
    assert updates[1].message.new_chat_members[0].id == emu.bot_user["id"]
    await bot.send_message(group.id, "hello group")
    assert (await alice.next_message(chat=group)).text == "hello group"
    await emu.remove_bot_from_group(group, by=alice)
    with pytest.raises(TelegramForbiddenError, match="kicked"):
        await bot.send_message(group.id, "still here?")
    await alice.send("unseen", chat=group)
    left = (await bot.get_updates(offset=updates[-1].update_id + 1))[-1]
    assert left.my_chat_member.new_chat_member.status == "left"


async def test_group_migration(emu: TelegramEmulator, bot: Bot) -> None:
    alice = emu.user(1001, "Alice")
    group = emu.group(-5001, title="Compound 3")
    await bot.send_message(-5001, "old home")
    new_id = group.migrate(by=alice)
    assert str(new_id).startswith("-100") and group.id == new_id
    assert group.type == "supergroup" and emu.group(new_id).id == new_id
    with pytest.raises(TelegramMigrateToChat) as caught:
        await bot.send_message(-5001, "lost")
    assert caught.value.migrate_to_chat_id == new_id
    updates = await bot.get_updates()
    service = [(u.message.chat.id, u.message.migrate_to_chat_id, u.message.migrate_from_chat_id)
               for u in updates]  # fmt: skip
    assert service == [(-5001, new_id, None), (new_id, None, -5001)]
    await bot.send_message(new_id, "new home")
    assert [m.text for m in emu.bot_messages(-5001)] == ["old home"]
    assert (await alice.next_message(chat=group)).text == "new home"


# --- limits ----------------------------------------------------------------------


def test_rate_limiter_retry_after_is_ceiled_real_seconds() -> None:
    now = [100.0]
    limiter = RateLimiter(Limits(per_chat_per_s=0.25, per_chat_burst=1), clock=lambda: now[0])
    assert limiter.acquire(1) is None
    assert limiter.acquire(1) == 4
    now[0] += 3.5
    assert limiter.acquire(1) == 1
    now[0] += 0.5
    assert limiter.acquire(1) is None
    limiter.limits = Limits(per_chat_per_s=0.25, per_chat_burst=1, time_scale=2)
    assert limiter.acquire(1) == 2
    limiter.limits = Limits(enabled=False)
    assert all(limiter.acquire(1) is None for _ in range(100))


async def test_per_chat_limit(emu: TelegramEmulator, bot: Bot, clock: ManualClock) -> None:
    alice = await started(emu)
    emu.limits = Limits(time_scale=4)  # 4 messages/s per chat, burst 3
    for n in range(3):
        await bot.send_message(alice.id, f"m{n}")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(alice.id, "m3")
    assert caught.value.retry_after == 1
    assert emu.requests[-1].status == 429 and len(alice.messages()) == 3
    await bot.edit_message_text(
        "edited", chat_id=alice.id, message_id=alice.messages()[0].message_id
    )
    clock.advance(0.24)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(alice.id, "m3")  # a quarter of a second is not there yet
    clock.advance(0.02)
    await bot.send_message(alice.id, "m3")
    assert [m.text for m in alice.messages()] == ["edited", "m1", "m2", "m3"]


async def test_group_limit(emu: TelegramEmulator, bot: Bot, clock: ManualClock) -> None:
    group = emu.group(-5001, title="Compound 3")
    emu.limits = Limits(per_group_per_min=60, per_group_burst=2, per_chat_burst=1, time_scale=4)
    await bot.send_message(group.id, "g1")
    await bot.send_message(group.id, "g2")  # the private-chat burst of 1 does not apply
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(group.id, "g3")
    clock.advance(0.26)
    await bot.send_message(group.id, "g3")
    assert [m.text for m in group.messages()] == ["g1", "g2", "g3"]


async def test_global_limit_and_rejections_consume_nothing(
    emu: TelegramEmulator, bot: Bot, clock: ManualClock
) -> None:
    users = [await started(emu, 1001 + n, f"U{n}") for n in range(3)]
    emu.limits = Limits(global_per_s=5, global_burst=2, per_chat_burst=1)
    await bot.send_message(users[0].id, "a")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(users[0].id, "a again")  # per chat; the global token stays
    await bot.send_message(users[1].id, "b")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(users[2].id, "c")  # global bucket is empty now
    clock.advance(0.21)
    await bot.send_message(users[2].id, "c")
    assert [len(u.messages()) for u in users] == [1, 1, 1]


async def test_copy_and_media_are_limited_but_disabled_limits_are_not(
    emu: TelegramEmulator, bot: Bot
) -> None:
    alice = await started(emu)
    emu.limits = Limits(per_chat_burst=1, time_scale=1)
    sent = await bot.send_message(alice.id, "one")
    with pytest.raises(TelegramRetryAfter):
        await bot.copy_message(alice.id, alice.id, sent.message_id)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_document(alice.id, BufferedInputFile(b"x", "x.txt"))
    emu.limits = Limits(enabled=False)
    for n in range(40):
        await bot.send_message(alice.id, f"{n}")
    assert len(alice.messages()) == 41


# --- faults ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("429", TelegramRetryAfter),
        ("5xx", TelegramServerError),
        ("blocked", TelegramForbiddenError),
        ("chat_not_found", TelegramBadRequest),
    ],
)
async def test_error_faults(emu: TelegramEmulator, bot: Bot, kind: Any, error: type) -> None:
    alice = await started(emu)
    emu.inject(Fault(kind, method="sendMessage", retry_after=7))
    with pytest.raises(error) as caught:
        await bot.send_message(alice.id, "hit")
    if kind == "429":
        assert caught.value.retry_after == 7
    assert emu.requests[-1].fault == kind and alice.messages() == []
    await bot.send_message(alice.id, "spent")
    assert [m.text for m in alice.messages()] == ["spent"]


async def test_fault_filters_and_times(emu: TelegramEmulator, bot: Bot) -> None:
    alice, bob = await started(emu), await started(emu, 1002, "Bob")
    emu.inject(Fault("5xx", method="sendmessage", chat_id=bob.id, times=2))
    await bot.get_me()
    await bot.send_message(alice.id, "a")
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(bob.id, "b")
    await bot.send_message(bob.id, "b")
    emu.inject(Fault("5xx"))
    emu.clear_faults()
    await bot.get_me()
    statuses = [(r.method, r.status) for r in emu.requests if r.method != "getUpdates"]
    assert statuses[-6:] == [
        ("getMe", 200), ("sendMessage", 200), ("sendMessage", 502), ("sendMessage", 502),
        ("sendMessage", 200), ("getMe", 200),
    ]  # fmt: skip


async def test_timeout_fault_delivers_and_drop_does_not(emu: TelegramEmulator) -> None:
    alice = await started(emu)
    impatient = make_bot(emu, timeout=0.15)
    try:
        emu.inject(Fault("timeout", method="sendMessage", delay=1))
        with pytest.raises(TelegramNetworkError):
            await impatient.send_message(alice.id, "delivered late")
        assert [m.text for m in alice.messages()] == ["delivered late"]
        emu.inject(Fault("timeout", method="sendMessage", delay=1, deliver=False))
        with pytest.raises(TelegramNetworkError):
            await impatient.send_message(alice.id, "lost")
        emu.inject(Fault("drop", method="sendMessage"))
        with pytest.raises(TelegramNetworkError):
            await impatient.send_message(alice.id, "dropped")
        assert [m.text for m in alice.messages()] == ["delivered late"]
        assert [r.status for r in emu.requests if r.method == "sendMessage"] == [
            200, "dropped", "dropped",
        ]  # fmt: skip
        await impatient.send_message(alice.id, "fine")
    finally:
        await impatient.session.close()


async def test_migrate_fault(emu: TelegramEmulator, bot: Bot) -> None:
    group = emu.group(-5001, title="Compound 3")
    emu.inject(Fault("migrate", chat_id=-5001))
    with pytest.raises(TelegramMigrateToChat) as caught:
        await bot.send_message(-5001, "hello")
    assert caught.value.migrate_to_chat_id == group.id != -5001
    assert group.type == "supergroup"
    await bot.send_message(caught.value.migrate_to_chat_id, "hello")
    assert [m.text for m in group.messages()] == ["hello"]


# --- files -----------------------------------------------------------------------


async def test_copy_message_of_a_photo(emu: TelegramEmulator, bot: Bot) -> None:
    alice, bob = await started(emu), await started(emu, 1002, "Bob")
    original = await alice.send_photo(PNG, caption="water on Road 5")
    copied = await bot.copy_message(bob.id, alice.id, original["message_id"])
    copy = await bob.next_message()
    assert copy.message_id == copied.message_id and copy.kind == "photo"
    assert copy.photo == original["photo"][-1]["file_id"] and copy.caption == "water on Road 5"
    assert emu.download(copy.photo) == PNG
    await bot.copy_message(bob.id, alice.id, original["message_id"], caption="<i>seen</i>",
                           parse_mode="HTML")  # fmt: skip
    assert (await bob.next_message()).caption == "seen"
    text = await alice.send("plain words")
    await bot.copy_message(bob.id, alice.id, text["message_id"])
    assert (await bob.next_message()).text == "plain words"
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(bob.id, alice.id, 999)


async def test_send_document_then_download(emu: TelegramEmulator, bot: Bot) -> None:
    alice = await started(emu)
    content = b"name,phone\nAlice,+8613800000001\n"
    result = await bot.send_document(
        alice.id, BufferedInputFile(content, "roster.csv"), caption="x"
    )
    message = await alice.next_message()
    assert message.kind == "document" and message.document == result.document.file_id
    assert result.document.file_name == "roster.csv" and result.document.mime_type == "text/csv"
    assert emu.download(message.document) == content
    assert (await bot.download(result.document)).read() == content
    again = await bot.send_document(alice.id, result.document.file_id)
    assert again.document.file_id == result.document.file_id


async def test_user_document_get_file_and_download(emu: TelegramEmulator, bot: Bot) -> None:
    alice = emu.user(1001, "Alice")
    content = bytes(range(256)) * 10
    await alice.send_document("roster.xlsx", content, caption="new roster")
    message = (await bot.get_updates())[0].message
    assert message.caption == "new roster" and message.document.file_name == "roster.xlsx"
    file = await bot.get_file(message.document.file_id)
    assert file.file_path and file.file_path.endswith(".xlsx") and file.file_size == len(content)
    assert (await bot.download(message.document)).read() == content
    with pytest.raises(TelegramBadRequest, match="wrong file_id"):
        await bot.get_file("nope")


# --- webhook ---------------------------------------------------------------------


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/hook"


async def test_webhook_delivery_with_retry_and_secret(emu: TelegramEmulator, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(status=500 if len(received) == 1 else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner, url = await serve(app)
    try:
        await bot.set_webhook(url, secret_token="s3cret_T-1")
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        alice = emu.user(1001, "Alice")
        await alice.send("via webhook")
        await emu.wait_until(lambda: len(emu.webhook_deliveries) >= 2)
        assert [secret for secret, _ in received] == ["s3cret_T-1"] * 2
        assert (
            received[0][1] == received[1][1] and received[1][1]["message"]["text"] == "via webhook"
        )
        assert [d.status for d in emu.webhook_deliveries] == [500, 200]
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert "500" in (info.last_error_message or "")
        with pytest.raises(TelegramBadRequest, match="unallowed characters"):
            await bot.set_webhook(url, secret_token="no spaces")
        await bot.delete_webhook()
        await alice.send("via polling")
        assert (await bot.get_updates())[0].message.text == "via polling"
    finally:
        await runner.cleanup()


async def test_a_balanced_webhook_spreads_updates_and_passes_over_a_dead_backend() -> None:
    """Several backends behind one webhook URL: round-robin, a refused connection goes on to
    the next backend at once, lanes deliver at once but one chat's updates in order."""
    received: dict[str, list[int]] = {"a": [], "b": []}
    texts: list[str] = []

    def backend(name: str) -> Any:
        async def hook(request: web.Request) -> web.Response:
            update = await request.json()
            received[name].append(update["update_id"])
            texts.append(update["message"]["text"])
            await asyncio.sleep(0.05)
            return web.Response(status=200)

        return hook

    runners = []
    urls = []
    for name in ("a", "b"):
        app = web.Application()
        app.router.add_post("/hook", backend(name))
        runner, url = await serve(app)
        runners.append(runner)
        urls.append(url)
    with socket.socket() as probe:  # a port nothing listens on: a replica that died
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    emulator = TelegramEmulator(limits=Limits(enabled=False))
    emulator.webhook.balance([urls[0], dead, urls[1]], lanes=4)
    try:
        async with emulator:
            bot = make_bot(emulator)
            await bot.set_webhook("https://balancer.example/hook")
            alice, bob = emulator.user(1001, "Alice"), emulator.user(1002, "Bob")
            for n in range(6):
                await alice.send(f"a{n}")
                await bob.send(f"b{n}")
            await emulator.wait_until(
                lambda: len(texts) == 12 and not emulator.pending_updates, timeout=10
            )
            await bot.session.close()
        assert received["a"] and received["b"]
        assert sorted(received["a"] + received["b"]) == sorted(set(received["a"] + received["b"]))
        # Each chat's updates arrived in the order they were sent.
        assert [t for t in texts if t.startswith("a")] == [f"a{n}" for n in range(6)]
        assert [t for t in texts if t.startswith("b")] == [f"b{n}" for n in range(6)]
        deliveries = emulator.webhook_deliveries
        failed = [n for n, d in enumerate(deliveries) if d.status == "error"]
        assert failed and all(deliveries[n].url == dead for n in failed)
        # A refused connection did not fail the update: the next backend took it.
        for n in failed:
            then = next(d for d in deliveries[n + 1 :] if d.update_id == deliveries[n].update_id)
            assert then.status == 200 and then.url != dead
    finally:
        for runner in runners:
            await runner.cleanup()


async def test_webhook_reply_method_with_aiogram_handler(emu: TelegramEmulator, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(F.text)
    async def answer_in_reply(message: Message) -> Any:
        return message.answer(f"pong: {message.text}")  # returned, not awaited: webhook reply

    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token="tok", handle_in_background=False).register(
        app, path="/hook"
    )
    runner, url = await serve(app)
    try:
        alice = await started(emu)
        await bot.set_webhook(url, secret_token="tok")
        await alice.send("ping")
        assert (await alice.next_message()).text == "pong: /start"
        assert (await alice.next_message()).text == "pong: ping"
        assert [r.via_webhook for r in emu.sent()] == [True, True]
    finally:
        await runner.cleanup()


# --- buttons, edits, commands, extras ---------------------------------------------


async def test_buttons_callbacks_and_answers(emu: TelegramEmulator, bot: Bot) -> None:
    alice = await started(emu)
    markup = keyboard(("Safe", "status:safe"), ("Need help", "status:help"))
    markup.inline_keyboard.append([InlineKeyboardButton(text="Map", url="https://example.org")])
    await bot.send_message(alice.id, "Are you safe?", reply_markup=markup)
    message = await alice.next_message()
    assert message.buttons() == [
        [("Safe", "status:safe")], [("Need help", "status:help")], [("Map", "https://example.org")],
    ]  # fmt: skip
    first = await alice.press(message, "Safe")
    second = await alice.press(message.message_id, "status:help")
    queries = [u.callback_query for u in await bot.get_updates() if u.callback_query]
    assert [(q.id, q.data, q.from_user.id) for q in queries] == [
        (first, "status:safe", alice.id), (second, "status:help", alice.id),
    ]  # fmt: skip
    assert queries[0].message.message_id == message.message_id
    await bot.answer_callback_query(first, text="Thanks", show_alert=True)
    answer = await emu.callback_answer(first)
    assert (answer["text"], answer["show_alert"]) == ("Thanks", True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(first)
    with pytest.raises(AssertionError, match="was not answered"):
        await emu.callback_answer(second, timeout=0.05)
    with pytest.raises(AssertionError, match="no inline button 'Maybe'"):
        await alice.press(message, "Maybe")
    with pytest.raises(AssertionError, match="does not send a callback"):
        await alice.press(message, "Map")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(alice.id, "x", reply_markup=keyboard(("Long", "x" * 65)))


async def test_edits(emu: TelegramEmulator, bot: Bot) -> None:
    alice = await started(emu)
    sent = await bot.send_message(alice.id, "Vote", reply_markup=keyboard(("Yes", "y")))
    ids = {"chat_id": alice.id, "message_id": sent.message_id}
    await bot.edit_message_text("Vote <b>closed</b>", parse_mode="HTML", **ids)
    message = alice.messages()[0]
    assert (message.text, message.raw_text, message.reply_markup) == (
        "Vote closed", "Vote <b>closed</b>", None,
    )  # fmt: skip
    assert message.edit_count == 1
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Vote <b>closed</b>", parse_mode="HTML", **ids)
    await bot.edit_message_reply_markup(reply_markup=keyboard(("Reopen", "r")), **ids)
    assert alice.messages()[0].buttons() == [[("Reopen", "r")]]
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=99)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=1)  # alice's /start


async def test_commands_per_scope_and_language(emu: TelegramEmulator, bot: Bot) -> None:
    default = [BotCommand(command="start", description="Start")]
    chinese = [
        BotCommand(command="start", description="开始"),
        BotCommand(command="help", description="帮助"),
    ]
    private = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands(default)
    await bot.set_my_commands(chinese, language_code="zh")
    await bot.set_my_commands(chinese[1:], scope=private)
    assert [c.description for c in await bot.get_my_commands(language_code="zh")] == [
        "开始",
        "帮助",
    ]
    assert [c.command for c in await bot.get_my_commands(scope=private)] == ["help"]
    assert emu.commands() == [{"command": "start", "description": "Start"}]
    assert emu.commands({"type": "all_private_chats"}) == [
        {"command": "help", "description": "帮助"}
    ]
    await bot.delete_my_commands(language_code="zh")
    assert await bot.get_my_commands(language_code="zh") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])


async def test_get_chat_chat_action_and_delete(emu: TelegramEmulator, bot: Bot) -> None:
    alice = await started(emu)
    chat = await bot.get_chat(alice.id)
    assert (chat.type, chat.first_name) == ("private", "Alice")
    assert (await bot.get_chat(emu.group(-5001, title="C3").id)).title == "C3"
    assert await bot.send_chat_action(alice.id, "typing")
    with pytest.raises(TelegramBadRequest):
        await bot.send_chat_action(alice.id, "dancing")
    sent = await bot.send_message(alice.id, "oops")
    assert await bot.delete_message(alice.id, sent.message_id)
    assert alice.messages() == [] and emu.bot_messages(alice.id, include_deleted=True)[0].deleted
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(alice.id, sent.message_id)


async def test_next_message_cursor_and_timeout_report(emu: TelegramEmulator, bot: Bot) -> None:
    alice, bob = await started(emu), await started(emu, 1002, "Bob")
    group = emu.group(-5001, title="Compound 3")
    await bot.send_message(group.id, "to all")
    assert (await alice.next_message(chat=group)).text == "to all"
    assert (await bob.next_message(chat=group)).text == "to all"  # each reader has its own cursor
    await bot.send_message(alice.id, "first")
    emu.inject(Fault("5xx", chat_id=alice.id))
    with pytest.raises(TelegramServerError):
        await bot.send_message(alice.id, "second")
    assert (await alice.next_message()).text == "first"
    with pytest.raises(AssertionError) as caught:
        await alice.next_message(timeout=0.1)
    report = str(caught.value)
    assert "no new bot message" in report and "'first'" in report and "502 Bad Gateway" in report
    assert [r.params["text"] for r in emu.sent(chat_id=alice)] == ["first"]
    assert await emu.wait_until(lambda: len(emu.sent()) == 2) is True
    with pytest.raises(AssertionError, match="never"):
        await emu.wait_until(lambda: False, timeout=0.05, message="never")
