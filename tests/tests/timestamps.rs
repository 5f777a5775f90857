//! The timestamp rule of the raw tables (docs/sql-reference.md, "Timestamps at the door"), table
//! by table and as the ingest role: impossible times are refused with SQLSTATE 23514 naming the
//! column, rows dated too far ahead of their arrival go to quarantine, and the builders build
//! everything else. Issue 10, items 3 to 5.

use guildstats_e2e::{apply_roles_script, db_message, login_role, sample_insert, Cluster, TestDb};
use guildstats_ingest::raw_tables;
use postgres::Client;

/// Every timestamptz column of every raw table that a client supplies (the database's own
/// received_at and imported_at excepted), read from the catalog so that a new table or column
/// cannot slip past the rule.
fn contract_timestamps(owner: &mut Client) -> Vec<(String, String)> {
    owner
        .query(
            "SELECT c.relname::text, a.attname::text
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
              WHERE c.relnamespace = 'guildstats'::regnamespace AND c.relkind = 'r'
                AND c.relname LIKE 'raw\\_%' AND a.attnum > 0 AND NOT a.attisdropped
                AND a.atttypid = 'timestamptz'::regtype
                AND a.attname NOT IN ('received_at', 'imported_at')
              ORDER BY 1, 2",
            &[],
        )
        .expect("raw timestamp columns")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The columns that date a row (the quarantine trigger's argument), per raw table.
fn dating_column(owner: &mut Client, table: &str) -> Option<String> {
    owner
        .query_opt(
            "SELECT t.tgargs FROM pg_trigger t
              WHERE t.tgrelid = ('guildstats.' || $1)::regclass AND t.tgname = $1 || '_quarantine_future'",
            &[&table],
        )
        .expect("quarantine trigger")
        .map(|r| {
            let args: Vec<u8> = r.get(0);
            String::from_utf8_lossy(&args)
                .trim_end_matches('\0')
                .to_string()
        })
}

/// An INSERT of the table's sample row (stored by the owner first) with `column` set to `value`
/// (an SQL expression evaluated by the owner now), naming every column a client may set.
fn insert_with(owner: &mut Client, table: &str, column: &str, value: &str) -> String {
    owner
        .query_one(
            &format!(
                "SELECT format('INSERT INTO guildstats.%I (%s) VALUES (%s)', $1::text,
                               string_agg(quote_ident(f.key), ', ' ORDER BY f.key),
                               string_agg(quote_nullable(f.value), ', ' ORDER BY f.key))
                   FROM (SELECT * FROM guildstats.{table} LIMIT 1) r,
                        jsonb_each_text((to_jsonb(r) - ARRAY['ingest_id', 'received_at', 'sha256', 'size_bytes',
                                                              'imported_at', 'import_error', 'import_warning'])
                                        || jsonb_build_object($2::text, {value})) f"
            ),
            &[&table, &column],
        )
        .unwrap_or_else(|e| panic!("statement for {table}.{column}: {}", db_message(&e)))
        .get(0)
}

fn seed_samples(owner: &mut Client) {
    for table in raw_tables::ALL {
        owner
            .execute(&sample_insert(&table), &[])
            .unwrap_or_else(|e| panic!("{}: {}", table.name, db_message(&e)));
    }
}

#[test]
fn impossible_timestamps_are_refused_table_by_table() {
    let Some(cluster) = Cluster::from_env("timestamps_refused") else {
        return;
    };
    let db = TestDb::create(&cluster, "timestamps_refused");
    apply_roles_script(&cluster, &db);
    login_role(&cluster, "e2e_ts_ingester", "guildstats_ingest");
    let mut owner = db.connect();
    let mut ingester = db.connect_as("e2e_ts_ingester");
    seed_samples(&mut owner);

    let columns = contract_timestamps(&mut owner);
    // 13 raw tables, raw_scheduled_events with three: a column lost from the catalog query
    // would make this test prove less.
    assert_eq!(columns.len(), 15, "{columns:?}");
    for (table, column) in &columns {
        let constraint = format!("{table}_{column}_plausible");
        for bad in [
            "'infinity'",
            "'-infinity'",
            "'294276-01-01 00:00:00+00'",
            "'1999-12-31 23:59:59.999999+00'",
            "'2100-01-01 00:00:00+00'",
            "'0001-01-01 00:00:00+00 BC'",
        ] {
            let insert = insert_with(&mut owner, table, column, &format!("{bad}::timestamptz"));
            let err = ingester
                .execute(&insert, &[])
                .expect_err(&format!("{table}.{column} = {bad} must be refused"));
            let message = db_message(&err);
            assert!(
                message.starts_with("23514:") && message.contains(&constraint),
                "{table}.{column} = {bad}: {message}"
            );
        }
        // The bounds themselves: the first instant is in, and so is the last before 2100.
        for good in [
            "'2000-01-01 00:00:00+00'",
            "'2099-12-31 23:59:59.999999+00'",
        ] {
            let insert = insert_with(&mut owner, table, column, &format!("{good}::timestamptz"));
            // A far-future time may go to quarantine, but it is never refused.
            ingester
                .execute(&format!("{insert} ON CONFLICT DO NOTHING"), &[])
                .unwrap_or_else(|e| panic!("{table}.{column} = {good}: {}", db_message(&e)));
        }
    }
}

#[test]
fn rows_dated_ahead_of_their_arrival_go_to_quarantine() {
    let Some(cluster) = Cluster::from_env("timestamps_quarantine") else {
        return;
    };
    let db = TestDb::create(&cluster, "timestamps_quarantine");
    apply_roles_script(&cluster, &db);
    login_role(&cluster, "e2e_ts_ingester", "guildstats_ingest");
    let mut owner = db.connect();
    let mut ingester = db.connect_as("e2e_ts_ingester");
    seed_samples(&mut owner);

    let count = |owner: &mut Client, sql: &str| -> i64 {
        owner
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {}", db_message(&e)))
            .get(0)
    };
    let mut dated_tables = 0;
    for (table, column) in contract_timestamps(&mut owner) {
        let dating = dating_column(&mut owner, &table);
        let far = insert_with(&mut owner, &table, &column, "now() + interval '30 days'");
        let near = insert_with(&mut owner, &table, &column, "now() + interval '1 hour'");
        // Alone in the table, so that the near row cannot collide with the sample's key.
        owner
            .batch_execute(&format!("DELETE FROM guildstats.{table}"))
            .expect("empty the table");
        let stored = ingester
            .execute(&far, &[])
            .unwrap_or_else(|e| panic!("{table}.{column} far: {}", db_message(&e)));
        let replayed = ingester
            .execute(&format!("{far} ON CONFLICT DO NOTHING"), &[])
            .unwrap_or_else(|e| panic!("{table}.{column} far, again: {}", db_message(&e)));
        let held = count(
            &mut owner,
            &format!(
                "SELECT count(*) FROM guildstats.quarantine
                  WHERE source_table = '{table}' AND reason LIKE '{table}.{column} = % after the row arrived %'"
            ),
        );
        if dating.as_deref() == Some(column.as_str()) {
            dated_tables += 1;
            assert_eq!(
                (stored, replayed, held),
                (0, 0, 1),
                "{table}.{column}: a row 30 days ahead is set aside once"
            );
            assert_eq!(
                count(
                    &mut owner,
                    &format!("SELECT count(*) FROM guildstats.{table}")
                ),
                0,
                "{table}: nothing stored"
            );
            // The row is kept whole: its own time and the rest of its columns.
            assert_eq!(
                count(
                    &mut owner,
                    &format!(
                        "SELECT count(*) FROM guildstats.quarantine
                          WHERE source_table = '{table}'
                            AND (row_data ->> '{column}')::timestamptz > now() + interval '29 days'
                            AND NOT row_data ? 'ingest_id' AND NOT row_data ? 'received_at'"
                    )
                ),
                1,
                "{table}: row_data"
            );
        } else {
            // An announced time may lie ahead: it is stored.
            assert_eq!(
                (stored, held),
                (1, 0),
                "{table}.{column} is not the row's own time"
            );
            owner
                .batch_execute(&format!("DELETE FROM guildstats.{table}"))
                .expect("empty the table");
        }
        assert_eq!(
            ingester
                .execute(&near, &[])
                .unwrap_or_else(|e| panic!("{table}.{column} near: {}", db_message(&e))),
            1,
            "{table}.{column}: an hour ahead is within the default tolerance of a day"
        );
    }
    assert_eq!(dated_tables, 13, "every raw table has its dating column");

    // The tolerance is per guild, from settings: two hours for guild 1, a day elsewhere.
    owner
        .batch_execute(
            "INSERT INTO guildstats.settings (guild_id, future_tolerance) VALUES (1, '2 hours');
             DELETE FROM guildstats.quarantine;",
        )
        .expect("settings");
    for (guild, expect_stored) in [(1, 0), (2, 1)] {
        let stored = ingester
            .execute(
                &format!(
                    "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
                     VALUES ({guild}, 77, 100, now() + interval '3 hours')"
                ),
                &[],
            )
            .expect("insert");
        assert_eq!(stored, expect_stored, "guild {guild}");
    }
    let health: (String, String) = owner
        .query_one(
            "SELECT status, detail FROM guildstats.health() WHERE check_name = 'quarantined rows'",
            &[],
        )
        .map(|r| (r.get(0), r.get(1)))
        .expect("health");
    assert_eq!(health.0, "found");
    assert!(
        health.1.starts_with("1 raw rows") && health.1.contains("raw_voice_events: 1"),
        "{}",
        health.1
    );
    // erase_member forgets quarantined rows too, those that name the member only inside
    // row_data (a snapshot's voice states) included.
    assert_eq!(
        ingester
            .execute(
                "INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states)
                 VALUES (1, now() + interval '3 hours', '[{\"user_id\": \"77\", \"channel_id\": 100}]')",
                &[],
            )
            .expect("snapshot"),
        0
    );
    assert_eq!(
        count(&mut owner, "SELECT count(*) FROM guildstats.quarantine"),
        2
    );
    owner
        .query(
            "SELECT * FROM guildstats.erase_member(guild_id => 1, user_id => 77)",
            &[],
        )
        .expect("erase");
    assert_eq!(
        count(&mut owner, "SELECT count(*) FROM guildstats.quarantine"),
        0
    );
}

/// What used to stop build_all() for every guild (issue 10, items 3 to 5), tried through the
/// door: nothing of it gets in, and the honest rows around it build as if it had never come.
#[test]
fn bad_timestamps_never_stop_the_builders() {
    let Some(cluster) = Cluster::from_env("timestamps_builders") else {
        return;
    };
    let db = TestDb::create(&cluster, "timestamps_builders");
    let mut owner = db.connect();
    owner
        .batch_execute(
            "INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
             SELECT 'discord', 1, t FROM generate_series(timestamptz '2026-03-01 19:58+00',
                                                        '2026-03-01 21:10+00', '1 minute') t;
             INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
               (1, 10, 100, '2026-03-01 20:00+00'), (1, 10, NULL, '2026-03-01 21:00+00');
             INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at)
             VALUES (1, 200, 10, 1, '2026-03-01 20:30+00');",
        )
        .expect("honest rows");
    for hostile in [
        "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES (1, 10, 100, 'infinity')",
        "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES (1, 10, 100, '294276-01-01 00:00+00')",
        "INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES (1, '-infinity', '[{\"user_id\": 10, \"channel_id\": 100}]')",
        "INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES (1, 'infinity', '[]')",
        "INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES (1, 200, 10, 2, '-infinity')",
        "INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at) VALUES ('discord', 1, 'infinity')",
        "INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts) VALUES (1, 10, 'join', '-infinity')",
        "INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key) VALUES (1, 10, 5, 'infinity', 'k')",
        "INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, status) VALUES (1, 9, 'infinity', 'active')",
    ] {
        let err = owner
            .execute(hostile, &[])
            .expect_err(&format!("must be refused: {hostile}"));
        assert!(db_message(&err).starts_with("23514:"), "{hostile}: {}", db_message(&err));
    }
    // Plausible but far ahead: a clock decades off. Stored, it would become the guild's "now".
    for ahead in [
        "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES (1, 11, 100, '2099-06-01 00:00+00')",
        "INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at) VALUES ('discord', 1, '2099-06-01 00:00+00')",
        "INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES (1, 200, 11, 3, '2099-06-01 00:00+00')",
    ] {
        assert_eq!(owner.execute(ahead, &[]).expect(ahead), 0, "{ahead}");
    }

    let statuses: Vec<(String, String)> = owner
        .query("SELECT builder, status FROM guildstats.build_all()", &[])
        .unwrap_or_else(|e| panic!("build_all: {}", db_message(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let builders: i64 = owner
        .query_one("SELECT count(*) FROM guildstats.builder_locks", &[])
        .expect("builder_locks")
        .get(0);
    assert_eq!(
        statuses.len() as i64,
        builders,
        "one row per builder: {statuses:?}"
    );
    assert!(statuses.iter().all(|(_, s)| s == "ok"), "{statuses:?}");

    // One session, ended by its leave: the year-294276 event neither saturated it nor took the
    // leave's place, and the guild's horizon is its last honest heartbeat.
    let sessions: Vec<(String, Option<String>, Option<String>)> = owner
        .query(
            "SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                    to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), end_reason
               FROM guildstats.voice_sessions ORDER BY started_at",
            &[],
        )
        .expect("sessions")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        sessions,
        vec![(
            "2026-03-01 20:00".to_string(),
            Some("2026-03-01 21:00".to_string()),
            Some("leave".to_string())
        )]
    );
    let horizon: String = owner
        .query_one(
            "SELECT to_char(horizon AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM guildstats.voice_build_guilds WHERE guild_id = 1",
            &[],
        )
        .expect("horizon")
        .get(0);
    assert_eq!(horizon, "2026-03-01 21:10");
    // Rollups: the hour of voice on its day, the one message in its month, nothing else.
    let (days, seconds, months): (i64, f64, i64) = owner
        .query_one(
            "SELECT (SELECT count(*) FROM guildstats.member_voice_daily),
                    (SELECT sum(active_seconds) FROM guildstats.member_voice_daily),
                    (SELECT count(*) FROM guildstats.member_monthly_status)",
            &[],
        )
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .expect("rollups");
    assert_eq!((days, seconds, months), (1, 3600.0, 1));
    let members: i64 = owner
        .query_one("SELECT count(*) FROM guildstats.members", &[])
        .expect("members")
        .get(0);
    assert_eq!(members, 1, "user 11 exists only in quarantine");
}

/// A 0.1.0 database holding rows the new rule refuses upgrades anyway: they move to quarantine
/// with their reason (none is lost), the constraints are in place, and the builders run.
#[test]
fn the_upgrade_sets_0_1_0_rows_with_bad_timestamps_aside() {
    let Some(cluster) = Cluster::from_env("timestamps_upgrade") else {
        return;
    };
    let name = format!("e2e_timestamps_upgrade_{}", std::process::id());
    let mut admin = cluster.connect("postgres", "postgres");
    let available: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extension_versions
                             WHERE name = 'guildstats' AND version = '0.1.0')",
            &[],
        )
        .expect("available versions")
        .get(0);
    if !available {
        guildstats_e2e::skip_or_fail(
            "timestamps_upgrade",
            "guildstats--0.1.0.sql is not installed beside the extension (scripts/lib.sh gs_install_extension copies extension/releases/)",
        );
        return;
    }
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    // Dropped with the test, like every TestDb.
    let db = TestDb {
        cluster: cluster.clone(),
        name,
    };
    let mut owner = db.connect();
    owner
        .batch_execute(
            "CREATE EXTENSION guildstats VERSION '0.1.0';
             INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
               (1, 200, 10, 1, '2026-03-01 20:30+00'), (1, 200, 10, 2, '-infinity');
             INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
               (1, 10, 100, '2026-03-01 20:00+00'), (1, 10, NULL, '2026-03-01 21:00+00'),
               (1, 10, 100, '294276-01-01 00:00+00'), (1, 11, 100, 'infinity');
             INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at) VALUES (1, 'infinity');
             INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, scheduled_start)
               VALUES (1, 9, '2026-03-01 19:00+00', 'infinity');
             INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at) VALUES
               ('discord', 1, '2026-03-01 21:05+00'), ('discord', 1, '2099-06-01 00:00+00');
             ALTER EXTENSION guildstats UPDATE TO '0.2.0';",
        )
        .unwrap_or_else(|e| panic!("upgrade: {}", db_message(&e)));

    let held: Vec<(String, String)> = owner
        .query(
            "SELECT source_table, reason FROM guildstats.quarantine ORDER BY source_table, reason",
            &[],
        )
        .expect("quarantine")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let tables: Vec<&str> = held.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tables,
        [
            "raw_heartbeats",
            "raw_messages",
            "raw_scheduled_events",
            "raw_voice_events",
            "raw_voice_events",
            "raw_voice_snapshots"
        ],
        "{held:?}"
    );
    for (table, reason) in &held {
        assert!(
            reason.starts_with(&format!("{table}."))
                && reason.ends_with("(set aside by the upgrade to 0.2.0)"),
            "{reason}"
        );
    }
    let kept: i64 = owner
        .query_one(
            "SELECT (SELECT count(*) FROM guildstats.raw_messages) + (SELECT count(*) FROM guildstats.raw_voice_events)
                  + (SELECT count(*) FROM guildstats.raw_voice_snapshots) + (SELECT count(*) FROM guildstats.raw_scheduled_events)
                  + (SELECT count(*) FROM guildstats.raw_heartbeats)",
            &[],
        )
        .expect("kept")
        .get(0);
    assert_eq!(kept + held.len() as i64, 10, "every row is somewhere");
    let constraints: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_constraint
              WHERE connamespace = 'guildstats'::regnamespace AND conname LIKE 'raw\\_%\\_plausible'",
            &[],
        )
        .expect("constraints")
        .get(0);
    assert_eq!(constraints, 15);
    let statuses: Vec<String> = owner
        .query("SELECT status FROM guildstats.build_all()", &[])
        .unwrap_or_else(|e| panic!("build_all after the upgrade: {}", db_message(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(statuses.iter().all(|s| s == "ok"), "{statuses:?}");
}

#[test]
fn health_counts_a_flood_of_quarantined_rows_up_to_a_cap() {
    let Some(cluster) = Cluster::from_env("timestamps_quarantine_cap") else {
        return;
    };
    let db = TestDb::create(&cluster, "timestamps_quarantine_cap");
    let mut owner = db.connect();
    // 100,001 rows of one table and 3 of another: the first is counted up to the cap (an exact
    // count of millions would cost seconds on every dashboard refresh), the second exactly.
    owner
        .batch_execute(
            "INSERT INTO guildstats.quarantine (source_table, guild_id, row_data, row_hash, reason)
             SELECT 'raw_messages', 1, '{}', sha256(i::text::bytea), 'test' FROM generate_series(1, 100001) i;
             INSERT INTO guildstats.quarantine (source_table, guild_id, row_data, row_hash, reason)
             SELECT 'raw_heartbeats', 1, '{}', sha256(i::text::bytea), 'test' FROM generate_series(1, 3) i;",
        )
        .expect("quarantine rows");
    let (status, detail): (String, String) = owner
        .query_one(
            "SELECT status, detail FROM guildstats.health() WHERE check_name = 'quarantined rows'",
            &[],
        )
        .map(|r| (r.get(0), r.get(1)))
        .expect("health");
    assert_eq!(status, "found");
    assert!(
        detail.starts_with("over 100003 raw rows")
            && detail.ends_with("(raw_heartbeats: 3, raw_messages: over 100000)"),
        "{detail}"
    );
}
