//! The dashboard rollups behind guildstats_mart (member_active_days, guild_activity_daily,
//! chat_channel_daily, chat_activity_5min, guild_voice_hourly, member_points_daily,
//! economy_daily, server_polls_hourly, ingest_lag_rollup). A community arrives in three parts,
//! with build_all() after each: the first part without one day of it, the second part split at
//! local noon of a day (that day is built twice), and the third part with the held-back day (late
//! and out of order) and the rest. Every rollup-backed mart view must then equal the same
//! numbers computed from the raw tables by plain SQL written another way; erase_member() must
//! take the member's rollup rows with it; and a reader sees only the guilds bound to it.

use guildstats_e2e::{apply_roles_script, login_role, Cluster, TestDb};
use guildstats_synth::{pg, Community, CommunityConfig, Row, Table, Ts};
use postgres::Client;

const TZ: &str = "Europe/Berlin";

/// Rows of `mart` not in `plain` and the other way round (both queries return comparable rows,
/// floats rounded), with a few of them in the failure message.
fn assert_same(client: &mut Client, what: &str, mart: &str, plain: &str) {
    let mart_rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM ({mart}) m"), &[])
        .unwrap_or_else(|e| panic!("{what} (mart): {e}"))
        .get(0);
    assert!(mart_rows > 0, "{what}: the mart view has no rows");
    let diff = format!(
        "SELECT 'mart only' AS side, x::text FROM (({mart}) EXCEPT ALL ({plain})) x
         UNION ALL
         SELECT 'plain only', y::text FROM (({plain}) EXCEPT ALL ({mart})) y"
    );
    let rows = client
        .query(&diff, &[])
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let sample: Vec<String> = rows
        .iter()
        .take(8)
        .map(|r| format!("{}: {}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    assert!(
        rows.is_empty(),
        "{what}: the mart and plain SQL differ in {} rows (of {mart_rows}), e.g.\n  {}",
        rows.len(),
        sample.join("\n  ")
    );
}

fn build(client: &mut Client) {
    client
        .batch_execute("SELECT * FROM guildstats.build_all()")
        .expect("build_all");
}

/// Local midnight of `day` days after the community's start (a Monday, 00:00 UTC, in winter:
/// Berlin is UTC+1), plus `secs`.
fn local(config: &CommunityConfig, day: i64, secs: i64) -> Ts {
    config.start.add_secs(day * 86_400 - 3_600 + secs)
}

fn loaded(cluster: &Cluster, test: &str) -> (TestDb, i64) {
    let config = CommunityConfig {
        days: 40,
        ..CommunityConfig::tiny().with_seed(23)
    };
    let noon = local(&config, 12, 12 * 3_600);
    let late = (local(&config, 9, 0), local(&config, 10, 0));
    let last_minute = local(&config, 26, -30);
    let community = Community::new(config).expect("valid config");
    let db = TestDb::create(cluster, test);
    let mut client = db.connect();
    let held_back = |t: Ts| t >= late.0 && t < late.1;
    let part = |client: &mut Client, keep: &dyn Fn(&Row<'_>) -> bool| {
        pg::load_where(client, &community, &Table::ALL, keep).expect("synthetic load");
        build(client);
    };
    // Settings first: the builders count days in Berlin from the first build on.
    pg::load_where(&mut client, &community, &[Table::Guilds], |_| true).expect("guilds");
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.settings (guild_id, calendar_time_zone)
             SELECT DISTINCT guild_id, '{TZ}' FROM guildstats.raw_guilds"
        ))
        .expect("settings");
    part(&mut client, &|r| {
        r.table() != Table::Guilds && r.time() < noon && !held_back(r.time())
    });
    part(&mut client, &|r| {
        r.table() != Table::Guilds && r.time() >= noon && r.time() < last_minute
    });
    part(&mut client, &|r| {
        r.table() != Table::Guilds && (held_back(r.time()) || r.time() >= last_minute)
    });
    let guild: i64 = client
        .query_one("SELECT min(guild_id) FROM guildstats.raw_guilds", &[])
        .expect("guild")
        .get(0);
    (db, guild)
}

/// The point balances build_rollups() keeps between builds, against the raw ledger summed per
/// holder up to the last day built.
fn assert_balances_match_the_ledger(client: &mut Client, what: &str) {
    assert_same(
        client,
        &format!("member_point_balances {what}"),
        "SELECT user_id, balance, first_day FROM guildstats.member_point_balances",
        &format!(
            "SELECT user_id, sum(amount)::bigint, min((tx_ts AT TIME ZONE '{TZ}')::date)
             FROM guildstats.raw_point_transactions GROUP BY user_id"
        ),
    );
}

/// Every column of the economy rollup, floats rounded, for comparing two builds.
const ECONOMY_ROWS: &str = "
    SELECT guild_id, day, circulation, earned, spent, net, accounts, users_with_points,
           round(median_balance::numeric, 6) AS median, round(top1_share::numeric, 9) AS top1,
           round(gini::numeric, 9) AS gini, round(inflation::numeric, 9) AS inflation, negative_streak,
           alert_inflation, alert_net_negative, alert_gini, alerts
    FROM guildstats.economy_daily";

/// economy_daily as the incremental builds left it must equal a full rebuild's.
fn assert_incremental_equals_full(client: &mut Client, what: &str) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS incremental_economy;
             CREATE TABLE incremental_economy AS {ECONOMY_ROWS};
             SELECT * FROM guildstats.build_rollups(full => true);"
        ))
        .expect("full rebuild");
    assert_same(
        client,
        &format!("economy_daily {what}: incremental builds against a full rebuild"),
        "SELECT * FROM incremental_economy",
        ECONOMY_ROWS,
    );
}

/// Point flows per member and month (in Berlin) with the member's name, from the raw ledger.
static MEMBERS_MONTHLY_PLAIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT date_trunc('month', t.tx_ts AT TIME ZONE '{TZ}')::date, t.user_id,
                coalesce((SELECT m.display_name FROM guildstats.members m WHERE m.user_id = t.user_id),
                         'user ' || t.user_id),
                sum(greatest(t.amount, 0))::numeric, sum(greatest(-t.amount, 0))::numeric, count(*)
         FROM guildstats.raw_point_transactions t GROUP BY 1, 2"
    )
});

/// Every active day of every user, from the raw rows: what activity_events means without
/// member events.
const ACTIVE: &str = "
    SELECT DISTINCT user_id, (at AT TIME ZONE 'Europe/Berlin')::date AS d FROM (
        SELECT user_id, event_ts AS at FROM guildstats.raw_voice_events WHERE channel_id IS NOT NULL
        UNION ALL SELECT user_id, sent_at FROM guildstats.raw_messages WHERE NOT is_bot
        UNION ALL SELECT user_id, tx_ts FROM guildstats.raw_point_transactions) x";

#[test]
fn rollup_backed_mart_views_equal_plain_sql_after_late_rows() {
    let Some(cluster) = Cluster::from_env("mart_rollups") else {
        return;
    };
    let (db, guild) = loaded(&cluster, "mart_rollups");
    let mut client = db.connect();

    assert_same(
        &mut client,
        "executive_daily: active users, new and returning, messages",
        "SELECT day, dau, wau, mau, new_members, returning_members, messages::bigint
         FROM guildstats_mart.executive_daily",
        &format!(
            "WITH active AS ({ACTIVE}),
             firsts AS (SELECT user_id, min(d) AS f FROM active GROUP BY user_id),
             days AS (SELECT generate_series(min(d), max(d), interval '1 day')::date AS day FROM active)
             SELECT day,
                    (SELECT count(*) FROM active a WHERE a.d = day),
                    (SELECT count(DISTINCT user_id) FROM active a WHERE a.d BETWEEN day - 6 AND day),
                    (SELECT count(DISTINCT user_id) FROM active a WHERE a.d BETWEEN day - 29 AND day),
                    (SELECT count(*) FROM firsts f WHERE f.f = day),
                    (SELECT count(*) FROM active a JOIN firsts f USING (user_id) WHERE a.d = day AND f.f < day),
                    (SELECT count(*) FROM guildstats.raw_messages m
                      WHERE NOT m.is_bot AND (m.sent_at AT TIME ZONE '{TZ}')::date = day)
             FROM days"
        ),
    );
    assert_same(
        &mut client,
        "executive_daily: voice hours per day (sessions cut at Berlin midnights)",
        "SELECT day, round(voice_hours::numeric, 6) FROM guildstats_mart.executive_daily WHERE voice_hours > 0",
        &format!(
            "SELECT d::date, round(sum(extract(epoch FROM
                        least(coalesce(v.ended_at, b.horizon), (d + interval '1 day') AT TIME ZONE '{TZ}')
                        - greatest(v.started_at, d AT TIME ZONE '{TZ}'))) / 3600, 6)
             FROM guildstats.voice_sessions v JOIN guildstats.voice_build_guilds b USING (guild_id)
             CROSS JOIN generate_series((SELECT min(day) FROM guildstats_mart.executive_daily)::timestamp,
                                        (SELECT max(day) FROM guildstats_mart.executive_daily)::timestamp,
                                        interval '1 day') d
             WHERE NOT v.is_afk
               AND v.started_at < (d + interval '1 day') AT TIME ZONE '{TZ}'
               AND coalesce(v.ended_at, b.horizon) > d AT TIME ZONE '{TZ}'
             GROUP BY 1 HAVING sum(extract(epoch FROM
                        least(coalesce(v.ended_at, b.horizon), (d + interval '1 day') AT TIME ZONE '{TZ}')
                        - greatest(v.started_at, d AT TIME ZONE '{TZ}'))) > 0"
        ),
    );
    assert_same(
        &mut client,
        "executive_daily: members (seen by the end of the day and not gone)",
        "SELECT day, members::bigint FROM guildstats_mart.executive_daily",
        &format!(
            "SELECT e.day,
                    (SELECT count(*) FROM guildstats.members m WHERE NOT m.is_bot
                        AND (m.first_seen AT TIME ZONE '{TZ}')::date <= e.day)
                  - (SELECT count(*) FROM guildstats.members m WHERE NOT m.is_bot
                        AND (m.left_at AT TIME ZONE '{TZ}')::date <= e.day)
             FROM guildstats_mart.executive_daily e"
        ),
    );
    assert_same(
        &mut client,
        "executive_daily: points in circulation (the ledger up to the end of the day)",
        "SELECT day, points_in_circulation FROM guildstats_mart.executive_daily
         WHERE points_in_circulation IS NOT NULL",
        &format!(
            "SELECT e.day, (SELECT sum(t.amount) FROM guildstats.raw_point_transactions t
                             WHERE t.tx_ts < (e.day + 1)::timestamp AT TIME ZONE '{TZ}')::bigint
             FROM guildstats_mart.executive_daily e
             WHERE e.day >= (SELECT (min(tx_ts) AT TIME ZONE '{TZ}')::date FROM guildstats.raw_point_transactions)
               AND e.day <= (SELECT (max(tx_ts) AT TIME ZONE '{TZ}')::date FROM guildstats.raw_point_transactions)"
        ),
    );
    assert_same(
        &mut client,
        "retention_daily: D1, D7, D30 per cohort day",
        "SELECT day, cohort_size, d1_eligible, d1_retained, d7_eligible, d7_retained, d30_eligible, d30_retained
         FROM guildstats_mart.retention_daily",
        &format!(
            "WITH active AS ({ACTIVE}),
             firsts AS (SELECT user_id, min(d) AS f FROM active GROUP BY user_id),
             last AS (SELECT max(d) AS last_day FROM active),
             kept AS (SELECT f.f, n, count(*) FILTER (WHERE EXISTS (
                             SELECT 1 FROM active a WHERE a.user_id = f.user_id AND a.d = f.f + n)) AS retained,
                             count(*) AS size
                      FROM firsts f CROSS JOIN unnest(ARRAY[1, 7, 30]) n GROUP BY f.f, n)
             SELECT k.f, max(k.size),
                    max(k.size) FILTER (WHERE n = 1 AND k.f + 1 <= l.last_day),
                    max(k.retained) FILTER (WHERE n = 1 AND k.f + 1 <= l.last_day),
                    max(k.size) FILTER (WHERE n = 7 AND k.f + 7 <= l.last_day),
                    max(k.retained) FILTER (WHERE n = 7 AND k.f + 7 <= l.last_day),
                    max(k.size) FILTER (WHERE n = 30 AND k.f + 30 <= l.last_day),
                    max(k.retained) FILTER (WHERE n = 30 AND k.f + 30 <= l.last_day)
             FROM kept k, last l GROUP BY k.f"
        ),
    );
    // The same numbers as retention(guild, 'day') from activity_events, as the view had them.
    assert_same(
        &mut client,
        "retention_daily against retention(guild, 'day')",
        "SELECT day, 1, d1_eligible, d1_retained FROM guildstats_mart.retention_daily WHERE d1_eligible IS NOT NULL
         UNION ALL SELECT day, 7, d7_eligible, d7_retained FROM guildstats_mart.retention_daily WHERE d7_eligible IS NOT NULL
         UNION ALL SELECT day, 30, d30_eligible, d30_retained FROM guildstats_mart.retention_daily WHERE d30_eligible IS NOT NULL",
        &format!(
            "SELECT cohort_start, period_offset, cohort_size, retained
             FROM guildstats.retention({guild}, 'day') WHERE period_offset IN (1, 7, 30)"
        ),
    );
    assert_same(
        &mut client,
        "retention_cohorts: weekly by first activity against retention(guild, 'week')",
        "SELECT cohort_start, cohort_size, period_offset, retained, retained_or_later
         FROM guildstats_mart.retention_cohorts WHERE period = 'week' AND cohort_by = 'first_activity'",
        &format!(
            "SELECT cohort_start, cohort_size, period_offset, retained, retained_or_later
             FROM guildstats.retention({guild}, 'week')"
        ),
    );
    // Monthly cohorts over the months of member_monthly_status, counted member by member.
    for (cohort_by, cohort_of) in [
        ("first_activity", "min(s.month) FILTER (WHERE s.was_active)"),
        ("join", "min(jm.join_month)"),
    ] {
        assert_same(
            &mut client,
            &format!("retention_cohorts: monthly by {cohort_by}, counted member by member"),
            &format!(
                "SELECT cohort_start, cohort_size, period_offset, retained, retained_or_later
                 FROM guildstats_mart.retention_cohorts WHERE period = 'month' AND cohort_by = '{cohort_by}'"
            ),
            &format!(
                "WITH tracked AS (SELECT min(month) AS first FROM guildstats.member_monthly_status),
                 users AS (
                     SELECT s.user_id, {cohort_of} AS cohort,
                            max(s.month) FILTER (WHERE s.was_active) AS last_active
                     FROM guildstats.member_monthly_status s
                     JOIN guildstats_mart.members jm USING (guild_id, user_id)
                     GROUP BY s.user_id),
                 counted AS (
                     SELECT u.* FROM users u, tracked t
                     WHERE u.cohort IS NOT NULL AND ('{cohort_by}' = 'first_activity' OR u.cohort >= t.first)),
                 active AS (SELECT s.user_id, s.month FROM guildstats.member_monthly_status s WHERE s.was_active),
                 last AS (SELECT max(a.month) AS month FROM active a JOIN counted USING (user_id)),
                 cohorts AS (SELECT cohort, count(*) AS size FROM counted GROUP BY cohort)
                 SELECT c.cohort, c.size, o,
                        (SELECT count(*) FROM active a JOIN counted u USING (user_id)
                          WHERE u.cohort = c.cohort AND a.month = (c.cohort + o * interval '1 month')::date),
                        (SELECT count(*) FROM counted u
                          WHERE u.cohort = c.cohort AND u.last_active >= (c.cohort + o * interval '1 month')::date)
                 FROM cohorts c, last l,
                      generate_series(0, (extract(year FROM age(l.month, c.cohort)) * 12
                                          + extract(month FROM age(l.month, c.cohort)))::int) o"
            ),
        );
    }
    // Voice per day and per member and month: the sessions cut at Berlin midnights.
    let voice_pieces = format!(
        "SELECT d::date AS day, v.user_id, v.is_afk,
                extract(epoch FROM least(coalesce(v.ended_at, b.horizon), (d + interval '1 day') AT TIME ZONE '{TZ}')
                                   - greatest(v.started_at, d AT TIME ZONE '{TZ}')) AS seconds
         FROM guildstats.voice_sessions v JOIN guildstats.voice_build_guilds b USING (guild_id)
         CROSS JOIN generate_series((SELECT min(started_at AT TIME ZONE '{TZ}')::date FROM guildstats.voice_sessions)::timestamp,
                                    (SELECT max(horizon AT TIME ZONE '{TZ}')::date FROM guildstats.voice_build_guilds)::timestamp,
                                    interval '1 day') d
         WHERE v.started_at < (d + interval '1 day') AT TIME ZONE '{TZ}'
           AND coalesce(v.ended_at, b.horizon) > d AT TIME ZONE '{TZ}'"
    );
    assert_same(
        &mut client,
        "voice_daily: voice hours and members in voice per day",
        "SELECT day, round(voice_hours::numeric, 6), round(afk_hours::numeric, 6), voice_users
         FROM guildstats_mart.voice_daily",
        &format!(
            "SELECT day, round(coalesce(sum(seconds) FILTER (WHERE NOT is_afk), 0)::numeric / 3600, 6),
                    round(coalesce(sum(seconds) FILTER (WHERE is_afk), 0)::numeric / 3600, 6), count(DISTINCT user_id)
             FROM ({voice_pieces}) p WHERE seconds > 0 GROUP BY day"
        ),
    );
    assert_same(
        &mut client,
        "member_voice_monthly: voice hours per member and month",
        "SELECT month, user_id, member_name, round(voice_hours::numeric, 6) FROM guildstats_mart.member_voice_monthly",
        &format!(
            "SELECT date_trunc('month', day)::date, user_id,
                    coalesce((SELECT m.display_name FROM guildstats.members m WHERE m.user_id = p.user_id),
                             'user ' || p.user_id),
                    round(coalesce(sum(seconds) FILTER (WHERE NOT is_afk), 0)::numeric / 3600, 6)
             FROM ({voice_pieces}) p WHERE seconds > 0 GROUP BY 1, 2"
        ),
    );
    assert_same(
        &mut client,
        "engagement_levels_weekly against the member weeks",
        "SELECT week, engagement_level, members, round(engagement::numeric, 6), events_attended
         FROM guildstats_mart.engagement_levels_weekly",
        "SELECT week, engagement_level, count(*), round(sum(engagement_score)::numeric, 6), sum(events_attended)
         FROM guildstats_mart.member_engagement_weekly GROUP BY 1, 2",
    );
    assert_same(
        &mut client,
        "member_engagement_monthly against the member weeks",
        "SELECT month, user_id, member_name, round(engagement::numeric, 6), round(score_change::numeric, 6)
         FROM guildstats_mart.member_engagement_monthly",
        "SELECT date_trunc('month', week)::date, user_id, member_name, round(sum(engagement_score)::numeric, 6),
                round(sum(score_change)::numeric, 6)
         FROM guildstats_mart.member_engagement_weekly GROUP BY 1, 2, 3",
    );
    assert_same(
        &mut client,
        "chat_daily",
        "SELECT day, channel_id, messages, authors, characters, with_attachments, replies FROM guildstats_mart.chat_daily",
        &format!(
            "SELECT (sent_at AT TIME ZONE '{TZ}')::date, channel_id, count(*), count(DISTINCT user_id),
                    sum(char_count), count(*) FILTER (WHERE attachment_count > 0), count(*) FILTER (WHERE is_reply)
             FROM guildstats.raw_messages WHERE NOT is_bot GROUP BY 1, 2"
        ),
    );
    assert_same(
        &mut client,
        "live_activity_5min",
        "SELECT window_start, messages, authors FROM guildstats_mart.live_activity_5min",
        "SELECT to_timestamp(floor(extract(epoch FROM sent_at) / 300) * 300), count(*), count(DISTINCT user_id)
         FROM guildstats.raw_messages WHERE NOT is_bot GROUP BY 1",
    );
    assert_same(
        &mut client,
        "voice_hour_weekday",
        "SELECT hour_start, weekday, hour_of_day, round(voice_hours::numeric, 6), voice_users
         FROM guildstats_mart.voice_hour_weekday",
        &format!(
            "SELECT h, extract(isodow FROM h AT TIME ZONE '{TZ}')::int, extract(hour FROM h AT TIME ZONE '{TZ}')::int,
                    round(sum(extract(epoch FROM least(coalesce(v.ended_at, b.horizon), h + interval '1 hour')
                                                  - greatest(v.started_at, h))) / 3600, 6),
                    count(DISTINCT v.user_id)
             FROM guildstats.voice_sessions v JOIN guildstats.voice_build_guilds b USING (guild_id)
             CROSS JOIN generate_series(to_timestamp(floor(extract(epoch FROM (SELECT min(started_at) FROM guildstats.voice_sessions)) / 3600) * 3600),
                                        (SELECT max(horizon) FROM guildstats.voice_build_guilds), interval '1 hour') h
             WHERE NOT v.is_afk AND v.started_at < h + interval '1 hour' AND coalesce(v.ended_at, b.horizon) > h
             GROUP BY h"
        ),
    );
    assert_same(
        &mut client,
        "economy_daily: flows and circulation",
        "SELECT day, circulation, earned, spent, net, accounts, users_with_points FROM guildstats_mart.economy_daily",
        &format!(
            "WITH days AS (
                 SELECT generate_series(min((tx_ts AT TIME ZONE '{TZ}')::date), max((tx_ts AT TIME ZONE '{TZ}')::date),
                                        interval '1 day')::date AS day
                 FROM guildstats.raw_point_transactions),
             balances AS (
                 SELECT d.day, t.user_id, sum(t.amount) AS balance
                 FROM days d JOIN guildstats.raw_point_transactions t
                   ON t.tx_ts < (d.day + 1)::timestamp AT TIME ZONE '{TZ}'
                 GROUP BY d.day, t.user_id),
             flows AS (
                 SELECT (tx_ts AT TIME ZONE '{TZ}')::date AS day,
                        sum(greatest(amount, 0)) AS earned, sum(greatest(-amount, 0)) AS spent
                 FROM guildstats.raw_point_transactions GROUP BY 1)
             SELECT d.day, (SELECT sum(b.balance) FROM balances b WHERE b.day = d.day)::bigint,
                    coalesce(f.earned, 0)::bigint, coalesce(f.spent, 0)::bigint,
                    (coalesce(f.earned, 0) - coalesce(f.spent, 0))::bigint,
                    (SELECT count(*) FROM balances b WHERE b.day = d.day),
                    (SELECT count(*) FROM balances b WHERE b.day = d.day AND b.balance > 0)
             FROM days d LEFT JOIN flows f USING (day)"
        ),
    );
    // Inequality and alerts: the rollup's days against one economy_health() walk over all
    // the raw transactions at once.
    assert_same(
        &mut client,
        "economy_daily: inequality and alerts against economy_health()",
        "SELECT day, round(median_balance::numeric, 6), round(top1_share::numeric, 9), round(gini::numeric, 9),
                round(inflation::numeric, 9), negative_streak, alert_inflation, alert_net_negative, alert_gini, alerts
         FROM guildstats_mart.economy_daily",
        &format!(
            "SELECT day, round(median_balance::numeric, 6), round(top1_share::numeric, 9), round(gini::numeric, 9),
                    round(inflation::numeric, 9), negative_streak, alert_inflation, alert_net_negative, alert_gini,
                    array_to_string(alerts, ', ')
             FROM guildstats.economy_health({guild})"
        ),
    );
    // The streak of days with a negative net, counted by plain SQL as the distance to the last
    // day that was not negative (independent of the walk).
    assert_same(
        &mut client,
        "economy_daily: negative_streak against plain SQL",
        "SELECT day, negative_streak FROM guildstats.economy_daily",
        &format!(
            "WITH days AS (
                 SELECT generate_series(min((tx_ts AT TIME ZONE '{TZ}')::date), max((tx_ts AT TIME ZONE '{TZ}')::date),
                                        interval '1 day')::date AS day
                 FROM guildstats.raw_point_transactions),
             net AS (
                 SELECT d.day, coalesce((SELECT sum(t.amount) FROM guildstats.raw_point_transactions t
                                          WHERE (t.tx_ts AT TIME ZONE '{TZ}')::date = d.day), 0) AS net
                 FROM days d)
             SELECT n.day, (n.day - coalesce((SELECT max(o.day) FROM net o WHERE o.day <= n.day AND o.net >= 0),
                                             (SELECT min(day) - 1 FROM days)))::int
             FROM net n"
        ),
    );
    assert_balances_match_the_ledger(&mut client, "after three incremental builds");
    assert_incremental_equals_full(&mut client, "after late and out-of-order transactions");
    assert_balances_match_the_ledger(&mut client, "after a full rebuild");

    assert_same(
        &mut client,
        "economy_flows_daily",
        "SELECT day, user_id, reason, earned, spent, transactions FROM guildstats_mart.economy_flows_daily",
        &format!(
            "SELECT (tx_ts AT TIME ZONE '{TZ}')::date, user_id, CASE WHEN reason = '' THEN '(none)' ELSE reason END,
                    sum(greatest(amount, 0))::numeric, sum(greatest(-amount, 0))::numeric, count(*)
             FROM guildstats.raw_point_transactions GROUP BY 1, 2, 3"
        ),
    );
    assert_same(
        &mut client,
        "member_status_counts_monthly against the member months counted by plain SQL",
        "SELECT month, status, tenure, members FROM guildstats_mart.member_status_counts_monthly",
        "SELECT month, CASE WHEN was_active THEN 'active' ELSE 'inactive' END,
                CASE WHEN month = first THEN 'new this month' ELSE 'from earlier months' END, count(*)
         FROM (SELECT month, was_active, min(month) OVER (PARTITION BY user_id) AS first
               FROM guildstats.member_monthly_status) s
         GROUP BY 1, 2, 3",
    );
    assert_same(
        &mut client,
        "economy_reasons_daily",
        "SELECT day, reason, earned, spent, transactions FROM guildstats_mart.economy_reasons_daily",
        &format!(
            "SELECT (tx_ts AT TIME ZONE '{TZ}')::date, CASE WHEN reason = '' THEN '(none)' ELSE reason END,
                    sum(greatest(amount, 0))::numeric, sum(greatest(-amount, 0))::numeric, count(*)
             FROM guildstats.raw_point_transactions GROUP BY 1, 2"
        ),
    );
    assert_same(
        &mut client,
        "economy_members_monthly",
        "SELECT month, user_id, member_name, earned, spent, transactions FROM guildstats_mart.economy_members_monthly",
        &MEMBERS_MONTHLY_PLAIN,
    );
    assert_same(
        &mut client,
        "game_servers_hourly",
        "SELECT hour, server, polls, ok_polls, round(uptime::numeric, 9), round(avg_players, 6), max_players_seen,
                slots, round(utilization::numeric, 9)
         FROM guildstats_mart.game_servers_hourly",
        "SELECT to_timestamp(floor(extract(epoch FROM polled_at) / 3600) * 3600), server, count(*),
                sum(CASE WHEN ok THEN 1 ELSE 0 END), round(avg(CASE WHEN ok THEN 1 ELSE 0 END), 9),
                round(avg(CASE WHEN ok THEN player_count END), 6), max(CASE WHEN ok THEN player_count END),
                max(CASE WHEN ok THEN max_players END),
                round(avg(CASE WHEN ok AND max_players > 0 THEN player_count::numeric / max_players END), 9)
         FROM guildstats.raw_server_polls GROUP BY 1, 2",
    );
    assert_same(
        &mut client,
        "ingest_lag_hourly",
        "SELECT source_table, hour, rows, round(avg_lag_seconds::numeric, 3), round(p95_lag_seconds::numeric, 3),
                round(max_lag_seconds::numeric, 3)
         FROM guildstats_mart.ingest_lag_hourly",
        "SELECT source_table, to_timestamp(floor(extract(epoch FROM at) / 3600) * 3600), count(*),
                round(avg(extract(epoch FROM received_at - at))::float8::numeric, 3),
                round(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - at))::numeric, 3),
                round(max(extract(epoch FROM received_at - at))::float8::numeric, 3)
         FROM (SELECT 'raw_voice_events' AS source_table, event_ts AS at, received_at FROM guildstats.raw_voice_events
               UNION ALL SELECT 'raw_messages', sent_at, received_at FROM guildstats.raw_messages
               UNION ALL SELECT 'raw_member_events', event_ts, received_at FROM guildstats.raw_member_events
               UNION ALL SELECT 'raw_heartbeats', beat_at, received_at FROM guildstats.raw_heartbeats
               UNION ALL SELECT 'raw_server_polls', polled_at, received_at FROM guildstats.raw_server_polls
               UNION ALL SELECT 'raw_point_transactions', tx_ts, received_at FROM guildstats.raw_point_transactions
               UNION ALL SELECT 'raw_et_stats_files', fetched_at, received_at FROM guildstats.raw_et_stats_files) s
         GROUP BY 1, 2",
    );
}

#[test]
fn erasure_and_isolation_reach_the_dashboard_rollups() {
    let Some(cluster) = Cluster::from_env("mart_rollups_privacy") else {
        return;
    };
    let (db, guild) = loaded(&cluster, "mart_rollups_privacy");
    let mut client = db.connect();

    // The member with the most point transactions is erased: no rollup keeps a row of theirs,
    // and the flows view equals the raw ledger (now without them) again.
    let user: i64 = client
        .query_one(
            "SELECT user_id FROM guildstats.raw_point_transactions GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1",
            &[],
        )
        .expect("a member with points")
        .get(0);
    client
        .batch_execute(&format!(
            "SELECT * FROM guildstats.erase_member(guild_id => {guild}, user_id => {user})"
        ))
        .expect("erase_member");
    for table in [
        "member_active_days",
        "member_points_daily",
        "member_points_monthly",
        "member_point_balances",
        "member_voice_monthly",
        "member_engagement_monthly",
    ] {
        let left: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM guildstats.{table} WHERE user_id = {user}"),
                &[],
            )
            .expect("count")
            .get(0);
        assert_eq!(
            left, 0,
            "guildstats.{table} keeps rows of the erased member"
        );
    }
    assert_same(
        &mut client,
        "economy_flows_daily after erase_member()",
        "SELECT day, user_id, reason, earned, spent, transactions FROM guildstats_mart.economy_flows_daily",
        &format!(
            "SELECT (tx_ts AT TIME ZONE '{TZ}')::date, user_id, CASE WHEN reason = '' THEN '(none)' ELSE reason END,
                    sum(greatest(amount, 0))::numeric, sum(greatest(-amount, 0))::numeric, count(*)
             FROM guildstats.raw_point_transactions GROUP BY 1, 2, 3"
        ),
    );

    assert_same(
        &mut client,
        "economy_members_monthly after erase_member()",
        "SELECT month, user_id, member_name, earned, spent, transactions FROM guildstats_mart.economy_members_monthly",
        &MEMBERS_MONTHLY_PLAIN,
    );
    // The balances kept between builds lose the member with their rows; the next incremental
    // build, with a late transaction and one on a new last day, walks on from them: its days
    // equal one walk over the whole (erased) ledger, and the rebuilt days a full rebuild's.
    assert_balances_match_the_ledger(&mut client, "after erase_member()");
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
             SELECT {guild}, min(user_id), 25, 'late', min(tx_ts) + interval '3 days', 'late after erasure'
               FROM guildstats.raw_point_transactions;
             INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
             SELECT {guild}, max(user_id), -7, 'shop', max(tx_ts) + interval '2 days', 'new day after erasure'
               FROM guildstats.raw_point_transactions;"
        ))
        .expect("new transactions");
    build(&mut client);
    assert_balances_match_the_ledger(&mut client, "after erase_member() and a new build");
    assert_same(
        &mut client,
        "economy_daily after erase_member() and late rows, from the late day on, against economy_health()",
        "SELECT day, circulation, accounts, round(gini::numeric, 9), negative_streak FROM guildstats.economy_daily
         WHERE day >= (SELECT (min(tx_ts) AT TIME ZONE 'Europe/Berlin')::date + 3 FROM guildstats.raw_point_transactions)",
        &format!(
            "SELECT day, circulation, accounts, round(gini::numeric, 9), negative_streak FROM guildstats.economy_health({guild})
             WHERE day >= (SELECT (min(tx_ts) AT TIME ZONE '{TZ}')::date + 3 FROM guildstats.raw_point_transactions)"
        ),
    );

    // A guild without a single transaction gets no economy rows and no balances, incremental or full.
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES ({guild} + 7, '{TZ}');
             SELECT * FROM guildstats.build_rollups(full => true);"
        ))
        .expect("an empty guild");
    for table in ["economy_daily", "member_point_balances"] {
        let rows: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM guildstats.{table} WHERE guild_id <> {guild}"),
                &[],
            )
            .expect("count")
            .get(0);
        assert_eq!(
            rows, 0,
            "guildstats.{table} has rows of a guild without transactions"
        );
    }
    assert_balances_match_the_ledger(&mut client, "after a full rebuild");

    // A reader bound to another guild sees no row of this one through the rollup-backed views.
    apply_roles_script(&db.cluster, &db);
    login_role(&db.cluster, "rollup_reader_login", "guildstats_reader");
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('rollup_reader_login', {})",
            guild + 1
        ))
        .expect("bind the reader elsewhere");
    let views = [
        "executive_daily",
        "retention_daily",
        "retention_cohorts",
        "chat_daily",
        "live_activity_5min",
        "voice_hour_weekday",
        "economy_daily",
        "economy_flows_daily",
        "economy_reasons_daily",
        "economy_members_monthly",
        "member_status_counts_monthly",
        "game_servers_hourly",
        "ingest_lag_hourly",
        "voice_daily",
        "member_voice_monthly",
        "engagement_levels_weekly",
        "member_engagement_monthly",
    ];
    let mut reader = db.connect_as("rollup_reader_login");
    for view in views {
        let rows: i64 = reader
            .query_one(&format!("SELECT count(*) FROM guildstats_mart.{view}"), &[])
            .unwrap_or_else(|e| panic!("reader on guildstats_mart.{view}: {e}"))
            .get(0);
        assert_eq!(
            rows, 0,
            "a reader of another guild sees guildstats_mart.{view}"
        );
    }
    for table in [
        "guild_activity_daily",
        "member_active_days",
        "economy_daily",
    ] {
        let rows: i64 = reader
            .query_one(&format!("SELECT count(*) FROM guildstats.{table}"), &[])
            .unwrap_or_else(|e| panic!("reader on guildstats.{table}: {e}"))
            .get(0);
        assert_eq!(rows, 0, "a reader of another guild sees guildstats.{table}");
    }
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('rollup_reader_login', {guild})"
        ))
        .expect("bind the reader to the guild");
    for view in views {
        let rows: i64 = reader
            .query_one(&format!("SELECT count(*) FROM guildstats_mart.{view}"), &[])
            .unwrap_or_else(|e| panic!("reader on guildstats_mart.{view}: {e}"))
            .get(0);
        assert!(
            rows > 0,
            "the guild's reader sees no rows in guildstats_mart.{view}"
        );
    }
}
