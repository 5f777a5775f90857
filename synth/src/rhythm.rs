//! The weekly rhythm: when people are online, in local time.
//!
//! The simulation walks UTC days; each UTC day is read as one local "gaming day" whose
//! activity runs from 06:00 local to 05:00 the next morning. Late-night sessions therefore
//! cross midnight (and, twice a year, a DST switch) without any special casing.

use rand::Rng;

use crate::rng::normal;
use crate::time::{LocalZone, Ts};

/// Earliest and latest local hour (from the gaming day's midnight) at which activity starts.
const FIRST_HOUR: f64 = 6.0;
const LAST_HOUR: f64 = 29.0;

/// Local weekday (0 = Monday) of the gaming day that starts at `day_start` (UTC midnight).
pub(crate) fn local_weekday(zone: LocalZone, day_start: Ts) -> u32 {
    zone.to_local(day_start.add_secs(12 * 3600)).weekday()
}

/// How much busier a weekday is than an average Thursday.
pub(crate) fn weekday_factor(weekday: u32) -> f64 {
    match weekday {
        0 => 0.85,
        1 => 0.9,
        2 => 0.95,
        3 => 1.0,
        4 => 1.3,
        5 => 1.55,
        _ => 1.35,
    }
}

/// Draws a local hour of the gaming day (6.0 ..= 29.0) at which someone becomes active:
/// mostly evenings around the member's own peak, more daytime at weekends.
pub(crate) fn draw_local_hour<R: Rng + ?Sized>(rng: &mut R, weekday: u32, peak: f64) -> f64 {
    let weekend = weekday >= 5;
    let evening_share = if weekend { 0.55 } else { 0.8 };
    for _ in 0..8 {
        let h = if rng.gen::<f64>() < evening_share {
            let friday_late = if weekday == 4 || weekday == 5 {
                0.7
            } else {
                0.0
            };
            peak + friday_late + 1.8 * normal(rng)
        } else {
            let center = if weekend { 14.5 } else { 15.0 };
            center + 3.0 * normal(rng)
        };
        if (FIRST_HOUR..LAST_HOUR).contains(&h) {
            return h;
        }
    }
    peak.clamp(FIRST_HOUR, LAST_HOUR)
}

/// The UTC instant of local hour `hour` of the gaming day starting at `day_start`, never
/// before `day_start` (which keeps the day-by-day streaming order valid for any offset).
pub(crate) fn local_hour_to_utc(zone: LocalZone, day_start: Ts, hour: f64) -> Ts {
    let offset = zone.offset_secs(day_start.add_secs(12 * 3600));
    let t = day_start.add_micros((hour * 3.6e9) as i64 - offset * 1_000_000);
    t.max(day_start)
}

/// Local hour of day (0.0 ..< 24.0) of instant `t`.
pub fn local_hour(zone: LocalZone, t: Ts) -> f64 {
    let local = zone.to_local(t).micros();
    (local.rem_euclid(86_400_000_000)) as f64 / 3.6e9
}
