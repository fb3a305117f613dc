"""The consumer's fast parse (payload validated straight from the record's bytes, envelope data
decoded only when read) gives exactly what the reference parse gives: the same envelope and
payload, or the same error for the dead-letter topic. No broker or database: records are built
in memory and the dead-letter producer is a stand-in that keeps what it was given."""

from __future__ import annotations

import copy
import json
import pickle
import uuid
from dataclasses import fields, replace
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from pydantic import BaseModel, field_validator

from shared.events import REGISTRY
from shared.events.casework import ContactRecorded, StaffStationed
from shared.events.envelope import Envelope, EnvelopeError
from shared.events.registry import DomainEvent, _reads_json_alike
from shared.inbox import EventConsumer, Subscription, _describe
from shared.settings import SERVICES, Settings
from tests.shared.plumbing import ThingHappened

SPECS = [spec for spec in REGISTRY if spec.service in SERVICES or spec.service == "testkit"]
FAMILY = "6f1c1c8e-3b7a-4d0e-9d8e-1f2a3b4c5d6e"


class DeadLetters:
    """Stands in for the consumer's producer: keeps each dead letter's value and error header."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, str]] = []

    async def send_and_wait(self, topic: str, *, value: bytes | None, key: bytes | None,
                            headers: list[tuple[str, bytes]]) -> None:
        self.sent.append((value, dict(headers)["dlq_error"].decode()))


async def _ignore(session: Any, event: Any, envelope: Envelope) -> None:
    """A handler that is never called here: only parsing is tested."""


def _consumer(parse: Any = None) -> tuple[EventConsumer, DeadLetters]:
    subscription = Subscription("parsing", ("testkit", "casework"), {
        ThingHappened: _ignore, ContactRecorded: _ignore, StaffStationed: _ignore}, parse=parse)
    consumer = EventConsumer(settings=Settings(topic_namespace="parsing", log_json=False),
                             subscription=subscription, sessionmaker=None)  # type: ignore[arg-type]
    letters = DeadLetters()
    consumer._producer = letters
    return consumer, letters


def _record(value: bytes | None, headers: list[tuple[str, bytes]],
            key: bytes | None = b"k") -> ConsumerRecord:
    return ConsumerRecord("t", 0, 7, 0, 0, key, value, None, len(value or b""), 0, headers)


def _thing(**data: Any) -> Envelope:
    return Envelope(type=ThingHappened.event_type, source="/oto/testkit", key=FAMILY,
                    data={"family_id": FAMILY, "site_id": "viby", "seq": 3, **data}, correlation_id="req-1")


def _with_header(envelope: Envelope, name: str, value: bytes | None) -> list[tuple[str, bytes]]:
    headers = [(n, v) for n, v in envelope.headers() if n != name]
    return headers if value is None else [*headers, (name, value)]


async def _reference(consumer: EventConsumer, record: ConsumerRecord) -> tuple[str, Any, Any]:
    """What the consumer gave before the fast path: ``_parse`` alone."""
    try:
        envelope, payload = consumer._parse(record)
    except Exception as exc:
        return "error", _describe(exc), None
    return "ok", envelope, payload


async def _prepared(consumer: EventConsumer, letters: DeadLetters,
                    record: ConsumerRecord) -> tuple[str, Any, Any]:
    item = await consumer._prepare(record)
    if item is None:
        assert len(letters.sent) == 1, "a record not handed on is dead-lettered exactly once"
        return "error", letters.sent[0][1], None
    return "ok", item.envelope, item.payload


GOOD = _thing()
FULL = replace(_thing(), subject="family", dataschema="urn:thing")  # every optional attribute set
DECIMAL = Envelope(type=StaffStationed.event_type, source="/oto/casework", key="k",
                   data=REGISTRY.spec(StaffStationed.event_type).examples()[0])
RECORDS = {
    "valid": _record(GOOD.value(), GOOD.headers()),
    "valid, every optional header": _record(FULL.value(), FULL.headers()),
    "not JSON": _record(b"{not json", GOOD.headers()),
    "not UTF-8": _record(b'{"seq": "\xff"}', GOOD.headers()),
    "empty value": _record(b"", GOOD.headers()),
    "no value": _record(None, GOOD.headers()),
    "a JSON array": _record(b"[1, 2]", GOOD.headers()),
    "a JSON string": _record(b'"text"', GOOD.headers()),
    "invalid payload": _record(_thing(seq="not a number").value(), GOOD.headers()),
    "payload missing a field": _record(json.dumps({"family_id": FAMILY, "seq": 1}).encode(), GOOD.headers()),
    "unknown type": _record(GOOD.value(), _with_header(GOOD, "ce_type", b"dk.aarhus.oto.nobody.unknown.v1")),
    "unknown type, not JSON": _record(b"nope", _with_header(GOOD, "ce_type", b"dk.aarhus.oto.nobody.x.v1")),
    "no ce_id": _record(GOOD.value(), _with_header(GOOD, "ce_id", None)),
    "empty ce_source": _record(GOOD.value(), _with_header(GOOD, "ce_source", b"")),
    "other spec version": _record(GOOD.value(), _with_header(GOOD, "ce_specversion", b"0.3")),
    "bad ce_time": _record(GOOD.value(), _with_header(GOOD, "ce_time", b"yesterday")),
    "bad ce_time, not JSON": _record(b"{", _with_header(GOOD, "ce_time", b"yesterday")),
    "naive ce_time": _record(GOOD.value(), _with_header(GOOD, "ce_time", b"2026-01-05T08:00:00")),
    "a header not UTF-8": _record(GOOD.value(), _with_header(GOOD, "ce_subject", b"fam\xffily")),
    "no key": _record(GOOD.value(), GOOD.headers(), key=None),
    "v1 payload: no optional field, an unknown one": _record(
        json.dumps({"family_id": FAMILY, "site_id": "viby", "seq": 1,
                    "added_later": [1, {"x": None}]}).encode(),
        GOOD.headers()),
    "lone surrogate (json.loads takes it, the JSON validator does not)": _record(
        b'{"family_id": "' + FAMILY.encode() + b'", "site_id": "viby", "seq": 1, "note": "\\ud800"}',
        GOOD.headers()),
    "UTF-8 byte order mark": _record(b"\xef\xbb\xbf" + GOOD.value(), GOOD.headers()),
    "duplicate key": _record(
        b'{"family_id": "' + FAMILY.encode() + b'", "site_id": "viby", "seq": 1, "seq": 2}', GOOD.headers()),
    "Decimal model, number 2.0": _record(json.dumps({**DECIMAL.data, "fte": 2.0}).encode(),
                                         DECIMAL.headers()),
}


@pytest.mark.parametrize("name", list(RECORDS))
async def test_the_consumer_parses_every_record_as_the_reference_parse_does(name: str) -> None:
    consumer, letters = _consumer()
    record = RECORDS[name]
    expected, got = await _reference(consumer, record), await _prepared(consumer, letters, record)
    assert got[0] == expected[0] and got[1:] == expected[1:]
    if got[0] == "ok":
        assert type(got[2]) is type(expected[2]) and repr(got[2]) == repr(expected[2])  # Decimal('2.0') ≠ '2'
        assert got[1].data == expected[1].data and repr(got[1]) == repr(expected[1])


def test_the_records_cover_the_fast_path_and_each_way_out_of_it() -> None:
    """The test above must see both paths: bytes the fast path takes and bytes it leaves."""
    consumer, _ = _consumer()
    assert consumer._parse_fast(RECORDS["valid"]) is not None
    assert consumer._parse_fast(RECORDS["v1 payload: no optional field, an unknown one"]) is not None
    for name in ("not JSON", "invalid payload", "unknown type", "bad ce_time", "no value",
                 "lone surrogate (json.loads takes it, the JSON validator does not)",
                 "Decimal model, number 2.0"):
        assert consumer._parse_fast(RECORDS[name]) is None, name


async def test_a_subscription_with_its_own_parse_gets_a_decoded_envelope() -> None:
    seen: list[Envelope] = []

    def parse(envelope: Envelope) -> Any:
        seen.append(envelope)
        return envelope.data

    consumer, _ = _consumer(parse)
    item = await consumer._prepare(RECORDS["valid"])
    assert item is not None and item.payload == GOOD.data and "data" in vars(seen[0])


def test_an_undecoded_envelope_equals_the_decoded_one_and_decodes_once() -> None:
    lazy = Envelope.from_kafka_undecoded(GOOD.key_bytes(), GOOD.value(), GOOD.headers())
    eager = Envelope.from_kafka(GOOD.key_bytes(), GOOD.value(), GOOD.headers())
    assert {f.name for f in fields(Envelope)} - set(vars(lazy)) == {"data"}  # every other field is set
    assert lazy.data is lazy.data  # decoded on first read, then kept
    assert "_undecoded" not in vars(lazy)
    assert lazy == eager == GOOD and repr(lazy) == repr(eager)


def test_an_undecoded_envelope_behaves_as_any_other() -> None:
    def lazy() -> Envelope:
        return Envelope.from_kafka_undecoded(GOOD.key_bytes(), GOOD.value(), GOOD.headers())

    assert replace(lazy(), key="other").data == GOOD.data
    assert lazy().with_data({"x": 1}).data == {"x": 1}
    assert copy.copy(lazy()) == GOOD and pickle.loads(pickle.dumps(lazy())) == GOOD
    with pytest.raises(AttributeError):
        _ = lazy().nothing  # type: ignore[attr-defined]  # only data is decoded on demand
    assert not hasattr(lazy(), "nothing")
    with pytest.raises(EnvelopeError, match="missing CloudEvents headers: ce_type"):
        Envelope.from_kafka_undecoded(b"k", GOOD.value(), _with_header(GOOD, "ce_type", None))


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.type)
def test_every_event_type_reads_its_examples_from_bytes_as_from_a_dict(spec: Any) -> None:
    for example in spec.examples():
        value = json.dumps(example).encode()
        fast = REGISTRY.parse_json(spec.type, value)
        if _reads_json_alike(spec.model):
            assert fast is not None
            assert repr(fast) == repr(REGISTRY.parse(spec.type, json.loads(value)))
        else:
            assert fast is None


class WithDecimal(BaseModel):
    amount: Decimal


class WithValidator(BaseModel):
    name: str

    @field_validator("name", mode="before")
    @classmethod
    def strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class Plain(DomainEvent):
    when: list[uuid.UUID] | None = None
    count: int = 0


def test_only_models_that_read_json_as_python_take_the_fast_path() -> None:
    # why Decimal is left out: the same JSON gives another Decimal from bytes than via a float
    assert repr(WithDecimal.model_validate_json(b'{"amount": 2.0}')) != repr(
        WithDecimal.model_validate(json.loads(b'{"amount": 2.0}')))
    assert not _reads_json_alike(WithDecimal)
    assert not _reads_json_alike(WithValidator)  # a validator function: not known to be alike
    assert _reads_json_alike(Plain) and _reads_json_alike(ThingHappened)


def test_parse_json_leaves_unknown_types_and_refused_bytes_to_parse() -> None:
    assert REGISTRY.parse_json("dk.aarhus.oto.nobody.unknown.v1", GOOD.value()) is None
    assert REGISTRY.parse_json(ThingHappened.event_type, b"[]") is None
    assert REGISTRY.parse_json(ThingHappened.event_type, b"{") is None
    parsed = REGISTRY.parse_json(ThingHappened.event_type, GOOD.value())
    assert parsed == ThingHappened.model_validate(GOOD.data)
