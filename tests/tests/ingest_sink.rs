//! The ingest sink against the real cluster: rows arrive exactly once across a crash (sink
//! dropped without flushing, spool replayed on the next start), and game-server polls land once.

use guildstats_e2e::{ingester_login, repo_root, skip_or_fail, Cluster, TestDb};
use guildstats_gameserver::poll::poll_rows;
use guildstats_gameserver::servers::{Protocol, Server};
use guildstats_ingest::raw_tables::RAW_HEARTBEATS;
use guildstats_ingest::{Row, Sink, SinkOptions};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn spool_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gs-e2e-spool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("spool.jsonl")
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
    ingester_login(&cluster, &db, "e2e_sink_ingester");
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
    assert!(std::fs::metadata(&spool).expect("spool").len() > 0);

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
    assert_eq!(std::fs::metadata(&spool).expect("spool").len(), 0);
}

struct Fixture(Child);

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fixture(test: &str, tool: &str, args: &[&str]) -> Option<(Fixture, u16)> {
    let path = std::env::var("GUILDSTATS_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("../shared"))
        .join("tools")
        .join(tool);
    if !path.exists() {
        skip_or_fail(test, &format!("{} is missing", path.display()));
        return None;
    }
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new("python3")
        .arg(&path)
        .args(["--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("fixture output");
    Some((Fixture(child), port))
}

#[test]
fn game_server_polls_land_once() {
    let test = "game_server_polls_land_once";
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let Some((_srcds, a2s_port)) = fixture(
        test,
        "fake_srcds.py",
        &["--players", "255", "--rules", "400"],
    ) else {
        return;
    };
    let Some((_q3, q3_port)) = fixture(test, "fake_q3.py", &["--big"]) else {
        return;
    };
    let db = TestDb::create(&cluster, "gameserver_polls");
    ingester_login(&cluster, &db, "e2e_sink_ingester");
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
