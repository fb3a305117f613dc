"""The subscriber kit: follow one department topic and print its events as they arrive."""

from __future__ import annotations

import json
import time
import uuid

from rich.console import Console

from shared.departments import Department
from shared.events.envelope import Envelope, EnvelopeError
from shared.kafka import make_consumer
from shared.settings import Settings

console = Console()


async def watch(settings: Settings, department: str, *, from_beginning: bool, group: str | None,
                limit: int | None = None, idle_timeout: float | None = None) -> int:
    """Print each event; return how many were shown. From the beginning runs in a fresh group
    named after ``group`` (so offset 0, always); from now starts at the end for a new group."""
    topic = settings.department_topic(Department(department).value)
    group_id = group or f"{settings.topic_namespace}.dashboard.{department}"
    if from_beginning:  # a fresh group: a known one would resume where it stopped
        group_id += f".replay-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(settings, group_id=group_id,
                             auto_offset_reset="earliest" if from_beginning else "latest")
    consumer.subscribe([topic])
    await consumer.start()
    shown, last_seen = 0, time.monotonic()
    try:
        while limit is None or shown < limit:
            remaining = None if limit is None else limit - shown
            batch = await consumer.getmany(timeout_ms=500, max_records=remaining)
            for records in batch.values():
                for record in records:
                    shown += _show(record)
                    last_seen = time.monotonic()
            if batch:
                await consumer.commit()
            if idle_timeout is not None and time.monotonic() - last_seen > idle_timeout:
                break
    finally:
        await consumer.stop()
    return shown


def _show(record: object) -> int:
    try:
        env = Envelope.from_kafka(record.key, record.value, record.headers)  # type: ignore[attr-defined]
    except EnvelopeError as exc:
        console.print(f"[red]unreadable message: {exc}[/red]")
        return 0
    console.print(f"[bold]{env.time:%Y-%m-%d %H:%M:%S}[/bold] [cyan]{env.type}[/cyan] key={env.key}")
    console.print(json.dumps(env.data, ensure_ascii=False, indent=2))
    return 1
