//! TLS to PostgreSQL with libpq's `sslmode` meanings, for every connection an ingester makes.
//!
//! - `disable`: never TLS.
//! - `prefer` (the default, as in libpq): TLS when the server offers it, unverified.
//! - `require`: TLS or no connection; unverified, unless a CA file is given, when it verifies the
//!   chain as `verify-ca` does (libpq does the same with a root certificate).
//! - `verify-ca`: TLS, and the server certificate must chain to the CA file.
//! - `verify-full`: as `verify-ca`, and the certificate must name the host connected to.
//!
//! As in libpq, Unix-domain sockets never use TLS, whatever the mode.

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<SslMode, String> {
        <SslMode as clap::ValueEnum>::from_str(s, false).map_err(|_| {
            format!("sslmode {s:?} is not one of disable, prefer, require, verify-ca, verify-full")
        })
    }
}

/// The TLS half of the connection settings. No secrets in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// PEM file of the CA(s) the server certificate must chain to (libpq's `sslrootcert`).
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// The mode in force: `require` with a CA file verifies the chain, as libpq does.
    pub fn effective_mode(&self) -> SslMode {
        match (self.mode, &self.root_cert) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        }
    }

    fn verifies(&self) -> bool {
        matches!(
            self.effective_mode(),
            SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    /// The CA file to verify against: the one given, else libpq's default place.
    fn ca_file(&self) -> Result<PathBuf, String> {
        if let Some(file) = &self.root_cert {
            return Ok(file.clone());
        }
        let default = std::env::var_os("HOME")
            .map(|home| Path::new(&home).join(".postgresql/root.crt"))
            .filter(|p| p.exists());
        default.ok_or_else(|| {
            format!(
                "sslmode={} needs the CA certificate that signed the server's: set --sslrootcert \
                 (GUILDSTATS_SSLROOTCERT) or sslrootcert in the DSN",
                self.mode
            )
        })
    }

    /// The connector for this mode; fails when the CA file is missing or unreadable.
    pub fn connector(&self) -> Result<MakeTlsConnector, String> {
        let mut builder = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        if self.verifies() {
            let ca = self.ca_file()?;
            builder.set_ca_file(&ca).map_err(|e| {
                format!(
                    "cannot use {} as the CA certificate (sslrootcert): {e}",
                    ca.display()
                )
            })?;
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let check_name = self.effective_mode() == SslMode::VerifyFull;
        let mut connector = MakeTlsConnector::new(builder.build());
        connector.set_callback(move |config, _host| {
            config.set_verify_hostname(check_name);
            Ok(())
        });
        Ok(connector)
    }

    /// Sets the connection's mode. tokio-postgres knows only disable, prefer and require: the
    /// verification itself is the connector's.
    pub fn apply(&self, config: &mut tokio_postgres::Config) {
        use tokio_postgres::config::{Host, SslMode as Wire};
        let unix_only = !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|h| matches!(h, Host::Unix(_)));
        config.ssl_mode(match self.effective_mode() {
            _ if unix_only => Wire::Disable,
            SslMode::Disable => Wire::Disable,
            SslMode::Prefer => Wire::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Wire::Require,
        });
    }

    /// One line for `--check` and the logs: what was asked for and what it guarantees.
    pub fn describe(&self) -> String {
        let ca = || {
            self.ca_file()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| e)
        };
        match self.effective_mode() {
            SslMode::Disable => "sslmode=disable: never encrypted".to_string(),
            SslMode::Prefer => {
                "sslmode=prefer: encrypted when the server offers it, server not verified"
                    .to_string()
            }
            SslMode::Require => "sslmode=require: encrypted, server not verified".to_string(),
            SslMode::VerifyCa => format!(
                "sslmode={}: encrypted, certificate verified against {} (host name not checked)",
                self.mode,
                ca()
            ),
            SslMode::VerifyFull => format!(
                "sslmode=verify-full: encrypted, certificate verified against {} and for the host name",
                ca()
            ),
        }
    }
}

/// libpq's TLS keywords found in a DSN, and the DSN without them (tokio-postgres refuses
/// `verify-ca`, `verify-full` and `sslrootcert`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DsnTls {
    pub rest: String,
    pub mode: Option<String>,
    pub root_cert: Option<String>,
}

/// The DSN without its TLS keywords, and the settings they give.
pub fn from_dsn(dsn: &str) -> Result<(String, TlsSettings), String> {
    let split = split_dsn(dsn)?;
    let mode = match &split.mode {
        Some(mode) => mode.parse()?,
        None => SslMode::default(),
    };
    let settings = TlsSettings {
        mode,
        root_cert: split.root_cert.map(PathBuf::from),
    };
    Ok((split.rest, settings))
}

/// Splits `sslmode` and `sslrootcert` out of a key=value DSN or a postgres:// URL.
pub fn split_dsn(dsn: &str) -> Result<DsnTls, String> {
    let trimmed = dsn.trim_start();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        return Ok(split_url(dsn));
    }
    split_keywords(dsn)
}

fn split_url(dsn: &str) -> DsnTls {
    let Some((base, query)) = dsn.split_once('?') else {
        return DsnTls {
            rest: dsn.to_string(),
            ..DsnTls::default()
        };
    };
    let mut found = DsnTls::default();
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => found.mode = Some(percent_decode(value)),
            "sslrootcert" => found.root_cert = Some(percent_decode(value)),
            _ => kept.push(pair),
        }
    }
    found.rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    found
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key = value` pairs, values bare or single-quoted with backslash escapes, as libpq reads them.
fn split_keywords(dsn: &str) -> Result<DsnTls, String> {
    let mut found = DsnTls::default();
    let mut kept: Vec<&str> = Vec::new();
    let mut chars = dsn.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key_end = start;
        while let Some((i, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key_end = i + c.len_utf8();
        }
        let key = &dsn[start..key_end];
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(format!("the DSN has {key:?} without a value"));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let mut end = chars.peek().map_or(dsn.len(), |&(i, _)| i);
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            let mut closed = false;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '\'' => {
                        closed = true;
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!(
                    "the DSN's value of {key:?} lacks its closing quote"
                ));
            }
        } else {
            while let Some((i, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                value.push(c);
                end = i + c.len_utf8();
            }
        }
        match key {
            "sslmode" => found.mode = Some(value),
            "sslrootcert" => found.root_cert = Some(value),
            _ => kept.push(&dsn[start..end]),
        }
    }
    found.rest = kept.join(" ");
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_keywords_leave_a_key_value_dsn_and_the_rest_stays_as_written() {
        let split = split_dsn(
            "host=db.example port = 5432 sslmode=verify-full password='a b\\'c' sslrootcert = '/etc/my ca.pem'",
        )
        .unwrap();
        assert_eq!(split.mode.as_deref(), Some("verify-full"));
        assert_eq!(split.root_cert.as_deref(), Some("/etc/my ca.pem"));
        assert_eq!(split.rest, "host=db.example port = 5432 password='a b\\'c'");
        let parsed: tokio_postgres::Config = split.rest.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"a b'c"[..]));
        assert!(split_dsn("host=x sslmode='verify-ca").is_err());
        assert!(split_dsn("host").is_err());
    }

    #[test]
    fn tls_keywords_leave_a_url() {
        let split = split_dsn(
            "postgres://u@db:5432/gs?sslmode=verify-ca&application_name=x&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        assert_eq!(split.mode.as_deref(), Some("verify-ca"));
        assert_eq!(split.root_cert.as_deref(), Some("/ca.pem"));
        assert_eq!(split.rest, "postgres://u@db:5432/gs?application_name=x");
        let plain = split_dsn("postgresql://db/gs?sslmode=require").unwrap();
        assert_eq!(plain.rest, "postgresql://db/gs");
        assert_eq!(split_dsn("postgres://db/gs").unwrap().mode, None);
    }

    #[test]
    fn modes_parse_and_require_with_a_ca_verifies() {
        assert_eq!(
            "verify-full".parse::<SslMode>().unwrap(),
            SslMode::VerifyFull
        );
        assert!("allow"
            .parse::<SslMode>()
            .unwrap_err()
            .contains("not one of"));
        let with_ca = TlsSettings {
            mode: SslMode::Require,
            root_cert: Some("/ca.pem".into()),
        };
        assert_eq!(with_ca.effective_mode(), SslMode::VerifyCa);
        assert_eq!(TlsSettings::default().effective_mode(), SslMode::Prefer);
    }

    #[test]
    fn a_unix_socket_never_asks_for_tls_and_a_missing_ca_file_is_named() {
        let strict = TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        };
        let mut socket: tokio_postgres::Config = "host=/run/postgresql".parse().unwrap();
        strict.apply(&mut socket);
        assert_eq!(
            socket.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        let mut tcp: tokio_postgres::Config = "host=db.example".parse().unwrap();
        strict.apply(&mut tcp);
        assert_eq!(tcp.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        let err = strict.connector().err().unwrap();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
