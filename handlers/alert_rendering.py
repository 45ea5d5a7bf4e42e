"""An alert as Telegram shows it: a heading in the reader's language (who or which
household, the rule met, "gone on to the command centre"), then the sender's own words,
or the sender's photo or voice message sent on by ``copyMessage`` with the heading as its
caption."""

from typing import Any

from aiogram.enums import ParseMode
from aiogram.methods import CopyMessage, SendMessage
from aiogram.methods.base import TelegramMethod
from aiogram.types import InlineKeyboardMarkup

from bot.i18n import t
from handlers.rendering import MESSAGE_LIMIT, clip_html, describe_post
from models.alert_views import AlertContent
from models.alerts import AlertOrigin
from models.forms import SEVERITIES
from models.messages import AlertBody
from models.outbox.delivery import ClaimedMessage

# Telegram's limit for a caption (https://core.telegram.org/bots/api#copymessage).
CAPTION_LIMIT = 1024


def render_alert(
    message: ClaimedMessage,
    body: AlertBody,
    markup: InlineKeyboardMarkup | None,
    locale: str,
    paid: bool | None,
) -> TelegramMethod[Any]:
    """Call inside the reader's locale."""
    alert = message.alert
    if alert is None:
        raise LookupError(f"alert {body.alert_id} is gone")
    text = alert_text(alert, locale, escalated=body.escalated)
    if alert.media is not None and alert.from_chat_id and alert.message_id:
        return CopyMessage(
            chat_id=message.chat_id,
            from_chat_id=alert.from_chat_id,
            message_id=alert.message_id,
            caption=clip_html(text, CAPTION_LIMIT),
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            allow_paid_broadcast=paid,
        )
    return SendMessage(
        chat_id=message.chat_id,
        text=clip_html(text, MESSAGE_LIMIT),
        parse_mode=ParseMode.HTML,
        reply_markup=markup,
        allow_paid_broadcast=paid,
    )


def alert_text(alert: AlertContent, locale: str, *, escalated: bool = False) -> str:
    lines = [t("alert.escalated_heading")] if escalated else []
    if alert.origin is AlertOrigin.report:
        field, answer = alert.field or "", alert.answer or ""
        if alert.labels and locale in alert.labels:
            field, answer = alert.labels[locale]
        lines.append(
            t(
                "alert.report_heading",
                id=alert.alert_id,
                path=alert.path,
                room=alert.room or "—",
                field=field,
                answer=answer,
                severity=severity_label(alert.severity),
                name=alert.sender_name or "—",
            )
        )
    else:
        post = describe_post(alert.sender_post) if alert.sender_post else alert.path
        lines.append(
            t("alert.member_heading", id=alert.alert_id, post=post, name=alert.sender_name or "—")
        )
        if alert.text:
            lines.append(t("alert.member_text", text=alert.text))
    return "\n".join(lines)


def severity_label(severity: str | None) -> str:
    if severity in SEVERITIES:
        return t(f"alert.severity.{severity}")
    return severity or "—"
