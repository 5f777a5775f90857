//! The SFTP side: connect (host key first, then key authentication), list the stats
//! directory, read a file. Read-only by construction: nothing here opens a file for writing,
//! renames or removes. Blocking (ssh2), so it runs on the puller's own thread.

use crate::hostkey::{self, HostKeyPolicy};
use crate::secret::Secret;
use crate::settling::Listed;
use ssh2::{ErrorCode, Session, Sftp};
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: PathBuf,
    pub passphrase: Option<Secret>,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    pub dir: String,
    /// Bounds every network step, so a silent peer cannot hang the puller.
    pub timeout: Duration,
}

impl RemoteConfig {
    /// `user@host:dir`, for logs and as the default `source` of the rows.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.dir)
    }
}

/// Fatal errors need a person (wrong host key, refused key); the others (network, server
/// away) are retried with backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    Fatal(String),
    Transient(String),
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::Fatal(m) | RemoteError::Transient(m) => f.write_str(m),
        }
    }
}

pub struct Remote {
    // The SFTP channel borrows nothing, but the session must outlive it.
    sftp: Sftp,
    session: Session,
    dir: PathBuf,
    /// What the host-key check concluded, for --check and the log.
    pub host_key_note: String,
}

impl Remote {
    pub fn connect(config: &RemoteConfig) -> Result<Remote, RemoteError> {
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            RemoteError::Transient(format!("{what} {}:{}: {e}", config.host, config.port))
        };
        if !config.key.is_file() {
            return Err(RemoteError::Fatal(format!(
                "the private key {} does not exist or is not a file",
                config.key.display()
            )));
        }
        let address = (config.host.as_str(), config.port)
            .to_socket_addrs()
            .map_err(|e| transient("cannot resolve", &e))?
            .next()
            .ok_or_else(|| transient("no address for", &"empty answer"))?;
        let tcp = TcpStream::connect_timeout(&address, config.timeout)
            .map_err(|e| transient("cannot connect to", &e))?;
        let mut session = Session::new().map_err(|e| transient("cannot start SSH to", &e))?;
        session.set_timeout(config.timeout.as_millis().min(u32::MAX as u128) as u32);
        session.set_tcp_stream(tcp);
        let pinned = hostkey::pinned_key_types(&config.known_hosts, &config.host, config.port);
        hostkey::prefer_pinned_types(&session, &pinned)
            .map_err(|e| transient("cannot set host key preferences for", &e))?;
        session
            .handshake()
            .map_err(|e| transient("SSH handshake failed with", &e))?;
        let host_key_note = hostkey::verify(
            &session,
            &config.host,
            config.port,
            &config.known_hosts,
            config.host_key_policy,
        )
        .map_err(RemoteError::Fatal)?;
        let passphrase = config.passphrase.as_ref().map(Secret::expose);
        if let Err(e) = session.userauth_pubkey_file(&config.user, None, &config.key, passphrase) {
            let message = if e.code() == ErrorCode::Session(LIBSSH2_ERROR_FILE) {
                format!(
                    "cannot use the private key {} (a wrong or missing passphrase, or not a \
                     private key): {e}",
                    config.key.display()
                )
            } else {
                format!(
                    "{}@{}:{} refused the key {}: {e}",
                    config.user,
                    config.host,
                    config.port,
                    config.key.display()
                )
            };
            // A refused or unreadable key will not get better by retrying; a dropped
            // connection during authentication will.
            return Err(if is_connection_error(&e) {
                RemoteError::Transient(message)
            } else {
                RemoteError::Fatal(message)
            });
        }
        let sftp = session
            .sftp()
            .map_err(|e| transient("cannot open the SFTP subsystem on", &e))?;
        Ok(Remote {
            sftp,
            session,
            dir: PathBuf::from(&config.dir),
            host_key_note,
        })
    }

    /// The regular files of the stats directory.
    pub fn list(&self) -> Result<Vec<Listed>, RemoteError> {
        let entries = self.sftp.readdir(&self.dir).map_err(|e| {
            RemoteError::Transient(format!(
                "cannot list the remote directory {}: {e}",
                self.dir.display()
            ))
        })?;
        Ok(entries
            .into_iter()
            .filter(|(_, stat)| stat.is_file())
            .filter_map(|(path, stat)| {
                Some(Listed {
                    name: path.file_name()?.to_string_lossy().into_owned(),
                    size: stat.size.unwrap_or(0),
                    mtime: stat.mtime,
                })
            })
            .collect())
    }

    /// The whole file, or an error when it is longer than `limit` bytes.
    pub fn fetch(&self, name: &str, limit: u64) -> Result<Vec<u8>, RemoteError> {
        let path = self.dir.join(name);
        let failed = |e: &dyn std::fmt::Display| {
            RemoteError::Transient(format!("cannot read {}: {e}", path.display()))
        };
        let file = self.sftp.open(Path::new(&path)).map_err(|e| failed(&e))?;
        let mut content = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut content)
            .map_err(|e| failed(&e))?;
        Ok(content)
    }

    pub fn close(self) {
        let _ = self.session.disconnect(None, "bye", None);
    }
}

/// libssh2 could not read or decrypt the private key file.
const LIBSSH2_ERROR_FILE: i32 = -16;

fn is_connection_error(e: &ssh2::Error) -> bool {
    // LIBSSH2_ERROR_SOCKET_SEND/-RECV/-DISCONNECT/-TIMEOUT and a few others.
    matches!(
        e.code(),
        ErrorCode::Session(-7 | -9 | -13 | -43 | -30 | -37)
    )
}
