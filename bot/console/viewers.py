"""Who is looking at the console: its dependencies, the member behind the session cookie
with the scope they may see, and what every route answers alike (a page rendered in the
viewer's language, "session ended", "not yours" with no data in the body)."""

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiogram.utils.i18n import I18n
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.console.live import VersionWatcher
from bot.console.pages import PanelCache
from models.access import Scope, scope_of
from models.console_auth import session_member
from models.org import Member, Node

HERE = Path(__file__).parent
COOKIE = "wuji_console"
# Seconds between keep-alive comments (and access checks) on a quiet stream.
KEEP_ALIVE_S = 15.0


@dataclass
class ConsoleDeps:
    config: Config
    session_factory: async_sessionmaker[AsyncSession]
    i18n: I18n
    cache: PanelCache = field(default_factory=PanelCache)
    watcher: VersionWatcher = field(init=False)
    _fragments: "OrderedDict[tuple[object, ...], str]" = field(default_factory=OrderedDict)
    # Panels being built: every viewer woken by the same change waits for the one build.
    _building: dict[tuple[object, ...], "asyncio.Task[str]"] = field(default_factory=dict)
    # Live sessions' scopes as read at (generation, monotonic time), for the streams.
    _scopes: tuple[int, float, dict[str, Scope]] = (-1, 0.0, {})
    _scopes_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.watcher = VersionWatcher(self.session_factory, self.config.console.poll_every_s)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config.reports.timezone or self.config.i18n.timezone)


DEPS = web.AppKey("console_deps", ConsoleDeps)
JINJA = web.AppKey("console_jinja", jinja2.Environment)


@dataclass(frozen=True)
class Viewer:
    member: Member
    scope: Scope
    locale: str


def tr_for(deps: ConsoleDeps, locale: str) -> Any:
    def tr(key: str, **params: object) -> str:
        text = deps.i18n.gettext(key, locale=locale)
        return text.format(**params) if params else text

    return tr


def render(
    request: web.Request, template: str, locale: str, status: int = 200, **context: Any
) -> web.Response:
    deps = request.app[DEPS]
    response = aiohttp_jinja2.render_template(
        template,
        request,
        {"tr": tr_for(deps, locale), "locale": locale, **context},
        app_key=JINJA,
        status=status,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def locale_of(deps: ConsoleDeps, member: Member | None) -> str:
    if member is not None and member.locale in ("zh_Hans", "en"):
        return str(member.locale)
    return deps.config.i18n.default_locale


async def viewer_of(request: web.Request, session: AsyncSession) -> Viewer | None:
    """The member behind the session cookie, while the session lives and the member still
    holds a post (or is of the command centre)."""
    deps = request.app[DEPS]
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    member = await session_member(session, token)
    if member is None:
        return None
    scope = await scope_of(session, member.telegram_id, deps.config.admins.telegram_ids)
    if scope.is_empty:
        return None
    return Viewer(member, scope, locale_of(deps, member))


def ended(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    return render(request, "ended.html", deps.config.i18n.default_locale, status=401)


def forbidden(request: web.Request, viewer: Viewer) -> web.Response:
    # No data: the body says only that the node is not the viewer's.
    return render(request, "forbidden.html", viewer.locale, status=403)


async def target_of(session: AsyncSession, viewer: Viewer, target: str) -> tuple[bool, Node | None]:
    """(allowed, node) for a path segment: "county" (admins only) or a node id."""
    if target == "county":
        return viewer.scope.is_admin, None
    if not target.isdigit() or not 0 < int(target) < 2**31:
        return False, None
    node = await session.get(Node, int(target))
    if node is None or not viewer.scope.sees(node):
        return False, None
    return True, node
