#!/usr/bin/env bash
# Install Debian's chromium for the dashboards' browser tests when it is missing (needs root).
# Playwright drives it through executable_path; its own browser download is not used.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium
fi
