"""/import for admins: send the roster as a CSV or XLSX document; every bad row is listed
by line, and nothing is written unless the whole file is good."""

from io import BytesIO

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import t
from handlers.filters import IsAdmin
from models.roster import ImportReport, RosterSource, RosterValidationError, import_roster

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

# The Bot API lets a bot download files of at most 20 MB.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
ERRORS_SHOWN_INLINE = 20
ACCEPTED_SUFFIXES = (".csv", ".xlsx")


class RosterImport(StatesGroup):
    waiting_for_file = State()


@router.message(Command("import"), ~IsAdmin())
async def import_refused(message: Message) -> None:
    await message.answer(t("import.admins_only"))


@router.message(Command("import"), F.document)
async def import_attached(
    message: Message, bot: Bot, session: AsyncSession, state: FSMContext
) -> None:
    await state.clear()
    await _import_document(message, bot, session)


@router.message(Command("import"))
async def ask_for_file(message: Message, state: FSMContext) -> None:
    await state.set_state(RosterImport.waiting_for_file)
    await message.answer(t("import.send_file"))


@router.message(RosterImport.waiting_for_file, F.document)
async def file_received(
    message: Message, bot: Bot, session: AsyncSession, state: FSMContext
) -> None:
    if await _import_document(message, bot, session):
        await state.clear()


@router.message(RosterImport.waiting_for_file, ~F.text.startswith("/"))
async def not_a_file(message: Message) -> None:
    await message.answer(t("import.not_a_file"))


async def _import_document(message: Message, bot: Bot, session: AsyncSession) -> bool:
    """Import the message's document; False when the file could not even be read."""
    document = message.document
    if document is None:
        return False
    name = document.file_name or "roster"
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
    try:
        report = await import_roster(session, [source], actor_telegram_id=actor)
    except RosterValidationError as error:
        await _send_errors(message, name, [str(problem) for problem in error.errors])
        return True
    await message.answer(_summary(name, report))
    return True


async def _send_errors(message: Message, name: str, problems: list[str]) -> None:
    shown = "\n".join(f"• {line}" for line in problems[:ERRORS_SHOWN_INLINE])
    text = t("import.errors", name=name, count=len(problems), errors=shown)
    await message.answer(text)
    if len(problems) > ERRORS_SHOWN_INLINE:
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
