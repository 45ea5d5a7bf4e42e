"""Telegram input and output, one router per feature. The order here is the order in which
routers see an update: specific features first, the fallback last."""

from aiogram import Router

from handlers import common, errors, fallback, language, roster_import


def build_root_router() -> Router:
    root = Router(name="wuji")
    root.include_routers(
        errors.router,
        roster_import.router,
        language.router,
        common.router,
        fallback.router,
    )
    return root
