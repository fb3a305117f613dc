"""What fast start-up relies on: a service migrates its own database before it serves (the
embedded runner starts the four at once, each migrating itself) and is not ready while its schema
is behind; children forked from the preloaded fork server run like spawned ones."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from services.casework.app import create_app as create_casework
from shared import migrations
from shared.supervisor import fork, start_fork_server
from tests.support import Broker, make_settings, running


async def test_a_service_behind_its_head_is_not_ready_and_one_that_migrates_itself_is(
        tmp_path: Path, broker: Broker) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'casework.db'}"
    head = migrations.head_revision("casework")
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrations.alembic_config("casework", url))
    behind = script.get_revision(head).down_revision
    assert isinstance(behind, str)
    await migrations.upgrade("casework", url, behind)
    stale = create_casework(make_settings(broker=broker, database_url=url, service="casework",
                                          migrate_on_start=False))
    async with running(stale) as http:
        refused = await http.get("/readyz")
        assert refused.status_code == 503 and refused.json()["checks"]["database"] is False
    fresh = create_casework(make_settings(broker=broker, database_url=url, service="casework",
                                          migrate_on_start=True))
    async with running(fresh) as http:  # serving starts after the lifespan: at head by then
        assert await migrations.current_revision(fresh.state.engine) == head
        assert (await http.get("/readyz")).json()["checks"]["database"] is True


def test_a_forked_child_runs_its_target_with_its_own_environment_and_log(tmp_path: Path) -> None:
    start_fork_server(["json"])
    log = tmp_path / "child.log"
    child = fork("tests.shared.test_startup:_say", "from the child", env={"OTO_PROBE": "set"}, log_path=log,
                 end="!")
    assert child.wait(timeout=60) == 0 and child.returncode == 0
    assert log.read_text() == "from the child set!\n"
    assert child.pid != os.getpid()
    sleeper = fork("time:sleep", 60, env={}, log_path=tmp_path / "sleeper.log")
    assert sleeper.poll() is None
    sleeper.terminate()
    assert sleeper.wait(timeout=60) == -signal.SIGTERM


def _say(text: str, end: str) -> None:
    print(text, os.environ["OTO_PROBE"] + end, flush=True)
