//! Raw rows and settings survive `pg_dump` -> `pg_restore` into a new database: the extension
//! marks its data tables (and their identity sequences) with pg_extension_config_dump.

use guildstats_e2e::{run_ok, sample_insert, Bounded, Cluster, TestDb};
use guildstats_ingest::raw_tables;

fn fingerprint(client: &mut postgres::Client, table: &str) -> (i64, String) {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')
                 FROM guildstats.{table} t"
            ),
            &[],
        )
        .unwrap_or_else(|e| panic!("fingerprint of {table}: {e}"));
    (row.get(0), row.get(1))
}

#[test]
fn rows_survive_dump_and_restore() {
    let Some(cluster) = Cluster::from_env("dump_restore") else {
        return;
    };
    let source = TestDb::create(&cluster, "dump_src");
    let mut client = source.connect();
    for table in raw_tables::ALL {
        client
            .execute(&sample_insert(&table), &[])
            .expect("sample row");
    }
    client
        .batch_execute(
            "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
             SELECT 1, g % 50, CASE WHEN g % 3 = 0 THEN NULL ELSE 100 + g % 4 END,
                    timestamptz '2026-03-02 00:00+00' + g * interval '37 seconds', g % 5 = 0, false
             FROM generate_series(1, 2000) g;
             INSERT INTO guildstats.settings (guild_id, session_cap) VALUES (NULL, '6 hours');
             INSERT INTO guildstats.settings (guild_id, calendar_time_zone, ignored_channel_ids)
             VALUES (1, 'Europe/Berlin', '{103}');
             INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, name, channel_id, status)
             VALUES (1, 5000, '2026-03-02 00:10+00', 'Game night', 100, 'active'),
                    (1, 5000, '2026-03-02 02:00+00', 'Game night', 100, 'completed');
             SELECT * FROM guildstats.build_all();",
        )
        .expect("more rows, and the builders' tables");
    // A small valid round file, so that the ET tables have rows too.
    let extended = vec!["1"; 38].join("\t");
    let round = format!(
        "srv\\supply\\legacy3\\1\\1\\2\\10:00\\7:00\nABCDEF01\\^1Tester\\0\\1\\1 3 5 1 0 0 \t{extended}\n"
    );
    client
        .execute(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
             VALUES ('2026-03-01-210000-supply-round-1.txt', 'test', $1)",
            &[&round.as_bytes()],
        )
        .expect("a valid round file");
    // Inserting imports nothing; the builders do.
    client
        .batch_execute("SELECT * FROM guildstats.import_et_rounds()")
        .expect("import");

    let dump_file = std::env::temp_dir().join(format!("{}.dump", source.name));
    run_ok(cluster.command("pg_dump").args([
        "-Fc",
        "-f",
        dump_file.to_str().expect("utf-8 path"),
        &source.name,
    ]));

    let target_name = format!("{}_restored", source.name);
    let mut admin = cluster.connect("postgres", "postgres");
    admin
        .batch_execute(&format!("CREATE DATABASE {target_name}"))
        .expect("create target");
    let restore = cluster
        .command("pg_restore")
        .args(["-d", &target_name, "--exit-on-error"])
        .arg(&dump_file)
        .bounded_output()
        .expect("run pg_restore");
    let mut target = cluster.connect(&target_name, "postgres");

    let mut tables: Vec<&str> = raw_tables::ALL.iter().map(|t| t.name).collect();
    tables.extend([
        "settings",
        "et_rounds",
        "et_player_rounds",
        "et_weapon_rounds",
        "et_matches",
        "et_sessions",
        "build_progress",
        "members",
        "voice_sessions",
        "voice_build_guilds",
        "events",
        "event_attendance",
        "member_voice_daily",
        "member_engagement_weekly",
        "member_monthly_status",
    ]);
    // voice_session_changes is marked too, but build_all() leaves that queue empty.
    let compared: Vec<_> = tables
        .iter()
        .map(|table| {
            (
                *table,
                fingerprint(&mut client, table),
                fingerprint(&mut target, table),
            )
        })
        .collect();
    // New rows in the restored database continue the arrival order instead of colliding.
    let next_insert = target.execute(
        "INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at) VALUES ('discord', 1, now())",
        &[],
    );
    drop(target);
    admin
        .batch_execute(&format!("DROP DATABASE {target_name} WITH (FORCE)"))
        .expect("drop target");
    let _ = std::fs::remove_file(&dump_file);

    assert!(
        restore.status.success(),
        "pg_restore failed: {}",
        String::from_utf8_lossy(&restore.stderr)
    );
    for (table, before, after) in compared {
        assert!(before.0 > 0, "{table} had no rows to dump");
        assert_eq!(before, after, "{table} differs after dump and restore");
    }
    next_insert.expect("insert after restore (identity sequence restored)");
}
