"""Vacant posts, paged: in a bound group (the posts under the group's node, each a button
to claim it) and in private chat (the posts in a lead's or admin's scope)."""

import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import partial

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.filters import Matches, private_buttons
from handlers.ids import Number, RowId
from handlers.rendering import describe_post, post_title
from models.access import Scope, scope_of
from models.groups import Binding, binding_of
from models.posts import PostView
from models.vacancies import VacancyPage, vacancies_in_scope, vacancies_under

logger = logging.getLogger(__name__)

IN_GROUP = Matches(F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP}))
IN_PRIVATE = Matches(F.chat.type == ChatType.PRIVATE)
PAGE_SIZE = 8


class GroupVacancyPage(CallbackData, prefix="gvac"):
    page: Number


class VacancyPick(CallbackData, prefix="gpick"):
    post_id: RowId


class ScopeVacancyPage(CallbackData, prefix="pvac"):
    page: Number


def page_count(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


def add_page_buttons(
    buttons: InlineKeyboardBuilder,
    page: int,
    pages: int,
    turn: type[GroupVacancyPage] | type[ScopeVacancyPage],
) -> None:
    navigation = InlineKeyboardBuilder()
    if page > 0:
        navigation.button(text=t("vacancies.prev"), callback_data=turn(page=page - 1))
    if page + 1 < pages:
        navigation.button(text=t("vacancies.next"), callback_data=turn(page=page + 1))
    buttons.attach(navigation)


async def page_of(
    load: Callable[[int, int], Awaitable[VacancyPage]], page: int
) -> tuple[VacancyPage, int]:
    """The requested page, or the last one if vacancies were filled meanwhile."""
    page = max(page, 0)  # the page number comes from a button
    vacancies = await load(page * PAGE_SIZE, PAGE_SIZE)
    last = page_count(vacancies.total) - 1
    if page > last:
        page = last
        vacancies = await load(page * PAGE_SIZE, PAGE_SIZE)
    return vacancies, page


def relative_path(post: PostView, binding: Binding) -> str:
    if post.path == binding.node.path:
        return binding.node.name
    return post.path.removeprefix(binding.node.path + "/")


async def group_page(
    session: AsyncSession, binding: Binding, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    load = partial(vacancies_under, session, binding.node.node_id)
    vacancies, page = await page_of(load, page)
    if not vacancies.total:
        return t("vacancies.none_in_group", path=binding.node.path), None
    pages = page_count(vacancies.total)
    buttons = InlineKeyboardBuilder()
    for post in vacancies.posts:
        buttons.button(
            text=f"{post_title(post.level, post.role)} · {relative_path(post, binding)}",
            callback_data=VacancyPick(post_id=post.post_id),
        )
    buttons.adjust(1)
    add_page_buttons(buttons, page, pages, GroupVacancyPage)
    text = t(
        "vacancies.group_header",
        path=binding.node.path,
        count=vacancies.total,
        page=page + 1,
        pages=pages,
    )
    return text, buttons.as_markup()


async def scope_page(
    session: AsyncSession, scope: Scope, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    load = partial(vacancies_in_scope, session, scope)
    vacancies, page = await page_of(load, page)
    if not vacancies.total:
        return t("vacancies.scope_none"), None
    pages = page_count(vacancies.total)
    header = t("vacancies.scope_header", count=vacancies.total, page=page + 1, pages=pages)
    lines = "\n".join(f"• {describe_post(post)}" for post in vacancies.posts)
    buttons = InlineKeyboardBuilder()
    add_page_buttons(buttons, page, pages, ScopeVacancyPage)
    markup = buttons.as_markup() if pages > 1 else None
    hint = t("vacancies.scope_hint")
    return f"{header}\n{lines}\n\n{hint}", markup


async def show_page(
    callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        with suppress(TelegramBadRequest):  # "message is not modified": nothing changed
            await callback.message.edit_text(text, reply_markup=markup)


async def group_vacancies(message: Message, session: AsyncSession) -> None:
    binding = await binding_of(session, message.chat.id)
    if binding is None:
        await message.answer(t("groups.bind_first"))
        return
    text, markup = await group_page(session, binding, 0)
    await message.answer(text, reply_markup=markup)


async def group_page_turned(
    callback: CallbackQuery, callback_data: GroupVacancyPage, session: AsyncSession
) -> None:
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    binding = await binding_of(session, chat_id)
    if binding is None:
        await callback.answer(t("groups.bind_first"), show_alert=True)
        return
    await show_page(callback, *await group_page(session, binding, callback_data.page))


async def scope_vacancies(message: Message, session: AsyncSession, config: Config) -> None:
    user_id = message.from_user.id if message.from_user else 0
    scope = await scope_of(session, user_id, config.admins.telegram_ids)
    if scope.is_empty:
        await message.answer(t("vacancies.leads_only"))
        return
    text, markup = await scope_page(session, scope, 0)
    await message.answer(text, reply_markup=markup)


async def scope_page_turned(
    callback: CallbackQuery, callback_data: ScopeVacancyPage, session: AsyncSession, config: Config
) -> None:
    scope = await scope_of(session, callback.from_user.id, config.admins.telegram_ids)
    if scope.is_empty:
        await callback.answer(t("vacancies.leads_only"), show_alert=True)
        return
    await show_page(callback, *await scope_page(session, scope, callback_data.page))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    router.message.register(group_vacancies, IN_GROUP, Command("vacancies"))
    router.callback_query.register(group_page_turned, GroupVacancyPage.filter())
    router.message.register(scope_vacancies, IN_PRIVATE, Command("vacancies"))
    # A lead's own scope, never in a group.
    private = private_buttons(router, ScopeVacancyPage)
    private.callback_query.register(scope_page_turned, ScopeVacancyPage.filter())
    return router
