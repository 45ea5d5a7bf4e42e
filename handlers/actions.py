"""The domain's actions (``models.messages.Action``) as Telegram buttons: their callback
data, which carries ids only and is checked again on every press, and their labels."""

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton

from bot.i18n import t
from models.messages import Action, ActionKind


class NoticeAck(CallbackData, prefix="ack"):
    """The "收到" button of a delivered notice or its reminder."""

    notice_id: int


class ClaimDecision(CallbackData, prefix="claimd"):
    claim_id: int
    approve: bool


class ClaimWithdraw(CallbackData, prefix="claimw"):
    claim_id: int


def button(action: Action) -> InlineKeyboardButton:
    """The button for ``action``, labelled in the current locale."""
    data: CallbackData
    if action.kind is ActionKind.acknowledge_notice:
        data, label = NoticeAck(notice_id=action.target_id), "notice.ack_button"
    elif action.kind is ActionKind.approve_claim:
        data = ClaimDecision(claim_id=action.target_id, approve=True)
        label = "claims.approve_button"
    elif action.kind is ActionKind.decline_claim:
        data = ClaimDecision(claim_id=action.target_id, approve=False)
        label = "claims.decline_button"
    else:
        data, label = ClaimWithdraw(claim_id=action.target_id), "claims.withdraw_button"
    return InlineKeyboardButton(text=t(label), callback_data=data.pack())
