"""The register import from the command line: progress, a report, and idempotency."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.intake.factories import cpr


def test_import_command_reports_bad_rows_and_changes_nothing_the_second_time(tmp_path) -> None:
    extract = tmp_path / "extract.csv"
    rows = [f"R{i},gellerup,Gudrunsvej {i},{cpr(84)},mother,2015-06-01,yes" for i in range(40)]
    rows.append("BAD,gellerup,Gudrunsvej 99,310299-1234,father,,yes")
    extract.write_text("household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
                       + "\n".join(rows) + "\n")
    env = {**os.environ, "OTO_DATA_DIR": str(tmp_path), "COLUMNS": "120"}
    command = [sys.executable, "-m", "shared.cli", "import-register", str(extract)]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "households imported: 40, persons: 40, rejected rows: 1" in first.stdout
    assert "line 42: cpr:" in first.stdout and "310299" not in first.stdout
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert "imported before: nothing changed" in second.stdout
