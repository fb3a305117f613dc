#!/usr/bin/env bash
# Runs every benchmark and writes docs/performance.md. Not part of the tests (takes ~30 min).
# Needs PostgreSQL on 127.0.0.1:5432 like the tests. Extra arguments go to `python -m bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-venv.sh
exec .venv/bin/python -m bench "$@"
