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
from shared.departments import Department
from shared.embedded import free_base_port
from shared.settings import SERVICES
from tests.support import ready_services

pytestmark = pytest.mark.slow


def test_embedded_command_starts_everything_and_stops_on_ctrl_c(tmp_path) -> None:
    base = free_base_port()
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
        assert _demo_families_reach_casework(base) == 6
        assert _demo_families_on_each_dashboard(base) == {d.value: 6 for d in Department}
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "stopped" in text
    for service in SERVICES:
        assert service in text and (tmp_path / f"{service}.db").exists()
    for offset, department in enumerate(Department):
        assert f"http://127.0.0.1:{base + 10 + offset}/" in text and department.value in text


def _wait_all_ready(base: int, timeout: float) -> set[str]:
    ready: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(ready) < 4:
        ready |= ready_services(base)
        time.sleep(0.5)
    return ready


def _demo_families_reach_casework(base: int) -> int:
    """The demo's enrolments travel intake → broker → casework, which gives each a makkerpar."""
    from shared.auth import mint_token
    from shared.settings import Settings

    token = mint_token(Settings(), subject="t", role="system")
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        families = httpx.get(f"http://127.0.0.1:{base}/v1/households", params={"status": "enrolled"},
                             headers=headers, timeout=5).json()["items"]
        assigned = 0
        for family in families:
            view = httpx.get(f"http://127.0.0.1:{base + 1}/v1/families/{family['id']}/slice",
                             headers={"Authorization": "Bearer " + mint_token(
                                 Settings(), subject="t", role="team_staff", site="gellerup")}, timeout=5)
            if view.status_code == 200 and any(e["type"].endswith("makkerpar-assigned.v1")
                                               for e in view.json()["events"]):
                assigned += 1
        if assigned == 6:
            return assigned
        time.sleep(0.5)
    return assigned


def _demo_families_on_each_dashboard(base: int) -> dict[str, int]:
    """The demo's consents name every department: each dashboard folds all six families."""
    from shared.auth import mint_token
    from shared.settings import Settings

    counts: dict[str, int] = {}
    deadline = time.monotonic() + 60  # a loaded machine folds slowly
    while time.monotonic() < deadline:
        for offset, department in enumerate(Department):
            token = mint_token(Settings(), subject="t", role="department_staff", department=department.value)
            try:
                page = httpx.get(f"http://127.0.0.1:{base + 10 + offset}/familier?state=enrolled",
                                 headers={"Authorization": f"Bearer {token}"}, timeout=5)
            except httpx.HTTPError:
                continue
            counts[department.value] = page.text.count("data-family=")
        if counts == {d.value: 6 for d in Department}:
            break
        time.sleep(0.5)
    return counts
