//! The Discord bot end to end: the real serenity client in the real `guildstats-discord` binary,
//! connected to ../shared/tools/mock_discord.py playing our scenarios, writing as the ingest role
//! into a database with the extension. Checks the rows, then the voice sessions
//! `build_voice_sessions()` makes of them; and that a kill -9 mid-batch loses and doubles nothing.

use guildstats_e2e::discord::{
    channel, guild, ingester_args, ingester_binary, member, message, mock_tool, scenario,
    scheduled_event, scratch_dir, spooled_rows, user, voice, wait_for, Ingester, MockDiscord,
    GUILD,
};
use guildstats_e2e::{Bounded, Cluster, TestDb};
use guildstats_ingest::raw_tables;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const LOGIN: &str = "e2e_discord_ingester";

fn count(db: &TestDb, sql: &str) -> i64 {
    db.connect()
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Every scripted kind of event, including the nasty ones: a move, a flag-only change, a join,
/// a leave from the AFK channel, an opted-out user (46) and a bot (77) in voice, a thread reply,
/// a direct message, member join/leave/ban, scheduled events and interest, and a second
/// GUILD_CREATE as after a reconnect.
fn rich_scenario() -> Value {
    let channels = vec![
        channel("400", 4, "Voice", None),
        channel("500", 2, "Lobby", Some("400")),
        channel("600", 2, "Games", Some("400")),
        channel("999", 2, "AFK", None),
        channel("510", 0, "general", None),
    ];
    let threads = vec![
        json!({"id": "520", "type": 11, "name": "scrim plans", "parent_id": "510",
        "guild_id": GUILD, "owner_id": "42",
        "thread_metadata": {"archived": false, "auto_archive_duration": 1440, "locked": false,
                            "archive_timestamp": "2026-11-01T00:00:00+00:00"}}),
    ];
    let members = vec![
        member("42", false),
        member("43", false),
        member("44", false),
        member("46", false),
        member("77", true),
    ];
    let first = guild(
        channels.clone(),
        threads.clone(),
        members.clone(),
        vec![
            voice("42", Some("500"), false, false),
            voice("43", Some("999"), false, false),
            voice("46", Some("500"), false, false),
            voice("77", Some("600"), false, false),
        ],
    );
    let reconnect = guild(
        channels,
        threads,
        members,
        vec![
            voice("42", Some("600"), true, false),
            voice("44", Some("500"), false, false),
            voice("46", Some("600"), false, false),
            voice("77", Some("500"), false, false),
        ],
    );
    let mut bot_in_voice = voice("77", Some("500"), false, true);
    bot_in_voice["member"] = member("77", true);
    let mut with_attachment = message("1001", "510", user("42", false), "secret words here");
    with_attachment["attachments"] = json!([{"id": "1", "filename": "demo.png", "size": 10,
        "url": "https://cdn.invalid/a", "proxy_url": "https://cdn.invalid/a"}]);
    let mut thread_reply = message("1002", "520", user("44", false), "");
    thread_reply["type"] = json!(19);
    thread_reply["message_reference"] =
        json!({"message_id": "1001", "channel_id": "510", "guild_id": GUILD});
    let mut direct = message("1005", "800", user("42", false), "secret dm");
    direct.as_object_mut().unwrap().remove("guild_id");
    direct.as_object_mut().unwrap().remove("member");
    let mut joiner = member("45", false);
    joiner["joined_at"] = json!("2026-11-01T20:00:00.000000+00:00");
    let interest =
        |user: &str| json!({"guild_scheduled_event_id": "700", "user_id": user, "guild_id": GUILD});
    scenario(
        first,
        vec![
            ("VOICE_STATE_UPDATE", voice("42", Some("600"), false, true)),
            ("VOICE_STATE_UPDATE", voice("42", Some("600"), true, true)),
            ("VOICE_STATE_UPDATE", voice("44", Some("500"), false, true)),
            ("VOICE_STATE_UPDATE", voice("46", Some("600"), false, true)),
            ("VOICE_STATE_UPDATE", bot_in_voice),
            ("VOICE_STATE_UPDATE", voice("43", None, false, true)),
            ("MESSAGE_CREATE", with_attachment),
            ("MESSAGE_CREATE", thread_reply),
            (
                "MESSAGE_CREATE",
                message("1003", "510", user("77", true), "now playing"),
            ),
            (
                "MESSAGE_CREATE",
                message("1004", "510", user("46", false), "secret opted out"),
            ),
            ("MESSAGE_CREATE", direct),
            ("GUILD_MEMBER_ADD", joiner),
            ("GUILD_MEMBER_ADD", member("46", false)),
            (
                "GUILD_MEMBER_REMOVE",
                json!({"guild_id": GUILD, "user": user("45", false)}),
            ),
            (
                "GUILD_BAN_ADD",
                json!({"guild_id": GUILD, "user": user("45", false)}),
            ),
            (
                "GUILD_SCHEDULED_EVENT_CREATE",
                scheduled_event("700", 1, "46"),
            ),
            ("GUILD_SCHEDULED_EVENT_USER_ADD", interest("42")),
            ("GUILD_SCHEDULED_EVENT_USER_ADD", interest("46")),
            (
                "GUILD_SCHEDULED_EVENT_UPDATE",
                scheduled_event("700", 2, "46"),
            ),
            ("GUILD_SCHEDULED_EVENT_USER_REMOVE", interest("42")),
            (
                "GUILD_SCHEDULED_EVENT_CREATE",
                scheduled_event("701", 1, "42"),
            ),
            (
                "GUILD_SCHEDULED_EVENT_DELETE",
                scheduled_event("701", 1, "42"),
            ),
            ("GUILD_CREATE", reconnect),
            ("VOICE_STATE_UPDATE", voice("44", None, false, true)),
            ("VOICE_STATE_UPDATE", voice("42", None, false, true)),
            (
                "MESSAGE_CREATE",
                message("1999", "510", user("42", false), "done"),
            ),
        ],
    )
}

#[test]
fn discord_events_become_raw_rows_and_voice_sessions() {
    const TEST: &str = "discord_events_become_raw_rows_and_voice_sessions";
    let Some(cluster) = Cluster::from_env(TEST) else {
        return;
    };
    let (Some(tool), Some(bin)) = (mock_tool(TEST), ingester_binary(TEST)) else {
        return;
    };
    let db = TestDb::create(&cluster, "discord_rows");
    db.ingest_login(LOGIN);
    let dir = scratch_dir("rows");
    std::fs::write(dir.join("optout.txt"), "# asked to be forgotten\n46\n").expect("opt-out file");
    let mock = MockDiscord::start(&tool, &dir, "mock", &rich_scenario());
    let mut args = ingester_args(
        &mock,
        &cluster.dsn(&db.name, LOGIN),
        &dir.join("spool.jsonl"),
    );
    args.extend(
        [
            "--batch-ms",
            "100",
            "--heartbeat-secs",
            "1",
            "--opt-out-file",
        ]
        .map(String::from),
    );
    args.push(dir.join("optout.txt").display().to_string());
    let mut ingester = Ingester::start_bot(&bin, &args, &dir.join("ingester.log"));
    wait_for("the last scripted message", Duration::from_secs(60), || {
        ingester.assert_running();
        count(
            &db,
            "SELECT count(*) FROM guildstats.raw_messages WHERE message_id = 1999",
        ) == 1
    });
    let status = ingester.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(
        mock.log_text().contains("IDENTIFY intents"),
        "{}",
        mock.log_text()
    );

    let mut client = db.connect();
    let voice_rows: Vec<(i64, Option<i64>, bool, String)> = client
        .query(
            "SELECT user_id, channel_id, self_mute, event_ts::text
             FROM guildstats.raw_voice_events ORDER BY event_ts",
            &[],
        )
        .expect("voice events")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let shape: Vec<(i64, Option<i64>, bool)> =
        voice_rows.iter().map(|(u, c, m, _)| (*u, *c, *m)).collect();
    assert_eq!(
        shape,
        [
            (42, Some(600), false), // move
            (42, Some(600), true),  // flag only
            (44, Some(500), false), // join
            (43, None, false),      // leave from AFK
            (44, None, false),
            (42, None, false),
        ]
    );
    let ts = |i: usize| voice_rows[i].3.clone();

    let snapshots: Vec<(String, Value)> = client
        .query(
            "SELECT taken_at::text, voice_states::text FROM guildstats.raw_voice_snapshots ORDER BY taken_at",
            &[],
        )
        .expect("snapshots")
        .iter()
        .map(|r| {
            let states: String = r.get(1);
            (r.get(0), serde_json::from_str(&states).expect("json"))
        })
        .collect();
    assert_eq!(snapshots.len(), 2, "one per GUILD_CREATE");
    assert_eq!(
        snapshots[0].1,
        json!([{"user_id": 42, "channel_id": 500, "self_mute": false, "self_deaf": false},
               {"user_id": 43, "channel_id": 999, "self_mute": false, "self_deaf": false}])
    );
    assert_eq!(
        snapshots[1].1,
        json!([{"user_id": 42, "channel_id": 600, "self_mute": true, "self_deaf": false},
               {"user_id": 44, "channel_id": 500, "self_mute": false, "self_deaf": false}])
    );
    assert!(snapshots[0].0 < ts(0) && ts(3) < snapshots[1].0 && snapshots[1].0 < ts(4));

    let guilds = client
        .query_one(
            "SELECT count(*), min(afk_channel_id), max(afk_channel_id), min(name)
             FROM guildstats.raw_guilds",
            &[],
        )
        .expect("guilds");
    assert_eq!(
        (
            guilds.get::<_, i64>(0),
            guilds.get::<_, Option<i64>>(1),
            guilds.get::<_, Option<i64>>(2)
        ),
        (2, Some(999), Some(999))
    );
    assert_eq!(guilds.get::<_, String>(3), "ETL");
    assert_eq!(
        count(&db, "SELECT count(*) FROM guildstats.raw_channels"),
        12
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM guildstats.raw_channels WHERE channel_id = 520 AND kind = 'thread' AND parent_id = 510"
        ),
        2
    );

    type MessageRow = (i64, i64, i64, Option<i64>, i32, i32, i32, bool, bool);
    let messages: Vec<MessageRow> = client
        .query(
            "SELECT message_id, channel_id, user_id, thread_id, char_count, word_count,
                    attachment_count, is_reply, is_bot
             FROM guildstats.raw_messages ORDER BY message_id",
            &[],
        )
        .expect("messages")
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        })
        .collect();
    assert_eq!(
        messages,
        [
            (1001, 510, 42, None, 17, 3, 1, false, false),
            (1002, 510, 44, Some(520), 0, 0, 0, true, false),
            (1003, 510, 77, None, 11, 2, 0, false, true),
            (1999, 510, 42, None, 4, 1, 0, false, false),
        ]
    );
    for table in raw_tables::ALL {
        let leaked = count(
            &db,
            &format!(
                "SELECT count(*) FROM guildstats.{} t WHERE t::text LIKE '%secret%'",
                table.name
            ),
        );
        assert_eq!(leaked, 0, "message text reached {}", table.name);
    }

    let members: Vec<(i64, String, bool)> = client
        .query(
            "SELECT user_id, event_type, event_ts = '2026-11-01 20:00:00+00'
             FROM guildstats.raw_member_events ORDER BY event_ts",
            &[],
        )
        .expect("members")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        members,
        [
            (45, "join".to_string(), true), // Discord's joined_at, not the receipt time
            (45, "leave".to_string(), false),
            (45, "ban".to_string(), false),
        ]
    );

    let events: Vec<(i64, String, Option<i64>)> = client
        .query(
            "SELECT event_id, status, creator_id FROM guildstats.raw_scheduled_events ORDER BY observed_at",
            &[],
        )
        .expect("scheduled events")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        events,
        [
            (700, "scheduled".to_string(), None), // the creator opted out
            (700, "active".to_string(), None),
            (701, "scheduled".to_string(), Some(42)),
            (701, "canceled".to_string(), Some(42)), // deleted
        ]
    );
    let interest: Vec<(i64, i64, String)> = client
        .query(
            "SELECT event_id, user_id, action FROM guildstats.raw_scheduled_event_users ORDER BY observed_at",
            &[],
        )
        .expect("interest")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        interest,
        [
            (700, 42, "add".to_string()),
            (700, 42, "remove".to_string())
        ]
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM guildstats.raw_heartbeats WHERE source = 'discord' AND guild_id = 100"
        ) >= 1
    );
    // The opted-out user and the bot's voice appear nowhere.
    for sql in [
        "SELECT count(*) FROM guildstats.raw_voice_events WHERE user_id IN (46, 77)",
        "SELECT count(*) FROM guildstats.raw_messages WHERE user_id = 46",
        "SELECT count(*) FROM guildstats.raw_member_events WHERE user_id = 46",
        "SELECT count(*) FROM guildstats.raw_scheduled_event_users WHERE user_id = 46",
        "SELECT count(*) FROM guildstats.raw_scheduled_events WHERE creator_id = 46",
        "SELECT count(*) FROM guildstats.raw_voice_snapshots s, jsonb_array_elements(s.voice_states) v
         WHERE (v->>'user_id')::bigint IN (46, 77)",
    ] {
        assert_eq!(count(&db, sql), 0, "{sql}");
    }

    // The sessions, against what the raw rows say independently.
    client
        .batch_execute("SELECT * FROM guildstats.build_voice_sessions()")
        .expect("build_voice_sessions");
    type Session = (
        i64,
        i64,
        String,
        Option<String>,
        String,
        Option<String>,
        bool,
    );
    let sessions: Vec<Session> = client
        .query(
            "SELECT user_id, channel_id, started_at::text, ended_at::text, start_reason, end_reason, is_afk
             FROM guildstats.voice_sessions ORDER BY user_id, started_at",
            &[],
        )
        .expect("sessions")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
        .collect();
    let snap = snapshots[0].0.clone();
    let s = |x: &str| x.to_string();
    assert_eq!(
        sessions,
        [
            (
                42,
                500,
                snap.clone(),
                Some(ts(0)),
                s("snapshot"),
                Some(s("move")),
                false
            ),
            (
                42,
                600,
                ts(0),
                Some(ts(5)),
                s("move"),
                Some(s("leave")),
                false
            ),
            (
                43,
                999,
                snap,
                Some(ts(3)),
                s("snapshot"),
                Some(s("leave")),
                true
            ),
            (
                44,
                500,
                ts(2),
                Some(ts(4)),
                s("join"),
                Some(s("leave")),
                false
            ),
        ]
    );
    let muted_ok: bool = client
        .query_one(
            "SELECT abs(v.self_mute_seconds - extract(epoch FROM $2::text::timestamptz - $1::text::timestamptz)::float8) < 1e-6
             FROM guildstats.voice_sessions v WHERE v.user_id = 42 AND v.channel_id = 600",
            &[&ts(1), &ts(5)],
        )
        .expect("mute time")
        .get(0);
    assert!(
        muted_ok,
        "self-muted time runs from the flag change to the leave"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// User 42 walks through channel 10001, 10002, ... (each move unique, so a doubled row shows)
/// while user 43 writes messages 2001, 2002, ...
fn long_scenario(steps: u32) -> (Value, Vec<i64>, Vec<i64>) {
    let mut script = Vec::new();
    let (mut message_ids, mut channels) = (Vec::new(), Vec::new());
    for i in 1..=steps {
        let channel_id = 10_000 + i64::from(i);
        let message_id = 2_000 + i64::from(i);
        script.push((
            "VOICE_STATE_UPDATE",
            voice("42", Some(&channel_id.to_string()), false, true),
        ));
        script.push((
            "MESSAGE_CREATE",
            message(&message_id.to_string(), "510", user("43", false), "gg"),
        ));
        channels.push(channel_id);
        message_ids.push(message_id);
    }
    let start = guild(
        vec![],
        vec![],
        vec![member("42", false), member("43", false)],
        vec![voice("42", Some("10000"), false, false)],
    );
    (scenario(start, script), message_ids, channels)
}

/// The numeric value of `name=` in a logged row key.
fn key_field(key: &str, name: &str) -> Option<i64> {
    key.split(' ')
        .find_map(|part| part.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

#[test]
fn discord_rows_arrive_exactly_once_across_a_kill_mid_batch() {
    const TEST: &str = "discord_rows_arrive_exactly_once_across_a_kill_mid_batch";
    let Some(cluster) = Cluster::from_env(TEST) else {
        return;
    };
    let (Some(tool), Some(bin)) = (mock_tool(TEST), ingester_binary(TEST)) else {
        return;
    };
    let db = TestDb::create(&cluster, "discord_kill");
    db.ingest_login(LOGIN);
    let dir = scratch_dir("kill");
    let (first_scenario, all_messages, all_channels) = long_scenario(150);
    let spool = dir.join("spool.jsonl");
    let dsn = cluster.dsn(&db.name, LOGIN);
    // Rows wait up to 5 s for their batch: killed 1.5 s after a batch landed, the ingester dies
    // with rows that are in the spool only.
    let slow_batches = ["--batch-size", "1000", "--batch-ms", "5000"].map(String::from);

    let first_mock = MockDiscord::start(&tool, &dir, "mock-first", &first_scenario);
    let mut args = ingester_args(&first_mock, &dsn, &spool);
    args.extend(slow_batches.clone());
    let mut ingester = Ingester::start_bot(&bin, &args, &dir.join("first.log"));
    wait_for("the first batch", Duration::from_secs(60), || {
        ingester.assert_running();
        count(&db, "SELECT count(*) FROM guildstats.raw_messages") > 0
    });
    std::thread::sleep(Duration::from_millis(1500));
    let log = ingester.log_text();
    ingester.kill9();
    let killed_at: String = db
        .connect()
        .query_one("SELECT now()::text", &[])
        .expect("now")
        .get(0);
    let committed_at_kill = count(&db, "SELECT count(*) FROM guildstats.raw_messages");
    drop(first_mock);

    let spooled = spooled_rows(&log);
    let spooled_messages: BTreeSet<i64> = spooled
        .iter()
        .filter(|k| k.starts_with("raw_messages "))
        .filter_map(|k| key_field(k, "message_id"))
        .collect();
    let spooled_channels: BTreeSet<i64> = spooled
        .iter()
        .filter(|k| k.starts_with("raw_voice_events "))
        .filter_map(|k| key_field(k, "channel_id"))
        .collect();
    assert!(
        (spooled_messages.len() as i64) > committed_at_kill,
        "the kill must leave spooled rows unwritten ({} spooled, {committed_at_kill} committed)",
        spooled_messages.len()
    );
    assert!(
        !spooled_messages.contains(all_messages.last().expect("messages")),
        "the kill must come mid-stream"
    );

    // Discord after the crash: a fresh session whose GUILD_CREATE says nobody is in voice now.
    let after = scenario(
        guild(vec![], vec![], vec![member("42", false)], vec![]),
        vec![],
    );
    let second_mock = MockDiscord::start(&tool, &dir, "mock-second", &after);
    let mut args = ingester_args(&second_mock, &dsn, &spool);
    args.extend(slow_batches);
    let mut ingester = Ingester::start_bot(&bin, &args, &dir.join("second.log"));
    let have_all = |db: &TestDb| {
        let stored: BTreeSet<i64> = db
            .connect()
            .query("SELECT message_id FROM guildstats.raw_messages", &[])
            .expect("messages")
            .iter()
            .map(|r| r.get(0))
            .collect();
        spooled_messages.is_subset(&stored)
    };
    wait_for("the spool's replay", Duration::from_secs(60), || {
        ingester.assert_running();
        have_all(&db) && count(&db, "SELECT count(*) FROM guildstats.raw_voice_snapshots") == 2
    });
    let status = ingester.terminate();
    assert!(status.success(), "exit status {status}");

    let mut client = db.connect();
    let stored: Vec<i64> = client
        .query(
            "SELECT message_id FROM guildstats.raw_messages ORDER BY message_id",
            &[],
        )
        .expect("messages")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        stored.iter().all(|id| all_messages.contains(id)),
        "{stored:?}"
    );
    let replayed: i64 = client
        .query_one(
            "SELECT count(*) FROM guildstats.raw_messages WHERE received_at > $1::text::timestamptz",
            &[&killed_at],
        )
        .expect("replayed")
        .get(0);
    assert!(
        replayed > 0,
        "rows spooled before the kill arrive after the restart"
    );

    let channels: Vec<Option<i64>> = client
        .query(
            "SELECT channel_id FROM guildstats.raw_voice_events WHERE user_id = 42 ORDER BY event_ts",
            &[],
        )
        .expect("voice")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let distinct: BTreeSet<i64> = channels.iter().flatten().copied().collect();
    assert_eq!(
        distinct.len(),
        channels.len(),
        "a voice change stored twice: {channels:?}"
    );
    assert!(spooled_channels.is_subset(&distinct));
    assert!(distinct.iter().all(|c| all_channels.contains(c)));

    // The reconnect snapshot (nobody in voice) closes the last session.
    client
        .batch_execute("SELECT * FROM guildstats.build_voice_sessions()")
        .expect("build_voice_sessions");
    let sessions: Vec<(i64, Option<String>)> = client
        .query(
            "SELECT channel_id, end_reason FROM guildstats.voice_sessions WHERE user_id = 42 ORDER BY started_at",
            &[],
        )
        .expect("sessions")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(sessions.len(), channels.len() + 1, "{sessions:?}");
    assert_eq!(sessions[0].0, 10_000);
    assert_eq!(
        sessions.last().expect("sessions").1.as_deref(),
        Some("snapshot")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn discord_check_reports_what_works_and_never_the_token() {
    const TEST: &str = "discord_check_reports_what_works_and_never_the_token";
    let Some(cluster) = Cluster::from_env(TEST) else {
        return;
    };
    let (Some(tool), Some(bin)) = (mock_tool(TEST), ingester_binary(TEST)) else {
        return;
    };
    let db = TestDb::create(&cluster, "discord_check");
    db.ingest_login(LOGIN);
    let dir = scratch_dir("check");
    let empty = scenario(guild(vec![], vec![], vec![], vec![]), vec![]);
    let mock = MockDiscord::start(&tool, &dir, "mock", &empty);
    let token = "check.token.must-not-leak";
    let check = |dsn: &str| {
        let mut args = ingester_args(&mock, dsn, &dir.join("spool.jsonl"));
        args.extend(["--check", "--opt-out", "46,47"].map(String::from));
        let output = std::process::Command::new(&bin)
            .args(&args)
            .env("GUILDSTATS_DISCORD_TOKEN", token)
            .bounded_output()
            .expect("run --check");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !stdout.contains(token) && !stderr.contains(token),
            "{stdout}{stderr}"
        );
        (output.status.success(), stdout)
    };
    // The bot reads the database's opt-out list (one list for the bot and the database).
    db.connect()
        .batch_execute(
            "INSERT INTO guildstats.opt_out (guild_id, user_id) VALUES (900, 48), (901, 49)",
        )
        .expect("opt-outs in the database");
    let (ok, report) = check(&cluster.dsn(&db.name, LOGIN));
    assert!(ok, "{report}");
    for line in [
        "database: ok (connected as e2e_discord_ingester",
        "discord: ok (token accepted; gateway ws://127.0.0.1:",
        "opt-out: 2 users never recorded",
        "opt-out table: ok (2 members from guildstats.opt_out",
        "GUILD_VOICE_STATES",
        "raw_scheduled_event_users",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }
    assert!(!report.contains("MESSAGE_CONTENT"), "{report}");
    assert!(
        !mock.log_text().contains("IDENTIFY"),
        "--check must not connect to the gateway"
    );

    let (ok, report) = check(&cluster.dsn("no_such_database", LOGIN));
    assert!(!ok, "{report}");
    assert!(report.contains("database: FAILED"), "{report}");
    assert!(report.contains("opt-out table: FAILED"), "{report}");
    assert!(report.contains("no_such_database"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
