"""The domain's actions (``models.messages.Action``) as Telegram buttons: their callback
data, which carries ids only and is checked again on every press, and their labels."""

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton

from bot.i18n import t
from handlers.ids import RowId
from models.messages import Action, ActionKind


class NoticeAck(CallbackData, prefix="ack"):
    """The "收到" button of a delivered notice or its reminder."""

    notice_id: RowId


class NoticeCancel(CallbackData, prefix="ncancel"):
    """Cancel, on the author's message about a notice scheduled for later."""

    notice_id: RowId


class NoticeNudge(CallbackData, prefix="nnudge"):
    """Nudge, under a notice's list of those who have not acknowledged it."""

    notice_id: RowId


class ClaimDecision(CallbackData, prefix="claimd"):
    claim_id: RowId
    approve: bool


class ClaimWithdraw(CallbackData, prefix="claimw"):
    claim_id: RowId


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
    elif action.kind is ActionKind.acknowledge_alert:
        data, label = AlertAck(alert_id=action.target_id), "alert.ack_button"
    elif action.kind in NEED_STEPS:
        step, label = NEED_STEPS[action.kind]
        data = NeedPress(need_id=action.target_id, step=step)
    elif action.kind is ActionKind.cancel_notice:
        data, label = NoticeCancel(notice_id=action.target_id), "notice.cancel_button"
    elif action.kind is ActionKind.nudge_late:
        data, label = LateNudge(step_id=action.target_id), "chase.nudge_button"
    elif action.kind is ActionKind.nudge_notice:
        data, label = NoticeNudge(notice_id=action.target_id), "notice.nudge_button"
    elif action.kind is ActionKind.withdraw_claim:
        data, label = ClaimWithdraw(claim_id=action.target_id), "claims.withdraw_button"
    else:
        # A new kind of action needs its button here: never another action's by default.
        raise ValueError(f"no button for {action.kind}")
    return InlineKeyboardButton(text=t(label), callback_data=data.pack())


class AlertAck(CallbackData, prefix="alack"):
    """The "I'll handle it" button of an alert."""

    alert_id: RowId


class LateNudge(CallbackData, prefix="nudge"):
    """ "Nudge" on a ladder step's message: the late units below are reminded again."""

    step_id: RowId


class NeedPress(CallbackData, prefix="need"):
    """A step on a need ticket: ``step`` is a ``models.needs.NeedStep``."""

    need_id: RowId
    step: str


# Each need action's step and button label.
NEED_STEPS = {
    ActionKind.take_need: ("take", "need.take_button"),
    ActionKind.resolve_need: ("resolve", "need.resolve_button"),
    ActionKind.confirm_need: ("confirm", "need.confirm_button"),
    ActionKind.reopen_need: ("reopen", "need.reopen_button"),
}
