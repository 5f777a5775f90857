//! The sink: accepts raw rows for any raw table, makes them durable in the spool, and writes them
//! to the database in batches, each in one transaction of idempotent multi-row inserts,
//! reconnecting with backoff.
//!
//! Flow: `SinkHandle::send` encodes the rows and hands them to the spool thread, which appends
//! whatever every producer handed it since its last write and fsyncs once for all of them (group
//! commit; the fsync never blocks the async runtime). The acknowledgement comes after the fsync.
//! The database writer reads rows back from the spool, so while the database is away rows pile
//! up on disk, not in memory, and producers go on (up to `max_spool_bytes`, after which they
//! wait). Committed segments are deleted; a restart reads again whatever was not committed.

use crate::backoff::Backoff;
use crate::row::{as_input_text, batch_insert_sql, Row};
use crate::spool::{self, Appender, Position, Reader, SpoolLock, Unreadable};
use crate::tls::TlsSettings;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::Client;

/// How long a stop waits for the last rows to reach the database.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the sink connects and batches. No `Debug`: the password must never reach a log.
#[derive(Clone)]
pub struct SinkOptions {
    /// The DSN without libpq's TLS keywords, which are in `tls`.
    pub dsn: String,
    pub password: Option<String>,
    pub tls: TlsSettings,
    /// The spool directory (created if missing).
    pub spool_path: PathBuf,
    /// A batch is written when it holds this many rows...
    pub max_batch: usize,
    /// ...or when its oldest row has waited this long.
    pub max_delay: Duration,
    /// Hand-overs waiting for the spool thread before producers wait.
    pub queue: usize,
    /// Spool size on disk beyond which producers wait for the database to catch up.
    pub max_spool_bytes: u64,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl SinkOptions {
    /// Takes `sslmode` and `sslrootcert` out of the DSN into `tls`. A DSN that does not split is
    /// kept whole, so that connecting reports the problem (`tls_from_dsn` reports it earlier).
    pub fn new(dsn: impl Into<String>, spool_path: impl Into<PathBuf>) -> SinkOptions {
        let dsn = dsn.into();
        let (dsn, tls) = crate::tls::from_dsn(&dsn).unwrap_or((dsn, TlsSettings::default()));
        SinkOptions {
            dsn,
            password: None,
            tls,
            spool_path: spool_path.into(),
            max_batch: 5000,
            max_delay: Duration::from_secs(1),
            queue: 1024,
            max_spool_bytes: 1 << 30,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

enum Request {
    Append {
        lines: Vec<u8>,
        done: oneshot::Sender<Result<(), String>>,
    },
    Stop,
}

/// What the spool thread has made durable so far.
#[derive(Debug, Clone, Copy, Default)]
struct Durable {
    end: Position,
    /// The spool thread has stopped: nothing will be added after `end`.
    closed: bool,
}

/// State shared by producers and the writer for the spool size cap.
struct Shared {
    spool_bytes: AtomicU64,
    freed: Notify,
    max_spool_bytes: u64,
}

/// What every producer holds (cheap to clone).
#[derive(Clone)]
pub struct SinkHandle {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub enum SendError {
    Invalid(String),
    Spool(String),
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
    /// Returns once the row is durable in the spool.
    pub async fn send(&self, row: Row) -> Result<(), SendError> {
        self.send_all(vec![row]).await
    }

    /// Several rows, durable together.
    pub async fn send_all(&self, rows: Vec<Row>) -> Result<(), SendError> {
        if rows.is_empty() {
            return Ok(());
        }
        for row in &rows {
            row.validate().map_err(SendError::Invalid)?;
        }
        let lines = spool::encode(&rows).map_err(|e| SendError::Spool(e.to_string()))?;
        self.wait_for_room().await;
        let (done, acknowledged) = oneshot::channel();
        self.requests
            .send(Request::Append { lines, done })
            .await
            .map_err(|_| SendError::Closed)?;
        match acknowledged.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Spool(e)),
            Err(_) => Err(SendError::Closed),
        }
    }

    async fn wait_for_room(&self) {
        let mut warned = false;
        while self.shared.spool_bytes.load(Ordering::Relaxed) > self.shared.max_spool_bytes {
            if !warned {
                tracing::warn!(
                    max_bytes = self.shared.max_spool_bytes,
                    "the spool is full; waiting for the database to catch up"
                );
                warned = true;
            }
            let freed = self.shared.freed.notified();
            let _ = tokio::time::timeout(Duration::from_secs(1), freed).await;
        }
    }
}

pub struct Sink {
    handle: SinkHandle,
    shutdown: watch::Sender<bool>,
    writer: JoinHandle<()>,
    spool_thread: std::thread::JoinHandle<()>,
}

impl Sink {
    /// Takes the spool, starts the spool thread and the database writer; the writer first sends
    /// what an earlier run left uncommitted.
    pub fn start(options: SinkOptions) -> io::Result<Sink> {
        let dir = options.spool_path.clone();
        let lock = Arc::new(SpoolLock::acquire(&dir)?);
        let reader = Reader::open(&dir)?;
        let appender = Appender::open(&dir)?;
        let on_disk = reader.disk_bytes()?;
        if reader.position() < appender.position() {
            tracing::info!(
                spool = %dir.display(),
                bytes = on_disk,
                "sending what the spool holds from an earlier run"
            );
        }
        let shared = Arc::new(Shared {
            spool_bytes: AtomicU64::new(on_disk),
            freed: Notify::new(),
            max_spool_bytes: options.max_spool_bytes,
        });
        let (durable_tx, durable_rx) = watch::channel(Durable {
            end: appender.position(),
            closed: false,
        });
        let (requests, requests_rx) = mpsc::channel(options.queue.max(1));
        let spool_thread = {
            let (shared, lock) = (shared.clone(), lock.clone());
            std::thread::Builder::new()
                .name("guildstats-spool".into())
                .spawn(move || {
                    run_spool_thread(appender, requests_rx, durable_tx, &shared);
                    drop(lock);
                })?
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let writer = Writer {
            options,
            reader,
            client: None,
            shared: shared.clone(),
            _lock: lock,
        };
        let writer = tokio::spawn(writer.run(durable_rx, shutdown_rx));
        Ok(Sink {
            handle: SinkHandle { requests, shared },
            shutdown,
            writer,
            spool_thread,
        })
    }

    pub fn handle(&self) -> SinkHandle {
        self.handle.clone()
    }

    /// Turns true when a graceful shutdown begins (for companions such as the heartbeat).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Graceful stop: the spool takes no more rows, and the writer sends everything it holds.
    /// Rows it cannot write (database still away) stay in the spool for the next start.
    pub async fn shutdown(self) {
        self.stop_spool_thread().await;
        let _ = self.shutdown.send(true);
        let _ = self.writer.await;
    }

    /// `shutdown`, but for at most `grace`: while the database is away (or a connection attempt
    /// hangs) the rows are safe in the spool already, and a stop must not wait on them. Returns
    /// false when the grace ran out.
    pub async fn shutdown_within(self, grace: Duration) -> bool {
        let done = tokio::time::timeout(grace, self.shutdown()).await.is_ok();
        if !done {
            tracing::warn!(
                ?grace,
                "database unreachable at shutdown; the spool keeps the rows for the next start"
            );
        }
        done
    }

    /// A crash stand-in for tests: stop at once, without flushing.
    pub async fn abort(self) {
        self.writer.abort();
        let _ = self.writer.await;
        let _ = self.handle.requests.send(Request::Stop).await;
        let _ = tokio::task::spawn_blocking(move || self.spool_thread.join()).await;
    }

    async fn stop_spool_thread(&self) {
        let _ = self.handle.requests.send(Request::Stop).await;
        while !self.spool_thread.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The spool thread: appends everything handed over since its last write with one fsync, then
/// acknowledges each producer and tells the writer how far the durable end has moved.
fn run_spool_thread(
    mut appender: Appender,
    mut requests: mpsc::Receiver<Request>,
    durable: watch::Sender<Durable>,
    shared: &Shared,
) {
    const MAX_WRITE: usize = 8 << 20;
    while let Some(first) = requests.blocking_recv() {
        let mut lines = Vec::new();
        let mut waiting = Vec::new();
        let mut stop = false;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Append { lines: more, done } => {
                    lines.extend_from_slice(&more);
                    waiting.push(done);
                }
                Request::Stop => stop = true,
            }
            if lines.len() < MAX_WRITE {
                next = requests.try_recv().ok();
            }
        }
        if !lines.is_empty() {
            let result = appender.append(&lines).map_err(|e| e.to_string());
            if result.is_ok() {
                shared
                    .spool_bytes
                    .fetch_add(lines.len() as u64, Ordering::Relaxed);
                durable.send_modify(|d| d.end = appender.position());
            } else if let Err(e) = &result {
                tracing::error!(error = %e, "cannot write the spool");
            }
            for done in waiting {
                let _ = done.send(result.clone());
            }
        }
        if stop {
            break;
        }
    }
    durable.send_modify(|d| d.closed = true);
}

struct Writer {
    options: SinkOptions,
    reader: Reader,
    client: Option<Connection>,
    shared: Arc<Shared>,
    _lock: Arc<SpoolLock>,
}

impl Writer {
    async fn run(
        mut self,
        mut durable: watch::Receiver<Durable>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let max = self.options.max_batch.max(1);
        let mut batch: Vec<Row> = Vec::new();
        let mut batch_end = self.reader.position();
        let mut deadline: Option<Instant> = None;
        let mut stopping = false;
        let mut spool_thread_gone = false;
        loop {
            let known = *durable.borrow_and_update();
            if batch.len() < max && self.reader.position() < known.end {
                match self.read(known.end, max - batch.len()) {
                    Ok((rows, end)) => {
                        if batch.is_empty() && !rows.is_empty() {
                            deadline = Some(Instant::now() + self.options.max_delay);
                        }
                        batch.extend(rows);
                        batch_end = end;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the spool; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let caught_up = self.reader.position() >= known.end;
            let due = deadline.is_some_and(|d| Instant::now() >= d);
            if batch.len() >= max || (!batch.is_empty() && (due || stopping)) {
                let flushed = self.flush(&batch, &mut shutdown).await;
                // The flush may have seen the stop begin.
                stopping |= *shutdown.borrow();
                if !flushed {
                    tracing::warn!("database unreachable at shutdown; rows stay in the spool");
                    return;
                }
                self.committed(batch_end);
                batch.clear();
                deadline = None;
                continue;
            }
            if stopping && caught_up {
                // Lines skipped since the last batch (torn or corrupt) need not be read again.
                self.committed(batch_end);
                return;
            }
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                changed = durable.changed(), if !spool_thread_gone => {
                    if changed.is_err() {
                        spool_thread_gone = true;
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => {}
                changed = shutdown.changed(), if !stopping => {
                    if changed.is_err() || *shutdown.borrow() {
                        stopping = true;
                    }
                }
            }
        }
    }

    /// The next rows from the spool; lines that are not rows are set aside, never retried.
    fn read(&mut self, durable: Position, max: usize) -> io::Result<(Vec<Row>, Position)> {
        let mut unreadable = Unreadable::default();
        let read = self.reader.read(durable, max, &mut unreadable)?;
        for torn in &unreadable.torn {
            tracing::warn!(
                segment = %torn.file_name(),
                offset = torn.offset,
                "torn last line of a spool segment (written during a crash, never acknowledged) set aside in rejected.jsonl"
            );
        }
        for corrupt in &unreadable.corrupt {
            tracing::error!(
                segment = %corrupt.file_name(),
                offset = corrupt.offset,
                reason = %corrupt.reason,
                "damaged spool record set aside in rejected.jsonl, not replayed"
            );
        }
        let set_aside: Vec<String> = unreadable
            .torn
            .iter()
            .chain(&unreadable.corrupt)
            .map(|c| c.rejected_line())
            .collect();
        self.reader.reject(&set_aside)?;
        Ok(read)
    }

    fn committed(&mut self, at: Position) {
        match self.reader.committed(at) {
            Ok(freed) => {
                if freed > 0 {
                    self.shared.spool_bytes.fetch_sub(freed, Ordering::Relaxed);
                    self.shared.freed.notify_waiters();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot record progress in the spool (rows will be replayed)")
            }
        }
    }

    /// Writes one batch, retrying with backoff until it is committed. At shutdown it gives up
    /// after a few attempts (returns false): the spool keeps the rows.
    async fn flush(&mut self, batch: &[Row], shutdown: &mut watch::Receiver<bool>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let mut stopping = *shutdown.borrow();
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
                    if pause(delay, shutdown, &mut stopping).await {
                        backoff =
                            Backoff::new(self.options.backoff_initial, self.options.backoff_max);
                        attempts = 0;
                    }
                    continue;
                }
            };
            match write_batch(client, batch).await {
                Ok(()) => {
                    tracing::debug!(rows = batch.len(), "batch committed");
                    return true;
                }
                Err(e) if is_row_problem(&e) && !client.client.is_closed() => {
                    // The database refused the data itself: retrying the same batch would loop
                    // forever, so find the guilty rows one by one.
                    tracing::error!(error = %error_text(&e), "batch refused; writing its rows one by one");
                    if self.write_singly(batch).await {
                        return true;
                    }
                }
                Err(e) => {
                    // The connection, or the setup (a missing GRANT, the extension not yet
                    // installed): not the rows' fault, so they wait in the spool until it is fixed.
                    self.client = None;
                    let delay = backoff.next_delay();
                    if e.code().is_some() {
                        tracing::error!(error = %error_text(&e), ?delay, "the database refused the batch; retrying");
                    } else {
                        tracing::warn!(error = %e, ?delay, "database write failed; reconnecting");
                    }
                    if pause(delay, shutdown, &mut stopping).await {
                        backoff =
                            Backoff::new(self.options.backoff_initial, self.options.backoff_max);
                        attempts = 0;
                    }
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
                if !is_row_problem(&e) || client.client.is_closed() {
                    self.client = None;
                    return false;
                }
                tracing::error!(error = %e, table = %row.table, "row rejected by the database");
                rejected.push(rejected_line(row, &e));
            }
        }
        // Rejected rows are kept beside the spool for an operator, never silently dropped.
        if let Err(e) = self.reader.reject(&rejected) {
            tracing::error!(error = %e, "cannot keep rejected rows");
            return false;
        }
        true
    }

    async fn connected(&mut self) -> Result<&mut Connection, String> {
        if self.client.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            self.client = Some(Connection {
                client: connect(&self.options).await?,
                column_types: HashMap::new(),
                row_security: HashMap::new(),
            });
            tracing::info!("connected to the database");
        }
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => unreachable!("set just above"),
        }
    }
}

/// Waits out a retry delay. A stop cuts the wait short (returns true): the database may well be
/// back by then, and the last rows get a few prompt attempts within the shutdown grace instead of
/// sleeping through it in a backoff grown during an outage.
async fn pause(delay: Duration, shutdown: &mut watch::Receiver<bool>, stopping: &mut bool) -> bool {
    if *stopping {
        tokio::time::sleep(delay).await;
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = shutdown.wait_for(|&stop| stop) => {
            *stopping = true;
            true
        }
    }
}

/// How long one connection attempt may take, TLS handshake and authentication included, when
/// the DSN sets no `connect_timeout`. A host that swallows packets, or a server that accepts and
/// never answers, must end in a retry with its log line, not an ingester waiting forever while
/// its spool grows. (tokio-postgres's own `connect_timeout` bounds only the TCP connect, so the
/// whole attempt is bounded here, by the DSN's value when it gives one.)
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection with the sink's settings, TLS included: the one way every ingester connects. The
/// connection task runs until the client is dropped. The error never contains the DSN or the
/// password.
pub async fn connect(options: &SinkOptions) -> Result<Client, String> {
    let mut config: tokio_postgres::Config = options
        .dsn
        .parse()
        .map_err(|e| format!("the DSN does not parse: {e}"))?;
    if let Some(password) = &options.password {
        config.password(password);
    }
    options.tls.apply(&mut config);
    let connector = options.tls.connector()?;
    let limit = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let attempt = tokio::time::timeout(limit, config.connect(connector))
        .await
        .map_err(|_| {
            format!(
                "no answer from the database within {} ms (connect_timeout)",
                limit.as_millis()
            )
        })?;
    let (client, connection) = attempt.map_err(|e| match config.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => error_text(&e),
        _ => format!("{} (sslmode={})", error_text(&e), options.tls.mode),
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection ended");
        }
    });
    Ok(client)
}

/// Errors that are the row's own fault (SQLSTATE classes 22, data exception, and 23, integrity
/// constraint violation, and 54000, a value too wide for an index: a game server may report a
/// name of any length): such a row is set aside. Every other error is retried.
fn is_row_problem(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|c| {
        let code = c.code();
        code.starts_with("22") || code.starts_with("23") || code == "54000"
    })
}

/// PostgreSQL's own message, or the chain of causes (a TLS handshake's reason is in one), which
/// the error's display text leaves out.
pub fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut text = error.to_string();
            let mut cause = std::error::Error::source(error);
            while let Some(e) = cause {
                let more = e.to_string();
                // An error often repeats its source's text; once is enough.
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                cause = e.source();
            }
            text
        }
    }
}

/// A refused row with the database's reason beside it, as one JSON line.
fn rejected_line(row: &Row, error: &tokio_postgres::Error) -> String {
    serde_json::json!({ "table": row.table, "values": row.values, "error": error_text(error) })
        .to_string()
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

/// A database connection and what it has learnt of the raw tables' column types.
struct Connection {
    client: Client,
    column_types: HashMap<String, HashMap<String, String>>,
    row_security: HashMap<String, bool>,
}

impl Connection {
    /// Row-level security applies to this login on one of the batch's tables (asked once per
    /// table and connection).
    async fn row_security_applies(&mut self, batch: &[Row]) -> Result<bool, tokio_postgres::Error> {
        for row in batch {
            if !self.row_security.contains_key(&row.table) {
                let active: bool = self
                    .client
                    .query_one(
                        "SELECT coalesce(row_security_active(to_regclass('guildstats.' || $1)), false)",
                        &[&row.table],
                    )
                    .await?
                    .get(0);
                self.row_security.insert(row.table.clone(), active);
            }
            if self.row_security[&row.table] {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Each column with its SQL type. A column the table does not have is given `text`, so that
    /// the INSERT fails with PostgreSQL's own "column does not exist" and the row is rejected.
    async fn typed(
        &mut self,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
        if !self.column_types.contains_key(table) {
            let rows = self
                .client
                .query(
                    "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                       FROM pg_attribute a
                      WHERE a.attrelid = to_regclass('guildstats.' || $1)
                        AND a.attnum > 0 AND NOT a.attisdropped",
                    &[&table],
                )
                .await?;
            let types = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            self.column_types.insert(table.to_string(), types);
        }
        let types = &self.column_types[table];
        Ok(columns
            .iter()
            .map(|c| {
                let t = types.get(c).cloned().unwrap_or_else(|| "text".to_string());
                (c.clone(), t)
            })
            .collect())
    }
}

/// One transaction per batch. First try: COPY, the cheapest way into a table, one per (table,
/// column set). A COPY is all or nothing, so when the batch holds a row the table already has (a
/// replay, a reconnect snapshot) or a row it refuses, the batch is written again with idempotent
/// `INSERT ... ON CONFLICT DO NOTHING` statements, which skip the repeats and name a bad row.
///
/// PostgreSQL refuses COPY into a table whose row-level security applies to the writer (the
/// per-guild isolation of readers covers the raw tables with a guild_id), so a batch that
/// touches such a table goes straight to the INSERT statements.
async fn write_batch(conn: &mut Connection, batch: &[Row]) -> Result<(), tokio_postgres::Error> {
    if conn.row_security_applies(batch).await? {
        return insert_batch(conn, batch).await;
    }
    match copy_batch(conn, batch).await {
        Err(e) if is_row_problem(&e) && !conn.client.is_closed() => insert_batch(conn, batch).await,
        other => other,
    }
}

async fn copy_batch(conn: &mut Connection, batch: &[Row]) -> Result<(), tokio_postgres::Error> {
    use futures_util::SinkExt;
    let groups = group_by_shape(batch);
    let tx = conn.client.transaction().await?;
    for ((table, columns), rows) in groups {
        let mut lines = Vec::with_capacity(rows.len() * 96);
        for values in rows {
            crate::row::copy_line(&mut lines, values, &columns);
        }
        let sink = tx.copy_in(&crate::row::copy_sql(&table, &columns)).await?;
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from(lines)).await?;
        sink.finish().await?;
    }
    tx.commit().await
}

/// One multi-row insert per (table, column set), each column one text array.
async fn insert_batch(conn: &mut Connection, batch: &[Row]) -> Result<(), tokio_postgres::Error> {
    let groups = group_by_shape(batch);
    let mut statements = Vec::with_capacity(groups.len());
    for ((table, columns), rows) in groups {
        let typed = conn.typed(&table, &columns).await?;
        let arrays: Vec<Vec<Option<String>>> = columns
            .iter()
            .map(|c| {
                rows.iter()
                    .map(|r| r.get(c).and_then(as_input_text))
                    .collect()
            })
            .collect();
        statements.push((batch_insert_sql(&table, &typed), arrays));
    }
    let tx = conn.client.transaction().await?;
    for (sql, arrays) in &statements {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = arrays
            .iter()
            .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        tx.execute(sql.as_str(), &params).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw_tables::{RAW_HEARTBEATS, RAW_SERVER_POLLS};

    /// A server that accepts the TCP connection and never answers the startup message: the
    /// attempt ends with a clear error after connect_timeout instead of hanging.
    #[tokio::test]
    async fn a_silent_server_ends_the_connection_attempt() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let options = SinkOptions::new(
            format!("host=127.0.0.1 port={port} user=gs dbname=gs connect_timeout=1"),
            std::env::temp_dir(),
        );
        let outcome = tokio::time::timeout(Duration::from_secs(60), connect(&options))
            .await
            .expect("connect() returned within a minute");
        let error = outcome.expect_err("a silent server is an error");
        assert!(
            error.contains("no answer from the database within 1000 ms"),
            "{error}"
        );
        drop(listener);
    }

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
