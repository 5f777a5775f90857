//! ET:Legacy import, measured against its floor.
//!
//! `et_import`: `import_et_rounds()` over N files (the real fixtures, replicated two years apart
//! with a marker in the header so that every copy is a new file) against the cost of COPYing
//! the rows that import produces into tables of the same shape: the least any importer must
//! spend to store them. `et_parse`: the parser in SQL over the same files, against counting
//! their player lines in plain SQL.

use super::{query_answer, Case, WriteFloor};
use postgres::Client;
use std::path::PathBuf;

/// Tables an import fills, in an order that satisfies their foreign keys.
const RESULT_TABLES: [&str; 5] = [
    "et_rounds",
    "et_player_rounds",
    "et_weapon_rounds",
    "et_matches",
    "et_sessions",
];

const COUNTS_SQL: &str = "SELECT format('%s rounds, %s players, %s weapons',
    (SELECT count(*) FROM {schema}.et_rounds), (SELECT count(*) FROM {schema}.et_player_rounds),
    (SELECT count(*) FROM {schema}.et_weapon_rounds))";

fn fixtures_dir() -> Option<PathBuf> {
    let root = std::env::var("GUILDSTATS_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
        });
    let dir = root.join("et/real");
    dir.is_dir().then_some(dir)
}

/// Loads `bench_et_files` with `files` files made from the fixtures; returns how many (0 when
/// the fixtures are missing).
pub(super) fn load_files(client: &mut Client, files: usize) -> Result<u64, String> {
    let Some(dir) = fixtures_dir() else {
        eprintln!("  no ET fixtures (set GUILDSTATS_FIXTURES_DIR): case skipped");
        return Ok(0);
    };
    let mut originals: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !name.ends_with(".txt") {
                return None;
            }
            Some((name, std::fs::read(entry.path()).ok()?))
        })
        .collect();
    originals.sort();
    client
        .batch_execute(
            "DROP TABLE IF EXISTS bench_et_files;
             CREATE TABLE bench_et_files (file_name text PRIMARY KEY, content bytea NOT NULL);",
        )
        .map_err(|e| e.to_string())?;
    let mut transaction = client.transaction().map_err(|e| e.to_string())?;
    let insert = transaction
        .prepare("INSERT INTO bench_et_files VALUES ($1, $2)")
        .map_err(|e| e.to_string())?;
    for i in 0..files {
        let replica = i / originals.len().max(1);
        let (name, content) = &originals[i % originals.len().max(1)];
        // Two years apart, so that replicas never pair or share a session with each other.
        let year: u32 = name[..4]
            .parse()
            .map_err(|_| format!("odd fixture name {name}"))?;
        let name = format!("{}{}", year + 2 * replica as u32, &name[4..]);
        let mut marked = format!("r{replica} ").into_bytes();
        marked.extend_from_slice(content);
        transaction
            .execute(&insert, &[&name, &marked])
            .map_err(|e| e.to_string())?;
    }
    transaction.commit().map_err(|e| e.to_string())?;
    Ok(files as u64)
}

/// Files for a scale: 10,000 at the default scale of one million.
pub(super) fn files_for(scale: u64) -> usize {
    (scale / 100).clamp(1, 50_000) as usize
}

#[derive(Default)]
pub struct EtImport {
    /// The rows one import produced.
    floor: WriteFloor,
}

impl EtImport {
    pub(super) fn clear(client: &mut Client) -> Result<(), String> {
        client
            .batch_execute(
                "TRUNCATE guildstats.et_weapon_rounds, guildstats.et_player_rounds,
                          guildstats.et_matches, guildstats.et_sessions, guildstats.et_rounds,
                          guildstats.raw_et_stats_files;
                 INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
                 SELECT file_name, 'bench', content FROM bench_et_files;",
            )
            .map_err(|e| e.to_string())
    }
}

impl Case for EtImport {
    fn name(&self) -> &'static str {
        "et_import (floor: COPY rows)"
    }

    fn baseline_is_write_floor(&self) -> bool {
        true
    }

    fn prepare(&self, client: &mut Client, scale: u64, _seed: u64) -> Result<u64, String> {
        let files = load_files(client, files_for(scale))?;
        if files == 0 {
            return Ok(0);
        }
        Self::clear(client)?;
        client
            .batch_execute("SELECT * FROM guildstats.import_et_rounds()")
            .map_err(|e| e.to_string())?;
        self.floor.capture(client, &RESULT_TABLES)?;
        Ok(files)
    }

    fn reset(&self, client: &mut Client) -> Result<(), String> {
        Self::clear(client)?;
        self.floor.truncate(client)
    }

    fn run_extension(&self, client: &mut Client) -> Result<String, String> {
        client
            .batch_execute("SELECT * FROM guildstats.import_et_rounds()")
            .map_err(|e| e.to_string())?;
        query_answer(client, &COUNTS_SQL.replace("{schema}", "guildstats"))
    }

    fn run_baseline(&self, client: &mut Client) -> Result<String, String> {
        self.floor.write(client)?;
        query_answer(client, &COUNTS_SQL.replace("{schema}", "bench_floor"))
    }
}

/// The parser inside PostgreSQL, files in and player counts out.
pub struct EtParse;

impl Case for EtParse {
    fn name(&self) -> &'static str {
        "et_parse_round (vs line count)"
    }

    fn prepare(&self, client: &mut Client, scale: u64, _seed: u64) -> Result<u64, String> {
        load_files(client, files_for(scale))
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT sum(jsonb_array_length(guildstats.et_parse_round(file_name, content) -> 'players'))::text
         FROM bench_et_files"
    }

    fn baseline_sql(&self) -> &'static str {
        // Counting the non-empty lines after the header: what the parser's player count must
        // agree with, at the price of reading every byte once.
        "SELECT sum((SELECT count(*) FROM unnest(string_to_array(convert_from(content, 'UTF8'), E'\\n'))
                     WITH ORDINALITY AS l(line, n) WHERE n > 1 AND line <> ''))::text
         FROM bench_et_files"
    }
}
