//! One player line: `GUID8\name\rounds\team\<weapons> \t<extended fields>`.

use super::color::strip_color_codes;
use super::error::{in_range, parse_count, parse_ranged, quote, EtParseErrorKind, MAX_COUNT};
use super::extended::{parse_extended, ExtendedStats, LuaVersion};
use super::header::Team;
use super::weapons::{parse_weapon_part, WeaponStats, SYRINGE_INDEX};

/// The GUID every Omni-bot has in the files.
pub const OMNIBOT_GUID: &str = "OMNIBOT0";

/// One player's line in a stats file.
#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    /// Identity key: the 8 upper-case hex characters of the file, or for an Omni-bot a stable
    /// `BOT` + 5 hex characters derived from its clean name (bots all share `OMNIBOT0`).
    pub guid: String,
    /// The GUID as written in the file (`OMNIBOT0` for every bot).
    pub guid_raw: String,
    /// True for Omni-bots.
    pub is_bot: bool,
    /// Name with colour codes, as written (decoded lossily if it was not UTF-8).
    pub name_raw: String,
    /// Name without colour codes.
    pub name: String,
    /// `sess.rounds`, an engine counter; not needed for stats.
    pub rounds: i64,
    /// The team number as written: 1 axis, 2 allies, 3 spectator (the parser accepts no other).
    pub team_code: i64,
    /// The team (always set in a parsed file).
    pub team: Option<Team>,
    /// Weapons in ascending index order; only those with activity are present.
    pub weapons: Vec<WeaponStats>,
    /// The extended fields, by name.
    pub extended: ExtendedStats,
}

/// A stable 8-character id for an Omni-bot: `BOT` + 5 hex digits of a 32-bit FNV-1a hash of
/// the clean name. `BOT` is not hex, so it can never equal a human GUID; bots of the same round
/// collide with odds of about one in a million per pair.
pub fn bot_guid(clean_name: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in clean_name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    // Fold the top bits in so that all 32 bits affect the 20 kept.
    let folded = (hash ^ (hash >> 20)) & 0xF_FFFF;
    format!("BOT{folded:05X}")
}

fn parse_guid(text: &str) -> Result<String, EtParseErrorKind> {
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(EtParseErrorKind::BadGuid { value: quote(text) })
    }
}

/// Who a player line is about, for error messages: the GUID and the clean name as written
/// (shortened), or `None` when the line does not get that far.
pub(crate) fn player_label(line: &str) -> Option<String> {
    let mut parts = line.splitn(3, '\\');
    let (guid, name) = (parts.next()?, parts.next()?);
    Some(format!(
        "{} {:?}",
        quote(guid),
        quote(&strip_color_codes(name))
    ))
}

/// Parses one player line (decoded, without its line ending); also returns the detected version.
pub(crate) fn parse_player_line(line: &str) -> Result<(Player, LuaVersion), EtParseErrorKind> {
    // Names cannot contain '\', so four splits separate the fixed parts from the stats.
    let parts: Vec<&str> = line.splitn(5, '\\').collect();
    let [guid_raw, name_raw, rounds, team, stats] = parts[..] else {
        return Err(EtParseErrorKind::PlayerFieldCount { found: parts.len() });
    };
    let name = strip_color_codes(name_raw);
    let is_bot = guid_raw == OMNIBOT_GUID;
    let guid = if is_bot {
        bot_guid(&name)
    } else {
        parse_guid(guid_raw)?
    };
    let rounds = parse_count("rounds", rounds)?;
    let team_code = parse_ranged("team", team, 1, 3)?;

    // The weapon part ends at the first TAB; the extended fields are TAB-separated after it.
    // c0rnp0rn2 had no TAB: everything is space-separated and the weapon mask says where the
    // weapon numbers end.
    let (weapon_tokens, extended_values): (Vec<&str>, Vec<&str>) = match stats.split_once('\t') {
        Some((weapon_part, extended_part)) => (
            weapon_part.split_ascii_whitespace().collect(),
            extended_part.split('\t').map(str::trim).collect(),
        ),
        None => {
            let tokens: Vec<&str> = stats.split_ascii_whitespace().collect();
            let weapon_len = weapon_token_count(&tokens).min(tokens.len());
            let (weapons, extended) = tokens.split_at(weapon_len);
            let extended = extended.to_vec();
            if extended.len() != LuaVersion::Spaces32.field_count() {
                // Either not c0rnp0rn2, or the weapon count is wrong: let the weapon parser
                // report a wrong count first, since it is the likelier mistake.
                parse_weapon_part(&tokens)?;
                return Err(EtParseErrorKind::ExtendedFieldCount {
                    found: extended.len(),
                });
            }
            (weapons.to_vec(), extended)
        }
    };
    let weapons = parse_weapon_part(&weapon_tokens)?;
    let version = match LuaVersion::from_field_count(extended_values.len()) {
        // A TAB-separated line with 32 fields is not the c0rnp0rn2 layout.
        Some(LuaVersion::Spaces32) if stats.contains('\t') => None,
        other => other,
    }
    .ok_or(EtParseErrorKind::ExtendedFieldCount {
        found: extended_values.len(),
    })?;
    let syringe_hits = weapons
        .iter()
        .find(|w| w.index == SYRINGE_INDEX)
        .map_or(0, |w| w.hits);
    let extended = parse_extended(&extended_values, version, syringe_hits)?;
    // The stored totals are integers too: the sum over weapons must fit like each number.
    type Total = fn(&WeaponStats) -> u32;
    let totals: [(&str, Total); 5] = [
        ("hits", |w| w.hits),
        ("shots", |w| w.shots),
        ("kills", |w| w.kills),
        ("deaths", |w| w.deaths),
        ("headshots", |w| w.headshots),
    ];
    for (what, total) in totals {
        let sum: u64 = weapons.iter().map(|w| u64::from(total(w))).sum();
        // At most 28 × i32::MAX, far below i64::MAX.
        in_range(
            &format!("{what} over all weapons"),
            sum as i64,
            0,
            MAX_COUNT,
        )?;
    }
    Ok((
        Player {
            guid,
            guid_raw: guid_raw.to_string(),
            is_bot,
            name_raw: name_raw.to_string(),
            name,
            rounds,
            team_code,
            team: Team::from_code(team_code),
            weapons,
            extended,
        },
        version,
    ))
}

/// 1 + 5 × popcount(mask) when the first token is a valid mask, else all tokens (so that the
/// weapon parser reports the problem).
fn weapon_token_count(tokens: &[&str]) -> usize {
    match tokens.first().and_then(|m| m.parse::<u64>().ok()) {
        Some(mask) if mask >> 28 == 0 => 1 + 5 * mask.count_ones() as usize,
        _ => tokens.len(),
    }
}

impl Player {
    fn sum(&self, f: impl Fn(&WeaponStats) -> u32) -> u64 {
        self.weapons.iter().map(|w| u64::from(f(w))).sum()
    }

    /// Σ weapon kills.
    pub fn kills(&self) -> u64 {
        self.sum(|w| w.kills)
    }

    /// Σ weapon deaths.
    pub fn deaths(&self) -> u64 {
        self.sum(|w| w.deaths)
    }

    /// Σ weapon hits (all weapons, syringe included, as the reference does).
    pub fn hits(&self) -> u64 {
        self.sum(|w| w.hits)
    }

    /// Σ weapon shots: the reliable "bullets fired".
    pub fn shots(&self) -> u64 {
        self.sum(|w| w.shots)
    }

    /// Σ weapon headshot hits ("headshots" at player level).
    pub fn headshot_hits(&self) -> u64 {
        self.sum(|w| w.headshots)
    }

    /// Syringe hits: revives given, in every version.
    pub fn syringe_hits(&self) -> u32 {
        self.weapons
            .iter()
            .find(|w| w.index == SYRINGE_INDEX)
            .map_or(0, |w| w.hits)
    }

    /// Time played in seconds from field 22 (minutes × 60, rounded); `None` when the version
    /// has no such field.
    pub fn time_played_seconds(&self) -> Option<u32> {
        let minutes = self.extended.time_played_minutes?;
        let seconds = (minutes * 60.0).round();
        // Negative or absurd values are not a time.
        (seconds.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&seconds))
            .then_some(seconds as u32)
    }

    /// Damage per minute: damage given × 60 / time-played seconds. Never the file's field 21,
    /// which is always 0. `None` without damage, without time or with zero time.
    pub fn dpm(&self) -> Option<f64> {
        let damage = self.extended.damage_given?;
        let seconds = self.time_played_seconds().filter(|s| *s > 0)?;
        Some(damage as f64 * 60.0 / f64::from(seconds))
    }

    /// Accuracy in percent: Σ hits / Σ shots × 100 over all weapons; `None` without shots.
    pub fn accuracy(&self) -> Option<f64> {
        let shots = self.shots();
        (shots > 0).then(|| self.hits() as f64 * 100.0 / shots as f64)
    }

    /// Headshot rate in percent: Σ headshot hits / Σ hits × 100; `None` without hits.
    pub fn headshot_rate(&self) -> Option<f64> {
        let hits = self.hits();
        (hits > 0).then(|| self.headshot_hits() as f64 * 100.0 / hits as f64)
    }

    /// K/D: kills / deaths, or kills when there are no deaths (spec §10).
    pub fn kd(&self) -> f64 {
        let (kills, deaths) = (self.kills(), self.deaths());
        if deaths == 0 {
            kills as f64
        } else {
            kills as f64 / deaths as f64
        }
    }

    /// Efficiency in percent: 100 × kills / (kills + deaths); `None` with neither.
    pub fn efficiency(&self) -> Option<f64> {
        let (kills, deaths) = (self.kills(), self.deaths());
        (kills + deaths > 0).then(|| kills as f64 * 100.0 / (kills + deaths) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE_38: &str = "0a26d447\\^7c^aa^7rniee\\0\\2\\134217729 1 2 0 0 1 3 4 1 0 0 \t2214\t2620\t84\t18\t5\t4\t0\t0\t74.2\t95\t0\t4\t0\t0\t2\t1\t0\t1\t0\t0\t12\t0.0\t9.8\t0.0\t47.3\t4.6\t0.9\t6\t0\t0\t0\t0\t0\t0\t0\t0\t0\t3";

    #[test]
    fn parses_a_38_field_line() {
        let (p, version) = parse_player_line(LINE_38).unwrap();
        assert_eq!(version, LuaVersion::Fields38);
        assert_eq!(p.guid, "0A26D447");
        assert_eq!(p.name, "carniee");
        assert_eq!(p.team, Some(Team::Allies));
        assert_eq!(p.weapons.len(), 2);
        assert_eq!(p.kills(), 1);
        assert_eq!(p.shots(), 6);
        assert_eq!(p.syringe_hits(), 3);
        assert_eq!(p.extended.revives_given, Some(3));
        assert_eq!(p.time_played_seconds(), Some(588));
        assert_eq!(p.extended.damage_given, Some(2214));
    }

    #[test]
    fn bot_guids_are_stable_and_not_hex() {
        let a = bot_guid("[BOT]Smith");
        assert_eq!(a, bot_guid("[BOT]Smith"));
        assert_ne!(a, bot_guid("[BOT]Jones"));
        assert_eq!(a.len(), 8);
        assert!(a.starts_with("BOT"));
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(matches!(
            parse_player_line("ABCDEF12\\name\\0"),
            Err(EtParseErrorKind::PlayerFieldCount { found: 3 })
        ));
        assert!(matches!(
            parse_player_line(&LINE_38.replacen("0a26d447", "0a26d44", 1)),
            Err(EtParseErrorKind::BadGuid { .. })
        ));
        assert!(matches!(
            parse_player_line(&format!("{LINE_38}\t1")),
            Err(EtParseErrorKind::ExtendedFieldCount { found: 39 })
        ));
    }

    #[test]
    fn numbers_outside_their_range_are_errors() {
        let error = |line: String| parse_player_line(&line).unwrap_err().to_string();
        assert_eq!(
            error(LINE_38.replacen("\\0\\2\\", "\\0\\70000\\", 1)),
            "team 70000 is out of range (1 to 3)"
        );
        assert_eq!(
            error(LINE_38.replacen("\\0\\2\\", "\\0\\0\\", 1)),
            "team 0 is out of range (1 to 3)"
        );
        assert_eq!(
            error(LINE_38.replacen("\\0\\2\\", "\\-1\\2\\", 1)),
            "rounds -1 is out of range (0 to 2147483647)"
        );
        // Two weapons whose kills each fit but whose sum does not.
        let big = "1073741824";
        let line = LINE_38.replacen(
            "134217729 1 2 0 0 1 3 4 1 0 0",
            &format!("3 0 0 {big} 0 0 0 0 {big} 0 0"),
            1,
        );
        assert_eq!(
            error(line),
            "kills over all weapons 2147483648 is out of range (0 to 2147483647)"
        );
        assert_eq!(
            player_label(LINE_38).as_deref(),
            Some("0a26d447 \"carniee\"")
        );
    }
}
