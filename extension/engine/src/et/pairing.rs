//! Pairing rounds into maps, stopwatch results, gaming sessions and restarts (spec §8, §9).
//!
//! Everything here is a pure function over a list of [`RoundDescriptor`]s. Results refer to
//! rounds by their index in the input slice, and do not depend on the input order: rounds are
//! first sorted by (save time, map, round, file name).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use super::file_name::LocalDateTime;
use super::header::Team;
use super::round::ParsedRound;

/// An R2 pairs with an R1 at most this long before it (`ROUND_MATCH_WINDOW_MINUTES`).
pub const ROUND_MATCH_WINDOW: Duration = Duration::from_secs(45 * 60);
/// The default gap that starts a new gaming session (`SESSION_GAP_MINUTES`).
pub const SESSION_GAP: Duration = Duration::from_secs(60 * 60);
/// A round replayed less than this long after the same map and round is a restart.
pub const RESTART_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How far apart two rounds must be for linking to treat them separately. No R2 pairs with an
/// R1 further back than [`ROUND_MATCH_WINDOW`], no session spans a longer gap than
/// `session_gap`, and a restart is a replay within [`RESTART_WINDOW`] in the same session. So
/// wherever two rounds neighbouring in time are further apart than this, the rounds on either
/// side can be linked on their own: pairing, sessions and restarts come out as for all rounds
/// at once. That is what lets an import relink only the rounds near the new ones.
pub fn linking_reach(session_gap: Duration) -> Duration {
    session_gap.max(ROUND_MATCH_WINDOW).max(RESTART_WINDOW)
}

/// What pairing, results and sessions need to know about one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundDescriptor {
    /// The stats file's name; also the final tie-breaker when sorting.
    pub file_name: String,
    /// Save time from the file name.
    pub saved_at: LocalDateTime,
    /// Map name from the file name.
    pub map: String,
    /// Round number from the file name (1 or 2).
    pub round: u8,
    /// GUIDs of all players in the file, sorted, without duplicates.
    pub roster: Vec<String>,
    /// GUIDs of the players on the attacking side (team ≠ defender, spectators excluded),
    /// sorted; empty when the defender is unknown.
    pub attackers: Vec<String>,
    /// The map's defending side (header).
    pub defender: Option<Team>,
    /// The round winner (header).
    pub winner: Option<Team>,
    /// Header time limit in seconds (in R2: the time to beat).
    pub time_limit_seconds: Option<u32>,
    /// Header time used in seconds; `None` when unknown.
    pub time_used_seconds: Option<u32>,
}

impl RoundDescriptor {
    /// Builds a descriptor from a parsed file.
    pub fn from_parsed(round: &ParsedRound) -> Self {
        let roster: BTreeSet<String> = round.players.iter().map(|p| p.guid.clone()).collect();
        let defender = round.header.defender;
        let attackers: BTreeSet<String> = match defender {
            Some(defender) => round
                .players
                .iter()
                .filter(|p| {
                    p.team
                        .is_some_and(|t| t != defender && t != Team::Spectator)
                })
                .map(|p| p.guid.clone())
                .collect(),
            None => BTreeSet::new(),
        };
        Self {
            file_name: round.file_name.clone(),
            saved_at: round.file.saved_at,
            map: round.file.map.clone(),
            round: round.file.round,
            roster: roster.into_iter().collect(),
            attackers: attackers.into_iter().collect(),
            defender,
            winner: round.header.winner,
            time_limit_seconds: round.header.time_limit_seconds,
            time_used_seconds: round.header.time_used_seconds,
        }
    }

    fn sort_key(&self) -> (LocalDateTime, &str, u8, &str) {
        (self.saved_at, &self.map, self.round, &self.file_name)
    }

    fn seconds(&self) -> i64 {
        self.saved_at.seconds_since_epoch()
    }
}

fn window_seconds(window: Duration) -> i64 {
    i64::try_from(window.as_secs()).unwrap_or(i64::MAX)
}

/// Input indices sorted chronologically (ties: map, round, file name).
fn chronological(rounds: &[RoundDescriptor]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|&a, &b| {
        rounds[a]
            .sort_key()
            .cmp(&rounds[b].sort_key())
            .then(a.cmp(&b))
    });
    order
}

/// A round 1 and the round 2 that completes it (indices into the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoundPair {
    /// Index of the round 1.
    pub r1: usize,
    /// Index of the round 2.
    pub r2: usize,
}

/// The outcome of [`pair_rounds`]. All lists are in chronological order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pairing {
    /// Every R2 that found its R1. An R1 can appear twice if an R2 was replayed.
    pub pairs: Vec<RoundPair>,
    /// R2s with no R1: their numbers stay cumulative and downstream should exclude them.
    pub orphan_r2: Vec<usize>,
    /// R1s that no R2 paired with.
    pub r1_without_r2: Vec<usize>,
}

impl Pairing {
    /// The R1 an R2 paired with, if any.
    pub fn r1_of(&self, r2: usize) -> Option<usize> {
        self.pairs.iter().find(|p| p.r2 == r2).map(|p| p.r1)
    }

    /// Whether some R2 paired with this R1.
    pub fn has_r2(&self, r1: usize) -> bool {
        self.pairs.iter().any(|p| p.r1 == r1)
    }
}

/// Pairs every R2 with the latest R1 of the same map saved strictly before it and at most
/// [`ROUND_MATCH_WINDOW`] earlier (midnight is no boundary). R2s with no such R1 are orphans.
///
/// The answer depends only on the set of rounds, not their order, so an R1 that arrives after
/// its R2 pairs as soon as the pairing is recomputed.
pub fn pair_rounds(rounds: &[RoundDescriptor]) -> Pairing {
    let order = chronological(rounds);
    let window = window_seconds(ROUND_MATCH_WINDOW);
    let mut pairing = Pairing::default();
    for (position, &r2) in order.iter().enumerate() {
        if rounds[r2].round != 2 {
            continue;
        }
        let r2_seconds = rounds[r2].seconds();
        // Walk back in time from the R2: the first matching R1 is the latest one.
        let r1 = order[..position]
            .iter()
            .rev()
            .map(|&i| (i, &rounds[i]))
            .take_while(|(_, r)| r2_seconds - r.seconds() <= window)
            .find(|(_, r)| {
                r.round == 1 && r.map == rounds[r2].map && r.saved_at < rounds[r2].saved_at
            })
            .map(|(i, _)| i);
        match r1 {
            Some(r1) => pairing.pairs.push(RoundPair { r1, r2 }),
            None => pairing.orphan_r2.push(r2),
        }
    }
    let completed: HashSet<usize> = pairing.pairs.iter().map(|p| p.r1).collect();
    pairing.r1_without_r2 = order
        .iter()
        .copied()
        .filter(|&i| rounds[i].round == 1 && !completed.contains(&i))
        .collect();
    pairing
}

/// Who won a stopwatch map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapOutcome {
    /// The round-1 attackers' time stood (R2 attackers failed to complete within it).
    R1AttackersWin,
    /// The round-2 attackers completed the objective within the round-1 time.
    R2AttackersWin,
    /// Both rounds were fullholds.
    Draw,
    /// A header's team numbers are unknown.
    Unknown,
}

/// The stopwatch result of a paired R1 and R2 (spec §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopwatchResult {
    /// T1, the time the R1 attackers set: R1's time used, or its time limit on a fullhold.
    pub time_to_beat_seconds: Option<u32>,
    /// Whether the defence held in round 1 (fullhold) or the objective was done.
    pub r1_defence_held: Option<bool>,
    /// Whether the defence held in round 2.
    pub r2_defence_held: Option<bool>,
    /// The map result.
    pub outcome: MapOutcome,
    /// GUIDs of the round-1 attackers (they defend in round 2).
    pub r1_attackers: Vec<String>,
    /// GUIDs of the round-2 attackers (the round-1 defenders).
    pub r2_attackers: Vec<String>,
}

/// The stopwatch result from the two headers: the R2 attackers win if the R2 winner is not the
/// defender (they beat T1); otherwise the R1 attackers win, unless both rounds were fullholds,
/// which is a draw. Teams of people are told apart by GUIDs, since team numbers swap sides.
pub fn stopwatch_result(r1: &RoundDescriptor, r2: &RoundDescriptor) -> StopwatchResult {
    let held = |r: &RoundDescriptor| Some(r.winner? == r.defender?);
    let r1_defence_held = held(r1);
    let r2_defence_held = held(r2);
    let outcome = match (r1_defence_held, r2_defence_held) {
        (_, Some(false)) => MapOutcome::R2AttackersWin,
        (Some(true), Some(true)) => MapOutcome::Draw,
        (Some(false), Some(true)) => MapOutcome::R1AttackersWin,
        _ => MapOutcome::Unknown,
    };
    let time_to_beat_seconds = match r1_defence_held {
        Some(true) => r1.time_used_seconds.or(r1.time_limit_seconds),
        _ => r1.time_used_seconds,
    };
    StopwatchResult {
        time_to_beat_seconds,
        r1_defence_held,
        r2_defence_held,
        outcome,
        r1_attackers: r1.attackers.clone(),
        r2_attackers: r2.attackers.clone(),
    }
}

/// A gaming session: rounds with no gap larger than the session gap between neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Input indices of its rounds, in chronological order.
    pub rounds: Vec<usize>,
    /// Save time of the first round.
    pub first_saved_at: LocalDateTime,
    /// Save time of the last round.
    pub last_saved_at: LocalDateTime,
}

/// Groups rounds into sessions: sorted by save time, a new session starts when the gap to the
/// previous round is more than `gap` ([`SESSION_GAP`] by default). Midnight is no boundary.
pub fn group_sessions(rounds: &[RoundDescriptor], gap: Duration) -> Vec<Session> {
    let gap = window_seconds(gap);
    let mut sessions: Vec<Session> = Vec::new();
    for i in chronological(rounds) {
        let round = &rounds[i];
        match sessions.last_mut() {
            Some(session)
                if round.seconds() - session.last_saved_at.seconds_since_epoch() <= gap =>
            {
                session.rounds.push(i);
                session.last_saved_at = round.saved_at;
            }
            _ => sessions.push(Session {
                rounds: vec![i],
                first_saved_at: round.saved_at,
                last_saved_at: round.saved_at,
            }),
        }
    }
    sessions
}

/// Why a round was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartKind {
    /// Replayed with the same roster: the earlier round is void.
    Cancelled,
    /// Replayed with a different roster (someone joined or was swapped in).
    Substitution,
}

/// An earlier round superseded by a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RestartMark {
    /// Index of the superseded round.
    pub earlier: usize,
    /// Index of the replay.
    pub later: usize,
    /// Same roster or not.
    pub kind: RestartKind,
}

/// Finds restarts (spec §9): in the same session, the same map and round number replayed less
/// than [`RESTART_WINDOW`] after an earlier round. The earlier round is cancelled when the
/// roster (GUID set) is the same and a substitution when it changed, unless it already belongs
/// to another match: an R1 that an R2 paired with, or an R2 whose R1 (or lack of one) differs
/// from the replay's. The last condition goes beyond the spec's wording: without it an orphan R2
/// followed within 15 minutes by a fresh R1 and its R2 (2025-10-12 te_escape2) would count as
/// restarted, though a whole new R1 was played in between.
pub fn detect_restarts(rounds: &[RoundDescriptor], session_gap: Duration) -> Vec<RestartMark> {
    let pairing = pair_rounds(rounds);
    let completed: HashSet<usize> = pairing.pairs.iter().map(|p| p.r1).collect();
    let round1_of: HashMap<usize, usize> = pairing.pairs.iter().map(|p| (p.r2, p.r1)).collect();
    let session_of: HashMap<usize, usize> = group_sessions(rounds, session_gap)
        .iter()
        .enumerate()
        .flat_map(|(s, session)| session.rounds.iter().map(move |&i| (i, s)))
        .collect();
    let window = window_seconds(RESTART_WINDOW);
    let order = chronological(rounds);
    let mut marks = Vec::new();
    for (position, &earlier) in order.iter().enumerate() {
        let e = &rounds[earlier];
        let later = order[position + 1..]
            .iter()
            .copied()
            .take_while(|&l| rounds[l].seconds() - e.seconds() < window)
            .find(|&l| {
                let r = &rounds[l];
                r.map == e.map
                    && r.round == e.round
                    && session_of.get(&l) == session_of.get(&earlier)
            });
        let Some(later) = later else { continue };
        let belongs_elsewhere = match e.round {
            // An R1 that an R2 completed is a finished map, not an aborted one.
            1 => completed.contains(&earlier),
            // An R2 replay continues the same R1. If the two R2s have different R1s (or only
            // one has an R1), another R1 was played between them: a different map instance.
            _ => round1_of.get(&earlier) != round1_of.get(&later),
        };
        if belongs_elsewhere {
            continue;
        }
        let kind = if e.roster == rounds[later].roster {
            RestartKind::Cancelled
        } else {
            RestartKind::Substitution
        };
        marks.push(RestartMark {
            earlier,
            later,
            kind,
        });
    }
    marks
}
