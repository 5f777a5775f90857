//! What the ingester tests share: the game-server peers and the real ingester binaries run as
//! processes (so that a kill -9 is a real one).

use crate::{repo_root, run_ok, skip_or_fail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
