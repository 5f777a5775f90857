//! The sink through a database outage: the test cluster is stopped for a few seconds while rows
//! are being sent; every row must arrive exactly once after it comes back. Alone in its file
//! because stopping the cluster would break any test running beside it.

use guildstats_e2e::{ingester_login, Cluster, TestDb};
use guildstats_ingest::raw_tables::RAW_HEARTBEATS;
use guildstats_ingest::{Row, Sink, SinkOptions};
use std::time::Duration;

#[test]
fn rows_survive_a_database_outage_exactly_once() {
    let Some(cluster) = Cluster::from_env("rows_survive_a_database_outage_exactly_once") else {
        return;
    };
    let Some(data) = cluster.stoppable_data_dir() else {
        // Not a peer that is missing: this cluster is simply not ours to stop.
        eprintln!("SKIP rows_survive_a_database_outage_exactly_once: needs root and the cluster's data dir");
        return;
    };
    let db = TestDb::create(&cluster, "sink_outage");
    ingester_login(&cluster, &db, "e2e_outage_ingester");
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
            c.pg_ctl(&d, "stop");
            std::thread::sleep(Duration::from_secs(3));
            c.pg_ctl(&d, "start");
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
