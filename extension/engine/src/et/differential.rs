//! Round-2 differential (spec §8): a round-2 file holds cumulative numbers for most counters;
//! subtracting round 1 gives what happened in round 2 alone.

use std::collections::{BTreeMap, HashMap};

use super::extended::ExtendedStats;
use super::player::Player;
use super::round::ParsedRound;
use super::weapons::{WeaponStats, SYRINGE_INDEX};

/// How a round-2 player's round-2-only numbers were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiffStatus {
    /// Present in both rounds: cumulative items are R2 − R1.
    Differenced,
    /// Only in round 2: their session started in round 2, so the raw values are round 2 only.
    R2Only,
    /// A cumulative counter went down between the rounds (a reconnect reset the session):
    /// the raw round-2 values are used.
    Reset,
}

/// One round-2 player after differencing.
#[derive(Debug, Clone, PartialEq)]
pub struct Round2Player {
    /// GUID (see [`Player::guid`]).
    pub guid: String,
    /// How `round2_only` was obtained.
    pub status: DiffStatus,
    /// Round-2-only numbers. Name, team and identity come from the round-2 file.
    pub round2_only: Player,
    /// The round-2 file's own row, with its cumulative values, unchanged.
    pub cumulative: Player,
}

/// The result of differencing a round-2 file against its round 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Round2Result {
    /// File name of round 1.
    pub r1_file_name: String,
    /// File name of round 2.
    pub r2_file_name: String,
    /// Every player of the round-2 file, in its order.
    pub players: Vec<Round2Player>,
    /// GUIDs of players who were only in round 1 (left before round 2); their round-1 row stands.
    pub r1_only_guids: Vec<String>,
}

/// Computes round-2-only numbers per GUID (spec §8).
///
/// - Cumulative items (all weapon numbers; fields 0–7, 20, 22) become R2 − R1, clamped at 0.
///   Field 20 (bullets fired) is cumulative only in the 38-field version; older values are
///   a per-round Lua sum (see `ExtendedStats::bullets_fired_reliable`) and are kept as-is.
/// - Round-2 items (XP, sprees, multikills, time dead, …) are kept as they are.
/// - Ratios are recomputed from the differenced numbers: time played %, DPM, tank/meatshield,
///   K/D. The time-dead ratio mixes a round-2 numerator with a cumulative denominator and has
///   no meaning here: it becomes `None`.
/// - A revive count derived from syringe hits (37-field files) is re-derived from the
///   differenced syringe hits.
/// - A player only in round 2 keeps raw values ([`DiffStatus::R2Only`]); a player with any
///   cumulative counter lower in round 2 than in round 1 keeps raw values ([`DiffStatus::Reset`]).
pub fn round2_differential(r1: &ParsedRound, r2: &ParsedRound) -> Round2Result {
    let r1_by_guid: HashMap<&str, &Player> =
        r1.players.iter().map(|p| (p.guid.as_str(), p)).collect();
    let players: Vec<Round2Player> = r2
        .players
        .iter()
        .map(|cumulative| {
            let (status, round2_only) = match r1_by_guid.get(cumulative.guid.as_str()) {
                None => (DiffStatus::R2Only, cumulative.clone()),
                Some(before) if counters_went_down(before, cumulative) => {
                    (DiffStatus::Reset, cumulative.clone())
                }
                Some(before) => (DiffStatus::Differenced, difference(before, cumulative)),
            };
            Round2Player {
                guid: cumulative.guid.clone(),
                status,
                round2_only,
                cumulative: cumulative.clone(),
            }
        })
        .collect();
    let r1_only_guids = r1
        .players
        .iter()
        .filter(|p| r2.player(&p.guid).is_none())
        .map(|p| p.guid.clone())
        .collect();
    Round2Result {
        r1_file_name: r1.file_name.clone(),
        r2_file_name: r2.file_name.clone(),
        players,
        r1_only_guids,
    }
}

/// True when any cumulative counter is lower in round 2: the engine session was reset.
fn counters_went_down(r1: &Player, r2: &Player) -> bool {
    let totals_down = r2.kills() < r1.kills()
        || r2.deaths() < r1.deaths()
        || r2.hits() < r1.hits()
        || r2.shots() < r1.shots();
    let lower = |a: Option<i64>, b: Option<i64>| matches!((a, b), (Some(a), Some(b)) if b < a);
    let (e1, e2) = (&r1.extended, &r2.extended);
    let ext_down = lower(e1.damage_given, e2.damage_given)
        || lower(e1.damage_received, e2.damage_received)
        || lower(e1.team_damage_given, e2.team_damage_given)
        || lower(e1.team_damage_received, e2.team_damage_received)
        || lower(e1.gibs, e2.gibs)
        || lower(e1.self_kills, e2.self_kills)
        || lower(e1.team_kills, e2.team_kills)
        || lower(e1.team_gibs, e2.team_gibs)
        // Before version 38 field 20 is a Lua-side sum that restarts with each round's Lua
        // state, so only the 38-field value is a cumulative counter.
        || (e2.bullets_fired_reliable && lower(e1.bullets_fired, e2.bullets_fired))
        || lower(
            e1.time_played_minutes.map(tenths),
            e2.time_played_minutes.map(tenths),
        );
    totals_down || ext_down
}

/// A 1-decimal value as an integer count of tenths, so that differences are exact.
fn tenths(value: f64) -> i64 {
    // Values come from the parser's digit-checked decimals: finite and small.
    (value * 10.0).round() as i64
}

/// R2 − R1 clamped at 0; keeps R2 when R1 lacks the field.
fn diff_count(r1: Option<i64>, r2: Option<i64>) -> Option<i64> {
    match (r1, r2) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).max(0)),
        (None, b) => b,
        (_, None) => None,
    }
}

fn diff_weapons(r1: &[WeaponStats], r2: &[WeaponStats]) -> Vec<WeaponStats> {
    let before: BTreeMap<u8, &WeaponStats> = r1.iter().map(|w| (w.index, w)).collect();
    r2.iter()
        .map(|now| match before.get(&now.index) {
            None => *now,
            Some(was) => WeaponStats {
                index: now.index,
                hits: now.hits.saturating_sub(was.hits),
                shots: now.shots.saturating_sub(was.shots),
                kills: now.kills.saturating_sub(was.kills),
                deaths: now.deaths.saturating_sub(was.deaths),
                headshots: now.headshots.saturating_sub(was.headshots),
            },
        })
        // The mod lists a weapon only when shots, hits, kills or deaths is non-zero; keep the
        // round-2-only row in the same shape.
        .filter(|w| w.hits != 0 || w.shots != 0 || w.kills != 0 || w.deaths != 0)
        .collect()
}

/// Rounds half-up to one decimal.
fn round_1dp(value: f64) -> f64 {
    (value * 10.0 + 0.5).floor() / 10.0
}

/// The mod's K/D (field 26): kills/deaths half-up to 0.1, or kills + 1 with no deaths.
/// Integer arithmetic keeps the half-up rounding exact.
fn mod_kd(kills: u64, deaths: u64) -> f64 {
    if deaths == 0 {
        (kills + 1) as f64
    } else {
        ((20 * kills + deaths) / (2 * deaths)) as f64 / 10.0
    }
}

fn difference(r1: &Player, r2: &Player) -> Player {
    let weapons = diff_weapons(&r1.weapons, &r2.weapons);
    let (e1, e2) = (&r1.extended, &r2.extended);

    let time_played_minutes = match (e1.time_played_minutes, e2.time_played_minutes) {
        (Some(a), Some(b)) => Some(tenths(b).saturating_sub(tenths(a)).max(0) as f64 / 10.0),
        (None, b) => b,
        (_, None) => None,
    };
    // Field 8 is alive time / team time; alive time = field 8 × field 22 / 100 in each file,
    // so the round-2 share is (alive₂ − alive₁) / (team₂ − team₁).
    let time_played_percent = match (
        e1.time_played_percent,
        e2.time_played_percent,
        e1.time_played_minutes,
        e2.time_played_minutes,
        time_played_minutes,
    ) {
        (Some(p1), Some(p2), Some(t1), Some(t2), Some(dt)) if dt > 0.0 => {
            let alive = (p2 * t2 - p1 * t1).max(0.0) / 100.0;
            Some(round_1dp((alive * 100.0 / dt).clamp(0.0, 100.0)))
        }
        _ => None,
    };

    let mut extended = ExtendedStats {
        damage_given: diff_count(e1.damage_given, e2.damage_given),
        damage_received: diff_count(e1.damage_received, e2.damage_received),
        team_damage_given: diff_count(e1.team_damage_given, e2.team_damage_given),
        team_damage_received: diff_count(e1.team_damage_received, e2.team_damage_received),
        gibs: diff_count(e1.gibs, e2.gibs),
        self_kills: diff_count(e1.self_kills, e2.self_kills),
        team_kills: diff_count(e1.team_kills, e2.team_kills),
        team_gibs: diff_count(e1.team_gibs, e2.team_gibs),
        // Unreliable (pre-38) values are a round-2-only Lua sum: keep them as they are.
        bullets_fired: if e2.bullets_fired_reliable {
            diff_count(e1.bullets_fired, e2.bullets_fired)
        } else {
            e2.bullets_fired
        },
        time_played_minutes,
        time_played_percent,
        time_dead_ratio: None,
        ..e2.clone()
    };
    let mut player = Player {
        weapons,
        extended: ExtendedStats::default(),
        ..r2.clone()
    };

    let (kills, deaths) = (player.kills(), player.deaths());
    extended.kd_ratio = e2.kd_ratio.map(|_| mod_kd(kills, deaths));
    // Spec §6: (damage received / deaths) / 130, shown only above 3. The real files do not
    // always agree with this formula (the mod's inputs are not all in the file), so this is
    // the spec's definition applied to the round-2-only numbers.
    extended.tank_meatshield =
        e2.tank_meatshield
            .map(|_| match (extended.damage_received, deaths) {
                (Some(received), d) if d > 0 => {
                    let tank = received as f64 / d as f64 / 130.0;
                    if tank > 3.0 {
                        round_1dp(tank)
                    } else {
                        0.0
                    }
                }
                _ => 0.0,
            });
    if e2.revives_derived_from_syringe {
        extended.revives_given = Some(i64::from(
            player
                .weapons
                .iter()
                .find(|w| w.index == SYRINGE_INDEX)
                .map_or(0, |w| w.hits),
        ));
    }
    player.extended = extended;
    // DPM (field 21) is always 0 in the files; recompute it like `Player::dpm`, to 0.1.
    let dpm = player.dpm().map(round_1dp);
    player.extended.dpm = e2.dpm.and(dpm);
    player
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod_kd_rounds_half_up() {
        assert_eq!(mod_kd(13, 17), 0.8);
        assert_eq!(mod_kd(1, 4), 0.3); // 0.25 → 0.3
        assert_eq!(mod_kd(3, 0), 4.0);
        assert_eq!(mod_kd(0, 5), 0.0);
    }

    #[test]
    fn diff_count_clamps_and_keeps_missing() {
        assert_eq!(diff_count(Some(5), Some(3)), Some(0));
        assert_eq!(diff_count(Some(3), Some(5)), Some(2));
        assert_eq!(diff_count(None, Some(5)), Some(5));
        assert_eq!(diff_count(Some(5), None), None);
    }
}
