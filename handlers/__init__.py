"""Telegram input and output, one router per feature. The order here is the order in which
routers see an update: specific features first, the fallback last."""

from aiogram import Router

from handlers import (
    admin_people,
    alerts,
    chase,
    claim_decisions,
    claiming,
    common,
    console,
    directory,
    errors,
    exports,
    fallback,
    groups,
    language,
    needs,
    notice_compose,
    notices,
    reachability,
    registration,
    reports,
    roster_import,
    status,
    vacancies,
)


def build_root_router() -> Router:
    """A new tree of routers on every call: each dispatcher (a test builds one per test)
    gets routers of its own."""
    root = Router(name="wuji")
    root.include_routers(
        errors.setup(),
        reachability.setup(),
        roster_import.setup(),
        groups.setup(),
        vacancies.setup(),
        claiming.setup(),
        claim_decisions.setup(),
        registration.setup(),
        admin_people.setup(),
        directory.setup(),
        notice_compose.setup(),
        notices.setup(),
        reports.setup(),
        alerts.setup(),
        needs.setup(),
        console.setup(),
        chase.setup(),
        status.setup(),
        exports.setup(),
        language.setup(),
        common.setup(),
        fallback.setup(),
    )
    return root
