//! What is already stored: the file names in raw_et_stats_files for this source, so that a
//! restarted puller resumes instead of downloading everything again. The ingest role may read
//! exactly these two columns (sql/ops/roles.sql), never the contents.

use crate::stop::Stop;
use guildstats_ingest::backoff::Backoff;
use guildstats_ingest::SinkOptions;
use std::collections::HashSet;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

pub async fn connect(options: &SinkOptions) -> Result<Client, String> {
    guildstats_ingest::sink::connect(options)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))
}

pub use guildstats_ingest::sink::error_text;

#[derive(Debug)]
pub enum LedgerError {
    /// A person has to act (missing grant, no extension): retrying will not help.
    Setup(String),
    Unreachable(String),
}

pub async fn stored_names(
    options: &SinkOptions,
    source: &str,
) -> Result<HashSet<String>, LedgerError> {
    let client = connect(options).await.map_err(LedgerError::Unreachable)?;
    let rows = client
        .query(
            "SELECT file_name FROM guildstats.raw_et_stats_files WHERE source = $1",
            &[&source],
        )
        .await
        .map_err(|e| {
            let text = error_text(&e);
            match e.code() {
                Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => LedgerError::Setup(format!(
                    "the database role may not read raw_et_stats_files (file_name, source): \
                     {text}; run sql/ops/roles.sql again (it grants guildstats_ingest exactly that)"
                )),
                Some(c)
                    if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME =>
                {
                    LedgerError::Setup(format!(
                        "the guildstats extension is not installed in this database: {text}"
                    ))
                }
                _ => LedgerError::Unreachable(format!("cannot read the stored file names: {text}")),
            }
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Retries until the database answers; `Ok(None)` when a stop came first.
pub async fn stored_names_patiently(
    options: &SinkOptions,
    source: &str,
    stop: &Stop,
) -> Result<Option<HashSet<String>>, String> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        match stored_names(options, source).await {
            Ok(names) => return Ok(Some(names)),
            Err(LedgerError::Setup(why)) => return Err(why),
            Err(LedgerError::Unreachable(why)) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %why, ?delay, "cannot learn what is already stored; retrying");
                let until = tokio::time::Instant::now() + delay;
                while tokio::time::Instant::now() < until {
                    if stop.requested() {
                        return Ok(None);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}
