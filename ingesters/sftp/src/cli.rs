//! Flags, each with an environment fallback. Secrets (key passphrase, database password) come
//! from the environment or a file, never from a flag value that `ps` would show.

use crate::hostkey::HostKeyPolicy;
use crate::name_filter::NameFilter;
use crate::pull::PullSettings;
use crate::remote::RemoteConfig;
use crate::secret::Secret;
use clap::Parser;
use guildstats_ingest::config::SinkArgs;
use std::path::PathBuf;
use std::time::Duration;

/// The key passphrase, when it comes straight from the environment.
pub const PASSPHRASE_ENV: &str = "GUILDSTATS_SFTP_KEY_PASSPHRASE";

#[derive(Parser)]
#[command(
    version,
    about = "Pulls ET:Legacy stats files over SFTP into guildstats (read-only on the server)",
    // A flag given twice takes the last value, so a wrapper script's defaults can be overridden.
    args_override_self = true
)]
pub struct Args {
    /// SSH server of the game server.
    #[arg(long, env = "GUILDSTATS_SFTP_HOST")]
    pub host: Option<String>,
    #[arg(long, env = "GUILDSTATS_SFTP_PORT", default_value_t = 22)]
    pub port: u16,
    /// Remote user.
    #[arg(long, env = "GUILDSTATS_SFTP_USER")]
    pub user: Option<String>,
    /// Private key file (OpenSSH format). Its passphrase, if any: GUILDSTATS_SFTP_KEY_PASSPHRASE
    /// or --key-passphrase-file.
    #[arg(long, env = "GUILDSTATS_SFTP_KEY")]
    pub key: Option<PathBuf>,
    /// File whose first line is the key's passphrase.
    #[arg(long, env = "GUILDSTATS_SFTP_KEY_PASSPHRASE_FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// OpenSSH known_hosts file holding the server's pinned host key
    /// [default: ~/.ssh/known_hosts].
    #[arg(long, env = "GUILDSTATS_SFTP_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
    /// What to do with a server whose key is not in known_hosts. A changed key is always
    /// refused.
    #[arg(long, env = "GUILDSTATS_SFTP_HOST_KEY_POLICY", value_enum, default_value_t = HostKeyPolicy::Strict)]
    pub host_key_policy: HostKeyPolicy,
    /// Directory on the server where the stats files appear (e.g. .etlegacy/legacy/gamestats).
    #[arg(long, env = "GUILDSTATS_SFTP_DIR")]
    pub remote_dir: Option<String>,
    /// Which file names are taken (shell pattern: * and ?).
    #[arg(long, env = "GUILDSTATS_SFTP_INCLUDE", default_value = "*.txt")]
    pub include: String,
    /// Milliseconds between listings of the remote directory.
    #[arg(long, env = "GUILDSTATS_SFTP_POLL_MS", default_value_t = 2000)]
    pub poll_ms: u64,
    /// Milliseconds before a second look at a new or growing file (it is taken once two
    /// listings agree on its size and time).
    #[arg(long, env = "GUILDSTATS_SFTP_SETTLE_MS", default_value_t = 1000)]
    pub settle_ms: u64,
    /// Seconds any single network step may take before the connection is dropped and retried.
    #[arg(long, default_value_t = 20)]
    pub timeout_secs: u64,
    /// Files larger than this are not stats files: reported, never taken.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_file_bytes: u64,
    /// The rows' `source` [default: user@host:remote-dir, or the backfill directory]. Keep it
    /// stable: the puller resumes from the names stored under it.
    #[arg(long, env = "GUILDSTATS_SFTP_SOURCE")]
    pub source: Option<String>,
    /// Import the stats files of a local directory (old files), then exit.
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    pub backfill: Option<PathBuf>,
    /// Test the database and the SFTP server (host key included), say what would be done, exit.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub sink: SinkArgs,
}

impl Args {
    pub fn remote_config(&self) -> Result<RemoteConfig, String> {
        let missing = |what: &str, env: &str| format!("missing --{what} (or {env})");
        let passphrase = match (&self.key_passphrase_file, std::env::var(PASSPHRASE_ENV)) {
            (Some(file), _) => Some(Secret::from_file(file)?),
            (None, Ok(value)) => Some(Secret::new(value)),
            (None, Err(_)) => None,
        };
        let known_hosts = match &self.known_hosts {
            Some(path) => path.clone(),
            None => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".ssh/known_hosts"))
                .ok_or("no --known-hosts and no HOME to find ~/.ssh/known_hosts")?,
        };
        Ok(RemoteConfig {
            host: self
                .host
                .clone()
                .ok_or_else(|| missing("host", "GUILDSTATS_SFTP_HOST"))?,
            port: self.port,
            user: self
                .user
                .clone()
                .ok_or_else(|| missing("user", "GUILDSTATS_SFTP_USER"))?,
            key: self
                .key
                .clone()
                .ok_or_else(|| missing("key", "GUILDSTATS_SFTP_KEY"))?,
            passphrase,
            known_hosts,
            host_key_policy: self.host_key_policy,
            dir: self
                .remote_dir
                .clone()
                .ok_or_else(|| missing("remote-dir", "GUILDSTATS_SFTP_DIR"))?,
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
        })
    }

    pub fn pull_settings(&self) -> Result<PullSettings, String> {
        let remote = self.remote_config()?;
        Ok(PullSettings {
            source: self.source.clone().unwrap_or_else(|| remote.describe()),
            remote,
            filter: self.filter(),
            poll: Duration::from_millis(self.poll_ms.max(100)),
            settle: Duration::from_millis(self.settle_ms.max(100)),
            max_file_bytes: self.max_file_bytes,
        })
    }

    pub fn filter(&self) -> NameFilter {
        NameFilter::new(&self.include)
    }

    /// The backfill's source: the flag, else the same source the puller would use (so the
    /// puller later skips what the backfill stored), else the local directory.
    pub fn backfill_source(&self, dir: &std::path::Path) -> String {
        if let Some(source) = &self.source {
            return source.clone();
        }
        match self.remote_config() {
            Ok(remote) => remote.describe(),
            Err(_) => {
                let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
                format!("local:{}", dir.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_the_settings() {
        let args = Args::try_parse_from([
            "guildstats-sftp",
            "--host",
            "et.example.org",
            "--user",
            "et",
            "--key",
            "/k",
            "--known-hosts",
            "/kh",
            "--remote-dir",
            "legacy/gamestats",
            "--dsn",
            "host=/tmp",
        ])
        .expect("parse");
        let settings = args.pull_settings().expect("settings");
        assert_eq!(settings.source, "et@et.example.org:legacy/gamestats");
        assert_eq!(settings.remote.port, 22);
        assert_eq!(settings.remote.host_key_policy, HostKeyPolicy::Strict);
        assert_eq!(settings.poll, Duration::from_secs(2));
        assert!(settings
            .filter
            .matches("2025-01-01-120000-supply-round-1.txt"));
        assert_eq!(
            args.backfill_source(std::path::Path::new("/old")),
            "et@et.example.org:legacy/gamestats"
        );
    }

    #[test]
    fn a_missing_setting_is_named() {
        let args = Args::try_parse_from(["guildstats-sftp", "--host", "h"]).expect("parse");
        let err = args.remote_config().expect_err("incomplete");
        assert!(err.contains("--user"), "{err}");
        assert!(args
            .backfill_source(std::path::Path::new("/nonexistent/old"))
            .starts_with("local:/nonexistent/old"));
    }
}
