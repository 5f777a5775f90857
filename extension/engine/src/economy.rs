//! Health of a points economy, day by day: circulation, flows, distribution of balances
//! (median, top-1 % share, Gini) and alerts.
//!
//! The input is the ledger summed per user and calendar day ([`Flow`]), in day order. A walk
//! keeps every account's balance and the multiset of balances, so the distribution on each day
//! is the distribution of balances *as of the end of that day*, for every account, including
//! those that did not move that day. Each day costs one pass over the distinct balances.
//!
//! Definitions (all per calendar day `d`, balances at the end of `d`):
//!
//! - accounts: users with at least one transaction up to `d`; users with points: accounts with
//!   a balance above 0;
//! - circulation: the sum of all balances; earned / spent: points in (> 0) and out (< 0, as a
//!   positive number) on `d`; net = earned - spent;
//! - median balance, top-1 % share (of circulation, held by the richest `ceil(1 % · accounts)`
//!   accounts) and Gini over all accounts; a negative balance (an overdraft the source system
//!   allowed) counts as 0 in these three;
//! - inflation: circulation change against the previous day, relative (NULL when the previous
//!   day's circulation was 0 or less);
//! - alerts: inflation above 10 % in a day; net negative on 3 or more days in a row (this day
//!   and the ones before it); Gini above 0.7.

use crate::gini::{gini_of_sorted, median_of_sorted, top_share_of_sorted, Sorted};
use std::collections::{BTreeMap, HashMap};

/// Points one user earned and spent on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Any day number (PostgreSQL's days since 2000-01-01 in practice).
    pub day: i32,
    pub user_id: i64,
    /// Sum of positive amounts.
    pub earned: i64,
    /// Sum of negative amounts, as a positive number.
    pub spent: i64,
}

/// When the alerts fire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Daily growth of circulation above this (0.10 = 10 %).
    pub inflation: f64,
    /// Consecutive days with a negative net, this many or more.
    pub negative_days: u32,
    /// Gini of balances above this.
    pub gini: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            inflation: 0.10,
            negative_days: 3,
            gini: 0.7,
        }
    }
}

/// Names of the alerts, as they appear in `alerts`.
pub const ALERT_INFLATION: &str = "inflation";
pub const ALERT_NET_NEGATIVE: &str = "net_negative_streak";
pub const ALERT_GINI: &str = "gini";

/// One day of economy health.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthDay {
    pub day: i32,
    pub circulation: i64,
    pub earned: i64,
    pub spent: i64,
    pub net: i64,
    pub accounts: i64,
    pub users_with_points: i64,
    pub median_balance: Option<f64>,
    pub top1_share: Option<f64>,
    pub gini: Option<f64>,
    pub inflation: Option<f64>,
    /// Days in a row, ending today, with a negative net.
    pub negative_streak: u32,
    pub alert_inflation: bool,
    pub alert_net_negative: bool,
    pub alert_gini: bool,
}

impl HealthDay {
    /// The names of the alerts that fire on this day.
    pub fn alerts(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.alert_inflation {
            out.push(ALERT_INFLATION);
        }
        if self.alert_net_negative {
            out.push(ALERT_NET_NEGATIVE);
        }
        if self.alert_gini {
            out.push(ALERT_GINI);
        }
        out
    }
}

/// Balances of every account, and the multiset of (clamped) balances.
#[derive(Default)]
struct Ledger {
    balances: HashMap<i64, i64>,
    holders: BTreeMap<i64, u64>,
    circulation: i128,
}

impl Ledger {
    fn apply(&mut self, user: i64, delta: i64) {
        let balance = self.balances.entry(user).or_insert(i64::MIN);
        if *balance == i64::MIN {
            *balance = 0;
        } else {
            let old = (*balance).max(0);
            if let Some(c) = self.holders.get_mut(&old) {
                *c -= 1;
                if *c == 0 {
                    self.holders.remove(&old);
                }
            }
        }
        *balance = balance.saturating_add(delta);
        *self.holders.entry((*balance).max(0)).or_insert(0) += 1;
        self.circulation += i128::from(delta);
    }
}

/// The health of each day from `from` to `to` (inclusive). `flows` must be in day order;
/// flows before `from` build the opening balances (and the negative-net streak).
pub fn economy_health(
    flows: impl IntoIterator<Item = Flow>,
    from: i32,
    to: i32,
    thresholds: Thresholds,
) -> Vec<HealthDay> {
    let mut flows = flows.into_iter().peekable();
    let start = match flows.peek() {
        Some(f) => f.day.min(from),
        None => from,
    };
    walk(
        Ledger::default(),
        0,
        None,
        flows,
        start,
        from,
        to,
        thresholds,
    )
}

/// Where a walk picks up when the days before `from` were walked before (and their end state
/// kept): every account's balance at the end of the day before `from`, and that day's
/// negative-net streak. An incremental build then reads only the days it rewrites.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opening {
    /// (user, balance) of every account with a transaction before `from`.
    pub balances: Vec<(i64, i64)>,
    /// The negative_streak of the day before `from` (0 when there was none).
    pub streak: u32,
}

/// The same days as [`economy_health`] over the whole ledger, from an [`Opening`] and the
/// flows of `from..=to` only (in day order; earlier ones are folded into the opening).
pub fn economy_health_continued(
    opening: Opening,
    flows: impl IntoIterator<Item = Flow>,
    from: i32,
    to: i32,
    thresholds: Thresholds,
) -> Vec<HealthDay> {
    let mut ledger = Ledger::default();
    for &(user, balance) in &opening.balances {
        ledger.apply(user, balance);
    }
    // With no account yet the day before had no circulation to grow from, as in a full walk.
    let previous = (!opening.balances.is_empty()).then_some(ledger.circulation);
    walk(
        ledger,
        opening.streak,
        previous,
        flows.into_iter().peekable(),
        from,
        from,
        to,
        thresholds,
    )
}

#[allow(clippy::too_many_arguments)]
fn walk<I: Iterator<Item = Flow>>(
    mut ledger: Ledger,
    mut streak: u32,
    mut previous_circulation: Option<i128>,
    mut flows: std::iter::Peekable<I>,
    start: i32,
    from: i32,
    to: i32,
    thresholds: Thresholds,
) -> Vec<HealthDay> {
    let mut out = Vec::new();
    let mut day = start;
    while day <= to {
        let (mut earned, mut spent) = (0i64, 0i64);
        while let Some(flow) = flows.next_if(|f| f.day <= day) {
            ledger.apply(flow.user_id, flow.earned.saturating_sub(flow.spent));
            if flow.day == day {
                earned = earned.saturating_add(flow.earned);
                spent = spent.saturating_add(flow.spent);
            }
        }
        let net = earned.saturating_sub(spent);
        streak = if net < 0 { streak + 1 } else { 0 };
        if day >= from {
            let sorted = Sorted::Ints(ledger.holders.iter().map(|(&v, &c)| (v, c)).collect());
            let accounts = ledger.balances.len() as i64;
            let zero = ledger.holders.get(&0).copied().unwrap_or(0) as i64;
            let gini = gini_of_sorted(&sorted);
            let inflation = previous_circulation
                .filter(|&p| p > 0)
                .map(|p| (ledger.circulation - p) as f64 / p as f64);
            out.push(HealthDay {
                day,
                circulation: clamp_i64(ledger.circulation),
                earned,
                spent,
                net,
                accounts,
                users_with_points: accounts - zero,
                median_balance: median_of_sorted(&sorted),
                top1_share: top_share_of_sorted(&sorted, 0.01).ok().flatten(),
                gini,
                inflation,
                negative_streak: streak,
                alert_inflation: inflation.is_some_and(|i| i > thresholds.inflation),
                alert_net_negative: streak >= thresholds.negative_days,
                alert_gini: gini.is_some_and(|g| g > thresholds.gini),
            });
        }
        previous_circulation = Some(ledger.circulation);
        day += 1;
    }
    out
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(day: i32, user_id: i64, amount: i64) -> Flow {
        Flow {
            day,
            user_id,
            earned: amount.max(0),
            spent: (-amount).max(0),
        }
    }

    #[test]
    fn balances_carry_over_days_without_transactions() {
        let flows = vec![flow(0, 1, 100), flow(0, 2, 100), flow(2, 1, -50)];
        let days = economy_health(flows, 0, 3, Thresholds::default());
        assert_eq!(days.len(), 4);
        assert_eq!(days[0].circulation, 200);
        assert_eq!(days[0].gini, Some(0.0));
        assert_eq!(days[1].circulation, 200);
        assert_eq!(days[1].earned, 0);
        assert_eq!(days[1].inflation, Some(0.0));
        assert_eq!(days[2].circulation, 150);
        assert_eq!(days[2].spent, 50);
        assert_eq!(days[2].net, -50);
        assert_eq!(days[2].median_balance, Some(75.0));
        // 50 and 100: |50-100| over 2 * 150
        assert_eq!(days[2].gini, Some(50.0 / 300.0));
        assert_eq!(days[2].inflation, Some(-0.25));
        assert_eq!(
            days[3],
            HealthDay {
                day: 3,
                earned: 0,
                spent: 0,
                net: 0,
                inflation: Some(0.0),
                negative_streak: 0,
                ..days[2].clone()
            }
        );
    }

    #[test]
    fn opening_balances_come_from_before_the_range() {
        let flows = vec![flow(-10, 1, 100), flow(-5, 2, 300), flow(1, 2, 10)];
        let days = economy_health(flows, 0, 1, Thresholds::default());
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].day, 0);
        assert_eq!(days[0].circulation, 400);
        assert_eq!(days[0].earned, 0);
        assert_eq!(days[0].accounts, 2);
        assert_eq!(days[1].earned, 10);
        assert_eq!(days[1].inflation, Some(10.0 / 400.0));
    }

    #[test]
    fn alerts() {
        // One account holds almost everything: 1000 against nine times 1.
        let mut flows = vec![flow(0, 1, 1000)];
        flows.extend((2..=10).map(|u| flow(0, u, 1)));
        // day 1: +20 % inflation
        flows.push(flow(1, 1, 202));
        // days 2..4: net negative three days in a row
        for d in 2..5 {
            flows.push(flow(d, 1, -10));
        }
        let days = economy_health(flows, 0, 5, Thresholds::default());
        assert!(!days[0].alert_inflation);
        assert!(days[1].alert_inflation);
        assert_eq!(days[1].alerts(), vec![ALERT_INFLATION, ALERT_GINI]);
        assert!(!days[3].alert_net_negative);
        assert_eq!(days[4].negative_streak, 3);
        assert!(days[4].alert_net_negative);
        assert!(!days[5].alert_net_negative);
        // pairs (1, 1000): 9 · 999 over n · S = 10 · 1009
        assert!((days[0].gini.unwrap() - 8991.0 / 10090.0).abs() < 1e-12);
        assert!(days[0].alert_gini);
        assert_eq!(days[0].top1_share, Some(1000.0 / 1009.0));
        assert_eq!(days[0].median_balance, Some(1.0));
    }

    #[test]
    fn overdrafts_count_as_zero_in_the_distribution() {
        let flows = vec![flow(0, 1, 100), flow(0, 2, -30)];
        let days = economy_health(flows, 0, 0, Thresholds::default());
        assert_eq!(days[0].circulation, 70);
        assert_eq!(days[0].users_with_points, 1);
        assert_eq!(days[0].accounts, 2);
        assert_eq!(days[0].gini, Some(0.5));
    }

    #[test]
    fn a_continued_walk_equals_the_whole_walk() {
        // Net negative on days 2..=8 (a streak longer than the alert's 3 days crosses the cut),
        // an overdraft, an account that appears after the cut and one that moves only before it.
        let mut flows = vec![
            flow(0, 1, 500),
            flow(0, 2, 40),
            flow(1, 3, 7),
            flow(2, 2, -60),
        ];
        for d in 3..=8 {
            flows.push(flow(d, 1, -(d as i64) * 3));
        }
        flows.extend([flow(9, 4, 90), flow(10, 4, 1), flow(9, 1, 1_000)]);
        flows.sort_by_key(|f| f.day);
        let whole = economy_health(flows.clone(), 0, 10, Thresholds::default());
        for cut in 1..=10 {
            let mut balances = std::collections::BTreeMap::new();
            for f in flows.iter().filter(|f| f.day < cut) {
                *balances.entry(f.user_id).or_insert(0) += f.earned - f.spent;
            }
            let opening = Opening {
                balances: balances.into_iter().collect(),
                streak: whole[cut as usize - 1].negative_streak,
            };
            let rest = flows.iter().copied().filter(|f| f.day >= cut);
            let continued = economy_health_continued(opening, rest, cut, 10, Thresholds::default());
            assert_eq!(continued, whole[cut as usize..], "cut at day {cut}");
        }
        assert_eq!(whole[8].negative_streak, 7);
        let empty = economy_health_continued(
            Opening::default(),
            flows.clone(),
            0,
            10,
            Thresholds::default(),
        );
        assert_eq!(empty, whole);
    }

    #[test]
    fn empty_ledger_gives_empty_days() {
        let days = economy_health(Vec::new(), 5, 6, Thresholds::default());
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].circulation, 0);
        assert_eq!(days[0].gini, None);
        assert_eq!(days[0].median_balance, None);
        assert_eq!(days[1].inflation, None);
    }
}
