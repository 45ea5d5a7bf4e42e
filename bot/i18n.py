"""Texts in Simplified Chinese (default) and English through gettext.

Catalogs are the ``.po`` files under ``bot/locales/<locale>/LC_MESSAGES/``, compiled in
memory at start-up, so
there is no build step and no stale ``.mo`` file. Message ids are keys such as
``start.welcome``; both catalogs must translate every key (a test checks).
"""

import html
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware

# Re-exported: handlers and tests read the locales from here.
from bot.catalogs import LOCALES as LOCALES
from bot.catalogs import LOCALES_DIR as LOCALES_DIR
from bot.catalogs import compile_catalogs

DOMAIN = "wuji"  # aiogram needs a domain name; every .po file of a locale is read


def create_i18n(default_locale: str) -> I18n:
    # A plain I18n (aiogram's helpers look up exactly that class in their context) whose
    # catalogs come from the .po files; there are no .mo files for it to find itself.
    i18n = I18n(path=LOCALES_DIR, default_locale=default_locale, domain=DOMAIN)
    i18n.locales = compile_catalogs()
    return i18n


def locale_for_language_code(language_code: str | None, default_locale: str) -> str:
    """Telegram clients send ``zh``, ``zh-hans``, ``zh-cn``, ``zh-hant``…; every Chinese
    variant reads Simplified Chinese here, every English one English."""
    code = (language_code or "").lower()
    if code.startswith("zh"):
        return "zh_Hans"
    if code.startswith("en"):
        return "en"
    return default_locale


class MemberI18nMiddleware(I18nMiddleware):
    """The member's own ``/lang`` choice first, then the Telegram client's language."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        member = data.get("member")
        if member is not None and member.locale in LOCALES:
            return str(member.locale)
        user: User | None = data.get("event_from_user")
        return locale_for_language_code(
            user.language_code if user else None, self.i18n.default_locale
        )


def t(key: str, /, **params: object) -> str:
    """The current locale's text for ``key`` with ``params`` filled in, HTML-escaped.

    Every message is sent in HTML parse mode; escaping here means any name, path or note
    reaches the reader verbatim.
    """
    template = I18n.get_current(no_error=False).gettext(key)
    if not params:
        return template
    return template.format(**{name: _escape(value) for name, value in params.items()})


def _escape(value: object) -> object:
    if isinstance(value, int | float):
        return value
    if isinstance(value, Raw):
        return value.html
    return html.escape(str(value), quote=False)


class Raw:
    """Already-rendered HTML to put into a text unescaped (e.g. a list built of ``t`` lines)."""

    def __init__(self, html_text: str) -> None:
        self.html = html_text

    def __str__(self) -> str:
        return self.html
