//! The fast path of `import_et_rounds()`: every pending file of a batch is parsed here, in
//! Rust, before anything is written; the good ones are then stored with one statement per
//! table, and the bad ones get their error recorded beside their raw row. A round 2 whose
//! round 1 is already known (in this batch or imported before) is stored with its
//! differential straight away, so the linking step that follows has nothing to redo.
//!
//! Anything unexpected raises an error, and `import_et_rounds()` then falls back to importing
//! the batch one file at a time in subtransactions: the fast path may fail, never half-write.

use super::columns::{PlayerColumns, RoundColumns, RoundFacts, WeaponColumns};
use super::json;
use crate::error::spi_error;
use guildstats_engine::et::{
    self as engine, pair_rounds, parse_file_name, ParsedRound, Player, RoundDescriptor,
    ROUND_MATCH_WINDOW,
};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use std::collections::{HashMap, HashSet};

struct PendingFile {
    ingest_id: i64,
    file_name: String,
    source: String,
    sha256: Vec<u8>,
    content: Vec<u8>,
}

/// An already imported round 1 that a round 2 of this batch may pair with.
struct KnownRound1 {
    round_id: i64,
    ingest_id: i64,
    file_name: String,
}

/// `_et_import_batch(max_files)`: imports up to `max_files` pending files; returns the files
/// read, rounds imported and files that failed to parse.
#[pg_extern(volatile, parallel_unsafe)]
pub(crate) fn _et_import_batch(
    max_files: i32,
) -> TableIterator<
    'static,
    (
        name!(files_read, i32),
        name!(rounds_imported, i32),
        name!(files_failed, i32),
    ),
> {
    let pending = pending_files(max_files);
    let mut parsed: Vec<(PendingFile, ParsedRound)> = Vec::with_capacity(pending.len());
    let mut failures: Vec<(i64, String)> = Vec::new();
    for file in pending {
        match engine::parse_round(&file.file_name, &file.content) {
            Ok(round) => match duplicate_guid(&round) {
                None => parsed.push((file, round)),
                Some(guid) => failures.push((
                    file.ingest_id,
                    format!("{}: player GUID {guid} appears twice", file.file_name),
                )),
            },
            Err(error) => failures.push((file.ingest_id, error.to_string())),
        }
    }
    let files_read = (parsed.len() + failures.len()) as i32;
    let imported = parsed.len() as i32;
    if !parsed.is_empty() {
        store(&parsed);
    }
    record_failures(&failures);
    TableIterator::once((files_read, imported, failures.len() as i32))
}

fn pending_files(max_files: i32) -> Vec<PendingFile> {
    Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT f.ingest_id, f.file_name, f.source, f.sha256, f.content
                 FROM guildstats.raw_et_stats_files f
                 WHERE f.imported_at IS NULL AND f.import_error IS NULL
                   AND NOT EXISTS (SELECT 1 FROM guildstats.et_rounds r WHERE r.sha256 = f.sha256)
                 ORDER BY f.ingest_id
                 LIMIT $1",
                None,
                &[DatumWithOid::from(max_files)],
            )
            .unwrap_or_else(|e| spi_error("_et_import_batch: reading pending files", e));
        rows.map(|row| PendingFile {
            ingest_id: row.get(1).ok().flatten().unwrap_or_default(),
            file_name: row.get(2).ok().flatten().unwrap_or_default(),
            source: row.get(3).ok().flatten().unwrap_or_default(),
            sha256: row.get(4).ok().flatten().unwrap_or_default(),
            content: row.get(5).ok().flatten().unwrap_or_default(),
        })
        .collect()
    })
}

fn duplicate_guid(round: &ParsedRound) -> Option<&str> {
    let mut seen = HashSet::with_capacity(round.players.len());
    round
        .players
        .iter()
        .find(|p| !seen.insert(p.guid.as_str()))
        .map(|p| p.guid.as_str())
}

/// Imported round 1s that a round 2 of this batch may pair with: same map, at most the pairing
/// window before it (so that the work does not grow with the history).
fn known_round1s(parsed: &[(PendingFile, ParsedRound)]) -> Vec<KnownRound1> {
    let (maps, times): (Vec<String>, Vec<String>) = parsed
        .iter()
        .filter(|(_, r)| r.round() == 2)
        .map(|(_, r)| (r.file.map.clone(), r.file.saved_at.to_string()))
        .unzip();
    if maps.is_empty() {
        return Vec::new();
    }
    let window = i64::try_from(ROUND_MATCH_WINDOW.as_secs()).unwrap_or(i64::MAX);
    Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT DISTINCT r.round_id, r.raw_ingest_id, r.file_name
                 FROM unnest($1::text[], $2::text[]::timestamp[]) AS q(map, saved_at)
                 CROSS JOIN LATERAL (
                     -- OFFSET 0 keeps this a range scan of the save-time index per round 2;
                     -- joined flat, the planner hashes every round 1 of the map instead.
                     SELECT r.round_id, r.raw_ingest_id, r.file_name
                     FROM guildstats.et_rounds r
                     WHERE r.saved_at < q.saved_at
                       AND r.saved_at >= q.saved_at - make_interval(secs => $3)
                       AND r.map = q.map AND r.round_number = 1
                     OFFSET 0) r",
                None,
                &[
                    DatumWithOid::from(maps),
                    DatumWithOid::from(times),
                    DatumWithOid::from(window as f64),
                ],
            )
            .unwrap_or_else(|e| spi_error("_et_import_batch: reading imported round 1s", e));
        rows.map(|row| KnownRound1 {
            round_id: row.get(1).ok().flatten().unwrap_or_default(),
            ingest_id: row.get(2).ok().flatten().unwrap_or_default(),
            file_name: row.get(3).ok().flatten().unwrap_or_default(),
        })
        .collect()
    })
}

fn raw_content(ingest_id: i64) -> Option<(String, Vec<u8>)> {
    Spi::connect(|client| {
        let row = client
            .select(
                "SELECT file_name, content FROM guildstats.raw_et_stats_files WHERE ingest_id = $1",
                None,
                &[DatumWithOid::from(ingest_id)],
            )
            .unwrap_or_else(|e| spi_error("_et_import_batch: reading a round 1", e))
            .first();
        Some((row.get(1).ok()??, row.get(2).ok()??))
    })
}

fn new_round_ids(count: usize) -> Vec<i64> {
    Spi::connect_mut(|client| {
        let rows = client
            .update(
                "SELECT nextval(pg_get_serial_sequence('guildstats.et_rounds', 'round_id'))
                 FROM generate_series(1, $1)",
                None,
                &[DatumWithOid::from(count as i64)],
            )
            .unwrap_or_else(|e| spi_error("_et_import_batch: allocating round ids", e));
        rows.map(|row| row.get::<i64>(1).ok().flatten().unwrap_or_default())
            .collect()
    })
}

fn store(parsed: &[(PendingFile, ParsedRound)]) {
    let ids = new_round_ids(parsed.len());
    // Pair this batch's round 2s against this batch and the imported round 1s, by file names:
    // the pairing needs only map, round and save time.
    let mut descriptors: Vec<RoundDescriptor> = parsed
        .iter()
        .map(|(_, r)| RoundDescriptor::from_parsed(r))
        .collect();
    let mut known = Vec::new();
    for k in known_round1s(parsed) {
        // Imported rounds always have a valid name: the parser checked it.
        let Ok(file) = parse_file_name(&k.file_name) else {
            continue;
        };
        descriptors.push(RoundDescriptor {
            file_name: k.file_name.clone(),
            saved_at: file.saved_at,
            map: file.map,
            round: file.round,
            roster: Vec::new(),
            attackers: Vec::new(),
            defender: None,
            winner: None,
            time_limit_seconds: None,
            time_used_seconds: None,
        });
        known.push(k);
    }
    let pairing = pair_rounds(&descriptors);
    let mut round1_of: HashMap<usize, usize> = HashMap::new();
    for pair in &pairing.pairs {
        if pair.r2 < parsed.len() {
            round1_of.insert(pair.r2, pair.r1);
        }
    }
    let mut earlier_round1s: HashMap<usize, ParsedRound> = HashMap::new();

    let mut rounds = RoundColumns::default();
    let mut players = PlayerColumns::default();
    let mut weapons = WeaponColumns::default();
    for (i, (file, round)) in parsed.iter().enumerate() {
        let mut basis: Option<i64> = None;
        if let Some(&r1) = round1_of.get(&i) {
            let round1 = if r1 < parsed.len() {
                Some(&parsed[r1].1)
            } else {
                let k = &known[r1 - parsed.len()];
                if let std::collections::hash_map::Entry::Vacant(slot) = earlier_round1s.entry(r1) {
                    if let Some(r) = raw_content(k.ingest_id)
                        .and_then(|(name, content)| engine::parse_round(&name, &content).ok())
                    {
                        slot.insert(r);
                    }
                }
                earlier_round1s.get(&r1)
            };
            if let Some(round1) = round1 {
                basis = Some(if r1 < parsed.len() {
                    ids[r1]
                } else {
                    known[r1 - parsed.len()].round_id
                });
                for p in engine::round2_differential(round1, round).players {
                    push_player(
                        &mut players,
                        &mut weapons,
                        ids[i],
                        &p.round2_only,
                        json::values_basis(p.status),
                        &p.cumulative,
                    );
                }
            }
        }
        if basis.is_none() {
            for p in &round.players {
                push_player(&mut players, &mut weapons, ids[i], p, "raw", p);
            }
        }
        rounds.push(
            RoundFacts {
                round_id: ids[i],
                raw_ingest_id: file.ingest_id,
                sha256: &file.sha256,
                source: &file.source,
                players_basis: basis,
            },
            round,
        );
    }

    Spi::connect_mut(|client| {
        let (sql, args) = rounds.insert();
        client
            .update(sql, None, &args)
            .unwrap_or_else(|e| spi_error("_et_import_batch: storing rounds", e));
        if players.len() > 0 {
            let (sql, args) = players.insert();
            client
                .update(sql, None, &args)
                .unwrap_or_else(|e| spi_error("_et_import_batch: storing players", e));
            let (sql, args) = weapons.insert();
            client
                .update(sql, None, &args)
                .unwrap_or_else(|e| spi_error("_et_import_batch: storing weapons", e));
        }
        let ingest_ids: Vec<i64> = parsed.iter().map(|(f, _)| f.ingest_id).collect();
        let warnings: Vec<Option<String>> = parsed
            .iter()
            .map(|(_, r)| (!r.warnings.is_empty()).then(|| r.warnings.join("\n")))
            .collect();
        client
            .update(
                "UPDATE guildstats.raw_et_stats_files f
                 SET imported_at = now(), import_error = NULL, import_warning = w.warning
                 FROM unnest($1::bigint[], $2::text[]) AS w(ingest_id, warning)
                 WHERE f.ingest_id = w.ingest_id",
                None,
                &[DatumWithOid::from(ingest_ids), DatumWithOid::from(warnings)],
            )
            .unwrap_or_else(|e| spi_error("_et_import_batch: marking files imported", e));
    });
}

/// One player row with this round's values, its file values as `file_stats`, and its weapons.
fn push_player(
    players: &mut PlayerColumns,
    weapons: &mut WeaponColumns,
    round_id: i64,
    this_round: &Player,
    values_basis: &str,
    file_values: &Player,
) {
    let file_stats = json::file_stats(file_values).unwrap_or_else(|error| {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            format!("player {}: {error}", file_values.guid),
        )
    });
    players.push(round_id, this_round, values_basis, file_stats);
    weapons.push_all(round_id, this_round);
}

fn record_failures(failures: &[(i64, String)]) {
    if failures.is_empty() {
        return;
    }
    let ids: Vec<i64> = failures.iter().map(|(id, _)| *id).collect();
    let messages: Vec<String> = failures.iter().map(|(_, m)| m.clone()).collect();
    Spi::connect_mut(|client| {
        client
            .update(
                "UPDATE guildstats.raw_et_stats_files f SET import_error = e.message
                 FROM unnest($1::bigint[], $2::text[]) AS e(ingest_id, message)
                 WHERE f.ingest_id = e.ingest_id",
                None,
                &[DatumWithOid::from(ids), DatumWithOid::from(messages)],
            )
            .unwrap_or_else(|e| spi_error("_et_import_batch: recording parse errors", e));
    });
}

extension_sql!(
    r#"
COMMENT ON FUNCTION _et_import_batch(integer) IS
    'Internal: the fast path of import_et_rounds(): parses up to max_files pending ET:Legacy files, records parse errors beside the raw rows and stores the rest with one statement per table.';
"#,
    name = "et_import_batch_comment",
    requires = [_et_import_batch]
);
