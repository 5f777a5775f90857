//! guildstats-sftp through a 30-second database outage: the test cluster is stopped while
//! files keep landing on the SFTP server and the puller keeps fetching them into its spool;
//! after the cluster is back, every file is stored exactly once and imports as a direct
//! insert would. Alone in its file because stopping the cluster would break any test running
//! beside it.

use guildstats_e2e::et::fixture_names;
use guildstats_e2e::sftp::{count_each, fetched, setup, wait_until, PATIENCE};
use std::time::Duration;

#[test]
fn files_survive_a_database_outage_exactly_once() {
    let test = "sftp_pg_outage";
    let Some(s) = setup(test) else {
        return;
    };
    let Some(data) = s.cluster.stoppable_data_dir(test) else {
        return;
    };
    let names: Vec<String> = fixture_names(&s.fixtures).into_iter().take(80).collect();
    let mut puller = s.spawn("pull.log", &["--batch-size", "10"]);
    wait_until(
        "the puller to start polling",
        PATIENCE,
        || puller.log_text().contains("connected host_key"),
        || puller.log_text(),
    );

    // Files land one by one for about 40 s; the database is away for 30 s of it.
    let outage = {
        let (cluster, data) = (s.cluster.clone(), data.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(4));
            cluster.pg_ctl(&data, "stop");
            std::thread::sleep(Duration::from_secs(30));
            cluster.pg_ctl(&data, "start");
        })
    };
    for name in &names {
        s.drop_fixtures(std::slice::from_ref(name));
        std::thread::sleep(Duration::from_millis(500));
    }
    outage.join().expect("outage thread");
    // The sink's backoff grows to 30 s while the database is away.
    wait_until(
        "every file in raw_et_stats_files",
        PATIENCE,
        || s.stored().len() >= names.len(),
        || puller.log_text(),
    );
    assert!(puller.terminate().success(), "{}", puller.log_text());
    let log = puller.log_text();
    assert!(
        log.contains("cannot connect to the database") || log.contains("database write failed"),
        "the outage was noticed\n{log}"
    );
    assert_eq!(count_each(&fetched(&log)), count_each(&names), "{log}");
    s.assert_each_stored_once(&names);
    s.assert_like_a_direct_import(&s.fixtures, &names);
    assert_eq!(
        guildstats_ingest::spool::pending_rows(&s.work.join("spool")).expect("spool"),
        0,
        "the spool is empty once everything is committed"
    );
}
