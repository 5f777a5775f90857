//! Discord-style snowflakes: milliseconds since the Discord epoch in the high bits, and 22
//! low bits that the generator uses for an index so that ids are unique by construction.

use crate::time::Ts;

/// 2015-01-01 00:00:00 UTC in Unix milliseconds.
pub const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// A snowflake for an object created at `at`, with `low` (mod 2^22) in the low bits.
pub fn snowflake(at: Ts, low: u64) -> i64 {
    let ms = (at.unix_millis() - DISCORD_EPOCH_MS).max(0);
    (ms << 22) | (low & 0x3F_FFFF) as i64
}

/// When a snowflake was created.
pub fn snowflake_time(id: i64) -> Ts {
    Ts::from_micros(((id >> 22) + DISCORD_EPOCH_MS) * 1000)
}
