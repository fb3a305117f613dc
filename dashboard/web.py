"""The views: thin routes that read the fold and render Danish HTML (no script or style from elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard import labels, queries
from dashboard.access import (
    COOKIE,
    LoginRequired,
    dev_login_allowed,
    dev_token,
    principal_of,
    set_cookie,
)
from dashboard.fold import family_id_of
from shared.errors import Forbidden, Unauthorized, install_error_handlers

HERE = Path(__file__).parent
#: Everything from this origin only: a page that tried to load from a CDN would break here first.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
Site = Annotated[str | None, Query(max_length=80)]
State = Annotated[str | None, Query(max_length=20)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(event_label=labels.event_label, when=labels.when, kroner=labels.kroner,
                             detail=labels.detail, STATES=labels.STATES, FAMILY_STATES=labels.FAMILY_STATES,
                             ROLES=labels.ROLES, PRIORITIES=labels.PRIORITIES, CHARGES=labels.CHARGES)


class SecurityHeaders:
    """The content security policy and friends on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [(b"content-security-policy", CSP.encode()),
                                       (b"x-content-type-options", b"nosniff"),
                                       (b"referrer-policy", b"no-referrer")]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def _render(request: Request, name: str, **context: Any) -> HTMLResponse:
    department = request.app.state.department
    context.update(request=request, department=department, partial=request.headers.get("x-partial") == "1",
                   dev_login=dev_login_allowed(request.app.state.settings))
    return templates.TemplateResponse(request, name, context)


def _query(request: Request, **changes: Any) -> str:
    """The current filters with some changed (pagination links keep the filters)."""
    values = {**request.query_params, **{k: v for k, v in changes.items()}}
    return "?" + urlencode({k: v for k, v in values.items() if v not in (None, "")})


templates.env.globals["with_query"] = _query


def install_routes(app: FastAPI) -> None:
    # problem+json for bad input (422 naming the field), unknown paths and an unreadable state file;
    # the two handlers below turn a missing login and a foreign token into pages instead.
    install_error_handlers(app)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.url.path == "/live":
            return JSONResponse({"title": "Unauthorized"}, status_code=401)
        return RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        response = _render(request, "forbidden.html", principal=None)
        response.status_code = 403
        return response

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/familier", status_code=303)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        alive = request.app.state.consumer.is_alive() and not request.app.state.task.done()
        return JSONResponse({"status": "alive" if alive else "stalled"}, status_code=200 if alive else 503)

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready"})

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/familier", error: str | None = None) -> HTMLResponse:
        return _render(request, "login.html", next=_safe_next(next), error=error, principal=None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        target = _safe_next(form.get("next", "/familier"))
        if form.get("dev") and dev_login_allowed(request.app.state.settings):
            token = dev_token(request.app.state.settings, request.app.state.department)
        else:
            token = form.get("token", "").strip()
        try:
            from dashboard.access import check

            principal = await request.app.state.token_verifier.verify(token)
            check(principal, request.app.state.department)
        except (Unauthorized, Forbidden):
            return RedirectResponse(f"/login?{urlencode({'next': target, 'error': '1'})}", status_code=303)
        response = RedirectResponse(target, status_code=303)
        set_cookie(response, request, token)
        return response

    @app.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/familier", response_class=HTMLResponse)
    async def family_list(request: Request, site: Site = None, state: State = None,
                          q: Annotated[str | None, Query(max_length=80)] = None,
                          page: PageNo = 1) -> HTMLResponse:
        principal = await principal_of(request)
        wanted = family_id_of(q) if q else None
        async with request.app.state.sessionmaker() as session:
            found = (queries.Page([], 0, page) if q and wanted is None else await queries.families(
                session, site=site, state=state or None, family_id=wanted, page=page))
            all_sites = await queries.sites(session)
        return _render(request, "families.html", principal=principal, page=found, sites=all_sites,
                       site=site, state=state, q=q, view="familier")

    @app.get("/familier/{family_id}", response_class=HTMLResponse)
    async def family_detail(request: Request, family_id: str) -> HTMLResponse:
        principal = await principal_of(request)
        wanted = family_id_of(family_id)
        async with request.app.state.sessionmaker() as session:
            found = await queries.family(session, wanted) if wanted else None
        if found is None:
            response = _render(request, "not_found.html", principal=principal, view="familier")
            response.status_code = 404
            return response
        return _render(request, "family.html", principal=principal, family=found, now=datetime.now(UTC),
                       open_states=queries.OPEN_STATES, view="familier")

    @app.get("/henvisninger", response_class=HTMLResponse)
    async def referral_list(request: Request, site: Site = None, state: State = None,
                            overdue: bool = False, page: PageNo = 1) -> HTMLResponse:
        principal = await principal_of(request)
        async with request.app.state.sessionmaker() as session:
            found = await queries.referrals(session, site=site, state=state or None, overdue=overdue,
                                            now=datetime.now(UTC), page=page)
            all_sites = await queries.sites(session)
        return _render(request, "referrals.html", principal=principal, page=found, sites=all_sites, site=site,
                       state=state, overdue=overdue, view="henvisninger")

    @app.get("/medarbejdere", response_class=HTMLResponse)
    async def staff(request: Request, site: Site = None) -> HTMLResponse:
        principal = await principal_of(request)
        async with request.app.state.sessionmaker() as session:
            found = await queries.staff(session, site=site, today=datetime.now(UTC).date().isoformat())
            all_sites = await queries.sites(session)
        return _render(request, "staff.html", principal=principal, by_site=found, sites=all_sites, site=site,
                       view="medarbejdere")

    @app.get("/oekonomi", response_class=HTMLResponse)
    async def finance(request: Request, site: Site = None) -> HTMLResponse:
        principal = await principal_of(request)
        async with request.app.state.sessionmaker() as session:
            found = await queries.charges(session, site=site)
            all_sites = await queries.sites(session)
        return _render(request, "finance.html", principal=principal, charges=found, sites=all_sites,
                       site=site, view="oekonomi")

    @app.get("/live")
    async def live(request: Request) -> StreamingResponse:
        await principal_of(request)
        return StreamingResponse(request.app.state.changes.stream(request.is_disconnected),
                                 media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})


def _safe_next(target: str) -> str:
    """Only a path on this dashboard (no open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/familier"
