//! The ingest sink against the real cluster: rows arrive exactly once across a crash (sink
//! dropped without flushing, spool replayed on the next start), and game-server polls land once.

use guildstats_e2e::ingest::udp_peer;
use guildstats_e2e::{apply_roles_script, login_role, Cluster, TestDb};
use guildstats_gameserver::poll::poll_rows;
use guildstats_gameserver::servers::{Protocol, Server};
use guildstats_ingest::raw_tables::{RAW_HEARTBEATS, RAW_SERVER_PLAYERS};
use guildstats_ingest::{Row, Sink, SinkOptions};
use std::path::PathBuf;
use std::time::Duration;

fn spool_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gs-e2e-spool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn pending(spool: &std::path::Path) -> u64 {
    guildstats_ingest::spool::pending_rows(spool).expect("spool")
}

/// The lines of the spool's rejected.jsonl.
fn set_aside(spool: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(spool.join("rejected.jsonl"))
        .expect("rejected.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn beat(i: i64) -> Row {
    Row::new(&RAW_HEARTBEATS)
        .set("source", "e2e")
        .set("guild_id", i)
        .set("beat_at", "2026-01-01T00:00:00Z")
}

#[test]
fn sink_rows_arrive_exactly_once_across_a_crash() {
    let Some(cluster) = Cluster::from_env("sink_rows_arrive_exactly_once_across_a_crash") else {
        return;
    };
    let db = TestDb::create(&cluster, "sink_crash");
    db.ingest_login("e2e_sink_ingester");
    let spool = spool_path("crash");
    let mut options = SinkOptions::new(db.cluster.dsn(&db.name, "e2e_sink_ingester"), &spool);
    options.max_batch = 50;
    // No time-based flush: only full batches are written before the "crash".
    options.max_delay = Duration::from_secs(600);
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    rt.block_on(async {
        let sink = Sink::start(options.clone()).expect("sink");
        for i in 0..120 {
            sink.handle().send(beat(i)).await.expect("send");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        sink.abort().await;
    });
    let count = |db: &TestDb| -> i64 {
        db.connect()
            .query_one(
                "SELECT count(*) FROM guildstats.raw_heartbeats WHERE source = 'e2e'",
                &[],
            )
            .expect("count")
            .get(0)
    };
    let before = count(&db);
    assert!(
        before < 120,
        "the crash must leave rows unwritten ({before})"
    );
    assert!(pending(&spool) > 0);

    rt.block_on(async {
        let sink = Sink::start(options.clone()).expect("sink restart");
        // New rows plus repeats of old ones: duplicates are harmless.
        for i in 110..150 {
            sink.handle().send(beat(i)).await.expect("send");
        }
        sink.shutdown().await;
    });
    assert_eq!(count(&db), 150);
    let distinct: i64 = db
        .connect()
        .query_one(
            "SELECT count(DISTINCT guild_id) FROM guildstats.raw_heartbeats WHERE source = 'e2e'",
            &[],
        )
        .expect("distinct")
        .get(0);
    assert_eq!(distinct, 150);
    assert_eq!(pending(&spool), 0);
}

#[test]
fn a_row_the_database_refuses_is_kept_beside_the_spool_and_the_batch_goes_on() {
    let test = "a_row_the_database_refuses_is_kept_beside_the_spool_and_the_batch_goes_on";
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let db = TestDb::create(&cluster, "sink_rejected");
    db.ingest_login("e2e_sink_ingester");
    let spool = spool_path("rejected");
    let mut options = SinkOptions::new(db.cluster.dsn(&db.name, "e2e_sink_ingester"), &spool);
    options.max_batch = 10;
    let bad = Row::new(&RAW_HEARTBEATS)
        .set("source", "e2e")
        .set("guild_id", "not-a-snowflake")
        .set("beat_at", "2026-01-01T00:00:00Z");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sink = Sink::start(options).expect("sink");
        let mut rows: Vec<Row> = (0..9).map(beat).collect();
        rows.insert(4, bad.clone());
        sink.handle().send_all(rows).await.expect("send");
        sink.shutdown().await;
    });
    let stored: i64 = db
        .connect()
        .query_one(
            "SELECT count(*) FROM guildstats.raw_heartbeats WHERE source = 'e2e'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(stored, 9, "the nine good rows of the refused batch arrive");
    let lines = set_aside(&spool);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["table"], "raw_heartbeats");
    assert_eq!(lines[0]["values"]["guild_id"], "not-a-snowflake");
    let reason = lines[0]["error"].as_str().expect("reason");
    assert!(
        reason.starts_with("22P02") && reason.contains("not-a-snowflake"),
        "the reason names the problem and the input: {reason}"
    );
    assert_eq!(pending(&spool), 0);
}

#[test]
fn rows_wait_in_the_spool_while_the_login_lacks_rights_and_arrive_once_granted() {
    let test = "rows_wait_in_the_spool_while_the_login_lacks_rights_and_arrive_once_granted";
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let db = TestDb::create(&cluster, "sink_no_grant");
    apply_roles_script(&cluster, &db);
    // A login that is not (yet) a member of guildstats_ingest: a setup mistake, not bad rows.
    login_role(&cluster, "e2e_sink_ungranted", "pg_read_all_stats");
    let spool = spool_path("ungranted");
    let mut options = SinkOptions::new(db.cluster.dsn(&db.name, "e2e_sink_ungranted"), &spool);
    options.max_delay = Duration::from_millis(50);
    options.backoff_initial = Duration::from_millis(100);
    options.backoff_max = Duration::from_millis(300);
    let count = || -> i64 {
        db.connect()
            .query_one(
                "SELECT count(*) FROM guildstats.raw_heartbeats WHERE source = 'e2e'",
                &[],
            )
            .expect("count")
            .get(0)
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The runtime's worker threads run the sink between the block_on calls.
    let sink = rt.block_on(async {
        let sink = Sink::start(options).expect("sink");
        sink.handle()
            .send_all((0..20).map(beat).collect())
            .await
            .expect("send");
        sink
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(), 0);
    assert!(
        !spool.join("rejected.jsonl").exists(),
        "a missing GRANT must not divert rows"
    );
    db.connect()
        .batch_execute("GRANT guildstats_ingest TO e2e_sink_ungranted")
        .expect("grant");
    let waited = std::time::Instant::now();
    while count() < 20 && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    rt.block_on(sink.shutdown());
    db.connect()
        .batch_execute("REVOKE guildstats_ingest FROM e2e_sink_ungranted")
        .expect("revoke");
    assert_eq!(count(), 20);
    assert_eq!(pending(&spool), 0);
}

#[test]
fn game_server_polls_land_once() {
    let test = "game_server_polls_land_once";
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let Some((_srcds, a2s_port)) = udp_peer(
        test,
        "fake_srcds.py",
        &["--players", "255", "--rules", "400"],
    ) else {
        return;
    };
    let Some((_q3, q3_port)) = udp_peer(test, "fake_q3.py", &["--big"]) else {
        return;
    };
    let db = TestDb::create(&cluster, "gameserver_polls");
    db.ingest_login("e2e_sink_ingester");
    let mut options = SinkOptions::new(
        db.cluster.dsn(&db.name, "e2e_sink_ingester"),
        spool_path("polls"),
    );
    options.max_delay = Duration::from_millis(50);
    let servers = [
        Server {
            protocol: Protocol::A2s,
            address: format!("127.0.0.1:{a2s_port}"),
        },
        Server {
            protocol: Protocol::Q3,
            address: format!("127.0.0.1:{q3_port}"),
        },
    ];
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sink = Sink::start(options).expect("sink");
        for server in &servers {
            let (rows, result) = poll_rows(server, Duration::from_secs(3)).await;
            result.expect("poll");
            // Sent twice, stored once.
            sink.handle().send_all(rows.clone()).await.expect("send");
            sink.handle().send_all(rows).await.expect("send again");
        }
        sink.shutdown().await;
    });
    let mut client = db.connect();
    let polls = client
        .query(
            "SELECT server, ok, protocol, server_name, map, player_count
               FROM guildstats.raw_server_polls ORDER BY protocol",
            &[],
        )
        .expect("polls");
    assert_eq!(polls.len(), 2);
    let (a2s, q3) = (&polls[0], &polls[1]);
    assert_eq!(a2s.get::<_, String>("protocol"), "a2s");
    assert!(a2s.get::<_, bool>("ok"));
    assert_eq!(a2s.get::<_, String>("server_name"), "Fixture CS2 #1");
    assert_eq!(a2s.get::<_, String>("map"), "de_dust2");
    assert_eq!(a2s.get::<_, i32>("player_count"), 255);
    assert_eq!(q3.get::<_, String>("server_name"), "^1Fixture ^7ET:Legacy");
    assert_eq!(q3.get::<_, String>("map"), "supply");
    let players: Vec<(String, i64)> = client
        .query(
            "SELECT protocol, (SELECT count(*) FROM guildstats.raw_server_players pl
                                WHERE pl.server = p.server AND pl.polled_at = p.polled_at)
               FROM guildstats.raw_server_polls p ORDER BY protocol",
            &[],
        )
        .expect("players")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(players, vec![("a2s".into(), 255), ("q3".into(), 3)]);
    let name: String = client
        .query_one(
            "SELECT name FROM guildstats.raw_server_players WHERE player_index = 2 AND ping_ms IS NOT NULL",
            &[],
        )
        .expect("q3 player")
        .get(0);
    assert_eq!(name, "Player 2 [clan]");
}

/// Changes the first occurrence of `from` in one of the spool's segments (same length).
fn damage_spool(spool: &std::path::Path, from: &str, to: &str) {
    for segment in guildstats_ingest::spool::segments(spool).expect("segments") {
        let path = spool.join(format!("{segment:020}.jsonl"));
        let mut bytes = std::fs::read(&path).expect("segment");
        if let Some(at) = bytes.windows(from.len()).position(|w| w == from.as_bytes()) {
            bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
            std::fs::write(&path, bytes).expect("segment");
            return;
        }
    }
    panic!("{from:?} is in no segment");
}

#[test]
fn damaged_spool_records_are_set_aside_and_the_others_arrive_once() {
    let test = "damaged_spool_records_are_set_aside_and_the_others_arrive_once";
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let db = TestDb::create(&cluster, "sink_damaged");
    db.ingest_login("e2e_sink_ingester");
    let spool = spool_path("damaged");
    std::fs::create_dir_all(&spool).expect("spool dir");
    // A segment as the sink wrote it before records had checksums: an upgrade must send it.
    let mut old = String::new();
    for i in 100..103 {
        old.push_str(&serde_json::to_string(&beat(i)).expect("json"));
        old.push('\n');
    }
    std::fs::write(spool.join(format!("{:020}.jsonl", 1)), old).expect("old segment");
    let mut options = SinkOptions::new(db.cluster.dsn(&db.name, "e2e_sink_ingester"), &spool);
    // Nothing is written before the stop: every row waits in the spool.
    options.max_batch = 1000;
    options.max_delay = Duration::from_secs(600);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sink = Sink::start(options.clone()).expect("sink");
        sink.handle()
            .send_all((0..30).map(beat).collect())
            .await
            .expect("send");
        sink.abort().await;
    });
    // Still a valid row, but another one: replaying it would store guild 9 twice, 7 never.
    damage_spool(&spool, "\"guild_id\":7,", "\"guild_id\":9,");
    damage_spool(&spool, "\"guild_id\":20,", "\"guild_id\":2\u{0},");

    rt.block_on(async {
        let sink = Sink::start(options.clone()).expect("sink restart");
        sink.shutdown().await;
    });
    let rows = db
        .connect()
        .query(
            "SELECT guild_id::bigint, count(*) FROM guildstats.raw_heartbeats
              WHERE source = 'e2e' GROUP BY 1 ORDER BY 1",
            &[],
        )
        .expect("rows");
    let stored: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(i64, i64)> = (0..30)
        .filter(|i| ![7, 20].contains(i))
        .chain(100..103)
        .map(|i| (i, 1))
        .collect();
    assert_eq!(
        stored, expected,
        "every good row once, the damaged ones not at all"
    );
    let lines = set_aside(&spool);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(
            line["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("checksum mismatch")),
            "{line}"
        );
        assert!(line["spool_segment"]
            .as_str()
            .is_some_and(|s| s.ends_with(".jsonl")));
    }
    assert!(lines[0]["line"]
        .as_str()
        .is_some_and(|l| l.contains("\"guild_id\":9,")));
    assert_eq!(pending(&spool), 0);
}

/// A row too wide for an index (a game server reporting a player name of 9 KB that does not
/// compress: PostgreSQL's 54000, program limit exceeded) is the row's own fault, like a check
/// violation. Before, the sink retried its whole batch forever: the ingester wrote nothing more.
#[test]
fn a_row_too_wide_for_an_index_is_set_aside_and_the_batch_goes_on() {
    let test = "a_row_too_wide_for_an_index_is_set_aside_and_the_batch_goes_on";
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let db = TestDb::create(&cluster, "sink_too_wide");
    db.ingest_login("e2e_sink_ingester");
    let spool = spool_path("too_wide");
    let mut options = SinkOptions::new(db.cluster.dsn(&db.name, "e2e_sink_ingester"), &spool);
    options.max_batch = 10;
    options.backoff_initial = Duration::from_millis(50);
    options.backoff_max = Duration::from_millis(200);
    // Hex of a simple generator's output: nothing for pglz to squeeze.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let wide: String = (0..600)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!("{state:016x}")
        })
        .collect();
    let player = |index: i64, name: &str| {
        Row::new(&RAW_SERVER_PLAYERS)
            .set("server", "e2e:27960")
            .set("polled_at", "2026-01-01T00:00:00Z")
            .set("player_index", index)
            .set("name", name)
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sink = Sink::start(options).expect("sink");
        let mut rows: Vec<Row> = (0..5).map(|i| player(i, &format!("p{i}"))).collect();
        rows.insert(2, player(9, &wide));
        sink.handle().send_all(rows).await.expect("send");
        sink.shutdown().await;
    });
    let stored: i64 = db
        .connect()
        .query_one(
            "SELECT count(*) FROM guildstats.raw_server_players WHERE server = 'e2e:27960'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(stored, 5, "the five good rows of the refused batch arrive");
    let lines = set_aside(&spool);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["table"], "raw_server_players");
    let reason = lines[0]["error"].as_str().expect("reason");
    assert!(reason.starts_with("54000"), "{reason}");
    assert_eq!(pending(&spool), 0);
}
