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
