//! What the ingester tests share: an INSERT-only login, the game-server peers, the real ingester
//! binaries run as processes (so that a kill -9 is a real one), and stopping the cluster.

use crate::{apply_roles_script, login_role, repo_root, run_ok, skip_or_fail, Cluster, TestDb};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Makes `login` a LOGIN role with only the guildstats_ingest rights, so that every ingester test
/// also proves INSERT on the raw tables is all an ingester needs.
pub fn ingest_login(cluster: &Cluster, db: &TestDb, login: &str) {
    apply_roles_script(cluster, db);
    login_role(cluster, login, "guildstats_ingest");
}

/// A child process killed when the test ends, passed or not.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One of ../shared/tools' UDP game servers on a free loopback port, once it says it is bound.
pub fn udp_peer(test: &str, tool: &str, args: &[&str]) -> Option<(Peer, u16)> {
    let path = std::env::var("GUILDSTATS_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("../shared"))
        .join("tools")
        .join(tool);
    if !path.exists() {
        skip_or_fail(test, &format!("{} is missing", path.display()));
        return None;
    }
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new("python3")
        .arg(&path)
        .args(["--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("fixture output");
    Some((Peer(child), port))
}

/// Stops (`pg_ctl stop -m fast`) or starts the test cluster. Only for tests alone in their file:
/// every other test of the file would fail meanwhile. `None` (after saying why) when this
/// cluster is not ours to stop.
pub fn cluster_data_dir(test: &str, cluster: &Cluster) -> Option<PathBuf> {
    let data = PathBuf::from(&cluster.host).join("data");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n");
    if !data.join("postmaster.pid").exists() || !matches!(root, Ok(true)) {
        // Not a peer that is missing: this cluster is simply not ours to stop.
        eprintln!("SKIP {test}: needs root and the cluster's data dir");
        return None;
    }
    Some(data)
}

pub fn pg_ctl(cluster: &Cluster, data: &Path, action: &str) {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"])
        .arg(cluster.bin_dir.join("pg_ctl"))
        .arg("-D")
        .arg(data)
        .args(["-m", "fast", "-w", action]);
    if action == "start" {
        cmd.arg("-l").arg(data.join("../postgres.log"));
    }
    run_ok(&mut cmd);
}

/// An ingester binary of this workspace, built by `scripts/test` before the end-to-end tests
/// (`cargo build --bins`). Looked up beside this test executable, so any target dir works.
pub fn ingester_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is not built: run `cargo build --bins` first (scripts/test does)",
        binary.display()
    );
    binary
}

/// A running ingester whose log goes to a file the test reads.
pub struct Ingester {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Ingester {
    pub fn start(binary: &Path, args: &[String], log: &Path) -> Ingester {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(binary)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Ingester {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// The log so far, without terminal colour codes.
    pub fn log_text(&self) -> String {
        without_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Waits until `count` log lines contain `marker`.
    pub fn wait_for_lines(&self, marker: &str, count: usize, limit: Duration) {
        let start = Instant::now();
        while self.log_text().matches(marker).count() < count {
            assert!(
                start.elapsed() < limit,
                "fewer than {count} {marker:?} lines after {limit:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
            let status = child.wait().expect("wait");
            assert!(
                status.success(),
                "the ingester exited with {status}:\n{}",
                self.log_text()
            );
        }
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Values of `field=value` in log lines containing `marker`, in log order.
pub fn logged_values(log: &str, marker: &str, field: &str) -> Vec<String> {
    let key = format!("{field}=");
    log.lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| {
            let at = l.find(&key)? + key.len();
            Some(
                l[at..]
                    .split_whitespace()
                    .next()?
                    .trim_matches('"')
                    .to_string(),
            )
        })
        .collect()
}

fn without_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
