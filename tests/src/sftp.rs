//! Peers for the SFTP puller's tests: a real OpenSSH sshd from ../shared/tools/sftp-server.sh
//! (one per test, on its own loopback port, each test in its own remote directory) and the
//! guildstats-sftp binary as a process, so that tests can stop it, kill -9 it and read its log.

use crate::et::{cluster_and_fixtures, fingerprint, import_pending, insert_files};
use crate::ingest::{ingester_binary, Ingester};
use crate::{repo_root, run_ok, skip_or_fail, Cluster, TestDb};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The remote accounts sftp-server.sh sets up start with this; each server gets its own
/// account, because every start rewrites the account's authorized_keys, and a rewrite racing
/// another test's login (truncated file, key refused) made tests fail under load.
pub const SFTP_USER_PREFIX: &str = "gse2e";

/// sftp-server.sh rewrites the account's authorized_keys and may create the account: starts
/// take turns.
static STARTS: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// sftp-server.sh, or `None` after skip_or_fail said why (it needs root to run sshd).
pub fn sftp_server_script(test: &str) -> Option<PathBuf> {
    let script = std::env::var("GUILDSTATS_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("../shared"))
        .join("tools/sftp-server.sh");
    if !script.exists() {
        skip_or_fail(test, &format!("{} does not exist", script.display()));
        return None;
    }
    if !is_root() {
        skip_or_fail(test, "sftp-server.sh runs sshd and needs root");
        return None;
    }
    Some(script)
}

/// A port in 2300-2399 that nothing listens on; each call in this process starts looking
/// further on, so that tests running side by side do not pick the same one.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 50) as u16 * 2;
    for _ in 0..100 {
        let port = 2300 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 100;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 2300-2399");
}

/// The passphrase of the `client_protected` key.
pub const KEY_PASSPHRASE: &str = "correct horse e2e";

/// (file suffix, type, bits, passphrase); sftp-server.sh authorizes every `client_*.pub`.
const CLIENT_KEYS: [(&str, &str, Option<&str>, &str); 4] = [
    ("ed25519", "ed25519", None, ""),
    ("rsa", "rsa", Some("3072"), ""),
    ("ecdsa", "ecdsa", Some("256"), ""),
    ("protected", "ed25519", None, KEY_PASSPHRASE),
];

/// One shared set of client keys: every start of sftp-server.sh writes its state dir's client
/// keys into the account's authorized_keys, so servers running side by side must share them.
fn client_keys() -> PathBuf {
    static KEYS: OnceLock<PathBuf> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join("guildstats-e2e-sftp-keys");
        std::fs::create_dir_all(&dir).expect("keys dir");
        for (name, kind, bits, passphrase) in CLIENT_KEYS {
            let key = dir.join(format!("client_{name}"));
            if !key.exists() {
                let mut cmd = Command::new("ssh-keygen");
                cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", "test", "-f"])
                    .arg(&key);
                if let Some(bits) = bits {
                    cmd.args(["-b", bits]);
                }
                run_ok(&mut cmd);
            }
        }
        dir
    })
    .clone()
}

/// A running sshd and the remote directory this test drops its files into.
pub struct SshServer {
    script: PathBuf,
    pub user: String,
    pub state: PathBuf,
    pub port: u16,
    pub remote_dir: PathBuf,
}

impl SshServer {
    pub fn start(test: &str) -> Option<SshServer> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let script = sftp_server_script(test)?;
        let unique = format!(
            "{test}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let state = std::env::temp_dir().join(format!("gs-e2e-sshd-{unique}"));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).expect("sshd state dir");
        let keys = client_keys();
        for (kind, ..) in CLIENT_KEYS {
            for suffix in ["", ".pub"] {
                let name = format!("client_{kind}{suffix}");
                std::fs::copy(keys.join(&name), state.join(&name)).expect("copy client key");
            }
        }
        let user = format!(
            "{SFTP_USER_PREFIX}{}x{}",
            std::process::id() % 100_000,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut server = SshServer {
            script,
            user,
            state,
            port: free_port(),
            remote_dir: PathBuf::new(),
        };
        server.restart();
        let home = run_ok(Command::new("getent").args(["passwd", &server.user]));
        let home = home.trim().split(':').nth(5).expect("home dir").to_string();
        server.remote_dir = Path::new(&home).join("stats").join(unique);
        std::fs::create_dir_all(&server.remote_dir).expect("remote dir");
        Some(server)
    }

    /// Starts sshd again on the same port with the same keys (after `kill`).
    pub fn restart(&self) {
        let _turn = STARTS.lock().unwrap_or_else(|e| e.into_inner());
        run_ok(
            Command::new("bash")
                .arg(&self.script)
                .arg("start")
                .arg(&self.state)
                .arg(self.port.to_string())
                .env("SFTP_USER", &self.user),
        );
    }

    /// SIGKILL to sshd and to every process it forked (the open sessions): the server is
    /// gone at once, as in a crash, mid-transfer if one was running.
    pub fn kill(&self) {
        let Ok(pid) = std::fs::read_to_string(self.state.join("sshd.pid")) else {
            return;
        };
        let mut pids = vec![pid.trim().to_string()];
        let mut i = 0;
        while i < pids.len() {
            let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", pids[i]))
                .unwrap_or_default();
            pids.extend(children.split_whitespace().map(str::to_string));
            i += 1;
        }
        for pid in &pids {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
        let _ = std::fs::remove_file(self.state.join("sshd.pid"));
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.state.join("known_hosts")
    }

    pub fn client_key(&self) -> PathBuf {
        self.state.join("client_ed25519")
    }

    /// `client_ed25519`, `client_rsa`, `client_ecdsa` or `client_protected`.
    pub fn client_key_named(&self, name: &str) -> PathBuf {
        self.state.join(format!("client_{name}"))
    }

    /// `ssh-ed25519 SHA256:...` of the server's host key, as ssh-keygen computes it.
    pub fn host_key_fingerprint(&self) -> String {
        let out = run_ok(
            Command::new("ssh-keygen")
                .arg("-lf")
                .arg(self.state.join("host_ed25519.pub")),
        );
        out.split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_string()
    }

    /// Copies a file into the remote directory in one write.
    pub fn drop_file(&self, name: &str, content: &[u8]) {
        std::fs::write(self.remote_dir.join(name), content).expect("drop file");
    }

    /// The flags that point the puller at this server.
    pub fn puller_args(&self) -> Vec<String> {
        vec![
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            self.port.to_string(),
            "--user".into(),
            self.user.clone(),
            "--key".into(),
            self.client_key().display().to_string(),
            "--known-hosts".into(),
            self.known_hosts().display().to_string(),
            "--remote-dir".into(),
            self.remote_dir.display().to_string(),
        ]
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.remote_dir);
        let _ = std::fs::remove_dir_all(&self.state);
        let _ = Command::new("userdel").args(["-r", &self.user]).output();
    }
}

/// The guildstats-sftp binary, built once per test process.
pub fn sftp_binary() -> PathBuf {
    ingester_binary("guildstats-sftp")
}

/// A guildstats-sftp process.
pub type Puller = Ingester;

impl Ingester {
    /// Starts the puller with `args`; the database comes from `dsn` (environment, as an
    /// operator would pass it).
    pub fn spawn(args: &[String], dsn: &str, log: &Path) -> Puller {
        Puller::spawn_binary(&sftp_binary(), args, dsn, log)
    }

    /// The same with a given build of the binary (the benchmark runs the release one).
    pub fn spawn_binary(binary: &Path, args: &[String], dsn: &str, log: &Path) -> Puller {
        Puller::spawn_with_env(binary, args, dsn, log, &[])
    }

    pub fn spawn_with_env(
        binary: &Path,
        args: &[String],
        dsn: &str,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Puller {
        let mut all = env.to_vec();
        all.push(("GUILDSTATS_DSN", dsn));
        Ingester::start(binary, args, log, &all)
    }
}

/// The names of the files a puller log says were fetched, in order, repeats included.
pub fn fetched(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" fetched file="))
        .filter_map(|l| l.split(" fetched file=").nth(1))
        .filter_map(|rest| rest.split(" bytes=").next())
        .map(str::to_string)
        .collect()
}

/// Polls `condition` until it holds; panics with `what` (and `context()`) after `timeout`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let until = Instant::now() + timeout;
    while !condition() {
        if Instant::now() > until {
            panic!("timed out waiting for {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How long a test waits for something that should take seconds.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// One test's world: the cluster with a fresh database and an ingest login, the real ET files,
/// an sshd with an empty remote directory, and a work directory for the spool and logs.
pub struct Setup {
    pub cluster: Cluster,
    pub fixtures: PathBuf,
    pub server: SshServer,
    pub db: TestDb,
    /// The puller's database login: a member of guildstats_ingest, nothing more.
    pub dsn: String,
    /// Spool and logs of this test.
    pub work: PathBuf,
}

pub fn setup(test: &str) -> Option<Setup> {
    let (cluster, fixtures) = cluster_and_fixtures(test)?;
    let server = SshServer::start(test)?;
    let db = TestDb::create(&cluster, test);
    let dsn = db.ingest_login("e2e_sftp_ingester");
    let work = std::env::temp_dir().join(format!("gs-e2e-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    Some(Setup {
        cluster,
        fixtures,
        server,
        db,
        dsn,
        work,
    })
}

impl Setup {
    /// Quick polls so that tests do not wait for the production defaults.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = self.server.puller_args();
        for a in [
            "--poll-ms",
            "300",
            "--settle-ms",
            "300",
            "--batch-ms",
            "100",
            "--heartbeat-secs",
            "1",
            "--spool",
        ] {
            args.push(a.into());
        }
        args.push(self.work.join("spool").display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn spawn(&self, log: &str, extra: &[&str]) -> Puller {
        Puller::spawn(&self.args(extra), &self.dsn, &self.work.join(log))
    }

    pub fn drop_fixtures(&self, names: &[String]) {
        for name in names {
            let content = std::fs::read(self.fixtures.join(name)).expect("fixture");
            self.server.drop_file(name, &content);
        }
    }

    /// Every stored file name with how many rows it has.
    pub fn stored(&self) -> BTreeMap<String, i64> {
        self.db
            .connect()
            .query(
                "SELECT file_name, count(*) FROM guildstats.raw_et_stats_files GROUP BY 1",
                &[],
            )
            .expect("stored files")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    pub fn wait_for_files(&self, n: usize, puller: &Puller) {
        wait_until(
            &format!("{n} files in raw_et_stats_files"),
            PATIENCE,
            || self.stored().len() >= n,
            || format!("stored {:?}\n{}", self.stored().len(), puller.log_text()),
        );
    }

    /// Once imported (the puller only inserts; the builders import), the rounds, players,
    /// weapons, matches and sessions are those the same files give when inserted directly, in
    /// a database of their own.
    pub fn assert_like_a_direct_import(&self, dir: &Path, names: &[String]) {
        let mut pulled = self.db.connect();
        import_pending(&mut pulled);
        let direct = TestDb::create(&self.cluster, "sftp_direct");
        let mut client = direct.connect();
        insert_files(&mut client, dir, names);
        import_pending(&mut client);
        assert_eq!(fingerprint(&mut pulled), fingerprint(&mut client));
    }

    pub fn assert_each_stored_once(&self, names: &[String]) {
        let stored = self.stored();
        let want: BTreeMap<String, i64> = names.iter().map(|n| (n.clone(), 1)).collect();
        assert_eq!(stored, want);
    }
}

/// How often each name occurs.
pub fn count_each(names: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for n in names {
        *counts.entry(n.clone()).or_insert(0) += 1;
    }
    counts
}
