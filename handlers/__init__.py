"""Telegram input and output, one router per feature. The order here is the order in which
routers see an update: specific features first, the fallback last."""

from aiogram import Router

from handlers import (
    admin_people,
    claims,
    common,
    directory,
    errors,
    fallback,
    groups,
    language,
    notice_compose,
    notices,
    reachability,
    registration,
    roster_import,
)


def build_root_router() -> Router:
    routers = [
        errors.router,
        reachability.router,
        roster_import.router,
        groups.router,
        claims.router,
        registration.router,
        admin_people.router,
        directory.router,
        notice_compose.router,
        notices.router,
        language.router,
        common.router,
        fallback.router,
    ]
    for router in routers:
        # Feature routers live at module level, as in aiogram's own examples; a process that
        # builds a second dispatcher (the test suite does, once per test) takes them over.
        router._parent_router = None
    root = Router(name="wuji")
    root.include_routers(*routers)
    return root
