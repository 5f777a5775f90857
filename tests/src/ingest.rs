//! What the ingester tests share: the game-server peers and the real ingester binaries run as
//! processes (so that a kill -9 is a real one).

use crate::{repo_root, run_ok, skip_or_fail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
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
    // Bounded: a peer that never says it is bound fails the test instead of blocking it.
    let stdout = child.stdout.take().expect("stdout");
    let (said, bound) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = said.send(line);
        // Drained until the peer ends, so that it never writes into a closed pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let peer = Peer(child);
    match bound.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if !line.is_empty() => Some((peer, port)),
        _ => panic!("{tool} on port {port} did not say it was bound within 60 s"),
    }
}

/// An ingester binary of this workspace, built once per test process (cargo builds only what
/// changed), so a test never runs a stale binary.
pub fn ingester_binary(package: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run_ok(
            Command::new(cargo)
                .current_dir(repo_root())
                .args(["build", "-q", "--locked", "-p", package, "--bin", package]),
        );
        built.push(package.to_string());
    }
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"))
        .join("debug")
        .join(package)
}

/// A running ingester process whose output goes to a log file the test reads.
pub struct Ingester {
    child: Child,
    pub log: PathBuf,
}

impl Ingester {
    /// Starts `binary` with `args` and extra environment `env`, logging at info level.
    pub fn start(binary: &Path, args: &[String], log: &Path, env: &[(&str, &str)]) -> Ingester {
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
            .envs(env.iter().copied())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Ingester {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// SIGTERM, as systemd and docker stop it, and the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("the ingester ignored SIGTERM:\n{}", self.log_text()))
    }

    /// Fails the test with the log when the process has exited on its own.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the ingester exited ({status}); log:\n{}", self.log_text());
        }
    }

    /// SIGKILL: a crash, no cleanup at all.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        self.kill9();
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
