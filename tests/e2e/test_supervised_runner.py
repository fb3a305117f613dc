"""The embedded runner keeps the system up: a killed service or broker comes back (the broker on
the same port) and the system is ready again; Ctrl-C to the process group stops everything in
under 5 s, services first, with no tracebacks in the logs."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shared.broker import TansuBroker, free_port
from shared.departments import Department
from shared.embedded import System, free_base_port
from shared.settings import SERVICES
from tests.faults.kafka_tools import read_until_seen
from tests.support import ready_services

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    """Every descendant: the services and dashboards are children of the runner's fork server."""
    try:
        direct = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # gone meanwhile
        return []
    return [*direct, *(d for child in direct for d in _children(child))]


def _service_pids(runner: int) -> dict[str, int]:
    """Each service's process, found by its output: the service's own log file."""
    pids = {}
    for child in _children(runner):
        try:
            log = Path(os.readlink(f"/proc/{child}/fd/1")).name
        except OSError:  # killed and not yet reaped
            continue
        if log.removesuffix(".log") in SERVICES:
            pids[log.removesuffix(".log")] = child
    return pids


def _alive(pids: list[int]) -> list[int]:
    """The ones still running (a zombie waiting for its parent has ended)."""
    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    return [pid for pid in pids if running(pid)]


def _broker_pid(runner: int) -> int:
    def is_tansu(pid: int) -> bool:
        try:
            return b"tansu" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    return next((c for c in _children(runner) if is_tansu(c)), 0)


def _until(condition, what: str, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"not so after {timeout} s: {what}")


def _start_runner(tmp_path: Path, base: int, broker_port: int, *extra: str) -> subprocess.Popen[bytes]:
    """``oto run`` in a process group of its own, as a shell starts a command in a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "run", "--data-dir", str(tmp_path), "--base-port", str(base),
         "--broker-port", str(broker_port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "COLUMNS": "40"})


def _finish(runner: subprocess.Popen[bytes]) -> str:
    if runner.poll() is None:
        os.killpg(runner.pid, signal.SIGKILL)
    output = runner.communicate()[0].decode()
    print(output)  # shown when the test fails
    return output


def test_killed_services_and_the_broker_come_back_the_broker_on_the_same_port(tmp_path) -> None:
    base, broker_port = free_base_port(), free_port()
    runner = _start_runner(tmp_path, base, broker_port, "--no-demo")
    try:
        _until(lambda: ready_services(base) == set(SERVICES), "every service ready")
        for service, pid in _service_pids(runner.pid).items():
            os.kill(pid, signal.SIGKILL)
            _until(lambda s=service, p=pid: _service_pids(runner.pid).get(s, p) != p
                   and s in ready_services(base), f"{service} restarted and ready")
        broker = _broker_pid(runner.pid)
        os.kill(broker, signal.SIGKILL)
        _until(lambda: _broker_pid(runner.pid) not in (0, broker), "a new broker process")
        _until(lambda: socket.socket().connect_ex(("127.0.0.1", broker_port)) == 0, "broker on its port")
        _until(lambda: ready_services(base) == set(SERVICES), "every service ready with the new broker")
        assert runner.poll() is None
        children = _children(runner.pid)
        os.killpg(runner.pid, signal.SIGINT)
        runner.wait(timeout=30)
    finally:
        output = _finish(runner)
    assert runner.returncode == 0, output
    _until(lambda: not _alive(children), "no child left (the fork server follows the runner)", timeout=5)
    for service in SERVICES:
        assert f"{service} exited with code -9; restarting" in output
        assert f"{service} is ready again" in output
    assert f"broker restarted on 127.0.0.1:{broker_port}" in output


def test_ctrl_c_stops_everything_within_5_s_services_first_without_errors(tmp_path) -> None:
    base = free_base_port()
    runner = _start_runner(tmp_path, base, free_port())
    try:
        _until(lambda: (tmp_path / ".demo-seeded").exists(), "the demo seeded")
        _until(lambda: ready_services(base) == set(SERVICES), "every service ready")
        children = _children(runner.pid)
        sizes = {log: log.stat().st_size for log in tmp_path.glob("*.log")}
        started = time.monotonic()
        os.killpg(runner.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        runner.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        output = _finish(runner)
    assert runner.returncode == 0, output
    assert took < 5, f"stopping took {took:.1f} s"
    _until(lambda: not _alive(children), "no child left (the fork server follows the runner)", timeout=5)
    assert output.index("stopping") < output.index("stopped")
    assert ".venv/bin/oto token --role team_staff --site gellerup" in output  # one line, 40 columns
    assert "oto subscribe" in output and re.search(r"\ndemo +6 staff, 6 families", output), output
    for log in tmp_path.glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, log.name
        after_ctrl_c = text.encode()[sizes.get(log, 0):].decode(errors="replace")
        assert '"level": "ERROR"' not in after_ctrl_c and '"level": "WARNING"' not in after_ctrl_c, \
            (log.name, after_ctrl_c[-2000:])
    for service in SERVICES:  # each finished its shutdown itself, with the broker still there
        assert "Application shutdown complete" in (tmp_path / f"{service}.log").read_text()


def test_a_broker_whose_port_is_taken_moves_loudly_and_the_runner_follows(tmp_path, capsys) -> None:
    broker = TansuBroker(log_path=tmp_path / "broker.log", supervised=True).start()
    system = System(tmp_path, free_base_port(), broker)
    system.services = []  # only the broker here; the services follow through the same path
    old = broker.port
    try:
        broker.kill()
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", old))
            squatter.listen()
            system.restart_broker()
        assert broker.alive() and broker.port != old
        assert system.settings().kafka_bootstrap == f"127.0.0.1:{broker.port}"
        out = capsys.readouterr().out
        assert f"port {old} is taken" in out and f"now listens on 127.0.0.1:{broker.port}" in out
    finally:
        system.stop()


def test_a_blocked_service_is_only_not_ready_and_the_runner_goes_on(tmp_path) -> None:
    """A service that accepts connections but never answers (its event loop blocked, as a 60 MB
    upload once did) makes the readiness poll time out: that is "not ready", not a crash."""
    with socket.socket() as blocked:
        blocked.bind(("127.0.0.1", 0))
        blocked.listen()
        system = System(tmp_path, blocked.getsockname()[1], TansuBroker())
        try:
            intake = system.services[0]
            intake.child.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            system.check()  # polls the blocked port; the broker's absence is reported, not raised
            assert not intake.ready and intake.child.restart_at is None
        finally:
            intake.child.process.kill()
            system.http.close()


async def test_after_the_runner_restarts_a_killed_broker_every_topic_has_its_whole_history_again(
        tmp_path: Path) -> None:
    """The embedded broker keeps nothing on disk; the relays notice it lost what they published
    and put their kept outboxes back, so a reader from the beginning sees every event again."""
    base, broker_port = free_base_port(), free_port()
    bootstrap = f"127.0.0.1:{broker_port}"
    topics = ["oto.intake.events", "oto.casework.events",
              *(f"oto.department.{d.value}" for d in Department)]
    runner = _start_runner(tmp_path, base, broker_port)
    try:
        _until(lambda: (tmp_path / ".demo-seeded").exists(), "the demo seeded")
        _until(lambda: ready_services(base) == set(SERVICES), "every service ready")
        before = {topic: _ids(await read_until_seen(bootstrap, topic, set(), quiet_polls=15))
                  for topic in topics}
        assert all(before[t] for t in topics[:2]), before  # the demo wrote to the domain topics
        assert any(before[t] for t in topics[2:]), before  # and reached a department
        broker = _broker_pid(runner.pid)
        os.kill(broker, signal.SIGKILL)
        _until(lambda: _broker_pid(runner.pid) not in (0, broker), "a new broker process")
        for topic, ids in before.items():
            after = _ids(await read_until_seen(bootstrap, topic, ids, timeout=120))
            assert ids <= after, f"{topic}: {len(ids - after)} of {len(ids)} events not back"
    finally:
        _finish(runner)


def _ids(records: list[Any]) -> set[str]:
    return {dict(r.headers)["ce_id"].decode() for r in records}
