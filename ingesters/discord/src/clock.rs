//! Receipt times. Discord's voice, member-leave and scheduled-event payloads carry no time of
//! their own, so the row's time is when the ingester received the event, stamped once, before
//! the row goes to the spool: a replayed spool carries the same time and stays idempotent.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Hands out strictly increasing microsecond timestamps. Two changes of one user within the same
/// microsecond would otherwise share the `(guild_id, user_id, event_ts)` key and the second would
/// be dropped as a replay; the wall clock stepping back must not reorder them either.
#[derive(Debug, Default)]
pub struct ReceiptClock {
    last_micros: AtomicI64,
}

impl ReceiptClock {
    pub fn new() -> ReceiptClock {
        ReceiptClock::default()
    }

    /// The next receipt time as RFC 3339 text (what the raw tables' timestamptz columns accept).
    pub fn stamp(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        self.stamp_at(now)
    }

    fn stamp_at(&self, now_micros: i64) -> String {
        let mut last = self.last_micros.load(Ordering::Relaxed);
        let micros = loop {
            let next = now_micros.max(last + 1);
            match self.last_micros.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break next,
                Err(seen) => last = seen,
            }
        };
        guildstats_ingest::time::rfc3339(UNIX_EPOCH + Duration::from_micros(micros.max(0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_increase_even_when_the_clock_stands_still_or_steps_back() {
        let clock = ReceiptClock::new();
        let a = clock.stamp_at(1_000_000);
        let b = clock.stamp_at(1_000_000);
        let c = clock.stamp_at(999_000);
        assert_eq!(a, "1970-01-01T00:00:01.000000Z");
        assert_eq!(b, "1970-01-01T00:00:01.000001Z");
        assert_eq!(c, "1970-01-01T00:00:01.000002Z");
    }
}
