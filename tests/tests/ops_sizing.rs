//! sql/ops/sizing.sql, whose output docs/operations.md quotes: rows per table, and rows per day
//! per 1,000 members, against a hand-worked case.

use guildstats_e2e::{repo_root, run_ok, Cluster, TestDb};

#[test]
fn sizing_scales_rows_to_a_day_and_a_thousand_members() {
    let Some(cluster) = Cluster::from_env("ops_sizing") else {
        return;
    };
    let db = TestDb::create(&cluster, "ops_sizing");
    // Two members; four voice events spanning exactly two days; one message in between.
    db.connect()
        .batch_execute(
            "INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts) VALUES
                 (1, 10, 'join', '2026-03-01 00:00+00'), (1, 11, 'join', '2026-03-01 00:00+00');
             INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
                 (1, 10, 100, '2026-03-01 00:00+00'), (1, 10, NULL, '2026-03-01 01:00+00'),
                 (1, 11, 100, '2026-03-02 00:00+00'), (1, 11, NULL, '2026-03-03 00:00+00');
             INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at)
                 VALUES (1, 200, 10, 1, '2026-03-02 12:00+00');
             SELECT * FROM guildstats.build_all();",
        )
        .expect("sample data and builders");

    let out = run_ok(
        db.cluster
            .command("psql")
            .args(["-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1"])
            .args(["-d", &db.name, "-f"])
            .arg(repo_root().join("sql/ops/sizing.sql")),
    );
    let row = |table: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split('|').map(str::to_string).collect::<Vec<_>>())
            .find(|cols| cols[0] == table)
            .unwrap_or_else(|| panic!("no row for {table} in:\n{out}"))
    };

    // 4 events / 2 days * 1000 / 2 members = 1000 a day per 1,000 members.
    let voice = row("raw_voice_events");
    assert_eq!(voice[1], "4", "{voice:?}");
    assert_eq!(voice[2], "1000", "{voice:?}");
    // 1 message / 2 days * 1000 / 2 members = 250.
    assert_eq!(row("raw_messages")[2], "250");

    // The total counts every guildstats table, counted here another way.
    let mut client = db.connect();
    let tables: Vec<String> = client
        .query(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables WHERE schemaname = 'guildstats'",
            &[],
        )
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut total = 0i64;
    for table in &tables {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .expect("count")
            .get(0);
        total += n;
    }
    assert_eq!(row("total")[1], total.to_string());
}
