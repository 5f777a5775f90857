//! Pairing, stopwatch results, sessions and restarts over hand-made round descriptors.

mod common;

use std::time::Duration;

use common::parse_fixture;
use guildstats_engine::et::{
    detect_restarts, group_sessions, linking_reach, pair_rounds, stopwatch_result, LocalDateTime,
    MapOutcome, RestartKind, RestartMark, RoundDescriptor, Team, SESSION_GAP,
};
use proptest::prelude::*;

/// A round saved at `stamp` ("YYYY-MM-DD HH:MM:SS") with the given roster.
fn round(stamp: &str, map: &str, number: u8, roster: &[&str]) -> RoundDescriptor {
    let n = |range: std::ops::Range<usize>| stamp[range].parse::<u16>().unwrap();
    let saved_at = LocalDateTime::new(
        n(0..4),
        n(5..7) as u8,
        n(8..10) as u8,
        n(11..13) as u8,
        n(14..16) as u8,
        n(17..19) as u8,
    )
    .unwrap();
    RoundDescriptor {
        file_name: format!("{}-{map}-round-{number}.txt", saved_at.file_stamp()),
        saved_at,
        map: map.to_string(),
        round: number,
        roster: roster.iter().map(|s| s.to_string()).collect(),
        attackers: Vec::new(),
        defender: Some(Team::Axis),
        winner: Some(Team::Axis),
        time_limit_seconds: Some(600),
        time_used_seconds: Some(600),
    }
}

fn names(rounds: &[RoundDescriptor], indices: &[usize]) -> Vec<String> {
    indices
        .iter()
        .map(|&i| rounds[i].file_name.clone())
        .collect()
}

fn pair_names(rounds: &[RoundDescriptor]) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = pair_rounds(rounds)
        .pairs
        .iter()
        .map(|p| {
            (
                rounds[p.r1].file_name.clone(),
                rounds[p.r2].file_name.clone(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn r2_pairs_with_latest_r1_of_same_map_within_45_minutes() {
    let rounds = vec![
        round("2025-10-19 23:30:00", "supply", 1, &["A"]), // older R1 of supply
        round("2025-10-19 23:40:00", "supply", 1, &["A"]), // latest R1 before the R2
        round("2025-10-19 23:50:00", "radar", 1, &["A"]),  // other map
        round("2025-10-20 00:05:00", "supply", 2, &["A"]), // crosses midnight, 25 min
        round("2025-10-20 00:50:00", "radar", 2, &["A"]),  // exactly 60 min: too late
        round("2025-10-20 01:00:00", "goldrush", 1, &["A"]),
        round("2025-10-20 01:45:00", "goldrush", 2, &["A"]), // exactly 45 min: pairs
        round("2025-10-20 02:00:00", "frost", 1, &["A"]),
        round("2025-10-20 02:45:01", "frost", 2, &["A"]), // 45 min 1 s: orphan
        round("2025-10-20 03:00:00", "same", 1, &["A"]),
        round("2025-10-20 03:00:00", "same", 2, &["A"]), // same second: not strictly before
    ];
    let pairing = pair_rounds(&rounds);
    assert_eq!(
        pair_names(&rounds),
        [
            (rounds[1].file_name.clone(), rounds[3].file_name.clone()),
            (rounds[5].file_name.clone(), rounds[6].file_name.clone()),
        ]
    );
    assert_eq!(
        names(&rounds, &pairing.orphan_r2),
        names(&rounds, &[4, 8, 10])
    );
    assert_eq!(
        names(&rounds, &pairing.r1_without_r2),
        names(&rounds, &[0, 2, 7, 9])
    );
    assert_eq!(pairing.r1_of(3), Some(1));
    assert!(pairing.has_r2(5) && !pairing.has_r2(0));
}

#[test]
fn pairing_does_not_depend_on_input_order() {
    let r1 = round("2025-11-01 23:55:00", "supply", 1, &["A"]);
    let r2 = round("2025-11-02 00:06:00", "supply", 2, &["A"]);
    // The R2 arrives first: on its own it is an orphan…
    let alone = vec![r2.clone()];
    assert_eq!(pair_rounds(&alone).orphan_r2, [0]);
    // …and once the R1 is there, recomputing pairs them, whatever the order.
    let forward = vec![r1.clone(), r2.clone()];
    let backward = vec![r2, r1];
    assert_eq!(pair_names(&forward), pair_names(&backward));
    assert_eq!(pair_names(&backward).len(), 1);
    assert!(pair_rounds(&backward).orphan_r2.is_empty());
}

#[test]
fn stopwatch_results() {
    let mut r1 = round("2025-10-17 20:10:00", "supply", 1, &["A", "B"]);
    let mut r2 = round("2025-10-17 20:20:00", "supply", 2, &["A", "B"]);
    // R1 objective done in 6:00 (winner Allies ≠ defender Axis), R2 fullhold.
    r1.winner = Some(Team::Allies);
    r1.time_used_seconds = Some(360);
    r2.time_limit_seconds = Some(360);
    r2.time_used_seconds = Some(360);
    let result = stopwatch_result(&r1, &r2);
    assert_eq!(result.outcome, MapOutcome::R1AttackersWin);
    assert_eq!(result.time_to_beat_seconds, Some(360));
    assert_eq!(
        (result.r1_defence_held, result.r2_defence_held),
        (Some(false), Some(true))
    );
    // R2 attackers also complete: they beat the time.
    r2.winner = Some(Team::Allies);
    assert_eq!(
        stopwatch_result(&r1, &r2).outcome,
        MapOutcome::R2AttackersWin
    );
    // Both fullholds: draw, T1 = the time limit even if the time used is unknown.
    r1.winner = Some(Team::Axis);
    r1.time_used_seconds = None;
    r2.winner = Some(Team::Axis);
    let draw = stopwatch_result(&r1, &r2);
    assert_eq!(draw.outcome, MapOutcome::Draw);
    assert_eq!(draw.time_to_beat_seconds, Some(600));
    // R1 fullhold, R2 objective done: R2 attackers win.
    r2.winner = Some(Team::Allies);
    assert_eq!(
        stopwatch_result(&r1, &r2).outcome,
        MapOutcome::R2AttackersWin
    );
    // Unknown teams.
    r2.winner = None;
    assert_eq!(stopwatch_result(&r1, &r2).outcome, MapOutcome::Unknown);
}

#[test]
fn stopwatch_result_from_parsed_files_names_the_attackers() {
    let r1 = RoundDescriptor::from_parsed(&parse_fixture("2025-10-19-234500-supply-round-1.txt"));
    let r2 = RoundDescriptor::from_parsed(&parse_fixture("2025-10-20-000300-supply-round-2.txt"));
    assert_eq!(r1.roster, ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC", "DDDDDDDD"]);
    let result = stopwatch_result(&r1, &r2);
    // R1: Allies completed in 7:30; R2: Axis (defender) held → the R1 attackers win.
    assert_eq!(result.outcome, MapOutcome::R1AttackersWin);
    assert_eq!(result.time_to_beat_seconds, Some(450));
    assert_eq!(result.r1_attackers, ["AAAAAAAA", "DDDDDDDD"]);
    assert_eq!(result.r2_attackers, ["BBBBBBBB", "EEEEEEEE"]);
    assert_eq!(pair_rounds(&[r2, r1]).pairs.len(), 1);
}

#[test]
fn sessions_split_on_gaps_longer_than_the_limit() {
    let rounds = vec![
        round("2025-10-19 23:00:00", "a", 1, &["A"]),
        round("2025-10-19 23:53:00", "b", 1, &["A"]),
        round("2025-10-20 00:53:00", "b", 2, &["A"]), // exactly 60 min later: same session
        round("2025-10-20 01:53:01", "c", 1, &["A"]), // 60 min 1 s: new session
        round("2025-10-22 20:00:00", "d", 1, &["A"]),
    ];
    let mut shuffled = rounds.clone();
    shuffled.swap(0, 4);
    shuffled.swap(1, 3);
    for input in [&rounds, &shuffled] {
        let sessions = group_sessions(input, SESSION_GAP);
        let grouped: Vec<Vec<String>> = sessions.iter().map(|s| names(input, &s.rounds)).collect();
        assert_eq!(
            grouped,
            [
                names(&rounds, &[0, 1, 2]),
                names(&rounds, &[3]),
                names(&rounds, &[4]),
            ]
        );
        assert_eq!(sessions[0].first_saved_at, rounds[0].saved_at);
        assert_eq!(sessions[0].last_saved_at, rounds[2].saved_at);
    }
    // A longer gap merges the first two sessions.
    assert_eq!(
        group_sessions(&rounds, Duration::from_secs(3 * 3600)).len(),
        2
    );
    assert!(group_sessions(&[], SESSION_GAP).is_empty());
}

#[test]
fn restarts_and_substitutions() {
    let rounds = vec![
        // Replayed with two more players 13 min later: substitution.
        round("2025-10-17 20:21:40", "supply", 1, &["A", "B"]),
        round("2025-10-17 20:34:25", "supply", 1, &["A", "B", "C"]),
        round("2025-10-17 20:45:00", "supply", 2, &["A", "B", "C"]),
        // Same roster, 5 min later: cancelled.
        round("2025-10-17 21:00:00", "radar", 1, &["A", "B"]),
        round("2025-10-17 21:05:00", "radar", 1, &["B", "A"]),
        round("2025-10-17 21:15:00", "radar", 2, &["A", "B"]),
        // A short map played twice: the first R1 has its R2, so it is not a restart.
        round("2025-10-17 21:30:00", "escape", 1, &["A"]),
        round("2025-10-17 21:34:00", "escape", 2, &["A"]),
        round("2025-10-17 21:38:00", "escape", 1, &["A"]),
        round("2025-10-17 21:42:00", "escape", 2, &["A"]),
        // An R2 replayed for the same R1: the first R2 is cancelled.
        round("2025-10-17 22:00:00", "frost", 1, &["A"]),
        round("2025-10-17 22:05:00", "frost", 2, &["A"]),
        round("2025-10-17 22:12:00", "frost", 2, &["A"]),
        // 15 min apart is not "less than 15 min".
        round("2025-10-17 22:30:00", "adler", 1, &["A"]),
        round("2025-10-17 22:45:00", "adler", 1, &["A"]),
    ];
    // Sort roster like from_parsed does.
    let rounds: Vec<RoundDescriptor> = rounds
        .into_iter()
        .map(|mut r| {
            r.roster.sort();
            r
        })
        .collect();
    let marks = detect_restarts(&rounds, SESSION_GAP);
    assert_eq!(
        marks,
        [
            RestartMark {
                earlier: 0,
                later: 1,
                kind: RestartKind::Substitution
            },
            RestartMark {
                earlier: 3,
                later: 4,
                kind: RestartKind::Cancelled
            },
            RestartMark {
                earlier: 11,
                later: 12,
                kind: RestartKind::Cancelled
            },
        ]
    );
    // Different sessions never restart each other: with a 1-minute gap every round is alone.
    assert!(detect_restarts(&rounds, Duration::from_secs(60)).is_empty());
}

/// Everything linking decides, described by file names: pairs, orphans, sessions, restarts.
type Links = (
    Vec<(String, String)>,
    Vec<String>,
    Vec<Vec<String>>,
    Vec<(String, String, RestartKind)>,
);

fn links(rounds: &[RoundDescriptor], gap: Duration) -> Links {
    let pairing = pair_rounds(rounds);
    let mut orphans = names(rounds, &pairing.orphan_r2);
    orphans.sort();
    let mut sessions: Vec<Vec<String>> = group_sessions(rounds, gap)
        .iter()
        .map(|s| names(rounds, &s.rounds))
        .collect();
    sessions.sort();
    let mut restarts: Vec<_> = detect_restarts(rounds, gap)
        .iter()
        .map(|m| {
            (
                rounds[m.earlier].file_name.clone(),
                rounds[m.later].file_name.clone(),
                m.kind,
            )
        })
        .collect();
    restarts.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    (pair_names(rounds), orphans, sessions, restarts)
}

/// A round `seconds` after 2025-10-01 00:00:00, with a name unique to its index.
fn round_at(index: usize, seconds: u32, map: u8, number: u8, roster: u8) -> RoundDescriptor {
    let saved_at = LocalDateTime::new(
        2025,
        10,
        1 + (seconds / 86_400) as u8,
        (seconds / 3600 % 24) as u8,
        (seconds / 60 % 60) as u8,
        (seconds % 60) as u8,
    )
    .unwrap();
    let map = ["supply", "radar", "frost"][usize::from(map)];
    let roster: Vec<String> = ["A", "B", "C"]
        .iter()
        .enumerate()
        .filter(|(bit, _)| roster & (1 << bit) != 0)
        .map(|(_, guid)| guid.to_string())
        .collect();
    RoundDescriptor {
        file_name: format!("{}-{map}-round-{number}-{index}.txt", saved_at.file_stamp()),
        saved_at,
        map: map.to_string(),
        round: number,
        roster,
        attackers: Vec::new(),
        defender: Some(Team::Axis),
        winner: Some(Team::Allies),
        time_limit_seconds: Some(600),
        time_used_seconds: Some(300),
    }
}

proptest! {
    /// Cutting the rounds wherever neighbours are further apart than `linking_reach` and
    /// linking each piece alone gives what linking all of them gives: an import may relink only
    /// the rounds near the new ones.
    #[test]
    fn rounds_further_apart_than_the_reach_link_independently(
        steps in prop::collection::vec(
            // Gaps of a few minutes (same map or session) up to a few hours, with many near
            // the pairing window, the session gap and the restart window.
            (prop_oneof![0u32..1200, 2400u32..6000, 6000u32..14000], 0u8..3, 1u8..3, 0u8..8),
            0..60,
        ),
        gap_minutes in prop_oneof![Just(10u64), Just(30), Just(60), Just(90)],
    ) {
        let gap = Duration::from_secs(gap_minutes * 60);
        let mut seconds = 0;
        let rounds: Vec<RoundDescriptor> = steps
            .iter()
            .enumerate()
            .map(|(i, &(step, map, number, roster))| {
                seconds += step;
                round_at(i, seconds, map, number, roster)
            })
            .collect();
        // The rounds were made in time order; cut where neighbours are further apart.
        let reach = linking_reach(gap).as_secs() as i64;
        let mut pieces: Vec<Vec<RoundDescriptor>> = Vec::new();
        for (i, round) in rounds.iter().enumerate() {
            let apart = i == 0
                || round.saved_at.seconds_since_epoch() - rounds[i - 1].saved_at.seconds_since_epoch()
                    > reach;
            if apart {
                pieces.push(Vec::new());
            }
            pieces.last_mut().unwrap().push(round.clone());
        }
        let mut by_piece: Links = Default::default();
        for piece in &pieces {
            let (pairs, orphans, sessions, restarts) = links(piece, gap);
            by_piece.0.extend(pairs);
            by_piece.1.extend(orphans);
            by_piece.2.extend(sessions);
            by_piece.3.extend(restarts);
        }
        by_piece.0.sort();
        by_piece.1.sort();
        by_piece.2.sort();
        by_piece.3.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        prop_assert_eq!(by_piece, links(&rounds, gap));
    }
}
