#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases (temporal, temporal_visibility), then exits; safe to run
# on every start. docker-compose.yml's temporal-schema job runs this very file, and so can anyone with the SQL tool
# and the server's schema folder, e.g. a Temporal server built from source.
#
# Environment: SQL_HOST (default postgresql), SQL_PORT (5432), SQL_USER (temporal), SQL_PASSWORD (read by the tool),
# TEMPORAL_SQL_TOOL (temporal-sql-tool), TEMPORAL_SCHEMA_DIR (/etc/temporal/schema/postgresql/v12, as in the
# admin-tools image).
set -eu
tool="${TEMPORAL_SQL_TOOL:-temporal-sql-tool}"
schema="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"
sql() { "$tool" --plugin postgres12 --ep "${SQL_HOST:-postgresql}" -p "${SQL_PORT:-5432}" -u "${SQL_USER:-temporal}" "$@"; }
for db in temporal temporal_visibility; do
  if ! output=$(sql --db "$db" create 2>&1); then
    echo "$output" | grep -qi 'already exists' || { echo "$output" >&2; exit 1; }
  fi
  sql --db "$db" setup-schema -v 0.0
done
sql --db temporal update-schema -d "$schema/temporal/versioned"
sql --db temporal_visibility update-schema -d "$schema/visibility/versioned"
echo "Temporal schema is up to date"
