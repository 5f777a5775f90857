//! The Discord bot through a 30-second database outage: the test cluster is stopped while the
//! real binary is receiving gateway events from mock_discord.py, then started again; every row
//! must arrive exactly once, and the heartbeats spooled meanwhile must keep the voice sessions
//! whole. Alone in its file because stopping the cluster would break any test running beside it.

use guildstats_e2e::discord::{
    guild, ingester_args, ingester_binary, member, message, mock_tool, scenario, scratch_dir, user,
    voice, wait_for, Ingester, MockDiscord,
};
use guildstats_e2e::{Cluster, TestDb};
use std::time::Duration;

const OUTAGE: Duration = Duration::from_secs(30);
const MOVES: i64 = 100;
const MESSAGES_PER_MOVE: i64 = 5;

#[test]
fn discord_rows_survive_a_database_outage_exactly_once() {
    const TEST: &str = "discord_rows_survive_a_database_outage_exactly_once";
    let Some(cluster) = Cluster::from_env(TEST) else {
        return;
    };
    let Some(data) = cluster.stoppable_data_dir(TEST) else {
        return;
    };
    let (Some(tool), Some(bin)) = (mock_tool(TEST), ingester_binary(TEST)) else {
        return;
    };
    let db = TestDb::create(&cluster, "discord_outage");
    db.ingest_login("e2e_discord_ingester");
    // A silence of 5 s in the heartbeats would count as a bot outage and cut the sessions: the
    // beats taken while the database was away must arrive too.
    db.connect()
        .batch_execute(
            "INSERT INTO guildstats.settings (guild_id, outage_after) VALUES (100, '5 seconds')",
        )
        .expect("settings");

    // User 42 moves through channels 10001..10100 and leaves; user 43 writes five messages
    // between moves: about 35 s of gateway traffic.
    let mut script = Vec::new();
    let mut message_id = 3_000;
    for step in 1..=MOVES {
        for _ in 0..MESSAGES_PER_MOVE {
            message_id += 1;
            script.push((
                "MESSAGE_CREATE",
                message(&message_id.to_string(), "510", user("43", false), "gg"),
            ));
        }
        let channel = (10_000 + step).to_string();
        script.push((
            "VOICE_STATE_UPDATE",
            voice("42", Some(&channel), false, true),
        ));
    }
    script.push(("VOICE_STATE_UPDATE", voice("42", None, false, true)));
    let start = guild(
        vec![],
        vec![],
        vec![member("42", false), member("43", false)],
        vec![voice("42", Some("10000"), false, false)],
    );
    let dir = scratch_dir("outage");
    let mock = MockDiscord::start(&tool, &dir, "mock", &scenario(start, script));
    let mut args = ingester_args(
        &mock,
        &cluster.dsn(&db.name, "e2e_discord_ingester"),
        &dir.join("spool.jsonl"),
    );
    args.extend(["--batch-ms", "200", "--heartbeat-secs", "1"].map(String::from));
    let mut ingester = Ingester::start_bot(&bin, &args, &dir.join("ingester.log"));

    let count = |sql: &str| -> i64 {
        db.connect()
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    };
    wait_for("the first rows", Duration::from_secs(60), || {
        ingester.assert_running();
        count("SELECT count(*) FROM guildstats.raw_messages") > 0
    });
    let before = count("SELECT count(*) FROM guildstats.raw_messages");
    cluster.pg_ctl(&data, "stop");
    std::thread::sleep(OUTAGE);
    ingester.assert_running();
    cluster.pg_ctl(&data, "start");
    assert!(
        before < MOVES * MESSAGES_PER_MOVE,
        "the outage must come while rows are still arriving ({before})"
    );

    let total_messages = MOVES * MESSAGES_PER_MOVE;
    wait_for(
        "every row after the outage",
        Duration::from_secs(180),
        || {
            ingester.assert_running();
            count("SELECT count(*) FROM guildstats.raw_messages") == total_messages
                && count("SELECT count(*) FROM guildstats.raw_voice_events") == MOVES + 1
        },
    );
    let status = ingester.terminate();
    assert!(status.success(), "exit status {status}");

    assert_eq!(
        count("SELECT count(DISTINCT message_id) FROM guildstats.raw_messages WHERE message_id BETWEEN 3001 AND 3500"),
        total_messages
    );
    assert_eq!(
        count("SELECT count(*) FROM guildstats.raw_messages"),
        total_messages
    );
    assert_eq!(
        count("SELECT count(DISTINCT channel_id) FROM guildstats.raw_voice_events WHERE channel_id BETWEEN 10001 AND 10100"),
        MOVES
    );
    assert_eq!(
        count("SELECT count(*) FROM guildstats.raw_voice_events"),
        MOVES + 1
    );
    assert_eq!(
        count("SELECT count(*) FROM guildstats.raw_voice_snapshots"),
        1
    );

    let mut client = db.connect();
    client
        .batch_execute("SELECT * FROM guildstats.build_voice_sessions()")
        .expect("build_voice_sessions");
    let sessions: Vec<(i64, String, Option<String>)> = client
        .query(
            "SELECT channel_id, start_reason, end_reason FROM guildstats.voice_sessions
             WHERE user_id = 42 ORDER BY started_at",
            &[],
        )
        .expect("sessions")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(sessions.len() as i64, MOVES + 1, "{sessions:?}");
    for (i, (channel, start, end)) in sessions.iter().enumerate() {
        let i = i as i64;
        assert_eq!(*channel, 10_000 + i);
        assert_eq!(start, if i == 0 { "snapshot" } else { "move" });
        let expected_end = if i == MOVES { "leave" } else { "move" };
        assert_eq!(
            end.as_deref(),
            Some(expected_end),
            "session {i}: {sessions:?}"
        );
    }
    assert_eq!(
        count(
            "SELECT count(*) FROM guildstats.voice_sessions a JOIN guildstats.voice_sessions b
               ON b.user_id = a.user_id AND b.started_at = a.ended_at
             WHERE a.user_id = 42"
        ),
        MOVES,
        "each move ends one session where the next starts"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
