//! The extended part of a player line: the Lua mod's TAB-separated fields (spec §6, §7).
//!
//! Which fields exist depends on the mod version, recognised by the field count. A field the
//! version does not write is `None`, never 0, so that "not measured" and "zero" stay apart.

use super::error::{parse_count, quote, EtParseErrorKind, MAX_COUNT};

/// The mod version, as recognised from the number of extended fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LuaVersion {
    /// c0rnp0rn2: 32 fields, space-separated like the weapon part, no TAB, no time-played field.
    Spaces32,
    /// 33 fields (2024): no denied playtime, useless kills, full self kills, repairs or revives.
    Fields33,
    /// 36 fields (early 2025): adds denied playtime (unreliable), useless and full self kills.
    Fields36,
    /// 37 fields (May–Oct 2025): adds repairs/constructions.
    Fields37,
    /// 38 fields (from Oct 2025): adds revives given.
    Fields38,
}

impl LuaVersion {
    /// Recognises a version from the count of extended fields.
    pub fn from_field_count(count: usize) -> Option<Self> {
        match count {
            32 => Some(Self::Spaces32),
            33 => Some(Self::Fields33),
            36 => Some(Self::Fields36),
            37 => Some(Self::Fields37),
            38 => Some(Self::Fields38),
            _ => None,
        }
    }

    /// The number of extended fields this version writes.
    pub fn field_count(self) -> usize {
        match self {
            Self::Spaces32 => 32,
            Self::Fields33 => 33,
            Self::Fields36 => 36,
            Self::Fields37 => 37,
            Self::Fields38 => 38,
        }
    }

    /// Whether field 20 (bullets fired) can be trusted. Before the 38-field version it was
    /// summed at every 5-s snapshot without a reset, so it is inflated (up to 67,000).
    pub fn bullets_fired_reliable(self) -> bool {
        self == Self::Fields38
    }

    /// Whether denied playtime (field 28) can be trusted: the 36-field version shows
    /// implausible values (up to 5838 s).
    pub fn playtime_denied_reliable(self) -> bool {
        matches!(self, Self::Fields37 | Self::Fields38)
    }
}

/// Where each optional field sits for a version; `None` = not written by that version.
struct Layout {
    time_played_minutes: Option<usize>,
    tank_meatshield: usize,
    time_dead_ratio: usize,
    time_dead_minutes: usize,
    kd_ratio: usize,
    useful_kills: usize,
    playtime_denied: Option<usize>,
    multikill_first: usize,
    useless_kills: Option<usize>,
    full_self_kills: Option<usize>,
    repairs_constructions: Option<usize>,
    revives_given: Option<usize>,
}

impl LuaVersion {
    fn layout(self) -> Layout {
        // 33 and later share fields 0–27; 36 and later share 0–35.
        let modern = Layout {
            time_played_minutes: Some(22),
            tank_meatshield: 23,
            time_dead_ratio: 24,
            time_dead_minutes: 25,
            kd_ratio: 26,
            useful_kills: 27,
            playtime_denied: Some(28),
            multikill_first: 29,
            useless_kills: Some(34),
            full_self_kills: Some(35),
            repairs_constructions: Some(36),
            revives_given: Some(37),
        };
        match self {
            Self::Spaces32 => Layout {
                time_played_minutes: None,
                tank_meatshield: 22,
                time_dead_ratio: 23,
                time_dead_minutes: 24,
                kd_ratio: 25,
                useful_kills: 26,
                playtime_denied: None,
                multikill_first: 27,
                useless_kills: None,
                full_self_kills: None,
                repairs_constructions: None,
                revives_given: None,
            },
            Self::Fields33 => Layout {
                playtime_denied: None,
                multikill_first: 28,
                useless_kills: None,
                full_self_kills: None,
                repairs_constructions: None,
                revives_given: None,
                ..modern
            },
            Self::Fields36 => Layout {
                repairs_constructions: None,
                revives_given: None,
                ..modern
            },
            Self::Fields37 => Layout {
                revives_given: None,
                ..modern
            },
            Self::Fields38 => modern,
        }
    }
}

/// The extended fields of one player line, by name (spec §6 numbering in brackets).
///
/// Column "R2 file holds" of the spec applies: in a round-2 file the counters marked *cum*
/// (damage, gibs, self/team kills, team gibs, bullets fired, time played minutes) are totals
/// over both rounds, the others are round 2 only, and the ratios cover both rounds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtendedStats {
    /// \[0\] Damage given (cum).
    pub damage_given: Option<i64>,
    /// \[1\] Damage received (cum).
    pub damage_received: Option<i64>,
    /// \[2\] Team damage given (cum).
    pub team_damage_given: Option<i64>,
    /// \[3\] Team damage received (cum).
    pub team_damage_received: Option<i64>,
    /// \[4\] Gibs (cum).
    pub gibs: Option<i64>,
    /// \[5\] Self kills (cum).
    pub self_kills: Option<i64>,
    /// \[6\] Team kills (cum).
    pub team_kills: Option<i64>,
    /// \[7\] Team gibs (cum).
    pub team_gibs: Option<i64>,
    /// \[8\] Time played %: share of team time not spent in limbo (ratio).
    pub time_played_percent: Option<f64>,
    /// \[9\] XP (this round only).
    pub xp: Option<i64>,
    /// \[10\] Longest killing spree.
    pub killing_spree: Option<i64>,
    /// \[11\] Longest death spree.
    pub death_spree: Option<i64>,
    /// \[12\] Kill assists.
    pub kill_assists: Option<i64>,
    /// \[13\] Kill steals.
    pub kill_steals: Option<i64>,
    /// \[14\] Headshot kills (final blow to the head).
    pub headshot_kills: Option<i64>,
    /// \[15\] Objectives stolen.
    pub objectives_stolen: Option<i64>,
    /// \[16\] Objectives returned.
    pub objectives_returned: Option<i64>,
    /// \[17\] Dynamites planted.
    pub dynamites_planted: Option<i64>,
    /// \[18\] Dynamites defused.
    pub dynamites_defused: Option<i64>,
    /// \[19\] Times revived.
    pub times_revived: Option<i64>,
    /// \[20\] Bullets fired as written (cum). See `bullets_fired_reliable`.
    pub bullets_fired: Option<i64>,
    /// False when field 20 is inflated (versions before 38): use Σ weapon shots instead.
    pub bullets_fired_reliable: bool,
    /// \[21\] DPM. As written by the mod it is always 0.0 in real data: use
    /// `Player::dpm` for a file's row. In a round-2 differential row it is recomputed.
    pub dpm: Option<f64>,
    /// \[22\] Time played in minutes, 0.1 resolution (cum). Absent in the 32-field layout.
    pub time_played_minutes: Option<f64>,
    /// \[23\] "Tank/meatshield" ratio.
    pub tank_meatshield: Option<f64>,
    /// \[24\] Time-dead ratio %; meaningless in round-2 files.
    pub time_dead_ratio: Option<f64>,
    /// \[25\] Time dead in minutes (this round only).
    pub time_dead_minutes: Option<f64>,
    /// \[26\] The engine's K/D, 1 decimal; kills+1 when there are no deaths.
    pub kd_ratio: Option<f64>,
    /// \[27\] Useful kills.
    pub useful_kills: Option<i64>,
    /// \[28\] Playtime denied, seconds. See `playtime_denied_reliable`.
    pub playtime_denied_seconds: Option<i64>,
    /// False for the 36-field version, whose values are implausible.
    pub playtime_denied_reliable: bool,
    /// \[29\] Double kills (2 kills within 3 s).
    pub multikill_2: Option<i64>,
    /// \[30\] Triple kills.
    pub multikill_3: Option<i64>,
    /// \[31\] Quad kills.
    pub multikill_4: Option<i64>,
    /// \[32\] Five kills.
    pub multikill_5: Option<i64>,
    /// \[33\] Six kills.
    pub multikill_6: Option<i64>,
    /// \[34\] Useless kills.
    pub useless_kills: Option<i64>,
    /// \[35\] Full self kills.
    pub full_self_kills: Option<i64>,
    /// \[36\] Repairs/constructions.
    pub repairs_constructions: Option<i64>,
    /// \[37\] Revives given (this round only). In the 37-field version it is not written and is
    /// taken from the syringe hits instead (see `revives_derived_from_syringe`).
    pub revives_given: Option<i64>,
    /// True when `revives_given` came from syringe hits. Syringe hits are cumulative in a
    /// round-2 file, so there the derived value covers both rounds until differenced.
    pub revives_derived_from_syringe: bool,
}

/// A field's name in errors: what it holds and where, e.g. `damage given (extended field 0)`.
fn field_name(what: &str, position: usize) -> String {
    format!("{what} (extended field {position})")
}

/// An integer field: a count, `0..=`[`MAX_COUNT`] like every number of the format.
fn int_field(values: &[&str], position: usize, what: &str) -> Result<i64, EtParseErrorKind> {
    let text = values.get(position).copied().unwrap_or("");
    parse_count(&field_name(what, position), text)
}

/// Decimal fields are written with `%.1f`; accept `-?digits(.digits)?` and nothing else, so
/// that `inf`, `NaN` or exponents never reach the numbers. Like the integer fields they are
/// counts, times or ratios: `0..=max`.
fn decimal_field(
    values: &[&str],
    position: usize,
    what: &str,
    max: f64,
) -> Result<f64, EtParseErrorKind> {
    let text = values.get(position).copied().unwrap_or("");
    let bad = || EtParseErrorKind::BadNumber {
        field: field_name(what, position),
        value: quote(text),
    };
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return Err(bad());
    }
    let value: f64 = text.parse().map_err(|_| bad())?;
    if (0.0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(EtParseErrorKind::OutOfRange {
            field: field_name(what, position),
            value: quote(text),
            min: 0,
            // The maxima are whole numbers within i32.
            max: max as i32,
        })
    }
}

/// Time played is stored in seconds as an integer, so its minutes must fit 60 times over.
const MAX_MINUTES: f64 = (MAX_COUNT / 60) as f64;

/// Parses the extended values of one line for the given version.
///
/// `syringe_hits` is the line's syringe hits, used for revives in the 37-field version.
pub(crate) fn parse_extended(
    values: &[&str],
    version: LuaVersion,
    syringe_hits: u32,
) -> Result<ExtendedStats, EtParseErrorKind> {
    let layout = version.layout();
    let count = f64::from(MAX_COUNT);
    let int = |p: usize, what: &str| int_field(values, p, what).map(Some);
    let dec = |p: usize, what: &str| decimal_field(values, p, what, count).map(Some);
    let opt_int = |p: Option<usize>, what: &str| p.map(|p| int_field(values, p, what)).transpose();
    let (revives_given, revives_derived_from_syringe) = match layout.revives_given {
        Some(p) => (Some(int_field(values, p, "revives given")?), false),
        None if version == LuaVersion::Fields37 => (Some(i64::from(syringe_hits)), true),
        None => (None, false),
    };
    let multikill = |n: usize| int(layout.multikill_first + n - 2, &format!("{n}x multikills"));
    Ok(ExtendedStats {
        damage_given: int(0, "damage given")?,
        damage_received: int(1, "damage received")?,
        team_damage_given: int(2, "team damage given")?,
        team_damage_received: int(3, "team damage received")?,
        gibs: int(4, "gibs")?,
        self_kills: int(5, "self kills")?,
        team_kills: int(6, "team kills")?,
        team_gibs: int(7, "team gibs")?,
        time_played_percent: dec(8, "time played percent")?,
        xp: int(9, "XP")?,
        killing_spree: int(10, "killing spree")?,
        death_spree: int(11, "death spree")?,
        kill_assists: int(12, "kill assists")?,
        kill_steals: int(13, "kill steals")?,
        headshot_kills: int(14, "headshot kills")?,
        objectives_stolen: int(15, "objectives stolen")?,
        objectives_returned: int(16, "objectives returned")?,
        dynamites_planted: int(17, "dynamites planted")?,
        dynamites_defused: int(18, "dynamites defused")?,
        times_revived: int(19, "times revived")?,
        bullets_fired: int(20, "bullets fired")?,
        bullets_fired_reliable: version.bullets_fired_reliable(),
        dpm: dec(21, "DPM")?,
        time_played_minutes: layout
            .time_played_minutes
            .map(|p| decimal_field(values, p, "time played minutes", MAX_MINUTES))
            .transpose()?,
        tank_meatshield: dec(layout.tank_meatshield, "tank/meatshield")?,
        time_dead_ratio: dec(layout.time_dead_ratio, "time dead ratio")?,
        time_dead_minutes: dec(layout.time_dead_minutes, "time dead minutes")?,
        kd_ratio: dec(layout.kd_ratio, "K/D")?,
        useful_kills: int(layout.useful_kills, "useful kills")?,
        playtime_denied_seconds: opt_int(layout.playtime_denied, "playtime denied")?,
        playtime_denied_reliable: version.playtime_denied_reliable(),
        multikill_2: multikill(2)?,
        multikill_3: multikill(3)?,
        multikill_4: multikill(4)?,
        multikill_5: multikill(5)?,
        multikill_6: multikill(6)?,
        useless_kills: opt_int(layout.useless_kills, "useless kills")?,
        full_self_kills: opt_int(layout.full_self_kills, "full self kills")?,
        repairs_constructions: opt_int(layout.repairs_constructions, "repairs/constructions")?,
        revives_given,
        revives_derived_from_syringe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(count: usize) -> Vec<String> {
        // Field i holds i (decimal fields get ".5" to tell them apart).
        (0..count).map(|i| i.to_string()).collect()
    }

    #[test]
    fn layouts_put_fields_where_the_spec_says() {
        let v = values(33);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let e = parse_extended(&refs, LuaVersion::Fields33, 9).unwrap();
        assert_eq!(e.time_played_minutes, Some(22.0));
        assert_eq!(e.kd_ratio, Some(26.0));
        assert_eq!(e.useful_kills, Some(27));
        assert_eq!(e.playtime_denied_seconds, None);
        assert_eq!(e.multikill_2, Some(28));
        assert_eq!(e.multikill_6, Some(32));
        assert_eq!(e.revives_given, None);
        assert!(!e.bullets_fired_reliable);

        let v = values(37);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let e = parse_extended(&refs, LuaVersion::Fields37, 9).unwrap();
        assert_eq!(e.playtime_denied_seconds, Some(28));
        assert!(e.playtime_denied_reliable);
        assert_eq!(e.multikill_2, Some(29));
        assert_eq!(e.repairs_constructions, Some(36));
        assert_eq!(e.revives_given, Some(9));
        assert!(e.revives_derived_from_syringe);

        let v = values(32);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let e = parse_extended(&refs, LuaVersion::Spaces32, 9).unwrap();
        assert_eq!(e.time_played_minutes, None);
        assert_eq!(e.tank_meatshield, Some(22.0));
        assert_eq!(e.kd_ratio, Some(25.0));
        assert_eq!(e.multikill_6, Some(31));
    }

    #[test]
    fn decimals_reject_non_numbers() {
        for bad in ["inf", "NaN", "1e3", "", "-", "1.", ".5", "1.2.3"] {
            assert!(
                matches!(
                    decimal_field(&[bad], 0, "x", 10.0),
                    Err(EtParseErrorKind::BadNumber { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(decimal_field(&["7"], 0, "x", 10.0), Ok(7.0));
        assert_eq!(decimal_field(&["10.0"], 0, "x", 10.0), Ok(10.0));
        assert_eq!(
            decimal_field(&["-1.5"], 0, "K/D", 10.0)
                .unwrap_err()
                .to_string(),
            "K/D (extended field 0) -1.5 is out of range (0 to 10)"
        );
        assert!(decimal_field(&["10.1"], 0, "x", 10.0).is_err());
    }

    #[test]
    fn every_number_is_checked_against_the_same_range() {
        let with = |position: usize, text: &str| {
            let mut v = values(38);
            v[position] = text.to_string();
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            parse_extended(&refs, LuaVersion::Fields38, 0).map_err(|e| e.to_string())
        };
        assert_eq!(
            with(0, "2147483648").unwrap_err(),
            "damage given (extended field 0) 2147483648 is out of range (0 to 2147483647)"
        );
        assert_eq!(
            with(0, "-5").unwrap_err(),
            "damage given (extended field 0) -5 is out of range (0 to 2147483647)"
        );
        assert_eq!(
            with(0, "2147483647").unwrap().damage_given,
            Some(2_147_483_647)
        );
        assert_eq!(
            with(29, "-1").unwrap_err(),
            "2x multikills (extended field 29) -1 is out of range (0 to 2147483647)"
        );
        assert_eq!(
            with(22, "35791395.0").unwrap_err(),
            "time played minutes (extended field 22) 35791395.0 is out of range (0 to 35791394)"
        );
        assert!(with(22, "35791394.0").is_ok());
        assert!(with(24, "-0.1").is_err());
    }
}
