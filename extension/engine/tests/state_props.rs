//! Property tests of the aggregate states against hostile bytes and outliers: decoding never
//! panics, what decodes stays proportional to its bytes, and the retention table is bounded by
//! `max_offset` and agrees with a plain dense count.

use guildstats_engine::gini::GiniState;
use guildstats_engine::retention::{Period, RetentionRow, RetentionState, MAX_ROWS};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const DAY_US: i64 = 86_400_000_000;

/// The cohort table straight from the definition: every user's cohort and offsets, then every
/// cell counted over all users.
fn dense_table(rows: &[(i64, Option<i64>, Option<i64>)], max_offset: i64) -> Vec<RetentionRow> {
    let mut cohort: BTreeMap<i64, i64> = BTreeMap::new();
    let mut active: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for &(u, c, a) in rows {
        if let Some(c) = c {
            let e = cohort.entry(u).or_insert(c);
            *e = (*e).min(c);
        }
        if let Some(a) = a {
            active.entry(u).or_default().insert(a);
        }
    }
    let users: BTreeSet<i64> = cohort.keys().chain(active.keys()).copied().collect();
    let of = |u: &i64| {
        cohort
            .get(u)
            .copied()
            .unwrap_or_else(|| *active[u].first().unwrap())
    };
    let Some(horizon) = active
        .values()
        .flatten()
        .copied()
        .chain(cohort.values().copied())
        .max()
    else {
        return Vec::new();
    };
    let cohorts: BTreeSet<i64> = users.iter().map(of).collect();
    let mut out = Vec::new();
    for c in cohorts {
        let members: Vec<&i64> = users.iter().filter(|u| of(u) == c).collect();
        for k in 0..=(horizon - c).min(max_offset) {
            let days = |u: &&i64| active.get(*u).cloned().unwrap_or_default();
            out.push(RetentionRow {
                cohort_start_day: c,
                cohort_size: members.len() as u64,
                period_offset: k as i32,
                retained: members
                    .iter()
                    .filter(|u| days(u).contains(&(c + k)))
                    .count() as u64,
                retained_or_later: members
                    .iter()
                    .filter(|u| days(u).iter().any(|&d| d >= c + k))
                    .count() as u64,
            });
        }
    }
    out
}

fn triple() -> impl Strategy<Value = (i64, Option<i64>, Option<i64>)> {
    (
        0i64..12,
        prop::option::weighted(0.2, -3i64..40),
        prop::option::weighted(0.9, prop_oneof![9 => -3i64..40, 1 => 300i64..400_000]),
    )
}

/// Bytes a state decoder sees often: small varints, continuation bytes, the version byte.
fn state_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        0u8..4,
        Just(0x80),
        Just(0xff),
        Just(0xfe),
        Just(0x0f),
        any::<u8>()
    ]
}

proptest! {
    #[test]
    fn retention_matches_a_dense_count(rows in prop::collection::vec(triple(), 0..60),
                                       max_offset in 0i32..12) {
        let mut state = RetentionState::new();
        for &(u, c, a) in &rows {
            state
                .add(u, c.map(|d| d * DAY_US + 1), a.map(|d| d * DAY_US + 7), Period::Day)
                .unwrap();
        }
        let ours: Vec<RetentionRow> = state.rows(max_offset).unwrap().collect();
        let dense = dense_table(&rows, i64::from(max_offset));
        prop_assert_eq!(&ours, &dense);
        let back = RetentionState::decode(&state.encode()).unwrap();
        prop_assert_eq!(back.rows(max_offset).unwrap().collect::<Vec<_>>(), dense);
    }

    #[test]
    fn random_bytes_never_panic_nor_inflate(bytes in prop::collection::vec(state_byte(), 0..64),
                                            valid_prefix in any::<bool>()) {
        let mut bytes = bytes;
        if valid_prefix && bytes.len() >= 2 {
            bytes[0] = 1;
            bytes[1] %= 3;
        }
        if let Ok(state) = RetentionState::decode(&bytes) {
            // Whatever decodes re-encodes to no more bytes and yields a bounded table.
            prop_assert!(state.encode().len() <= bytes.len());
            if let Ok(rows) = state.rows(366) {
                prop_assert!(rows.count() as u64 <= MAX_ROWS);
            }
        }
        if let Ok(state) = GiniState::decode(&bytes) {
            prop_assert!(state.distinct() <= bytes.len());
            let _ = (state.gini(), state.median(), state.top_share(0.1));
        }
    }

    #[test]
    fn mutated_states_never_panic(rows in prop::collection::vec(triple(), 1..30),
                                  at in any::<usize>(), byte in state_byte()) {
        let mut state = RetentionState::new();
        for &(u, c, a) in &rows {
            state.add(u, c.map(|d| d * DAY_US), a.map(|d| d * DAY_US), Period::Week).unwrap();
        }
        let mut bytes = state.encode();
        let i = at % bytes.len();
        bytes[i] = byte;
        if let Ok(s) = RetentionState::decode(&bytes) {
            if let Ok(rows) = s.rows(366) {
                prop_assert!(rows.count() as u64 <= MAX_ROWS);
            }
        }
    }
}
