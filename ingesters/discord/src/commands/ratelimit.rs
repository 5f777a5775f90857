//! Per-user token buckets: a user may fire `burst` commands at once, then one every
//! `1 / per_second`. The map of users is bounded, so a raid of fresh accounts cannot grow it
//! without limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    max_users: usize,
    users: HashMap<u64, Bucket>,
}

impl RateLimiter {
    /// `per_minute` tokens come back each minute, up to `burst`.
    pub fn new(burst: u32, per_minute: u32, max_users: usize) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            max_users: max_users.max(1),
            users: HashMap::new(),
        }
    }

    fn refill(&self, bucket: Bucket, now: Instant) -> f64 {
        let gained = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second;
        (bucket.tokens + gained).min(self.burst)
    }

    /// Takes a token for `user`; `Err(wait)` says how long until the next one.
    pub fn try_take(&mut self, user: u64, now: Instant) -> Result<(), Duration> {
        if !self.users.contains_key(&user) && self.users.len() >= self.max_users {
            self.make_room(now);
        }
        let full = Bucket {
            tokens: self.burst,
            at: now,
        };
        let bucket = self.users.get(&user).copied().unwrap_or(full);
        let tokens = self.refill(bucket, now);
        if tokens >= 1.0 {
            self.users.insert(
                user,
                Bucket {
                    tokens: tokens - 1.0,
                    at: now,
                },
            );
            Ok(())
        } else {
            self.users.insert(user, Bucket { tokens, at: now });
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }

    /// A user whose bucket has refilled is indistinguishable from one never seen: forget those
    /// first, and if everybody is still cooling down, the one idle longest.
    fn make_room(&mut self, now: Instant) {
        let burst = self.burst;
        let per_second = self.per_second;
        self.users.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst
        });
        if self.users.len() >= self.max_users {
            if let Some(oldest) = self.users.iter().min_by_key(|(_, b)| b.at).map(|(u, _)| *u) {
                self.users.remove(&oldest);
            }
        }
    }

    pub fn tracked_users(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let mut limiter = RateLimiter::new(3, 6, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.try_take(1, t0).is_ok());
        }
        let wait = limiter.try_take(1, t0).unwrap_err();
        assert_eq!(wait.as_secs(), 10, "6 a minute: one every 10 s");
        // Another user is not affected.
        assert!(limiter.try_take(2, t0).is_ok());
        // After 10 s one more, not two.
        let t1 = t0 + Duration::from_secs(10);
        assert!(limiter.try_take(1, t1).is_ok());
        assert!(limiter.try_take(1, t1).is_err());
    }

    #[test]
    fn the_map_of_users_stays_bounded() {
        let mut limiter = RateLimiter::new(2, 60, 50);
        let t0 = Instant::now();
        for user in 0..10_000 {
            let _ = limiter.try_take(user, t0);
            assert!(limiter.tracked_users() <= 50);
        }
        // Idle users whose buckets refilled are forgotten before anyone still cooling down.
        let mut limiter = RateLimiter::new(1, 60, 2);
        assert!(limiter.try_take(7, t0).is_ok());
        assert!(limiter.try_take(8, t0 + Duration::from_millis(900)).is_ok());
        let later = t0 + Duration::from_secs(1);
        assert!(limiter.try_take(9, later).is_ok());
        assert!(
            limiter.try_take(8, later).is_err(),
            "8 is still cooling down"
        );
    }
}
