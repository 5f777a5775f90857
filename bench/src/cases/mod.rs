//! Benchmark cases. Each one prepares its data, then runs two computations of the same thing,
//! one with the extension and one in plain SQL, each giving a single text value that summarises
//! the whole answer (so that the harness can check they agree). Most cases are two queries
//! (`extension_sql`, `baseline_sql`); a case that needs more overrides `run_extension` and
//! `run_baseline`, and `reset` when each timed run must start from the same state.

mod et_clean_name;
mod et_import;
mod et_ratings;
mod game_sessions;
mod gini;
mod retention;
mod voice_copresence;
mod voice_sessions;

use postgres::Client;

/// Which computation of a case runs.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    Extension,
    Baseline,
}

pub trait Case {
    fn name(&self) -> &'static str;
    /// Creates the case's tables from the shared generator; returns the number of input rows.
    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String>;
    /// The extension's query: one row, one text column summarising the answer.
    fn extension_sql(&self) -> &'static str {
        ""
    }
    /// The plain-SQL baseline's query, of the same shape.
    fn baseline_sql(&self) -> &'static str {
        ""
    }
    /// Runs before every timed run of either side, untimed.
    fn reset(&self, _client: &mut Client) -> Result<(), String> {
        Ok(())
    }
    fn run_extension(&self, client: &mut Client) -> Result<String, String> {
        query_answer(client, self.extension_sql())
    }
    fn run_baseline(&self, client: &mut Client) -> Result<String, String> {
        query_answer(client, self.baseline_sql())
    }
    /// Runs after every timed run, untimed: a case whose timed query leaves its result in a
    /// table summarises it here (so that a summary costing more than the work being measured
    /// does not hide it), and undoes what `reset` began. `None`: the timed query's answer.
    fn answer_after(&self, _client: &mut Client, _side: Side) -> Result<Option<String>, String> {
        Ok(None)
    }
    /// Whether the case is measured twice, without and with parallel workers (aggregates,
    /// whose plans can go parallel); other cases run once with the server's settings.
    fn compares_parallel_plans(&self) -> bool {
        false
    }
    /// Whether the baseline only writes the rows the extension computes (a floor no
    /// computation can beat): the report then also gives the extension's cost in floors.
    fn baseline_is_write_floor(&self) -> bool {
        false
    }
    /// What the baseline includes and leaves out, when a reader needs it to judge the ratio;
    /// printed under the table.
    fn note(&self) -> Option<&'static str> {
        None
    }
}

/// Streams `rows` into `copy_sql` (a `COPY ... FROM STDIN` in text format) through one buffer:
/// `write_row` appends one row's line, newline included. What every case's data load shares.
pub fn copy_rows<I, F>(
    client: &mut Client,
    copy_sql: &str,
    rows: I,
    mut write_row: F,
) -> Result<(), String>
where
    I: IntoIterator,
    F: FnMut(&mut Vec<u8>, I::Item) -> std::io::Result<()>,
{
    use std::io::Write;
    let mut writer = client.copy_in(copy_sql).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1 << 16);
    for row in rows {
        write_row(&mut buf, row).map_err(|e| e.to_string())?;
        if buf.len() > 60_000 {
            writer.write_all(&buf).map_err(|e| e.to_string())?;
            buf.clear();
        }
    }
    writer.write_all(&buf).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// Replaces the raw voice rows (guilds, voice events, snapshots, heartbeats) with those of
/// `community`, analysed, for the voice cases. `stale_caches` names the cache tables of every
/// case that kept data of its own in those tables: what they loaded is gone now.
pub fn load_voice_raw(
    client: &mut Client,
    community: &guildstats_synth::Community,
    stale_caches: &str,
) -> Result<(), String> {
    use guildstats_synth::{pg, Table};
    client
        .batch_execute(&format!(
            "TRUNCATE guildstats.raw_voice_events, guildstats.raw_voice_snapshots,
                      guildstats.raw_heartbeats, guildstats.raw_guilds;
             DROP TABLE IF EXISTS {stale_caches};"
        ))
        .map_err(|e| e.to_string())?;
    pg::load(
        client,
        community,
        &[
            Table::Guilds,
            Table::VoiceEvents,
            Table::VoiceSnapshots,
            Table::Heartbeats,
        ],
    )
    .map_err(|e| e.to_string())?;
    client
        .batch_execute("ANALYZE guildstats.raw_voice_events; ANALYZE guildstats.raw_heartbeats;")
        .map_err(|e| e.to_string())
}

/// What a case recorded in its cache table `table` (a bigint `column` keyed by scale and seed)
/// when it loaded this (scale, seed) before; None when it has not, or the table is not there yet.
pub fn cached_load(
    client: &mut Client,
    table: &str,
    column: &str,
    scale: u64,
    seed: u64,
) -> Option<u64> {
    let sql = format!("SELECT {column} FROM {table} WHERE scale = $1 AND seed = $2");
    client
        .query_opt(&sql, &[&(scale as i64), &(seed as i64)])
        .ok()
        .flatten()
        .map(|r| r.get::<_, i64>(0) as u64)
}

/// A write floor: the rows a computation left in some `guildstats` tables, captured once in
/// COPY text format, and empty tables of the same shape (keys, indexes, constraints) in the
/// schema `bench_floor` to write them into: the least any implementation must spend to store
/// that answer.
#[derive(Default)]
pub struct WriteFloor {
    produced: std::sync::Mutex<Vec<(&'static str, Vec<u8>)>>,
}

impl WriteFloor {
    /// Captures what `tables` hold now (in an order that satisfies their foreign keys).
    pub fn capture(&self, client: &mut Client, tables: &[&'static str]) -> Result<(), String> {
        use std::io::Read;
        client
            .batch_execute("CREATE SCHEMA IF NOT EXISTS bench_floor;")
            .map_err(|e| e.to_string())?;
        let mut produced = Vec::new();
        for &table in tables {
            let mut reader = client
                .copy_out(&format!("COPY guildstats.{table} TO STDOUT"))
                .map_err(|e| e.to_string())?;
            let mut rows = Vec::new();
            reader.read_to_end(&mut rows).map_err(|e| e.to_string())?;
            drop(reader);
            client
                .batch_execute(&format!(
                    "DROP TABLE IF EXISTS bench_floor.{table} CASCADE;
                     CREATE TABLE bench_floor.{table} (LIKE guildstats.{table} INCLUDING ALL);"
                ))
                .map_err(|e| e.to_string())?;
            produced.push((table, rows));
        }
        *self.produced.lock().map_err(|_| "poisoned".to_string())? = produced;
        Ok(())
    }

    /// Empties the floor's tables (untimed, before each run).
    pub fn truncate(&self, client: &mut Client) -> Result<(), String> {
        let produced = self.produced.lock().map_err(|_| "poisoned".to_string())?;
        let tables: Vec<String> = produced
            .iter()
            .map(|(table, _)| format!("bench_floor.{table}"))
            .collect();
        if tables.is_empty() {
            return Ok(());
        }
        client
            .batch_execute(&format!("TRUNCATE {}", tables.join(", ")))
            .map_err(|e| e.to_string())
    }

    /// The timed part: COPYing the captured rows into the floor's tables, in one transaction.
    pub fn write(&self, client: &mut Client) -> Result<(), String> {
        use std::io::Write;
        let produced = self.produced.lock().map_err(|_| "poisoned".to_string())?;
        let mut transaction = client.transaction().map_err(|e| e.to_string())?;
        for (table, rows) in produced.iter() {
            let mut writer = transaction
                .copy_in(&format!("COPY bench_floor.{table} FROM STDIN"))
                .map_err(|e| e.to_string())?;
            writer.write_all(rows).map_err(|e| e.to_string())?;
            writer.finish().map_err(|e| e.to_string())?;
        }
        transaction.commit().map_err(|e| e.to_string())
    }
}

/// The first column of the single row `sql` returns, as text.
pub fn query_answer(client: &mut Client, sql: &str) -> Result<String, String> {
    let row = client.query_one(sql, &[]).map_err(|e| e.to_string())?;
    Ok(row.get::<_, Option<String>>(0).unwrap_or_default())
}

pub fn all() -> Vec<Box<dyn Case>> {
    vec![
        Box::new(et_clean_name::EtCleanName),
        Box::new(et_import::EtImport::default()),
        Box::new(et_import::EtParse),
        Box::new(et_ratings::EtRatingsFull::default()),
        Box::new(et_ratings::EtRatingsIncremental),
        Box::new(game_sessions::GameSessionsFull),
        Box::new(game_sessions::GameSessionsIncremental),
        Box::new(voice_sessions::VoiceFullBuild),
        Box::new(voice_sessions::VoiceWriteFloor),
        Box::new(voice_sessions::VoiceIncremental),
        Box::new(voice_copresence::CopresenceFullBuild),
        Box::new(voice_copresence::CopresenceIncremental),
        Box::new(gini::Gini),
        Box::new(retention::Retention),
    ]
}
