"""CloudEvents 1.0 envelope in Kafka binary mode: attributes in `ce_*` headers, JSON data in the value."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
        found = _checked_headers(headers)
        data = _decode_object(value)
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

    @classmethod
    def from_kafka_undecoded(
        cls, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | tuple
    ) -> Envelope:
        """``from_kafka`` for a caller that has already validated ``value`` as a JSON object (the
        inbox validates the payload model straight from the bytes): the same attributes and header
        checks, but ``data`` is decoded only when something reads it. A replay's handlers mostly
        read the validated payload, so most envelopes never pay for a second JSON decode.

        The checks run in another order than ``from_kafka``'s, so a caller that needs the exact
        error of a bad record calls ``from_kafka`` when this raises.
        """
        found = _checked_headers(headers)
        envelope = cls.__new__(cls)
        # Written straight into the instance (a frozen dataclass's __init__ sets each field
        # through object.__setattr__, which costs more than the rest of this method); ``data``
        # is left out, so reading it reaches __getattr__. A test checks that every field is here.
        envelope.__dict__.update(
            type=found["ce_type"],
            source=found["ce_source"],
            id=found["ce_id"],
            key=(key or b"").decode("utf-8", "replace"),
            time=_parse_time(found.get("ce_time")),
            subject=found.get("ce_subject"),
            correlation_id=found.get(CORRELATION_HEADER),
            dataschema=found.get("ce_dataschema"),
            _undecoded=value,
        )
        return envelope

    if not TYPE_CHECKING:  # for type checkers an Envelope has its fields and nothing else

        def __getattr__(self, name: str) -> Any:
            """Only reached for the ``data`` of an envelope from ``from_kafka_undecoded`` (any
            other missing attribute raises as usual): decoded now, and kept."""
            undecoded = self.__dict__.get("_undecoded")
            if name != "data" or undecoded is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            data = _decode_object(undecoded)
            object.__setattr__(self, "data", data)
            object.__delattr__(self, "_undecoded")
            return data


#: The headers ``from_kafka`` reads; others (content-type, a DLQ's own) are not decoded at all.
_READ_HEADERS = frozenset({*REQUIRED_HEADERS, "ce_time", "ce_subject", "ce_dataschema", CORRELATION_HEADER})


def _read_headers(headers: list[tuple[str, bytes]] | tuple) -> dict[str, str]:
    """The headers we read, as UTF-8 (replacement characters for what is not). A consumer's hot
    loop: the strict decode is the fast path, the lenient one runs only for a broken header. A
    header without a value (Kafka allows null) reads as empty, so a required one is "missing"
    (it raised AttributeError, which no poison check caught: the consumer met it again forever)."""
    try:
        return {name: raw.decode() for name, raw in headers if name in _READ_HEADERS}
    except (UnicodeDecodeError, AttributeError):
        return {name: (raw or b"").decode("utf-8", "replace") for name, raw in headers
                if name in _READ_HEADERS}


def _checked_headers(headers: list[tuple[str, bytes]] | tuple) -> dict[str, str]:
    """The headers we read, checked: every required one present and non-empty, our spec version."""
    found = _read_headers(headers or ())
    if not all(map(found.get, REQUIRED_HEADERS)):  # present and not empty
        missing = [name for name in REQUIRED_HEADERS if not found.get(name)]
        raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
    if found["ce_specversion"] != SPEC_VERSION:
        raise EnvelopeError("unsupported ce_specversion")
    return found


def _decode_object(value: bytes | None) -> dict[str, Any]:
    """The JSON object in a record's value; EnvelopeError for anything else."""
    try:
        data = json.loads(value or b"")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EnvelopeError("value is not JSON") from exc
    except RecursionError:  # nested deeper than the parser goes: a few KB of brackets
        raise EnvelopeError("value is not JSON (nested too deep)") from None
    if not isinstance(data, dict):
        raise EnvelopeError("value is not a JSON object")
    return data


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
