"""Runs casework's real subscription (its handlers for intake's events) as an OS process of its own.

``python -m tests.faults.consumer_runner --bootstrap … --namespace … --database-url …`` consumes
until SIGTERM (then it finishes the batch in hand and commits, as a service does) or until it is
SIGKILLed, which is the point: a test can kill it in the middle of a batch, with no chance to
clean up, and start it again. The database must already be migrated for casework.

``--group-suffix`` puts it in another consumer group, which starts again at offset 0: a clean
rebuild of the projection when given a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal

import shared.inbox
from services.casework.handlers import SUBSCRIPTION
from shared.db import make_engine, make_sessionmaker
from shared.inbox import EventConsumer
from shared.kafka import make_consumer
from shared.observability import configure_logging
from shared.settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--idempotence", choices=("true", "false"), default="false")
    parser.add_argument("--namespace", required=True, help="the topic namespace of the test")
    parser.add_argument("--database-url", required=True, help="a casework database, migrated")
    parser.add_argument("--group-suffix", default="", help="appended to the consumer group id")
    return parser.parse_args(argv)


async def consume(args: argparse.Namespace) -> None:
    settings = Settings(service="casework", kafka_bootstrap=args.bootstrap,
                        kafka_idempotence=args.idempotence == "true", topic_namespace=args.namespace,
                        database_url=args.database_url, log_json=False, log_level="WARNING")
    configure_logging(settings.log_level, settings.log_json)
    # A SIGKILLed member stays in the group until its session times out, and the restarted process
    # cannot get partitions before that: a short session (as short as Kafka allows) keeps the test
    # quick. The consumer itself is unchanged; only its client is configured.
    shared.inbox.make_consumer = functools.partial(  # type: ignore[assignment]
        make_consumer, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    engine = make_engine(settings.resolved_database_url())
    consumer = EventConsumer(settings=settings, subscription=SUBSCRIPTION,
                             sessionmaker=make_sessionmaker(engine))
    consumer.group_id += args.group_suffix
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(consumer.stop()))
    try:
        await consumer.run()
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(consume(parse_args(argv)))


if __name__ == "__main__":
    main()
