"""Fuzzing every service's OpenAPI with schemathesis: no input, however odd, gives a 500.

The whole embedded system runs (real HTTP, broker and SQLite, with the demo data), and each
service is fuzzed with the roles that use it. The seed is fixed so a failure can be replayed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.auth import mint_token
from shared.broker import free_port
from shared.settings import SERVICES, Settings

pytestmark = pytest.mark.slow
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
ROLES = {
    "intake": [{"role": "team_staff", "site": "gellerup"}, {"role": "admin"}, {"role": "system"}],
    "casework": [{"role": "team_leader", "site": "gellerup"}, {"role": "coordination"}],
    "referrals": [{"role": "team_staff", "site": "gellerup"},
                  {"role": "department_staff", "department": "sundhed-og-omsorg"}, {"role": "admin"}],
    "finance": [{"role": "finance"}, {"role": "department_staff", "department": "boern-og-unge"}],
}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base = free_port()
    data = tmp_path_factory.mktemp("fuzz")
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "run", "--data-dir", str(data), "--base-port", str(base),
         "--broker-port", str(free_port())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (data / ".demo-seeded").exists():
            time.sleep(0.5)
        assert (data / ".demo-seeded").exists(), "the embedded system did not start"
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


@pytest.mark.parametrize(("service", "claims"), [(s, c) for s in SERVICES for c in ROLES[s]],
                         ids=lambda v: v if isinstance(v, str) else "-".join(v.values()))
def test_no_input_gives_a_server_error(system: int, service: str, claims: dict[str, str]) -> None:
    port = system + SERVICES.index(service)
    token = mint_token(Settings(), subject="fuzzer", **claims)  # type: ignore[arg-type]
    assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    result = subprocess.run(
        [SCHEMATHESIS, "run", f"http://127.0.0.1:{port}/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error", "--phases", "examples,fuzzing", "--max-examples", "25",
         "--seed", "20261122", "--no-color"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-3000:]
