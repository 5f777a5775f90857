//! ET:Legacy files that a careless or hostile server could write (issue 10, items 9 to 11):
//! numbers outside their documented range are one per-file error naming the file, the line, the
//! player, the field and the value, alone or in a batch with good files; inserting a file
//! imports nothing, so a huge file cannot make the ingester's INSERT time out and lose the row;
//! a file name too long for the index is refused with a check violation; bytes that are not
//! UTF-8 are repaired with a warning beside the row; a byte order mark is dropped.

use guildstats_e2e::{db_message, Cluster, TestDb};
use postgres::error::SqlState;
use postgres::Client;

const HEADER: &str = "^1Demo ^7Server\\supply\\legacy3\\1\\1\\2\\10:00\\7:30";

/// A 38-field player line (one weapon, MP40) with the given team, weapon hits and damage given.
fn player(guid: &str, name: &str, team: &str, hits: &str, damage: &str) -> String {
    format!(
        "{guid}\\{name}\\0\\{team}\\16 {hits} 100 5 3 2 \t{damage}\t900\t0\t0\t2\t0\t0\t0\t90.0\t40\t3\t1\t1\t0\t1\t0\t0\t0\t0\t0\t100\t0.0\t7.5\t0.0\t10.0\t0.8\t1.7\t2\t30\t1\t0\t0\t0\t0\t0\t0\t0\t0"
    )
}

fn good_players() -> String {
    format!(
        "{}\n{}\n",
        player("AAAA0001", "^1Fox", "2", "30", "1200"),
        player("BBBB0002", "^4O^7wl", "1", "20", "800")
    )
}

/// A round-1 file whose second player line is `second` (and whose header is `header`).
fn file(header: &str, second: &str) -> Vec<u8> {
    format!(
        "{header}\n{}\n{second}\n",
        player("AAAA0001", "^1Fox", "2", "30", "1200")
    )
    .into_bytes()
}

/// The bad files of the issue, each with the exact error it must get.
fn bad_files() -> Vec<(String, Vec<u8>, String)> {
    let owl =
        |team: &str, hits: &str, damage: &str| player("BBBB0002", "^4O^7wl", team, hits, damage);
    let cases = [
        (
            "210000",
            file(HEADER, &owl("1", "20", "2147483648")),
            "line 3 (player BBBB0002 \"Owl\"): damage given (extended field 0) 2147483648 is out of range (0 to 2147483647)",
        ),
        (
            "210100",
            file(HEADER, &owl("1", "20", "-800")),
            "line 3 (player BBBB0002 \"Owl\"): damage given (extended field 0) -800 is out of range (0 to 2147483647)",
        ),
        (
            "210200",
            file(HEADER, &owl("1", "-20", "800")),
            "line 3 (player BBBB0002 \"Owl\"): hits for weapon 4 (MP40) -20 is out of range (0 to 2147483647)",
        ),
        (
            "210300",
            file(HEADER, &owl("70000", "20", "800")),
            "line 3 (player BBBB0002 \"Owl\"): team 70000 is out of range (1 to 3)",
        ),
        (
            "210400",
            file(
                "^1Demo ^7Server\\supply\\legacy3\\1\\70000\\2\\10:00\\7:30",
                &owl("1", "20", "800"),
            ),
            "line 1: header defender team 70000 is out of range (1 to 2)",
        ),
        (
            "210500",
            file(
                "^1Demo ^7Server\\supply\\legacy3\\99\\1\\2\\10:00\\7:30",
                &owl("1", "20", "800"),
            ),
            "line 1: header round 99 is out of range (1 to 2)",
        ),
        (
            "210600",
            file(
                "^1Demo ^7Server\\supply\\legacy3\\2\\1\\2\\10:00\\7:30",
                &owl("1", "20", "800"),
            ),
            "line 1: header round 2 differs from the file name's round 1",
        ),
    ];
    cases
        .into_iter()
        .map(|(time, content, error)| {
            let name = format!("2026-04-01-{time}-supply-round-1.txt");
            let error = format!("{name} {error}");
            (name, content, error)
        })
        .collect()
}

fn insert(client: &mut Client, files: &[(String, Vec<u8>)]) {
    let mut transaction = client.transaction().expect("begin");
    for (name, content) in files {
        transaction
            .execute(
                "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
                 VALUES ($1, 'test', $2)",
                &[name, content],
            )
            .unwrap_or_else(|e| panic!("insert {name}: {}", db_message(&e)));
    }
    transaction.commit().expect("commit");
}

fn import(client: &mut Client) -> (i32, i32, i32) {
    let row = client
        .query_one(
            "SELECT files_read, rounds_imported, files_failed FROM guildstats.import_et_rounds()",
            &[],
        )
        .unwrap_or_else(|e| panic!("import_et_rounds: {}", db_message(&e)));
    (row.get(0), row.get(1), row.get(2))
}

/// The file's import_error, and whether it has a round.
fn outcome(client: &mut Client, name: &str) -> (Option<String>, bool) {
    let row = client
        .query_one(
            "SELECT f.import_error, EXISTS (SELECT 1 FROM guildstats.et_rounds r
                                            WHERE r.raw_ingest_id = f.ingest_id)
             FROM guildstats.raw_et_stats_files f WHERE f.file_name = $1",
            &[&name],
        )
        .unwrap_or_else(|e| panic!("{name}: {}", db_message(&e)));
    (row.get(0), row.get(1))
}

#[test]
fn each_out_of_range_file_gets_its_own_named_error_alone() {
    let Some(cluster) = Cluster::from_env("et_range_alone") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_range_alone");
    let mut client = db.connect();
    for (name, content, error) in bad_files() {
        insert(&mut client, &[(name.clone(), content)]);
        assert_eq!(import(&mut client), (1, 0, 1), "{name}");
        assert_eq!(outcome(&mut client, &name), (Some(error), false));
    }
    // Nothing half-imported: no rounds, no players (the damage file used to import with a
    // NULL damage and a DPM of 286 million).
    let players: i64 = client
        .query_one("SELECT count(*) FROM guildstats.et_player_rounds", &[])
        .expect("players")
        .get(0);
    assert_eq!(players, 0);
}

#[test]
fn each_out_of_range_file_gets_its_own_named_error_in_a_batch_with_good_files() {
    let Some(cluster) = Cluster::from_env("et_range_batch") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_range_batch");
    let mut client = db.connect();
    let good = [
        (
            "2026-04-01-200000-supply-round-1.txt".to_string(),
            format!("{HEADER}\n{}", good_players()).into_bytes(),
        ),
        (
            "2026-04-01-220000-supply-round-1.txt".to_string(),
            format!("{HEADER}\n{}", good_players().replace("1200", "1300")).into_bytes(),
        ),
    ];
    let bad = bad_files();
    let mut files: Vec<(String, Vec<u8>)> = good.to_vec();
    files.extend(bad.iter().map(|(n, c, _)| (n.clone(), c.clone())));
    insert(&mut client, &files);
    assert_eq!(
        import(&mut client),
        (files.len() as i32, 2, bad.len() as i32)
    );
    for (name, _) in &good {
        assert_eq!(outcome(&mut client, name), (None, true), "{name}");
    }
    for (name, _, error) in &bad {
        assert_eq!(outcome(&mut client, name), (Some(error.clone()), false));
    }
    // Hand-worked: Fox, 1200 damage over 7.5 minutes, 160 DPM; Owl, 800 damage, 106.7.
    let dpm: Vec<f64> = client
        .query(
            "SELECT p.dpm FROM guildstats.et_player_rounds p JOIN guildstats.et_rounds r USING (round_id)
             WHERE r.file_name = '2026-04-01-200000-supply-round-1.txt' ORDER BY p.guid",
            &[],
        )
        .expect("dpm")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(dpm.len(), 2);
    assert!((dpm[0] - 1200.0 * 60.0 / 450.0).abs() < 1e-9, "{dpm:?}");
    assert!((dpm[1] - 800.0 * 60.0 / 450.0).abs() < 1e-9, "{dpm:?}");

    // The file-by-file path (what import_et_rounds() falls back to) gives the same message.
    let (name, _, error) = &bad[0];
    let err = client
        .query_one(
            "SELECT guildstats._et_import_file(ingest_id) FROM guildstats.raw_et_stats_files
             WHERE file_name = $1",
            &[name],
        )
        .expect_err("a bad file raises");
    assert_eq!(db_message(&err), format!("22000: {error}"));
}

/// A round-1 file with `players` distinct players.
fn big_file(players: usize) -> Vec<u8> {
    let mut text = format!("{HEADER}\n");
    for i in 0..players {
        text.push_str(&player(
            &format!("{i:08X}"),
            &format!("p{i}"),
            "1",
            "20",
            "800",
        ));
        text.push('\n');
    }
    text.into_bytes()
}

#[test]
fn a_short_statement_timeout_never_loses_the_raw_row() {
    let Some(cluster) = Cluster::from_env("et_statement_timeout") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_timeout");
    let mut client = db.connect();
    let name = "2026-04-02-210000-supply-round-1.txt";
    let content = big_file(5000);
    // What an ingester with a tight timeout does. The import used to run inside this INSERT,
    // which was cancelled and took the raw row with it.
    client
        .batch_execute("SET statement_timeout = '150ms'")
        .expect("set");
    client
        .execute(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
             VALUES ($1, 'test', $2)",
            &[&name, &content],
        )
        .unwrap_or_else(|e| panic!("the raw insert must commit: {}", db_message(&e)));
    client
        .batch_execute("RESET statement_timeout")
        .expect("reset");
    let row = client
        .query_one(
            "SELECT imported_at IS NULL, import_error IS NULL, size_bytes
             FROM guildstats.raw_et_stats_files WHERE file_name = $1",
            &[&name],
        )
        .expect("raw row");
    let (pending, no_error, size): (bool, bool, i32) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (pending, no_error, size as usize),
        (true, true, content.len())
    );

    // The builders import it later.
    assert_eq!(import(&mut client), (1, 1, 0));
    let players: i32 = client
        .query_one(
            "SELECT player_count FROM guildstats.et_rounds WHERE file_name = $1",
            &[&name],
        )
        .expect("round")
        .get(0);
    assert_eq!(players, 5000);
    let stored: i64 = client
        .query_one("SELECT count(*) FROM guildstats.et_player_rounds", &[])
        .expect("players")
        .get(0);
    assert_eq!(stored, 5000);
}

#[test]
fn build_all_imports_what_was_inserted() {
    let Some(cluster) = Cluster::from_env("et_build_all") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_build_all");
    let mut client = db.connect();
    let name = "2026-04-03-210000-supply-round-1.txt".to_string();
    insert(
        &mut client,
        &[(
            name.clone(),
            format!("{HEADER}\n{}", good_players()).into_bytes(),
        )],
    );
    assert_eq!(outcome(&mut client, &name), (None, false), "not at insert");
    client
        .batch_execute("SELECT * FROM guildstats.build_all()")
        .expect("build_all");
    assert_eq!(outcome(&mut client, &name), (None, true));
}

#[test]
fn a_file_name_too_long_for_the_index_is_a_check_violation() {
    let Some(cluster) = Cluster::from_env("et_long_name") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_long_name");
    let mut client = db.connect();
    // 3 KB of incompressible text: the btree index refused it (program_limit_exceeded, which
    // the ingesters retry forever, and the row was never stored).
    let mut name = String::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while name.len() < 3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        name.push_str(&format!("{x:016x}"));
    }
    name.push_str("-round-1.txt");
    let err = client
        .execute(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
             VALUES ($1, 'test', 'x')",
            &[&name],
        )
        .expect_err("a 3 KB name is refused");
    assert_eq!(
        err.code(),
        Some(&SqlState::CHECK_VIOLATION),
        "{}",
        db_message(&err)
    );
    assert!(
        db_message(&err).contains("raw_et_stats_files_file_name_length"),
        "{}",
        db_message(&err)
    );
    // 1024 bytes still fit (a Linux file name has at most 255).
    let longest = format!("{}-round-1.txt", "a".repeat(1024 - "-round-1.txt".len()));
    client
        .execute(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
             VALUES ($1, 'test', 'y')",
            &[&longest],
        )
        .unwrap_or_else(|e| panic!("1024 bytes: {}", db_message(&e)));
}

#[test]
fn bytes_that_are_not_utf8_are_repaired_with_a_warning_and_a_bom_is_dropped() {
    let Some(cluster) = Cluster::from_env("et_utf8") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_utf8");
    let mut client = db.connect();
    let latin1 = "2026-04-04-210000-supply-round-1.txt".to_string();
    let mut content = format!("{HEADER}\n{}", good_players()).into_bytes();
    let at = content.windows(3).position(|w| w == b"Fox").expect("Fox");
    content[at + 1] = 0xF6; // Latin-1 'ö'
    let bom = "2026-04-04-220000-supply-round-1.txt".to_string();
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend(format!("{HEADER}\n{}", good_players().replace("1200", "1250")).bytes());
    insert(
        &mut client,
        &[(latin1.clone(), content), (bom.clone(), with_bom)],
    );
    assert_eq!(import(&mut client), (2, 2, 0));
    let rows = client
        .query(
            "SELECT f.file_name, f.import_error, f.import_warning, r.server_name, r.server_name_raw
             FROM guildstats.raw_et_stats_files f
             JOIN guildstats.et_rounds r ON r.raw_ingest_id = f.ingest_id ORDER BY 1",
            &[],
        )
        .expect("rows");
    // File name, import_error, import_warning, server_name, server_name_raw.
    type Outcome = (String, Option<String>, Option<String>, String, String);
    let got: Vec<Outcome> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let warning = format!(
        "{latin1}: not valid UTF-8: 1 invalid byte sequence(s) replaced by U+FFFD, the first on line 2"
    );
    assert_eq!(
        got,
        vec![
            (
                latin1.clone(),
                None,
                Some(warning.clone()),
                "Demo Server".to_string(),
                "^1Demo ^7Server".to_string()
            ),
            (
                bom,
                None,
                None,
                "Demo Server".to_string(),
                "^1Demo ^7Server".to_string()
            ),
        ]
    );
    let name: String = client
        .query_one(
            "SELECT p.clean_name FROM guildstats.et_player_rounds p
             JOIN guildstats.et_rounds r USING (round_id)
             WHERE r.file_name = $1 AND p.guid = 'AAAA0001'",
            &[&latin1],
        )
        .expect("name")
        .get(0);
    assert_eq!(name, "F\u{FFFD}x");

    // The file-by-file path records the same warning.
    client
        .batch_execute(
            "UPDATE guildstats.raw_et_stats_files SET import_warning = NULL;
             DELETE FROM guildstats.et_rounds;",
        )
        .expect("reset");
    let warning_again: Option<String> = client
        .query_one(
            "SELECT guildstats._et_import_file(ingest_id) IS NOT NULL FROM guildstats.raw_et_stats_files
             WHERE file_name = $1",
            &[&latin1],
        )
        .and_then(|_| {
            client.query_one(
                "SELECT import_warning FROM guildstats.raw_et_stats_files WHERE file_name = $1",
                &[&latin1],
            )
        })
        .expect("file by file")
        .get(0);
    assert_eq!(warning_again, Some(warning));
}
