"""Snapshots of what a flow wrote, to prove a fast path leaves exactly what the ORM path left.

A snapshot is recorded once from the ORM path, before the change (``<record_variable>=1``), and
compared afterwards: every answer, every row of the listed tables. Ids are labelled in order of
first sight, recent times become "now", values that differ by nature are only checked present.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Values that differ on every run by nature: they are checked to be present, not equal.
VOLATILE = {"cpr_ciphertext", "fingerprint"}


class Labels:
    """Stable labels for ids (in order of first sight) and times (recent ones are 'now')."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def text(self, value: str) -> str:
        return UUID.sub(lambda m: self.ids.setdefault(m.group(0), f"<id {len(self.ids) + 1}>"), value)

    def value(self, value: Any, column: str = "") -> Any:
        if column in VOLATILE:
            return "<volatile>" if value else value
        if isinstance(value, uuid.UUID):
            return self.text(str(value))
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            return "<now>" if abs(datetime.now(UTC) - aware) < timedelta(hours=1) else aware.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            parsed = _json_text(value)
            return self.text(value) if parsed is None else {"json": self.value(now_time(parsed))}
        if isinstance(value, dict):
            return {self.text(k): self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


def _json_text(value: str) -> Any:
    """A stored answer is JSON text in a JSON column: compared as what it holds."""
    if not value.startswith(("{", "[")):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def now_time(value: Any) -> Any:
    """Times in event payloads and answers are text: recent ones are 'now' as in rows."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?", value):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return "<now>" if abs(datetime.now(UTC) - moment) < timedelta(hours=1) else value
    if isinstance(value, dict):
        return {k: now_time(v) for k, v in value.items()}
    if isinstance(value, list):
        return [now_time(v) for v in value]
    return value


async def labelled_rows(sessionmaker: Callable[[], AsyncSession], tables: Mapping[str, Table],
                        order: Mapping[str, tuple[str, ...]], numbered: Mapping[str, str],
                        labels: Labels) -> dict[str, Any]:
    """Every row of each table in ``order`` (sorted by its columns), labelled; ``numbered``: a
    table's auto-numbered column, left out (it counts rows, not what they hold)."""
    found: dict[str, Any] = {}
    async with sessionmaker() as session:
        for name, columns in order.items():
            table = tables[name]
            rows = (await session.execute(select(table).order_by(*(table.c[c] for c in columns)))).all()
            found[name] = [{column: labels.value(now_time(value), column)
                            for column, value in row._mapping.items() if column != numbered.get(name)}
                           for row in rows]
    return found


def assert_matches_snapshot(snapshot: dict[str, Any], golden: Path, record_variable: str) -> None:
    """Compare a fast path's answers and rows with the snapshot the ORM path left (recorded once,
    before the change, with ``<record_variable>=1``), table by table so a failure names the table."""
    if os.environ.get(record_variable) == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    expected = json.loads(golden.read_text())
    actual = json.loads(json.dumps(snapshot, sort_keys=True))
    assert actual["answers"] == expected["answers"]
    for name, rows in expected["tables"].items():
        assert actual["tables"][name] == rows, name
