//! Upgrades from every past release (extension/releases/guildstats--X.sql) to the current
//! version: the rows stay, the schema ends exactly as a fresh install's, and the builders go on
//! from where they stopped with the same results as one build over all the data.
//!
//! The old install script runs with the current shared library, as in a real upgrade, where the
//! new library is installed before `ALTER EXTENSION guildstats UPDATE` runs the upgrade script
//! (extension/sql/guildstats--X--Y.sql). Every schema change must be written into that script;
//! when one is missing or wrong, the failure shows the difference between the two schemas.
//!
//! Alone: `scripts/test-upgrade` (DEVELOPERS.md, "Schema changes ship their upgrade script").
//! When the schemas differ, both normalised schemas are left in the temp dir for a closer look.

use guildstats_e2e::{db_message, et, repo_root, run_ok, Cluster, TestDb};
use guildstats_synth::{pg, Community, CommunityConfig, Row, Table, Ts};
use postgres::Client;
use std::path::{Path, PathBuf};

/// Tables whose rows an upgrade script rewrites on purpose, with the reason (e.g. a builder's
/// output changed meaning, so the script resets its progress and the next build recomputes).
/// Their rows are not compared across the upgrade; the comparison with a fresh build after more
/// data still is. Raw tables and settings hold what users gave and can never be listed.
const CHANGED_BY_UPGRADE: &[(&str, &str)] = &[(
    "build_progress",
    "build_rollups() starts its claims over, so that its first run fills the dashboard rollups",
)];

/// Versions whose install script is kept in extension/releases/, oldest first.
fn releases() -> Vec<String> {
    let dir = repo_root().join("extension/releases");
    let mut versions: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            let v = n.strip_prefix("guildstats--")?.strip_suffix(".sql")?;
            (!v.contains("--")).then(|| v.to_string())
        })
        .collect();
    versions.sort_by_key(|v| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    assert!(
        !versions.is_empty(),
        "no install script in {}",
        dir.display()
    );
    versions
}

fn query_text(client: &mut Client, sql: &str) -> String {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", db_message(&e)))
        .get(0)
}

fn extversion(client: &mut Client) -> String {
    query_text(
        client,
        "SELECT extversion FROM pg_extension WHERE extname = 'guildstats'",
    )
}

fn default_version(client: &mut Client) -> String {
    query_text(
        client,
        "SELECT default_version FROM pg_available_extensions WHERE name = 'guildstats'",
    )
}

/// Every table of the extension (whatever its schema) with its columns, in column order.
fn extension_tables(client: &mut Client) -> Vec<(String, Vec<String>)> {
    client
        .query(
            "SELECT c.oid::regclass::text,
                    array_agg(quote_ident(a.attname) ORDER BY a.attnum)
             FROM pg_depend d
             JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'guildstats')
               AND c.relkind IN ('r', 'p')
             GROUP BY c.oid
             ORDER BY 1",
            &[],
        )
        .expect("extension tables")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Row count and a checksum of `columns` of every row, independent of physical order.
fn fingerprint(
    client: &mut Client,
    table: &str,
    columns: &[String],
) -> Result<(i64, String), String> {
    let sql = format!(
        "SELECT count(*), coalesce(md5(string_agg(r::text, E'\\n' ORDER BY r::text)), '')
         FROM (SELECT {} FROM {table}) r",
        columns.join(", ")
    );
    client
        .query_one(&sql, &[])
        .map(|row| (row.get(0), row.get(1)))
        .map_err(|e| db_message(&e))
}

/// The schema of everything in the database, as text that only differs where the schemas do.
///
/// A plain `pg_dump --schema-only` shows an extension as one CREATE EXTENSION line; in binary
/// upgrade mode it writes every member object instead (with its comments and grants), which is
/// what must match. What only reflects the physical history of a database goes: OIDs and
/// relfilenodes, frozen xids, dropped columns (an upgrade that drops one keeps a hidden slot),
/// "missing values" of columns added to tables with rows. Entries are sorted by their headers,
/// so the order objects were created in does not matter; the order of a table's columns does
/// (ALTER TABLE ADD COLUMN can only append, so a column added in an upgrade goes last in the
/// CREATE TABLE too, and positional INSERTs see the same table either way).
fn normalised_schema(cluster: &Cluster, db: &TestDb) -> String {
    let dump = run_ok(cluster.command("pg_dump").args([
        "--schema-only",
        "--binary-upgrade",
        "--no-owner",
        "-d",
        &db.name,
    ]));
    let mut lines = Vec::new();
    let mut in_catalog_update = false;
    for line in dump.lines() {
        if in_catalog_update || line.starts_with("UPDATE pg_catalog.") {
            in_catalog_update = !line.trim_end().ends_with(';');
            continue;
        }
        let noise = line.trim().is_empty()
            || line.starts_with("\\restrict")
            || line.starts_with("\\unrestrict")
            || line.starts_with("-- Dumped ")
            || line.starts_with("-- For binary upgrade")
            || line.starts_with("-- set missing value")
            || line.contains("........pg.dropped.")
            || line.starts_with("SELECT pg_catalog.binary_upgrade_set_next_")
            || line.starts_with("SELECT pg_catalog.binary_upgrade_set_missing_value")
            // Lists the configuration tables by OID; written below by name instead.
            || line.starts_with("SELECT pg_catalog.binary_upgrade_create_empty_extension");
        if !noise {
            // A dropped last column leaves a comma on the column before it.
            lines.push(line.trim_end().trim_end_matches(',').to_string());
        }
    }
    let text = lines.join("\n");
    let mut entries: Vec<String> = text
        .split("\n--\n-- Name: ")
        .enumerate()
        .map(|(i, e)| {
            if i == 0 {
                e.to_string()
            } else {
                format!("--\n-- Name: {e}")
            }
        })
        .collect();
    // Where each identity sequence stands is data, not schema.
    entries.retain(|e| !e.contains("; Type: SEQUENCE SET; "));
    entries.sort();
    let mut client = db.connect();
    let config = query_text(
        &mut client,
        "SELECT coalesce(string_agg(format('--   %s %L', t::regclass, cond), E'\\n'
                                    ORDER BY t::regclass::text), '')
         FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(t, cond)
         WHERE e.extname = 'guildstats'",
    );
    entries.push(format!(
        "-- tables whose rows pg_dump keeps (pg_extension_config_dump):\n{config}"
    ));
    // The builder registry is rows the install script writes, and build_all() runs what they
    // say: an upgrade section that registers a builder differently is a different product.
    let builders = query_text(
        &mut client,
        "SELECT coalesce(string_agg('--   ' || row_to_json(b)::text, E'\\n' ORDER BY b.name), '')
         FROM guildstats.builders b",
    );
    entries.push(format!("-- the builder registry:\n{builders}"));
    entries.join("\n") + "\n"
}

/// `diff -u` of the two schemas (files kept in the temp dir), or `None` when they are equal.
fn schema_diff(fresh: &str, upgraded: &str, release: &str) -> Option<String> {
    if fresh == upgraded {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("guildstats-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fresh_file = dir.join("fresh.sql");
    let upgraded_file = dir.join(format!("upgraded-from-{release}.sql"));
    std::fs::write(&fresh_file, fresh).expect("write schema");
    std::fs::write(&upgraded_file, upgraded).expect("write schema");
    let out = std::process::Command::new("diff")
        .args(["-u"])
        .arg(&fresh_file)
        .arg(&upgraded_file)
        .output()
        .expect("run diff");
    let diff = String::from_utf8_lossy(&out.stdout);
    let shown: Vec<&str> = diff.lines().take(300).collect();
    Some(format!(
        "the schema after upgrading from {release} differs from a fresh install \
         (- fresh install, + upgraded; full schemas in {}):\n{}{}",
        dir.display(),
        shown.join("\n"),
        if diff.lines().count() > shown.len() {
            "\n[... diff cut at 300 lines]"
        } else {
            ""
        }
    ))
}

/// The history that had arrived before the upgrade, and what arrives after it: the synthetic
/// community split in time, and the real ET files (when ../shared has them) split in name order,
/// which is time order.
///
/// The generator writes the current raw columns, which an old release may not have yet; so the
/// first part is generated into a scratch database of the current version and copied from there,
/// column by column that the target has. A column added since keeps its default in the earlier
/// rows, as in a database that really ran the old release.
struct Data {
    community: Community,
    split_at: Ts,
    et: Option<(PathBuf, Vec<String>, Vec<String>)>,
    first_part: TestDb,
}

/// Columns of guildstats.`table` a client writes (no identity, no generated column).
fn writable_columns(client: &mut Client, table: &str) -> Vec<String> {
    client
        .query(
            "SELECT quote_ident(attname) FROM pg_attribute
             WHERE attrelid = to_regclass('guildstats.' || $1) AND attnum > 0
               AND NOT attisdropped AND attidentity = '' AND attgenerated = ''
             ORDER BY attnum",
            &[&table],
        )
        .expect("columns")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

impl Data {
    fn new(cluster: &Cluster) -> Data {
        let config = CommunityConfig::tiny().with_seed(11);
        let split_at = config.start.add_secs(8 * 86_400 + 5 * 3_600);
        let et = et::fixtures_dir("upgrade (ET part)").map(|dir| {
            let mut names = et::fixture_names(&dir);
            let later = names.split_off(names.len() / 2);
            (dir, names, later)
        });
        let data = Data {
            community: Community::new(config).expect("valid config"),
            split_at,
            et,
            first_part: TestDb::create(cluster, "upgrade_first_part"),
        };
        let keep = |row: &Row<'_>| row.time() < split_at;
        pg::load_where(
            &mut data.first_part.connect(),
            &data.community,
            &Table::ALL,
            keep,
        )
        .expect("synthetic load");
        data
    }

    /// Everything that had arrived before the split.
    fn load_first_part(&self, client: &mut Client) {
        let mut source = self.first_part.connect();
        for table in Table::ALL {
            let name = table.name();
            let theirs = writable_columns(client, name);
            let columns: Vec<String> = writable_columns(&mut source, name)
                .into_iter()
                .filter(|c| theirs.contains(c))
                .collect();
            let list = columns.join(", ");
            let mut rows = source
                .copy_out(&format!(
                    "COPY (SELECT {list} FROM guildstats.{name} ORDER BY ingest_id) TO STDOUT"
                ))
                .expect("copy out");
            let mut into = client
                .copy_in(&format!("COPY guildstats.{name} ({list}) FROM STDIN"))
                .expect("copy in");
            std::io::copy(&mut rows, &mut into).expect("copy rows");
            if let Err(e) = into.finish() {
                panic!("first part into {name}: {}", db_message(&e));
            }
        }
        self.load_rest(client, true);
    }

    /// What arrived after the split.
    fn load_second_part(&self, client: &mut Client) {
        let split_at = self.split_at;
        let keep = |row: &Row<'_>| row.time() >= split_at;
        pg::load_where(client, &self.community, &Table::ALL, keep).expect("synthetic load");
        self.load_rest(client, false);
    }

    fn load_rest(&self, client: &mut Client, first: bool) {
        if let Some((dir, earlier, later)) = &self.et {
            et::insert_files(client, dir, if first { earlier } else { later });
        }
        client
            .batch_execute(
                "INSERT INTO guildstats.settings (guild_id, calendar_time_zone)
                 SELECT DISTINCT guild_id, 'Europe/Berlin' FROM guildstats.raw_guilds
                 ON CONFLICT DO NOTHING",
            )
            .expect("settings");
    }
}

fn build_all(client: &mut Client) {
    if let Err(e) = client.batch_execute("SELECT * FROM guildstats.build_all()") {
        panic!("build_all(): {}", db_message(&e));
    }
}

/// Core tables, compared whole; et_* through the id-free ET fingerprint.
const CORE_TABLES: [&str; 7] = [
    "members",
    "voice_sessions",
    "events",
    "event_attendance",
    "member_voice_daily",
    "member_engagement_weekly",
    "member_monthly_status",
];

/// The rows of a core table as text. Sums of seconds in double precision depend on the order
/// they were added in, which differs between building in two steps and in one; they are
/// microsecond counts, so six decimals hold the whole value.
fn core_rows_sql(client: &mut Client, table: &str) -> String {
    let columns = query_text(
        client,
        &format!(
            "SELECT string_agg(CASE WHEN atttypid IN ('float8'::regtype, 'float4'::regtype)
                                    THEN format('round(%I::numeric, 6)', attname)
                                    ELSE quote_ident(attname) END, ', ' ORDER BY attnum)
             FROM pg_attribute
             WHERE attrelid = 'guildstats.{table}'::regclass AND attnum > 0 AND NOT attisdropped"
        ),
    );
    format!("SELECT ({columns})::text AS line FROM guildstats.{table}")
}

fn core_fingerprints(client: &mut Client, with_et: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = CORE_TABLES
        .iter()
        .map(|t| {
            let sql = format!(
                "SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(line, E'\\n' ORDER BY line)), '')
                 FROM ({}) r",
                core_rows_sql(client, t)
            );
            (t.to_string(), query_text(client, &sql))
        })
        .collect();
    if with_et {
        out.push(("et_* (fingerprint)".into(), et::fingerprint(client)));
    }
    out
}

/// A few rows only one side has, to start the search with.
fn row_differences(incremental: &mut Client, whole: &mut Client, table: &str) -> String {
    let Some(name) = CORE_TABLES.iter().find(|t| **t == table) else {
        return String::new(); // the ET fingerprint has its own tests (et_import.rs)
    };
    let rows = |client: &mut Client| -> std::collections::BTreeSet<String> {
        let sql = core_rows_sql(client, name);
        client
            .query(&sql, &[])
            .expect("rows")
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let (a, b) = (rows(incremental), rows(whole));
    let only = |x: &std::collections::BTreeSet<String>, y: &std::collections::BTreeSet<String>| {
        x.difference(y)
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    format!(
        "\n  only in the upgraded database:\n    {}\n  only in the fresh one:\n    {}",
        only(&a, &b),
        only(&b, &a)
    )
}

fn upgrade_from(cluster: &Cluster, release: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let data = Data::new(cluster);
    let upgraded = TestDb::create_version(cluster, "upgrade_old", Some(release));
    let mut old = upgraded.connect();
    assert_eq!(extversion(&mut old), release);
    let current = default_version(&mut old);

    // (2) the history so far, built by the old release's builders.
    data.load_first_part(&mut old);
    build_all(&mut old);
    let sessions_before: i64 = old
        .query_one("SELECT count(*) FROM guildstats.voice_sessions", &[])
        .expect("count")
        .get(0);
    assert!(
        sessions_before > 0,
        "the first part built no voice sessions"
    );
    let tables = extension_tables(&mut old);
    let before: Vec<_> = tables
        .iter()
        .map(|(t, cols)| fingerprint(&mut old, t, cols).expect("fingerprint before"))
        .collect();

    // (3) the upgrade.
    if let Err(e) = old.batch_execute("ALTER EXTENSION guildstats UPDATE") {
        failures.push(format!(
            "ALTER EXTENSION guildstats UPDATE from {release} failed: {}",
            db_message(&e)
        ));
        return failures;
    }
    let now = extversion(&mut old);
    if now != current {
        failures.push(format!(
            "after ALTER EXTENSION guildstats UPDATE from {release} the version is {now}, not {current}: \
             is an upgrade script missing from extension/sql/?"
        ));
    }

    // (4) the schema equals a fresh install's.
    let fresh = TestDb::create(cluster, "upgrade_fresh");
    if let Some(diff) = schema_diff(
        &normalised_schema(cluster, &fresh),
        &normalised_schema(cluster, &upgraded),
        release,
    ) {
        failures.push(diff);
    }

    // (5) every row is still there: the columns the table had before, row for row.
    for ((table, columns), before) in tables.iter().zip(&before) {
        let name = table.rsplit('.').next().unwrap_or(table);
        if CHANGED_BY_UPGRADE.iter().any(|(t, _)| *t == name) {
            continue;
        }
        match fingerprint(&mut old, table, columns) {
            Ok(after) if after == *before => {}
            Ok(after) => failures.push(format!(
                "{table}: rows changed by the upgrade: {} rows (md5 {}) before, {} rows (md5 {}) after",
                before.0, before.1, after.0, after.1
            )),
            Err(e) => failures.push(format!(
                "{table}: the rows of before the upgrade cannot be read back: {e}"
            )),
        }
    }

    // (6) more data arrives, the builders go on; the same as one build over everything.
    data.load_second_part(&mut old);
    build_all(&mut old);
    let sessions_after: i64 = old
        .query_one("SELECT count(*) FROM guildstats.voice_sessions", &[])
        .expect("count")
        .get(0);
    assert!(
        sessions_after > sessions_before,
        "the builders built nothing after the upgrade"
    );
    let mut once = fresh.connect();
    data.load_first_part(&mut once);
    data.load_second_part(&mut once);
    build_all(&mut once);
    let with_et = data.et.is_some();
    for ((table, incremental), (_, whole)) in core_fingerprints(&mut old, with_et)
        .into_iter()
        .zip(core_fingerprints(&mut once, with_et))
    {
        if incremental != whole {
            failures.push(format!(
                "{table}: built before and after the upgrade: {incremental}; \
                 built once on a fresh install: {whole}{}",
                row_differences(&mut old, &mut once, &table)
            ));
        }
    }
    failures
}

#[test]
fn upgrades_keep_every_row_and_end_with_the_fresh_schema() {
    for (table, _) in CHANGED_BY_UPGRADE {
        assert!(
            !table.starts_with("raw_") && *table != "settings",
            "{table} holds users' data: an upgrade must keep its rows"
        );
    }
    let Some(cluster) = Cluster::from_env("upgrade") else {
        return;
    };
    let mut failures = Vec::new();
    for release in releases() {
        failures.extend(
            upgrade_from(&cluster, &release)
                .into_iter()
                .map(|f| format!("[from {release}] {f}")),
        );
    }
    assert!(
        failures.is_empty(),
        "upgrade test: {} problem(s)\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Symbols named by `AS 'MODULE_PATHNAME', 'symbol'` in an install script.
fn c_symbols(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(at) = rest.find("'MODULE_PATHNAME'") {
        rest = &rest[at + "'MODULE_PATHNAME'".len()..];
        let after = rest.trim_start();
        if let Some(after) = after.strip_prefix(',') {
            if let Some(quoted) = after.trim_start().strip_prefix('\'') {
                if let Some(end) = quoted.find('\'') {
                    out.push(quoted[..end].to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The symbols the library lacks, found by declaring a C function for each (in a transaction
/// that is rolled back): PostgreSQL loads the library and looks the symbol and its V1 info
/// record up, just as the old install script will.
fn missing_symbols(client: &mut Client, library: &str, symbols: &[String]) -> Vec<String> {
    let mut missing = Vec::new();
    for symbol in symbols {
        let mut tx = client.transaction().expect("begin");
        let probe = format!(
            "CREATE FUNCTION pg_temp.gs_symbol_probe() RETURNS void AS '{library}', '{symbol}' LANGUAGE C"
        );
        if let Err(e) = tx.batch_execute(&probe) {
            missing.push(format!("{symbol}: {}", db_message(&e)));
        }
        tx.rollback().expect("rollback");
    }
    missing
}

#[test]
fn the_library_keeps_every_c_symbol_of_past_releases() {
    let Some(cluster) = Cluster::from_env("release_symbols") else {
        return;
    };
    let db = TestDb::create(&cluster, "symbols");
    let mut client = db.connect();
    let library = query_text(
        &mut client,
        "SELECT min(probin) FROM pg_proc
         WHERE prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
           AND pronamespace = 'guildstats'::regnamespace",
    );
    // The probe must be able to fail, or it proves nothing.
    let absent = vec!["gs_no_such_symbol_in_guildstats".to_string()];
    assert_eq!(
        missing_symbols(&mut client, &library, &absent).len(),
        1,
        "a made-up symbol was found"
    );
    let mut problems = Vec::new();
    for release in releases() {
        let path = repo_root().join(format!("extension/releases/guildstats--{release}.sql"));
        let symbols = c_symbols(&read(&path));
        assert!(
            symbols.len() >= 10,
            "{}: only {} C symbols found; is the parser still right?",
            path.display(),
            symbols.len()
        );
        problems.extend(
            missing_symbols(&mut client, &library, &symbols)
                .into_iter()
                .map(|m| format!("{release}: {m}")),
        );
    }
    assert!(
        problems.is_empty(),
        "the library lost C symbols that a past release's SQL names (keep them: DEVELOPERS.md):\n{}",
        problems.join("\n")
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_downgrade_is_refused_with_a_clear_message() {
    let Some(cluster) = Cluster::from_env("downgrade") else {
        return;
    };
    let db = TestDb::create(&cluster, "downgrade");
    let mut client = db.connect();
    let current = extversion(&mut client);
    client
        .batch_execute(
            "INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
             VALUES ('discord', 1, '2026-03-01 20:00+00')",
        )
        .expect("a row");
    for release in releases().into_iter().filter(|r| *r != current) {
        let err = client
            .batch_execute(&format!("ALTER EXTENSION guildstats UPDATE TO '{release}'"))
            .expect_err("a downgrade must be refused");
        let db_err = err.as_db_error().expect("a server error");
        assert_eq!(db_err.code().code(), "0A000", "{}", db_message(&err));
        // From a later version the first refusing step names its own target, not `release`.
        assert!(
            db_err.message().starts_with(&format!(
                "guildstats cannot be downgraded from {current} to "
            )),
            "{}",
            db_err.message()
        );
        let hint = db_err.hint().unwrap_or_default();
        assert!(
            hint.contains("pg_dump") && hint.contains(" packages "),
            "the hint says how to go back: {hint}"
        );
        assert_eq!(extversion(&mut client), current);
    }
    let rows: i64 = client
        .query_one("SELECT count(*) FROM guildstats.raw_heartbeats", &[])
        .expect("count")
        .get(0);
    assert_eq!(rows, 1);
}

#[test]
fn the_symbol_parser_reads_pgrx_and_hand_written_declarations() {
    let sql = "CREATE FUNCTION a() RETURNS int AS 'MODULE_PATHNAME', 'gs_a' LANGUAGE C;\n\
               CREATE FUNCTION \"b\"() RETURNS int\nLANGUAGE c\nAS 'MODULE_PATHNAME',\n   'b_wrapper';\n\
               -- the same symbol twice counts once\n\
               CREATE FUNCTION c() RETURNS int AS 'MODULE_PATHNAME', 'gs_a' LANGUAGE C;";
    assert_eq!(c_symbols(sql), vec!["b_wrapper", "gs_a"]);
}

/// A point amount the rollups cannot sum (here -2^63, whose negation is no bigint) or a reason
/// too long for member_points_daily's key, stored under a release that accepted them, is moved
/// to quarantine by the upgrade with its reason, and the builders run again; an ordinary
/// transaction stays where it was.
#[test]
fn the_upgrade_quarantines_point_transactions_the_rollups_cannot_take() {
    let Some(cluster) = Cluster::from_env("upgrade_point_amounts") else {
        return;
    };
    for release in releases() {
        let db = TestDb::create_version(&cluster, "upgrade_amounts", Some(&release));
        let mut client = db.connect();
        client
            .batch_execute(
                "INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key)
                 VALUES (1, 10, -9223372036854775808, '2026-03-01 20:00+00', 'huge'),
                        (1, 11, 25, '2026-03-01 20:00+00', 'ordinary');
                 INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
                 VALUES (1, 12, 5, repeat('r', 1025), '2026-03-01 20:00+00', 'wordy')",
            )
            .expect("the old release takes the rows");
        client
            .batch_execute("ALTER EXTENSION guildstats UPDATE")
            .unwrap_or_else(|e| panic!("[from {release}] upgrade: {}", db_message(&e)));
        let kept: Vec<String> = client
            .query(
                "SELECT tx_key FROM guildstats.raw_point_transactions ORDER BY tx_key",
                &[],
            )
            .expect("raw rows")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(kept, ["ordinary"], "[from {release}]");
        let rows = client
            .query(
                "SELECT user_id, row_data ->> 'tx_key', reason FROM guildstats.quarantine
                  WHERE source_table = 'raw_point_transactions' ORDER BY user_id",
                &[],
            )
            .expect("quarantined rows");
        let got: Vec<(Option<i64>, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(got.len(), 2, "[from {release}] {got:?}");
        assert_eq!((got[0].0, got[0].1.as_str()), (Some(10), "huge"));
        assert!(
            got[0].2.starts_with(
                "raw_point_transactions.amount = -9223372036854775808 is beyond 10^15"
            ),
            "[from {release}] {}",
            got[0].2
        );
        assert_eq!((got[1].0, got[1].1.as_str()), (Some(12), "wordy"));
        assert!(
            got[1]
                .2
                .starts_with("raw_point_transactions.reason has 1025 bytes, more than 1024"),
            "[from {release}] {}",
            got[1].2
        );
        let failed: i64 = client
            .query_one(
                "SELECT count(*) FROM guildstats.build_all() WHERE status NOT LIKE 'ok%'",
                &[],
            )
            .expect("build_all")
            .get(0);
        assert_eq!(
            failed, 0,
            "[from {release}] every builder runs after the upgrade"
        );
    }
}
