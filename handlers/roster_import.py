"""/import for admins: send the roster as a CSV or XLSX document; every bad row is listed
by line, and nothing is written unless the whole file is good.

Every handler here checks ``[admins]`` again, the waiting state's too: someone removed
from the command centre after sending /import cannot finish the import.
"""

from io import BytesIO

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.filters import NOT_A_COMMAND, IsAdmin, Matches
from models.roster import (
    ImportReport,
    RosterLimits,
    RosterSource,
    RosterTooLarge,
    RosterValidationError,
    import_roster,
)
from models.roster_files import megabytes
from models.text import SHOWN_CHARS, shown

# The Bot API lets a bot download files of at most 20 MB.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
ERRORS_SHOWN_INLINE = 20
# Characters of problem lines in the chat message; Telegram takes 4,096 in all, and the
# message has a title and a closing line besides. The rest goes in the attached list.
ERRORS_INLINE_CHARS = 3_000
ACCEPTED_SUFFIXES = (".csv", ".xlsx")


class RosterImport(StatesGroup):
    waiting_for_file = State()


async def import_refused(message: Message) -> None:
    await message.answer(t("import.admins_only"))


async def no_longer_admin(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(t("import.admins_only"))


async def import_attached(
    message: Message, bot: Bot, session: AsyncSession, state: FSMContext, config: Config
) -> None:
    await state.clear()
    await _import_document(message, bot, session, config)


async def ask_for_file(message: Message, state: FSMContext) -> None:
    await state.set_state(RosterImport.waiting_for_file)
    await message.answer(t("import.send_file"))


async def file_received(
    message: Message, bot: Bot, session: AsyncSession, state: FSMContext, config: Config
) -> None:
    if await _import_document(message, bot, session, config):
        await state.clear()


async def not_a_file(message: Message) -> None:
    await message.answer(t("import.not_a_file"))


async def _import_document(
    message: Message, bot: Bot, session: AsyncSession, config: Config
) -> bool:
    """Import the message's document; False when the file could not even be read."""
    document = message.document
    if document is None:
        return False
    name = _file_label(document.file_name or "roster")
    if not name.lower().endswith(ACCEPTED_SUFFIXES):
        await message.answer(t("import.bad_extension", name=name))
        return False
    if document.file_size is not None and document.file_size > MAX_DOWNLOAD_BYTES:
        await message.answer(t("import.too_big", name=name))
        return False
    buffer = BytesIO()
    await bot.download(document, destination=buffer)
    source = RosterSource(name=name, content=buffer.getvalue())
    actor = message.from_user.id if message.from_user else None
    limits = RosterLimits(config.roster.max_rows, config.roster.max_xlsx_bytes)
    try:
        # The file is read and checked in a worker thread; the bot goes on meanwhile.
        report = await import_roster(session, [source], actor_telegram_id=actor, limits=limits)
    except RosterTooLarge as error:
        await message.answer(_too_large(name, error))
        return True
    except RosterValidationError as error:
        await _send_errors(message, name, [str(problem) for problem in error.errors])
        return True
    await message.answer(_summary(name, report))
    return True


def _file_label(file_name: str) -> str:
    """The file's name as every answer and problem line quotes it: its end, with the
    extension that tells CSV from XLSX, when it is long."""
    name = shown(file_name[-SHOWN_CHARS:])
    return name if len(file_name) <= SHOWN_CHARS else "…" + name[1:]


def _too_large(name: str, error: RosterTooLarge) -> str:
    exceeded = error.exceeded
    if exceeded.setting == "max_xlsx_mb":
        return t(
            "import.xlsx_too_large",
            name=name,
            size=megabytes(exceeded.found or 0),
            limit=megabytes(exceeded.limit),
        )
    return t("import.too_many_rows", name=name, limit=exceeded.limit)


async def _send_errors(message: Message, name: str, problems: list[str]) -> None:
    inline: list[str] = []
    length = 0
    for line in problems[:ERRORS_SHOWN_INLINE]:
        length += len(line) + 3
        if length > ERRORS_INLINE_CHARS:
            break
        inline.append(f"• {line}")
    text = t("import.errors", name=name, count=len(problems), errors="\n".join(inline))
    await message.answer(text)
    if len(problems) > len(inline):
        listing = "\n".join(problems).encode()
        await message.answer_document(
            BufferedInputFile(listing, filename=f"{name}.errors.txt"),
            caption=t("import.all_errors", count=len(problems)),
        )


def _summary(name: str, report: ImportReport) -> str:
    return t(
        "import.done",
        name=name,
        zones=report.zones,
        grids=report.grids,
        buildings=report.buildings,
        units=report.units,
        households=report.households,
        posts=report.posts,
        people=report.people,
    )


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.filter(Matches(F.chat.type == "private"))
    router.message.register(import_refused, Command("import"), ~IsAdmin())
    # Every handler of the waiting state checks [admins] again, not only /import.
    router.message.register(no_longer_admin, StateFilter(RosterImport.waiting_for_file), ~IsAdmin())
    router.message.register(import_attached, Command("import"), Matches(F.document), IsAdmin())
    router.message.register(ask_for_file, Command("import"), IsAdmin())
    router.message.register(
        file_received, StateFilter(RosterImport.waiting_for_file), Matches(F.document), IsAdmin()
    )
    router.message.register(
        not_a_file,
        StateFilter(RosterImport.waiting_for_file),
        NOT_A_COMMAND,
        IsAdmin(),
    )
    return router
