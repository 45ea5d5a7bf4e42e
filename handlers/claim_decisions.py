"""Deciding a claim (Approve / Decline, re-authorised on every press) and withdrawing one."""

import logging
from contextlib import suppress

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    CallbackQuery,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.actions import ClaimDecision, ClaimWithdraw
from handlers.filters import private_buttons
from handlers.rendering import describe_post
from models.access import scope_of
from models.claims import (
    ClaimView,
    Decision,
    Withdrawal,
    decide_claim,
    withdraw_claim,
)

logger = logging.getLogger(__name__)


async def claim_decided(
    callback: CallbackQuery,
    callback_data: ClaimDecision,
    session: AsyncSession,
    bot: Bot,
    config: Config,
) -> None:
    user = callback.from_user
    scope = await scope_of(session, user.id, config.admins.telegram_ids)
    outcome = await decide_claim(
        session, callback_data.claim_id, callback_data.approve, scope, user.id
    )
    claim = outcome.claim
    if outcome.decision is Decision.unknown:
        await callback.answer(t("claims.unknown_claim"), show_alert=True)
        return
    if outcome.decision is Decision.forbidden:
        await callback.answer(t("claims.not_yours_to_decide"), show_alert=True)
        return
    await remove_buttons(callback)
    if claim is None:
        await callback.answer(t("claims.unknown_claim"), show_alert=True)
        return
    if outcome.decision is Decision.not_open:
        await callback.answer(t(f"claims.already_{claim.status}"), show_alert=True)
        return
    await callback.answer()
    await bot.send_message(user.id, decider_text(outcome.decision, claim))


def decider_text(decision: Decision, claim: ClaimView) -> str:
    post = describe_post(claim.post)
    if decision is Decision.approved:
        return t("claims.decided_approved", name=claim.volunteer_name, post=post)
    if decision is Decision.declined:
        return t("claims.decided_declined", name=claim.volunteer_name, post=post)
    return t("claims.decided_post_held", post=post)


async def remove_buttons(callback: CallbackQuery) -> None:
    if isinstance(callback.message, Message) and callback.message.reply_markup is not None:
        with suppress(TelegramBadRequest):
            await callback.message.edit_reply_markup(reply_markup=None)


async def claim_withdrawn(
    callback: CallbackQuery, callback_data: ClaimWithdraw, session: AsyncSession
) -> None:
    result, claim = await withdraw_claim(session, callback_data.claim_id, callback.from_user.id)
    if result is Withdrawal.not_yours or claim is None:
        await callback.answer(t("claims.not_your_claim"), show_alert=True)
        return
    await remove_buttons(callback)
    if result is Withdrawal.not_open:
        await callback.answer(t(f"claims.already_{claim.status}"), show_alert=True)
        return
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(t("claims.withdrawn", post=describe_post(claim.post)))


def setup() -> Router:
    """This feature's router, new on every call (a test or a second dispatcher gets its own)."""
    router = Router(name=__name__)
    # A volunteer's name and phone, and one's own claim: private chat only.
    private = private_buttons(router, ClaimDecision, ClaimWithdraw)
    private.callback_query.register(claim_decided, ClaimDecision.filter())
    private.callback_query.register(claim_withdrawn, ClaimWithdraw.filter())
    return router
