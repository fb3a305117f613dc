"""PostgreSQL stopped (immediate shutdown, as in a crash) and started again under a steady load.

The intake service runs (ASGI, with its relay on the session broker) on a database of a PostgreSQL
instance of this test alone (``dedicated_postgres``), so the shared server is never disturbed.
Concurrent writers register households (each with its own ``Idempotency-Key``) and readers read
them back while the server is stopped and started again. What must hold:

- while the server is down every answer is 503 ``application/problem+json`` — never a 500, never a
  hang, never another status;
- once it is back the same app (not rebuilt, not restarted) answers 2xx again, and its relay
  publishes again;
- nothing is half-written: every household in the database has its members, its screening event
  in the outbox and its idempotency record, and belongs to a request answered 201 — or to one
  answered 503 whose commit did reach the server before it died (its answer was lost). Retrying
  every 503 with its key then gives exactly one household per request: the lost ones replayed,
  the others created now.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from services.intake.app import create_app
from services.intake.models import Household, Person
from shared.errors import PROBLEM_JSON
from shared.tables import idempotency_keys, outbox
from tests.faults.postgres_instance import PostgresInstance
from tests.support import Broker, eventually, service_api

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]

#: A request that takes longer than this is a hang.
HANG = 30.0
#: Each outage catches requests at other stages (connecting, mid-statement, committing).
OUTAGES = 2
_serial = itertools.count(1)


def unique_cpr(born_yy: int, century_digit: int) -> str:
    """A valid CPR number no other request of this test uses (a clash would be a 409)."""
    serial = next(_serial)
    return f"{serial % 28 + 1:02d}{serial // 28 % 12 + 1:02d}{born_yy:02d}-{century_digit}{serial % 1000:03d}"


@dataclass
class Write:
    key: str
    body: dict[str, Any]
    status: int = 0
    household_id: str | None = None


@dataclass
class Load:
    """Writers and readers in a loop; every answer classified as it comes."""

    api: httpx.AsyncClient
    writes: list[Write] = field(default_factory=list)
    ok: int = 0
    unavailable: int = 0
    wrong: list[tuple[str, int, str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    stopping: bool = False

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """One request; a 503 is followed by a short pause, as a client backs off (pacing only)."""
        try:
            response = await asyncio.wait_for(self.api.request(method, url, headers={
                **self.api.team, **kwargs.pop("headers", {})}, **kwargs), HANG)  # type: ignore[attr-defined]
        except TimeoutError:
            self.wrong.append((method, 0, "hang", url))
            return None
        except Exception as exc:  # the app raised: through a server, a 500
            self.wrong.append((method, 500, type(exc).__name__, str(exc)[:300]))
            return None
        if 200 <= response.status_code < 300:
            self.ok += 1
        elif response.status_code == 503 and response.headers.get("content-type") == PROBLEM_JSON \
                and response.json().get("status") == 503:
            self.unavailable += 1
            await asyncio.sleep(0.1)
        else:
            self.wrong.append((method, response.status_code, response.headers.get("content-type", ""),
                               response.text[:300]))
        return response

    async def writer(self) -> None:
        while not self.stopping:
            write = Write(key=str(uuid.uuid4()), body={
                "site_id": "gellerup", "address": f"Testvej {uuid.uuid4().hex}",
                "members": [{"cpr": unique_cpr(85, 1), "role": "mother", "unemployed_since": "2016-03-01"},
                            {"cpr": unique_cpr(15, 4), "role": "child"}]})
            self.writes.append(write)
            response = await self.call("POST", "/v1/households", json=write.body,
                                       headers={"Idempotency-Key": write.key})
            if response is not None:
                write.status = response.status_code
                if response.status_code == 201:
                    write.household_id = response.json()["id"]
                    self.created.append(write.household_id)
            await asyncio.sleep(0.01)

    async def reader(self) -> None:
        for n in itertools.count():
            if self.stopping:
                return
            if self.created and n % 4:
                await self.call("GET", f"/v1/households/{self.created[n % len(self.created)]}")
            else:
                await self.call("GET", "/v1/households", params={"limit": 5})
            await asyncio.sleep(0.01)


async def test_requests_get_503_while_postgres_is_down_and_succeed_after_without_a_restart(
        broker: Broker, dedicated_postgres: PostgresInstance) -> None:
    server = await asyncpg.connect(dedicated_postgres.server_url)
    try:
        await server.execute('CREATE DATABASE "intake"')
    finally:
        await server.close()
    async with service_api(create_app, service="intake", broker=broker,
                           database_url=dedicated_postgres.url("intake")) as api:
        load = Load(api)
        tasks = [asyncio.create_task(load.writer()) for _ in range(4)]
        tasks += [asyncio.create_task(load.reader()) for _ in range(6)]
        try:
            assert await eventually(lambda: _true(load.ok >= 40), timeout=60)
            for _ in range(OUTAGES):
                unavailable_before = load.unavailable
                await asyncio.to_thread(dedicated_postgres.stop)
                assert await eventually(lambda n=unavailable_before: _true(load.unavailable >= n + 20),
                                        timeout=60), load.wrong
                await asyncio.to_thread(dedicated_postgres.start)
                ok_at_restart = load.ok
                assert await eventually(lambda n=ok_at_restart: _true(load.ok >= n + 40), timeout=60), \
                    "the service did not recover without a restart"
        finally:
            load.stopping = True
            await asyncio.gather(*tasks)
        assert not load.wrong, load.wrong

        engine = api.app.state.engine  # type: ignore[attr-defined]
        by_address = await households_by_address(engine)
        answered = {w.body["address"]: w for w in load.writes}
        lost_answers = []
        for address, household in by_address.items():
            write = answered[address]  # no household from nowhere
            if write.status == 201:
                assert household["id"] == write.household_id
            else:  # committed, but the answer was lost in the crash: its key must replay it
                assert write.status == 503, (write.status, address)
                lost_answers.append(write)
        for write in load.writes:
            if write.status == 201:
                assert write.body["address"] in by_address

        failed = [w for w in load.writes if w.status == 503]
        assert failed, "no write failed: the outage was not under load"
        retries = await asyncio.gather(*(api.post(
            "/v1/households", json=w.body, headers={**api.team, "Idempotency-Key": w.key})  # type: ignore[attr-defined]
            for w in failed))
        for write, retry in zip(failed, retries, strict=True):
            assert retry.status_code == 201, retry.text
            replayed = retry.headers.get("Idempotent-Replayed") == "true"
            assert replayed == (write in lost_answers), write.body["address"]
            write.status, write.household_id = 201, retry.json()["id"]

        after = await households_by_address(engine)
        assert set(after) == {w.body["address"] for w in load.writes}
        for write in load.writes:
            assert after[write.body["address"]]["id"] == write.household_id
        assert await eventually(lambda: _nothing_unpublished(engine), timeout=60), \
            "the relay did not recover"


async def households_by_address(engine: Any) -> dict[str, dict[str, Any]]:
    """Every household by address, after checking it is whole (two members, one screening event,
    one stored response) and that no event belongs to a household that is not there."""
    async with engine.connect() as conn:
        households = {row.address: {"id": str(row.id)} for row in await conn.execute(
            select(Household.__table__))}  # type: ignore[attr-defined]
        members = Counter(str(r) for r in (await conn.execute(
            select(Person.__table__.c.household_id))).scalars())  # type: ignore[attr-defined]
        events = Counter((r.partition_key, r.event_type) for r in await conn.execute(select(outbox)))
        bodies = "\n".join(str(r.response_body) for r in await conn.execute(select(idempotency_keys)))
    for address, household in households.items():
        hid = household["id"]
        assert members[hid] == 2, (address, members[hid])
        assert events[(hid, "dk.aarhus.oto.intake.household-screened.v1")] == 1, address
        assert bodies.count(hid) == 1, address
    assert {key for key, _ in events} <= {h["id"] for h in households.values()}  # no orphan events
    return households


async def _nothing_unpublished(engine: Any) -> bool:
    async with engine.connect() as conn:
        pending = await conn.scalar(select(func.count()).select_from(outbox).where(
            outbox.c.published_at.is_(None)))
    return pending == 0


async def _true(value: bool) -> bool:
    return value
