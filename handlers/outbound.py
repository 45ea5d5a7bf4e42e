"""The Telegram delivery adapter: an outbox row, in the words of ``models.messages``,
rendered as the Bot API call that delivers it, in the reader's language at the moment it
is sent. The outbox sender calls it through ``models.outbox.delivery.Renderer``."""

from typing import Any
from zoneinfo import ZoneInfo

from aiogram.enums import ParseMode
from aiogram.methods import CopyMessage, SendMessage, SendPhoto
from aiogram.methods.base import TelegramMethod
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.i18n import LOCALES, Raw, t
from handlers.actions import button
from handlers.alert_rendering import render_alert
from handlers.rendering import clip_html, describe_post
from models.base import as_utc
from models.messages import (
    Action,
    AlertBody,
    Chart,
    NoticeBody,
    Param,
    PostRef,
    Term,
    Text,
    TextList,
)
from models.notice_delivery import NoticeContent
from models.notices import NoticeKind
from models.outbox.delivery import ClaimedMessage

# Keyboards are the same for every reader of one notice in one language: built once.
KEYBOARD_CACHE_SIZE = 4096
# Telegram's limit on a photo's caption (https://core.telegram.org/bots/api#sendphoto).
CAPTION_LIMIT = 1024


class TelegramRenderer:
    def __init__(
        self, i18n: I18n, *, paid_broadcast: bool = False, timezone: str = "Asia/Shanghai"
    ) -> None:
        self.i18n = i18n
        # The county's: a notice's header says when it went out in the reader's clock.
        self.zone = ZoneInfo(timezone)
        # Sent with allow_paid_broadcast: past 30 msg/s, at a cost in Stars.
        self.paid = True if paid_broadcast else None
        self._keyboards: dict[tuple[str, tuple[Action, ...]], InlineKeyboardMarkup] = {}

    def locale_of(self, message: ClaimedMessage) -> str:
        return message.locale if message.locale in LOCALES else self.i18n.default_locale

    def render(self, message: ClaimedMessage) -> TelegramMethod[Any]:
        locale = self.locale_of(message)
        with self.i18n.context(), self.i18n.use_locale(locale):
            markup = self._keyboard(locale, message.actions)
            content = message.content
            if isinstance(content, Text):
                return SendMessage(
                    chat_id=message.chat_id,
                    # One outbox row is one send: what does not fit is cut, not split.
                    text=clip_html(render_text(content)),
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    allow_paid_broadcast=self.paid,
                )
            if isinstance(content, AlertBody):
                return render_alert(message, content, markup, locale, self.paid)
            if isinstance(content, Chart):
                return self._chart(message, content, markup)
            return self._notice(message, content, markup)

    def _notice(
        self, message: ClaimedMessage, content: NoticeBody, markup: InlineKeyboardMarkup | None
    ) -> TelegramMethod[Any]:
        notice = message.notice
        if notice is None:
            raise LookupError(f"notice {content.notice_id} is gone")
        if notice.kind is NoticeKind.copy and notice.from_chat_id and notice.message_id:
            # The header goes in the caption, above the author's own.
            caption = self.notice_header(notice)
            if notice.text:
                caption = f"{caption}\n\n{notice.text}"
            return CopyMessage(
                chat_id=message.chat_id,
                from_chat_id=notice.from_chat_id,
                message_id=notice.message_id,
                caption=clip_html(caption, CAPTION_LIMIT),
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                allow_paid_broadcast=self.paid,
            )
        return SendMessage(
            chat_id=message.chat_id,
            text=clip_html(f"{self.notice_header(notice)}\n\n{notice.text or ''}"),
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            allow_paid_broadcast=self.paid,
        )

    def notice_header(self, notice: NoticeContent) -> str:
        """From whom (post and node, or the command centre), the notice's number and when
        it went out, in the county's time: what lets a reader trust it."""
        sender = (
            describe_post(notice.author_post)
            if notice.author_post
            else Raw(t("notice.from_command_centre"))
        )
        when = as_utc(notice.dispatched_at).astimezone(self.zone) if notice.dispatched_at else None
        return t(
            "notice.header",
            id=notice.notice_id,
            sender=sender,
            when=when.strftime("%m-%d %H:%M") if when else "",
        )

    def _chart(
        self, message: ClaimedMessage, content: Chart, markup: InlineKeyboardMarkup | None
    ) -> TelegramMethod[Any]:
        if message.image is None:
            raise LookupError(f"chart {content.image_id} is gone")
        caption = render_text(content.caption) if content.caption else None
        return SendPhoto(
            chat_id=message.chat_id,
            photo=BufferedInputFile(message.image, filename=f"chart-{content.image_id}.png"),
            caption=clip_html(caption, CAPTION_LIMIT) if caption else None,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            allow_paid_broadcast=self.paid,
        )

    def _keyboard(self, locale: str, actions: tuple[Action, ...]) -> InlineKeyboardMarkup | None:
        if not actions:
            return None
        key = (locale, actions)
        keyboard = self._keyboards.get(key)
        if keyboard is None:
            if len(self._keyboards) >= KEYBOARD_CACHE_SIZE:
                self._keyboards.clear()
            keyboard = InlineKeyboardMarkup(inline_keyboard=[[button(a) for a in actions]])
            self._keyboards[key] = keyboard
        return keyboard


def render_text(content: Text) -> str:
    """The catalog's text for ``content`` in the current locale, parameters escaped. A key
    the catalog lacks is an error (the message fails with the reason), never a key shown
    to a reader."""
    if I18n.get_current(no_error=False).gettext(content.key) == content.key:
        raise LookupError(f"no text for {content.key!r} in the catalogs")
    return t(content.key, **{name: _param(value) for name, value in content.params.items()})


def _param(value: Param) -> object:
    if isinstance(value, PostRef):
        return describe_post(value)
    if isinstance(value, Term):
        return t(value.key)
    if isinstance(value, TextList):
        return Raw("\n".join(render_text(text) for text in value.texts))
    return value
