"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000
HIDDEN_DETAIL = "[row values hidden]"
# The databases Wuji runs on, each with the asyncio driver it installs.
DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
URL_EXAMPLES = "sqlite+aiosqlite:///wuji.db or postgresql+asyncpg://user:password@host/wuji"


def database_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` and how to write it instead, never echoing a password;
    None when Wuji can use it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"not a database URL: use e.g. {URL_EXAMPLES}"
    backend = parsed.get_backend_name()
    backend = "postgresql" if backend == "postgres" else backend
    driver = DRIVERS.get(backend)
    if driver is None:
        return f"{backend} is not supported: use SQLite or PostgreSQL, e.g. {URL_EXAMPLES}"
    if parsed.drivername != driver:
        hint = parsed.set(drivername=driver).render_as_string(hide_password=True)
        return f"{parsed.drivername}:// is not an asyncio driver: write {hint}"
    return None


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    # Statement parameters hold phones and names: a failing statement's exception text and
    # the engine's log show "[SQL parameters hidden]" instead of them.
    if not is_sqlite(url):
        engine = create_async_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True)
        event.listen(engine.sync_engine, "handle_error", _hide_row_values)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    return engine


def _hide_row_values(context: ExceptionContext) -> None:
    """PostgreSQL explains a constraint violation with the row's values ("Failing row
    contains (…, +8613800138000)", "Key (phone)=(…) already exists"), and asyncpg prints
    that DETAIL in the exception's text, so a logged traceback would show them."""
    seen: set[int] = set()
    error: BaseException | None = context.original_exception
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(getattr(error, "detail", None), str):
            error.detail = HIDDEN_DETAIL  # type: ignore[attr-defined]
        error = error.__cause__ or error.__context__


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while the single writer commits; foreign keys are off by
    # default in SQLite and must be switched on for every connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
