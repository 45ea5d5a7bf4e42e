"""Every filter of the bot's routers runs on the event loop: aiogram hands a filter that is
not a coroutine function (a bare ``F.…``, a ``State``, a plain function) to a worker thread,
a hand-over and a wake-up of the loop per check, several per update."""

from aiogram import Router
from aiogram.dispatcher.event.handler import FilterObject

from handlers import build_root_router


def thread_filters(root: Router) -> list[str]:
    found = []
    for router in root.chain_tail:
        for name, observer in router.observers.items():
            filters: list[FilterObject] = list(observer._handler.filters or [])
            for handler in observer.handlers:
                filters += handler.filters or []
            found += [
                f"{router.name}.{name}: {event_filter.callback!r}"
                for event_filter in filters
                if not event_filter.awaitable
            ]
    return found


def test_no_filter_runs_in_a_thread() -> None:
    assert thread_filters(build_root_router()) == []
