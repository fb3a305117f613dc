"""The ``oto`` command as a user meets it (through a subprocess): a mistake is one line naming
what was wrong and the valid choices, exit code 2, no traceback; every help shows an example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from shared.auth import Role
from shared.broker import free_port
from shared.cli import DepartmentName, RoleName, app
from shared.departments import Department


def oto(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "80", **env})


@pytest.mark.parametrize(("args", "names"), [
    (("subscribe", "nowhere"), ["'nowhere'", "sundhed-og-omsorg", "boern-og-unge"]),
    (("token", "--role", "boss"), ["'boss'", "team_staff", "admin"]),
    (("migrate", "payroll"), ["'payroll'", "intake", "finance"]),
    (("import-register", "/no/such/extract.csv"), ["/no/such/extract.csv", "does not exist"]),
    (("token", "--role", "admin", "--colour", "red"), ["--colour"]),
    (("frobnicate",), ["'frobnicate'", "subscribe", "token", "import-register"]),
    (("run", "--base-port", "eighty"), ["--base-port", "integer"]),
])
def test_a_user_mistake_is_one_line_naming_the_choices_with_exit_code_2(args, names) -> None:
    result = oto(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(name in lines[0] for name in names), lines[0]


def test_a_file_that_is_not_a_register_extract_is_one_line_with_exit_code_2(tmp_path) -> None:
    extract = tmp_path / "extract.csv"
    for content, reason in ((b"", "empty"), (b'{"not": "csv"}', "missing columns")):
        extract.write_bytes(content)
        result = oto("import-register", str(extract), OTO_DATA_DIR=str(tmp_path))
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()] and reason in result.stderr


def test_an_unreachable_broker_is_one_line_with_exit_code_2() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    for args in (("subscribe", "sundhed-og-omsorg"), ("topics", "create")):
        result = oto(*args, OTO_KAFKA_BOOTSTRAP=nobody)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert f"cannot reach the broker at {nobody}" in result.stderr
        assert "OTO_KAFKA_BOOTSTRAP" in result.stderr


def test_every_help_shows_an_example() -> None:
    assert "Examples: oto run" in oto("--help").stdout
    for name in app.command_names():
        page = oto(name, *(["create"] if name == "topics" else []), "--help")
        assert page.returncode == 0, page.stderr
        assert "Example: oto " in page.stdout, name


def test_service_commands_are_found_not_imported_by_the_cli() -> None:
    source = Path(sys.modules["shared.cli"].__file__ or "").read_text(encoding="utf-8")
    assert "services.intake" not in source and "import-register" in app.command_names()


def test_the_command_line_choices_are_the_real_roles_and_departments() -> None:
    assert set(get_args(RoleName)) == {r.value for r in Role}
    assert set(get_args(DepartmentName)) == {d.value for d in Department}
