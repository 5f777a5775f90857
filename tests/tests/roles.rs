//! sql/ops/roles.sql: the ingest role can only INSERT into the raw tables' contract columns (and
//! read the names of the stored ET files); the reader reads; the admin runs everything. Run
//! twice to prove it is re-runnable.

use guildstats_e2e::{
    apply_roles_script, db_message, login_role, sample_insert, sample_values, Cluster, TestDb,
};
use guildstats_ingest::raw_tables;

#[test]
fn ingest_role_can_only_insert_into_raw_tables() {
    let Some(cluster) = Cluster::from_env("roles_ingest") else {
        return;
    };
    let db = TestDb::create(&cluster, "roles_ingest");
    apply_roles_script(&cluster, &db);
    login_role(&cluster, "e2e_ingester", "guildstats_ingest");
    let mut ingester = db.connect_as("e2e_ingester");

    for table in raw_tables::ALL {
        // The columns the database assigns are out of the ingest role's reach (issue 10, item
        // 6): an ingest_id ahead of the sequence would later make an honest insert collide and
        // vanish, and an imported_at would keep a file from ever being imported.
        for (column, value) in [
            ("ingest_id", "9000000000"),
            ("received_at", "now()"),
            ("imported_at", "now()"),
            ("import_error", "'set by a client'"),
            ("import_warning", "'set by a client'"),
        ] {
            if column.starts_with("import") && table.name != raw_tables::RAW_ET_STATS_FILES.name {
                continue;
            }
            let insert = format!(
                "INSERT INTO {} ({}, {column}) VALUES ({}, {value})",
                table.qualified_name(),
                table.contract_columns.join(", "),
                sample_values(table.name)
            );
            let err = ingester
                .execute(&insert, &[])
                .expect_err(&format!("ingest role must not set {}.{column}", table.name));
            assert!(
                db_message(&err).contains("permission denied"),
                "{insert}: {}",
                db_message(&err)
            );
        }
        let insert = sample_insert(&table);
        assert_eq!(
            ingester.execute(&insert, &[]).expect(&insert),
            1,
            "{}",
            table.name
        );
        assert_eq!(
            ingester.execute(&insert, &[]).expect("replay"),
            0,
            "{} replay",
            table.name
        );
        let name = table.qualified_name();
        // The SFTP puller may read the names of the stats files it stored (to resume), never
        // their contents; every other raw table is write-only.
        let read_forbidden = if table.name == raw_tables::RAW_ET_STATS_FILES.name {
            let names: i64 = ingester
                .query_one(
                    &format!("SELECT count(DISTINCT (file_name, source)) FROM {name}"),
                    &[],
                )
                .unwrap_or_else(|e| panic!("ingest role reads stored names: {}", db_message(&e)))
                .get(0);
            assert_eq!(names, 1);
            format!("SELECT content, sha256 FROM {name}")
        } else {
            format!("SELECT count(*) FROM {name}")
        };
        for forbidden in [
            read_forbidden,
            format!("UPDATE {name} SET received_at = now()"),
            format!("DELETE FROM {name}"),
            format!("TRUNCATE {name}"),
        ] {
            let err = ingester
                .batch_execute(&forbidden)
                .expect_err(&format!("ingest role must not run: {forbidden}"));
            assert!(
                db_message(&err).contains("permission denied"),
                "{forbidden}: {}",
                db_message(&err)
            );
        }
    }
    // The Discord bot reads the opt-out list of every guild; it cannot change it.
    let mut owner = db.connect();
    owner
        .batch_execute("INSERT INTO guildstats.opt_out (guild_id, user_id) VALUES (1, 42), (2, 43)")
        .expect("opt-outs");
    let listed: i64 = ingester
        .query_one("SELECT count(*) FROM guildstats.opt_out", &[])
        .unwrap_or_else(|e| panic!("ingest role reads opt_out: {}", db_message(&e)))
        .get(0);
    assert_eq!(listed, 2);
    // The poller reads the servers an admin listed; it cannot change the list.
    ingester
        .query(
            "SELECT address, protocol FROM guildstats.game_servers WHERE enabled",
            &[],
        )
        .unwrap_or_else(|e| panic!("ingest role reads game_servers: {}", db_message(&e)));
    for forbidden in [
        "SELECT * FROM guildstats.settings",
        "INSERT INTO guildstats.settings (guild_id, session_cap) VALUES (1, '1 hour')",
        "INSERT INTO guildstats.game_servers (address, protocol) VALUES ('x:1', 'q3')",
        "DELETE FROM guildstats.game_servers",
        "SELECT * FROM guildstats.settings_for(1)",
        "SELECT guildstats.et_clean_name('^1x')",
        "SELECT * FROM guildstats.effective_settings",
        "CREATE TABLE guildstats.sneaky (x int)",
        "INSERT INTO guildstats.opt_out (guild_id, user_id) VALUES (1, 44)",
        "DELETE FROM guildstats.opt_out",
        "INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('e2e_ingester', NULL)",
    ] {
        let err = ingester
            .batch_execute(forbidden)
            .expect_err(&format!("ingest role must not run: {forbidden}"));
        assert!(
            db_message(&err).contains("permission denied"),
            "{forbidden}: {}",
            db_message(&err)
        );
    }
}

#[test]
fn reader_reads_everything_and_writes_nothing() {
    let Some(cluster) = Cluster::from_env("roles_reader") else {
        return;
    };
    let db = TestDb::create(&cluster, "roles_reader");
    apply_roles_script(&cluster, &db);
    login_role(&cluster, "e2e_reader", "guildstats_reader");
    let mut owner = db.connect();
    owner
        .execute(&sample_insert(&raw_tables::RAW_MESSAGES), &[])
        .expect("seed");
    // Readers see the guilds they are bound to; this one every guild.
    owner
        .execute(
            "INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('e2e_reader', NULL)",
            &[],
        )
        .expect("bind the reader");
    let mut reader = db.connect_as("e2e_reader");
    let rows: i64 = reader
        .query_one("SELECT count(*) FROM guildstats.raw_messages", &[])
        .unwrap_or_else(|e| panic!("reader selects: {}", db_message(&e)))
        .get(0);
    assert_eq!(rows, 1);
    reader
        .query("SELECT * FROM guildstats.effective_settings", &[])
        .unwrap_or_else(|e| panic!("reader reads views: {}", db_message(&e)));
    let clean: String = reader
        .query_one("SELECT guildstats.et_clean_name('^1Red')", &[])
        .unwrap_or_else(|e| panic!("reader runs functions: {}", db_message(&e)))
        .get(0);
    assert_eq!(clean, "Red");
    let err = reader
        .batch_execute(&sample_insert(&raw_tables::RAW_MESSAGES))
        .expect_err("reader must not insert");
    assert!(
        db_message(&err).contains("permission denied"),
        "{}",
        db_message(&err)
    );
}

#[test]
fn admin_changes_settings() {
    let Some(cluster) = Cluster::from_env("roles_admin") else {
        return;
    };
    let db = TestDb::create(&cluster, "roles_admin");
    apply_roles_script(&cluster, &db);
    login_role(&cluster, "e2e_admin", "guildstats_admin");
    let mut admin = db.connect_as("e2e_admin");
    admin
        .batch_execute(
            "INSERT INTO guildstats.settings (guild_id, event_grace) VALUES (1, '15 minutes')",
        )
        .expect("admin writes settings");
    let grace: String = admin
        .query_one(
            "SELECT event_grace::text FROM guildstats.settings_for(1)",
            &[],
        )
        .expect("admin reads settings")
        .get(0);
    assert_eq!(grace, "00:15:00");

    // The admin runs the builders, on rows the owner (an ingester stand-in) wrote.
    let mut owner = db.connect();
    owner
        .batch_execute(
            "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
             VALUES (1, 10, 100, '2026-03-01 20:00+00'), (1, 10, NULL, '2026-03-01 21:00+00')",
        )
        .expect("raw rows");
    let statuses: Vec<String> = admin
        .query("SELECT status FROM guildstats.build_all()", &[])
        .unwrap_or_else(|e| panic!("admin runs build_all(): {}", db_message(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(statuses.iter().all(|s| s == "ok"), "{statuses:?}");
    let sessions: i64 = admin
        .query_one("SELECT count(*) FROM guildstats.voice_sessions", &[])
        .expect("admin reads sessions")
        .get(0);
    assert_eq!(sessions, 1);
}

#[test]
fn a_reader_bound_to_a_guild_sees_nothing_of_another() {
    let Some(cluster) = Cluster::from_env("roles_isolation") else {
        return;
    };
    let db = TestDb::create(&cluster, "roles_isolation");
    apply_roles_script(&cluster, &db);
    login_role(&cluster, "e2e_reader_one", "guildstats_reader");
    login_role(&cluster, "e2e_reader_unbound", "guildstats_reader");
    login_role(&cluster, "e2e_admin_iso", "guildstats_admin");
    let mut owner = db.connect();
    owner
        .batch_execute(
            "INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at)
             SELECT g, 100 * g, u, 10 * g + u, '2026-03-01 20:00+00'
               FROM generate_series(1, 2) g, generate_series(1, 3) u;
             INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('e2e_reader_one', 1);",
        )
        .expect("seed");
    let guilds_seen = |login: &str| -> Vec<i64> {
        let mut client = db.connect_as(login);
        let mut seen: Vec<i64> = Vec::new();
        for relation in [
            "guildstats.raw_messages",
            "guildstats.chat_activity_daily",
            "guildstats.activity_events",
        ] {
            for row in client
                .query(&format!("SELECT DISTINCT guild_id FROM {relation}"), &[])
                .unwrap_or_else(|e| panic!("{login} reads {relation}: {}", db_message(&e)))
            {
                seen.push(row.get(0));
            }
        }
        seen.sort_unstable();
        seen.dedup();
        seen
    };
    assert_eq!(guilds_seen("e2e_reader_one"), [1]);
    // Every relation with a guild_id in every guildstats schema, found by catalog, read as the
    // bound login: nothing of guild 2 anywhere, while the owner sees guild 2 in many of them.
    owner
        .batch_execute(
            "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
             SELECT g, 1, c, t FROM generate_series(1, 2) g,
                    (VALUES (100, timestamptz '2026-03-01 20:00+00'), (NULL, '2026-03-01 21:00+00')) v(c, t);
             INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts)
             SELECT g, 1, 'join', '2026-02-01 12:00+00' FROM generate_series(1, 2) g;
             SELECT * FROM guildstats.build_all();",
        )
        .expect("more rows, built");
    let relations: Vec<String> = owner
        .query(
            "SELECT format('%I.%I', s.nspname, c.relname)
               FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
              WHERE s.nspname LIKE 'guildstats%' AND c.relkind IN ('r', 'p', 'v', 'm')
                AND has_table_privilege('e2e_reader_one', c.oid, 'SELECT')
                AND EXISTS (SELECT 1 FROM pg_attribute a
                             WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
              ORDER BY 1",
            &[],
        )
        .expect("relations")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(relations.len() > 20, "{relations:?}");
    let mut reader = db.connect_as("e2e_reader_one");
    let mut with_guild_2 = 0;
    for relation in &relations {
        let count = |client: &mut postgres::Client| -> i64 {
            client
                .query_one(
                    &format!("SELECT count(*) FROM {relation} WHERE guild_id = 2"),
                    &[],
                )
                .unwrap_or_else(|e| panic!("{relation}: {}", db_message(&e)))
                .get(0)
        };
        if count(&mut owner) > 0 {
            with_guild_2 += 1;
        }
        assert_eq!(
            count(&mut reader),
            0,
            "{relation} shows guild 2 to a guild 1 reader"
        );
    }
    assert!(with_guild_2 > 8, "too few relations have rows to hide");
    assert_eq!(guilds_seen("e2e_reader_unbound"), Vec::<i64>::new());
    assert_eq!(guilds_seen("e2e_admin_iso"), [1, 2]);
    // A reader cannot bind itself to more guilds.
    let err = db
        .connect_as("e2e_reader_one")
        .batch_execute(
            "INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('e2e_reader_one', 2)",
        )
        .expect_err("a reader must not change its bindings");
    assert!(
        db_message(&err).contains("permission denied"),
        "{}",
        db_message(&err)
    );
}

#[test]
fn command_role_runs_every_command_and_writes_only_through_command_link() {
    let Some(cluster) = Cluster::from_env("roles_commands") else {
        return;
    };
    let db = TestDb::create(&cluster, "roles_commands");
    apply_roles_script(&cluster, &db);
    apply_roles_script(&cluster, &db);
    login_role(&cluster, "e2e_commands", "guildstats_commands");
    login_role(&cluster, "e2e_reader_cmp", "guildstats_reader");
    let mut owner = db.connect();
    owner
        .batch_execute(
            "INSERT INTO guildstats.reader_guilds (role_name, guild_id)
             VALUES ('e2e_commands', 1), ('e2e_reader_cmp', 1);
             INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at)
             VALUES (1, 10, 5, 1, now() - interval '1 hour'), (2, 20, 6, 2, now() - interval '1 hour');
             INSERT INTO guildstats.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                    is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
             VALUES (1, 5, 100, now() - interval '2 hours', now() - interval '1 hour', 'leave', false, 'join', false, 0, 0),
                    (2, 6, 200, now() - interval '2 hours', now() - interval '1 hour', 'leave', false, 'join', false, 0, 0);",
        )
        .expect("seed");
    let mut commands = db.connect_as("e2e_commands");
    // Every command runs and answers (ok or a reason); none fails for lack of rights.
    for call in [
        "guildstats.command_last_session(1)",
        "guildstats.command_stats(1, player => 'x')",
        "guildstats.command_stats(1, user_id => 5)",
        "guildstats.command_top(1, 'messages', 'week')",
        "guildstats.command_top(1, 'kills')",
        "guildstats.command_link_candidates(1, 5, 'x')",
        "guildstats.command_link(1, 5, '0A26D447')",
        "guildstats.command_server(1)",
        "guildstats.command_voice(1, 5)",
        "guildstats.command_community(1)",
    ] {
        let ok: Option<String> = commands
            .query_one(&format!("SELECT ({call}) ->> 'ok'"), &[])
            .unwrap_or_else(|e| panic!("{call}: {}", db_message(&e)))
            .get(0);
        assert!(ok.is_some(), "{call}");
    }
    // Its guild's rows only: member 6 of guild 2 is not ranked.
    let rows: String = commands
        .query_one(
            "SELECT (guildstats.command_top(1, 'voice_hours', 'all') -> 'rows')::text",
            &[],
        )
        .expect("top")
        .get(0);
    assert!(
        rows.contains("\"user_id\": \"5\"") && !rows.contains("\"6\""),
        "{rows}"
    );
    let other: String = commands
        .query_one("SELECT guildstats.command_voice(2, 6) ->> 'ok'", &[])
        .expect("voice of another guild")
        .get(0);
    assert_eq!(
        other, "false",
        "guild 2's voice time is invisible to a login bound to guild 1"
    );
    // command_link for a guild the login is not bound to: refused.
    let err = commands
        .query_one("SELECT guildstats.command_link(2, 6, '0A26D447')", &[])
        .expect_err("not bound to guild 2");
    assert!(
        db_message(&err).contains("not bound"),
        "{}",
        db_message(&err)
    );

    // No write of its own: not the raw tables, not the links.
    for insert in [
        sample_insert(&raw_tables::RAW_MESSAGES),
        "INSERT INTO guildstats.et_guid_links (guid, guild_id, user_id) VALUES ('0A26D447', 1, 5)"
            .to_string(),
        "INSERT INTO guildstats.command_admins (guild_id, user_id) VALUES (1, 5)".to_string(),
    ] {
        let err = commands.batch_execute(&insert).expect_err(&insert);
        assert!(
            db_message(&err).contains("permission denied"),
            "{insert}: {}",
            db_message(&err)
        );
    }
    // It reads exactly what the reader reads, and executes what the reader executes plus
    // command_link, which the reader may not run.
    let differences: Vec<String> = owner
        .query(
            "SELECT format('%s %s', c.oid::regclass, p.privilege_type)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                    unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege_type)
              WHERE n.nspname LIKE 'guildstats%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                AND has_table_privilege('e2e_commands', c.oid, p.privilege_type)
                    <> has_table_privilege('e2e_reader_cmp', c.oid, p.privilege_type)
             UNION ALL
             SELECT format('%s EXECUTE', f.oid::regprocedure)
               FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
              WHERE n.nspname LIKE 'guildstats%'
                AND has_function_privilege('e2e_commands', f.oid, 'EXECUTE')
                    <> has_function_privilege('e2e_reader_cmp', f.oid, 'EXECUTE')
             ORDER BY 1",
            &[],
        )
        .expect("privileges")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        differences,
        ["guildstats.command_link(bigint,bigint,text,bigint) EXECUTE"]
    );
}
