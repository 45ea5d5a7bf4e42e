"""Telegram input and output, one router per feature. The order here is the order in which
routers see an update: specific features first, the fallback last.

Household reports come first: their buttons are most of the bot's traffic (three or more per
household, every day), and each router an update passes on its way costs it filters,
middleware wrapping and copies of its context. Nothing before them would take a report's
button or a message typed into a report's form (their callback data prefixes are their own,
and the form's states take no commands)."""

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
        reports.setup(),
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
