"""The audit log and the finance ledger are append-only in the database itself.

Each service runs on PostgreSQL and on SQLite (the embedded default), writes its rows through the
HTTP stack (the authorisation matrix's fixtures: reads and writes that leave audit entries, and
finance's settlement, which writes ledger entries), and then the test, holding the database's
own connection, tries to UPDATE and DELETE those rows (and on PostgreSQL to TRUNCATE them): the
triggers the migrations add refuse every attempt, and the rows are unchanged afterwards.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.settings import SERVICES
from tests.authz_support import SERVICES as UNDER_TEST
from tests.support import service_api

APPEND_ONLY = {service: ["audit_log"] for service in SERVICES} | {"finance": ["audit_log", "ledger"]}


@pytest.mark.parametrize("service", SERVICES)
async def test_update_and_delete_of_the_audit_log_and_the_ledger_are_refused(
        service: str, database_url: str) -> None:
    under_test = UNDER_TEST[service]
    refused: list[str] = []
    async with service_api(under_test.create_app, service=service, broker=None,
                           database_url=database_url) as http:
        await under_test.fixture(http, http.app)  # type: ignore[attr-defined]
        engine = http.app.state.engine  # type: ignore[attr-defined]
        attempts = ["UPDATE {table} SET id = id", "DELETE FROM {table}"]
        if engine.dialect.name == "postgresql":
            attempts.append("TRUNCATE {table}")
        for table in APPEND_ONLY[service]:
            async with engine.connect() as connection:
                before = (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert before > 0, f"the fixture left no rows in {table}"
            for attempt in attempts:
                statement = attempt.format(table=table)
                try:
                    async with engine.begin() as connection:
                        await connection.execute(text(statement))
                except DBAPIError as exc:
                    assert "append-only" in str(exc), str(exc)
                    refused.append(statement)
            async with engine.connect() as connection:
                after = (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert after == before, f"{table}: {before} rows before, {after} after"
    expected = [a.format(table=t) for t in APPEND_ONLY[service] for a in attempts]
    assert refused == expected
