#!/usr/bin/env bash
# Runs the test suite against real parts: a Kafka-protocol broker (tansu unless
# OTO_TEST_KAFKA_BOOTSTRAP is set) and PostgreSQL (127.0.0.1:5432 unless OTO_TEST_POSTGRES_URL).
# Creates the virtualenv and installs on first use. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-venv.sh
.venv/bin/ruff check . --output-format concise
.venv/bin/mypy shared dashboard services/*/domain.py services/intake/cpr.py
# Several workers (pytest-xdist): the suite waits on brokers far more than it computes (about 6 of
# 26 minutes were CPU in one process); whole-system and browser tests keep to one worker each
# (tests/conftest.py). OTO_TEST_WORKERS=0 runs everything in this process.
exec .venv/bin/python -m pytest -n "${OTO_TEST_WORKERS:-3}" --dist loadgroup "$@"
