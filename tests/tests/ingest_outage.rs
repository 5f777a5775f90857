//! The sink through a database outage: the test cluster is stopped for a few seconds while rows
//! are being sent; every row must arrive exactly once after it comes back. Alone in its file
//! because stopping the cluster would break any test running beside it.

use guildstats_e2e::{repo_root, run_ok, Cluster, TestDb};
use guildstats_ingest::raw_tables::RAW_HEARTBEATS;
use guildstats_ingest::{Row, Sink, SinkOptions};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn pg_ctl(cluster: &Cluster, data: &std::path::Path, action: &str) {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"])
        .arg(cluster.bin_dir.join("pg_ctl"))
        .arg("-D")
        .arg(data)
        .args(["-m", "fast", "-w", action]);
    if action == "start" {
        cmd.arg("-l").arg(data.join("../postgres.log"));
    }
    run_ok(&mut cmd);
}

#[test]
fn rows_survive_a_database_outage_exactly_once() {
    let Some(cluster) = Cluster::from_env("rows_survive_a_database_outage_exactly_once") else {
        return;
    };
    let data = PathBuf::from(&cluster.host).join("data");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n");
    if !data.join("postmaster.pid").exists() || !matches!(root, Ok(true)) {
        // Not a peer that is missing: this cluster is simply not ours to stop.
        eprintln!("SKIP rows_survive_a_database_outage_exactly_once: needs root and the cluster's data dir");
        return;
    }
    let db = TestDb::create(&cluster, "sink_outage");
    run_ok(
        cluster
            .command("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.name, "-f"])
            .arg(repo_root().join("sql/ops/roles.sql")),
    );
    db.connect()
        .batch_execute(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'e2e_outage_ingester') THEN
                 CREATE ROLE e2e_outage_ingester LOGIN;
               END IF;
             END $$;
             GRANT guildstats_ingest TO e2e_outage_ingester;",
        )
        .expect("login role");
    let spool = std::env::temp_dir()
        .join(format!("gs-e2e-outage-{}", std::process::id()))
        .join("spool.jsonl");
    let _ = std::fs::remove_file(&spool);
    let mut options = SinkOptions::new(db.cluster.dsn(&db.name, "e2e_outage_ingester"), &spool);
    options.max_batch = 5;
    options.max_delay = Duration::from_millis(50);
    options.backoff_initial = Duration::from_millis(100);
    options.backoff_max = Duration::from_millis(800);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sink = Sink::start(options).expect("sink");
        let handle = sink.handle();
        let sender = tokio::spawn(async move {
            for i in 0..60i64 {
                let row = Row::new(&RAW_HEARTBEATS)
                    .set("source", "outage")
                    .set("guild_id", i)
                    .set("beat_at", "2026-01-01T00:00:00Z");
                handle.send(row).await.expect("send");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let (c, d) = (cluster.clone(), data.clone());
        let outage = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(500));
            pg_ctl(&c, &d, "stop");
            std::thread::sleep(Duration::from_secs(3));
            pg_ctl(&c, &d, "start");
        });
        let (sent, restarted) = tokio::join!(sender, outage);
        sent.expect("sender");
        restarted.expect("restart");
        // Give the writer's backoff time to notice the database is back before shutting down.
        tokio::time::sleep(Duration::from_secs(2)).await;
        sink.shutdown().await;
    });
    let row = db
        .connect()
        .query_one(
            "SELECT count(*), count(DISTINCT guild_id) FROM guildstats.raw_heartbeats WHERE source = 'outage'",
            &[],
        )
        .expect("count");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (60, 60));
    assert_eq!(std::fs::metadata(&spool).expect("spool").len(), 0);
}
