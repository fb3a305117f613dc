#!/usr/bin/env bash
# Runs every benchmark and writes docs/performance.md. Not part of the tests (takes ~25 min).
# Needs PostgreSQL on 127.0.0.1:5432 like the tests. Extra arguments go to `python -m bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh
# py-spy profiles the REST read under load (the report's CPU breakdown); wrk is installed by the
# benchmark itself from Debian's packages when missing.
[ -x .venv/bin/py-spy ] || .venv/bin/python -m pip install --quiet "py-spy>=0.3,<1"
exec .venv/bin/python -m bench "$@"
