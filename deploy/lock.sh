#!/usr/bin/env bash
# Re-generate deploy/requirements.lock from pyproject.toml (the image installs exactly this, by hash).
# Run after changing dependencies; tests/test_deploy_lock.py fails while the two disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/uv pip compile pyproject.toml --extra ops --generate-hashes --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --quiet --output-file deploy/requirements.lock
