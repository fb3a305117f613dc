"""JSON logs with a correlation id, Prometheus metrics, and the request middleware."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
REQUEST_ID_HEADER = "x-request-id"

HTTP_REQUESTS = Counter(
    "oto_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "oto_http_request_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
#: Where the workers of one service keep their metrics (Prometheus' multiprocess mode).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: With several workers (``OTO_WORKERS``, Prometheus' multiprocess mode) a gauge shows the value
#: written last: the leader's, the only worker that sets them (a new leader's after a take-over).
LEADER_ONLY: Literal["mostrecent"] = "mostrecent"
OUTBOX_PENDING = Gauge("oto_outbox_pending", "Unpublished outbox rows", ["service"],
                       multiprocess_mode=LEADER_ONLY)
OUTBOX_OLDEST_AGE = Gauge(
    "oto_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"],
    multiprocess_mode=LEADER_ONLY)
OUTBOX_PUBLISHED = Counter("oto_outbox_published_total", "Outbox rows published", ["service"])
OUTBOX_PARKED = Gauge("oto_outbox_parked_events", "Outbox rows parked: they cannot be published", ["service"],
                      multiprocess_mode=LEADER_ONLY)
OUTBOX_PARKED_TOTAL = Counter("oto_outbox_parked_total", "Outbox rows ever parked", ["service"])
OUTBOX_HELD = Gauge("oto_outbox_held", "Outbox rows waiting behind a parked row of their key",
                    ["service"], multiprocess_mode=LEADER_ONLY)
OUTBOX_REQUEUED = Counter(
    "oto_outbox_requeued_total", "Outbox rows queued again because the broker lost them", ["service"])
CONSUMER_LAG = Gauge("oto_consumer_lag", "Messages behind the high watermark", ["consumer", "topic"],
                     multiprocess_mode=LEADER_ONLY)
CONSUMED = Counter("oto_consumed_total", "Messages handled", ["consumer", "outcome"])
DLQ_MESSAGES = Counter("oto_dlq_messages_total", "Messages dead-lettered", ["consumer", "topic"])

#: Ten digits with an optional dash, as a CPR number is written, not inside a longer token (a
#: UUID's hex can hold ten digits in a row): never let one reach a log line.
CPR_SHAPE = re.compile(r"(?<![0-9A-Za-z])\d{6}-?\d{4}(?![0-9A-Za-z])")


#: What a correlation id may look like: it is copied into log lines, the audit log, the outbox
#: and the headers of every event (department topics included), so only a short token of safe
#: characters that is not CPR-shaped (``CPR_SHAPE``) is taken from a caller or a message. Hex ids
#: (UUIDs, trace ids) hold ten digits in a row now and then, inside a longer token, and are kept.
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def redact(text: str) -> str:
    return CPR_SHAPE.sub("[redacted]", text)


def is_safe_id(value: str | None) -> bool:
    """Whether ``value`` may travel as a correlation id (see ``SAFE_ID``)."""
    return value is not None and SAFE_ID.fullmatch(value) is not None and CPR_SHAPE.search(value) is None


def accept_id(value: str | None) -> str:
    """The caller's or message's correlation id if it is safe to copy everywhere, else a new one
    (a UUID is never CPR-shaped: its groups have 8, 4 and 12 characters)."""
    return value if value is not None and is_safe_id(value) else str(uuid.uuid4())


class JsonFormatter(logging.Formatter):
    """One JSON object per line; CPR-shaped strings are redacted whatever their source."""

    _skip = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": correlation_id.get(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel("WARNING")


#: A request slower than this is logged (with every failed one); the rest are only counted.
SLOW_REQUEST_SECONDS = 1.0
log = logging.getLogger("oto.http")


class RequestContextMiddleware:
    """Sets the correlation id (from ``X-Request-ID`` when it is safe to copy, else new), counts
    and times requests, and logs the ones worth a line: server errors and slow requests.

    Every request is counted and timed in the metrics; a JSON line per request (uvicorn's access
    log, now off in ``shared.serve``) cost about 5 % of a read's CPU and said nothing the metrics
    do not."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._by_route: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _series(self, method: str, path: str, status: int) -> tuple[Any, Any]:
        """The request's counter and histogram, looked up once per route (method, template,
        status: a bounded set) rather than through ``labels`` on every request."""
        key = (method, path, status)
        series = self._by_route.get(key)
        if series is None:
            series = self._by_route[key] = (HTTP_REQUESTS.labels(self.service, method, path, str(status)),
                                            HTTP_LATENCY.labels(self.service, method, path))
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = accept_id(incoming)
        token = correlation_id.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append(
                    (REQUEST_ID_HEADER.encode(), request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            count, latency = self._series(scope["method"], path, status)
            count.inc()
            latency.observe(elapsed)
            if status >= 500 or elapsed > SLOW_REQUEST_SECONDS:
                log.info("request", extra={"method": scope["method"], "route": path, "status": status,
                                           "ms": round(elapsed * 1000, 1)})
            correlation_id.reset(token)
