"""What an audit entry costs PostgreSQL by how many subjects it names.

Every read of personal data writes one entry naming every person it returned. The team view's
entry names a family and its few persons; the households list page's names 50 families and all
their persons, about 150 subjects; the audited baseline's (bench/rest_read.py) names one. The
list page reached only 0.41 of the audited baseline's throughput while its PostgreSQL CPU per
request was four times the baseline's; this benchmark isolates the entry to show where that goes.

The entry is inserted into the real ``audit_log`` of a service database migrated to head (its
GIN index on the subjects, its append-only trigger), and into a copy of the table without the
GIN index, one autocommit INSERT at a time on one connection, each with fresh ids. The figure is
the CPU of the PostgreSQL backend that ran them (``/proc/<pid>/stat``), per entry: the server's
own work, whatever else the machine does. The baseline is the one-subject entry on the same
table in the same run.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg

from bench.kafka_support import asyncpg_dsn, postgres_database, process_cpu_seconds
from bench.report import Figure, Section
from shared.migrations import upgrade_sync

#: Subjects per entry: the audited baseline's, the team view's (a family of four), the list page's.
SIZES = {"one subject (the audited baseline's entry)": 1,
         "five subjects (the team view of a family of four)": 5,
         "150 subjects (a list page of 50 families and their persons)": 150}
ENTRIES, QUICK_ENTRIES = 3_000, 300

_INSERT = ("INSERT INTO {table} (at, actor, client, role, endpoint, purpose, subjects, outcome) "
           "VALUES ($1, 'bench', 'bench', 'team_staff', '/v1/households', 'list', $2::jsonb, 'allowed')")


def _subjects(count: int) -> str:
    """A family first, then persons, each ``{"kind", "id"}`` as the services write them."""
    kinds = ["family", *["person"] * (count - 1)]
    return json.dumps([{"kind": kind, "id": str(uuid.uuid4())} for kind in kinds])


async def _cpu_per_entry(connection: asyncpg.Connection, table: str, size: int, entries: int) -> float:
    """Milliseconds of the backend's CPU per entry (the payloads are made before counting)."""
    payloads = [_subjects(size) for _ in range(entries)]
    statement = await connection.prepare(_INSERT.format(table=table))
    backend = await connection.fetchval("SELECT pg_backend_pid()")
    before = process_cpu_seconds(backend)
    for payload in payloads:
        await statement.fetch(datetime.now(UTC), payload)
    return (process_cpu_seconds(backend) - before) * 1000 / entries


async def _measure(url: str, entries: int) -> dict[tuple[str, int], float]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("CREATE TABLE audit_unindexed (LIKE audit_log INCLUDING DEFAULTS "
                                 "INCLUDING IDENTITY)")
        results: dict[tuple[str, int], float] = {}
        for _round in range(2):  # alternated, and the second round counted: warm caches, both tables grown
            for size in SIZES.values():
                for table in ("audit_log", "audit_unindexed"):
                    results[table, size] = await _cpu_per_entry(connection, table, size, entries)
        return results
    finally:
        await connection.close()


def run(*, quick: bool) -> list[Section]:
    entries = QUICK_ENTRIES if quick else ENTRIES
    with postgres_database("oto_bench_audit_") as url:
        upgrade_sync("intake", url)
        results = asyncio.run(_measure(url, entries))
    return [_section(results, entries)]


def _section(results: dict[tuple[str, int], float], entries: int) -> Section:
    baseline = results["audit_log", 1]
    figures = [Figure(f"PostgreSQL CPU per entry, {name}", "ms", results["audit_log", size], baseline)
               for name, size in SIZES.items()]
    figures += [Figure(f"the same without the GIN index on subjects, {name}", "ms",
                       results["audit_unindexed", size], baseline) for name, size in SIZES.items()]
    big = max(SIZES.values())
    index_share = results["audit_log", big] - results["audit_unindexed", big]
    notes = [
        f"{entries:,} autocommit INSERTs per size and table on one connection, second of two "
        f"alternating rounds; CPU of the PostgreSQL backend only (the client's work is not counted).",
        f"Of the list page entry's {results['audit_log', big]:.3f} ms, the GIN index on the "
        f"subjects takes {index_share:.3f} ms ({index_share / results['audit_log', big]:.0%}): each "
        f"subject adds its hashed paths to the index (`jsonb_path_ops`), and once the index's "
        f"pending list reaches `gin_pending_list_limit` the inserting backend merges it into the "
        f"index itself. Without the index, 150 subjects cost "
        f"{results['audit_unindexed', big] / results['audit_unindexed', 1]:.1f}x one subject.",
        "The index answers the subject-access report (\"who saw this person's data\") from the "
        "entries themselves. Next step for the list page: name the page's families only (its "
        "answer holds no person's data) and let the subject-access report look a person up by "
        "their family ids as well, which intake knows; that keeps the rule and takes the index "
        "work of a list page from ~150 subjects to 50.",
    ]
    setup = ("One audit entry (`audit_log` of an intake database at head) by the number of subjects "
             "it names, and the same INSERT on a copy of the table without the GIN index; the "
             "baseline is the one-subject entry on the real table, same run.")
    return Section("Audit entry cost by subjects named (PostgreSQL)", setup, figures, notes)
