//! Support for the end-to-end tests in `tests/tests/`: a real PostgreSQL cluster with the
//! guildstats extension installed, one fresh database per test.
//!
//! `scripts/test` starts the cluster and sets `GUILDSTATS_TEST_PGHOST` (the socket directory)
//! and `GUILDSTATS_TEST_PGPORT`. Without them a test skips with a message, except under CI
//! (`CI=true`), where a missing cluster is a failure: CI must never pass by testing nothing.

pub mod et;
pub mod ingest;
pub mod sftp;

use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub mod discord;

/// Where the test cluster listens.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub host: String,
    pub port: String,
    pub bin_dir: PathBuf,
}

impl Cluster {
    /// The cluster from the environment, or `None` (after saying why) when a test may skip.
    pub fn from_env(test: &str) -> Option<Cluster> {
        match (
            std::env::var("GUILDSTATS_TEST_PGHOST"),
            std::env::var("GUILDSTATS_TEST_PGPORT"),
        ) {
            (Ok(host), Ok(port)) => Some(Cluster {
                host,
                port,
                bin_dir: PathBuf::from(
                    std::env::var("GUILDSTATS_PG_BIN")
                        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string()),
                ),
            }),
            _ => {
                skip_or_fail(
                    test,
                    "GUILDSTATS_TEST_PGHOST/GUILDSTATS_TEST_PGPORT are not set (run scripts/test)",
                );
                None
            }
        }
    }

    pub fn dsn(&self, database: &str, user: &str) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            self.host, self.port, user, database
        )
    }

    pub fn connect(&self, database: &str, user: &str) -> Client {
        Client::connect(&self.dsn(database, user), NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {database} as {user}: {e}"))
    }

    /// The cluster's data directory, when this process may stop and start it (root, and the
    /// cluster scripts/test made); `None` after saying why a test skips.
    pub fn stoppable_data_dir(&self, test: &str) -> Option<PathBuf> {
        let data = PathBuf::from(&self.host).join("data");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n");
        if data.join("postmaster.pid").exists() && matches!(root, Ok(true)) {
            return Some(data);
        }
        // Not a peer that is missing: this cluster is simply not ours to stop.
        eprintln!("SKIP {test}: needs root and the cluster's data dir");
        None
    }

    /// `pg_ctl stop` or `pg_ctl start` on the data directory from `stoppable_data_dir`.
    pub fn pg_ctl(&self, data: &Path, action: &str) {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(self.bin_dir.join("pg_ctl"))
            .arg("-D")
            .arg(data)
            .args(["-m", "fast", "-w", action]);
        if action == "start" {
            cmd.arg("-l").arg(data.join("../postgres.log"));
        }
        run_ok(&mut cmd);
    }

    /// A PostgreSQL client program (psql, pg_dump, ...) aimed at this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command
            .env("PGHOST", &self.host)
            .env("PGPORT", &self.port)
            .env("PGUSER", "postgres");
        command
    }
}

/// Outside CI a test whose peers are missing says so and passes; under CI it fails.
pub fn skip_or_fail(test: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}; under CI this is a failure, not a skip");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// A database created for one test, with the extension; dropped when the test ends.
pub struct TestDb {
    pub cluster: Cluster,
    pub name: String,
}

impl TestDb {
    pub fn create(cluster: &Cluster, test: &str) -> TestDb {
        TestDb::create_version(cluster, test, None)
    }

    /// A test database with the extension at `version` (`None`: the default version).
    pub fn create_version(cluster: &Cluster, test: &str, version: Option<&str>) -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "e2e_{}_{}_{}",
            test,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = cluster.connect("postgres", "postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let db = TestDb {
            cluster: cluster.clone(),
            name,
        };
        let create = match version {
            Some(v) => format!("CREATE EXTENSION guildstats VERSION '{v}'"),
            None => "CREATE EXTENSION guildstats".to_string(),
        };
        if let Err(e) = db.connect().batch_execute(&create) {
            panic!("{create}: {}", db_message(&e));
        }
        db
    }

    pub fn connect(&self) -> Client {
        self.cluster.connect(&self.name, "postgres")
    }

    /// Applies sql/ops/roles.sql and makes `login` a member of guildstats_ingest, so that an
    /// ingester runs with exactly the rights operators give it (and every ingester test proves
    /// INSERT on the raw tables is enough). Returns its DSN.
    pub fn ingest_login(&self, login: &str) -> String {
        apply_roles_script(&self.cluster, self);
        login_role(&self.cluster, login, "guildstats_ingest");
        self.cluster.dsn(&self.name, login)
    }

    pub fn connect_as(&self, user: &str) -> Client {
        self.cluster.connect(&self.name, user)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut admin = self.cluster.connect("postgres", "postgres");
        let _ = admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Roles belong to the whole cluster: two tests running roles.sql (or granting roles) at the
/// same time can fail with "tuple concurrently updated", so they take turns here.
static CLUSTER_ROLES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs sql/ops/roles.sql on the test database (twice: it must be re-runnable).
pub fn apply_roles_script(cluster: &Cluster, db: &TestDb) {
    let _turn = CLUSTER_ROLES.lock().unwrap_or_else(|e| e.into_inner());
    let script = repo_root().join("sql/ops/roles.sql");
    for _ in 0..2 {
        run_ok(
            cluster
                .command("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.name, "-f"])
                .arg(&script),
        );
    }
}

/// A LOGIN role (created once per cluster) that is a member of `group`.
pub fn login_role(cluster: &Cluster, login: &str, group: &str) {
    let _turn = CLUSTER_ROLES.lock().unwrap_or_else(|e| e.into_inner());
    let mut admin = cluster.connect("postgres", "postgres");
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}') THEN
                 CREATE ROLE {login} LOGIN;
               END IF;
             END $$;
             GRANT {group} TO {login};"
        ))
        .expect("login role");
}

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The longest a helper process of a test may run. A hang then fails the test, with the command
/// named, instead of blocking CI.
pub const CHILD_LIMIT: std::time::Duration = std::time::Duration::from_secs(900);

/// Commands with a time limit: run under coreutils `timeout`, which kills them after
/// [`CHILD_LIMIT`] and exits with 124 (or 137 when the kill had to be SIGKILL).
pub trait Bounded {
    /// The same program, arguments, environment and directory, under `timeout`. Set stdio on
    /// the returned command: it is not copied.
    fn bounded(&self) -> Command;

    fn bounded_output(&self) -> std::io::Result<std::process::Output> {
        self.bounded().output()
    }
}

impl Bounded for Command {
    fn bounded(&self) -> Command {
        let mut wrapped = Command::new("timeout");
        wrapped
            .arg("--kill-after=10")
            .arg(format!("{}s", CHILD_LIMIT.as_secs()))
            .arg(self.get_program())
            .args(self.get_args());
        for (key, value) in self.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = self.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }
}

/// Runs a command (bounded by [`CHILD_LIMIT`]) and panics with its output when it fails.
pub fn run_ok(command: &mut Command) -> String {
    let output = command
        .bounded_output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let timed_out = matches!(output.status.code(), Some(124 | 137));
    assert!(
        output.status.success(),
        "{command:?} failed{}: {}\n{}",
        if timed_out { " (timed out)" } else { "" },
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One literal row for each raw table's contract columns (in `RawTable::contract_columns`
/// order), for tests that must touch every raw table.
pub fn sample_values(table: &str) -> &'static str {
    match table {
        "raw_voice_events" => "1, 10, 100, '2026-03-01 20:00:00+00', false, true",
        "raw_voice_snapshots" => {
            "1, '2026-03-01 20:00:00+00', '[{\"user_id\": 10, \"channel_id\": 100, \"self_mute\": false, \"self_deaf\": false}]'"
        }
        "raw_heartbeats" => "'discord', 1, '2026-03-01 20:00:00+00'",
        "raw_messages" => "1, 200, 10, 9000001, '2026-03-01 20:01:00+00', 42",
        "raw_member_events" => "1, 10, 'join', '2026-02-01 12:00:00+00'",
        "raw_guilds" => "1, '2026-03-01 19:00:00+00', 'Test guild', 101",
        "raw_channels" => "1, 100, '2026-03-01 19:00:00+00', 'Lobby', 'voice'",
        "raw_scheduled_events" => {
            "1, 5000, '2026-03-01 19:00:00+00', 'Game night', 100, 'scheduled'"
        }
        "raw_scheduled_event_users" => "1, 5000, 10, 'add', '2026-03-01 19:30:00+00'",
        "raw_server_polls" => "'127.0.0.1:27015', '2026-03-01 20:00:00+00', true",
        "raw_server_players" => "'127.0.0.1:27015', '2026-03-01 20:00:00+00', 0, 'Player', 12, 300.5",
        "raw_et_stats_files" => {
            "'2026-03-01-203000-supply-round-1.txt', 'test', '\\x6869'::bytea, '2026-03-01 20:31:00+00'"
        }
        "raw_point_transactions" => "1, 10, 25, 'daily', '2026-03-01 20:00:00+00', 'tx-1'",
        other => panic!("no sample row for {other}: add one when adding a raw table"),
    }
}

/// `INSERT INTO guildstats.<table> (contract columns) VALUES (sample) ON CONFLICT DO NOTHING`.
pub fn sample_insert(table: &guildstats_ingest::raw_tables::RawTable) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
        table.qualified_name(),
        table.contract_columns.join(", "),
        sample_values(table.name)
    )
}

/// The server's message for a failed statement (postgres::Error's Display says only
/// "db error").
pub fn db_message(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}
