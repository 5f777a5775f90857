//! The parser against small hand-written files, one per version and edge case, with
//! hand-worked expected numbers.

mod common;

use common::{assert_close, fixture_bytes, parse_fixture};
use guildstats_engine::et::{
    bot_guid, parse_round, EtParseErrorKind, LuaVersion, Team, OMNIBOT_GUID,
};

#[test]
fn version_38_round_1() {
    let round = parse_fixture("2025-10-19-234500-supply-round-1.txt");
    assert_eq!(round.file.map, "supply");
    assert_eq!(round.round(), 1);
    assert_eq!(round.file.saved_at.to_string(), "2025-10-19 23:45:00");
    let h = &round.header;
    assert_eq!(h.server_name_raw, "^1Test^7Server");
    assert_eq!(h.server_name, "TestServer");
    assert_eq!(
        (h.map.as_str(), h.config.as_str(), h.round),
        ("supply", "legacy3", 1)
    );
    assert_eq!(
        (h.defender, h.winner),
        (Some(Team::Axis), Some(Team::Allies))
    );
    assert_eq!(
        (h.time_limit_seconds, h.time_used_seconds),
        (Some(600), Some(450))
    );
    assert_eq!(h.playtime_raw, None);
    assert_eq!(round.version, Some(LuaVersion::Fields38));
    assert_eq!(round.players.len(), 4);

    let alpha = round.player("AAAAAAAA").expect("Alpha");
    assert_eq!(alpha.name_raw, "^1Alpha^/x");
    assert_eq!(alpha.name, "Alphax");
    assert_eq!(alpha.team, Some(Team::Allies));
    assert!(!alpha.is_bot);
    let names: Vec<&str> = alpha.weapons.iter().map(|w| w.name()).collect();
    assert_eq!(names, ["MP40", "Syringe"]);
    // MP40 10/40 3 2 4 + syringe 2/2 0 0 0.
    assert_eq!((alpha.kills(), alpha.deaths()), (3, 2));
    assert_eq!(
        (alpha.hits(), alpha.shots(), alpha.headshot_hits()),
        (12, 42, 4)
    );
    assert_eq!(alpha.time_played_seconds(), Some(600));
    assert_close(alpha.dpm().unwrap(), 50.0); // 500 × 60 / 600
    assert_close(alpha.accuracy().unwrap(), 1200.0 / 42.0);
    assert_close(alpha.headshot_rate().unwrap(), 400.0 / 12.0);
    assert_close(alpha.kd(), 1.5);
    assert_close(alpha.efficiency().unwrap(), 60.0);
    let e = &alpha.extended;
    assert_eq!(e.damage_given, Some(500));
    assert_eq!(e.bullets_fired, Some(42));
    assert!(e.bullets_fired_reliable);
    assert_eq!(e.dpm, Some(0.0));
    assert_eq!(e.kd_ratio, Some(1.5));
    assert_eq!(e.playtime_denied_seconds, Some(30));
    assert!(e.playtime_denied_reliable);
    assert_eq!(e.multikill_2, Some(1));
    assert_eq!(e.revives_given, Some(2));
    assert!(!e.revives_derived_from_syringe);

    let charlie = round.player("CCCCCCCC").expect("Charlie");
    assert_close(charlie.kd(), 0.0);
    assert_close(charlie.efficiency().unwrap(), 0.0);
    // A lower-case GUID is normalised; the raw one is kept.
    let delta = round.player("DDDDDDDD").expect("Delta");
    assert_eq!(delta.guid_raw, "dddddddd");
    assert_eq!(delta.name, "Delta");
}

#[test]
fn version_33_decimal_minutes_colour_codes_and_spectator() {
    let round = parse_fixture("2024-05-09-200616-oasis-round-1.txt");
    assert_eq!(round.version, Some(LuaVersion::Fields33));
    let h = &round.header;
    assert_eq!(h.config, "legacy6");
    assert_eq!(
        (h.defender, h.winner),
        (Some(Team::Allies), Some(Team::Axis))
    );
    assert_eq!(h.time_limit_raw, "20.00");
    assert_eq!(
        (h.time_limit_seconds, h.time_used_seconds),
        (Some(1200), Some(750))
    );

    let demon = round.player("0123ABCD").expect("Demonslayer");
    assert_eq!(demon.name, "///M.Demonslayer");
    let names: Vec<&str> = demon.weapons.iter().map(|w| w.name()).collect();
    assert_eq!(names, ["Luger", "Hand grenade"]);
    assert_eq!(
        (demon.kills(), demon.deaths(), demon.hits(), demon.shots()),
        (2, 2, 4, 14)
    );
    let e = &demon.extended;
    // The 33-field layout has multikills at 28–32 and no denied/useless/repairs/revives.
    assert_eq!(e.useful_kills, Some(1));
    assert_eq!(
        (
            e.multikill_2,
            e.multikill_3,
            e.multikill_4,
            e.multikill_5,
            e.multikill_6
        ),
        (Some(4), Some(1), Some(0), Some(0), Some(0))
    );
    assert_eq!(e.playtime_denied_seconds, None);
    assert_eq!(e.useless_kills, None);
    assert_eq!(e.full_self_kills, None);
    assert_eq!(e.repairs_constructions, None);
    assert_eq!(e.revives_given, None);
    // Inflated bullets fired is kept but flagged; Σ shots is the reliable number.
    assert_eq!(e.bullets_fired, Some(67_000));
    assert!(!e.bullets_fired_reliable);
    assert_eq!(demon.shots(), 14);
    assert_eq!(e.tank_meatshield, Some(2.7));
    assert_eq!(demon.time_played_seconds(), Some(750));
    assert_close(demon.dpm().unwrap(), 33.6); // 420 × 60 / 750

    let spectator = round.player("89ABCDEF").expect("spectator");
    assert_eq!(spectator.team, Some(Team::Spectator));
    assert_eq!(spectator.team_code, 3);
    // "^^" keeps a literal caret, "^c" is a code, a trailing caret stays.
    assert_eq!(spectator.name, "^aret^");
    assert_eq!(spectator.accuracy(), Some(0.0));
}

#[test]
fn version_36_round_2_with_zero_time_used() {
    let round = parse_fixture("2025-01-06-221847-supply-round-2.txt");
    assert_eq!(round.version, Some(LuaVersion::Fields36));
    assert_eq!(round.round(), 2);
    assert_eq!(round.header.time_used_raw, "0:00");
    assert_eq!(round.header.time_used_seconds, None);
    assert_eq!(round.header.time_limit_seconds, Some(568));
    let p = &round.players[0];
    assert_eq!(p.name, ".mika");
    let e = &p.extended;
    assert_eq!(e.playtime_denied_seconds, Some(5838));
    assert!(!e.playtime_denied_reliable);
    assert_eq!(e.multikill_2, Some(1));
    assert_eq!((e.useless_kills, e.full_self_kills), (Some(1), Some(0)));
    assert_eq!((e.repairs_constructions, e.revives_given), (None, None));
}

#[test]
fn version_37_with_omnibots_derives_revives() {
    let round = parse_fixture("2025-06-01-210000-etl_frostbite-round-1.txt");
    assert_eq!(round.version, Some(LuaVersion::Fields37));
    assert_eq!(round.header.is_fullhold(), Some(true));
    let bots: Vec<_> = round.players.iter().filter(|p| p.is_bot).collect();
    assert_eq!(bots.len(), 2);
    assert!(bots.iter().all(|b| b.guid_raw == OMNIBOT_GUID));
    assert_eq!(bots[0].name, "[BOT]Smith");
    assert_eq!(bots[0].guid, bot_guid("[BOT]Smith"));
    assert_ne!(bots[0].guid, bots[1].guid);
    assert_eq!(
        round.player(&bot_guid("[BOT]Jones")).map(|p| p.kills()),
        Some(1)
    );
    // Revives come from syringe hits (3); Jones has no syringe: 0, not "unknown".
    assert_eq!(bots[0].extended.revives_given, Some(3));
    assert!(bots[0].extended.revives_derived_from_syringe);
    assert_eq!(bots[1].extended.revives_given, Some(0));
    assert_eq!(bots[0].extended.repairs_constructions, Some(2));
    assert_eq!(bots[0].extended.playtime_denied_seconds, Some(12));
    assert!(bots[0].extended.playtime_denied_reliable);
    let human = round.player("1A2B3C4D").expect("human");
    assert!(!human.is_bot);
    // No deaths: K/D is the kill count (spec §10), efficiency 100 %.
    assert_close(human.kd(), 1.0);
    assert_close(human.efficiency().unwrap(), 100.0);
}

#[test]
fn c0rnp0rn2_space_separated_32_fields() {
    let round = parse_fixture("2024-03-01-200000-radar-round-1.txt");
    assert_eq!(round.version, Some(LuaVersion::Spaces32));
    let p = &round.players[0];
    assert_eq!(p.name, "oldtimer");
    assert_eq!((p.kills(), p.deaths(), p.shots()), (2, 1, 26));
    let e = &p.extended;
    assert_eq!(e.time_played_minutes, None);
    assert_eq!(p.time_played_seconds(), None);
    assert_eq!(p.dpm(), None);
    assert_eq!(e.tank_meatshield, Some(0.0));
    assert_eq!(e.time_dead_ratio, Some(12.5));
    assert_eq!(e.time_dead_minutes, Some(1.1));
    assert_eq!(e.kd_ratio, Some(2.0));
    assert_eq!(e.useful_kills, Some(1));
    assert_eq!(e.multikill_2, Some(1));
    assert_eq!(e.playtime_denied_seconds, None);
}

#[test]
fn header_only_file_with_impossible_time_used() {
    let round = parse_fixture("2025-10-26-200001-etl_sp_delivery-round-2.txt");
    assert!(round.players.is_empty());
    assert_eq!(round.version, None);
    assert_eq!(round.header.time_used_raw, "71:05");
    assert_eq!(round.header.time_limit_seconds, Some(720));
    assert_eq!(round.header.time_used_seconds, None);
}

#[test]
fn crlf_and_non_utf8_names_are_accepted() {
    let mut bytes = fixture_bytes("2025-10-19-234500-supply-round-1.txt");
    bytes = String::from_utf8(bytes)
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes();
    // Put a Latin-1 byte into Bravo's name.
    let at = bytes.windows(5).position(|w| w == b"Bravo").unwrap();
    bytes[at + 1] = 0xE9;
    let round = parse_round("2025-10-19-234500-supply-round-1.txt", &bytes).unwrap();
    assert_eq!(round.players.len(), 4);
    assert_eq!(round.player("BBBBBBBB").unwrap().name, "B\u{FFFD}avo");
    // The replacement is not silent.
    assert_eq!(
        round.warnings,
        vec!["2025-10-19-234500-supply-round-1.txt: not valid UTF-8: 1 invalid byte sequence(s) replaced by U+FFFD, the first on line 3".to_string()]
    );
    assert_eq!(
        round.player("AAAAAAAA").unwrap().extended.revives_given,
        Some(2)
    );
}

fn broken(name: &str) -> String {
    let err = parse_round(name, &fixture_bytes(&format!("broken/{name}"))).unwrap_err();
    err.to_string()
}

#[test]
fn broken_files_report_file_line_and_problem() {
    assert_eq!(
        broken("2025-10-12-221244-supply-round-1.txt"),
        "2025-10-12-221244-supply-round-1.txt line 4: expected 10 weapon numbers for mask 0x30, found 8"
    );
    assert_eq!(
        broken("2025-10-12-221245-supply-round-1.txt"),
        "2025-10-12-221245-supply-round-1.txt line 1: expected 8 or 9 header fields separated by '\\', found 7"
    );
    assert_eq!(
        broken("2025-10-12-221246-supply-round-1.txt"),
        "2025-10-12-221246-supply-round-1.txt line 3: bad GUID \"NOTAGUID\": expected 8 hex characters"
    );
    assert_eq!(
        broken("2025-10-12-221247-supply-round-1.txt"),
        "2025-10-12-221247-supply-round-1.txt line 2 (player BBBBBBBB \"Bravo\"): bad time played percent (extended field 8): \"seventy\""
    );
    assert_eq!(
        broken("2025-10-12-221248-supply-round-1.txt"),
        "2025-10-12-221248-supply-round-1.txt line 3: line has 36 extended fields but the first player line has 38"
    );
    assert!(broken("2025-10-12-221249-supply-round-1.txt")
        .starts_with("2025-10-12-221249-supply-round-1.txt line 3: expected a player line"));
    assert_eq!(
        broken("2025-10-12-221250-supply-round-1.txt"),
        "2025-10-12-221250-supply-round-1.txt line 1: missing header line (the file is empty)"
    );
}

#[test]
fn bad_file_names_are_rejected_before_the_content() {
    let content = fixture_bytes("2025-10-19-234500-supply-round-1.txt");
    let err = parse_round("supply.txt", &content).unwrap_err();
    assert_eq!(err.line, None);
    assert!(matches!(err.kind, EtParseErrorKind::BadFileName { .. }));
    assert!(err.to_string().starts_with("supply.txt: bad file name: "));
}

#[test]
fn bad_numbers_in_the_header_and_weapons() {
    let name = "2025-10-19-234500-supply-round-1.txt";
    let content = String::from_utf8(fixture_bytes(name)).unwrap();
    let bad_time = content.replacen("\\7:30", "\\7:3x", 1);
    assert!(parse_round(name, bad_time.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("line 1: bad header time used: \"7:3x\""));
    let bad_kills = content.replacen(" 10 40 3 2 4 ", " 10 40 three 2 4 ", 1);
    let err = parse_round(name, bad_kills.as_bytes()).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(
        err.to_string().contains("kills for weapon 4 (MP40)"),
        "{err}"
    );
}

#[test]
fn clean_files_have_no_warnings_and_a_bom_is_dropped() {
    let name = "2025-10-19-234500-supply-round-1.txt";
    let plain = parse_fixture(name);
    assert!(plain.warnings.is_empty());
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend(fixture_bytes(name));
    let round = parse_round(name, &with_bom).unwrap();
    assert_eq!(round.header.server_name, "TestServer");
    assert_eq!(round.header.server_name_raw, plain.header.server_name_raw);
    assert!(round.warnings.is_empty());
    assert_eq!(round, plain);
}

#[test]
fn the_header_round_must_be_the_file_names() {
    let name = "2025-10-19-234500-supply-round-1.txt";
    let content = String::from_utf8(fixture_bytes(name)).unwrap();
    for (round, message) in [
        ("99", "line 1: header round 99 is out of range (1 to 2)"),
        (
            "2",
            "line 1: header round 2 differs from the file name's round 1",
        ),
    ] {
        let bad = content.replacen("\\legacy3\\1\\", &format!("\\legacy3\\{round}\\"), 1);
        let err = parse_round(name, bad.as_bytes()).unwrap_err().to_string();
        assert_eq!(err, format!("{name} {message}"));
    }
}

#[test]
fn out_of_range_numbers_name_file_line_player_field_and_value() {
    let name = "2025-10-19-234500-supply-round-1.txt";
    let content = String::from_utf8(fixture_bytes(name)).unwrap();
    let damage = content.replacen("\t500\t", "\t2147483648\t", 1);
    assert_eq!(
        parse_round(name, damage.as_bytes()).unwrap_err().to_string(),
        format!("{name} line 2 (player AAAAAAAA \"Alphax\"): damage given (extended field 0) 2147483648 is out of range (0 to 2147483647)")
    );
    // Negative damage falls under the same rule as negative weapon numbers.
    let negative = content.replacen("\t500\t", "\t-500\t", 1);
    assert!(parse_round(name, negative.as_bytes())
        .unwrap_err()
        .to_string()
        .ends_with("damage given (extended field 0) -500 is out of range (0 to 2147483647)"));
    let team = content.replacen(
        "AAAAAAAA\\^1Alpha^/x\\0\\2\\",
        "AAAAAAAA\\^1Alpha^/x\\0\\70000\\",
        1,
    );
    assert_eq!(
        parse_round(name, team.as_bytes()).unwrap_err().to_string(),
        format!("{name} line 2 (player AAAAAAAA \"Alphax\"): team 70000 is out of range (1 to 3)")
    );
}
