#!/usr/bin/env bash
# Entry point of the superset service: migrate the metadata, make sure the admin exists,
# import the guildstats dashboards when the bundle is there, then serve.
#
# The bundle comes from bi/superset (issue 11), mounted at /guildstats-bi. If that folder has
# an executable import.sh, it does the import (it knows its own format); otherwise every
# *.zip there is imported with `superset import-dashboards`. Nothing there: no dashboards yet.
set -euo pipefail
superset db upgrade
# Runs on every start; once the admin exists this only reports it, so its failure is not fatal
# (the password is changed in Superset's UI, not here).
superset fab create-admin --username admin --firstname guildstats --lastname admin \
    --email admin@localhost --password "$(head -n 1 "$SUPERSET_ADMIN_PASSWORD_FILE")" || true
superset init
if [ -x /guildstats-bi/import.sh ]; then
    /guildstats-bi/import.sh
else
    shopt -s nullglob
    for bundle in /guildstats-bi/*.zip; do
        superset import-dashboards -p "$bundle" -u admin
    done
fi
exec /usr/bin/run-server.sh
