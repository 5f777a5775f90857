//! Instants as integer microseconds since the Unix epoch (UTC).
//!
//! The generator does calendar arithmetic millions of times per run and formats every
//! timestamp it writes, so it carries its own tiny civil-date code instead of a date library:
//! an `i64` is cheap to add, compare and sort, and PostgreSQL's `timestamptz` has exactly
//! microsecond precision, so nothing is lost on the way in.

use std::fmt;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// An instant in UTC with microsecond precision (what `timestamptz` stores).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(i64);

/// Calendar fields of an instant in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micro: u32,
}

impl Ts {
    /// The instant `us` microseconds after 1970-01-01 00:00:00 UTC.
    pub const fn from_micros(us: i64) -> Self {
        Ts(us)
    }

    /// Microseconds since the Unix epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Whole milliseconds since the Unix epoch (rounded down), as snowflakes use.
    pub const fn unix_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Midnight UTC of a calendar date; `None` for an impossible date.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        Self::from_ymd_hms(year, month, day, 0, 0, 0)
    }

    /// A calendar date and time of day in UTC; `None` when a field is out of range.
    pub fn from_ymd_hms(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days * SECS_PER_DAY + i64::from(hour) * 3600 + i64::from(minute) * 60;
        Some(Ts((secs + i64::from(second)) * MICROS_PER_SEC))
    }

    /// Parses `YYYY-MM-DD` as midnight UTC.
    pub fn parse_date(s: &str) -> Option<Self> {
        let mut parts = s.trim().splitn(3, '-');
        let y = parts.next()?.parse().ok()?;
        let m = parts.next()?.parse().ok()?;
        let d = parts.next()?.parse().ok()?;
        Self::from_ymd(y, m, d)
    }

    /// This instant plus `secs` seconds (negative goes back).
    pub const fn add_secs(self, secs: i64) -> Self {
        Ts(self.0 + secs * MICROS_PER_SEC)
    }

    /// This instant plus `us` microseconds.
    pub const fn add_micros(self, us: i64) -> Self {
        Ts(self.0 + us)
    }

    /// Seconds from `earlier` to `self` (fractional).
    pub fn secs_since(self, earlier: Ts) -> f64 {
        (self.0 - earlier.0) as f64 / MICROS_PER_SEC as f64
    }

    /// Days since the Unix epoch of this instant's UTC date.
    pub const fn epoch_day(self) -> i64 {
        self.0.div_euclid(SECS_PER_DAY * MICROS_PER_SEC)
    }

    /// Day of the week in UTC, 0 = Monday ... 6 = Sunday.
    pub const fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        (self.epoch_day() + 3).rem_euclid(7) as u32
    }

    /// Calendar fields in UTC.
    pub fn civil(self) -> Civil {
        let days = self.epoch_day();
        let rem = self.0 - days * SECS_PER_DAY * MICROS_PER_SEC;
        let (year, month, day) = civil_from_days(days);
        let secs = rem / MICROS_PER_SEC;
        Civil {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
            micro: (rem % MICROS_PER_SEC) as u32,
        }
    }

    /// `YYYYMMDD` of the UTC date, handy for readable idempotency keys.
    pub fn date_key(self) -> u32 {
        let c = self.civil();
        // Years before 0 or after 9999 never occur here; clamp rather than wrap.
        let y = c.year.clamp(0, 9999) as u32;
        y * 10_000 + c.month * 100 + c.day
    }

    /// Appends the PostgreSQL text form `YYYY-MM-DD HH:MM:SS.ffffff+00` (ISO 8601 with a space,
    /// which `timestamptz` input accepts and COPY needs no escaping for).
    pub fn write_pg(self, out: &mut Vec<u8>) {
        let c = self.civil();
        push_digits(out, c.year.clamp(0, 9999) as u32, 4);
        out.push(b'-');
        push_digits(out, c.month, 2);
        out.push(b'-');
        push_digits(out, c.day, 2);
        out.push(b' ');
        push_digits(out, c.hour, 2);
        out.push(b':');
        push_digits(out, c.minute, 2);
        out.push(b':');
        push_digits(out, c.second, 2);
        out.push(b'.');
        push_digits(out, c.micro, 6);
        out.extend_from_slice(b"+00");
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(32);
        self.write_pg(&mut buf);
        // write_pg only ever emits ASCII.
        f.write_str(&String::from_utf8_lossy(&buf))
    }
}

fn push_digits(out: &mut Vec<u8>, mut v: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for i in (0..width).rev() {
        out[start + i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

/// The local time zone the community lives in. Activity follows local evenings and weekends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalZone {
    /// Central European time with the EU daylight-saving rule (last Sunday of March to the
    /// last Sunday of October, switching at 01:00 UTC): UTC+1 in winter, UTC+2 in summer.
    EuropeBerlin,
    /// A fixed offset east of UTC, in minutes.
    Fixed { offset_minutes: i32 },
}

impl LocalZone {
    /// Offset from UTC in seconds at instant `t`.
    pub fn offset_secs(self, t: Ts) -> i64 {
        match self {
            LocalZone::Fixed { offset_minutes } => i64::from(offset_minutes) * 60,
            LocalZone::EuropeBerlin => {
                let year = t.civil().year;
                let begin = last_sunday_0100_utc(year, 3);
                let end = last_sunday_0100_utc(year, 10);
                if t >= begin && t < end {
                    7200
                } else {
                    3600
                }
            }
        }
    }

    /// The wall-clock instant: `t` shifted by the local offset (for reading hours and weekdays).
    pub fn to_local(self, t: Ts) -> Ts {
        t.add_secs(self.offset_secs(t))
    }
}

fn last_sunday_0100_utc(year: i32, month: u32) -> Ts {
    let last = days_in_month(year, month);
    let last_day = Ts::from_micros(
        days_from_civil(year, month, last) * SECS_PER_DAY * MICROS_PER_SEC + 3600 * MICROS_PER_SEC,
    );
    // Step back from the month's last day to its Sunday (weekday 6).
    let back = (i64::from(last_day.weekday()) + 1) % 7;
    last_day.add_secs(-back * SECS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_dates() {
        for days in [-800_000i64, -1, 0, 1, 20_000, 20_458, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let t = Ts::from_ymd_hms(2026, 1, 5, 18, 3, 12)
            .unwrap()
            .add_micros(123);
        assert_eq!(t.to_string(), "2026-01-05 18:03:12.000123+00");
        assert_eq!(t.weekday(), 0, "2026-01-05 is a Monday");
        assert_eq!(Ts::parse_date("2026-01-05"), Ts::from_ymd(2026, 1, 5));
        assert_eq!(Ts::parse_date("2026-02-30"), None);
    }

    #[test]
    fn berlin_switches_on_the_eu_dates() {
        let z = LocalZone::EuropeBerlin;
        // 2026: DST from 2026-03-29 01:00 UTC to 2026-10-25 01:00 UTC.
        let before = Ts::from_ymd_hms(2026, 3, 29, 0, 59, 59).unwrap();
        let after = Ts::from_ymd_hms(2026, 3, 29, 1, 0, 0).unwrap();
        assert_eq!(z.offset_secs(before), 3600);
        assert_eq!(z.offset_secs(after), 7200);
        let oct = Ts::from_ymd_hms(2026, 10, 25, 1, 0, 0).unwrap();
        assert_eq!(z.offset_secs(oct.add_secs(-1)), 7200);
        assert_eq!(z.offset_secs(oct), 3600);
    }
}
