//! The one synthetic-data generator loads into the real schema: every raw table gets rows, a
//! second load of the same seed adds nothing (every raw insert is idempotent), and the ET
//! loader stores each real file once.

use guildstats_e2e::{skip_or_fail, Cluster, TestDb};
use guildstats_synth::{pg, Community, CommunityConfig, Table};

#[test]
fn tiny_community_loads_once_and_replays_add_nothing() {
    let Some(cluster) = Cluster::from_env("synthetic_load") else {
        return;
    };
    let db = TestDb::create(&cluster, "synth");
    let mut client = db.connect();
    let community = Community::new(CommunityConfig::tiny().with_seed(7)).expect("valid config");

    let first = pg::load(&mut client, &community, &Table::ALL).expect("first load");
    for load in &first {
        assert!(load.generated > 0, "{:?}: nothing generated", load.table);
        assert!(load.inserted > 0, "{:?}: nothing inserted", load.table);
        assert!(load.inserted <= load.generated, "{load:?}");
    }
    let second = pg::load(&mut client, &community, &Table::ALL).expect("second load");
    for load in &second {
        assert_eq!(load.inserted, 0, "{:?}: a replay inserted rows", load.table);
    }
    for load in &first {
        let rows: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM guildstats.{}", load.table.name()),
                &[],
            )
            .expect("count")
            .get(0);
        assert_eq!(rows as u64, load.inserted, "{:?}", load.table);
    }
    // Voice events of one user never share a timestamp, and every duplicate collapsed.
    let clashes: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM guildstats.raw_voice_events
                                   GROUP BY guild_id, user_id, event_ts HAVING count(*) > 1) d",
            &[],
        )
        .expect("clashes")
        .get(0);
    assert_eq!(clashes, 0);
}

#[test]
fn real_et_files_load_once() {
    let Some(cluster) = Cluster::from_env("et_files_load") else {
        return;
    };
    let fixtures = std::env::var("GUILDSTATS_FIXTURES_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| guildstats_e2e::repo_root().join("../shared/fixtures"));
    let dir = fixtures.join("et/real");
    if !dir.is_dir() {
        skip_or_fail(
            "et_files_load",
            &format!("no ET fixtures at {}", dir.display()),
        );
        return;
    }
    let files = std::fs::read_dir(&dir)
        .expect("read fixtures")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "txt"))
        .count() as i64;
    let db = TestDb::create(&cluster, "etload");
    let mut client = db.connect();
    pg::load_et_files(&mut client, &dir, "fixtures").expect("first load");
    pg::load_et_files(&mut client, &dir, "fixtures-again").expect("second load");
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT sha256), bool_and(sha256 = sha256(content)),
                    count(*) FILTER (WHERE source <> 'fixtures')
             FROM guildstats.raw_et_stats_files",
            &[],
        )
        .expect("count");
    let (rows, distinct, hashes_ok, from_second): (i64, i64, bool, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        (rows, distinct, hashes_ok, from_second),
        (files, files, true, 0)
    );
}
