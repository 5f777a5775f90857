//! SIGTERM during a busy poll cycle. The poller's loop used to make a new signal listener on each
//! turn; a TERM that arrived while a cycle ran (no listener) was swallowed, and the poller went on
//! forever. Here one server answers and one never does, so most of each cycle is spent waiting
//! for the silent one, and the TERM lands at a different point each time. Every TERM must end the
//! process (a hang fails after a generous bound) with the spool flushed: every poll it
//! acknowledged is in the database exactly once, and the spool holds nothing.

use guildstats_e2e::ingest::{ingester_binary, logged_values, udp_peer, Ingester};
use guildstats_e2e::{Cluster, TestDb};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ROUNDS: u64 = 12;

/// Milliseconds in [0, 2000): a small xorshift, seeded from the clock and printed, so that a
/// failing order can be replayed with GUILDSTATS_SIGTERM_SEED.
fn delays() -> (u64, Vec<u64>) {
    let seed = std::env::var("GUILDSTATS_SIGTERM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let mut x = seed;
    let delays = (0..ROUNDS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 2000
        })
        .collect();
    (seed, delays)
}

#[test]
fn every_sigterm_during_a_busy_cycle_stops_the_poller_with_the_spool_flushed() {
    let test = "every_sigterm_during_a_busy_cycle_stops_the_poller_with_the_spool_flushed";
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let Some((_srcds, port)) = udp_peer(test, "fake_srcds.py", &["--players", "5"]) else {
        return;
    };
    // Bound and never read: every query to it waits for the whole timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("silent peer");
    let silent_port = silent.local_addr().expect("address").port();
    let db = TestDb::create(&cluster, "sigterm");
    let dsn = db.ingest_login("e2e_poller");
    let binary = ingester_binary("guildstats-gameserver");
    let dir = std::env::temp_dir().join(format!("gs-e2e-sigterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (seed, delays) = delays();
    eprintln!("GUILDSTATS_SIGTERM_SEED={seed}");

    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for (round, delay) in delays.into_iter().enumerate() {
        let spool = dir.join(format!("spool-{round}"));
        let args: Vec<String> = [
            "--server",
            &format!("a2s 127.0.0.1:{port}"),
            "--server",
            &format!("a2s 127.0.0.1:{silent_port}"),
            "--interval-secs",
            "1",
            "--timeout-ms",
            "900",
            "--heartbeat-secs",
            "3600",
            "--batch-ms",
            "5000",
            "--dsn",
            &dsn,
            "--spool",
            &spool.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = dir.join(format!("log-{round}"));
        let mut poller = Ingester::start(&binary, &args, &log, &[]);
        // In the loop, then somewhere in a cycle.
        poller.wait_for_lines("polling", 1, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(delay));
        let status = poller.terminate();
        let text = poller.log_text();
        assert!(
            status.success(),
            "round {round} (TERM after {delay} ms): {status}\n{text}"
        );
        assert_eq!(
            guildstats_ingest::spool::pending_rows(&spool).expect("spool"),
            0,
            "round {round}: the spool was not flushed\n{text}"
        );
        for line in text.lines().filter(|l| l.contains("poll stored")) {
            // `server=a2s 127.0.0.1:PORT`: the address is the second word.
            let address = line
                .split("server=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().nth(1))
                .unwrap_or_default();
            let at = logged_values(line, "poll stored", "polled_at");
            acknowledged.push((address.to_string(), at.concat()));
        }
    }

    let servers: Vec<String> = acknowledged.iter().map(|(s, _)| s.clone()).collect();
    let times: Vec<String> = acknowledged.iter().map(|(_, t)| t.clone()).collect();
    let row = db
        .connect()
        .query_one(
            "SELECT (SELECT count(*) FROM guildstats.raw_server_polls),
                    (SELECT count(*) FROM guildstats.raw_server_polls p
                       JOIN unnest($1::text[], $2::text[]) AS a(server, at)
                         ON p.server = a.server AND p.polled_at = a.at::timestamptz)",
            &[&servers, &times],
        )
        .expect("counts");
    let (stored, matched): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(
        matched,
        acknowledged.len() as i64,
        "every acknowledged poll is stored"
    );
    assert_eq!(stored, matched, "and nothing else, nothing twice");
    let _ = std::fs::remove_dir_all(&dir);
}
