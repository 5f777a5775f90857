//! The registry of builders (issue 13, item 1): guildstats.builders, the runner every builder
//! goes through, and build_all() in the order the registry's dependencies give.

use guildstats_e2e::{db_message, Cluster, TestDb};
use postgres::Client;

/// The builders this release ships, in the order build_all() must run them, each with the
/// builders it reads the output of. Written by hand: a new builder must be added here, with its
/// place worked out, or this test fails.
const EXPECTED_ORDER: [(&str, &[&str]); 8] = [
    ("import_et_rounds", &[]),
    ("build_et_ratings", &["import_et_rounds"]),
    ("build_members", &[]),
    ("build_voice_sessions", &[]),
    ("build_voice_copresence", &["build_voice_sessions"]),
    ("build_event_attendance", &["build_voice_sessions"]),
    ("build_game_sessions", &[]),
    (
        "build_rollups",
        &[
            "build_members",
            "build_voice_sessions",
            "build_event_attendance",
        ],
    ),
];

fn names(client: &mut Client, query: &str) -> Vec<String> {
    client
        .query(query, &[])
        .unwrap_or_else(|e| panic!("{query}: {}", db_message(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const SEED: &str = "
    INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
    SELECT 'discord', g, t FROM generate_series(timestamptz '2026-03-01 19:58+00',
                                                '2026-03-01 21:10+00', '1 minute') t, (VALUES (1), (2)) v(g);
    INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
      (1, 10, 100, '2026-03-01 20:00+00'), (1, 10, NULL, '2026-03-01 21:00+00'),
      (2, 20, 200, '2026-03-01 20:10+00'), (2, 20, NULL, '2026-03-01 20:40+00');
    INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
      (1, 300, 10, 1, '2026-03-01 20:30+00'), (2, 400, 20, 2, '2026-03-01 20:31+00');";

/// A step that always fails, owned (like the extension's) by the test's superuser.
const FAILING_STEP: &str = "
    CREATE FUNCTION public.failing_step(guild bigint, claims jsonb, full boolean) RETURNS jsonb
    LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the failing step failed on purpose'; END $$;";

#[test]
fn the_registry_runs_in_the_hand_written_dependency_order() {
    let Some(cluster) = Cluster::from_env("builders_order") else {
        return;
    };
    let db = TestDb::create(&cluster, "builders_order");
    let mut client = db.connect();
    let order: Vec<(String, Vec<String>)> = client
        .query(
            "SELECT name, depends_on FROM guildstats.builder_order() ORDER BY run_order",
            &[],
        )
        .unwrap_or_else(|e| panic!("builder_order: {}", db_message(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(String, Vec<String>)> = EXPECTED_ORDER
        .iter()
        .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert_eq!(order, expected);
    // The order holds by construction too: each builder after what it depends on.
    for (i, (name, deps)) in order.iter().enumerate() {
        for dep in deps {
            let at = order.iter().position(|(n, _)| n == dep).expect("known");
            assert!(at < i, "{name} runs before its dependency {dep}");
        }
    }
    // build_all() runs exactly that order.
    let ran = names(&mut client, "SELECT builder FROM guildstats.build_all()");
    let expected_names: Vec<String> = EXPECTED_ORDER.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(ran, expected_names);
}

#[test]
fn a_dependency_cycle_or_an_unknown_dependency_is_refused() {
    let Some(cluster) = Cluster::from_env("builders_cycle") else {
        return;
    };
    let db = TestDb::create(&cluster, "builders_cycle");
    let mut client = db.connect();
    // build_rollups reads build_members' output; making build_members read build_rollups' closes
    // a cycle.
    let err = client
        .execute(
            "UPDATE guildstats.builders SET depends_on = '{build_rollups}' WHERE name = 'build_members'",
            &[],
        )
        .expect_err("a cycle must be refused");
    let msg = db_message(&err);
    assert!(msg.contains("cycle"), "{msg}");
    assert!(
        msg.contains("build_members") && msg.contains("build_rollups"),
        "{msg}"
    );
    // A builder that depends on itself.
    client.batch_execute(FAILING_STEP).expect("step");
    let err = client
        .execute(
            "INSERT INTO guildstats.builders (name, reads, depends_on, per, step, counters)
             VALUES ('loop', '{guildstats.raw_messages}', '{loop}', 'all', 'public.failing_step(bigint, jsonb, boolean)', '{}')",
            &[],
        )
        .expect_err("a self-dependency must be refused");
    assert!(db_message(&err).contains("cycle"), "{}", db_message(&err));
    let err = client
        .execute(
            "INSERT INTO guildstats.builders (name, reads, depends_on, per, step, counters)
             VALUES ('orphan', '{guildstats.raw_messages}', '{no_such_builder}', 'all', 'public.failing_step(bigint, jsonb, boolean)', '{}')",
            &[],
        )
        .expect_err("an unknown dependency must be refused");
    assert!(
        db_message(&err).contains("depends on no_such_builder, which is not a builder"),
        "{}",
        db_message(&err)
    );
    // Nothing of it stayed: build_all() still runs every builder.
    let statuses = names(&mut client, "SELECT status FROM guildstats.build_all()");
    assert_eq!(statuses, vec!["ok".to_string(); EXPECTED_ORDER.len()]);
}

#[test]
fn a_failing_builder_keeps_the_others_progress_and_reports_its_error() {
    let Some(cluster) = Cluster::from_env("builders_failure") else {
        return;
    };
    let db = TestDb::create(&cluster, "builders_failure");
    let mut client = db.connect();
    client.batch_execute(SEED).expect("seed");
    client.batch_execute(FAILING_STEP).expect("step");
    client
        .batch_execute(
            "INSERT INTO guildstats.builders (name, reads, claims, per, step, counters)
             VALUES ('failing', '{guildstats.raw_messages}', '{raw_messages}', 'all',
                     'public.failing_step(bigint, jsonb, boolean)', '{}');
             INSERT INTO guildstats.builders (name, reads, depends_on, per, step, counters)
             VALUES ('after_failing', '{guildstats.raw_messages}', '{failing}', 'all',
                     'public.failing_step(bigint, jsonb, boolean)', '{}');",
        )
        .expect("register");
    let rows: Vec<(String, String)> = client
        .query("SELECT builder, status FROM guildstats.build_all()", &[])
        .unwrap_or_else(|e| panic!("build_all must not fail: {}", db_message(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let status = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {rows:?}"))
            .1
            .clone()
    };
    assert_eq!(
        status("failing"),
        "error: the failing step failed on purpose"
    );
    assert_eq!(status("after_failing"), "not run: failing failed");
    for (name, _) in EXPECTED_ORDER {
        assert_eq!(status(name), "ok", "{rows:?}");
    }
    // The failed builder's claim went with its work; the others kept theirs, and their output.
    let progress = names(
        &mut client,
        "SELECT DISTINCT builder FROM guildstats.build_progress ORDER BY 1",
    );
    assert!(!progress.contains(&"failing".to_string()), "{progress:?}");
    for name in ["build_members", "build_voice_sessions", "build_rollups"] {
        assert!(progress.contains(&name.to_string()), "{progress:?}");
    }
    let members: i64 = client
        .query_one("SELECT count(*) FROM guildstats.members", &[])
        .expect("members")
        .get(0);
    assert_eq!(members, 2);
    // Called alone, the failing builder raises its error, as any builder function does.
    let err = client
        .query("SELECT guildstats._run_builder('failing')", &[])
        .expect_err("the runner passes the error on");
    assert!(db_message(&err).contains("failed on purpose"));
}

#[test]
fn erase_member_holds_the_lock_of_every_registered_builder() {
    let Some(cluster) = Cluster::from_env("builders_erase") else {
        return;
    };
    let db = TestDb::create(&cluster, "builders_erase");
    let mut eraser = db.connect();
    let mut other = db.connect();
    eraser.batch_execute(SEED).expect("seed");
    // A builder registered after the extension was made is kept out as well.
    eraser.batch_execute(FAILING_STEP).expect("step");
    eraser
        .batch_execute(
            "INSERT INTO guildstats.builders (name, reads, per, step, counters)
             VALUES ('registered_later', '{guildstats.raw_messages}', 'all',
                     'public.failing_step(bigint, jsonb, boolean)', '{}')",
        )
        .expect("register");
    let registry = names(
        &mut other,
        "SELECT name FROM guildstats.builders ORDER BY name",
    );
    assert_eq!(registry.len(), EXPECTED_ORDER.len() + 1);
    let lock_rows = names(
        &mut other,
        "SELECT builder FROM guildstats.builder_locks ORDER BY builder",
    );
    assert_eq!(lock_rows, registry, "one lock row per registered builder");

    eraser
        .batch_execute(
            "BEGIN; SELECT * FROM guildstats.erase_member(guild_id => 1, user_id => 10);",
        )
        .expect("erase in flight");
    other.batch_execute("BEGIN").expect("begin");
    let free = names(
        &mut other,
        "SELECT b.name FROM guildstats.builders b WHERE guildstats._try_builder_lock(b.name) ORDER BY 1",
    );
    other.batch_execute("ROLLBACK").expect("rollback");
    assert!(
        free.is_empty(),
        "builders erase_member() left unlocked: {free:?}"
    );
    eraser.batch_execute("ROLLBACK").expect("rollback");

    // Every builder goes through the registry: no function but the runner takes a builder's
    // lock or claims raw rows, and every public builder is a registered one.
    let bypassing = names(
        &mut other,
        "SELECT p.oid::regprocedure::text FROM pg_proc p
          WHERE p.pronamespace = 'guildstats'::regnamespace
            AND (p.prosrc LIKE '%\\_try\\_builder\\_lock(%' OR p.prosrc LIKE '%\\_claim\\_ingest\\_ids(%')
            AND p.proname NOT IN ('_run_builder', '_try_builder_lock', '_claim_ingest_ids')
          ORDER BY 1",
    );
    assert!(
        bypassing.is_empty(),
        "functions that lock or claim outside the registry: {bypassing:?}"
    );
    let unregistered = names(
        &mut other,
        "SELECT p.proname::text FROM pg_proc p
          WHERE p.pronamespace = 'guildstats'::regnamespace
            AND p.prosrc LIKE '%\\_run\\_builder(%' AND p.proname NOT IN ('_run_builder', 'build_all')
            AND NOT EXISTS (SELECT 1 FROM guildstats.builders b WHERE b.name = p.proname)
          ORDER BY 1",
    );
    assert!(
        unregistered.is_empty(),
        "builder functions without a registry row: {unregistered:?}"
    );
}

#[test]
fn build_all_and_the_builders_answer_as_before() {
    let Some(cluster) = Cluster::from_env("builders_results") else {
        return;
    };
    let db = TestDb::create(&cluster, "builders_results");
    let mut client = db.connect();
    let mut other = db.connect();
    // The result columns every caller reads, as they were before the registry.
    for (function, result) in [
        ("build_all()", "TABLE(builder text, status text, elapsed interval)"),
        ("build_members(boolean)", "TABLE(rows_read bigint, members_added bigint, members_updated bigint, elapsed interval, status text)"),
        ("build_voice_sessions(boolean)", "TABLE(events_read bigint, snapshots_read bigint, heartbeats_read bigint, guilds_built integer, users_rebuilt bigint, sessions_opened bigint, sessions_closed bigint, sessions_updated bigint, sessions_removed bigint, elapsed interval, status text)"),
        ("build_event_attendance(boolean)", "TABLE(observations_read bigint, events_built bigint, attendance_rows bigint, elapsed interval, status text)"),
        ("build_rollups(boolean)", "TABLE(guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint, elapsed interval, status text)"),
        ("build_voice_copresence(boolean)", "TABLE(guilds_refreshed integer, pair_rows bigint, elapsed interval, status text)"),
        ("build_game_sessions(boolean)", "TABLE(rows_read bigint, servers_rebuilt bigint, sessions_removed bigint, sessions_written bigint, elapsed interval, status text)"),
        ("build_et_ratings(boolean)", "TABLE(maps_rated integer, maps_replayed integer, players_rated integer, elapsed interval, status text)"),
        ("import_et_rounds()", "TABLE(files_read integer, rounds_imported integer, files_failed integer, rounds_linked integer, round2_recomputed integer, orphan_round2 integer, sessions integer, elapsed interval, status text)"),
    ] {
        let got: String = client
            .query_one(
                &format!("SELECT pg_get_function_result('guildstats.{function}'::regprocedure)"),
                &[],
            )
            .unwrap_or_else(|e| panic!("{function}: {}", db_message(&e)))
            .get(0);
        assert_eq!(got, result, "{function}");
    }
    client.batch_execute(SEED).expect("seed");
    let rows: Vec<(String, String)> = client
        .query("SELECT builder, status FROM guildstats.build_all()", &[])
        .expect("build_all")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(String, String)> = EXPECTED_ORDER
        .iter()
        .map(|(n, _)| (n.to_string(), "ok".to_string()))
        .collect();
    assert_eq!(rows, expected);
    // Counters summed over the guilds: two guilds, one session and one member each.
    let (read, built, opened): (i64, i32, i64) = {
        let r = client
            .query_one(
                "SELECT events_read, guilds_built, sessions_opened FROM guildstats.build_voice_sessions(full => true)",
                &[],
            )
            .expect("full voice build");
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!((read, built, opened), (4, 2, 2));
    let status: String = client
        .query_one(
            "SELECT status FROM guildstats.build_members(full => true)",
            &[],
        )
        .expect("full members build")
        .get(0);
    assert_eq!(status, "ok: full rebuild");
    // Skipped as before, the ET import with its note.
    client
        .batch_execute("BEGIN; SELECT * FROM guildstats.import_et_rounds();")
        .expect("import in flight");
    let skipped: Vec<(String, String)> = other
        .query(
            "SELECT builder, status FROM guildstats.build_all() WHERE builder IN ('import_et_rounds', 'build_members')",
            &[],
        )
        .expect("build_all")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (
                "import_et_rounds".to_string(),
                "skipped: another import_et_rounds() is running; its results will be there when it commits".to_string()
            ),
            ("build_members".to_string(), "ok".to_string()),
        ]
    );
    let zeros: (i32, i32) = {
        let r = other
            .query_one(
                "SELECT files_read, sessions FROM guildstats.import_et_rounds()",
                &[],
            )
            .expect("skipped import");
        (r.get(0), r.get(1))
    };
    assert_eq!(zeros, (0, 0));
    client.batch_execute("ROLLBACK").expect("rollback");
}

/// Each per-guild step touches its own guild's rows only: what a Citus worker holding one
/// guild's shard would run.
#[test]
fn a_step_builds_its_own_guild_only() {
    let Some(cluster) = Cluster::from_env("builders_per_guild") else {
        return;
    };
    let db = TestDb::create(&cluster, "builders_per_guild");
    let mut client = db.connect();
    client.batch_execute(SEED).expect("seed");
    let per_guild = names(
        &mut client,
        "SELECT name FROM guildstats.builders WHERE per = 'guild' ORDER BY registered",
    );
    assert_eq!(
        per_guild,
        [
            "build_members",
            "build_voice_sessions",
            "build_voice_copresence",
            "build_event_attendance",
            "build_rollups"
        ]
    );
    // Guild 2's steps only, in dependency order, with every claim handed over.
    client
        .batch_execute(
            "DO $$
             DECLARE b record; claims jsonb; t text;
             BEGIN
               FOR b IN SELECT r.* FROM guildstats.builder_order() o JOIN guildstats.builders r USING (name)
                         WHERE r.per = 'guild' ORDER BY o.run_order LOOP
                 claims := '{}';
                 FOREACH t IN ARRAY b.claims LOOP
                   claims := claims || jsonb_build_object(t, guildstats._claim_ingest_ids(b.name, t));
                 END LOOP;
                 EXECUTE format('SELECT %s(2, $1, false)', guildstats._function_name(b.step)) USING claims;
               END LOOP;
             END $$",
        )
        .expect("guild 2's steps");
    for table in [
        "members",
        "voice_sessions",
        "member_voice_daily",
        "member_monthly_status",
        "voice_copresence_guilds",
        "chat_channel_daily",
    ] {
        let guilds = names(
            &mut client,
            &format!("SELECT DISTINCT guild_id::text FROM guildstats.{table} ORDER BY 1"),
        );
        assert_eq!(guilds, ["2"], "{table}");
    }
}
