"""Every topic a service consumes: poison and schema-invalid messages go to ``<topic>.dlq`` and the
consumer carries on with the next message.

``tests/shared/test_inbox.py`` covers the mechanism (each kind of dead letter, on a test topic,
with a test subscription). This module covers the wiring, for each real service: the cases are
derived from the services' own definitions (``services/<name>/app.py`` → ``subscriptions`` →
the producing services' domain topics), so a new subscription or a new consumed topic is covered
without touching this file. Each case runs the real app (its consumer started by its lifespan) and
publishes on one key, so in order on one partition:

1. a body that is not JSON (with a CPR-shaped number in it);
2. a valid body whose ``ce_type`` and ``ce_id`` headers are missing;
3. an event type the subscription handles, with a payload that fails its schema (a CPR-shaped
   number where the family id belongs);
4. a body nested deeper than a JSON parser goes (json.loads raises RecursionError);
5. a valid body whose ``ce_id`` header has no value (Kafka allows a null header value);
6. a valid event of that type.

Before these two were caught, each stopped the consumer for good: it met the message again
after every restart. The five bad ones must land on ``<topic>.dlq`` in that order with their
origin and the error in headers and no personal data in those headers; the valid one must be
handled (its inbox row committed); and ``oto_dlq_messages_total`` on the service's ``/metrics``
must count five for that consumer and topic.
"""

from __future__ import annotations

import importlib
import uuid
from typing import Any
from uuid import UUID

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from shared.app import ServiceDefinition
from shared.events.envelope import Envelope
from shared.events.registry import REGISTRY, EventSpec
from shared.inbox import Subscription
from shared.kafka import ensure_topics
from shared.outbox import source_for
from shared.settings import SERVICES
from shared.tables import inbox
from tests.faults.kafka_tools import read_until_seen
from tests.support import Broker, eventually, service_api

pytestmark = [pytest.mark.broker, pytest.mark.postgres]

CPR = "010190-1234"


def definition(service: str) -> ServiceDefinition:
    return importlib.import_module(f"services.{service}.app").DEFINITION  # type: ignore[no-any-return]


def consumed_topics() -> list[tuple[str, Subscription, str]]:
    """(consuming service, its subscription, producing service) for every consumed domain topic."""
    return [(service, subscription, producer)
            for service in SERVICES
            for subscription in definition(service).subscriptions
            for producer in subscription.services]


def handled_spec(subscription: Subscription, producer: str) -> EventSpec:
    """The first event type (by name) of ``producer`` that the subscription handles."""
    specs = sorted((REGISTRY.spec(model.event_type) for model in subscription.handled()),
                   key=lambda spec: spec.type)
    found = [spec for spec in specs if spec.service == producer]
    assert found, f"{subscription.name} consumes {producer}'s topic but handles none of its events"
    return found[0]


def valid_event(spec: EventSpec) -> Envelope:
    """The type's catalogue example in its smallest valid form (optional fields left out), for a
    family no test has used, as the producer sends it. Smallest, because a lone event must not
    depend on state that other events would have built (an example naming a person the consumer
    never heard of may rightly fail its handler)."""
    required = {name for name, info in spec.model.model_fields.items() if info.is_required()}
    data: dict[str, Any] = {k: v for k, v in spec.examples()[0].items() if k in required}
    data[id_field(spec)] = str(uuid.uuid4())
    event = REGISTRY.parse(spec.type, data)  # the example must be valid, or the case proves nothing
    return Envelope(type=spec.type, source=source_for(spec.service), key=event.partition_key(), data=data)


def id_field(spec: EventSpec) -> str:
    """The id a case varies and the invalid copy breaks: the family's, or for an event about
    something else (a stationing) its first required id."""
    fields = spec.model.model_fields
    if "family_id" in fields:
        return "family_id"
    return next(name for name, info in fields.items()
                if info.is_required() and info.annotation in (UUID, "UUID"))


def metric(text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


CASES = consumed_topics()


def test_the_consumed_topics_are_found_in_the_service_definitions() -> None:
    """Guards the derivation: an empty list would silently parametrise nothing."""
    assert CASES
    assert all(subscription.services for _, subscription, _ in CASES)


@pytest.mark.parametrize(("service", "subscription", "producer"), CASES,
                         ids=[f"{s}<-{p}" for s, _, p in CASES])
async def test_bad_messages_on_a_consumed_topic_are_dead_lettered_and_the_next_one_is_handled(
        broker: Broker, new_database, service: str, subscription: Subscription, producer: str) -> None:
    create_app = importlib.import_module(f"services.{service}.app").create_app
    async with service_api(create_app, service=service, broker=broker,
                           database_url=new_database()) as api:
        settings = api.settings  # type: ignore[attr-defined]
        topic, consumer = settings.domain_topic(producer), f"{settings.topic_namespace}.{subscription.name}"
        good = valid_event(handled_spec(subscription, producer))
        broken = id_field(handled_spec(subscription, producer))
        invalid = Envelope(type=good.type, source=good.source, key=good.key,
                           data={**good.data, broken: CPR})
        headers = good.headers()
        bad = [
            (f'{{"family_id": "{CPR}", '.encode(), headers),
            (good.value(), [(k, v) for k, v in headers if k not in ("ce_type", "ce_id")]),
            (invalid.value(), invalid.headers()),
            (b"[" * 100_000 + b"]" * 100_000, headers),
            (good.value(), [(k, None if k == "ce_id" else v) for k, v in headers]),
        ]
        await ensure_topics(settings, [topic, f"{topic}.dlq"])
        producer_client = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer_client.start()
        try:
            origins = [await producer_client.send_and_wait(topic, value=value, key=good.key_bytes(),
                                                           headers=message_headers)
                       for value, message_headers in bad]
            await producer_client.send_and_wait(topic, value=good.value(), key=good.key_bytes(),
                                                headers=good.headers())
        finally:
            await producer_client.stop()

        async def handled() -> bool:
            async with api.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
                return bool((await conn.execute(select(inbox).where(
                    inbox.c.event_id == good.id, inbox.c.consumer == consumer))).first())

        assert await eventually(handled, timeout=60), "the valid event after the bad ones was not handled"
        dead = await read_until_seen(broker.bootstrap, f"{topic}.dlq", set(), at_least=5)
        metrics = (await api.get("/metrics")).text

    assert len(dead) == 5, [dict(r.headers).get("dlq_error") for r in dead]
    errors = []
    for record, origin in zip(dead, origins, strict=True):
        found = {name: (value or b"").decode() for name, value in record.headers}
        assert found["dlq_origin_topic"] == topic
        assert (int(found["dlq_origin_partition"]), int(found["dlq_origin_offset"])) == \
            (origin.partition, origin.offset)
        assert found["dlq_consumer"] == consumer
        assert CPR not in repr(found) and CPR.replace("-", "") not in repr(found)
        errors.append(found["dlq_error"])
    assert errors[0].startswith("EnvelopeError")
    assert errors[1].startswith("EnvelopeError") and "ce_type" in errors[1] and "ce_id" in errors[1]
    assert errors[2].startswith("InvalidPayload") and broken in errors[2]
    assert errors[3].startswith("EnvelopeError") and "nested too deep" in errors[3]
    assert errors[4].startswith("EnvelopeError") and "ce_id" in errors[4]
    assert metric(metrics, "oto_dlq_messages_total", {"consumer": consumer, "topic": topic}) == 5
