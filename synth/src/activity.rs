//! A stream of user activity (user, instant) for the retention benchmark: many users, a
//! heavy tail of very active ones, first activity spread over the period and activity that
//! thins out after it (so cohorts decay like real ones).

use rand::Rng;

use crate::rng::{mix64, stream_rng, Stream};
use crate::time::Ts;

/// Days covered by [`activity`].
pub const ACTIVITY_DAYS: i64 = 120;

/// `n` activity events of about `n / 50` users from 2026-01-05 on, drawn from `seed`.
pub fn activity(seed: u64, n: usize) -> impl Iterator<Item = (i64, Ts)> {
    let users = (n as u64 / 50).max(10);
    let start = Ts::from_micros(1_767_571_200_000_000); // 2026-01-05 00:00 UTC
    let mut rng = stream_rng(seed, Stream::Member, u64::MAX, 11);
    (0..n).map(move |_| {
        let r: f64 = rng.gen();
        let user = ((r * r) * users as f64) as u64;
        let first_day = (mix64(seed ^ user.wrapping_mul(0x9E37)) % 100) as i64;
        let gap = (-(1.0 - rng.gen::<f64>()).ln() * 12.0) as i64;
        let day = first_day + gap % (ACTIVITY_DAYS - first_day);
        let micros = rng.gen_range(0..86_400_000_000i64);
        (
            1_000_000 + user as i64,
            start.add_secs(day * 86_400).add_micros(micros),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_is_deterministic_and_in_range() {
        let a: Vec<(i64, Ts)> = activity(3, 5000).collect();
        assert_eq!(a, activity(3, 5000).collect::<Vec<_>>());
        let start = Ts::from_micros(1_767_571_200_000_000);
        let end = start.add_secs(ACTIVITY_DAYS * 86_400);
        assert!(a.iter().all(|&(_, t)| t >= start && t < end));
        let users: std::collections::HashSet<i64> = a.iter().map(|e| e.0).collect();
        assert!(users.len() > 50, "{}", users.len());
    }
}
