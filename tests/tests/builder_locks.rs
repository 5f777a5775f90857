//! The builders' locks (issue 10, item 7): rows of guildstats.builder_locks that only the admin
//! can lock, so no other login can make every build "skipped" or make erase_member() hang; and
//! erase_member() gives up with a clear error when a build holds them too long.

use guildstats_e2e::{apply_roles_script, db_message, login_role, Cluster, TestDb};

const OLD_ADVISORY_KEYS: [&str; 5] = [
    "guildstats.import_et_rounds",
    "guildstats.build_members",
    "guildstats.build_voice_sessions",
    "guildstats.build_event_attendance",
    "guildstats.build_rollups",
];

#[test]
fn no_other_login_can_hold_the_builders_locks() {
    let Some(cluster) = Cluster::from_env("builder_locks_reader") else {
        return;
    };
    let db = TestDb::create(&cluster, "builder_locks_reader");
    apply_roles_script(&cluster, &db);
    login_role(&cluster, "e2e_lock_reader", "guildstats_reader");
    login_role(&cluster, "e2e_lock_ingester", "guildstats_ingest");
    let mut reader = db.connect_as("e2e_lock_reader");
    let mut ingester = db.connect_as("e2e_lock_ingester");

    for (who, client) in [("reader", &mut reader), ("ingester", &mut ingester)] {
        for attempt in [
            "SELECT * FROM guildstats.builder_locks FOR UPDATE",
            "SELECT * FROM guildstats.builder_locks FOR KEY SHARE",
            "LOCK TABLE guildstats.builder_locks IN EXCLUSIVE MODE",
            "SELECT guildstats._try_builder_lock('build_members')",
        ] {
            let err = client
                .batch_execute(&format!("BEGIN; {attempt}; ROLLBACK"))
                .expect_err(&format!("{who} must not run: {attempt}"));
            assert!(
                db_message(&err).contains("permission denied"),
                "{who}: {attempt}: {}",
                db_message(&err)
            );
            client.batch_execute("ROLLBACK").expect("rollback");
        }
    }
    // The keys the builders used to take, held for the reader's whole session: they block
    // nothing any more.
    for key in OLD_ADVISORY_KEYS {
        reader
            .execute("SELECT pg_advisory_lock(hashtext($1))", &[&key])
            .expect("advisory lock");
    }
    let mut admin = db.connect();
    let statuses: Vec<(String, String)> = admin
        .query("SELECT builder, status FROM guildstats.build_all()", &[])
        .expect("build_all")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        statuses.iter().all(|(_, s)| s == "ok"),
        "a reader's advisory locks must not skip a build: {statuses:?}"
    );
    // Without the fix this waited forever; a timeout turns a regression into a failure.
    admin
        .batch_execute("SET lock_timeout = '5s'")
        .expect("lock_timeout");
    admin
        .query(
            "SELECT * FROM guildstats.erase_member(guild_id => 1, user_id => 10)",
            &[],
        )
        .unwrap_or_else(|e| panic!("erase_member under a reader's locks: {}", db_message(&e)));
}

#[test]
fn erase_member_gives_up_on_a_held_build_with_a_clear_error() {
    let Some(cluster) = Cluster::from_env("builder_locks_erase") else {
        return;
    };
    let db = TestDb::create(&cluster, "builder_locks_erase");
    let mut builder = db.connect();
    let mut other = db.connect();
    other
        .batch_execute(
            "INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at)
             VALUES (1, 200, 10, 1, '2026-03-01 20:30+00')",
        )
        .expect("seed");

    // A build left open in its transaction holds build_members' lock.
    builder
        .batch_execute("BEGIN; SELECT * FROM guildstats.build_members();")
        .expect("build in flight");

    let skipped: String = other
        .query_one(
            "SELECT status FROM guildstats.build_all() WHERE builder = 'build_members'",
            &[],
        )
        .expect("build_all")
        .get(0);
    assert_eq!(skipped, "skipped: another build_members() is running");
    // health() names the holder.
    let builder_pid: i32 = builder
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pid")
        .get(0);
    let (status, detail): (String, String) = other
        .query_one(
            "SELECT status, detail FROM guildstats.health() WHERE check_name = 'builder locks'",
            &[],
        )
        .map(|r| (r.get(0), r.get(1)))
        .expect("health");
    assert_eq!(status, "busy", "{detail}");
    assert!(
        detail.starts_with(&format!("held by pid {builder_pid} since ")),
        "{detail}"
    );

    other
        .batch_execute("SET lock_timeout = '300ms'")
        .expect("lock_timeout");
    let err = other
        .query(
            "SELECT * FROM guildstats.erase_member(guild_id => 1, user_id => 10)",
            &[],
        )
        .expect_err("erase_member must not wait past lock_timeout");
    let message = db_message(&err);
    assert!(
        message.starts_with("55P03: erase_member(guild_id => 1, user_id => 10): a build held the builders' locks for longer than lock_timeout (300ms); nothing was erased"),
        "{message}"
    );
    // Nothing was erased, and once the build commits the erasure goes through.
    builder.batch_execute("COMMIT").expect("commit the build");
    let status: String = other
        .query_one(
            "SELECT status FROM guildstats.health() WHERE check_name = 'builder locks'",
            &[],
        )
        .expect("health")
        .get(0);
    assert_eq!(status, "ok");
    let erased: String = other
        .query_one(
            "SELECT string_agg(table_name || ' ' || rows_changed, ', ' ORDER BY table_name)
             FROM guildstats.erase_member(guild_id => 1, user_id => 10) WHERE rows_changed > 0",
            &[],
        )
        .unwrap_or_else(|e| panic!("erase_member: {}", db_message(&e)))
        .get(0);
    // The message, the member row, their active day and their message counts of the day and
    // the month (build_all() ran the rollups while build_members was skipped).
    assert_eq!(
        erased,
        "member_active_days 1, member_messages_daily 1, member_messages_monthly 1, members 1, raw_messages 1"
    );
}
