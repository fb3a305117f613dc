"""The REST-read baseline: a bare FastAPI app over asyncpg, one query per request, nothing else.

It reads the same household row by id from the same database the service uses, and is served the
way ``shared.serve`` serves a service (uvicorn, one worker, the same ``uvicorn.run`` arguments),
so the ratio isolates what the system adds: authentication, authorisation, the ORM, the extra
queries, the audit write, logging and metrics.

``/audited`` is the same read plus the one thing the system must do on every read of personal
data, the audit-log insert and its commit: the physical limit of an audited read, and the
yardstick the REST-read goals are set against.

``/bench/list-audited`` is the same limit for a page of the household list: the page's rows, the
persons of its families, and the audit entry naming every family and person on it (as the rule
asks, and as the service's entry does), in one transaction. A list page's entry names about 150
subjects where a single read's names a few, so the single-read limit is no limit for a page.

``/bench/households…`` (``bench.baseline_writes``) is the write benchmark's baseline: registering
and enrolling a household as bare inserts, each request its rows and its outbox row in one
transaction.

Run: ``BENCH_BASELINE_DSN=postgresql://… OTO_PORT=… python -m bench.baseline_app``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import uvicorn
from fastapi import FastAPI, HTTPException, Request

from bench.baseline_writes import write_router

HOUSEHOLD = "SELECT * FROM households WHERE id = $1"
AUDIT = ("INSERT INTO audit_log (at, actor, role, site_id, subjects, endpoint, purpose, outcome)"
         " VALUES ($1, 'baseline', 'team_staff', $2, jsonb_build_array(jsonb_build_object('kind', 'family',"
         " 'id', $3::text)), $4, 'casework', 'allowed')")


PAGE = "SELECT id, site_id, status, eligible FROM households WHERE site_id = $1 ORDER BY id LIMIT $2"
PAGE_PERSONS = ("SELECT household_id, id FROM persons WHERE household_id = ANY($1::uuid[]) "
                "ORDER BY household_id, id")
PAGE_AUDIT = ("INSERT INTO audit_log (at, actor, role, site_id, subjects, endpoint, purpose, outcome)"
              " VALUES ($1, 'baseline', 'team_staff', $2, $3::jsonb, $4, 'casework', 'allowed')")


async def _json_codec(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def create_app(dsn: str, pool_size: int) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Idle connections close after 2 s: the benchmark runs the service beside this app, and
        # connections parked here while the service is loaded would only crowd the server.
        app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size, init=_json_codec,
                                                   max_inactive_connection_lifetime=2)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/v1/households/{household_id}")
    async def read(household_id: UUID, request: Request) -> dict[str, Any]:
        row = await request.app.state.pool.fetchrow(HOUSEHOLD, household_id)
        if row is None:
            raise HTTPException(404)
        return dict(row)

    @app.get("/v1/households/{household_id}/audited")
    async def read_audited(household_id: UUID, request: Request) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(HOUSEHOLD, household_id)
            if row is None:
                raise HTTPException(404)
            await conn.execute(AUDIT, datetime.now(UTC), row["site_id"], str(household_id),
                               f"GET {request.url.path}")
        return dict(row)

    @app.get("/bench/list-audited")
    async def list_audited(site_id: str, limit: int, request: Request) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(PAGE, site_id, limit + 1)
            shown = [row["id"] for row in rows[:limit]]
            persons = await conn.fetch(PAGE_PERSONS, shown)
            subjects = [*({"kind": "family", "id": str(i)} for i in shown),
                        *({"kind": "person", "id": str(p["id"])} for p in persons)]
            await conn.execute(PAGE_AUDIT, datetime.now(UTC), site_id, json.dumps(subjects),
                               f"GET {request.url.path}")
        return {"items": [dict(row) for row in rows[:limit]],
                "next_cursor": str(shown[-1]) if len(rows) > limit else None}

    app.include_router(write_router())
    return app


def main() -> None:
    """Same server and flags as ``shared.serve.main``."""
    #: The service's SQLAlchemy pool allows 20 + 20 overflow connections; the same here.
    app = create_app(os.environ["BENCH_BASELINE_DSN"], int(os.environ.get("BENCH_POOL_SIZE", "40")))
    uvicorn.run(app, host=os.environ.get("OTO_HOST", "127.0.0.1"), port=int(os.environ["OTO_PORT"]),
                log_config=None, access_log=False, timeout_graceful_shutdown=20)


if __name__ == "__main__":
    main()
