//! Database and sink settings every ingester accepts, from flags or the environment.

use crate::sink::SinkOptions;
use crate::tls::SslMode;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct SinkArgs {
    /// libpq-style connection string or URL (falls back to DATABASE_URL). Better keep the
    /// password out of it and use --password-file.
    #[arg(long, env = "GUILDSTATS_DSN", hide_env_values = true)]
    pub dsn: Option<String>,
    /// TLS to the database, as libpq's sslmode: disable, prefer (the default), require, verify-ca
    /// or verify-full. Wins over sslmode in the DSN.
    #[arg(long, env = "GUILDSTATS_SSLMODE")]
    pub sslmode: Option<SslMode>,
    /// CA certificate file (PEM) the server's certificate must chain to, for verify-ca and
    /// verify-full (libpq's sslrootcert; default ~/.postgresql/root.crt). Wins over sslrootcert
    /// in the DSN.
    #[arg(long, env = "GUILDSTATS_SSLROOTCERT")]
    pub sslrootcert: Option<PathBuf>,
    /// File whose first line is the database password.
    #[arg(long, env = "GUILDSTATS_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// Local spool directory: rows are durable here before they are acknowledged, and wait here
    /// while the database is away. One directory per running ingester.
    #[arg(long, env = "GUILDSTATS_SPOOL", default_value = "guildstats-spool")]
    pub spool: PathBuf,
    /// Spool size in MiB beyond which the ingester waits for the database instead of reading
    /// more from its source.
    #[arg(long, env = "GUILDSTATS_SPOOL_MAX_MB", default_value_t = 1024)]
    pub spool_max_mb: u64,
    /// Most rows per database transaction. Larger batches amortise the round trips of a
    /// transaction; a batch never waits longer than --batch-ms to fill.
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// Longest a row waits for its batch, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub batch_ms: u64,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 30)]
    pub heartbeat_secs: u64,
}

impl SinkArgs {
    /// The sink options; the error never contains the DSN or the password.
    pub fn options(&self) -> Result<SinkOptions, String> {
        let dsn = match &self.dsn {
            Some(dsn) => dsn.clone(),
            None => std::env::var("DATABASE_URL").map_err(|_| {
                "no database: set --dsn, GUILDSTATS_DSN or DATABASE_URL".to_string()
            })?,
        };
        self.options_for(&dsn, self.password_file.as_deref())
    }

    /// The options of another login to the same database (the bot's commands use one): its own
    /// DSN and password file, this one's TLS overrides and batching.
    pub fn options_for(
        &self,
        dsn: &str,
        password_file: Option<&std::path::Path>,
    ) -> Result<SinkOptions, String> {
        let dsn = dsn.to_string();
        // Reported here, before anything starts, rather than at each reconnect.
        crate::tls::from_dsn(&dsn).map_err(|e| format!("the DSN's TLS settings: {e}"))?;
        let mut options = SinkOptions::new(dsn, &self.spool);
        if let Some(mode) = self.sslmode {
            options.tls.mode = mode;
        }
        if let Some(file) = &self.sslrootcert {
            options.tls.root_cert = Some(file.clone());
        }
        options.tls.connector()?;
        if let Some(file) = password_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the password file {}: {e}", file.display()))?;
            options.password = Some(text.lines().next().unwrap_or("").to_string());
        }
        options.max_batch = self.batch_size.max(1);
        options.max_delay = Duration::from_millis(self.batch_ms);
        options.max_spool_bytes = self.spool_max_mb.max(1) << 20;
        Ok(options)
    }

    pub fn heartbeat_every(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }
}
