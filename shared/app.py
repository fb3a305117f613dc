"""Builds a service's FastAPI app: wiring, lifespan (migrations, relay, consumers), health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from shared import migrations
from shared.auth import CurrentPrincipal, Role, TokenVerifier
from shared.db import make_engine, make_sessionmaker
from shared.errors import Forbidden, install_error_handlers, problem_response
from shared.inbox import EventConsumer, Subscription
from shared.observability import RequestContextMiddleware, configure_logging
from shared.openapi import DocumentedFastAPI
from shared.outbox import OutboxRelay, outbox_backlog, relay_wakeup_info
from shared.outbox_admin import outbox_router
from shared.settings import Settings
from shared.slice_view import slice_router
from shared.slices import SlicePolicy, default_policy
from shared.tables import audit_log

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
    app.state.token_verifier = TokenVerifier(settings)
    app.state.consumers = []
    app.state.relay = None
    app.state.policy = definition.policy or default_policy()
    install_error_handlers(app, definition.domain_errors)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, service=definition.name)
    app.include_router(operations_router())
    app.include_router(slice_router())
    app.include_router(outbox_router())
    for router in definition.routers:
        app.include_router(router)
    return app


async def _start(app: FastAPI, definition: ServiceDefinition, settings: Settings) -> None:
    url = settings.resolved_database_url()
    if settings.migrate_on_start:
        await migrations.upgrade(definition.name, url)
    engine = make_engine(url)
    relay = OutboxRelay(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine),
                        policy=app.state.policy) if settings.relay_enabled else None
    sessionmaker = make_sessionmaker(engine, relay_wakeup_info(relay))
    app.state.engine, app.state.sessionmaker, app.state.relay = engine, sessionmaker, relay
    app.state.head = migrations.head_revision(definition.name)
    if definition.seed is not None:
        async with sessionmaker() as session:
            await definition.seed(session)
            await session.commit()
    tasks = []
    if relay is not None:
        tasks.append(asyncio.create_task(relay.run(), name=f"{definition.name}-relay"))
    if settings.consumers_enabled:
        for subscription in definition.subscriptions:
            consumer = EventConsumer(settings=settings, subscription=subscription,
                                     sessionmaker=sessionmaker)
            app.state.consumers.append(consumer)
            tasks.append(asyncio.create_task(consumer.run(), name=f"consumer-{subscription.name}"))
    app.state.tasks = tasks


async def _stop(app: FastAPI) -> None:
    """Consumers finish their batch and commit; the relay flushes; then the engine closes."""
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


class BodySizeLimit:
    """Refuses bodies larger than the limit with 413 before they are read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                response = problem_response(413, "Content too large",
                                            f"The body is larger than {self.max_bytes} bytes.")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Liveness(BaseModel):
    status: Literal["alive"]


class Readiness(BaseModel):
    """``degraded``: ready, but some events are parked (they need an operator: see /v1/outbox)."""

    status: Literal["ready", "degraded"]
    checks: dict[str, bool]
    parked_events: int = 0


class AuditEntry(BaseModel):
    """One row of the audit log: who read whose data, through which endpoint, and whether allowed."""

    id: int
    at: datetime
    actor: str
    client: str | None
    role: str
    department: str | None
    site_id: str | None
    subject_kind: str
    subject_id: str
    endpoint: str
    purpose: str
    outcome: str
    correlation_id: str | None


def operations_router() -> APIRouter:
    """Health, readiness, catalogue, metrics and the audit log; their bodies are documented so
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
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/audit", response_model=list[AuditEntry],
                summary="Who read a person's or family's data (admin and coordination)")
    async def audit(request: Request, principal: CurrentPrincipal, subject_id: str,
                    limit: Annotated[int, Query(ge=1, description="At most 1000 rows are returned.")] = 100,
                    ) -> list[dict[str, Any]]:
        if principal.role not in {Role.ADMIN, Role.COORDINATION}:
            raise Forbidden("Only admin and the coordination group may read the audit log.")
        async with request.app.state.sessionmaker() as session:
            rows = await session.execute(select(audit_log).where(
                audit_log.c.subject_id == subject_id).order_by(audit_log.c.id).limit(min(limit, 1000)))
            return [dict(row._mapping) for row in rows]

    return router


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
