//! Depth-weighted retention as `retention()` computes it with a threshold: the activity of each
//! member and period summed first, then one `retention_agg` row per member and period that
//! always places the member in a cohort and marks the period active only when the sum reaches
//! `min_activity`. Checked against the definition counted directly, whatever way the rows are
//! split between partial states (parallel workers), and at threshold 0 against plain retention.

use guildstats_engine::retention::{Period, RetentionRow, RetentionState};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const HOUR_US: i64 = 3_600_000_000;

/// (member, hour since 2000-01-01, amount)
type Event = (i64, i64, u32);

/// Per member and period: the first time and the summed amount.
fn per_period(events: &[Event], period: Period) -> BTreeMap<(i64, i32), (i64, u64)> {
    let mut out: BTreeMap<(i64, i32), (i64, u64)> = BTreeMap::new();
    for &(u, h, amount) in events {
        let at = h * HOUR_US;
        let e = out.entry((u, period.index(at))).or_insert((at, 0));
        e.0 = e.0.min(at);
        e.1 += u64::from(amount);
    }
    out
}

/// The table from the definition: cohort = first period with any activity; retained at an
/// offset = the period's sum reaches the threshold; the table runs to the last period where
/// somebody reached it (or a cohort starts).
fn defined(events: &[Event], period: Period, threshold: u64, max_offset: i32) -> Vec<RetentionRow> {
    let sums = per_period(events, period);
    let mut cohort: BTreeMap<i64, i32> = BTreeMap::new();
    let mut kept: BTreeMap<i64, BTreeSet<i32>> = BTreeMap::new();
    for (&(u, p), &(_, amount)) in &sums {
        let c = cohort.entry(u).or_insert(p);
        *c = (*c).min(p);
        if amount >= threshold {
            kept.entry(u).or_default().insert(p);
        }
    }
    let Some(horizon) = kept
        .values()
        .flatten()
        .chain(cohort.values())
        .copied()
        .max()
    else {
        return Vec::new();
    };
    let cohorts: BTreeSet<i32> = cohort.values().copied().collect();
    let mut rows = Vec::new();
    for c in cohorts {
        let members: Vec<i64> = cohort
            .iter()
            .filter(|(_, &x)| x == c)
            .map(|(&u, _)| u)
            .collect();
        for offset in 0..=(horizon - c).min(max_offset) {
            let at = c + offset;
            let count = |f: &dyn Fn(&i32) -> bool| {
                members
                    .iter()
                    .filter(|u| kept.get(u).is_some_and(|s| s.iter().any(f)))
                    .count() as u64
            };
            rows.push(RetentionRow {
                cohort_start_day: period.start_day(c),
                cohort_size: members.len() as u64,
                period_offset: offset,
                retained: count(&|p| *p == at),
                retained_or_later: count(&|p| *p >= at),
            });
        }
    }
    rows
}

/// What `retention()` feeds the aggregate, split between two partial states by `split`, then
/// combined.
fn aggregated(
    events: &[Event],
    period: Period,
    threshold: u64,
    split: &[bool],
    max_offset: i32,
) -> Vec<RetentionRow> {
    let mut parts = [RetentionState::new(), RetentionState::new()];
    for (i, (&(u, _), &(first, amount))) in per_period(events, period).iter().enumerate() {
        let part = usize::from(split.get(i).copied().unwrap_or(false));
        let active = (amount >= threshold).then_some(first);
        parts[part].add(u, Some(first), active, period).unwrap();
    }
    let [mut a, b] = parts;
    a.merge(&b).unwrap();
    a.rows(max_offset).unwrap().collect()
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((0i64..8, 0i64..24 * 60, 0u32..40), 0..80)
}

fn period() -> impl Strategy<Value = Period> {
    prop_oneof![Just(Period::Day), Just(Period::Week), Just(Period::Month)]
}

proptest! {
    #[test]
    fn thresholded_retention_matches_the_definition(
        events in events(), period in period(), threshold in 0u64..120,
        split in prop::collection::vec(any::<bool>(), 0..80), max_offset in 0i32..70,
    ) {
        prop_assert_eq!(
            aggregated(&events, period, threshold, &split, max_offset),
            defined(&events, period, threshold, max_offset)
        );
    }

    #[test]
    fn threshold_zero_is_plain_retention(events in events(), period in period()) {
        let mut plain = RetentionState::new();
        for &(u, h, _) in &events {
            plain.add(u, None, Some(h * HOUR_US), period).unwrap();
        }
        let plain: Vec<RetentionRow> = plain.rows(365).unwrap().collect();
        prop_assert_eq!(aggregated(&events, period, 0, &[], 365), plain);
    }

    #[test]
    fn a_higher_threshold_never_retains_more(events in events(), period in period(), low in 0u64..60, extra in 0u64..60) {
        let lower = defined(&events, period, low, 365);
        let higher = defined(&events, period, low + extra, 365);
        for h in &higher {
            let l = lower.iter().find(|l| l.cohort_start_day == h.cohort_start_day && l.period_offset == h.period_offset).unwrap();
            prop_assert!(h.retained <= l.retained && h.retained_or_later <= l.retained_or_later);
            prop_assert_eq!(h.cohort_size, l.cohort_size);
        }
    }
}

#[test]
fn just_below_and_at_the_threshold() {
    // Member 1: 30 in day 0, 29 in day 1 (two events of 15 and 14); member 2: 10, then 31.
    let events = [
        (1, 0, 30),
        (1, 24, 15),
        (1, 25, 14),
        (2, 1, 10),
        (2, 26, 31),
    ];
    let rows = aggregated(&events, Period::Day, 30, &[true, false, true], 365);
    let cells: Vec<(i32, u64, u64)> = rows
        .iter()
        .map(|r| (r.period_offset, r.retained, r.retained_or_later))
        .collect();
    assert_eq!(cells, vec![(0, 1, 2), (1, 1, 1)]);
    assert!(rows.iter().all(|r| r.cohort_size == 2));
}
