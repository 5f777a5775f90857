//! Linking imported rounds: which R1 and R2 form a match, who won it, which rounds form an
//! evening's session, and which rounds were replayed. SQL hands over every round's facts as
//! jsonb (names, header numbers, rosters) and stores the answer; nothing here reads tables.

use guildstats_engine::et::{
    self as engine, parse_file_name, MapOutcome, RestartKind, RoundDescriptor, Team,
};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
struct StoredRound {
    round_id: i64,
    file_name: String,
    defender_team: Option<i64>,
    winner_team: Option<i64>,
    time_limit_seconds: Option<u32>,
    time_used_seconds: Option<u32>,
    #[serde(default)]
    roster: Vec<String>,
    #[serde(default)]
    attackers: Vec<String>,
}

type LinkRow = (
    name!(round_id, i64),
    name!(paired_round_id, Option<i64>),
    name!(is_orphan, bool),
    name!(match_id, Option<String>),
    name!(session_id, i64),
    name!(restart_kind, Option<String>),
    name!(outcome, Option<String>),
    name!(time_to_beat_seconds, Option<i32>),
    name!(r1_defence_held, Option<bool>),
    name!(r2_defence_held, Option<bool>),
);

/// `_et_link_rounds(rounds, session_gap_seconds)`: one row per round with its partner, match,
/// session, restart mark and (on R2 rows) the stopwatch result.
// The row type must be spelled out here: pgrx reads the column names from this signature.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn _et_link_rounds(
    rounds: JsonB,
    session_gap_seconds: f64,
) -> TableIterator<
    'static,
    (
        name!(round_id, i64),
        name!(paired_round_id, Option<i64>),
        name!(is_orphan, bool),
        name!(match_id, Option<String>),
        name!(session_id, i64),
        name!(restart_kind, Option<String>),
        name!(outcome, Option<String>),
        name!(time_to_beat_seconds, Option<i32>),
        name!(r1_defence_held, Option<bool>),
        name!(r2_defence_held, Option<bool>),
    ),
> {
    let stored: Vec<StoredRound> = serde_json::from_value(rounds.0).unwrap_or_else(|error| {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("_et_link_rounds: malformed round list: {error}"),
        )
    });
    let mut ids = Vec::with_capacity(stored.len());
    let mut descriptors = Vec::with_capacity(stored.len());
    for round in stored {
        // Imported rounds always have a valid name: the parser checked it.
        let Ok(file) = parse_file_name(&round.file_name) else {
            continue;
        };
        ids.push(round.round_id);
        descriptors.push(RoundDescriptor {
            file_name: round.file_name,
            saved_at: file.saved_at,
            map: file.map,
            round: file.round,
            roster: sorted(round.roster),
            attackers: sorted(round.attackers),
            defender: round.defender_team.and_then(Team::from_code),
            winner: round.winner_team.and_then(Team::from_code),
            time_limit_seconds: round.time_limit_seconds,
            time_used_seconds: round.time_used_seconds,
        });
    }
    let gap = Duration::from_secs_f64(session_gap_seconds.max(0.0));
    TableIterator::new(link(&ids, &descriptors, gap))
}

/// `_et_linking_reach(session_gap_seconds)`: how far apart rounds must be to be linked
/// separately (see `guildstats_engine::et::linking_reach`), in seconds.
#[pg_extern(immutable, parallel_safe, strict)]
pub(crate) fn _et_linking_reach(session_gap_seconds: f64) -> f64 {
    let gap = Duration::from_secs_f64(session_gap_seconds.max(0.0));
    engine::linking_reach(gap).as_secs_f64()
}

fn sorted(mut guids: Vec<String>) -> Vec<String> {
    guids.sort_unstable();
    guids.dedup();
    guids
}

fn link(ids: &[i64], rounds: &[RoundDescriptor], gap: Duration) -> Vec<LinkRow> {
    let pairing = engine::pair_rounds(rounds);
    let mut rows: Vec<LinkRow> = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let orphan = r.round == 2 && pairing.orphan_r2.contains(&i);
            let match_id = (r.round == 1).then(|| r.saved_at.file_stamp());
            (
                ids[i], None, orphan, match_id, ids[i], None, None, None, None, None,
            )
        })
        .collect();
    for pair in &pairing.pairs {
        let result = engine::stopwatch_result(&rounds[pair.r1], &rounds[pair.r2]);
        rows[pair.r2].1 = Some(ids[pair.r1]);
        rows[pair.r2].3 = Some(rounds[pair.r1].saved_at.file_stamp());
        rows[pair.r2].6 = Some(outcome_name(result.outcome).to_string());
        rows[pair.r2].7 = result
            .time_to_beat_seconds
            .and_then(|s| i32::try_from(s).ok());
        rows[pair.r2].8 = result.r1_defence_held;
        rows[pair.r2].9 = result.r2_defence_held;
        // An R1 replayed into two R2s keeps the latest partner.
        rows[pair.r1].1 = Some(ids[pair.r2]);
    }
    for session in engine::group_sessions(rounds, gap) {
        let first = session.rounds.first().map(|&i| ids[i]).unwrap_or_default();
        for &i in &session.rounds {
            rows[i].4 = first;
        }
    }
    for mark in engine::detect_restarts(rounds, gap) {
        rows[mark.earlier].5 = Some(
            match mark.kind {
                RestartKind::Cancelled => "cancelled",
                RestartKind::Substitution => "substitution",
            }
            .to_string(),
        );
    }
    rows
}

fn outcome_name(outcome: MapOutcome) -> &'static str {
    match outcome {
        MapOutcome::R1AttackersWin => "round1_attackers",
        MapOutcome::R2AttackersWin => "round2_attackers",
        MapOutcome::Draw => "draw",
        MapOutcome::Unknown => "unknown",
    }
}

extension_sql!(
    r#"
COMMENT ON FUNCTION _et_link_rounds(jsonb, double precision) IS
    'Internal: pairs ET:Legacy rounds into matches, groups them into sessions and marks restarts, from a jsonb list of round facts; used by import_et_rounds().';
COMMENT ON FUNCTION _et_linking_reach(double precision) IS
    'Internal: how far apart (in seconds) two ET:Legacy rounds must be for linking to treat them separately, for a session gap in seconds: the largest of the gap, the round-pairing window and the restart window.';
"#,
    name = "et_link_comment",
    requires = [_et_link_rounds, _et_linking_reach]
);
