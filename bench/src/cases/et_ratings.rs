//! ET:Legacy skill ratings: `build_et_ratings()` over the stopwatch maps of the imported files.
//!
//! `et_ratings_full`: a full rating against its floor, COPYing the rows it produces
//! (`et_rated_maps`, `et_rating_history`, `et_ratings`) into tables of the same shape. No plain
//! SQL computes a sequential Bayesian update, so the floor is the honest baseline: what any
//! rater must spend to store its answer.
//!
//! `et_ratings_incremental`: the files of the latest ten rated maps arrive (imported untimed in
//! an open transaction) on top of the rated history; the incremental build against a full
//! rebuild of every rating, then a rollback so that every run starts from the same history.
//!
//! The files are the real fixtures replicated as in `et_import` (two years apart per copy, so
//! that the copies are new maps played by the same GUIDs).

use super::et_import::{files_for, load_files, EtImport};
use super::{query_answer, Case, Side, WriteFloor};
use postgres::Client;

/// The tables a rating fills.
const RATING_TABLES: [&str; 3] = ["et_rated_maps", "et_rating_history", "et_ratings"];

/// Maps whose files arrive in the incremental case.
const INCREMENT_MAPS: i64 = 10;

const SUMMARY_SQL: &str = "SELECT format('%s maps, %s players, %s ratings, mu sum %s',
    (SELECT count(*) FROM {schema}.et_rated_maps), count(*), sum(maps), round(sum(mu)::numeric, 6))
    FROM {schema}.et_ratings";

fn summary(client: &mut Client, schema: &str) -> Result<String, String> {
    query_answer(client, &SUMMARY_SQL.replace("{schema}", schema))
}

/// Loads and imports the files, then rates every map; returns the files loaded (0 without the
/// fixtures).
fn import_and_rate(client: &mut Client, scale: u64) -> Result<u64, String> {
    // At least every fixture once, so that a smoke run has maps to rate.
    let files = load_files(client, files_for(scale).max(291))?;
    if files == 0 {
        return Ok(0);
    }
    import_loaded_and_rate(client)?;
    Ok(files)
}

/// Imports what `bench_et_files` holds now into emptied ET tables and rates every map.
fn import_loaded_and_rate(client: &mut Client) -> Result<(), String> {
    EtImport::clear(client)?;
    client
        .batch_execute(
            "SELECT * FROM guildstats.import_et_rounds();
             SELECT * FROM guildstats.build_et_ratings(full => true);",
        )
        .map_err(|e| e.to_string())
}

#[derive(Default)]
pub struct EtRatingsFull {
    /// The rows one full rating produced.
    floor: WriteFloor,
}

impl Case for EtRatingsFull {
    fn name(&self) -> &'static str {
        "et_ratings_full (floor: COPY rows)"
    }

    fn baseline_is_write_floor(&self) -> bool {
        true
    }

    fn prepare(&self, client: &mut Client, scale: u64, _seed: u64) -> Result<u64, String> {
        if import_and_rate(client, scale)? == 0 {
            return Ok(0);
        }
        self.floor.capture(client, &RATING_TABLES)?;
        let maps: i64 = client
            .query_one("SELECT count(*) FROM guildstats.et_rated_maps", &[])
            .map_err(|e| e.to_string())?
            .get(0);
        Ok(maps as u64)
    }

    fn reset(&self, client: &mut Client) -> Result<(), String> {
        self.floor.truncate(client)
    }

    fn run_extension(&self, client: &mut Client) -> Result<String, String> {
        client
            .batch_execute("SELECT * FROM guildstats.build_et_ratings(full => true)")
            .map_err(|e| e.to_string())?;
        summary(client, "guildstats")
    }

    fn run_baseline(&self, client: &mut Client) -> Result<String, String> {
        self.floor.write(client)?;
        summary(client, "bench_floor")
    }
}

pub struct EtRatingsIncremental;

impl Case for EtRatingsIncremental {
    fn name(&self) -> &'static str {
        "et_ratings_incremental_10_maps"
    }

    fn prepare(&self, client: &mut Client, scale: u64, _seed: u64) -> Result<u64, String> {
        if import_and_rate(client, scale)? == 0 {
            return Ok(0);
        }
        // The files of the latest maps (both rounds) leave the raw table; the rest is imported
        // and rated again without them.
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS bench_held_et_files;
                 CREATE TABLE bench_held_et_files AS
                 SELECT f.file_name, f.source, f.content
                   FROM guildstats.raw_et_stats_files f
                  WHERE f.file_name IN (
                        SELECT r.file_name
                          FROM guildstats.et_rated_maps rm
                          JOIN guildstats.et_matches m USING (match_id)
                          JOIN guildstats.et_rounds r ON r.round_id IN (m.round1_id, m.round2_id)
                         WHERE rm.map_seq > (SELECT max(map_seq) - {INCREMENT_MAPS} FROM guildstats.et_rated_maps));
                 DELETE FROM bench_et_files WHERE file_name IN (SELECT file_name FROM bench_held_et_files);"
            ))
            .map_err(|e| e.to_string())?;
        let rated_maps = |client: &mut Client| -> Result<i64, String> {
            Ok(client
                .query_one("SELECT count(*) FROM guildstats.et_rated_maps", &[])
                .map_err(|e| e.to_string())?
                .get(0))
        };
        let before = rated_maps(client)?;
        import_loaded_and_rate(client)?;
        let held = before - rated_maps(client)?;
        Ok(held.max(0) as u64)
    }

    /// The arrival and its import, in a transaction `answer_after` rolls back.
    fn reset(&self, client: &mut Client) -> Result<(), String> {
        client
            .batch_execute(
                "BEGIN;
                 INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
                 SELECT file_name, source, content FROM bench_held_et_files ORDER BY file_name;
                 SELECT * FROM guildstats.import_et_rounds();",
            )
            .map_err(|e| e.to_string())
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT status FROM guildstats.build_et_ratings()"
    }

    fn baseline_sql(&self) -> &'static str {
        "SELECT status FROM guildstats.build_et_ratings(full => true)"
    }

    fn answer_after(&self, client: &mut Client, _side: Side) -> Result<Option<String>, String> {
        let answer = summary(client, "guildstats");
        client
            .batch_execute("ROLLBACK")
            .map_err(|e| e.to_string())?;
        answer.map(Some)
    }
}
