//! The server's host key, pinned in an OpenSSH known_hosts file: the one defence against
//! someone in the middle handing us forged stats files. Strict by default; a mismatch is
//! always an error that says what was offered, what was pinned and where.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use ssh2::{CheckResult, HashType, HostKeyType, KnownHostFileKind, MethodType, Session};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HostKeyPolicy {
    /// Only a key already in known_hosts is accepted.
    Strict,
    /// A host not in known_hosts yet is trusted once and its key appended; a changed key is
    /// still refused.
    AcceptNew,
}

/// How the host is written in known_hosts (OpenSSH's form: a bare name on port 22).
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The key types pinned for this host in plain (not hashed) known_hosts lines, read from
/// the key blobs themselves. Before the handshake, so that the server is asked for a key
/// of a pinned type: otherwise libssh2 takes its own favourite type and a host pinned with
/// another type would look like a changed key.
pub fn pinned_key_types(known_hosts: &Path, host: &str, port: u16) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(known_hosts) else {
        return Vec::new();
    };
    let wanted = known_hosts_name(host, port);
    let mut types = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_), Some(blob)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if hosts.starts_with('#') || !hosts.split(',').any(|h| h == wanted) {
            continue;
        }
        if let Some(kind) = STANDARD.decode(blob).ok().and_then(|b| blob_key_type(&b)) {
            if !types.contains(&kind) {
                types.push(kind);
            }
        }
    }
    types
}

/// An SSH public key blob starts with its type name as an SSH string.
fn blob_key_type(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    String::from_utf8(blob.get(4..4 + len)?.to_vec()).ok()
}

/// Puts the host-key algorithms of the pinned types first in the session's preferences.
pub fn prefer_pinned_types(session: &Session, pinned: &[String]) -> Result<(), ssh2::Error> {
    if pinned.is_empty() {
        return Ok(());
    }
    let supported = session.supported_algs(MethodType::HostKey)?;
    let mut order: Vec<&str> = Vec::new();
    for kind in pinned {
        // An RSA key signs with rsa-sha2-512/256 too; they share the key type ssh-rsa.
        let algorithms: Vec<&str> = if kind == "ssh-rsa" {
            vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        } else {
            vec![kind.as_str()]
        };
        for a in algorithms {
            if supported.contains(&a) && !order.contains(&a) {
                order.push(a);
            }
        }
    }
    for a in supported {
        if !order.contains(&a) {
            order.push(a);
        }
    }
    session.method_pref(MethodType::HostKey, &order.join(","))
}

/// `ssh-ed25519 SHA256:...`, as `ssh-keygen -lf` shows it, for messages.
pub fn describe_host_key(session: &Session) -> String {
    let kind = session
        .host_key()
        .map(|(_, t)| key_type_name(t))
        .unwrap_or("unknown");
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|h| format!("SHA256:{}", STANDARD_NO_PAD.encode(h)))
        .unwrap_or_else(|| "(no fingerprint)".into());
    format!("{kind} {fingerprint}")
}

fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// Checks the key the server presented during the handshake. `Ok` carries a line for the
/// log ("matches" or "added").
pub fn verify(
    session: &Session,
    host: &str,
    port: u16,
    known_hosts: &Path,
    policy: HostKeyPolicy,
) -> Result<String, String> {
    let name = known_hosts_name(host, port);
    let offered = describe_host_key(session);
    let (key, key_type) = session
        .host_key()
        .ok_or_else(|| format!("{name} presented no host key"))?;
    let mut known = session
        .known_hosts()
        .map_err(|e| format!("cannot set up the known_hosts check: {e}"))?;
    let exists = known_hosts.exists();
    if exists {
        known
            .read_file(known_hosts, KnownHostFileKind::OpenSSH)
            .map_err(|e| format!("cannot read known_hosts {}: {e}", known_hosts.display()))?;
    } else if policy == HostKeyPolicy::Strict {
        return Err(format!(
            "known_hosts {} does not exist; pin the server's key first, after checking its \
             fingerprint ({offered}): ssh-keyscan -p {port} {host} >> {}",
            known_hosts.display(),
            known_hosts.display()
        ));
    }
    match known.check_port(host, port, key) {
        CheckResult::Match => Ok(format!(
            "host key {offered} matches {}",
            known_hosts.display()
        )),
        CheckResult::Mismatch => Err(format!(
            "HOST KEY MISMATCH for {name}: the server presented {offered}, which is not the key \
             pinned for it in {}. Someone may be intercepting the connection, or the server's \
             key was changed. Nothing was downloaded. If the change is expected, remove the \
             old line (ssh-keygen -R '{name}' -f {}) and pin the new key after checking its \
             fingerprint.",
            known_hosts.display(),
            known_hosts.display()
        )),
        CheckResult::NotFound if policy == HostKeyPolicy::AcceptNew => {
            known
                .add(&name, key, "added by guildstats-sftp", key_type.into())
                .map_err(|e| format!("cannot add {name} to known_hosts: {e}"))?;
            known
                .write_file(known_hosts, KnownHostFileKind::OpenSSH)
                .map_err(|e| format!("cannot write known_hosts {}: {e}", known_hosts.display()))?;
            Ok(format!(
                "host key {offered} was not known; added to {} (--host-key-policy accept-new)",
                known_hosts.display()
            ))
        }
        CheckResult::NotFound => Err(format!(
            "the host key of {name} ({offered}) is not in known_hosts {}; pin it after checking \
             the fingerprint (ssh-keyscan -p {port} {host} >> {}), or run once with \
             --host-key-policy accept-new",
            known_hosts.display(),
            known_hosts.display()
        )),
        CheckResult::Failure => Err(format!(
            "cannot check the host key of {name} against {}",
            known_hosts.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_pinned_types() {
        assert_eq!(known_hosts_name("h", 22), "h");
        assert_eq!(known_hosts_name("127.0.0.1", 2301), "[127.0.0.1]:2301");
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("known_hosts");
        let blob = |t: &str| {
            let mut b = (t.len() as u32).to_be_bytes().to_vec();
            b.extend_from_slice(t.as_bytes());
            b.extend_from_slice(&[0, 0, 0, 1, 7]);
            STANDARD.encode(b)
        };
        std::fs::write(
            &file,
            format!(
                "# comment\n[127.0.0.1]:2301 ssh-ed25519 {}\nother,[127.0.0.1]:2301 ssh-rsa {}\n\
                 [127.0.0.1]:2302 ecdsa-sha2-nistp256 {}\n|1|hashed= ssh-rsa {}\n",
                blob("ssh-ed25519"),
                blob("ssh-rsa"),
                blob("ecdsa-sha2-nistp256"),
                blob("ssh-rsa")
            ),
        )
        .expect("write");
        assert_eq!(
            pinned_key_types(&file, "127.0.0.1", 2301),
            vec!["ssh-ed25519".to_string(), "ssh-rsa".to_string()]
        );
        assert!(pinned_key_types(&file, "127.0.0.1", 22).is_empty());
        assert!(pinned_key_types(&dir.path().join("none"), "h", 22).is_empty());
    }
}
