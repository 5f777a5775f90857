#!/usr/bin/env bash
# First start only (the image's entrypoint runs /docker-entrypoint-initdb.d on an empty data
# directory): the extension, the roles, the pg_cron schedule in $POSTGRES_DB, and the logins
# gs_ingester (ingesters) and gs_reader (BI tools) when their password files are given.
set -euo pipefail
db=${POSTGRES_DB:-postgres}
gs_psql() {
    psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$db" "$@"
}
gs_psql -c 'CREATE EXTENSION IF NOT EXISTS guildstats'
gs_psql -f /usr/share/guildstats/ops/roles.sql
gs_psql -f /usr/share/guildstats/ops/cron.sql

# The password is read by psql itself (a backquoted command), so it never appears in a
# process's arguments.
gs_login() {
    local login=$1 group=$2 file=$3
    [ -n "$file" ] || return 0
    if [ ! -r "$file" ]; then
        echo "guildstats: cannot read the password file $file for $login" >&2
        exit 1
    fi
    GS_PASSWORD_FILE=$file gs_psql -v login="$login" -v group="$group" <<'SQL'
\set password `head -n 1 "$GS_PASSWORD_FILE"`
CREATE ROLE :"login" LOGIN PASSWORD :'password' IN ROLE :"group";
SQL
}
gs_login gs_ingester guildstats_ingest "${GUILDSTATS_INGEST_PASSWORD_FILE:-}"
gs_login gs_reader guildstats_reader "${GUILDSTATS_READER_PASSWORD_FILE:-}"
