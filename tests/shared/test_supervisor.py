"""The runner's restart backoff: quick at first, doubling to a ceiling, quick again after a stable
run; why a child died, in the runner's own line; listening ports no connection can take."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from shared.broker import LISTEN_PORT_SPAN, ephemeral_range, free_port
from shared.embedded import PORT_OFFSETS, free_base_port
from shared.supervisor import MAX_DELAY, STABLE_AFTER, Backoff, Supervised, last_error


def test_restarts_back_off_doubling_up_to_the_ceiling_and_reset_after_a_stable_run() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay(uptime=1) for _ in range(10)]
    assert delays[:4] == [0.5, 1, 2, 4]
    assert max(delays) == MAX_DELAY and delays == sorted(delays)
    assert backoff.next_delay(uptime=STABLE_AFTER) == 0.5


def test_a_service_whose_port_is_held_dies_and_the_runner_quotes_why(tmp_path: Path) -> None:
    """A real service on a port a connection already holds (as another service's broker
    connection once did in CI): uvicorn exits with 3, and the runner's line says why."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        log = tmp_path / "finance.log"
        env = {**os.environ, "OTO_SERVICE": "finance", "OTO_PORT": str(port), "OTO_HOST": "127.0.0.1",
               "OTO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'finance.db'}",
               "OTO_MIGRATE_ON_START": "true", "OTO_ENV": "dev", "OTO_CONSUMERS_ENABLED": "false",
               "OTO_RELAY_ENABLED": "false", "OTO_DATA_DIR": str(tmp_path)}

        def start() -> subprocess.Popen[bytes]:
            with log.open("ab") as out:
                return subprocess.Popen([sys.executable, "-m", "shared.serve"], env=env, stdout=out,
                                        stderr=subprocess.STDOUT)

        child = Supervised("finance", start, log_path=log)
        child.launch()
        assert child.process is not None and child.process.wait(timeout=60) == 3
        said: list[str] = []
        child.check(said.append)
    assert said == [f"finance exited with code 3; restarting in 0.5 s (its last error: [Errno 98] error "
                    f"while attempting to bind on address ('127.0.0.1', {port}): address already in use)"]


def test_the_last_error_is_the_last_error_line_json_or_plain(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text('{"level": "ERROR", "message": "first"}\n'
                   '{"level": "ERROR", "message": "database is locked"}\n'
                   '{"level": "INFO", "message": "Application shutdown complete."}\n')
    assert last_error(log) == "database is locked"
    log.write_text("starting\nRuntimeError: boom\nbye\n")
    assert last_error(log) == "RuntimeError: boom"
    log.write_text('{"level": "INFO", "message": "all well"}\n')
    assert last_error(log) is None
    assert last_error(tmp_path / "missing.log") is None


def test_listening_ports_are_picked_below_the_ephemeral_range_and_free() -> None:
    """An outgoing connection never takes such a port as its local one, so it stays ours."""
    low, _high = ephemeral_range()
    ports = {free_port() for _ in range(50)}
    assert all(low - LISTEN_PORT_SPAN <= port < low for port in ports)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", min(ports)))
        assert free_port(exclude=ports) not in ports
    base = free_base_port()
    for offset in PORT_OFFSETS:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", base + offset))
