//! Line 1 of a stats file: backslash-separated round facts.

use super::color::strip_color_codes;
use super::error::{parse_ranged, quote, EtParseErrorKind};

/// A side in ET, as numbered in the stats files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Team {
    /// 1.
    Axis,
    /// 2.
    Allies,
    /// 3: a player who moved to spectator after playing.
    Spectator,
}

impl Team {
    /// Maps the file's number (1, 2, 3) to a team; other numbers give `None`.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Axis),
            2 => Some(Self::Allies),
            3 => Some(Self::Spectator),
            _ => None,
        }
    }

    /// The file's number for this team.
    pub fn code(self) -> u8 {
        match self {
            Self::Axis => 1,
            Self::Allies => 2,
            Self::Spectator => 3,
        }
    }
}

/// The header line of a stats file.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// `sv_hostname` with colour codes, as in the file.
    pub server_name_raw: String,
    /// `sv_hostname` without colour codes.
    pub server_name: String,
    /// Map name (also in the file name).
    pub map: String,
    /// `g_customConfig`, e.g. `legacy3`.
    pub config: String,
    /// Round number as the header states it: 1 or 2 ([`super::parse_round`] also checks that it
    /// is the file name's).
    pub round: i64,
    /// The map's defending side. A map property: it does not swap in round 2. The parser
    /// accepts only 1 and 2; the type stays optional for descriptors built by hand.
    pub defender: Option<Team>,
    /// The round winner (1 or 2 in a parsed file).
    pub winner: Option<Team>,
    /// Field 6 as written (`M:SS` or decimal minutes).
    pub time_limit_raw: String,
    /// Field 7 as written.
    pub time_used_raw: String,
    /// Time limit in seconds; in round 2 this is the time to beat (round 1's time used).
    /// `None` when zero or not a possible time.
    pub time_limit_seconds: Option<u32>,
    /// Time the attackers used, in seconds; equals the limit on a fullhold.
    /// `None` ("unknown") when zero, not a possible time, or greater than the time limit.
    pub time_used_seconds: Option<u32>,
    /// The optional 9th field (c0rnp0rn7/8): measured playtime. Its unit varies between mod
    /// versions (milliseconds or seconds) and it is negative on the shutdown path, so it is kept
    /// as written.
    pub playtime_raw: Option<i64>,
}

impl Header {
    /// True when the defence held the whole time (the winner is the defending side).
    /// `None` when either team number is unknown.
    pub fn is_fullhold(&self) -> Option<bool> {
        Some(self.winner? == self.defender?)
    }
}

/// Parses a time field: `M:SS`, or decimal minutes like `20.00`.
///
/// `Ok(None)` means a well-formed but impossible value (zero, seconds ≥ 60, or more seconds than
/// a 32-bit integer holds);
/// `Err(())` means the text is not a time at all.
pub(crate) fn parse_time_seconds(text: &str) -> Result<Option<u32>, ()> {
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let seconds: u64 = if let Some((minutes, seconds)) = text.split_once(':') {
        if !all_digits(minutes) || !all_digits(seconds) || seconds.len() != 2 {
            return Err(());
        }
        let minutes: u64 = minutes.parse().map_err(|_| ())?;
        let seconds: u64 = seconds.parse().map_err(|_| ())?;
        if seconds >= 60 {
            return Ok(None);
        }
        minutes.saturating_mul(60).saturating_add(seconds)
    } else {
        // Decimal minutes: digits, optionally '.' and digits. Parsed by hand so that forms like
        // "inf", "1e3" or "-5" that Rust's float parser accepts are rejected.
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        if !all_digits(whole) || !fraction.is_none_or(all_digits) {
            return Err(());
        }
        let minutes: f64 = text.parse().map_err(|_| ())?;
        let seconds = (minutes * 60.0).round();
        if !seconds.is_finite() || seconds > f64::from(i32::MAX) {
            return Ok(None);
        }
        // In range and integral, checked just above.
        seconds as u64
    };
    match u32::try_from(seconds) {
        Ok(s) if s > 0 && i32::try_from(s).is_ok() => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// A playing side: 1 (Axis) or 2 (Allies), the only values the mod writes in the header.
fn side(field: &str, text: &str) -> Result<Option<Team>, EtParseErrorKind> {
    Ok(Team::from_code(parse_ranged(field, text, 1, 2)?))
}

/// Parses the header line (already decoded, without its line ending).
pub fn parse_header(line: &str) -> Result<Header, EtParseErrorKind> {
    let fields: Vec<&str> = line.split('\\').collect();
    if fields.len() != 8 && fields.len() != 9 {
        return Err(EtParseErrorKind::HeaderFieldCount {
            found: fields.len(),
        });
    }
    let round = parse_ranged("header round", fields[3], 1, 2)?;
    let defender = side("header defender team", fields[4])?;
    let winner = side("header winner team", fields[5])?;
    let time = |name: &str, text: &str| {
        parse_time_seconds(text).map_err(|()| EtParseErrorKind::BadNumber {
            field: name.to_string(),
            value: quote(text),
        })
    };
    let time_limit_seconds = time("header time limit", fields[6])?;
    let mut time_used_seconds = time("header time used", fields[7])?;
    // The attackers cannot use more time than they had. The spec sees this only in round 2
    // (`71:05`), where the limit is round 1's time; the rule holds for round 1 just as well.
    if let (Some(used), Some(limit)) = (time_used_seconds, time_limit_seconds) {
        if used > limit {
            time_used_seconds = None;
        }
    }
    let playtime_raw = match fields.get(8) {
        // Kept as written (its unit varies and it is negative on the shutdown path), so any
        // 64-bit integer is in range.
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| EtParseErrorKind::BadNumber {
                    field: "header playtime".to_string(),
                    value: quote(text),
                })?,
        ),
        None => None,
    };
    Ok(Header {
        server_name_raw: fields[0].to_string(),
        server_name: strip_color_codes(fields[0]),
        map: fields[1].to_string(),
        config: fields[2].to_string(),
        round,
        defender,
        winner,
        time_limit_raw: fields[6].to_string(),
        time_used_raw: fields[7].to_string(),
        time_limit_seconds,
        time_used_seconds,
        playtime_raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_forms() {
        assert_eq!(parse_time_seconds("10:00"), Ok(Some(600)));
        assert_eq!(parse_time_seconds("3:51"), Ok(Some(231)));
        assert_eq!(parse_time_seconds("71:05"), Ok(Some(4265)));
        assert_eq!(parse_time_seconds("20.00"), Ok(Some(1200)));
        assert_eq!(parse_time_seconds("9.5"), Ok(Some(570)));
        assert_eq!(parse_time_seconds("12"), Ok(Some(720)));
        assert_eq!(parse_time_seconds("0:00"), Ok(None));
        assert_eq!(parse_time_seconds("0.00"), Ok(None));
        assert_eq!(parse_time_seconds("1:75"), Ok(None));
        assert_eq!(parse_time_seconds("35791394:07"), Ok(Some(2_147_483_647)));
        assert_eq!(parse_time_seconds("35791394:08"), Ok(None));
        assert_eq!(parse_time_seconds("99999999999999999:00"), Ok(None));
        for bad in [
            "", ":", "1:5", "1:050", "-1:00", "a:00", "inf", "1e3", "-5", ".5", "5.", "1.2.3",
        ] {
            assert_eq!(parse_time_seconds(bad), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn parses_header_and_flags_impossible_time_used() {
        let h = parse_header(
            "^a#^7p^au^7rans^a.^7only\\etl_sp_delivery\\legacy3\\2\\1\\2\\12:00\\71:05",
        )
        .unwrap();
        assert_eq!(h.server_name, "#purans.only");
        assert_eq!(h.map, "etl_sp_delivery");
        assert_eq!(h.config, "legacy3");
        assert_eq!(h.round, 2);
        assert_eq!(h.defender, Some(Team::Axis));
        assert_eq!(h.winner, Some(Team::Allies));
        assert_eq!(h.time_limit_seconds, Some(720));
        assert_eq!(h.time_used_seconds, None);
        assert_eq!(h.time_used_raw, "71:05");
        assert_eq!(h.playtime_raw, None);
        assert_eq!(h.is_fullhold(), Some(false));
    }

    #[test]
    fn ninth_field_and_field_count() {
        let h = parse_header("s\\m\\c\\1\\2\\2\\10:00\\10:00\\716261").unwrap();
        assert_eq!(h.playtime_raw, Some(716_261));
        assert_eq!(h.is_fullhold(), Some(true));
        assert!(matches!(
            parse_header("s\\m\\c\\1\\2\\2\\10:00"),
            Err(EtParseErrorKind::HeaderFieldCount { found: 7 })
        ));
        assert!(matches!(
            parse_header("s\\m\\c\\x\\2\\2\\10:00\\1:00"),
            Err(EtParseErrorKind::BadNumber { .. })
        ));
        assert!(matches!(
            parse_header("s\\m\\c\\1\\2\\2\\10:00\\soon"),
            Err(EtParseErrorKind::BadNumber { .. })
        ));
    }

    #[test]
    fn numbers_outside_their_range_are_errors() {
        for (line, message) in [
            (
                "s\\m\\c\\99\\1\\2\\10:00\\1:00",
                "header round 99 is out of range (1 to 2)",
            ),
            (
                "s\\m\\c\\1\\70000\\2\\10:00\\1:00",
                "header defender team 70000 is out of range (1 to 2)",
            ),
            (
                "s\\m\\c\\1\\1\\3\\10:00\\1:00",
                "header winner team 3 is out of range (1 to 2)",
            ),
            (
                "s\\m\\c\\1\\1\\0\\10:00\\1:00",
                "header winner team 0 is out of range (1 to 2)",
            ),
        ] {
            assert_eq!(parse_header(line).unwrap_err().to_string(), message);
        }
    }
}
