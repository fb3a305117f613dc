"""The envelope speaks CloudEvents (checked with the official SDK) and every schema fits its examples."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import jsonschema
import pytest
from cloudevents.core.bindings import kafka as ce_kafka

from shared.events import REGISTRY
from shared.events.envelope import Envelope, EnvelopeError
from shared.settings import SERVICES
from tests.shared.plumbing import ThingHappened

ALL_SPECS = [spec for spec in REGISTRY if spec.service in SERVICES or spec.service == "testkit"]


def _envelope() -> Envelope:
    return Envelope(type=ThingHappened.event_type, source="/oto/testkit", key=str(uuid.uuid4()),
                    data={"family_id": str(uuid.uuid4()), "site_id": "viby", "seq": 3},
                    subject="family", time=datetime(2026, 5, 1, 12, tzinfo=UTC), correlation_id="req-1")


def test_envelope_parses_with_the_official_cloudevents_kafka_binding() -> None:
    env = _envelope()
    message = ce_kafka.KafkaMessage(headers=dict(env.headers()), key=env.key_bytes(), value=env.value())
    parsed = ce_kafka.from_binary_event(message)
    assert parsed.get_id() == env.id
    assert parsed.get_type() == env.type
    assert parsed.get_source() == env.source
    assert parsed.get_specversion() == "1.0"
    assert parsed.get_subject() == "family"
    assert parsed.get_time() == env.time
    assert parsed.get_data() == env.data


def test_envelope_round_trips_through_kafka_headers() -> None:
    env = _envelope()
    again = Envelope.from_kafka(env.key_bytes(), env.value(), env.headers())
    assert again == env


@pytest.mark.parametrize("drop", ["ce_id", "ce_type", "ce_source", "ce_specversion"])
def test_a_message_without_a_required_header_is_rejected(drop: str) -> None:
    env = _envelope()
    with pytest.raises(EnvelopeError, match=drop):
        Envelope.from_kafka(env.key_bytes(), env.value(), [h for h in env.headers() if h[0] != drop])


def test_a_message_whose_time_has_no_zone_is_rejected() -> None:
    env = _envelope()
    headers = [(k, b"2026-05-01T12:00:00" if k == "ce_time" else v) for k, v in env.headers()]
    with pytest.raises(EnvelopeError):
        Envelope.from_kafka(env.key_bytes(), env.value(), headers)


def test_the_registry_knows_every_producing_service() -> None:
    services = {spec.service for spec in REGISTRY}
    assert services >= {*SERVICES, "testkit"}
    for spec in REGISTRY:
        assert spec.type == f"dk.aarhus.oto.{spec.service}.{spec.name}.v{spec.version}"


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.type)
def test_every_event_schema_validates_its_examples(spec) -> None:
    schema = spec.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    examples = spec.examples()
    assert examples, f"{spec.type} has no example"
    for example in examples:
        jsonschema.validate(example, schema)
        spec.model.model_validate(example)
