#!/usr/bin/env bash
# One database and one owner per service; no service can read another's tables. Runs once, when the
# data volume is new. Passwords come from the environment (<SERVICE>_DB_PASSWORD) and reach SQL as
# psql variables (:'password' quotes them), so no character in them can break or inject.
set -euo pipefail
for service in ${OTO_INIT_SERVICES:-intake casework referrals finance}; do
  variable="${service^^}_DB_PASSWORD"
  [ -n "${!variable:-}" ] || { echo "init.sh: $variable is not set" >&2; exit 2; }
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
       -v service="$service" -v password="${!variable}" <<'SQL'
CREATE USER :"service" WITH PASSWORD :'password';
CREATE DATABASE :"service" OWNER :"service";
SQL
done
