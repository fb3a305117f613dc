"""CloudEvents 1.0 envelope in Kafka binary mode: attributes in `ce_*` headers, JSON data in the value."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
CORRELATION_HEADER = "oto_correlation_id"
REQUIRED_HEADERS = ("ce_id", "ce_type", "ce_source", "ce_specversion")


class EnvelopeError(ValueError):
    """A Kafka message that is not a valid CloudEvent of ours (poison: goes to the DLQ)."""


@dataclass(frozen=True)
class Envelope:
    """One event as it travels: CloudEvents attributes, the partition key and the JSON data."""

    type: str
    source: str
    key: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    correlation_id: str | None = None
    dataschema: str | None = None

    def with_data(self, data: dict[str, Any]) -> Envelope:
        """Return the same event with other data (a department projection keeps id and time)."""
        return replace(self, data=data)

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers in CloudEvents binary mode."""
        pairs: list[tuple[str, str | None]] = [
            ("ce_specversion", SPEC_VERSION),
            ("ce_id", self.id),
            ("ce_type", self.type),
            ("ce_source", self.source),
            ("ce_time", _format_time(self.time)),
            ("ce_subject", self.subject),
            ("ce_dataschema", self.dataschema),
            ("content-type", CONTENT_TYPE),
            (CORRELATION_HEADER, self.correlation_id),
        ]
        return [(name, value.encode()) for name, value in pairs if value is not None]

    def value(self) -> bytes:
        """The JSON body (compact, UTF-8)."""
        return json.dumps(self.data, separators=(",", ":"), ensure_ascii=False).encode()

    def key_bytes(self) -> bytes:
        return self.key.encode()

    @classmethod
    def from_kafka(
        cls, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | tuple
    ) -> Envelope:
        """Parse a Kafka record; raise EnvelopeError for anything that is not our CloudEvent."""
        found = _read_headers(headers or ())
        missing = [name for name in REQUIRED_HEADERS if not found.get(name)]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if found["ce_specversion"] != SPEC_VERSION:
            raise EnvelopeError("unsupported ce_specversion")
        try:
            data = json.loads(value or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EnvelopeError("value is not JSON") from exc
        if not isinstance(data, dict):
            raise EnvelopeError("value is not a JSON object")
        return cls(
            type=found["ce_type"],
            source=found["ce_source"],
            id=found["ce_id"],
            key=(key or b"").decode("utf-8", "replace"),
            data=data,
            time=_parse_time(found.get("ce_time")),
            subject=found.get("ce_subject"),
            correlation_id=found.get(CORRELATION_HEADER),
            dataschema=found.get("ce_dataschema"),
        )


#: The headers ``from_kafka`` reads; others (content-type, a DLQ's own) are not decoded at all.
_READ_HEADERS = frozenset({*REQUIRED_HEADERS, "ce_time", "ce_subject", "ce_dataschema", CORRELATION_HEADER})


def _read_headers(headers: list[tuple[str, bytes]] | tuple) -> dict[str, str]:
    """The headers we read, as UTF-8 (replacement characters for what is not). A consumer's hot
    loop: the strict decode is the fast path, the lenient one runs only for a broken header."""
    try:
        return {name: raw.decode() for name, raw in headers if name in _READ_HEADERS}
    except UnicodeDecodeError:
        return {name: raw.decode("utf-8", "replace") for name, raw in headers if name in _READ_HEADERS}


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(raw: str | None) -> datetime:
    if not raw:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(raw)  # Python 3.11 reads the "Z" of RFC 3339
    except ValueError as exc:
        raise EnvelopeError("ce_time is not RFC 3339") from exc
    if parsed.tzinfo is None:
        raise EnvelopeError("ce_time has no time zone")
    return parsed
