//! The facts carried by a stats file's name: `YYYY-MM-DD-HHMMSS-<map>-round-<N>.txt`.

use std::fmt;

use super::error::EtParseErrorKind;

/// A calendar date and wall-clock time with no time zone: the game server's local time.
///
/// Ordering is chronological (fields compare in order year, month, day, hour, minute, second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDateTime {
    /// Year, e.g. 2025.
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day of month 1–31 (valid for the month).
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–59.
    pub second: u8,
}

impl LocalDateTime {
    /// Builds a value after checking that it is a real calendar date and time.
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Seconds since 1970-01-01 00:00:00 of the same (zone-less) clock.
    ///
    /// Only differences between two values are meaningful; they are exact across midnight,
    /// month and year ends. Daylight-saving shifts are invisible in local time and so ignored.
    pub fn seconds_since_epoch(&self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        ) * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The `YYYY-MM-DD-HHMMSS` form used in file names and as the match id.
    pub fn file_stamp(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}-{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl fmt::Display for LocalDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0 … February = 11
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// What the file name says: save time, map and round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNameInfo {
    /// Server local time at save (the end of the round plus about 3 s, not its start).
    pub saved_at: LocalDateTime,
    /// Map name; may contain `-` and `_`.
    pub map: String,
    /// Round number, 1 or 2.
    pub round: u8,
}

/// Parses `YYYY-MM-DD-HHMMSS-<map>-round-<N>.txt`.
///
/// Anything before the last `/` is ignored, so a path works too. The map is everything between
/// the time and the last `-round-`, like the greedy regex the spec gives.
pub fn parse_file_name(file_name: &str) -> Result<FileNameInfo, EtParseErrorKind> {
    let bad = |reason: &str| EtParseErrorKind::BadFileName {
        reason: reason.to_string(),
    };
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    let stem = base
        .strip_suffix(".txt")
        .ok_or_else(|| bad("expected it to end in .txt"))?;
    let (prefix, round_text) = stem
        .rsplit_once("-round-")
        .ok_or_else(|| bad("expected '-round-<N>' before .txt"))?;
    let round = match round_text {
        "1" => 1,
        "2" => 2,
        _ => return Err(bad("the round number must be 1 or 2")),
    };
    // prefix = "YYYY-MM-DD-HHMMSS-<map>"; checking bytes keeps slicing safe for any UTF-8.
    let bytes = prefix.as_bytes();
    let shape_ok = bytes.len() > 18
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && bytes[7] == b'-'
        && bytes[8..10].iter().all(u8::is_ascii_digit)
        && bytes[10] == b'-'
        && bytes[11..17].iter().all(u8::is_ascii_digit)
        && bytes[17] == b'-';
    if !shape_ok {
        return Err(bad("expected 'YYYY-MM-DD-HHMMSS-<map>' at the start"));
    }
    let digits = |range: std::ops::Range<usize>| -> u16 {
        bytes[range]
            .iter()
            .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'))
    };
    // The values fit: each range is at most 4 ASCII digits and the shape was checked above.
    let to_u8 = |v: u16| u8::try_from(v).unwrap_or(u8::MAX);
    let saved_at = LocalDateTime::new(
        digits(0..4),
        to_u8(digits(5..7)),
        to_u8(digits(8..10)),
        to_u8(digits(11..13)),
        to_u8(digits(13..15)),
        to_u8(digits(15..17)),
    )
    .ok_or_else(|| bad("the date or time is not a real calendar date and time"))?;
    // The range every raw timestamp keeps to (docs/sql-reference.md, "Timestamps at the door"):
    // year 0000 is no PostgreSQL date at all, and a round dated centuries away would stretch
    // every report that spans the rounds.
    if !(2000..2100).contains(&saved_at.year) {
        return Err(bad("the year must be from 2000 to 2099"));
    }
    Ok(FileNameInfo {
        saved_at,
        // Bytes 0–17 were checked to be ASCII, so byte 18 starts a character.
        map: prefix[18..].to_string(),
        round,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_name() {
        let info = parse_file_name("2025-10-26-203013-etl_sp_delivery-round-2.txt").unwrap();
        assert_eq!(info.map, "etl_sp_delivery");
        assert_eq!(info.round, 2);
        assert_eq!(
            info.saved_at,
            LocalDateTime::new(2025, 10, 26, 20, 30, 13).unwrap()
        );
        assert_eq!(info.saved_at.file_stamp(), "2025-10-26-203013");
        assert_eq!(info.saved_at.to_string(), "2025-10-26 20:30:13");
    }

    #[test]
    fn map_may_contain_dashes_and_even_round() {
        let info = parse_file_name("2024-01-02-030405-my-map-round-9-round-1.txt").unwrap();
        assert_eq!(info.map, "my-map-round-9");
        assert_eq!(info.round, 1);
    }

    #[test]
    fn directories_are_ignored() {
        let info = parse_file_name("some/dir/2024-01-02-030405-supply-round-1.txt").unwrap();
        assert_eq!(info.map, "supply");
    }

    #[test]
    fn rejects_bad_names() {
        for name in [
            "",
            "supply-round-1.txt",
            "2024-01-02-030405-supply-round-1.log",
            "2024-01-02-030405-supply-round-3.txt",
            "2024-01-02-030405--round-1.txt",
            "2024-13-02-030405-supply-round-1.txt",
            "2023-02-29-030405-supply-round-1.txt",
            "2024-01-02-240000-supply-round-1.txt",
            "2024-01-02-03040x-supply-round-1.txt",
            "2024-01-02-030405-supply-round-.txt",
            "ääää-01-02-030405-supply-round-1.txt",
            "0000-01-01-000000-supply-round-1.txt",
            "1999-12-31-235959-supply-round-1.txt",
            "2100-01-01-000000-supply-round-1.txt",
            "9999-12-31-235959-supply-round-1.txt",
        ] {
            assert!(parse_file_name(name).is_err(), "{name} should be rejected");
        }
        assert!(parse_file_name("2024-02-29-030405-supply-round-1.txt").is_ok());
        assert!(parse_file_name("2000-01-01-000000-supply-round-1.txt").is_ok());
        assert!(parse_file_name("2099-12-31-235959-supply-round-1.txt").is_ok());
    }

    #[test]
    fn epoch_seconds_cross_midnight_and_year_end() {
        let a = LocalDateTime::new(2025, 10, 19, 23, 53, 0).unwrap();
        let b = LocalDateTime::new(2025, 10, 20, 0, 0, 0).unwrap();
        assert_eq!(b.seconds_since_epoch() - a.seconds_since_epoch(), 7 * 60);
        let c = LocalDateTime::new(2024, 12, 31, 23, 59, 59).unwrap();
        let d = LocalDateTime::new(2025, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(d.seconds_since_epoch() - c.seconds_since_epoch(), 1);
        let epoch = LocalDateTime::new(1970, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(epoch.seconds_since_epoch(), 0);
        // 2000-03-01 is day 11017 since the epoch.
        let y2k = LocalDateTime::new(2000, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(y2k.seconds_since_epoch(), 11_017 * 86_400);
    }
}
