"""``OTO_WORKERS``: several uvicorn workers per service, one leader running the relay and the
consumers (``shared.leader``); a follower takes over when the leader stops or dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.casework.app import create_app as create_casework
from shared.broker import free_port
from shared.leader import Leadership
from tests.intake.factories import define_area, household_body
from tests.support import Broker, bearer, eventually, make_settings, read_topic, running

ROOT = Path(__file__).resolve().parents[2]


def test_one_process_holds_the_leader_lock_and_its_death_frees_it(tmp_path: Path) -> None:
    first, second = Leadership(tmp_path, "intake"), Leadership(tmp_path, "intake")
    assert first.try_acquire() and first.is_leader
    assert not second.try_acquire()
    assert Leadership(tmp_path, "casework").try_acquire()  # one lock per service
    first.release()
    assert second.try_acquire()
    second.release()
    holder = subprocess.Popen(  # a leader in another process, killed the hard way
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from shared.leader import "
         "Leadership; assert Leadership(Path(sys.argv[1]), 'intake').try_acquire(); print('held', "
         "flush=True); time.sleep(60)", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        assert not first.try_acquire()
    finally:
        holder.kill()
        holder.wait()
    assert first.try_acquire()
    first.release()


async def test_a_commit_in_any_worker_wakes_the_leaders_relay(tmp_path: Path) -> None:
    leader, follower = Leadership(tmp_path, "intake"), Leadership(tmp_path, "intake")
    assert leader.try_acquire()
    woken = asyncio.Event()
    leader.listen(woken.set)
    try:
        follower.wake_leader()
        await asyncio.wait_for(woken.wait(), timeout=10)
        woken.clear()
        leader.wake_leader()  # the leader's own commits take the same way
        await asyncio.wait_for(woken.wait(), timeout=10)
    finally:
        leader.release()
        follower.release()
    follower.wake_leader()  # nobody listens: lost, never an error


async def test_only_the_leader_runs_the_relay_and_the_consumers_and_a_follower_takes_over(
        tmp_path: Path, broker: Broker) -> None:
    settings = make_settings(broker=broker, database_url=f"sqlite+aiosqlite:///{tmp_path / 'casework.db'}",
                             service="casework", workers=2, data_dir=tmp_path)
    leader_app, follower_app = create_casework(settings), create_casework(settings)
    async with contextlib.AsyncExitStack() as leader:
        await leader.enter_async_context(running(leader_app))  # started first: it leads
        async with running(follower_app):
            background = sorted(t.get_name() for t in leader_app.state.tasks)
            assert "casework-relay" in background and any(n.startswith("consumer-") for n in background)
            assert follower_app.state.tasks == [] and follower_app.state.consumers == []
            assert not follower_app.state.follower.done()
            await leader.aclose()  # the leader stops and gives up its lock: the follower takes over
            taken_over = await eventually(lambda: _names(follower_app))
            assert taken_over == background


async def _names(app: object) -> list[str]:
    return sorted(t.get_name() for t in app.state.tasks)  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_two_workers_answer_and_publish_every_event_once(tmp_path: Path, broker: Broker) -> None:
    """``python -m shared.serve`` with OTO_WORKERS=2: requests land on both workers, one of them
    holds the leader lock, and each event written (by either) reaches the topic exactly once."""
    settings = make_settings(broker=broker, service="intake")
    port = free_port()
    database = tmp_path / "intake.db"
    env = {**os.environ, "OTO_SERVICE": "intake", "OTO_ENV": "dev", "OTO_WORKERS": "2",
           "OTO_HOST": "127.0.0.1", "OTO_PORT": str(port), "OTO_DATA_DIR": str(tmp_path),
           "OTO_DATABASE_URL": f"sqlite+aiosqlite:///{database}", "OTO_KAFKA_BOOTSTRAP": broker.bootstrap,
           "OTO_KAFKA_IDEMPOTENCE": json.dumps(broker.idempotence),
           "OTO_TOPIC_NAMESPACE": settings.topic_namespace}
    server = subprocess.Popen([sys.executable, "-m", "shared.serve"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    households = 6
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert await eventually(lambda: _ready(http), timeout=90)
            await define_area(http, bearer(settings, "admin"))
            team = bearer(settings, "team_staff", site="gellerup")
            for _ in range(households):  # a new connection each: the workers share the socket
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as once:
                    response = await once.post("/v1/households", json=household_body(), headers=team)
                    assert response.status_code == 201, response.text
            workers = _worker_pids(server.pid)
            assert len(workers) == 2
            assert _lock_holders(tmp_path / "intake.leader") == 1
            # Prometheus' multiprocess mode: whichever worker answers counts every worker's requests.
            for _ in range(3):
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as once:
                    assert _registered(await once.get("/metrics")) == households
            outbox_rows = await eventually(lambda: _published(database, households), timeout=30)
            records = await read_topic(broker.bootstrap, settings.domain_topic("intake"),
                                       expected=outbox_rows, settle=2.0)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    ids = [dict(r.headers)["ce_id"] for r in records]
    assert len(ids) == outbox_rows >= households and len(set(ids)) == len(ids)


def _registered(metrics: httpx.Response) -> float:
    """Households registered (201 on POST /v1/households), as /metrics counts them."""
    return sum(sample.value for family in text_string_to_metric_families(metrics.text)
               if family.name == "oto_http_requests" for sample in family.samples
               if sample.name == "oto_http_requests_total" and sample.labels.get("method") == "POST"
               and sample.labels.get("route") == "/v1/households" and sample.labels.get("status") == "201")


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def _published(database: Path, at_least: int) -> int:
    """The number of outbox rows once they are all published (and at least ``at_least``)."""
    with sqlite3.connect(database) as conn:
        total, pending = conn.execute(
            "SELECT count(*), count(*) - count(published_at) FROM outbox").fetchone()
    return total if total >= at_least and pending == 0 else 0


def _worker_pids(supervisor: int) -> list[int]:
    """uvicorn's workers, the serving children of the supervisor (not multiprocessing's helpers)."""
    deadline = time.monotonic() + 30
    while True:
        listed = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text()
        children = [int(c) for c in listed.split()]
        workers = [c for c in children if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]
        if len(workers) >= 2 or time.monotonic() > deadline:
            return workers


def _lock_holders(path: Path) -> int:
    """Processes holding an flock on the file (/proc/locks names the file by device and inode)."""
    inode = path.stat().st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if "FLOCK" in line and line.split()[5].endswith(f":{inode}"))
