"""What the hostile-input test (``tests/test_fuzz.py``) sends: its people and chats, the
strategies of its steps, and the updates each step becomes."""

from typing import Any, cast

from aiogram import Bot
from aiogram.filters.callback_data import CallbackData
from aiogram.types import Update
from hypothesis import strategies as st

from bot.commands import ADMIN_COMMANDS, GROUP_COMMANDS
from tests.fuzz_support import FuzzSession
from tests.response_fixtures import GRID, OTHER_UNIT, PEOPLE, UNIT

ADMIN = 900_001
BOUND_GROUP, LOOSE_GROUP, SUPERGROUP = -4001, -4002, -1_001_234_567
STRANGERS = {8101: ("Stranger", "en"), 8102: ("غريب\u200f", "ar"), 8103: ("🙂\u200b", None)}
# Steps per example.
MIN_STEPS, MAX_STEPS = 10, 40
USERS = {ADMIN: ("指挥部", "zh-hans")} | {p[2]: (f"p{p[2]}", "zh-hans") for p in PEOPLE} | STRANGERS
# Every command the bot offers anyone, and one it answers without offering.
COMMANDS = sorted({*ADMIN_COMMANDS, *GROUP_COMMANDS, "console"})
PATHS = [GRID, UNIT, OTHER_UNIT, "县卫健局片区", "县教育局片区", "县卫健局片区/康乐家园"]
HOSTILE = [
    "",
    " ",
    "<b>粗体</b> & <i>x</i> &amp; <a href='x'>",
    "\u202eمرحبا بالعالم\u202c",
    "\u200b\u200c\u200d\ufeff",
    "👨\u200d👩\u200d👧\u200d👦🏳️\u200d🌈",
    "A" * 5000,
    "名" * 4097,
    "0",
    "-1",
    "3",
    "31",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "\x00",
    "line\r\nbreak\ttab",
    '=HYPERLINK("http://x")',
    "@nobody",
    "lead",
    "officer",
    *PATHS,
]
ANY_TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=80))
IDS = st.one_of(
    st.integers(-3, 60),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30, -(2**63) - 1]),
)


def callback_classes() -> list[type[CallbackData]]:
    found, queue = [], list(CallbackData.__subclasses__())
    while queue:
        cls = queue.pop()
        found.append(cls)
        queue += cls.__subclasses__()
    return sorted(found, key=lambda cls: cls.__prefix__)


def field_values(cls: type[CallbackData]) -> st.SearchStrategy[str]:
    """Raw callback data with this class's prefix: its fields in order, each any id, a
    boolean, one of the words the bot uses, or junk; sometimes a field too few or too many."""
    words = st.sampled_from(
        [
            "set",
            "toggle",
            "done",
            "skip",
            "keep",
            "same",
            "away",
            "fill",
            "take",
            "resolve",
            "confirm",
            "reopen",
            "zone",
            "grid",
            "building",
            "unit",
            "lead",
            "officer",
            "zh_Hans",
            "en",
            "xx",
            "1",
            "0",
        ]
    )
    value = st.one_of(IDS.map(str), words, st.text(max_size=8))
    count = len(cls.model_fields)
    return st.lists(value, min_size=max(0, count - 1), max_size=count + 1).map(
        lambda parts: ":".join([str(cls.__prefix__), *parts]).encode()[:64].decode(errors="ignore")
    )


def steps() -> st.SearchStrategy[tuple[Any, ...]]:
    actor = st.sampled_from(sorted(USERS))
    chat = st.sampled_from(["private"] * 6 + [BOUND_GROUP, BOUND_GROUP, LOOSE_GROUP, SUPERGROUP])
    arg = st.one_of(st.just(""), ANY_TEXT, st.sampled_from(PATHS).map(lambda p: f"{p} lead"))
    media = st.sampled_from(
        ["photo", "sticker", "own_contact", "other_contact", "location", "document", "voice"]
    )
    forged = st.sampled_from(callback_classes()).flatmap(field_values)
    return st.one_of(
        st.tuples(st.just("text"), actor, chat, ANY_TEXT),
        st.tuples(st.just("command"), actor, chat, st.sampled_from(COMMANDS), arg, st.booleans()),
        st.tuples(st.just("command"), actor, chat, st.sampled_from(COMMANDS), arg, st.booleans()),
        st.tuples(st.just("media"), actor, chat, media, ANY_TEXT),
        st.tuples(st.just("press"), actor, st.integers(0, 7), st.integers(0, 30), st.booleans()),
        st.tuples(st.just("press"), actor, st.integers(0, 7), st.integers(0, 30), st.booleans()),
        st.tuples(st.just("press"), actor, st.integers(0, 7), st.integers(0, 30), st.booleans()),
        st.tuples(st.just("forge"), actor, chat, st.one_of(forged, st.text(max_size=64))),
        st.tuples(st.just("invite"), st.sampled_from(sorted(STRANGERS)), st.integers(0, 20)),
        st.tuples(st.just("again")),
        st.tuples(
            st.just("membership"), st.sampled_from([BOUND_GROUP, LOOSE_GROUP]), st.booleans()
        ),
    )


DOCUMENTS = [
    (
        "households.csv",
        "community,zone,grid,building,unit,room\n=社区,+片区,-小区,@楼,\t单元,\r101\n",
    ),
    ("people.csv", "path,role,name,phone\n无此片区,lead,=1+1,12\n县卫健局片区,boss,x,x\n"),
    ("roster.xlsx", "PK\x03\x04 not a zip"),
    ("binary.csv", "\xff\xfe\x00\x00"),
    ("notes.txt", "hello"),
]


class UpdateMaker:
    """Builds the updates of the steps, as Telegram would deliver them (or a modified client
    would send them), and remembers the invite tokens seen."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.next_id = 1
        self.tokens: list[str] = []

    @property
    def session(self) -> FuzzSession:
        return cast(FuzzSession, self.bot.session)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def user(self, user_id: int) -> dict[str, Any]:
        name, language = USERS[user_id]
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": name}
        return user | ({"language_code": language} if language else {})

    def chat(self, user_id: int, chat: int | str) -> dict[str, Any]:
        if chat == "private":
            return {"id": user_id, "type": "private", "first_name": USERS[user_id][0]}
        kind = "supergroup" if chat == SUPERGROUP else "group"
        return {"id": chat, "type": kind, "title": "阳光小区志愿者群"}

    def update(self, kind: str, body: dict[str, Any]) -> Update:
        raw = {"update_id": self.new_id(), kind: body}
        return Update.model_validate(raw, context={"bot": self.bot})

    def message(self, user_id: int, chat: int | str, **content: Any) -> Update:
        body = {
            "message_id": self.new_id(),
            "date": 1_700_000_000,
            "chat": self.chat(user_id, chat),
            "from": self.user(user_id),
        }
        return self.update("message", body | content)

    def command(self, user_id: int, chat: int | str, name: str, arg: str, mention: bool) -> Update:
        head = f"/{name}@wuji_fast_bot" if mention else f"/{name}"
        entity = {"type": "bot_command", "offset": 0, "length": len(head)}
        return self.message(user_id, chat, text=f"{head} {arg}".rstrip(), entities=[entity])

    def media(self, user_id: int, chat: int | str, kind: str, caption: str) -> Update:
        file = {"file_id": f"f{kind}", "file_unique_id": f"u{kind}"}
        if kind == "photo":
            return self.message(
                user_id, chat, photo=[file | {"width": 9, "height": 9}], caption=caption
            )
        if kind == "sticker":
            sticker = file | {"type": "regular", "width": 9, "height": 9}
            return self.message(
                user_id, chat, sticker=sticker | {"is_animated": False, "is_video": False}
            )
        if kind in ("own_contact", "other_contact"):
            owner = user_id if kind == "own_contact" else user_id + 1
            contact = {"phone_number": f"+86150{owner:08d}", "first_name": "某人", "user_id": owner}
            return self.message(user_id, chat, contact=contact)
        if kind == "location":
            return self.message(user_id, chat, location={"latitude": 36.6, "longitude": 101.8})
        if kind == "voice":
            return self.message(user_id, chat, voice=file | {"duration": 3}, caption=caption)
        name, data = DOCUMENTS[len(caption) % len(DOCUMENTS)]
        self.session.download = data.encode("utf-8", errors="surrogatepass")
        document = file | {"file_name": name, "file_size": len(self.session.download)}
        return self.message(user_id, chat, document=document, caption=caption)

    def press(self, user_id: int, data: str, shown: dict[str, Any], chat: dict[str, Any]) -> Update:
        query_id = f"q{self.new_id()}"
        self.session.pressers[query_id] = user_id
        message = shown | {"chat": chat}
        body = {"id": query_id, "from": self.user(user_id), "chat_instance": "c", "data": data}
        return self.update("callback_query", body | {"message": message})

    def real_button(self, user_id: int, which: int, button: int, elsewhere: bool) -> Update | None:
        """A button the bot showed: in the presser's own chat, or (``elsewhere``) in any
        chat, pressed as if in the presser's (a forwarded or forged message)."""
        shown = self.session.buttons
        chats = sorted(shown) if elsewhere else [user_id, BOUND_GROUP]
        messages = [m for chat in chats for m in shown.get(chat, [])[-8:]]
        if not messages:
            return None
        message = messages[-1 - which % len(messages)]
        markup = message.reply_markup
        data = [b.callback_data for row in (markup.inline_keyboard if markup else []) for b in row]
        data = [d for d in data if d]
        if not data:
            return None
        chat = message.chat.model_dump() if message.chat.id < 0 else self.chat(user_id, "private")
        raw = message.model_dump(by_alias=True, exclude_none=True)
        return self.press(user_id, data[button % len(data)], raw, chat)

    def forged(self, user_id: int, chat: int | str, data: str) -> Update:
        raw = {
            "message_id": self.new_id(),
            "date": 1_700_000_000,
            "chat": self.chat(user_id, chat),
            "from": {"id": 42, "is_bot": True, "first_name": "Wuji"},
            "text": "…",
        }
        return self.press(user_id, data, raw, raw["chat"])

    def membership(self, group: int, joined: bool) -> Update:
        bot_user = {"id": 42, "is_bot": True, "first_name": "Wuji"}
        statuses = [{"status": "left", "user": bot_user}, {"status": "member", "user": bot_user}]
        old, new = statuses if joined else statuses[::-1]
        body = {
            "chat": self.chat(ADMIN, group),
            "from": self.user(ADMIN),
            "date": 1_700_000_000,
            "old_chat_member": old,
            "new_chat_member": new,
        }
        return self.update("my_chat_member", body)

    def build(self, step: tuple[Any, ...]) -> Update | None:
        kind = step[0]
        if kind == "text":
            return self.message(step[1], step[2], text=step[3] or ".")
        if kind == "command":
            return self.command(*step[1:])
        if kind == "media":
            return self.media(*step[1:])
        if kind == "press":
            return self.real_button(*step[1:])
        if kind == "forge":
            return self.forged(step[1], step[2], step[3] or "x")
        if kind == "invite":
            token = self.tokens[step[2] % len(self.tokens)] if self.tokens else "NoSuchToken"
            return self.command(step[1], "private", "start", token, False)
        if kind == "membership":
            return self.membership(step[1], step[2])
        return None
