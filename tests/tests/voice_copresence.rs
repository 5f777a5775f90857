//! build_voice_copresence(): shared voice minutes per pair and day, checked against
//! computations written another way: minute-by-minute channel occupancy replayed from the raw
//! voice events (or from voice_sessions), and a plain pairwise join of sessions cut at
//! midnight. Late and out-of-order events followed by incremental builds must equal a full build.

use guildstats_e2e::{db_message, Cluster, TestDb};
use guildstats_synth::{pg, Community, CommunityConfig, Table};
use postgres::Client;

/// Hand-made voice events of guild 1 (AFK channel 99), in three arrival batches. Batch 3 is
/// late: a pair on a day the first builds already covered. Within a batch the rows arrive
/// newest first.
const HAND_EVENTS: &str = "
INSERT INTO guildstats.settings (guild_id, afk_channel_id) VALUES (1, 99);
CREATE TABLE hand (user_id bigint, channel_id bigint, event_ts timestamptz, batch int);
INSERT INTO hand VALUES
 -- a pair across midnight: 30 minutes on Jan 1, 60 on Jan 2
 (1, 10, '2026-01-01 23:00+00', 2), (1, NULL, '2026-01-02 01:30+00', 1),
 (2, 10, '2026-01-01 23:30+00', 1), (2, NULL, '2026-01-02 01:00+00', 2),
 -- three in one channel
 (3, 20, '2026-01-05 10:00+00', 1), (3, NULL, '2026-01-05 12:00+00', 1),
 (4, 20, '2026-01-05 10:30+00', 2), (4, NULL, '2026-01-05 11:30+00', 1),
 (5, 20, '2026-01-05 11:00+00', 1), (5, NULL, '2026-01-05 13:00+00', 2),
 -- a move: 6 is with 8 in channel 30, then with 7 in channel 31
 (6, 30, '2026-01-05 14:00+00', 2), (6, 31, '2026-01-05 15:00+00', 1), (6, NULL, '2026-01-05 16:00+00', 2),
 (7, 31, '2026-01-05 14:00+00', 1), (7, NULL, '2026-01-05 17:00+00', 1),
 (8, 30, '2026-01-05 14:30+00', 2), (8, NULL, '2026-01-05 15:30+00', 1),
 -- AFK together for an hour, then 30 minutes in channel 40
 (9, 99, '2026-01-06 10:00+00', 1), (9, 40, '2026-01-06 11:00+00', 2), (9, NULL, '2026-01-06 11:30+00', 1),
 (10, 99, '2026-01-06 10:00+00', 2), (10, 40, '2026-01-06 11:00+00', 1), (10, NULL, '2026-01-06 12:00+00', 2),
 -- late: 45 minutes on Jan 5
 (11, 10, '2026-01-05 20:00+00', 3), (11, NULL, '2026-01-05 21:00+00', 3),
 (12, 10, '2026-01-05 20:15+00', 3), (12, NULL, '2026-01-05 21:30+00', 3);
";

fn arrive(client: &mut Client, batch: i32) {
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
             SELECT 1, user_id, channel_id, event_ts FROM hand WHERE batch = {batch} ORDER BY event_ts DESC"
        ))
        .unwrap_or_else(|e| panic!("batch {batch}: {}", db_message(&e)));
}

fn build_all(client: &mut Client) {
    for row in client
        .query("SELECT builder, status FROM guildstats.build_all()", &[])
        .unwrap_or_else(|e| panic!("build_all(): {}", db_message(&e)))
    {
        let (builder, status): (String, String) = (row.get(0), row.get(1));
        assert!(status.starts_with("ok"), "{builder}: {status}");
    }
}

/// Rows of `query` (day, user_a, user_b, seconds as text) missing from `other` or extra in it.
fn differences(client: &mut Client, built: &str, other: &str) -> Vec<String> {
    client
        .query(
            &format!(
                "WITH b AS ({built}), o AS ({other})
                 SELECT d::text FROM (
                     (SELECT 'builder only' AS side, * FROM (SELECT * FROM b EXCEPT ALL SELECT * FROM o) x)
                     UNION ALL
                     (SELECT 'other only', * FROM (SELECT * FROM o EXCEPT ALL SELECT * FROM b) y)) d
                 ORDER BY 1 LIMIT 10"
            ),
            &[],
        )
        .unwrap_or_else(|e| panic!("compare: {}", db_message(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const BUILT_MINUTES: &str =
    "SELECT guild_id, day, user_a, user_b, round(shared_seconds)::bigint / 60 AS minutes
                             FROM guildstats.voice_copresence_daily";

/// Replays the raw events minute by minute: at the middle of every minute each user is in the
/// channel of their latest event before it. Exact when every event is on a whole minute.
const OCCUPANCY_MINUTES: &str = "
    SELECT 1::bigint AS guild_id, (a.m AT TIME ZONE s.calendar_time_zone)::date AS day,
           a.user_id AS user_a, b.user_id AS user_b, count(*) AS minutes
    FROM (SELECT m.m, u.user_id,
                 (SELECT e.channel_id FROM guildstats.raw_voice_events e
                   WHERE e.guild_id = 1 AND e.user_id = u.user_id AND e.event_ts <= m.m
                   ORDER BY e.event_ts DESC LIMIT 1) AS channel_id
            FROM generate_series(timestamptz '2026-01-01 00:00:30+00', '2026-01-08', interval '1 minute') m(m),
                 (SELECT DISTINCT user_id FROM guildstats.raw_voice_events WHERE guild_id = 1) u) a
    JOIN (SELECT m.m, u.user_id,
                 (SELECT e.channel_id FROM guildstats.raw_voice_events e
                   WHERE e.guild_id = 1 AND e.user_id = u.user_id AND e.event_ts <= m.m
                   ORDER BY e.event_ts DESC LIMIT 1) AS channel_id
            FROM generate_series(timestamptz '2026-01-01 00:00:30+00', '2026-01-08', interval '1 minute') m(m),
                 (SELECT DISTINCT user_id FROM guildstats.raw_voice_events WHERE guild_id = 1) u) b
      ON b.m = a.m AND b.channel_id = a.channel_id AND b.user_id > a.user_id
    CROSS JOIN guildstats.settings_for(1) s
    WHERE a.channel_id <> 99
    GROUP BY 2, 3, 4";

fn assert_same(client: &mut Client, built: &str, other: &str, what: &str) {
    let diff = differences(client, built, other);
    assert!(diff.is_empty(), "{what}: {diff:#?}");
}

/// The table the incremental builds left equals a full build's.
fn assert_incremental_equals_full(client: &mut Client) {
    client
        .batch_execute(
            "CREATE TEMP TABLE incremental AS SELECT * FROM guildstats.voice_copresence_daily",
        )
        .expect("keep the incremental result");
    let status: String = client
        .query_one(
            "SELECT status FROM guildstats.build_voice_copresence(full => true)",
            &[],
        )
        .expect("full build")
        .get(0);
    assert_eq!(status, "ok: full rebuild");
    assert_same(
        client,
        "SELECT * FROM incremental",
        "SELECT * FROM guildstats.voice_copresence_daily",
        "incremental builds differ from a full build",
    );
}

fn pairs(client: &mut Client) -> Vec<(String, i64, i64, i64)> {
    client
        .query(
            "SELECT day::text, user_a, user_b, round(shared_seconds)::bigint / 60
             FROM guildstats.voice_copresence_daily WHERE guild_id = 1 ORDER BY 1, 2, 3",
            &[],
        )
        .expect("pairs")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[test]
fn hand_made_cases_equal_minute_by_minute_occupancy() {
    let Some(cluster) = Cluster::from_env("copresence_hand") else {
        return;
    };
    let db = TestDb::create(&cluster, "copresence_hand");
    let mut client = db.connect();
    client.batch_execute(HAND_EVENTS).expect("hand-made events");

    for batch in 1..=3 {
        arrive(&mut client, batch);
        build_all(&mut client);
        assert_same(
            &mut client,
            BUILT_MINUTES,
            OCCUPANCY_MINUTES,
            &format!("after batch {batch}, the builder differs from the occupancy replay"),
        );
    }
    let d = |s: &str| s.to_string();
    assert_eq!(
        pairs(&mut client),
        vec![
            (d("2026-01-01"), 1, 2, 30),
            (d("2026-01-02"), 1, 2, 60),
            (d("2026-01-05"), 3, 4, 60),
            (d("2026-01-05"), 3, 5, 60),
            (d("2026-01-05"), 4, 5, 30),
            (d("2026-01-05"), 6, 7, 60),
            (d("2026-01-05"), 6, 8, 30),
            (d("2026-01-05"), 11, 12, 45),
            (d("2026-01-06"), 9, 10, 30),
        ],
        "hand-worked pairs"
    );

    assert_incremental_equals_full(&mut client);

    // Another time zone cuts other days: the guild is rebuilt whole.
    client
        .batch_execute(
            "UPDATE guildstats.settings SET calendar_time_zone = 'Asia/Kolkata' WHERE guild_id = 1",
        )
        .expect("time zone");
    build_all(&mut client);
    assert_same(
        &mut client,
        BUILT_MINUTES,
        OCCUPANCY_MINUTES,
        "after a time zone change",
    );
    assert!(
        pairs(&mut client).contains(&(d("2026-01-02"), 1, 2, 90)),
        "{:?}",
        pairs(&mut client)
    );

    // Top partners, from both sides of the pair.
    let top: Vec<(i64, f64, i64)> = client
        .query(
            "SELECT partner_id, shared_minutes, days_together
             FROM guildstats.voice_top_partners(guild_id => 1, user_id => 4)",
            &[],
        )
        .expect("top partners")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(top, vec![(3, 60.0, 1), (5, 30.0, 1)]);
    let limited: i64 = client
        .query_one(
            "SELECT count(*) FROM guildstats.voice_top_partners(1, 4, max_rows => 1)",
            &[],
        )
        .expect("limit")
        .get(0);
    assert_eq!(limited, 1);

    // The member's export carries their pairs, from either side.
    let exported: i64 = client
        .query_one(
            "SELECT jsonb_array_length(guildstats.export_member(guild_id => 1, user_id => 3)
                                       -> 'tables' -> 'voice_copresence_daily')::bigint",
            &[],
        )
        .expect("export")
        .get(0);
    assert_eq!(exported, 2);

    // Erasing a member removes their pairs and only theirs.
    let erased: i64 = client
        .query_one(
            "SELECT rows_changed FROM guildstats.erase_member(guild_id => 1, user_id => 3)
              WHERE table_name = 'voice_copresence_daily'",
            &[],
        )
        .expect("erase")
        .get(0);
    assert_eq!(erased, 2);
    let left: Vec<(i64, i64)> = client
        .query(
            "SELECT user_a, user_b FROM guildstats.voice_copresence_daily
              WHERE guild_id = 1 AND day = '2026-01-05' AND user_a < 6 ORDER BY 1, 2",
            &[],
        )
        .expect("pairs left")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(left, vec![(4, 5)]);
}

#[test]
fn overlapping_sessions_of_one_member_count_once() {
    let Some(cluster) = Cluster::from_env("copresence_overlap") else {
        return;
    };
    let db = TestDb::create(&cluster, "copresence_overlap");
    let mut client = db.connect();
    // Sessions written directly: the sessionizer never overlaps a member's sessions, but the
    // pairs must not count such time twice if a future source of sessions does.
    client
        .batch_execute(
            "INSERT INTO guildstats.voice_build_guilds (guild_id, horizon, has_heartbeats, settings_fingerprint, built_at)
             VALUES (2, '2026-02-02', false, guildstats._voice_settings_fingerprint(2), now());
             INSERT INTO guildstats.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                    is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
             VALUES (2, 1, 10, '2026-02-01 10:00+00', '2026-02-01 11:00+00', 'leave', false, 'join', false, 0, 0),
                    (2, 1, 10, '2026-02-01 10:30+00', '2026-02-01 11:30+00', 'leave', false, 'join', false, 0, 0),
                    (2, 1, 11, '2026-02-01 10:05+00', '2026-02-01 10:15+00', 'leave', false, 'join', false, 0, 0),
                    (2, 2, 10, '2026-02-01 10:00+00', '2026-02-01 12:00+00', 'leave', false, 'join', false, 0, 0),
                    (2, 2, 11, '2026-02-01 10:01+00', '2026-02-01 10:10+00', 'leave', false, 'join', false, 0, 0),
                    (2, 3, 12, '2026-02-01 10:00+00', NULL, NULL, false, 'join', false, 0, 0),
                    (2, 4, 12, '2026-02-01 23:50+00', NULL, NULL, false, 'join', false, 0, 0);",
        )
        .expect("sessions");
    let status: String = client
        .query_one(
            "SELECT status FROM guildstats.build_voice_copresence()",
            &[],
        )
        .expect("build")
        .get(0);
    assert_eq!(status, "ok");
    // Minute by minute over the sessions: a minute counts when both are in one channel.
    let by_minute = "
        SELECT 2::bigint AS guild_id, (m.m AT TIME ZONE 'UTC')::date AS day, a.user_id AS user_a,
               b.user_id AS user_b, count(DISTINCT m.m) AS minutes
        FROM generate_series(timestamptz '2026-02-01 00:00:30+00', '2026-02-02', interval '1 minute') m(m)
        JOIN guildstats.voice_sessions a ON a.guild_id = 2 AND m.m >= a.started_at AND m.m < coalesce(a.ended_at, '2026-02-02')
        JOIN guildstats.voice_sessions b ON b.guild_id = 2 AND b.channel_id = a.channel_id AND b.user_id > a.user_id
                                        AND m.m >= b.started_at AND m.m < coalesce(b.ended_at, '2026-02-02')
        GROUP BY 2, 3, 4";
    assert_same(
        &mut client,
        BUILT_MINUTES,
        by_minute,
        "the builder differs from minute-by-minute occupancy",
    );
    let minutes: Vec<(i64, i64, i64)> = client
        .query(
            "SELECT user_a, user_b, round(shared_seconds)::bigint / 60 FROM guildstats.voice_copresence_daily ORDER BY 1, 2",
            &[],
        )
        .expect("pairs")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // 10:00-11:30 in channel 10 (10:05-10:10 also in channel 11: still once); open sessions up
    // to the horizon, midnight.
    assert_eq!(minutes, vec![(1, 2, 90), (3, 4, 10)]);
}

/// A small synthetic community whose raw voice events arrive shuffled in four parts, with a
/// build after each: the pairs equal a full build and a pairwise join of the sessions.
#[test]
fn synthetic_community_in_shuffled_parts() {
    let Some(cluster) = Cluster::from_env("copresence_synth") else {
        return;
    };
    let db = TestDb::create(&cluster, "copresence_synth");
    let mut client = db.connect();
    let community = Community::new(CommunityConfig::tiny().with_seed(7)).expect("valid config");
    pg::load(
        &mut client,
        &community,
        &[
            Table::Guilds,
            Table::VoiceEvents,
            Table::VoiceSnapshots,
            Table::Heartbeats,
        ],
    )
    .expect("load the synthetic community");
    client
        .batch_execute(
            "CREATE TABLE hold AS SELECT *, ntile(4) OVER (ORDER BY hashtext(ingest_id::text)) AS part
               FROM guildstats.raw_voice_events;
             TRUNCATE guildstats.raw_voice_events;",
        )
        .expect("hold the events back");
    for part in 1..=4 {
        client
            .batch_execute(&format!(
                "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf,
                                                          server_mute, server_deaf, self_stream, self_video)
                 SELECT guild_id, user_id, channel_id, event_ts, self_mute, self_deaf, server_mute, server_deaf,
                        self_stream, self_video
                 FROM hold WHERE part = {part} ORDER BY hashtext(ingest_id::text || 'order')"
            ))
            .unwrap_or_else(|e| panic!("part {part}: {}", db_message(&e)));
        build_all(&mut client);
    }
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM guildstats.voice_copresence_daily",
            &[],
        )
        .expect("count")
        .get(0);
    assert!(
        rows > 0,
        "the community shares no voice time: nothing is tested"
    );

    let exact = "SELECT guild_id, day, user_a, user_b, round(shared_seconds * 1000)::bigint AS ms
                 FROM guildstats.voice_copresence_daily";
    // Each pair of overlapping sessions in one channel, the overlap cut at every midnight of
    // the guild's time zone (the sessionizer never overlaps one member's sessions).
    let pairwise = "
        SELECT a.guild_id, d.day::date AS day, a.user_id AS user_a, b.user_id AS user_b,
               round(sum(extract(epoch FROM
                   least(a.e, b.e, (d.day + interval '1 day') AT TIME ZONE s.calendar_time_zone)
                   - greatest(a.started_at, b.started_at, d.day AT TIME ZONE s.calendar_time_zone))) * 1000)::bigint
        FROM (SELECT v.*, coalesce(v.ended_at, g.horizon) AS e FROM guildstats.voice_sessions v
                JOIN guildstats.voice_build_guilds g USING (guild_id) WHERE NOT v.is_afk) a
        JOIN (SELECT v.*, coalesce(v.ended_at, g.horizon) AS e FROM guildstats.voice_sessions v
                JOIN guildstats.voice_build_guilds g USING (guild_id) WHERE NOT v.is_afk) b
          ON b.guild_id = a.guild_id AND b.channel_id = a.channel_id AND b.user_id > a.user_id
         AND b.started_at < a.e AND a.started_at < b.e
        CROSS JOIN LATERAL guildstats.settings_for(a.guild_id) s
        CROSS JOIN LATERAL generate_series(
            (greatest(a.started_at, b.started_at) AT TIME ZONE s.calendar_time_zone)::date::timestamp,
            (least(a.e, b.e) AT TIME ZONE s.calendar_time_zone)::date::timestamp, interval '1 day') d(day)
        WHERE least(a.e, b.e, (d.day + interval '1 day') AT TIME ZONE s.calendar_time_zone)
              > greatest(a.started_at, b.started_at, d.day AT TIME ZONE s.calendar_time_zone)
        GROUP BY 1, 2, 3, 4";
    assert_same(
        &mut client,
        exact,
        pairwise,
        "incremental pairs differ from a pairwise join of the sessions",
    );
    assert_incremental_equals_full(&mut client);
}

/// Connected components by closure: every member reaches every member of their group through
/// the pairs above the threshold; the group is named by the smallest id reached.
const GROUPS_BY_CLOSURE: &str = "
    WITH RECURSIVE t AS (SELECT * FROM guildstats.regulars_threshold_for(5)),
    last AS (SELECT max(day) AS d FROM guildstats.voice_copresence_daily WHERE guild_id = 5),
    edges AS (
        SELECT user_a AS x, user_b AS y FROM guildstats.voice_copresence_daily, t, last
         WHERE guild_id = 5 AND day > last.d - t.window_days AND day <= last.d
         GROUP BY user_a, user_b, t.min_minutes HAVING sum(shared_seconds) >= t.min_minutes * 60
        UNION SELECT user_b, user_a FROM guildstats.voice_copresence_daily, t, last
         WHERE guild_id = 5 AND day > last.d - t.window_days AND day <= last.d
         GROUP BY user_a, user_b, t.min_minutes HAVING sum(shared_seconds) >= t.min_minutes * 60),
    reach(member, other) AS (
        SELECT x, x FROM edges UNION SELECT r.member, e.y FROM reach r JOIN edges e ON e.x = r.other),
    grouped AS (SELECT member, min(other) AS group_id FROM reach GROUP BY member)
    SELECT group_id, member, (count(*) OVER (PARTITION BY group_id))::integer FROM grouped";

fn groups(client: &mut Client, sql: &str) -> Vec<(i64, i64, i32)> {
    let mut rows: Vec<(i64, i64, i32)> = client
        .query(sql, &[])
        .unwrap_or_else(|e| panic!("groups: {}", db_message(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    rows.sort_unstable();
    rows
}

#[test]
fn groups_of_regulars_are_the_connected_components_above_the_threshold() {
    let Some(cluster) = Cluster::from_env("copresence_groups") else {
        return;
    };
    let db = TestDb::create(&cluster, "copresence_groups");
    let mut client = db.connect();
    // Pairs written directly (minutes per day); the last day is March 31.
    client
        .batch_execute(
            "INSERT INTO guildstats.voice_copresence_daily (guild_id, day, user_a, user_b, shared_seconds)
             SELECT 5, day::date, a, b, minutes * 60.0 FROM (VALUES
                 ('2026-03-20', 1, 2, 70), ('2026-03-25', 2, 3, 60),            -- a chain: one group
                 ('2026-03-30', 4, 5, 59),                                      -- just below
                 ('2026-02-20', 5, 6, 120),                                     -- before the window
                 ('2026-03-31', 7, 8, 120),
                 ('2026-03-10', 9, 10, 30), ('2026-03-11', 9, 10, 30),          -- 60 over two days
                 ('2026-03-31', 3, 11, 10)) AS p(day, a, b, minutes);",
        )
        .expect("pairs");
    let built =
        "SELECT group_id, user_id, group_size FROM guildstats.voice_regular_groups(guild_id => 5)";
    let expected = vec![
        (1, 1, 3),
        (1, 2, 3),
        (1, 3, 3),
        (7, 7, 2),
        (7, 8, 2),
        (9, 9, 2),
        (9, 10, 2),
    ];
    assert_eq!(groups(&mut client, built), expected);
    assert_eq!(groups(&mut client, GROUPS_BY_CLOSURE), expected);

    // A stricter threshold for this guild; an earlier as_of sees other pairs.
    client
        .batch_execute(
            "INSERT INTO guildstats.settings (guild_id, regular_min_minutes) VALUES (5, 70)",
        )
        .expect("threshold");
    assert_eq!(
        groups(&mut client, built),
        groups(&mut client, GROUPS_BY_CLOSURE)
    );
    assert_eq!(
        groups(&mut client, built),
        vec![(1, 1, 2), (1, 2, 2), (7, 7, 2), (7, 8, 2)]
    );
    assert_eq!(
        groups(
            &mut client,
            "SELECT group_id, user_id, group_size FROM guildstats.voice_regular_groups(5, as_of => '2026-03-01')"
        ),
        vec![(5, 5, 2), (5, 6, 2)]
    );
    let rejected = client
        .batch_execute("UPDATE guildstats.settings SET regular_window_days = 0 WHERE guild_id = 5");
    assert!(rejected.is_err(), "a window of 0 days is refused");
}

/// Regulars 1, 2 and 3 meet every evening in January and February. Newcomers: 10 (first seen
/// Feb 1) meets all three on Feb 3 and comes back on Mar 10; 11 (Feb 2) meets only newcomer 10;
/// 12 (Feb 5) meets regular 1. Regular 1 is also seen on Mar 10, so the data reaches day 30
/// of everyone.
const NEWCOMER_EVENTS: &str = "
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
SELECT 6, u, c, t FROM (
    SELECT u, 10 AS c, d + interval '20 hours' AS t FROM generate_series(timestamptz '2026-01-01 00:00+00', '2026-02-28', interval '1 day') d, generate_series(1, 3) u
    UNION ALL
    SELECT u, NULL, d + interval '21 hours' FROM generate_series(timestamptz '2026-01-01 00:00+00', '2026-02-28', interval '1 day') d, generate_series(1, 3) u
    UNION ALL VALUES
    (10, 20, timestamptz '2026-02-01 20:00+00'), (10, NULL, '2026-02-01 20:10+00'),
    (10, 10, '2026-02-03 20:00+00'), (10, NULL, '2026-02-03 20:30+00'),
    (11, 30, '2026-02-02 19:00+00'), (11, NULL, '2026-02-02 19:10+00'),
    (11, 30, '2026-02-04 19:00+00'), (11, NULL, '2026-02-04 19:30+00'),
    (10, 30, '2026-02-04 19:00+00'), (10, NULL, '2026-02-04 19:30+00'),
    (12, 40, '2026-02-05 22:00+00'), (12, NULL, '2026-02-05 22:20+00'),
    (1, 40, '2026-02-05 22:00+00'), (1, NULL, '2026-02-05 22:20+00'),
    (10, 50, '2026-03-10 12:00+00'), (10, NULL, '2026-03-10 12:05+00'),
    (1, 50, '2026-03-10 12:00+00'), (1, NULL, '2026-03-10 12:05+00')) e(u, c, t);
";

/// The score from the sessions alone: partners are members with an overlapping session in the
/// same channel in the newcomer's first 14 days; a partner is a regular when some pair of theirs
/// overlapped at least the threshold in the window before the newcomer's first day.
const SCORE_FROM_SESSIONS: &str = "
    WITH s AS (SELECT user_id, channel_id, started_at, ended_at FROM guildstats.voice_sessions WHERE guild_id = 6 AND NOT is_afk),
    newcomer AS (SELECT user_id, (first_seen AT TIME ZONE 'UTC')::date AS first_day FROM guildstats.members
                  WHERE guild_id = 6 AND first_seen >= (SELECT min(first_seen) FROM guildstats.members WHERE guild_id = 6) + interval '28 days'),
    overlap AS (
        SELECT a.user_id AS x, b.user_id AS y, greatest(a.started_at, b.started_at) AS from_t,
               least(a.ended_at, b.ended_at) AS to_t
          FROM s a JOIN s b ON a.channel_id = b.channel_id AND a.user_id <> b.user_id
           AND a.started_at < b.ended_at AND b.started_at < a.ended_at)
    SELECT n.user_id, count(DISTINCT o.y) FILTER (WHERE EXISTS (
               SELECT 1 FROM overlap r
                WHERE r.x = o.y AND r.from_t >= n.first_day::timestamp AT TIME ZONE 'UTC' - interval '28 days'
                  AND r.to_t <= n.first_day::timestamp AT TIME ZONE 'UTC'
                GROUP BY r.y HAVING sum(extract(epoch FROM r.to_t - r.from_t)) >= 3600))
    FROM newcomer n
    LEFT JOIN overlap o ON o.x = n.user_id AND o.from_t >= n.first_day::timestamp AT TIME ZONE 'UTC'
                       AND o.from_t < (n.first_day + 14)::timestamp AT TIME ZONE 'UTC'
    GROUP BY n.user_id ORDER BY 1";

#[test]
fn newcomer_integration_counts_regulars_met_in_the_first_two_weeks() {
    let Some(cluster) = Cluster::from_env("copresence_newcomers") else {
        return;
    };
    let db = TestDb::create(&cluster, "copresence_newcomers");
    let mut client = db.connect();
    client.batch_execute(NEWCOMER_EVENTS).expect("events");
    build_all(&mut client);

    let scores: Vec<(i64, String, i32, String, Option<bool>)> = client
        .query(
            "SELECT user_id, first_day::text, regulars_met, score_band, retained_d30
             FROM guildstats.voice_newcomer_integration(guild_id => 6) ORDER BY user_id",
            &[],
        )
        .expect("scores")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        scores,
        vec![
            (10, s("2026-02-01"), 3, s("3-5"), Some(true)),
            (11, s("2026-02-02"), 0, s("0"), Some(false)),
            (12, s("2026-02-05"), 1, s("1-2"), Some(false)),
        ]
    );
    let independent: Vec<(i64, i64)> = client
        .query(SCORE_FROM_SESSIONS, &[])
        .unwrap_or_else(|e| panic!("score from sessions: {}", db_message(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(independent, vec![(10, 3), (11, 0), (12, 1)]);

    let bands: Vec<(String, i64, i64, String)> = client
        .query(
            "SELECT score_band, newcomers, retained_d30, d30_rate::text
             FROM guildstats.voice_integration_retention WHERE guild_id = 6 ORDER BY min_regulars_met",
            &[],
        )
        .expect("bands")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        bands,
        vec![
            (s("0"), 1, 0, s("0.000")),
            (s("1-2"), 1, 0, s("0.000")),
            (s("3-5"), 1, 1, s("1.000")),
        ]
    );
}
