"""Every message fits Telegram's 4,096 characters: a compound of 300 buildings with names
as long as the roster allows, tapped through, searched, listed and audited. The emulator
answers an over-long text with Telegram's 400 "message is too long", so a list that did not
page or split would come back as the bot's apology instead of the answers awaited here."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Application
from bot.config import Config
from bot.emulator.html_text import utf16_len
from bot.forms import DEFAULT_FORM_PATH, round_schedule
from models.access import Scope
from models.form_parse import load_form
from models.notices import NoticeDraft, create_notice
from models.roster import import_roster
from models.roster_files import RosterSource
from models.rounds import current_round
from tests.emulator import BotMessage, EmuUser, TelegramEmulator
from tests.fixtures import hold_post, started
from tests.handlers.fixtures import ADMIN_ID, handled

BUILDINGS = 300
ZONE = "宽" * 190 + "片区"
GRID = f"{ZONE}/" + "院" * 190
COUNTY = Scope(is_admin=True, roots=frozenset())
HELD = 40  # posts one member holds: their /me and the audit list them all


def building(number: int) -> str:
    return f"{number:03d}号楼" + "楼" * 190


def roster() -> list[RosterSource]:
    households = ["community,zone,grid,building,unit,room"]
    people = ["path,role,name,phone"]
    grid_name = GRID.split("/")[1]
    for number in range(1, BUILDINGS + 1):
        households.append(f"园林路社区,{ZONE},{grid_name},{building(number)},1单元,101")
        name = f"王{number:03d}" + "名" * 100
        people.append(f"{GRID}/{building(number)},lead,{name},1370000{number:04d}")
    return [
        RosterSource("households.csv", "\n".join(households).encode()),
        RosterSource("people.csv", "\n".join(people).encode()),
    ]


async def replies(
    emulator: TelegramEmulator, application: Application, user: EmuUser, text: str
) -> list[BotMessage]:
    """Every message the bot sent the user in answer to ``text``, each within the limit."""
    before = len(user.messages())
    await user.send(text)
    await user.next_message(timeout=20)
    await handled(emulator, application)
    answers = user.messages()[before:]
    user.mark_read()
    for answer in answers:
        assert utf16_len(answer.text or "") <= 4096
    return answers


def labels(message: BotMessage) -> list[str]:
    return [text for row in message.buttons() for text, _ in row]


async def test_a_wide_compound_pages_splits_and_never_passes_the_limit(
    emulator: TelegramEmulator,
    application: Application,
    session_factory: async_sessionmaker[AsyncSession],
    config: Config,
) -> None:
    async with session_factory() as session:
        await import_roster(session, roster())
        await current_round(session, round_schedule(config), load_form(DEFAULT_FORM_PATH))
        await session.commit()
        for number in range(1, HELD + 1):
            await hold_post(
                session,
                5001,
                f"{GRID}/{building(number)}/1单元",
                name="赵" * 150,
                locale="zh_Hans",
            )
    admin = emulator.user(user_id=ADMIN_ID, first_name="指挥部", language_code="zh")

    # The directory: ten buildings a page, the page's place among all 300.
    (grid,) = await replies(emulator, application, admin, f"/tree {GRID}")
    assert "（第 1–10 个，共 300 个）" in (grid.text or "")
    assert len(labels(grid)) == 10 + 2  # the buildings, "next", and up to the zone
    await emulator.callback_answer(await admin.press(grid, "下一页 ▶"))
    await handled(emulator, application)
    (turned,) = [m for m in admin.messages() if m.message_id == grid.message_id]
    assert "（第 11–20 个，共 300 个）" in (turned.text or "")
    assert "◀ 上一页" in labels(turned) and utf16_len(turned.text or "") <= 4096

    # A search matching every building lead: the first ten, and a word on narrowing it.
    (several,) = await replies(emulator, application, admin, "/whois 王")
    assert "300 个岗位" in (several.text or "") and len(labels(several)) == 10

    # One member's forty posts, and the audit of their binding: split, nothing lost.
    member = emulator.user(user_id=5001, first_name="赵", language_code="zh")
    mine = await replies(emulator, application, member, "/me")
    assert len(mine) > 1
    assert sum((answer.text or "").count("• ") for answer in mine) == HELD
    audit = await replies(emulator, application, admin, "/audit 100")
    assert len(audit) > 1
    assert sum((answer.text or "").count("就任岗位") for answer in audit) == HELD

    # The round's progress and the late list of the whole compound.
    status = await replies(emulator, application, admin, f"/status {GRID}")
    assert status and all("出了问题" not in (answer.text or "") for answer in status)
    late = await replies(emulator, application, admin, f"/late {GRID}")
    assert late and all("出了问题" not in (answer.text or "") for answer in late)

    # A notice to every unit lead: those who have not acknowledged it, with their phones,
    # the nudge button under the last part.
    # They have all opened the bot: the notice reaches them, and no warning about someone
    # unreachable comes between the command centre's question and its answer.
    started(emulator, 5001, *(6000 + number for number in range(HELD + 1, HELD + 61)))
    async with session_factory() as session:
        for number in range(HELD + 1, HELD + 61):
            await hold_post(
                session,
                6000 + number,
                f"{GRID}/{building(number)}/1单元",
                name="孙" * 100 + str(number),
                locale="zh_Hans",
            )
        notice = await create_notice(
            session,
            NoticeDraft(ADMIN_ID, None, ["unit"], wants_ack=True, send_at=None, text="停水通知"),
            COUNTY,
        )
    rollup = await replies(emulator, application, admin, f"/notice {notice.id}")
    assert len(rollup) > 1 and labels(rollup[-1])
    # Fifty named (the most the list names), each once, none lost between the parts.
    named = [
        line
        for answer in rollup
        for line in (answer.text or "").split("\n")
        if line.startswith("• ") and ("孙" in line or "赵" in line)
    ]
    assert len(named) == len(set(named)) == 50
