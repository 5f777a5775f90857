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
# newer than Debian's python3-websockets.
gs_ensure_python_tools() {
    local check='import sys, websockets; sys.exit(int(websockets.__version__.split(".")[0]) < 14)'
    python3 -c "$check" 2>/dev/null && return 0
    gs_say "installing the PyPI package websockets for $(command -v python3)"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends python3-pip
    fi
    # A Debian python3 refuses pip installs into its own tree without this flag (PEP 668).
    python3 -m pip install --quiet --disable-pip-version-check 'websockets>=14' 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'websockets>=14'
    python3 -c "$check"
}

gs_ensure_all() {
    gs_ensure_system_packages
    gs_ensure_cargo_pgrx
    gs_ensure_python_tools
}

# Builds the extension and installs it into the system PostgreSQL (needs root).
#   gs_install_extension release|debug
gs_install_extension() {
    local profile=${1:-release} flags=()
    [ "$profile" = release ] && flags=(--release)
    gs_say "building and installing the guildstats extension ($profile)"
    (cd "$GS_ROOT/extension" && cargo pgrx install --pg-config "$GS_PG_CONFIG" "${flags[@]}" >/dev/null)
    # pgrx installs only the current version's script and the upgrade scripts; the install
    # scripts of past releases go beside them, so that `CREATE EXTENSION guildstats VERSION
    # '0.1.0'` works (the upgrade test starts from it, and so can a user restoring an old setup).
    local share
    share="$("$GS_PG_CONFIG" --sharedir)/extension"
    install -m 644 "$GS_ROOT"/extension/releases/guildstats--*.sql "$share/"
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
    runuser -u postgres -- "$GS_PG_BIN/initdb" -D "$dir/data" --locale=C.UTF-8 -E UTF8 -A trust -U postgres >/dev/null
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$cron_db'
fsync = off
max_parallel_workers_per_gather = 2
CONF
    runuser -u postgres -- "$GS_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w start >/dev/null
}

gs_cluster_stop() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        runuser -u postgres -- "$GS_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

# psql against a throwaway cluster: gs_psql DIR PORT DB [psql args...]
gs_psql() {
    local dir=$1 port=$2 db=$3
    shift 3
    "$GS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$db" "$@"
}

gs_dsn() { printf 'host=%s port=%s user=postgres dbname=%s' "$1" "$2" "$3"; }

# The real ET:Legacy files, when ../shared (or GUILDSTATS_FIXTURES_DIR) has them.
gs_et_fixtures_dir() {
    local dir="$GS_FIXTURES/et/real"
    if [ -d "$dir" ]; then printf '%s' "$dir"; fi
}
