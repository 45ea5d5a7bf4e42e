"""The console's routes: login by the bot's one-time link, pages per node, the live stream
and the export. Every request re-reads the session and the member's scope, so a new
``/console`` or a lost post ends access at once; a node outside the scope is 403 with no
data in the body."""

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from bot.console.pages import TREND_HEIGHT, TREND_WIDTH, build_panels
from bot.console.viewers import (
    COOKIE,
    DEPS,
    HERE,
    JINJA,
    KEEP_ALIVE_S,
    ConsoleDeps,
    ended,
    forbidden,
    render,
    target_of,
    tr_for,
    viewer_of,
)
from models import console
from models.access import Scope
from models.audit import record
from models.console_auth import end_session, live_scopes, open_link, token_hash
from models.exports import export_round, export_sheets
from models.org import Node
from models.spreadsheets import csv_bytes, workbook_bytes


def setup_console(app: web.Application, deps: ConsoleDeps) -> None:
    app[DEPS] = deps
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        app_key=JINJA,
    )
    app.router.add_get("/console/login", login_page)
    app.router.add_post("/console/login", login)
    app.router.add_post("/console/logout", logout)
    app.router.add_get("/console/", home)
    app.router.add_get("/console", home)
    app.router.add_get("/console/node/{target}", page)
    app.router.add_get("/console/stream/{target}", stream)
    app.router.add_get("/console/export/{target}.{fmt:xlsx|csv}", export)
    app.router.add_static("/console/static/", HERE / "static")

    async def watch(_app: web.Application) -> Any:
        await deps.watcher.start()
        yield
        await deps.watcher.stop()

    app.cleanup_ctx.append(watch)


# --- login ----------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    """The link from the bot lands here; spending it takes a POST, so a link preview or a
    prefetching scanner that only GETs cannot use it up."""
    deps = request.app[DEPS]
    return render(
        request,
        "login.html",
        deps.config.i18n.default_locale,
        token=request.query.get("token", "")[:200],
    )


async def login(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    form = await request.post()
    token = str(form.get("token", ""))[:200]
    lifetime = timedelta(hours=deps.config.console.session_hours)
    async with deps.session_factory() as session:
        opened = await open_link(session, token, lifetime) if token else None
    if opened is None:
        return render(request, "failed.html", deps.config.i18n.default_locale, status=403)
    response = web.HTTPSeeOther("/console/")
    response.set_cookie(
        COOKIE,
        opened.session_token,
        max_age=int(lifetime.total_seconds()),
        path="/console",
        httponly=True,
        secure=deps.config.console.base_url.startswith("https://"),
        samesite="Strict",
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    token = request.cookies.get(COOKIE)
    if token:
        async with deps.session_factory() as session:
            await end_session(session, token)
    response = web.HTTPSeeOther("/console/")
    response.del_cookie(COOKIE, path="/console")
    raise response


# --- pages ----------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    async with deps.session_factory() as session:
        viewer = await viewer_of(request, session)
        if viewer is None:
            return ended(request)
        if viewer.scope.is_admin:
            raise web.HTTPSeeOther("/console/node/county")
        roots = sorted(viewer.scope.roots)
        if len(roots) == 1:
            raise web.HTTPSeeOther(f"/console/node/{roots[0][0]}")
        nodes = await console.nodes_by_id(session, [node_id for node_id, _ in roots])
        return render(request, "roots.html", viewer.locale, nodes=nodes)


async def fragment(request: web.Request, node: Node | None, locale: str) -> str:
    """The panels' HTML for the node in ``locale`` at the current data generation, built
    once and shared by every viewer of it, however many ask at the same moment."""
    deps = request.app[DEPS]
    key = (node.id if node else None, locale, deps.watcher.generation)
    found = deps._fragments.get(key)
    if found is not None:
        return found
    building = deps._building.get(key)
    if building is None:
        building = asyncio.create_task(_build_fragment(request.app, node, locale))
        deps._building[key] = building
        building.add_done_callback(lambda _task: deps._building.pop(key, None))
    html = await asyncio.shield(building)
    deps._fragments[key] = html
    while len(deps._fragments) > 256:
        deps._fragments.popitem(last=False)
    return html


async def _build_fragment(app: web.Application, node: Node | None, locale: str) -> str:
    deps = app[DEPS]
    started = time.perf_counter()
    async with deps.session_factory() as session:
        # A unit's answers go to whoever may open it: its scope is what chat's /report and
        # export show them to (models.access); the route checked it.
        panels = await build_panels(session, deps.config, node, locale, True, deps.cache)
    # What live pages cost the process, so that the watcher spaces its looks.
    deps.watcher.built(time.perf_counter() - started)
    zone = deps.zone

    def local(moment: datetime | None, fmt: str = "%H:%M") -> str:
        return moment.astimezone(zone).strftime(fmt) if moment else ""

    return (
        app[JINJA]
        .get_template("panels.html")
        .render(
            tr=tr_for(deps, locale),
            locale=locale,
            p=panels,
            node=node,
            local=local,
            buckets=[name for name, _ in console.AGE_BUCKETS],
            width=TREND_WIDTH,
            height=TREND_HEIGHT,
            pct=_pct,
            silent_days=deps.config.console.silent_days,
        )
    )


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"


async def page(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    target = request.match_info["target"]
    async with deps.session_factory() as session:
        viewer = await viewer_of(request, session)
        if viewer is None:
            return ended(request)
        allowed, node = await target_of(session, viewer, target)
        if not allowed:
            return forbidden(request, viewer)
        await deps.watcher.look()
        html = await fragment(request, node, viewer.locale)
        crumbs = await console.breadcrumbs(session, node)
        record(
            session,
            "console.viewed",
            viewer.member.telegram_id,
            node_id=node.id if node else None,
            households=node is not None and console.child_level(node) is None,
        )
        await session.commit()
    up: str | None = None
    if node is not None:
        parent = crumbs[-2] if len(crumbs) > 1 else None
        if parent is not None and viewer.scope.sees(parent):
            up = f"/console/node/{parent.id}"
        elif parent is None and viewer.scope.is_admin:
            up = "/console/node/county"
    return render(
        request,
        "page.html",
        viewer.locale,
        fragment=Markup(html),
        node=node,
        target=target,
        crumbs=[(crumb, viewer.scope.sees(crumb)) for crumb in crumbs],
        is_admin=viewer.scope.is_admin,
        up=up,
        generation=deps.watcher.generation,
        viewer=viewer.member.name,
    )


# --- live -----------------------------------------------------------------------------


def _event(name: str, data: str, event_id: int | None = None) -> bytes:
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


async def stream(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    target = request.match_info["target"]
    async with deps.session_factory() as session:
        viewer = await viewer_of(request, session)
        if viewer is None:
            return ended(request)
        allowed, node = await target_of(session, viewer, target)
        if not allowed:
            return forbidden(request, viewer)
    last = request.headers.get("Last-Event-ID") or request.query.get("g", "")
    generation = int(last) if last.isdigit() else -1
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    digest = token_hash(request.cookies.get(COOKIE, ""))
    deps.watcher.viewers += 1
    try:
        while True:
            current = await deps.watcher.wait_past(generation, KEEP_ALIVE_S)
            scope = (await live_scopes_now(deps)).get(digest)
            if scope is None or not (scope.is_admin if node is None else scope.sees(node)):
                await response.write(_event("ended", "ended"))
                break
            if current == generation:
                await response.write(b": keep-alive\n\n")
                continue
            html = await fragment(request, node, viewer.locale)
            generation = current
            await response.write(_event("panels", html, generation))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        deps.watcher.viewers -= 1
    return response


async def live_scopes_now(deps: ConsoleDeps) -> dict[str, Scope]:
    """Every live session's scope, read once per data generation (and at least every
    keep-alive interval, for sessions that expire) for all open streams together: a post
    lost or a new /console is audited, which moves the generation."""
    async with deps._scopes_lock:
        generation, read_at, scopes = deps._scopes
        if generation != deps.watcher.generation or time.monotonic() - read_at > KEEP_ALIVE_S:
            async with deps.session_factory() as session:
                scopes = await live_scopes(session, deps.config.admins.telegram_ids)
            deps._scopes = (deps.watcher.generation, time.monotonic(), scopes)
        return scopes


# --- export ---------------------------------------------------------------------------


async def export(request: web.Request) -> web.Response:
    """The round's export for the node shown: the same reports, needs and post coverage as
    ``/export`` in chat and ``python -m bot export`` (``models.exports``), audited the same."""
    deps = request.app[DEPS]
    target, fmt = request.match_info["target"], request.match_info["fmt"]
    async with deps.session_factory() as session:
        viewer = await viewer_of(request, session)
        if viewer is None:
            return ended(request)
        allowed, node = await target_of(session, viewer, target)
        if not allowed:
            return forbidden(request, viewer)
        report_round = await console.latest_round(session)
        if report_round is None:
            return web.Response(
                status=404, text=tr_for(deps, viewer.locale)("console.web.no_round")
            )
        nodes = None if node is None else [node]
        exported = await export_round(
            session, report_round, nodes, viewer.locale, viewer.member.telegram_id, via="console"
        )
    sheets = export_sheets(exported, tr_for(deps, viewer.locale), deps.zone.key)
    name = f"wuji-{exported.round_date}-{target}.{fmt}"
    if fmt == "xlsx":
        # openpyxl is slow on a county's 35,000 rows: off the event loop.
        body = await asyncio.to_thread(workbook_bytes, sheets)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body = csv_bytes(sheets)
        content_type = "text/csv; charset=utf-8"
    return web.Response(
        body=body,
        content_type=content_type.split(";")[0],
        charset="utf-8" if fmt == "csv" else None,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
