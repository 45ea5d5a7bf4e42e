"""/start without an invite, /help and /cancel."""

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot.config import Config
from bot.i18n import t


async def start_without_invite(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(t("start.welcome"))


async def show_help(message: Message, config: Config) -> None:
    text = t("help.text")
    if message.from_user and config.is_admin(message.from_user.id):
        text += "\n\n" + t("help.admin")
    await message.answer(text)


async def cancel(message: Message, state: FSMContext) -> None:
    if await state.get_state() is None:
        await message.answer(t("cancel.nothing"))
        return
    await state.clear()
    await message.answer(t("cancel.done"))


async def start_with_unknown_payload(message: Message, command: CommandObject) -> None:
    # Registration by invite comes with the people feature; until a token is known,
    # every payload is an unknown invite.
    await message.answer(t("start.invite_unknown"))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.register(
        start_without_invite, CommandStart(deep_link=False), F.text.regexp(r"^/start(@\w+)?\s*$")
    )
    router.message.register(show_help, Command("help"))
    router.message.register(cancel, Command("cancel"))
    router.message.register(start_with_unknown_payload, CommandStart())
    return router
