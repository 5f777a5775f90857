//! Round-2 differential on the hand-written supply pair, with hand-worked numbers.
//!
//! Round 1 (`2025-10-19-234500`) and round 2 (`2025-10-20-000300`) hold:
//! - Alpha (AAAAAAAA): in both, renamed `^2AlphaNew` in R2 → differenced.
//! - Bravo (BBBBBBBB): in both; Thompson headshots drop 2 → 1 → that number clamps to 0.
//! - Charlie (CCCCCCCC): only in R1.
//! - Delta (dddddddd in R1, DDDDDDDD in R2): kills drop 6 → 2 → reset, raw R2 values.
//! - Echo (EEEEEEEE): only in R2 → raw values.

mod common;

use common::{assert_close, parse_fixture};
use guildstats_engine::et::{round2_differential, DiffStatus, Round2Result, Team, WeaponStats};

fn result() -> Round2Result {
    let r1 = parse_fixture("2025-10-19-234500-supply-round-1.txt");
    let r2 = parse_fixture("2025-10-20-000300-supply-round-2.txt");
    round2_differential(&r1, &r2)
}

fn weapon(
    index: u8,
    hits: u32,
    shots: u32,
    kills: u32,
    deaths: u32,
    headshots: u32,
) -> WeaponStats {
    WeaponStats {
        index,
        hits,
        shots,
        kills,
        deaths,
        headshots,
    }
}

#[test]
fn statuses_and_r1_only_players() {
    let result = result();
    assert_eq!(result.r1_file_name, "2025-10-19-234500-supply-round-1.txt");
    assert_eq!(result.r2_file_name, "2025-10-20-000300-supply-round-2.txt");
    let statuses: Vec<(&str, DiffStatus)> = result
        .players
        .iter()
        .map(|p| (p.guid.as_str(), p.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("AAAAAAAA", DiffStatus::Differenced),
            ("BBBBBBBB", DiffStatus::Differenced),
            ("DDDDDDDD", DiffStatus::Reset),
            ("EEEEEEEE", DiffStatus::R2Only),
        ]
    );
    assert_eq!(result.r1_only_guids, ["CCCCCCCC"]);
}

#[test]
fn alpha_is_differenced_and_ratios_recomputed() {
    let result = result();
    let alpha = &result.players[0];
    let p = &alpha.round2_only;
    // Name and team from R2.
    assert_eq!(
        (p.name.as_str(), p.name_raw.as_str()),
        ("AlphaNew", "^2AlphaNew")
    );
    assert_eq!(p.team, Some(Team::Axis));
    // Weapons: knife new in R2; MP40 25/90 7 5 9 − 10/40 3 2 4; syringe 5/6 − 2/2.
    assert_eq!(
        p.weapons,
        [
            weapon(0, 1, 3, 1, 0, 0),
            weapon(4, 15, 50, 4, 3, 5),
            weapon(27, 3, 4, 0, 0, 0)
        ]
    );
    assert_eq!((p.kills(), p.deaths(), p.hits(), p.shots()), (5, 3, 19, 57));
    let e = &p.extended;
    // Cumulative fields: R2 − R1.
    assert_eq!((e.damage_given, e.damage_received), (Some(800), Some(500)));
    assert_eq!(
        (e.team_damage_given, e.team_damage_received),
        (Some(0), Some(20))
    );
    assert_eq!(
        (e.gibs, e.self_kills, e.team_kills, e.team_gibs),
        (Some(2), Some(1), Some(0), Some(0))
    );
    assert_eq!(e.bullets_fired, Some(57));
    assert_eq!(e.time_played_minutes, Some(10.0));
    assert_eq!(p.time_played_seconds(), Some(600));
    // Round-2 fields as they are.
    assert_eq!(
        (e.xp, e.killing_spree, e.kill_assists),
        (Some(50), Some(3), Some(2))
    );
    assert_eq!(
        (
            e.time_dead_minutes,
            e.useful_kills,
            e.playtime_denied_seconds
        ),
        (Some(1.5), Some(2), Some(40))
    );
    assert_eq!(
        (e.multikill_2, e.multikill_3, e.useless_kills),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        (e.repairs_constructions, e.revives_given),
        (Some(1), Some(3))
    );
    // Ratios: alive 85 % × 20 − 80 % × 10 = 9.0 min of 10.0 → 90 %; K/D 5/3 → 1.7;
    // DPM 800 × 60 / 600 = 80; tank 500/3/130 ≈ 1.3 ≤ 3 → 0; dead ratio meaningless.
    assert_eq!(e.time_played_percent, Some(90.0));
    assert_eq!(e.kd_ratio, Some(1.7));
    assert_eq!(e.dpm, Some(80.0));
    assert_eq!(e.tank_meatshield, Some(0.0));
    assert_eq!(e.time_dead_ratio, None);
    assert_close(p.dpm().unwrap(), 80.0);
    assert_close(p.kd(), 5.0 / 3.0);
    assert_close(p.efficiency().unwrap(), 62.5);
    // The R2 file's own cumulative row is kept unchanged.
    assert_eq!(alpha.cumulative.kills(), 8);
    assert_eq!(alpha.cumulative.extended.damage_given, Some(1300));
    assert_eq!(alpha.cumulative.extended.time_dead_ratio, Some(999.0));
}

#[test]
fn bravo_negative_weapon_number_clamps_to_zero() {
    let result = result();
    let p = &result.players[1].round2_only;
    assert_eq!(p.weapons, [weapon(5, 7, 30, 2, 3, 0)]);
    let e = &p.extended;
    assert_eq!(
        (e.damage_given, e.damage_received, e.self_kills),
        (Some(500), Some(400), Some(0))
    );
    assert_eq!(e.bullets_fired, Some(30));
    // 70 % × 20 − 70 % × 10 = 7.0 of 10.0 min → 70 %; K/D 2/3 → 0.7; DPM 500 × 60 / 600 = 50.
    assert_eq!(e.time_played_percent, Some(70.0));
    assert_eq!(e.kd_ratio, Some(0.7));
    assert_eq!(e.dpm, Some(50.0));
    assert_eq!(e.xp, Some(15));
}

#[test]
fn reset_and_r2_only_players_keep_raw_values() {
    let result = result();
    let delta = &result.players[2];
    assert_eq!(delta.round2_only, delta.cumulative);
    assert_eq!(delta.round2_only.kills(), 2);
    assert_eq!(delta.round2_only.extended.damage_given, Some(300));
    let echo = &result.players[3];
    assert_eq!(echo.round2_only, echo.cumulative);
    assert_eq!(echo.round2_only.name, "Echo");
}

#[test]
fn differencing_a_round_against_itself_gives_zeros() {
    let r2 = parse_fixture("2025-10-20-000300-supply-round-2.txt");
    let result = round2_differential(&r2, &r2);
    for player in &result.players {
        assert_eq!(player.status, DiffStatus::Differenced);
        let p = &player.round2_only;
        assert!(p.weapons.is_empty());
        assert_eq!(p.extended.damage_given, Some(0));
        assert_eq!(p.extended.time_played_minutes, Some(0.0));
        // No team time in round 2: the share and DPM cannot be computed.
        assert_eq!(p.extended.time_played_percent, None);
        assert_eq!(p.extended.dpm, None);
        assert_eq!(p.extended.kd_ratio, Some(1.0)); // mod rule: kills + 1 with no deaths
    }
    assert!(result.r1_only_guids.is_empty());
}
