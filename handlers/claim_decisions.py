"""Deciding a claim (Approve / Decline, re-authorised on every press), the open claims a
decider has before them (/claims), and withdrawing one's own claim."""

import logging
from contextlib import suppress
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.i18n import t
from handlers.actions import ClaimDecision, ClaimWithdraw
from handlers.directory import caller_scope
from handlers.filters import Matches, private_buttons
from handlers.rendering import clip_html, describe_post
from models.access import scope_of
from models.claims import (
    ClaimView,
    Decision,
    Withdrawal,
    decide_claim,
    open_claims_for,
    withdraw_claim,
)
from models.people import ClaimKind

# Open claims /claims shows at once, oldest first.
LISTED_CLAIMS = 20

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
    await remove_claim_buttons(callback, callback_data.claim_id)
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


async def remove_claim_buttons(callback: CallbackQuery, claim_id: int) -> None:
    """The buttons about this claim go; those about other claims (a /claims list) stay."""
    message = callback.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return
    rows = [
        row
        for row in message.reply_markup.inline_keyboard
        if not any(_is_about(button, claim_id) for button in row)
    ]
    with suppress(TelegramBadRequest):
        await message.edit_reply_markup(
            reply_markup=InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
        )


def _is_about(button: InlineKeyboardButton, claim_id: int) -> bool:
    data = button.callback_data or ""
    if not data.startswith(f"{ClaimDecision.__prefix__}:"):
        return False
    try:
        return ClaimDecision.unpack(data).claim_id == claim_id
    except (TypeError, ValueError):
        return False


async def list_open_claims(message: Message, session: AsyncSession, config: Config) -> None:
    scope = await caller_scope(message, session, config)
    if scope is None or message.from_user is None:
        return
    listing = await open_claims_for(session, scope, message.from_user.id, LISTED_CLAIMS)
    if not listing.claims:
        await message.answer(t("claims.list_none"))
        return
    zone = ZoneInfo(config.i18n.timezone)
    lines = [t("claims.list_title", count=listing.total)]
    rows: list[list[InlineKeyboardButton]] = []
    for number, claim in enumerate(listing.claims, start=1):
        opened = claim.opened_at.astimezone(zone).strftime("%m-%d %H:%M") if claim.opened_at else ""
        key = (
            "claims.list_entry_phone_mismatch"
            if claim.kind == ClaimKind.phone_mismatch
            else "claims.list_entry"
        )
        lines.append(
            t(
                key,
                number=number,
                name=claim.volunteer_name,
                phone=claim.phone or "—",
                post=describe_post(claim.post),
                opened=opened,
                roster_name=claim.roster_name or "—",
                roster_phone=claim.roster_phone or "—",
            )
        )
        rows.append(
            [
                InlineKeyboardButton(
                    text=t("claims.approve_numbered", number=number),
                    callback_data=ClaimDecision(claim_id=claim.claim_id, approve=True).pack(),
                ),
                InlineKeyboardButton(
                    text=t("claims.decline_numbered", number=number),
                    callback_data=ClaimDecision(claim_id=claim.claim_id, approve=False).pack(),
                ),
            ]
        )
    if listing.total > len(listing.claims):
        lines.append(t("claims.list_more", more=listing.total - len(listing.claims)))
    await message.answer(
        clip_html("\n".join(lines)), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
    )


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
    router.message.register(
        list_open_claims, Matches(F.chat.type == ChatType.PRIVATE), Command("claims")
    )
    # A volunteer's name and phone, and one's own claim: private chat only.
    private = private_buttons(router, ClaimDecision, ClaimWithdraw)
    private.callback_query.register(claim_decided, ClaimDecision.filter())
    private.callback_query.register(claim_withdrawn, ClaimWithdraw.filter())
    return router
