#!/usr/bin/env bash
# Runs the whole system on the embedded default (local broker + SQLite), no Docker needed.
# Creates the virtualenv and installs on first use. Extra arguments go to `oto run`.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-venv.sh
exec .venv/bin/oto run "$@"
