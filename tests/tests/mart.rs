//! The BI mart (schema guildstats_mart) on a synthetic community plus the real ET:Legacy files:
//! every view has rows, its numbers agree with plain SQL written another way (from the core
//! tables or the raw rows), and the reader role can read every view.

use guildstats_e2e::et::cluster_and_fixtures;
use guildstats_e2e::{apply_roles_script, login_role, TestDb};
use guildstats_synth::{pg, Community, CommunityConfig, Table};
use postgres::Client;

fn loaded_db(test: &str) -> Option<TestDb> {
    let (cluster, et_dir) = cluster_and_fixtures(test)?;
    let db = TestDb::create(&cluster, test);
    let mut client = db.connect();
    let community = Community::new(CommunityConfig::tiny().with_seed(11)).expect("valid config");
    pg::load(&mut client, &community, &Table::ALL).expect("load");
    pg::load_et_files(&mut client, &et_dir, "fixtures").expect("ET files");
    client
        .batch_execute(
            "INSERT INTO guildstats.settings (guild_id, calendar_time_zone)
             SELECT DISTINCT guild_id, 'Europe/Berlin' FROM guildstats.raw_guilds;
             SELECT * FROM guildstats.build_all();",
        )
        .expect("settings and build_all");
    Some(db)
}

fn mart_views(client: &mut Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'guildstats_mart' AND c.relkind IN ('v', 'm', 'r') ORDER BY 1",
            &[],
        )
        .expect("mart views")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn float(client: &mut Client, sql: &str) -> f64 {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<_, Option<f64>>(0)
        .unwrap_or_else(|| panic!("{sql}: NULL"))
}

fn assert_close(what: &str, mart: f64, plain: f64) {
    assert!(
        (mart - plain).abs() <= 1e-6 * plain.abs().max(1.0),
        "{what}: mart {mart} vs plain SQL {plain}"
    );
}

#[test]
fn every_mart_view_has_rows_and_guild_id() {
    let Some(db) = loaded_db("mart_rows") else {
        return;
    };
    let mut client = db.connect();
    let views = mart_views(&mut client);
    assert!(views.len() >= 25, "too few mart views: {views:?}");
    for view in &views {
        let (rows, guilds): (i64, i64) = {
            let row = client
                .query_one(
                    &format!(
                        "SELECT count(*), count(DISTINCT guild_id) FROM guildstats_mart.{view}"
                    ),
                    &[],
                )
                .unwrap_or_else(|e| panic!("{view}: {e}"));
            (row.get(0), row.get(1))
        };
        assert!(rows > 0, "guildstats_mart.{view} has no rows");
        assert_eq!(
            guilds, 1,
            "guildstats_mart.{view}: guild_id missing on rows"
        );
    }
    // Time columns are real dates or timestamps, never text.
    let text_times: Vec<String> = client
        .query(
            "SELECT table_name || '.' || column_name FROM information_schema.columns
             WHERE table_schema = 'guildstats_mart'
               AND column_name IN ('day', 'week', 'month', 'hour', 'hour_start', 'window_start',
                                   'round_time', 'start_time', 'played_at', 'started_at')
               AND data_type NOT IN ('date', 'timestamp with time zone')",
            &[],
        )
        .expect("column types")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        text_times.is_empty(),
        "time columns of the wrong type: {text_times:?}"
    );
}

#[test]
fn mart_numbers_equal_plain_sql() {
    let Some(db) = loaded_db("mart_numbers") else {
        return;
    };
    let mut client = db.connect();

    // Voice hours: the daily view (from the rollup) and the hour-of-day view (cut from the
    // sessions) against the sessions' lengths, AFK excluded, open ones up to the horizon.
    let sessions = float(
        &mut client,
        "SELECT sum(extract(epoch FROM coalesce(v.ended_at, b.horizon) - v.started_at))::float8 / 3600
         FROM guildstats.voice_sessions v JOIN guildstats.voice_build_guilds b USING (guild_id)
         WHERE NOT v.is_afk",
    );
    let daily = float(
        &mut client,
        "SELECT sum(voice_hours)::float8 FROM guildstats_mart.member_voice_daily",
    );
    let hourly = float(
        &mut client,
        "SELECT sum(voice_hours)::float8 FROM guildstats_mart.voice_hour_weekday",
    );
    assert_close("voice hours per day", daily, sessions);
    assert_close("voice hours per hour of day", hourly, sessions);

    // DAU on the busiest day: distinct people active that Berlin day in the raw rows.
    let (day, dau): (String, i64) = {
        let row = client
            .query_one(
                "SELECT day::text, dau FROM guildstats_mart.executive_daily
                 ORDER BY dau DESC, day LIMIT 1",
                &[],
            )
            .expect("busiest day");
        (row.get(0), row.get(1))
    };
    let plain_dau: i64 = client
        .query_one(
            "SELECT count(DISTINCT user_id) FROM (
                 SELECT user_id, event_ts AS t FROM guildstats.raw_voice_events WHERE channel_id IS NOT NULL
                 UNION ALL SELECT user_id, sent_at FROM guildstats.raw_messages WHERE NOT is_bot
                 UNION ALL SELECT user_id, tx_ts FROM guildstats.raw_point_transactions) a
             WHERE (t AT TIME ZONE 'Europe/Berlin')::date = $1::text::date",
            &[&day],
        )
        .expect("plain DAU")
        .get(0);
    assert_eq!(dau, plain_dau, "DAU on {day}");

    // Messages: per channel and day, and per day on the executive view, against the raw count.
    let raw_messages = float(
        &mut client,
        "SELECT count(*)::float8 FROM guildstats.raw_messages WHERE NOT is_bot",
    );
    let chat = float(
        &mut client,
        "SELECT sum(messages)::float8 FROM guildstats_mart.chat_daily",
    );
    let executive = float(
        &mut client,
        "SELECT sum(messages)::float8 FROM guildstats_mart.executive_daily",
    );
    assert_close("messages per channel", chat, raw_messages);
    assert_close("messages per day", executive, raw_messages);

    // Circulation at the end of the last day: every transaction summed.
    let circulation = float(
        &mut client,
        "SELECT circulation::float8 FROM guildstats_mart.economy_daily ORDER BY day DESC LIMIT 1",
    );
    let ledger = float(
        &mut client,
        "SELECT sum(amount)::float8 FROM guildstats.raw_point_transactions",
    );
    assert_close("points in circulation", circulation, ledger);
    let flows = float(
        &mut client,
        "SELECT (sum(earned) - sum(spent))::float8 FROM guildstats_mart.economy_flows_daily",
    );
    assert_close("earned - spent", flows, ledger);

    // Events: on time + late = attendees = attendance rows.
    let attendance = float(
        &mut client,
        "SELECT count(*)::float8 FROM guildstats.event_attendance",
    );
    let (attendees, split) = {
        let row = client
            .query_one(
                "SELECT sum(attendees)::float8, sum(on_time_attendees + late_attendees)::float8
                 FROM guildstats_mart.events",
                &[],
            )
            .expect("events");
        (row.get::<_, f64>(0), row.get::<_, f64>(1))
    };
    assert_close("attendees", attendees, attendance);
    assert_close("on time + late", split, attendance);

    // The show-up funnel: its attendees are the attendance rows, every one counted once as
    // interested or as a walk-in, and each attending member has one D30 cohort entry.
    let (funnel_attendees, funnel_split, cohort_members) = {
        let row = client
            .query_one(
                "SELECT sum(attendees)::float8, sum(in_voice + walk_ins)::float8,
                        (SELECT sum(members)::float8 FROM guildstats_mart.event_retention_d30)
                 FROM guildstats_mart.event_funnel",
                &[],
            )
            .expect("event funnel");
        (
            row.get::<_, f64>(0),
            row.get::<_, f64>(1),
            row.get::<_, f64>(2),
        )
    };
    assert_close("funnel attendees", funnel_attendees, attendance);
    assert_close("funnel in voice + walk-ins", funnel_split, attendance);
    let interested_or_present = float(
        &mut client,
        "SELECT count(*)::float8 FROM (
             SELECT guild_id, user_id FROM guildstats.event_attendance
             UNION
             SELECT u.guild_id, u.user_id FROM guildstats.raw_scheduled_event_users u
               JOIN guildstats.events e ON e.event_id = u.event_id AND e.actual_start IS NOT NULL
              WHERE u.action = 'add' AND u.observed_at <= coalesce(e.actual_end, 'infinity')
                AND NOT EXISTS (SELECT 1 FROM guildstats.raw_scheduled_event_users later
                                 WHERE later.event_id = u.event_id AND later.user_id = u.user_id
                                   AND later.observed_at > u.observed_at
                                   AND later.observed_at <= coalesce(e.actual_end, 'infinity'))) m",
    );
    assert_close("D30 cohort members", cohort_members, interested_or_present);

    // Monthly cohorts by first activity: the cohort sizes add up to everyone ever active.
    let cohorts = float(
        &mut client,
        "SELECT sum(cohort_size)::float8 FROM guildstats_mart.retention_cohorts
         WHERE period = 'month' AND cohort_by = 'first_activity' AND period_offset = 0",
    );
    let active = float(
        &mut client,
        "SELECT count(DISTINCT user_id)::float8 FROM guildstats.member_monthly_status WHERE was_active",
    );
    assert_close("monthly cohort sizes", cohorts, active);

    // ET kills per player: the rounds view summed against et_players.
    let mismatches = float(
        &mut client,
        "SELECT count(*)::float8 FROM (
             SELECT guid, sum(kills) AS kills FROM guildstats_mart.et_player_rounds GROUP BY guid) r
         JOIN guildstats.et_players p USING (guid)
         WHERE r.kills <> p.kills",
    );
    assert_eq!(mismatches, 0.0, "ET kills per player differ");
}

#[test]
fn the_reader_role_reads_every_mart_view() {
    let Some(db) = loaded_db("mart_reader") else {
        return;
    };
    apply_roles_script(&db.cluster, &db);
    login_role(&db.cluster, "mart_reader_login", "guildstats_reader");
    let mut admin = db.connect();
    // A reader bound to every guild (guildstats.reader_guilds), as a BI tool's login is.
    admin
        .batch_execute(
            "INSERT INTO guildstats.reader_guilds (role_name, guild_id)
             VALUES ('mart_reader_login', NULL) ON CONFLICT DO NOTHING",
        )
        .expect("bind the reader");
    let views = mart_views(&mut admin);
    let mut reader = db.connect_as("mart_reader_login");
    for view in views {
        let rows: i64 = reader
            .query_one(&format!("SELECT count(*) FROM guildstats_mart.{view}"), &[])
            .unwrap_or_else(|e| panic!("reader on guildstats_mart.{view}: {e}"))
            .get(0);
        assert!(
            rows > 0,
            "the reader sees no rows in guildstats_mart.{view}"
        );
    }
    // The ingest role sees nothing of the mart.
    login_role(&db.cluster, "mart_ingest_login", "guildstats_ingest");
    let mut ingest = db.connect_as("mart_ingest_login");
    let denied = ingest.query_one("SELECT count(*) FROM guildstats_mart.members", &[]);
    assert!(denied.is_err(), "the ingest role must not read the mart");
}
