"""Builds a service's FastAPI app: wiring, lifespan (migrations, relay, consumers), health."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import migrations
from shared.audit import MEMBERS_INFO_KEY, MemberLookup
from shared.audit_api import PersonalTables, audit_router
from shared.auth import TokenVerifier
from shared.db import make_engine, make_sessionmaker
from shared.errors import install_error_handlers, problem_response
from shared.inbox import EventConsumer, Subscription
from shared.leader import Leadership
from shared.observability import MULTIPROCESS_DIR, RequestContextMiddleware, configure_logging
from shared.openapi import DocumentedFastAPI
from shared.outbox import WAKEUP_KEY, OutboxRelay, outbox_backlog, relay_wakeup_info
from shared.outbox_admin import outbox_router
from shared.screening import RequestScreening
from shared.settings import Settings
from shared.slice_view import slice_router
from shared.slices import SlicePolicy, default_policy

log = logging.getLogger(__name__)
#: How long a stopping service waits for its consumers and relay to finish (compose allows more).
SHUTDOWN_SECONDS = 15


@dataclass
class ServiceDefinition:
    """What makes one service: its routes, subscriptions, domain errors and start-up seed."""

    name: str
    title: str
    description: str
    routers: Sequence[APIRouter]
    subscriptions: Sequence[Subscription] = ()
    domain_errors: dict[type[Exception], int] = field(default_factory=dict)
    seed: Callable[[AsyncSession], Awaitable[None]] | None = None
    openapi_tags: list[dict[str, Any]] | None = None
    #: The department slice policy; tests may give their own.
    policy: SlicePolicy | None = None
    #: family id -> its members' person ids, so audit entries name the persons of a family.
    members: MemberLookup | None = None
    #: Where the service keeps personal data, for the subject-access report.
    personal: PersonalTables | None = None
    #: Paths with their own body limit, from the settings (e.g. the register import).
    body_limits: Callable[[Settings], Mapping[str, int]] | None = None


def build_app(definition: ServiceDefinition, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service=definition.name)
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _start(app, definition, settings)
        try:
            yield
        finally:
            await _stop(app)

    app = DocumentedFastAPI(title=definition.title, description=definition.description, version="1.0.0",
                            lifespan=lifespan, openapi_tags=definition.openapi_tags)
    app.state.settings = settings
    # Added first, so it runs inside the body limit and before the routes and error handlers.
    app.add_middleware(RequestScreening)
    app.state.token_verifier = TokenVerifier(settings)
    app.state.consumers = []
    app.state.relay = None
    app.state.tasks, app.state.leadership, app.state.follower = [], None, None
    app.state.policy = definition.policy or default_policy()
    app.state.personal = definition.personal
    app.state.members = definition.members
    install_error_handlers(app, definition.domain_errors)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       limits=definition.body_limits(settings) if definition.body_limits else None)
    app.add_middleware(RequestContextMiddleware, service=definition.name)
    app.include_router(operations_router())
    app.include_router(slice_router())
    app.include_router(audit_router(definition.personal, definition.name))
    app.include_router(outbox_router())
    for router in definition.routers:
        app.include_router(router)
    return app


async def _start(app: FastAPI, definition: ServiceDefinition, settings: Settings) -> None:
    settings.refuse_development_secrets()  # however the app is served (shared.serve says it in one line)
    url = settings.resolved_database_url()
    # Several workers (OTO_WORKERS): one leader runs the relay and the consumers (shared.leader).
    leadership = Leadership(settings.data_dir, definition.name) if settings.workers > 1 else None
    async with leadership.preparing() if leadership is not None else nullcontext():
        if settings.migrate_on_start:
            await migrations.upgrade(definition.name, url)
        engine = make_engine(url)
        relay = OutboxRelay(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine),
                            policy=app.state.policy) if settings.relay_enabled else None
        wakeup = relay_wakeup_info(relay) if leadership is None or relay is None \
            else {WAKEUP_KEY: leadership.wake_leader}
        sessionmaker = make_sessionmaker(engine, {**wakeup, MEMBERS_INFO_KEY: definition.members})
        app.state.engine, app.state.sessionmaker, app.state.relay = engine, sessionmaker, relay
        app.state.head = migrations.head_revision(definition.name)
        if definition.seed is not None:
            async with sessionmaker() as session:
                await definition.seed(session)
                await session.commit()
    app.state.tasks, app.state.leadership, app.state.follower = [], leadership, None

    async def lead() -> None:
        """Start the relay and the consumers: at once with one worker, in the leader with several."""
        if leadership is not None and relay is not None:
            leadership.listen(relay.wake)
        if relay is not None:
            app.state.tasks.append(asyncio.create_task(relay.run(), name=f"{definition.name}-relay"))
        if settings.consumers_enabled:
            for subscription in definition.subscriptions:
                consumer = EventConsumer(settings=settings, subscription=subscription,
                                         sessionmaker=sessionmaker)
                app.state.consumers.append(consumer)
                app.state.tasks.append(asyncio.create_task(consumer.run(),
                                                           name=f"consumer-{subscription.name}"))

    if leadership is None or leadership.try_acquire():
        await lead()
    else:  # kept apart from the tasks: its end (this worker leads now) is no failure
        app.state.follower = asyncio.create_task(leadership.follow(lead), name=f"{definition.name}-follower")
    freeze_startup_objects()


def freeze_startup_objects() -> None:
    """Move what start-up built (modules, classes, routes, schemas, the pool) out of the
    collector's reach: they live as long as the process, and every full collection under load
    walked them all again. Measured on the team view at 64 connections, two alternating A/B
    pairs on the shared machine: 1.1–1.3 → 0.9–1.0 ms of CPU per read (the p99 swung too much
    there to tell). Garbage is collected first, so none of it is kept for good. Public because
    the benchmarks' consumer processes start as a service does (bench/projection.py)."""
    gc.collect()
    gc.freeze()


async def _stop(app: FastAPI) -> None:
    """Consumers finish their batch and commit; the relay flushes; then the engine closes and a
    leader gives up its lock (another worker, if any, takes over)."""
    if app.state.follower is not None:
        app.state.follower.cancel()
        with suppress(asyncio.CancelledError):
            await app.state.follower
    for consumer in app.state.consumers:
        await consumer.stop()
    if app.state.relay is not None:
        await app.state.relay.stop()
    tasks = app.state.tasks
    _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS) if tasks else (set(), set())
    for task in pending:
        task.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await task
    await app.state.engine.dispose()
    if app.state.leadership is not None:
        app.state.leadership.release()


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a body passes its limit, so the app stops reading it. An
    HTTP exception, because FastAPI turns any other error while reading a body into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body is larger than {limit} bytes.")


class BodySizeLimit:
    """Refuses bodies larger than the limit with 413: before reading when Content-Length says so,
    and for chunked bodies (no Content-Length) as soon as the bytes received pass the limit; the
    rest is never parsed and the connection is closed, so the client stops sending.

    ``limits`` gives some paths their own limit (the register import is larger than any JSON body).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limits: Mapping[str, int] | None = None) -> None:
        self.app, self.max_bytes, self.limits = app, max_bytes, dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            # No body (HTTP/1.1: neither header means none), as for nearly every read: nothing to
            # count, so no wrapped receive and send on the hot path.
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.max_bytes)
        if length is not None and length.isdigit() and int(length) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received, exceeded, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's own answer to BodyTooLarge: ours (with Connection: close) goes instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(413, "Content too large", f"The body is larger than {limit} bytes.")
        response.headers["connection"] = "close"  # uvicorn then closes instead of reading the rest
        await response(scope, receive, send)


class Liveness(BaseModel):
    status: Literal["alive"]


class Readiness(BaseModel):
    """``degraded``: ready, but some events are parked (they need an operator: see /v1/outbox)."""

    status: Literal["ready", "degraded"]
    checks: dict[str, bool]
    parked_events: int = 0


def operations_router() -> APIRouter:
    """Health, readiness, catalogue and metrics; their bodies are documented so
    clients (and the fuzz test) can hold the responses to the OpenAPI document."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Liveness,
                summary="Alive: the process, the relay and the consumers make progress")
    async def healthz(request: Request) -> JSONResponse:
        stalled = [c.group_id for c in request.app.state.consumers if not c.is_alive()]
        dead = [t.get_name() for t in request.app.state.tasks if t.done()]
        if stalled or dead:
            return problem_response(503, "Not alive", f"stalled: {stalled + dead}", request)
        return JSONResponse({"status": "alive"})

    @router.get("/readyz", response_model=Readiness,
                summary="Ready: database reachable and at head, broker reachable, outbox moving")
    async def readyz(request: Request) -> JSONResponse:
        state = request.app.state
        checks = {"database": await _database_ready(state),
                  "broker": await _broker_ready(state.settings)}
        outbox_ok, parked, reason = await _outbox_moving(state) if checks["database"] else (False, 0, "")
        checks["outbox"] = outbox_ok
        if all(checks.values()):
            return JSONResponse({"status": "degraded" if parked else "ready", "checks": checks,
                                 "parked_events": parked})
        detail = "; ".join([f"checks: {checks}", *([reason] if reason else [])])
        return problem_response(503, "Not ready", detail, request, checks=checks)

    @router.get("/asyncapi.json", response_model=dict[str, Any], summary="The event catalogue (AsyncAPI 3.0)")
    async def asyncapi(request: Request) -> JSONResponse:
        from shared.catalogue import asyncapi_document

        namespace = request.app.state.settings.topic_namespace
        return JSONResponse(asyncapi_document(namespace=namespace))

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(_metrics_registry()), media_type=CONTENT_TYPE_LATEST)

    return router


def _metrics_registry() -> CollectorRegistry:
    """This process's registry; with several workers (``shared.serve`` sets
    PROMETHEUS_MULTIPROC_DIR for them) every worker's, summed (counters, histograms) or the
    latest value (gauges), whichever worker answers the scrape."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


async def _outbox_moving(state: Any) -> tuple[bool, int, str]:
    """Whether the oldest publishable event is younger than the stall threshold; the number of
    parked events; and, when stalled, the reason in words."""
    threshold = state.settings.outbox_stall_seconds
    try:
        async with state.sessionmaker() as session:
            backlog = await asyncio.wait_for(outbox_backlog(session), timeout=2)
    except Exception:
        return False, 0, "outbox: could not be read"
    if backlog.oldest_age > threshold:
        return False, backlog.parked, (
            f"outbox stalled: the oldest of {backlog.pending} pending events has waited "
            f"{backlog.oldest_age:.0f} s (threshold {threshold:.0f} s)")
    return True, backlog.parked, ""


async def _database_ready(state: Any) -> bool:
    try:
        async with state.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
        return await migrations.current_revision(state.engine) == state.head
    except Exception:
        return False


async def _broker_ready(settings: Settings) -> bool:
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), 2)
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with suppress(Exception):
        await writer.wait_closed()
    return True
