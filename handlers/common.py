"""/start without an invite, /help and /cancel."""

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, ReplyKeyboardRemove
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands import ADMIN_COMMANDS, GROUP_COMMANDS
from bot.config import Config
from bot.i18n import t
from handlers.filters import Matches
from models.access import scope_of


async def start_without_invite(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(t("start.welcome"))


# Commands that work in private chat only: in a group they get a pointer there.
PRIVATE_ONLY = tuple(
    sorted(set(ADMIN_COMMANDS) - set(GROUP_COMMANDS) - {"start", "status", "export", "help"})
)


async def show_help(message: Message, config: Config, session: AsyncSession) -> None:
    if message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
        # Only what works here: the rest is for private chat.
        await message.answer(t("help.group"))
        return
    text = t("help.text")
    user = message.from_user
    if user and config.console.enabled:
        # The console is for those holding a post and for the command centre.
        scope = await scope_of(session, user.id, config.admins.telegram_ids)
        if not scope.is_empty:
            text += "\n\n" + t("help.console")
    if user and config.is_admin(user.id):
        text += "\n\n" + t("help.admin")
    await message.answer(text)


async def cancel(message: Message, state: FSMContext) -> None:
    # The contact button (registration, a claim) may still be showing, even once its
    # conversation is over: a private chat's /cancel takes it away in any case.
    keyboard = ReplyKeyboardRemove() if message.chat.type == ChatType.PRIVATE else None
    if await state.get_state() is None:
        await message.answer(t("cancel.nothing"), reply_markup=keyboard)
        return
    await state.clear()
    await message.answer(t("cancel.done"), reply_markup=keyboard)


async def private_only_in_group(message: Message, command: CommandObject) -> None:
    await message.answer(t("group.use_private", command=command.command))


async def start_with_unknown_payload(message: Message, command: CommandObject) -> None:
    # Registration by invite comes with the people feature; until a token is known,
    # every payload is an unknown invite.
    await message.answer(t("start.invite_unknown"))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.register(
        start_without_invite,
        CommandStart(deep_link=False),
        Matches(F.text.regexp(r"^/start(@\w+)?\s*$")),
    )
    router.message.register(show_help, Command("help"))
    router.message.register(
        private_only_in_group,
        Command(*PRIVATE_ONLY),
        Matches(F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP})),
    )
    router.message.register(cancel, Command("cancel"))
    router.message.register(start_with_unknown_payload, CommandStart())
    return router
