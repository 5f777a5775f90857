//! The sink: accepts raw rows for any raw table, spools them durably, batches them and writes each
//! batch in one transaction with idempotent multi-row inserts, reconnecting with backoff.
//!
//! Flow: `SinkHandle::send` appends to the spool (fsync) and then queues the row on a bounded
//! channel, which is the backpressure: while the database is away the writer stops draining the
//! channel and senders wait instead of growing memory. The spool is truncated once every row it
//! holds is committed, and replayed on start.

use crate::backoff::Backoff;
use crate::row::{batch_insert_sql, Row};
use crate::spool::Spool;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

/// How the sink connects and batches. No `Debug`: the password must never reach a log.
#[derive(Clone)]
pub struct SinkOptions {
    pub dsn: String,
    pub password: Option<String>,
    pub spool_path: PathBuf,
    /// A batch is written when it holds this many rows...
    pub max_batch: usize,
    /// ...or when its oldest row has waited this long.
    pub max_delay: Duration,
    /// Rows queued in memory before senders wait.
    pub queue: usize,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl SinkOptions {
    pub fn new(dsn: impl Into<String>, spool_path: impl Into<PathBuf>) -> SinkOptions {
        SinkOptions {
            dsn: dsn.into(),
            password: None,
            spool_path: spool_path.into(),
            max_batch: 500,
            max_delay: Duration::from_secs(1),
            queue: 2000,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// What every producer holds (cheap to clone).
#[derive(Clone)]
pub struct SinkHandle {
    tx: mpsc::Sender<Row>,
    spool: Arc<Mutex<Spool>>,
}

#[derive(Debug)]
pub enum SendError {
    Invalid(String),
    Spool(io::Error),
    Closed,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Invalid(why) => write!(f, "invalid row: {why}"),
            SendError::Spool(e) => write!(f, "cannot write the spool: {e}"),
            SendError::Closed => write!(f, "the sink is shut down"),
        }
    }
}

impl std::error::Error for SendError {}

impl SinkHandle {
    /// Returns once the row is durable in the spool and queued for the database.
    pub async fn send(&self, row: Row) -> Result<(), SendError> {
        self.send_all(vec![row]).await
    }

    /// Several rows with one fsync.
    pub async fn send_all(&self, rows: Vec<Row>) -> Result<(), SendError> {
        for row in &rows {
            row.validate().map_err(SendError::Invalid)?;
        }
        if self.tx.is_closed() {
            return Err(SendError::Closed);
        }
        {
            let mut spool = self.spool.lock().unwrap_or_else(|p| p.into_inner());
            spool.append(&rows).map_err(SendError::Spool)?;
        }
        for row in rows {
            self.tx.send(row).await.map_err(|_| SendError::Closed)?;
        }
        Ok(())
    }
}

pub struct Sink {
    handle: SinkHandle,
    shutdown: watch::Sender<bool>,
    writer: JoinHandle<()>,
}

impl Sink {
    /// Opens the spool, queues what a previous run left in it, and starts the writer.
    pub fn start(options: SinkOptions) -> io::Result<Sink> {
        let (spool, replay) = Spool::open(&options.spool_path)?;
        if !replay.is_empty() {
            tracing::info!(rows = replay.len(), "replaying the spool");
        }
        let spool = Arc::new(Mutex::new(spool));
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let writer = Writer {
            options,
            spool: spool.clone(),
            client: None,
            rejected_path: None,
        };
        let writer = tokio::spawn(writer.run(rx, replay.into(), shutdown_rx));
        Ok(Sink {
            handle: SinkHandle { tx, spool },
            shutdown,
            writer,
        })
    }

    pub fn handle(&self) -> SinkHandle {
        self.handle.clone()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Graceful stop: the writer drains the queue and writes it. Rows it cannot write (database
    /// still away) stay in the spool for the next start.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.writer.await;
    }

    /// A crash stand-in for tests: stop at once, without flushing.
    pub async fn abort(self) {
        self.writer.abort();
        let _ = self.writer.await;
    }
}

struct Writer {
    options: SinkOptions,
    spool: Arc<Mutex<Spool>>,
    client: Option<Client>,
    rejected_path: Option<PathBuf>,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Row>,
        mut backlog: VecDeque<Row>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let max = self.options.max_batch.max(1);
        let mut batch: Vec<Row> = Vec::new();
        let mut deadline: Option<Instant> = None;
        let mut stopping = false;
        loop {
            while batch.len() < max {
                match backlog.pop_front() {
                    Some(row) => batch.push(row),
                    None => break,
                }
            }
            if stopping {
                while let Ok(row) = rx.try_recv() {
                    batch.push(row);
                }
                for chunk in batch.chunks(max) {
                    if !self.flush(chunk, true).await {
                        tracing::warn!("database unreachable at shutdown; rows stay in the spool");
                        return;
                    }
                }
                return;
            }
            let due = deadline.is_some_and(|d| Instant::now() >= d);
            if batch.len() >= max || (due && !batch.is_empty()) {
                self.flush(&batch, false).await;
                batch.clear();
                deadline = None;
                continue;
            }
            if !batch.is_empty() && deadline.is_none() {
                deadline = Some(Instant::now() + self.options.max_delay);
            }
            let sleep_until =
                deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                row = rx.recv() => match row {
                    Some(row) => {
                        batch.push(row);
                        if deadline.is_none() {
                            deadline = Some(Instant::now() + self.options.max_delay);
                        }
                    }
                    None => stopping = true,
                },
                _ = tokio::time::sleep_until(sleep_until) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        stopping = true;
                    }
                }
            }
        }
    }

    /// Writes one batch, retrying with backoff until it is committed. At shutdown it gives up
    /// after a few attempts (returns false): the spool keeps the rows.
    async fn flush(&mut self, batch: &[Row], stopping: bool) -> bool {
        if batch.is_empty() {
            return true;
        }
        let mut backoff = Backoff::new(self.options.backoff_initial, self.options.backoff_max);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            if stopping && attempts > 4 {
                return false;
            }
            let client = match self.connected().await {
                Ok(client) => client,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "cannot connect to the database; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            match write_batch(client, batch).await {
                Ok(()) => {
                    self.committed(batch.len());
                    tracing::debug!(rows = batch.len(), "batch committed");
                    return true;
                }
                Err(e) if e.code().is_some() && !client.is_closed() => {
                    // The database refused the data itself (not the connection): retrying the
                    // same batch would loop forever, so find the guilty rows one by one.
                    tracing::error!(error = %e, "batch refused; writing its rows one by one");
                    if self.write_singly(batch).await {
                        return true;
                    }
                }
                Err(e) => {
                    self.client = None;
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "database write failed; reconnecting");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Row-by-row fallback; returns false when the connection broke (the caller retries all).
    async fn write_singly(&mut self, batch: &[Row]) -> bool {
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        let mut rejected = Vec::new();
        for row in batch {
            if let Err(e) = write_batch(client, std::slice::from_ref(row)).await {
                if e.code().is_none() || client.is_closed() {
                    self.client = None;
                    return false;
                }
                tracing::error!(error = %e, table = %row.table, "row rejected by the database");
                rejected.push(row.clone());
            }
        }
        self.reject(&rejected);
        self.committed(batch.len());
        true
    }

    /// Rejected rows are kept next to the spool for an operator, never silently dropped.
    fn reject(&mut self, rows: &[Row]) {
        if rows.is_empty() {
            return;
        }
        let path = self
            .rejected_path
            .get_or_insert_with(|| self.options.spool_path.with_extension("rejected"))
            .clone();
        let result = (|| -> io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            for row in rows {
                serde_json::to_writer(&mut f, row).map_err(io::Error::other)?;
                f.write_all(b"\n")?;
            }
            f.sync_data()
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, path = %path.display(), "cannot keep rejected rows");
        }
    }

    fn committed(&self, n: usize) {
        let mut spool = self.spool.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = spool.committed(n as u64) {
            tracing::warn!(error = %e, "cannot truncate the spool (rows will be replayed)");
        }
    }

    async fn connected(&mut self) -> Result<&mut Client, tokio_postgres::Error> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            let mut config: tokio_postgres::Config = self.options.dsn.parse()?;
            if let Some(password) = &self.options.password {
                config.password(password);
            }
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "database connection ended");
                }
            });
            tracing::info!("connected to the database");
            self.client = Some(client);
        }
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => unreachable!("set just above"),
        }
    }
}

type RowValues = serde_json::Map<String, serde_json::Value>;

/// Rows of one table with the same columns share one statement; the map's order makes the
/// statement order of a batch deterministic.
fn group_by_shape(batch: &[Row]) -> BTreeMap<(String, Vec<String>), Vec<&RowValues>> {
    let mut groups: BTreeMap<(String, Vec<String>), Vec<&RowValues>> = BTreeMap::new();
    for row in batch {
        groups.entry(row.shape()).or_default().push(&row.values);
    }
    groups
}

/// One transaction: one multi-row insert per (table, column set).
async fn write_batch(client: &mut Client, batch: &[Row]) -> Result<(), tokio_postgres::Error> {
    let groups = group_by_shape(batch);
    let tx = client.transaction().await?;
    for ((table, columns), rows) in groups {
        let json = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_string());
        tx.execute(&batch_insert_sql(&table, &columns), &[&json])
            .await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw_tables::{RAW_HEARTBEATS, RAW_SERVER_POLLS};

    #[test]
    fn a_batch_becomes_one_statement_per_table_and_column_set() {
        let hb = |g: i64| {
            Row::new(&RAW_HEARTBEATS)
                .set("source", "s")
                .set("guild_id", g)
        };
        let batch = vec![
            hb(1),
            Row::new(&RAW_SERVER_POLLS)
                .set("server", "a:1")
                .set("ok", false),
            hb(2),
            Row::new(&RAW_HEARTBEATS).set("source", "s"),
            hb(3),
        ];
        let groups = group_by_shape(&batch);
        let sizes: Vec<(&str, usize, usize)> = groups
            .iter()
            .map(|((t, cols), rows)| (t.as_str(), cols.len(), rows.len()))
            .collect();
        assert_eq!(
            sizes,
            vec![
                ("raw_heartbeats", 2, 3),
                ("raw_heartbeats", 1, 1),
                ("raw_server_polls", 2, 1)
            ]
        );
    }
}
