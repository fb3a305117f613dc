"""The embedded default starts the whole system, every service becomes ready, Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from shared.broker import free_port
from shared.settings import SERVICES

pytestmark = pytest.mark.slow


def test_embedded_command_starts_everything_and_stops_on_ctrl_c(tmp_path) -> None:
    base = free_port()
    while any(_busy(base + i) for i in range(4)):
        base = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "run", "--data-dir", str(tmp_path), "--base-port", str(base),
         "--broker-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    try:
        ready = _wait_all_ready(base, timeout=90)
        assert ready == set(SERVICES)
        for offset in range(4):
            docs = httpx.get(f"http://127.0.0.1:{base + offset}/openapi.json", timeout=5)
            assert docs.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "stopped" in text
    for service in SERVICES:
        assert service in text and (tmp_path / f"{service}.db").exists()


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_all_ready(base: int, timeout: float) -> set[str]:
    ready: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(ready) < 4:
        for offset, service in enumerate(SERVICES):
            try:
                if httpx.get(f"http://127.0.0.1:{base + offset}/readyz", timeout=2).status_code == 200:
                    ready.add(service)
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    return ready
