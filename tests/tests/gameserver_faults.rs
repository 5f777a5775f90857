//! The game-server poller binary through the faults an unattended ingester meets: the database
//! stopped for 30 seconds while it polls, and the process killed with SIGKILL in the middle of a
//! batch and started again. Every poll it acknowledged (logged as "poll stored" once durable in
//! its spool) must be in the database exactly once, with all its player rows. Alone in its file
//! because one test stops the cluster; the two take turns.

use guildstats_e2e::ingest::{ingester_binary, logged_values, udp_peer, Ingester};
use guildstats_e2e::{Cluster, TestDb};
use std::path::PathBuf;
use std::time::Duration;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const PLAYERS: i64 = 40;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gs-e2e-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn poller_args(
    db: &TestDb,
    login: &str,
    port: u16,
    spool: &std::path::Path,
    batch: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--server",
        &format!("a2s 127.0.0.1:{port}"),
        "--interval-secs",
        "1",
        "--timeout-ms",
        "800",
        "--heartbeat-secs",
        "1",
        "--dsn",
        &db.cluster.dsn(&db.name, login),
        "--spool",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(spool.display().to_string());
    args.extend(batch.iter().map(|s| s.to_string()));
    args
}

/// Every acknowledged poll is stored once, with its players, and nothing else is.
fn assert_exactly_once(db: &TestDb, port: u16, acknowledged: &[String]) {
    let server = format!("127.0.0.1:{port}");
    let mut client = db.connect();
    let row = client
        .query_one(
            "SELECT
               (SELECT count(*) FROM guildstats.raw_server_polls WHERE server = $1),
               (SELECT count(*) FROM guildstats.raw_server_polls p
                  JOIN unnest($2::text[]) AS a(at) ON p.polled_at = a.at::timestamptz
                 WHERE p.server = $1),
               (SELECT count(DISTINCT a.at) FROM unnest($2::text[]) AS a(at)),
               (SELECT count(*) FROM guildstats.raw_server_players WHERE server = $1)",
            &[&server, &acknowledged],
        )
        .expect("counts");
    let (stored, matched, distinct, players): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(distinct, acknowledged.len() as i64, "one log line per poll");
    assert_eq!(matched, distinct, "every acknowledged poll is stored");
    assert_eq!(
        stored, distinct,
        "nothing stored twice, nothing unacknowledged"
    );
    assert_eq!(
        players,
        stored * PLAYERS,
        "every poll has all its player rows"
    );
}

#[test]
fn poller_survives_a_30_second_database_outage() {
    let test = "poller_survives_a_30_second_database_outage";
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let Some(data) = cluster.stoppable_data_dir(test) else {
        return;
    };
    let Some((_srcds, port)) = udp_peer(test, "fake_srcds.py", &["--players", "40"]) else {
        return;
    };
    let db = TestDb::create(&cluster, "poller_outage");
    db.ingest_login("e2e_poller");
    let dir = scratch(test);
    let args = poller_args(
        &db,
        "e2e_poller",
        port,
        &dir.join("spool"),
        &["--batch-ms", "200"],
    );
    let mut poller = Ingester::start(
        &ingester_binary("guildstats-gameserver"),
        &args,
        &dir.join("log"),
        &[],
    );
    poller.wait_for_lines("poll stored", 3, Duration::from_secs(30));

    cluster.pg_ctl(&data, "stop");
    let before_outage = poller.log_text().matches("poll stored").count();
    std::thread::sleep(Duration::from_secs(30));
    let during_outage = poller.log_text().matches("poll stored").count() - before_outage;
    cluster.pg_ctl(&data, "start");
    // Polling went on while the database was away: the spool, not memory, holds the rows.
    assert!(
        during_outage >= 20,
        "only {during_outage} polls during the outage"
    );
    let settled = poller.log_text().matches("poll stored").count() + 3;
    poller.wait_for_lines("poll stored", settled, Duration::from_secs(60));
    assert!(poller.terminate().success(), "{}", poller.log_text());

    let acknowledged = logged_values(&poller.log_text(), "poll stored", "polled_at");
    assert_exactly_once(&db, port, &acknowledged);
    let spool_left = guildstats_ingest::spool::pending_rows(&dir.join("spool")).expect("spool");
    assert_eq!(spool_left, 0, "a graceful stop leaves nothing behind");
}

#[test]
fn poller_killed_mid_batch_loses_and_doubles_nothing() {
    let test = "poller_killed_mid_batch_loses_and_doubles_nothing";
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let Some((_srcds, port)) = udp_peer(test, "fake_srcds.py", &["--players", "40"]) else {
        return;
    };
    let db = TestDb::create(&cluster, "poller_kill9");
    db.ingest_login("e2e_poller");
    let dir = scratch(test);
    let binary = ingester_binary("guildstats-gameserver");
    // A batch waits up to 10 s to fill 1000 rows: the kill lands while the polls' rows are durable
    // in the spool (acknowledged) but their batch is not yet written.
    let args = poller_args(
        &db,
        "e2e_poller",
        port,
        &dir.join("spool"),
        &["--batch-size", "1000", "--batch-ms", "10000"],
    );
    let mut first = Ingester::start(&binary, &args, &dir.join("log"), &[]);
    first.wait_for_lines("poll stored", 4, Duration::from_secs(30));
    first.kill9();
    let acknowledged = logged_values(&first.log_text(), "poll stored", "polled_at");
    let written: i64 = db
        .connect()
        .query_one(
            "SELECT count(*) FROM guildstats.raw_server_players WHERE server = $1",
            &[&format!("127.0.0.1:{port}")],
        )
        .expect("count")
        .get(0);
    assert!(
        written < acknowledged.len() as i64 * PLAYERS,
        "the kill must leave acknowledged rows unwritten ({written} player rows written)"
    );

    let mut second = Ingester::start(&binary, &args, &dir.join("log"), &[]);
    let lines = second.log_text().matches("poll stored").count() + 3;
    second.wait_for_lines("poll stored", lines, Duration::from_secs(30));
    assert!(second.terminate().success(), "{}", second.log_text());
    let acknowledged = logged_values(&second.log_text(), "poll stored", "polled_at");
    assert_exactly_once(&db, port, &acknowledged);
}

#[test]
fn poller_follows_the_game_servers_table() {
    let test = "poller_follows_the_game_servers_table";
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let Some((_srcds, a2s_port)) = udp_peer(test, "fake_srcds.py", &[]) else {
        return;
    };
    let Some((_q3, q3_port)) = udp_peer(test, "fake_q3.py", &[]) else {
        return;
    };
    let db = TestDb::create(&cluster, "poller_table");
    let dsn = db.ingest_login("e2e_poller");
    let a2s = format!("127.0.0.1:{a2s_port}");
    let q3 = format!("127.0.0.1:{q3_port}");
    let mut admin = db.connect();
    admin
        .execute(
            "INSERT INTO guildstats.game_servers (address, protocol, label) VALUES ($1, 'a2s', 'fixture')",
            &[&a2s],
        )
        .expect("add a server");
    let dir = scratch(test);
    let args: Vec<String> = [
        "--servers-table",
        "--interval-secs",
        "1",
        "--timeout-ms",
        "800",
        "--batch-ms",
        "100",
        "--dsn",
        &dsn,
        "--spool",
        &dir.join("spool").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut poller = Ingester::start(
        &ingester_binary("guildstats-gameserver"),
        &args,
        &dir.join("log"),
        &[],
    );
    poller.wait_for_lines(&format!("server=a2s {a2s}"), 2, Duration::from_secs(30));
    // An admin pauses one server and adds another: the next cycles follow.
    admin
        .batch_execute(&format!(
            "UPDATE guildstats.game_servers SET enabled = false WHERE address = '{a2s}';
             INSERT INTO guildstats.game_servers (address, protocol) VALUES ('{q3}', 'q3');"
        ))
        .expect("change the list");
    poller.wait_for_lines(&format!("server=q3 {q3}"), 3, Duration::from_secs(30));
    assert!(poller.terminate().success(), "{}", poller.log_text());
    let log = poller.log_text();
    let a2s_polls = logged_values(&log, &format!("server=a2s {a2s}"), "polled_at");
    let a2s_stored: i64 = admin
        .query_one(
            "SELECT count(*) FROM guildstats.raw_server_polls WHERE server = $1",
            &[&a2s],
        )
        .expect("count")
        .get(0);
    assert_eq!(a2s_stored, a2s_polls.len() as i64);
    // Once q3 was being polled, the paused server was not polled again.
    let last_a2s: Option<String> = a2s_polls.last().cloned();
    let first_q3 = logged_values(&log, &format!("server=q3 {q3}"), "polled_at")
        .first()
        .cloned();
    assert!(last_a2s < first_q3, "{log}");
    let q3_ok: i64 = admin
        .query_one(
            "SELECT count(*) FROM guildstats.raw_server_polls WHERE server = $1 AND ok",
            &[&q3],
        )
        .expect("count")
        .get(0);
    assert!(q3_ok >= 3);
}
