//! The Discord command functions (issue 14) on the real ET:Legacy files plus small synthetic
//! Discord data: /last_session, /stats, /top, /link, /server, checked against values worked out
//! by hand from the files' player lines and against the files parsed here, independently of the
//! importer. The last session of the fixtures (2025-11-11 21:26 to 23:39, ten stopwatch maps,
//! the same six players throughout, no restart and no orphan) is the hand-worked case: with
//! every map finished, a player's session totals are the sums of the cumulative values of the
//! round-2 files.

use guildstats_e2e::et::{cluster_and_fixtures, fixture_names, import_pending, insert_files};
use guildstats_e2e::{db_message, TestDb};
use postgres::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const LAST_SESSION_DAY: &str = "2025-11-11-2";

fn answer(client: &mut Client, sql: &str) -> Value {
    let text: String = client
        .query_one(&format!("SELECT ({sql})::text"), &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", db_message(&e)))
        .get(0);
    serde_json::from_str(&text).expect("jsonb parses")
}

/// A database with every real file imported; None when the fixtures or the cluster are missing.
fn imported(test: &str) -> Option<(TestDb, std::path::PathBuf)> {
    let (cluster, dir) = cluster_and_fixtures(test)?;
    let db = TestDb::create(&cluster, test);
    let mut client = db.connect();
    insert_files(&mut client, &dir, &fixture_names(&dir));
    import_pending(&mut client);
    Some((db, dir))
}

#[derive(Default, Debug, PartialEq)]
struct Totals {
    kills: i64,
    deaths: i64,
    damage_given: i64,
    damage_received: i64,
    gibs: i64,
    seconds: i64,
}

/// Session totals per GUID from the round-2 files of the last session, read here: kills and
/// deaths are the sums over the weapon blocks, then extended fields 0 (damage given), 1 (damage
/// received), 4 (gibs) and 22 (minutes played), all cumulative over both rounds.
fn last_session_from_files(dir: &Path) -> BTreeMap<String, Totals> {
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    let mut tenths_of_minutes: BTreeMap<String, i64> = BTreeMap::new();
    for name in fixture_names(dir)
        .iter()
        .filter(|n| n.starts_with(LAST_SESSION_DAY) && n.ends_with("-round-2.txt"))
    {
        let content = std::fs::read(dir.join(name)).expect("read fixture");
        let text = String::from_utf8_lossy(&content);
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.splitn(5, '\\').collect();
            let (weapons, extended) = fields[4].split_once('\t').expect("extended part");
            let numbers: Vec<i64> = weapons
                .split_whitespace()
                .map(|n| n.parse().expect("weapon number"))
                .collect();
            let blocks: Vec<&[i64]> = numbers[1..].chunks(5).collect();
            let extended: Vec<&str> = extended.split('\t').collect();
            let t = totals.entry(fields[0].to_string()).or_default();
            t.kills += blocks.iter().map(|b| b[2]).sum::<i64>();
            t.deaths += blocks.iter().map(|b| b[3]).sum::<i64>();
            t.damage_given += extended[0].trim().parse::<i64>().expect("damage given");
            t.damage_received += extended[1].trim().parse::<i64>().expect("damage received");
            t.gibs += extended[4].trim().parse::<i64>().expect("gibs");
            let minutes: f64 = extended[22].trim().parse().expect("minutes played");
            *tenths_of_minutes.entry(fields[0].to_string()).or_default() +=
                (minutes * 10.0).round() as i64;
        }
    }
    for (guid, tenths) in tenths_of_minutes {
        totals.get_mut(&guid).expect("player").seconds = tenths * 6;
    }
    totals
}

#[test]
fn last_session_matches_the_files() {
    let Some((db, dir)) = imported("cmd_last_session") else {
        return;
    };
    let mut client = db.connect();
    client.batch_execute("SET timezone = 'UTC'").expect("tz");
    let a = answer(&mut client, "guildstats.command_last_session(1)");
    assert_eq!(a["ok"], json!(true));
    assert_eq!(a["session"]["rounds"], json!(20));
    assert_eq!(
        a["session"]["started_at"],
        json!("2025-11-11T21:26:28+00:00")
    );
    assert_eq!(a["session"]["ended_at"], json!("2025-11-11T23:39:11+00:00"));
    assert_eq!(a["session"]["server"], json!("#purans.only"));

    // Teams by hand: the round-1 Axis of etl_adlernest against its Allies, unchanged all night.
    assert_eq!(
        a["teams"],
        json!({"a": [".olz", "carniee", "SuperBoyy"], "b": ["endekk", "SmetarskiProner", "vid"]})
    );
    // Map results by hand from the headers (defender 1 = Axis; winner; time limit; time used):
    // etl_adlernest: round 1 Allies (b) took 6:51, round 2 Axis (a) held, so b's time stands;
    // supply: two fullholds, a draw.
    let maps: Vec<(String, String, Value)> = a["maps"]
        .as_array()
        .expect("maps")
        .iter()
        .map(|m| {
            (
                m["map"].as_str().unwrap().to_string(),
                m["result"].as_str().unwrap().to_string(),
                m["winner_team"].clone(),
            )
        })
        .collect();
    assert_eq!(maps.len(), 10);
    assert_eq!(
        maps[0],
        (
            "etl_adlernest".into(),
            "round 1 attackers win (6:51 vs 6:51)".into(),
            json!("b")
        )
    );
    assert_eq!(
        maps[1],
        (
            "supply".into(),
            "draw (12:00 vs 12:00)".into(),
            json!("draw")
        )
    );
    // etl_sp_delivery: a defended 12:00 in round 1, then attacked in 8:18 (a wins).
    assert_eq!(
        maps[2],
        (
            "etl_sp_delivery".into(),
            "round 2 attackers win (12:00 vs 8:18)".into(),
            json!("a")
        )
    );
    assert_eq!(
        a["maps"][2]["round1_winner"],
        json!("axis"),
        "round 1 of etl_sp_delivery: winner 1"
    );
    assert_eq!(a["maps"][2]["round2_winner"], json!("allies"));

    // Every player's totals against the files read above, and one by hand: carniee's round-2
    // kills 13+30+31+3+12+9+37+9+10+13 = 167, deaths 17+33+20+7+12+2+26+6+16+11 = 150,
    // damage 4403+7027+4650+1083+2434+1293+6075+1608+1934+2204 = 32711 over 118.0 minutes:
    // DPM 32711 * 60 / 7080 = 277.2, K/D 167 / 150 = 1.11.
    let from_files = last_session_from_files(&dir);
    assert_eq!(from_files.len(), 6);
    let players = a["players"].as_array().expect("players");
    assert_eq!(players.len(), 6);
    for p in players {
        let guid = p["guid"].as_str().unwrap();
        let f = &from_files[guid];
        let got = Totals {
            kills: p["kills"].as_i64().unwrap(),
            deaths: p["deaths"].as_i64().unwrap(),
            damage_given: p["damage_given"].as_i64().unwrap(),
            damage_received: p["damage_received"].as_i64().unwrap(),
            gibs: p["gibs"].as_i64().unwrap(),
            seconds: p["time_played_s"].as_i64().unwrap(),
        };
        assert_eq!(&got, f, "{guid}");
        let dpm = (f.damage_given as f64 * 60.0 / f.seconds as f64 * 10.0).round() / 10.0;
        assert_eq!(p["dpm"].as_f64().unwrap(), dpm, "{guid} dpm");
        let kd = (f.kills as f64 / f.deaths as f64 * 100.0).round() / 100.0;
        assert_eq!(p["kd"].as_f64().unwrap(), kd, "{guid} kd");
    }
    let kills: Vec<i64> = players
        .iter()
        .map(|p| p["kills"].as_i64().unwrap())
        .collect();
    assert!(kills.windows(2).all(|w| w[0] >= w[1]), "sorted by kills");
    assert_eq!(
        players[0],
        json!({"name": "carniee", "guid": "0A26D447", "team": "a", "kills": 167, "deaths": 150,
               "kd": 1.11, "dpm": 277.2, "damage_given": 32711, "damage_received": 27107,
               "gibs": 59, "time_played_s": 7080})
    );
    // MVP by hand (K/D * 10 + efficiency + damage / 100): vid 166/132 -> 12.58 + 55.70 + 345.81
    // = 414.1; the next, SuperBoyy: 12.07 + 54.70 + 327.60 = 394.4.
    assert_eq!(a["mvp"]["guid"], json!("D8423F90"));
    assert!(a["mvp"]["reason"].as_str().unwrap().contains("414.1"));
    let awards = a["awards"].as_array().expect("awards");
    assert!(awards.contains(
        &json!({"award": "Most kills", "name": "carniee", "guid": "0A26D447", "value": 167})
    ));
    assert!(awards.contains(
        &json!({"award": "Most damage given", "name": "vid", "guid": "D8423F90", "value": 34581})
    ));
}

#[test]
fn stats_by_name_by_member_and_bad_names() {
    let Some((db, _dir)) = imported("cmd_stats") else {
        return;
    };
    let mut client = db.connect();
    client.batch_execute("SET timezone = 'UTC'").expect("tz");

    // The same totals written another way: straight from the rounds table, counting what is
    // neither an orphan round 2 nor a cancelled restart.
    let row = client
        .query_one(
            "SELECT count(*), sum(p.kills)::bigint, sum(p.deaths)::bigint, sum(p.gibs)::bigint
             FROM guildstats.et_player_rounds p, guildstats.et_rounds r
             WHERE r.round_id = p.round_id AND p.guid = '0A26D447' AND r.is_orphan = false
               AND coalesce(r.restart_kind, '') <> 'cancelled'",
            &[],
        )
        .expect("independent totals");
    let (rounds, kills, deaths, gibs): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));

    for typed in ["CARN", "^1car^7niee", "carneie", " carniee "] {
        let a = answer(
            &mut client,
            &format!(
                "guildstats.command_stats(1, player => '{typed}', as_of => '2026-01-01 00:00+00')"
            ),
        );
        assert_eq!(a["ok"], json!(true), "{typed}: {a}");
        assert_eq!(a["player"]["guid"], json!("0A26D447"), "{typed}");
        assert_eq!(
            (
                a["totals"]["rounds"].as_i64(),
                a["totals"]["kills"].as_i64(),
                a["totals"]["deaths"].as_i64(),
                a["totals"]["gibs"].as_i64()
            ),
            (Some(rounds), Some(kills), Some(deaths), Some(gibs)),
            "{typed}"
        );
    }
    let a = answer(
        &mut client,
        "guildstats.command_stats(1, player => 'carniee', as_of => '2025-11-20 00:00+00')",
    );
    // The hand-worked session is the last of the sessions listed (oldest first); the form's
    // 30 days before 2025-11-20 begin on 2025-10-21.
    let sessions = a["sessions"].as_array().expect("sessions");
    assert_eq!(
        sessions.last().unwrap(),
        &json!({"session_id": sessions.last().unwrap()["session_id"], "date": "2025-11-11",
                "kills": 167, "deaths": 150, "kd": 1.11, "dpm": 277.2})
    );
    let recent: i64 = client
        .query_one(
            "SELECT count(*) FROM guildstats.et_player_rounds p JOIN guildstats.et_rounds r USING (round_id)
             WHERE p.guid = '0A26D447' AND NOT r.is_orphan AND r.restart_kind IS DISTINCT FROM 'cancelled'
               AND r.saved_at >= '2025-10-21 00:00'",
            &[],
        )
        .expect("recent")
        .get(0);
    assert_eq!(a["form"]["last_30_days"]["rounds"].as_i64(), Some(recent));
    assert_eq!(
        a["form"]["before"]["rounds"].as_i64(),
        Some(rounds - recent)
    );
    assert_eq!(a["voice_hours"], Value::Null, "not linked");
    assert_eq!(a["ranks"][0]["metric"], json!("kills"));

    // Several players start with "e": candidates, not a guess.
    let a = answer(&mut client, "guildstats.command_stats(1, player => 'e')");
    assert_eq!(a["ok"], json!(false));
    assert!(a["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["guid"] == json!("7B84BE88")));
    // Bad names: an answer, never an error.
    for (typed, says) in [
        ("zzqqxxyy", "No ET:Legacy player"),
        ("%", "No ET:Legacy player"),
        ("%_%", "No ET:Legacy player"),
        ("'' OR 1=1 --", "No ET:Legacy player"),
        ("\\\\", "No ET:Legacy player"),
        ("", "Give a player name"),
    ] {
        let a = answer(
            &mut client,
            &format!("guildstats.command_stats(1, player => $n${typed}$n$)"),
        );
        assert_eq!(a["ok"], json!(false), "{typed}");
        assert!(a["error"].as_str().unwrap().contains(says), "{typed}: {a}");
    }
    let long = "x".repeat(500);
    let a = answer(
        &mut client,
        &format!("guildstats.command_stats(1, player => '{long}')"),
    );
    assert!(a["error"].as_str().unwrap().contains("at most 64"), "{a}");

    // By member: linked by an admin, then with voice time and an event.
    client
        .batch_execute(
            "INSERT INTO guildstats.command_admins (guild_id, user_id) VALUES (1, 7);
             INSERT INTO guildstats.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                    is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
             VALUES (1, 42, 100, '2025-11-17 20:00+00', '2025-11-17 21:30+00', 'leave', false, 'join', false, 0, 0);",
        )
        .expect("admin and voice");
    let linked = answer(
        &mut client,
        "guildstats.command_link(1, 42, '0a26d447', confirmed_by => 7)",
    );
    assert_eq!(linked["status"], json!("linked"), "{linked}");
    let a = answer(
        &mut client,
        "guildstats.command_stats(1, user_id => 42, as_of => '2025-11-20 00:00+00')",
    );
    assert_eq!(
        a["player"],
        json!({"name": "carniee", "guid": "0A26D447", "user_id": "42"})
    );
    assert_eq!(
        a["voice_hours"],
        json!({"week": 1.5, "month": 1.5, "all": 1.5})
    );
    assert_eq!(a["events_attended"], json!(0));
    let a = answer(&mut client, "guildstats.command_stats(1, user_id => 43)");
    assert!(a["error"].as_str().unwrap().contains("/link"), "{a}");
}

#[test]
fn top_on_the_real_files() {
    let Some((db, _dir)) = imported("cmd_top") else {
        return;
    };
    let mut client = db.connect();
    client.batch_execute("SET timezone = 'UTC'").expect("tz");
    // The week of 2025-11-10 holds only the hand-worked session: carniee 167, vid 166,
    // SuperBoyy 163 kills.
    let a = answer(
        &mut client,
        "guildstats.command_top(1, 'kills', 'week', max_rows => 3, as_of => '2025-11-12 12:00+00')",
    );
    let rows: Vec<(i64, String, f64, i64)> = a["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rank"].as_i64().unwrap(),
                r["name"].as_str().unwrap().to_string(),
                r["value"].as_f64().unwrap(),
                r["rounds"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (1, "carniee".to_string(), 167.0, 20),
            (2, "vid".to_string(), 166.0, 20),
            (3, "SuperBoyy".to_string(), 163.0, 20)
        ]
    );
    assert_eq!(a["since"], json!("2025-11-10T00:00:00+00:00"));
    // All time, written another way: plain sums over the counted rounds of players with at
    // least 5 of them.
    let expected: Vec<(String, i64)> = client
        .query(
            "SELECT p.guid, sum(p.kills)::bigint FROM guildstats.et_player_rounds p, guildstats.et_rounds r
             WHERE r.round_id = p.round_id AND r.is_orphan = false AND coalesce(r.restart_kind, '') <> 'cancelled'
               AND p.is_bot = false
             GROUP BY p.guid HAVING count(*) >= 5 ORDER BY 2 DESC, 1 LIMIT 5",
            &[],
        )
        .expect("independent top")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let a = answer(
        &mut client,
        "guildstats.command_top(1, 'kills', max_rows => 5)",
    );
    let got: Vec<(String, i64)> = a["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["guid"].as_str().unwrap().to_string(),
                r["value"].as_f64().unwrap() as i64,
            )
        })
        .collect();
    assert_eq!(got, expected);
    // On one map, DPM from the sums (never an average of ratios).
    let (guid, dpm): (String, f64) = {
        let r = client
            .query_one(
                "SELECT p.guid, round((sum(p.damage_given) * 60.0 / sum(p.time_played_seconds))::numeric, 2)::float8
                 FROM guildstats.et_player_rounds p, guildstats.et_rounds r
                 WHERE r.round_id = p.round_id AND r.map = 'supply' AND r.is_orphan = false
                   AND coalesce(r.restart_kind, '') <> 'cancelled' AND p.is_bot = false AND p.damage_given IS NOT NULL
                 GROUP BY p.guid HAVING count(*) >= 5 ORDER BY 2 DESC LIMIT 1",
                &[],
            )
            .expect("independent dpm");
        (r.get(0), r.get(1))
    };
    let a = answer(
        &mut client,
        "guildstats.command_top(1, 'dpm', 'all', map => 'supply', max_rows => 1)",
    );
    assert_eq!(a["rows"][0]["guid"], json!(guid));
    assert_eq!(a["rows"][0]["value"].as_f64(), Some(dpm));
    // A season that began after the last round: nobody.
    client
        .batch_execute("INSERT INTO guildstats.command_settings (guild_id, season_start) VALUES (1, '2025-12-01')")
        .expect("season");
    let a = answer(
        &mut client,
        "guildstats.command_top(1, 'kills', 'season', as_of => '2025-12-24 00:00+00')",
    );
    assert_eq!(a["rows"], json!([]));
}

#[test]
fn link_matches_by_voice_or_waits_for_an_admin() {
    let Some((db, _dir)) = imported("cmd_link") else {
        return;
    };
    let mut client = db.connect();
    client.batch_execute("SET timezone = 'UTC'").expect("tz");
    // Round spans by hand (save time minus time used): etl_adlernest r1 21:19:37-21:26:28,
    // r2 21:26:57-21:33:48, supply r1 21:34:27-21:46:27, supply r2 21:46:43-21:58:43.
    // Member 43 in voice 21:20-21:40: three of vid's rounds, enough. Member 44 in voice
    // 21:20-21:30: two; its AFK evening does not count.
    client
        .batch_execute(
            "INSERT INTO guildstats.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                    is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
             VALUES (1, 43, 100, '2025-11-11 21:20+00', '2025-11-11 21:40+00', 'leave', false, 'join', false, 0, 0),
                    (1, 44, 100, '2025-11-11 21:20+00', '2025-11-11 21:30+00', 'leave', false, 'join', false, 0, 0),
                    (1, 44, 999, '2025-11-11 21:30+00', '2025-11-12 00:00+00', 'leave', true, 'join', false, 0, 0);
             INSERT INTO guildstats.command_admins (guild_id, user_id) VALUES (1, 7);",
        )
        .expect("voice");
    let a = answer(
        &mut client,
        "guildstats.command_link_candidates(1, 43, 'VID')",
    );
    assert_eq!(a["candidates"][0]["guid"], json!("D8423F90"), "{a}");
    assert_eq!(a["candidates"][0]["voice_overlap_rounds"], json!(3));
    assert_eq!(a["candidates"][0]["linked_user_id"], Value::Null);

    let a = answer(&mut client, "guildstats.command_link(1, 43, 'D8423F90')");
    assert_eq!(a["status"], json!("linked"), "{a}");
    let note: String = client
        .query_one(
            "SELECT note FROM guildstats.et_guid_links WHERE guid = 'D8423F90' AND guild_id = 1 AND user_id = 43",
            &[],
        )
        .expect("link row")
        .get(0);
    assert!(note.contains("3 of its rounds"), "{note}");
    // Somebody else cannot take it; an admin could.
    let a = answer(&mut client, "guildstats.command_link(1, 44, 'D8423F90')");
    assert_eq!(a["ok"], json!(false), "{a}");

    let a = answer(&mut client, "guildstats.command_link(1, 44, '7B84BE88')");
    assert_eq!(a["status"], json!("pending"), "{a}");
    let pending: i32 = client
        .query_one(
            "SELECT voice_overlap_rounds FROM guildstats.et_guid_claims WHERE guild_id = 1 AND user_id = 44 AND guid = '7B84BE88'",
            &[],
        )
        .expect("claim row")
        .get(0);
    assert_eq!(pending, 2);
    let a = answer(
        &mut client,
        "guildstats.command_link(1, 44, '7B84BE88', confirmed_by => 8)",
    );
    assert!(a["error"].as_str().unwrap().contains("admin"), "{a}");
    let a = answer(
        &mut client,
        "guildstats.command_link(1, 44, '7B84BE88', confirmed_by => 7)",
    );
    assert_eq!(a["status"], json!("linked"), "{a}");
    let left: i64 = client
        .query_one("SELECT count(*) FROM guildstats.et_guid_claims", &[])
        .expect("claims")
        .get(0);
    assert_eq!(left, 0, "the claim goes once linked");
    // Bad GUIDs: an answer.
    for guid in ["", "ZZZZZZZZ", "0A26D44", "'; DROP TABLE x; --", "ABCDEF12"] {
        let a = answer(
            &mut client,
            &format!("guildstats.command_link(1, 44, $g${guid}$g$)"),
        );
        assert_eq!(a["ok"], json!(false), "{guid}: {a}");
    }
}

#[test]
fn server_shows_who_is_in_voice() {
    let Some((db, _dir)) = imported("cmd_server") else {
        return;
    };
    let mut client = db.connect();
    client.batch_execute("SET timezone = 'UTC'").expect("tz");
    client
        .batch_execute(
            "INSERT INTO guildstats.et_guid_links (guid, guild_id, user_id) VALUES ('0A26D447', 1, 42), ('D8423F90', 1, 43);
             INSERT INTO guildstats.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                    is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
             VALUES (1, 42, 100, '2026-03-11 19:00+00', NULL, NULL, false, 'join', false, 0, 0),
                    (1, 43, 999, '2026-03-11 19:00+00', NULL, NULL, true, 'join', false, 0, 0);
             INSERT INTO guildstats.raw_server_polls (server, polled_at, ok, protocol, server_name, map, player_count, max_players)
             VALUES ('203.0.113.5:27960', '2026-03-11 19:59+00', true, 'q3', 'old', 'goldrush', 0, 12),
                    ('203.0.113.5:27960', '2026-03-11 20:00+00', true, 'q3', '^1Clan ^7server', 'supply', 3, 12);
             INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name, score, ping_ms)
             VALUES ('203.0.113.5:27960', '2026-03-11 20:00+00', 0, '^1car^7niee', 41, 35),
                    ('203.0.113.5:27960', '2026-03-11 20:00+00', 1, 'vid', 50, 20),
                    ('203.0.113.5:27960', '2026-03-11 20:00+00', 2, 'guest', 12, 80);",
        )
        .expect("polls");
    let a = answer(&mut client, "guildstats.command_server(1)");
    assert_eq!(a["ok"], json!(true));
    let server = &a["servers"][0];
    assert_eq!(server["name"], json!("Clan server"));
    assert_eq!(server["map"], json!("supply"));
    assert_eq!(server["max_players"], json!(12));
    assert_eq!(
        server["players"],
        json!([
            {"name": "vid", "score": 50, "ping": 20, "in_voice": false, "user_id": "43"},
            {"name": "carniee", "score": 41, "ping": 35, "in_voice": true, "user_id": "42"},
            {"name": "guest", "score": 12, "ping": 80, "in_voice": false, "user_id": null}
        ]),
        "vid's member is AFK, which is not voice"
    );
    // Another guild sees the same server, with nobody of its own in voice.
    let a = answer(&mut client, "guildstats.command_server(2)");
    assert_eq!(a["servers"][0]["players"][1]["user_id"], Value::Null);
    // Each server's own latest poll, whichever server polled last (the walk over the
    // (server, polled_at) key steps from server to server).
    client
        .batch_execute(
            "INSERT INTO guildstats.raw_server_polls (server, polled_at, ok, protocol, error)
             VALUES ('198.51.100.7:27960', '2026-03-11 18:00+00', false, 'q3', 'timeout'),
                    ('198.51.100.7:27960', '2026-03-11 17:00+00', true, 'q3', NULL),
                    ('203.0.113.9:27960', '2026-03-11 21:00+00', false, 'q3', 'refused')",
        )
        .expect("more polls");
    let a = answer(&mut client, "guildstats.command_server(1)");
    let latest: Vec<(Value, Value, Value)> = a["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| {
            (
                s["server"].clone(),
                s["polled_at"].clone(),
                s["error"].clone(),
            )
        })
        .collect();
    assert_eq!(
        latest,
        vec![
            (
                json!("198.51.100.7:27960"),
                json!("2026-03-11T18:00:00+00:00"),
                json!("timeout")
            ),
            (
                json!("203.0.113.5:27960"),
                json!("2026-03-11T20:00:00+00:00"),
                Value::Null
            ),
            (
                json!("203.0.113.9:27960"),
                json!("2026-03-11T21:00:00+00:00"),
                json!("refused")
            ),
        ]
    );
}

/// What /community answered before it read the rollups: every number recomputed from the raw
/// and core tables by the public functions (activity_daily, retention_dn, economy_health).
const COMMUNITY_RECOMPUTED: &str = "
    WITH z AS (SELECT ($2::timestamptz AT TIME ZONE s.calendar_time_zone)::date AS today
               FROM guildstats.settings_for($1) s),
    d AS (SELECT a.* FROM z, guildstats.activity_daily($1, z.today, z.today) a)
    SELECT jsonb_build_object(
        'ok', true, 'day', z.today,
        'dau', coalesce((SELECT d.dau FROM d), 0), 'mau', coalesce((SELECT d.mau FROM d), 0),
        'dau_mau', (SELECT round(d.dau_mau::numeric, 3)::double precision FROM d),
        'd7', (SELECT round(r.rate::numeric, 3)::double precision FROM guildstats.retention_dn($1, '{7}') r),
        'd30', (SELECT round(r.rate::numeric, 3)::double precision FROM guildstats.retention_dn($1, '{30}') r),
        'economy_alerts', coalesce((SELECT jsonb_agg(jsonb_build_object('day', e.day, 'alert', al.alert) ORDER BY e.day DESC, al.alert)
                                    FROM guildstats.economy_health($1, z.today - 29, z.today) e,
                                         unnest(e.alerts) AS al(alert)), '[]'),
        'health_problems', coalesce((SELECT jsonb_agg(h.severity || ': ' || h.check_name || ' ' || h.status || coalesce(' (' || h.detail || ')', '')
                                                      ORDER BY h.severity, h.check_name)
                                     FROM guildstats.health() h WHERE h.status <> 'ok'), '[]'))::text
    FROM z";

/// A tiny synthetic community of `days` days, its calendar in Europe/Berlin, built by
/// build_all(); None without a cluster.
fn synthetic_community(name: &str, days: u32, seed: u64) -> Option<(TestDb, Client)> {
    use guildstats_synth::{pg, Community, CommunityConfig, Table};
    let cluster = guildstats_e2e::Cluster::from_env(name)?;
    let config = CommunityConfig {
        days,
        ..CommunityConfig::tiny().with_seed(seed)
    };
    let community = Community::new(config).expect("valid config");
    let db = TestDb::create(&cluster, name);
    let mut client = db.connect();
    pg::load_where(&mut client, &community, &[Table::Guilds], |_| true).expect("guilds");
    client
        .batch_execute(
            "INSERT INTO guildstats.settings (guild_id, calendar_time_zone)
             SELECT DISTINCT guild_id, 'Europe/Berlin' FROM guildstats.raw_guilds",
        )
        .expect("settings");
    pg::load_where(&mut client, &community, &Table::ALL, |r| {
        r.table() != Table::Guilds
    })
    .expect("synthetic load");
    client
        .batch_execute("SELECT * FROM guildstats.build_all()")
        .expect("build_all");
    Some((db, client))
}

#[test]
fn community_from_the_rollups_equals_the_recomputed_answer() {
    let Some((_db, mut client)) = synthetic_community("cmd_community", 60, 31) else {
        return;
    };
    let row = client
        .query_one(
            "SELECT min(guild_id), min(activity_at), max(activity_at) FROM guildstats.activity_events
             WHERE kind <> 'member' AND guild_id = (SELECT min(guild_id) FROM guildstats.raw_guilds)",
            &[],
        )
        .expect("bounds");
    let guild: i64 = row.get(0);
    let (first, last): (std::time::SystemTime, std::time::SystemTime) = (row.get(1), row.get(2));
    let day = std::time::Duration::from_secs(86_400);
    let mut alerts_seen = 0;
    // Inside the data, its first and last days, and after it (the rollups stop at the last
    // active day and the last day with points; the recomputation goes on).
    for as_of in [
        first - day,
        first,
        first + 10 * day,
        first + 33 * day,
        last - 3 * day,
        last,
        last + 2 * day,
        last + 20 * day,
        last + 45 * day,
    ] {
        let from_rollups: String = client
            .query_one(
                "SELECT guildstats.command_community($1, $2)::text",
                &[&guild, &as_of],
            )
            .expect("command_community")
            .get(0);
        let mut from_rollups: Value = serde_json::from_str(&from_rollups).expect("jsonb");
        let recomputed: String = client
            .query_one(COMMUNITY_RECOMPUTED, &[&guild, &as_of])
            .expect("recomputed")
            .get(0);
        let recomputed: Value = serde_json::from_str(&recomputed).expect("jsonb");
        let built = from_rollups
            .as_object_mut()
            .expect("object")
            .remove("built_through");
        assert!(
            built.is_some_and(|b| b.is_string()),
            "built_through is the time of the last rollup build"
        );
        assert_eq!(from_rollups, recomputed, "as of {as_of:?}");
        alerts_seen += recomputed["economy_alerts"].as_array().map_or(0, Vec::len);
    }
    assert!(
        alerts_seen > 0,
        "the community raises economy alerts to compare"
    );
}

/// /top messages counted from the raw messages another way: the period's start in the guild's
/// calendar (Europe/Berlin) worked out here in SQL, every non-bot message of the guild before
/// as_of, per author: `[[user_id, count], ...]`, most first.
const TOP_MESSAGES_RECOMPUTED: &str = "
    WITH start AS (
        SELECT CASE $2::text
                   WHEN 'week' THEN date_trunc('week', $3::timestamptz AT TIME ZONE 'Europe/Berlin') AT TIME ZONE 'Europe/Berlin'
                   WHEN 'month' THEN date_trunc('month', $3::timestamptz AT TIME ZONE 'Europe/Berlin') AT TIME ZONE 'Europe/Berlin'
                   WHEN 'season' THEN $4::text::date::timestamp AT TIME ZONE 'Europe/Berlin'
                   ELSE '-infinity' END AS at)
    SELECT coalesce(jsonb_agg(jsonb_build_array(c.user_id::text, c.n) ORDER BY c.n DESC, c.user_id), '[]')::text
    FROM (SELECT m.user_id, count(*) AS n FROM guildstats.raw_messages m, start s
           WHERE m.guild_id = $1::bigint AND NOT m.is_bot AND m.sent_at >= s.at AND m.sent_at < $3::timestamptz
           GROUP BY m.user_id) c";

#[test]
fn top_messages_from_the_rollup_equals_the_raw_count() {
    let Some((_db, mut client)) = synthetic_community("cmd_top_messages", 75, 17) else {
        return;
    };
    let row = client
        .query_one(
            "SELECT g.guild_id, min(m.sent_at), max(m.sent_at), (SELECT c.season_start::text FROM guildstats.command_settings_for(g.guild_id) c)
             FROM (SELECT min(guild_id) AS guild_id FROM guildstats.raw_guilds) g
             JOIN guildstats.raw_messages m ON m.guild_id = g.guild_id GROUP BY g.guild_id",
            &[],
        )
        .expect("bounds");
    let guild: i64 = row.get(0);
    let (first, last): (std::time::SystemTime, std::time::SystemTime) = (row.get(1), row.get(2));
    let season: String = row.get(3);
    let rollup_rows: i64 = client
        .query_one(
            "SELECT count(*) FROM guildstats.member_messages_monthly WHERE guild_id = $1",
            &[&guild],
        )
        .expect("rollup rows")
        .get(0);
    assert!(rollup_rows > 0, "build_all() filled the monthly rollup");
    let day = std::time::Duration::from_secs(86_400);
    let hour = std::time::Duration::from_secs(3_600);
    let check = |client: &mut Client, what: &str| {
        let mut compared = 0;
        for as_of in [
            first,
            first + 3 * day + 5 * hour,
            first + 31 * day,
            last - 20 * day - 7 * hour,
            last - 2 * day,
            last,
            last + 9 * day,
            last + 70 * day,
        ] {
            for period in ["week", "month", "season", "all"] {
                let got: String = client
                    .query_one(
                        "SELECT coalesce(jsonb_agg(jsonb_build_array(r ->> 'user_id', (r ->> 'value')::bigint)
                                                   ORDER BY (r ->> 'value')::bigint DESC, (r ->> 'user_id')::bigint), '[]')::text
                         FROM jsonb_array_elements(guildstats.command_top($1, 'messages', $2, as_of => $3, max_rows => 100) -> 'rows') r",
                        &[&guild, &period, &as_of],
                    )
                    .unwrap_or_else(|e| panic!("command_top: {}", db_message(&e)))
                    .get(0);
                let got: Value = serde_json::from_str(&got).expect("jsonb");
                let want: String = client
                    .query_one(TOP_MESSAGES_RECOMPUTED, &[&guild, &period, &as_of, &season])
                    .expect("recomputed")
                    .get(0);
                let want: Value = serde_json::from_str(&want).expect("jsonb");
                // The answer shows the first 100; a tie at the cut may be listed either way,
                // so the comparison stops at the last count above the cut.
                let cut = want.as_array().map_or(0, |w| w.len().min(100));
                assert_eq!(
                    got.as_array().map(|g| g.len()),
                    Some(cut),
                    "{what}: {period} as of {as_of:?}"
                );
                let (got, want) = (got.as_array().unwrap(), want.as_array().unwrap());
                let last_count = want.get(cut.saturating_sub(1)).map(|w| w[1].clone());
                for (g, w) in got.iter().zip(want.iter()) {
                    if Some(&w[1]) == last_count.as_ref() {
                        break;
                    }
                    assert_eq!(g, w, "{what}: {period} as of {as_of:?}");
                }
                compared += cut;
            }
        }
        assert!(
            compared > 500,
            "{what}: enough counts compared ({compared})"
        );
    };
    check(&mut client, "after build_all()");
    // Rows that arrive after the build, in days the rollup holds (a late replay) and on the last
    // day: counted from the raw table until the next build, then from the rollup, never twice.
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at, is_bot)
             SELECT m.guild_id, m.channel_id, m.user_id, m.message_id + 9000000000000, m.sent_at + interval '1 second', false
             FROM guildstats.raw_messages m
             WHERE m.guild_id = {guild} AND NOT m.is_bot AND m.ingest_id % 7 = 0"
        ))
        .expect("late messages");
    check(&mut client, "late rows before the next build");
    client
        .batch_execute("SELECT * FROM guildstats.build_rollups()")
        .expect("build_rollups");
    check(&mut client, "late rows after the next build");
}
