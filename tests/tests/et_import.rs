//! import_et_rounds() on the real ET:Legacy files: every file imports, the measured facts of
//! the format hold, hand-worked values come out, arrival order does not matter, one file per
//! statement relinks only the session it joins, a late round 1 still pairs, a bad file keeps
//! its raw row with the reason, and nothing imports twice.
//!
//! The expected numbers below were worked out by hand from the files' player lines (weapon
//! sums and extended fields), independently of the parser.

use guildstats_e2e::et::{cluster_and_fixtures, fingerprint, fixture_names, insert_files};
use guildstats_e2e::{db_message, Cluster, TestDb};
use postgres::Client;

fn import(client: &mut Client) -> (i32, i32, i32, i32, i32, String) {
    let row = client
        .query_one(
            "SELECT files_read, rounds_imported, files_failed, orphan_round2, sessions, status
             FROM guildstats.import_et_rounds()",
            &[],
        )
        .unwrap_or_else(|e| panic!("import_et_rounds: {}", db_message(&e)));
    (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    )
}

fn player_values(
    client: &mut Client,
    file: &str,
    guid: &str,
) -> (String, i32, i32, Option<i32>, Option<i32>, Option<i32>) {
    let row = client
        .query_one(
            "SELECT p.values_basis, p.kills, p.deaths, p.damage_given, p.time_played_seconds, p.xp
             FROM guildstats.et_player_rounds p JOIN guildstats.et_rounds r USING (round_id)
             WHERE r.file_name = $1 AND p.guid = $2",
            &[&file, &guid],
        )
        .unwrap_or_else(|e| panic!("{file} {guid}: {}", db_message(&e)));
    (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    )
}

#[test]
fn all_real_files_import_with_hand_checked_values() {
    let Some((cluster, dir)) = cluster_and_fixtures("et_import_all") else {
        return;
    };
    let names = fixture_names(&dir);
    let db = TestDb::create(&cluster, "et_all");
    let mut client = db.connect();
    insert_files(&mut client, &dir, &names);
    // Inserting imported nothing; one call imports every file, and a second finds nothing new.
    let pending: i64 = client
        .query_one(
            "SELECT count(*) FROM guildstats.raw_et_stats_files WHERE imported_at IS NULL",
            &[],
        )
        .expect("pending")
        .get(0);
    assert_eq!(pending, names.len() as i64);
    let n = names.len() as i32;
    let (read, imported, failed, _, _, status) = import(&mut client);
    assert_eq!((read, imported, failed, status.as_str()), (n, n, 0, "ok"));
    let (read, imported, failed, orphans, sessions, status) = import(&mut client);
    assert_eq!((read, imported, failed, status.as_str()), (0, 0, 0, "ok"));
    assert_eq!(
        (orphans, sessions),
        (11, 40),
        "orphan round 2s and sessions per the format notes"
    );

    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE import_error IS NOT NULL),
                    count(*) FILTER (WHERE imported_at IS NULL)
             FROM guildstats.raw_et_stats_files",
            &[],
        )
        .expect("raw status");
    let (files, errors, pending): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((files, errors, pending), (names.len() as i64, 0, 0));

    // The header-only file imports as a round with no players (an orphan round 2).
    let row = client
        .query_one(
            "SELECT player_count, is_orphan, time_used_seconds FROM guildstats.et_rounds
             WHERE file_name = '2024-09-12-174949-supply-round-2.txt'",
            &[],
        )
        .expect("header-only");
    let (players, orphan, used): (i32, bool, Option<i32>) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((players, orphan, used), (0, true, Some(900)));

    // One file per Lua version, the file's own values (rounds 1, or an orphan round 2).
    let v33 = "2024-04-16-220731-te_escape2-round-1.txt";
    assert_eq!(
        player_values(&mut client, v33, "0A26D447"),
        ("raw".into(), 11, 12, Some(2214), Some(588), Some(95))
    );
    let v36_orphan = "2025-01-06-221847-supply-round-2.txt";
    assert_eq!(
        player_values(&mut client, v36_orphan, "1C747DF1"),
        ("raw".into(), 22, 30, Some(5010), Some(1134), Some(88))
    );
    let v37 = "2025-09-24-233255-te_escape2-round-1.txt";
    assert_eq!(
        player_values(&mut client, v37, "2B5938F5"),
        ("raw".into(), 8, 6, Some(1495), Some(234), Some(44))
    );
    let v38 = "2025-10-26-201727-etl_sp_delivery-round-1.txt";
    assert_eq!(
        player_values(&mut client, v38, "A76191C1"),
        ("raw".into(), 25, 11, Some(4368), Some(720), Some(231))
    );
    let row = client
        .query_one(
            "SELECT r.lua_fields, p.revives_given FROM guildstats.et_player_rounds p
             JOIN guildstats.et_rounds r USING (round_id)
             WHERE r.file_name = $1 AND p.guid = 'A76191C1'",
            &[&v38],
        )
        .expect("v38 revives");
    let (fields, revives): (Option<i16>, Option<i32>) = (row.get(0), row.get(1));
    assert_eq!((fields, revives), (Some(38), Some(9)));
    // 0:00 in a round 2 header is "unknown", never zero.
    let used: Option<i32> = client
        .query_one(
            "SELECT time_used_seconds FROM guildstats.et_rounds WHERE file_name = $1",
            &[&v36_orphan],
        )
        .expect("time used")
        .get(0);
    assert_eq!(used, None);

    // Round 2s: cumulative counters minus round 1, round-only items (XP) as they are.
    let r2 = "2025-09-24-233657-te_escape2-round-2.txt";
    assert_eq!(
        player_values(&mut client, r2, "0A26D447"),
        ("differenced".into(), 7, 4, Some(954), Some(204), Some(29))
    );
    let r2 = "2025-10-26-203013-etl_sp_delivery-round-2.txt";
    assert_eq!(
        player_values(&mut client, r2, "0A26D447"),
        (
            "differenced".into(),
            19,
            16,
            Some(3969),
            Some(666),
            Some(104)
        )
    );
    // Imb3cil reconnected: his counters dropped, so the round-2 file values stand.
    assert_eq!(
        player_values(&mut client, r2, "C74FB315"),
        ("reset".into(), 14, 9, Some(1449), Some(666), Some(136))
    );
    // Across midnight.
    let r2 = "2025-10-20-000043-etl_adlernest-round-2.txt";
    assert_eq!(
        player_values(&mut client, r2, "5D989160"),
        ("differenced".into(), 9, 14, Some(1751), Some(420), Some(58))
    );
    assert_eq!(
        player_values(&mut client, r2, "D8423F90"),
        ("differenced".into(), 13, 6, Some(2365), Some(414), Some(83))
    );
    // DPM comes from damage and time played: 954 * 60 / 204.
    let dpm: f64 = client
        .query_one(
            "SELECT p.dpm FROM guildstats.et_player_rounds p JOIN guildstats.et_rounds r USING (round_id)
             WHERE r.file_name = '2025-09-24-233657-te_escape2-round-2.txt' AND p.guid = '0A26D447'",
            &[],
        )
        .expect("dpm")
        .get(0);
    assert!((dpm - 954.0 * 60.0 / 204.0).abs() < 1e-9, "{dpm}");

    // Matches: the stopwatch results of the two pairs above.
    for (match_id, outcome, to_beat) in [
        ("2025-10-26-201727", "round2_attackers", 720),
        ("2025-10-19-235307", "round2_attackers", 420),
    ] {
        let row = client
            .query_one(
                "SELECT outcome, time_to_beat_seconds FROM guildstats.et_matches WHERE match_id = $1",
                &[&match_id],
            )
            .expect("match");
        let (got_outcome, got_to_beat): (Option<String>, Option<i32>) = (row.get(0), row.get(1));
        assert_eq!(
            (got_outcome.as_deref(), got_to_beat),
            (Some(outcome), Some(to_beat)),
            "{match_id}"
        );
    }
    // The midnight pair is one session with the rounds before it.
    let same_session: bool = client
        .query_one(
            "SELECT a.et_session_id = b.et_session_id FROM guildstats.et_rounds a, guildstats.et_rounds b
             WHERE a.file_name = '2025-10-19-235307-etl_adlernest-round-1.txt'
               AND b.file_name = '2025-10-20-000043-etl_adlernest-round-2.txt'",
            &[],
        )
        .expect("session")
        .get(0);
    assert!(same_session);
}

#[test]
fn arrival_order_and_batches_do_not_change_the_result() {
    let Some((cluster, dir)) = cluster_and_fixtures("et_import_order") else {
        return;
    };
    let names = fixture_names(&dir);

    let sorted_db = TestDb::create(&cluster, "et_sorted");
    let mut sorted = sorted_db.connect();
    insert_files(&mut sorted, &dir, &names);
    import(&mut sorted);

    // A deterministic shuffle (reversed, then interleaved), inserted in small batches each
    // followed by an import, then everything inserted again (replays).
    let mut shuffled: Vec<String> = names.iter().rev().cloned().collect();
    let half = shuffled.split_off(shuffled.len() / 2);
    let interleaved: Vec<String> = half
        .into_iter()
        .zip(
            shuffled
                .iter()
                .cloned()
                .chain(std::iter::repeat(String::new())),
        )
        .flat_map(|(a, b)| [a, b])
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(interleaved.len(), names.len());
    let shuffled_db = TestDb::create(&cluster, "et_shuffled");
    let mut other = shuffled_db.connect();
    for batch in interleaved.chunks(37) {
        insert_files(&mut other, &dir, batch);
        import(&mut other);
    }
    insert_files(&mut other, &dir, &names);
    let (read, imported, failed, ..) = import(&mut other);
    assert_eq!(
        (read, imported, failed),
        (0, 0, 0),
        "a replay imports nothing"
    );

    assert_eq!(fingerprint(&mut sorted), fingerprint(&mut other));
}

#[test]
fn one_file_per_statement_relinks_only_the_session_it_joins() {
    let Some((cluster, dir)) = cluster_and_fixtures("et_one_by_one") else {
        return;
    };
    let mut names = fixture_names(&dir);
    // Held back for the session-gap change at the end.
    let last = names.pop().expect("fixtures");

    let batch_db = TestDb::create(&cluster, "et_one_batch");
    let mut batch = batch_db.connect();
    insert_files(&mut batch, &dir, &names);
    import(&mut batch);

    // What the SFTP puller does: one file per statement, each imported on its own, in an
    // order unrelated to time (a stride through the sorted names).
    let one_db = TestDb::create(&cluster, "et_one_by_one");
    let mut one = one_db.connect();
    let stride = 97;
    assert_eq!(gcd(stride, names.len()), 1, "the stride visits every file");
    let mut largest = 0;
    for k in 0..names.len() {
        let name = &names[k * stride % names.len()];
        insert_files(&mut one, &dir, std::slice::from_ref(name));
        let row = one
            .query_one(
                "SELECT rounds_imported, rounds_linked FROM guildstats.import_et_rounds()",
                &[],
            )
            .unwrap_or_else(|e| panic!("import {name}: {}", db_message(&e)));
        let (imported, linked): (i32, i32) = (row.get(0), row.get(1));
        // The default gap (60 minutes) is also the linking reach, so the rounds an import can
        // affect are exactly the session the new round belongs to now.
        let session: i32 = one
            .query_one(
                "SELECT coalesce(max(s.rounds), 0) FROM guildstats.et_rounds r
                 JOIN guildstats.et_sessions s ON s.et_session_id = r.et_session_id
                 WHERE r.file_name = $1",
                &[name],
            )
            .expect("session size")
            .get(0);
        let expected = if imported == 0 { 0 } else { session };
        assert_eq!(linked, expected, "rounds linked when importing {name}");
        largest = largest.max(linked);
    }
    assert!(
        largest < names.len() as i32 / 4,
        "no import relinked the history ({largest} rounds at most)"
    );
    assert_eq!(fingerprint(&mut batch), fingerprint(&mut one));

    // A new session gap regroups every session at the next import that brings a round.
    one.batch_execute(
        "INSERT INTO guildstats.settings (guild_id, et_session_gap) VALUES (NULL, '3 hours')",
    )
    .expect("setting");
    insert_files(&mut one, &dir, std::slice::from_ref(&last));
    let linked: i32 = one
        .query_one(
            "SELECT rounds_linked FROM guildstats.import_et_rounds()",
            &[],
        )
        .expect("import")
        .get(0);
    let row = one
        .query_one(
            "SELECT (SELECT count(*)::integer FROM guildstats.et_rounds),
                    (SELECT count(*)::integer FROM guildstats.et_sessions),
                    (SELECT count(*)::integer FROM (
                         SELECT saved_at - lag(saved_at) OVER (ORDER BY saved_at) AS gap
                         FROM guildstats.et_rounds) g
                     WHERE gap IS NULL OR gap > interval '3 hours')",
            &[],
        )
        .expect("sessions");
    let (rounds, sessions, gaps): (i32, i32, i32) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(linked, rounds, "every round relinked");
    assert_eq!(sessions, gaps, "sessions split only at gaps over 3 hours");
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[test]
fn a_late_round_one_pairs_and_its_round_two_is_recomputed() {
    let Some((cluster, dir)) = cluster_and_fixtures("et_late_r1") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_late");
    let mut client = db.connect();
    let r1 = "2025-09-24-233255-te_escape2-round-1.txt".to_string();
    let r2 = "2025-09-24-233657-te_escape2-round-2.txt".to_string();
    insert_files(&mut client, &dir, std::slice::from_ref(&r2));
    import(&mut client);
    assert_eq!(
        player_values(&mut client, &r2, "0A26D447"),
        ("raw".into(), 12, 11, Some(2483), Some(438), Some(29)),
        "alone, the round 2 keeps the file's cumulative values"
    );
    let orphan: bool = client
        .query_one(
            "SELECT is_orphan FROM guildstats.et_rounds WHERE file_name = $1",
            &[&r2],
        )
        .expect("orphan")
        .get(0);
    assert!(orphan);
    insert_files(&mut client, &dir, std::slice::from_ref(&r1));
    import(&mut client);
    assert_eq!(
        player_values(&mut client, &r2, "0A26D447"),
        ("differenced".into(), 7, 4, Some(954), Some(204), Some(29))
    );
    let row = client
        .query_one(
            "SELECT r2.is_orphan, r1.file_name, r2.match_id FROM guildstats.et_rounds r2
             JOIN guildstats.et_rounds r1 ON r1.round_id = r2.paired_round_id WHERE r2.file_name = $1",
            &[&r2],
        )
        .expect("paired");
    let (orphan, partner, match_id): (bool, String, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (orphan, partner, match_id.as_deref()),
        (false, r1, Some("2025-09-24-233255"))
    );
}

#[test]
fn a_deleted_or_truncated_round_takes_its_players_and_weapons() {
    let Some((cluster, dir)) = cluster_and_fixtures("et_cascade") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_cascade");
    let mut client = db.connect();
    let names = [
        "2025-09-24-233255-te_escape2-round-1.txt".to_string(),
        "2025-09-24-233657-te_escape2-round-2.txt".to_string(),
    ];
    insert_files(&mut client, &dir, &names);
    import(&mut client);
    // Players and weapons of one round (or of all rounds, for NULL).
    let counts = |client: &mut Client, round_id: Option<i64>| -> (i64, i64) {
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM guildstats.et_player_rounds
                         WHERE round_id = $1 OR $1 IS NULL),
                        (SELECT count(*) FROM guildstats.et_weapon_rounds
                         WHERE round_id = $1 OR $1 IS NULL)",
                &[&round_id],
            )
            .expect("counts");
        (row.get(0), row.get(1))
    };
    let round_id: i64 = client
        .query_one(
            "SELECT round_id FROM guildstats.et_rounds WHERE file_name = $1",
            &[&names[1]],
        )
        .expect("round")
        .get(0);
    let (round_players, round_weapons) = counts(&mut client, Some(round_id));
    let (players, weapons) = counts(&mut client, None);
    assert!(round_players > 0 && round_weapons > 0 && players > round_players);

    client
        .execute(
            "DELETE FROM guildstats.et_rounds WHERE round_id = $1",
            &[&round_id],
        )
        .expect("delete");
    assert_eq!(counts(&mut client, Some(round_id)), (0, 0));
    assert_eq!(
        counts(&mut client, None),
        (players - round_players, weapons - round_weapons),
        "the other round's players and weapons stay"
    );

    client
        .batch_execute("TRUNCATE guildstats.et_rounds")
        .expect("truncate");
    assert_eq!(counts(&mut client, None), (0, 0));
}

#[test]
fn a_bad_file_keeps_its_raw_row_with_the_reason_and_the_batch_goes_on() {
    let Some(cluster) = Cluster::from_env("et_bad_file") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_bad");
    let mut client = db.connect();
    // One statement, two files: the good one imports, the bad one does not, neither is lost.
    client
        .batch_execute(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content) VALUES
               ('2026-01-01-200000-supply-round-1.txt', 'test',
                convert_to(E'srv\\\\supply\\\\legacy3\\\\1\\\\1\\\\2\\\\10:00\\\\7:00\\nDEADBEEF\\\\^1bad\\\\0\\\\1\\\\3 1 2\\n', 'UTF8')),
               ('2026-01-01-201000-supply-round-1.txt', 'test',
                convert_to(E'srv\\\\supply\\\\legacy3\\\\1\\\\1\\\\2\\\\10:00\\\\7:00\\n', 'UTF8'))",
        )
        .unwrap_or_else(|e| panic!("insert: {}", db_message(&e)));
    let (read, imported, failed, ..) = import(&mut client);
    assert_eq!((read, imported, failed), (2, 1, 1));
    let rows = client
        .query(
            "SELECT f.file_name, f.import_error, f.imported_at IS NOT NULL, r.round_id IS NOT NULL
             FROM guildstats.raw_et_stats_files f
             LEFT JOIN guildstats.et_rounds r ON r.raw_ingest_id = f.ingest_id
             ORDER BY f.file_name",
            &[],
        )
        .expect("status");
    assert_eq!(rows.len(), 2);
    let bad_error: Option<String> = rows[0].get(1);
    let bad_error = bad_error.expect("the bad file has its error recorded");
    assert!(
        bad_error.starts_with("2026-01-01-200000-supply-round-1.txt line 2:"),
        "{bad_error}"
    );
    assert_eq!(
        (rows[0].get::<_, bool>(2), rows[0].get::<_, bool>(3)),
        (false, false)
    );
    assert_eq!(rows[1].get::<_, Option<String>>(1), None);
    assert_eq!(
        (rows[1].get::<_, bool>(2), rows[1].get::<_, bool>(3)),
        (true, true)
    );
    // Calling again does not retry the bad file or import anything twice.
    let (read, imported, failed, ..) = import(&mut client);
    assert_eq!((read, imported, failed), (0, 0, 0));
}

#[test]
fn a_concurrent_import_is_told_another_one_is_running() {
    let Some(cluster) = Cluster::from_env("et_concurrent") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_concurrent");
    let mut first = db.connect();
    let mut second = db.connect();
    let mut holding = first.transaction().expect("begin");
    let status: String = holding
        .query_one("SELECT status FROM guildstats.import_et_rounds()", &[])
        .expect("first import")
        .get(0);
    assert_eq!(status, "ok");
    let status: String = second
        .query_one("SELECT status FROM guildstats.import_et_rounds()", &[])
        .expect("second import")
        .get(0);
    assert!(
        status.starts_with("skipped: another import_et_rounds() is running"),
        "{status}"
    );
    holding.commit().expect("commit");
    let status: String = second
        .query_one("SELECT status FROM guildstats.import_et_rounds()", &[])
        .expect("after the first committed")
        .get(0);
    assert_eq!(status, "ok");
}

#[test]
fn the_batch_fast_path_and_the_file_by_file_path_store_the_same_rows() {
    let Some((cluster, dir)) = cluster_and_fixtures("et_fast_vs_slow") else {
        return;
    };
    let names = fixture_names(&dir);
    let mut fingerprints = Vec::new();
    for (label, import_sql) in [
        ("batch", "SELECT * FROM guildstats.import_et_rounds()"),
        (
            "file_by_file",
            "DO $$
             DECLARE f record;
             BEGIN
                 FOR f IN SELECT ingest_id FROM guildstats.raw_et_stats_files ORDER BY ingest_id LOOP
                     PERFORM guildstats._et_import_file(f.ingest_id);
                     UPDATE guildstats.raw_et_stats_files SET imported_at = now() WHERE ingest_id = f.ingest_id;
                 END LOOP;
                 PERFORM guildstats._et_link_all('60 minutes');
             END $$",
        ),
    ] {
        let db = TestDb::create(&cluster, &format!("et_{label}"));
        let mut client = db.connect();
        insert_files(&mut client, &dir, &names);
        client
            .batch_execute(import_sql)
            .unwrap_or_else(|e| panic!("{label}: {}", db_message(&e)));
        fingerprints.push(fingerprint(&mut client));
    }
    assert_eq!(fingerprints[0], fingerprints[1]);
}
