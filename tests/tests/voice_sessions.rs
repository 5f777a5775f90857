//! build_voice_sessions() on synthetic communities: the raw rows arrive in several increments,
//! late, duplicated and out of order, with a build after each; the sessions must equal
//! (a) a full rebuild of what has arrived, after every increment, (b) the generator's
//! observable ground truth once everything has arrived, and (c) for a community without
//! outages, per-user per-channel voice seconds computed in plain SQL with window functions.

use guildstats_e2e::{db_message, Cluster, TestDb};
use guildstats_synth::{pg, Community, CommunityConfig, EndReason, Table};
use postgres::Client;

const VOICE_TABLES: [Table; 4] = [
    Table::Guilds,
    Table::VoiceEvents,
    Table::VoiceSnapshots,
    Table::Heartbeats,
];

/// How the raw rows arrive.
#[derive(Clone, Copy, Debug)]
enum Arrival {
    /// Mostly in time order; one row in eight is held back by up to three days.
    MostlyInOrder,
    /// In a random order.
    Shuffled,
}

/// Loads the community, then takes the raw voice rows out again into holding tables, with the
/// increment each row will arrive in.
fn stage(client: &mut Client, community: &Community, arrival: Arrival, increments: i32) {
    pg::load(client, community, &VOICE_TABLES).expect("load the synthetic community");
    let key = |time: &str| {
        match arrival {
        Arrival::MostlyInOrder => format!(
            "{time} + CASE WHEN hashtext(ingest_id::text || 'late') % 8 = 0
                           THEN (abs(hashtext(ingest_id::text)) % 259200) * interval '1 second'
                           ELSE interval '0' END"
        ),
        Arrival::Shuffled => "timestamptz 'epoch' + abs(hashtext(ingest_id::text || 'shuffle')) * interval '1 second'"
            .to_string(),
    }
    };
    client
        .batch_execute(&format!(
            "CREATE TABLE hold_events AS SELECT *, {} AS arrive FROM guildstats.raw_voice_events;
             CREATE TABLE hold_snapshots AS SELECT *, {} AS arrive FROM guildstats.raw_voice_snapshots;
             CREATE TABLE hold_beats AS SELECT *, {} AS arrive FROM guildstats.raw_heartbeats;
             CREATE TABLE arrivals AS
             SELECT kind, ingest_id, ntile({increments}) OVER (ORDER BY arrive, kind, ingest_id) AS increment
             FROM (SELECT 'e' AS kind, ingest_id, arrive FROM hold_events
                   UNION ALL SELECT 's', ingest_id, arrive FROM hold_snapshots
                   UNION ALL SELECT 'h', ingest_id, arrive FROM hold_beats) a;
             TRUNCATE guildstats.raw_voice_events, guildstats.raw_voice_snapshots, guildstats.raw_heartbeats;",
            key("event_ts"),
            key("taken_at"),
            key("beat_at")
        ))
        .expect("stage the raw voice rows");
}

/// Inserts increment `n` in arrival order, plus a replay of some rows that already arrived
/// (duplicates: ON CONFLICT DO NOTHING burns identity values, leaving gaps).
fn arrive(client: &mut Client, n: i32) {
    client
        .batch_execute(&format!(
            "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf,
                                                      server_mute, server_deaf, self_stream, self_video)
             SELECT h.guild_id, h.user_id, h.channel_id, h.event_ts, h.self_mute, h.self_deaf,
                    h.server_mute, h.server_deaf, h.self_stream, h.self_video
             FROM hold_events h JOIN arrivals a ON a.kind = 'e' AND a.ingest_id = h.ingest_id
             WHERE a.increment = {n} OR (a.increment < {n} AND h.ingest_id % 23 = 0)
             ORDER BY h.arrive
             ON CONFLICT DO NOTHING;
             INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states)
             SELECT h.guild_id, h.taken_at, h.voice_states
             FROM hold_snapshots h JOIN arrivals a ON a.kind = 's' AND a.ingest_id = h.ingest_id
             WHERE a.increment = {n} ORDER BY h.arrive
             ON CONFLICT DO NOTHING;
             INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
             SELECT h.source, h.guild_id, h.beat_at
             FROM hold_beats h JOIN arrivals a ON a.kind = 'h' AND a.ingest_id = h.ingest_id
             WHERE a.increment = {n} ORDER BY h.arrive
             ON CONFLICT DO NOTHING;"
        ))
        .unwrap_or_else(|e| panic!("increment {n}: {}", db_message(&e)));
}

fn build(client: &mut Client) -> String {
    client
        .query_one("SELECT status FROM guildstats.build_voice_sessions()", &[])
        .unwrap_or_else(|e| panic!("build_voice_sessions(): {}", db_message(&e)))
        .get(0)
}

/// Sessions that differ between the built table and a full rebuild computed on the side
/// (the sessionizer over every raw row, with the same horizon), as text, at most 10.
fn differences_from_full_rebuild(client: &mut Client) -> Vec<String> {
    client
        .query(
            "WITH built AS (
                 SELECT guild_id, user_id, channel_id, started_at, ended_at, end_reason, is_afk,
                        start_reason, capped, self_mute_seconds, self_deaf_seconds
                 FROM guildstats.voice_sessions),
             rebuilt AS (
                 SELECT b.guild_id, n.user_id, n.channel_id, n.started_at, n.ended_at, n.end_reason, n.is_afk,
                        n.start_reason, n.capped, n.self_mute_seconds, n.self_deaf_seconds
                 FROM guildstats.voice_build_guilds b
                 CROSS JOIN LATERAL guildstats.settings_for(b.guild_id) s
                 CROSS JOIN LATERAL guildstats._voice_sessionize(b.guild_id, b.horizon, s.afk_channel_id,
                     s.ignored_channel_ids, s.session_cap, s.outage_after) n)
             SELECT d::text FROM (
                 (SELECT 'built only' AS side, * FROM (SELECT * FROM built EXCEPT ALL SELECT * FROM rebuilt) x)
                 UNION ALL
                 (SELECT 'rebuild only', * FROM (SELECT * FROM rebuilt EXCEPT ALL SELECT * FROM built) y)) d
             ORDER BY 1 LIMIT 10",
            &[],
        )
        .expect("compare with a full rebuild")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Runs every increment with a build after each, checking against a full rebuild each time.
fn build_in_increments(client: &mut Client, increments: i32) {
    for n in 1..=increments {
        arrive(client, n);
        assert_eq!(build(client), "ok", "increment {n}");
        let diff = differences_from_full_rebuild(client);
        assert!(
            diff.is_empty(),
            "after increment {n}, incremental sessions differ from a full rebuild: {diff:#?}"
        );
    }
    // Nothing new: nothing changes.
    let row = client
        .query_one(
            "SELECT events_read, users_rebuilt FROM guildstats.build_voice_sessions()",
            &[],
        )
        .expect("idle build");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (0, 0));
}

type SessionKey = (i64, i64, i64, Option<i64>, bool, Option<&'static str>);

/// The built sessions, as the generator's truth describes them.
fn built_sessions(client: &mut Client) -> Vec<SessionKey> {
    let mut v: Vec<SessionKey> = client
        .query(
            "SELECT user_id, channel_id,
                    (extract(epoch FROM started_at) * 1000000)::bigint,
                    (extract(epoch FROM ended_at) * 1000000)::bigint, is_afk, end_reason
             FROM guildstats.voice_sessions",
            &[],
        )
        .expect("sessions")
        .iter()
        .map(|r| {
            let reason: Option<String> = r.get(5);
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                reason.map(|s| match s.as_str() {
                    "leave" => "leave",
                    "move" => "move",
                    "outage" => "outage",
                    other => panic!("unexpected end reason {other}"),
                }),
            )
        })
        .collect();
    v.sort_unstable();
    v
}

fn truth_sessions(community: &Community) -> Vec<SessionKey> {
    let mut v: Vec<SessionKey> = community
        .observable_voice_truth()
        .expect("truth")
        .iter()
        .map(|s| {
            (
                s.user_id,
                s.channel_id,
                s.start.micros(),
                s.end.map(|t| t.micros()),
                s.is_afk,
                match s.end_reason {
                    EndReason::Left => Some("leave"),
                    EndReason::Moved => Some("move"),
                    EndReason::Outage => Some("outage"),
                    EndReason::Open => None,
                },
            )
        })
        .collect();
    v.sort_unstable();
    v
}

fn assert_matches_truth(client: &mut Client, community: &Community) {
    let built = built_sessions(client);
    let truth = truth_sessions(community);
    let only_built: Vec<_> = built
        .iter()
        .filter(|s| truth.binary_search(s).is_err())
        .take(5)
        .collect();
    let only_truth: Vec<_> = truth
        .iter()
        .filter(|s| built.binary_search(s).is_err())
        .take(5)
        .collect();
    assert!(
        only_built.is_empty() && only_truth.is_empty() && built.len() == truth.len(),
        "{} built vs {} true sessions; built only: {only_built:?}; truth only: {only_truth:?}",
        built.len(),
        truth.len()
    );
}

fn run_scenario(test: &str, config: CommunityConfig, arrival: Arrival, increments: i32) {
    let Some(cluster) = Cluster::from_env(test) else {
        return;
    };
    let db = TestDb::create(&cluster, test);
    let mut client = db.connect();
    let community = Community::new(config).expect("valid config");
    stage(&mut client, &community, arrival, increments);
    build_in_increments(&mut client, increments);
    assert_matches_truth(&mut client, &community);
    // And a real full rebuild gives the same table.
    let before = built_sessions(&mut client);
    let status: String = client
        .query_one(
            "SELECT status FROM guildstats.rebuild_voice_sessions()",
            &[],
        )
        .expect("rebuild")
        .get(0);
    assert_eq!(status, "ok: full rebuild");
    assert_eq!(built_sessions(&mut client), before);
}

#[test]
fn tiny_community_late_and_duplicated_arrivals() {
    run_scenario(
        "voice_tiny_late",
        CommunityConfig::tiny().with_seed(11),
        Arrival::MostlyInOrder,
        8,
    );
}

#[test]
fn tiny_community_shuffled_arrivals() {
    run_scenario(
        "voice_tiny_shuffled",
        CommunityConfig::tiny().with_seed(12),
        Arrival::Shuffled,
        6,
    );
}

#[test]
fn few_thousand_members_late_arrivals() {
    run_scenario(
        "voice_large_late",
        CommunityConfig::tiny().with_seed(13).with_members(2500),
        Arrival::MostlyInOrder,
        4,
    );
}

/// Without outages, a user's voice seconds per channel are plain arithmetic over the events:
/// each event's channel holds until the user's next event (or the horizon).
#[test]
fn voice_seconds_match_a_plain_sql_computation() {
    let Some(cluster) = Cluster::from_env("voice_plain_sql") else {
        return;
    };
    let db = TestDb::create(&cluster, "voice_plain_sql");
    let mut client = db.connect();
    let mut config = CommunityConfig::tiny().with_seed(14).with_members(300);
    config.outages = 0;
    let community = Community::new(config).expect("valid config");
    pg::load(&mut client, &community, &VOICE_TABLES).expect("load");
    assert_eq!(build(&mut client), "ok");
    let differences: Vec<String> = client
        .query(
            "WITH horizon AS (SELECT guild_id, horizon FROM guildstats.voice_build_guilds),
             stints AS (
                 SELECT e.guild_id, e.user_id, e.channel_id, e.event_ts,
                        coalesce(lead(e.event_ts) OVER w, h.horizon) AS until
                 FROM guildstats.raw_voice_events e JOIN horizon h USING (guild_id)
                 WINDOW w AS (PARTITION BY e.guild_id, e.user_id ORDER BY e.event_ts)),
             plain AS (
                 SELECT user_id, channel_id,
                        round(sum(greatest(extract(epoch FROM until - event_ts), 0))) AS seconds
                 FROM stints WHERE channel_id IS NOT NULL GROUP BY 1, 2),
             built AS (
                 SELECT v.user_id, v.channel_id,
                        round(sum(extract(epoch FROM coalesce(v.ended_at, h.horizon) - v.started_at))) AS seconds
                 FROM guildstats.voice_sessions v JOIN horizon h USING (guild_id) GROUP BY 1, 2)
             SELECT coalesce(p.user_id, b.user_id) || '/' || coalesce(p.channel_id, b.channel_id)
                    || ': plain ' || coalesce(p.seconds, 0) || ' s, built ' || coalesce(b.seconds, 0) || ' s'
             FROM plain p FULL JOIN built b USING (user_id, channel_id)
             WHERE coalesce(p.seconds, 0) <> coalesce(b.seconds, 0)
             ORDER BY 1 LIMIT 10",
            &[],
        )
        .expect("compare")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(differences.is_empty(), "{differences:#?}");
    let sessions: i64 = client
        .query_one("SELECT count(*) FROM guildstats.voice_sessions", &[])
        .expect("count")
        .get(0);
    assert!(sessions > 100, "only {sessions} sessions");
}

/// A second caller while a build is running gets a row that says so, and does nothing.
#[test]
fn a_concurrent_build_is_skipped() {
    let Some(cluster) = Cluster::from_env("voice_concurrent") else {
        return;
    };
    let db = TestDb::create(&cluster, "voice_concurrent");
    let mut first = db.connect();
    let mut second = db.connect();
    first
        .batch_execute(
            "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
             VALUES (1, 10, 100, '2026-03-01 20:00+00');
             BEGIN;
             SELECT * FROM guildstats.build_voice_sessions();",
        )
        .expect("first build, transaction left open");
    let row = second
        .query_one(
            "SELECT status, events_read FROM guildstats.build_voice_sessions()",
            &[],
        )
        .expect("second build");
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i64>(1)),
        (
            "skipped: another build_voice_sessions() is running".to_string(),
            0
        )
    );
    first.batch_execute("COMMIT").expect("commit");
    let status: String = second
        .query_one("SELECT status FROM guildstats.build_voice_sessions()", &[])
        .expect("build after the first one")
        .get(0);
    assert_eq!(status, "ok");
}

/// A writer that drew an ingest_id and has not committed yet is never stepped over: its row is
/// processed by the first build after it commits, although later ids were processed before.
#[test]
fn rows_of_a_writer_in_flight_are_not_skipped() {
    let Some(cluster) = Cluster::from_env("voice_in_flight") else {
        return;
    };
    let db = TestDb::create(&cluster, "voice_in_flight");
    let mut slow_writer = db.connect();
    let mut fast_writer = db.connect();
    let mut builder = db.connect();
    slow_writer
        .batch_execute(
            "BEGIN;
             INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
             VALUES (1, 10, 100, '2026-03-01 20:00+00');",
        )
        .expect("slow writer draws the first id");
    fast_writer
        .batch_execute(
            "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
             VALUES (1, 11, 100, '2026-03-01 20:05+00'), (1, 11, NULL, '2026-03-01 20:30+00');",
        )
        .expect("fast writer commits later ids");
    let row = builder
        .query_one(
            "SELECT events_read, status FROM guildstats.build_voice_sessions()",
            &[],
        )
        .expect("build while a writer is in flight");
    assert_eq!(row.get::<_, i64>(0), 2, "only the committed rows");
    let pending: String = builder
        .query_one(
            "SELECT pending_ids::text FROM guildstats.build_progress
             WHERE builder = 'build_voice_sessions' AND source_table = 'raw_voice_events'",
            &[],
        )
        .expect("progress")
        .get(0);
    assert_eq!(pending, "{[1,2)}", "the in-flight id stays pending");
    slow_writer
        .batch_execute("COMMIT")
        .expect("slow writer commits");
    let read: i64 = builder
        .query_one(
            "SELECT events_read FROM guildstats.build_voice_sessions()",
            &[],
        )
        .expect("build after the commit")
        .get(0);
    assert_eq!(read, 1, "the late-committed row is processed");
    let users: i64 = builder
        .query_one(
            "SELECT count(DISTINCT user_id) FROM guildstats.voice_sessions",
            &[],
        )
        .expect("sessions")
        .get(0);
    assert_eq!(users, 2);
    let pending: String = builder
        .query_one(
            "SELECT pending_ids::text FROM guildstats.build_progress
             WHERE builder = 'build_voice_sessions' AND source_table = 'raw_voice_events'",
            &[],
        )
        .expect("progress")
        .get(0);
    assert_eq!(pending, "{}");
}

/// An incremental build reads what arrived and the state of the users it touches, not the
/// history: on a history of weeks, the last few hours of events arrive, and the rows the build
/// reads from each big table (counted by PostgreSQL for its transaction) stay a small fraction
/// of the table. Times are not measured; rows read do not depend on the machine.
#[test]
fn an_incremental_build_reads_a_small_part_of_the_history() {
    let Some(cluster) = Cluster::from_env("voice_bounded") else {
        return;
    };
    let db = TestDb::create(&cluster, "voice_bounded");
    let mut client = db.connect();
    let community = Community::new(
        CommunityConfig::tiny()
            .with_seed(16)
            .with_members(600)
            .with_days(28),
    )
    .expect("valid config");
    pg::load(&mut client, &community, &VOICE_TABLES).expect("load");
    // The last two hours arrive after the history was built, with the heartbeats since.
    client
        .batch_execute(
            "CREATE TABLE held_events AS SELECT * FROM guildstats.raw_voice_events
              WHERE event_ts > (SELECT max(event_ts) - interval '2 hours' FROM guildstats.raw_voice_events);
             CREATE TABLE held_beats AS SELECT * FROM guildstats.raw_heartbeats
              WHERE beat_at > (SELECT min(event_ts) FROM held_events);
             DELETE FROM guildstats.raw_voice_events WHERE ingest_id IN (SELECT ingest_id FROM held_events);
             DELETE FROM guildstats.raw_heartbeats WHERE ingest_id IN (SELECT ingest_id FROM held_beats);
             -- Among them, the member who has been away longest comes back for ten minutes.
             CREATE TABLE returning_member AS
             SELECT e.guild_id, e.user_id, max(e.event_ts) AS last_seen,
                    (SELECT max(event_ts) - interval '30 minutes' FROM held_events) AS back_at
             FROM guildstats.raw_voice_events e GROUP BY 1, 2
             HAVING (array_agg(e.channel_id ORDER BY e.event_ts DESC))[1] IS NULL
             ORDER BY max(e.event_ts) LIMIT 1;
             INSERT INTO held_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
             SELECT r.guild_id, r.user_id, c.channel_id, r.back_at + d.after, false, false
             FROM returning_member r
             CROSS JOIN (SELECT channel_id FROM guildstats.raw_voice_events
                         WHERE channel_id IS NOT NULL ORDER BY event_ts LIMIT 1) c
             CROSS JOIN (VALUES (interval '0'), (interval '10 minutes')) d(after);
             UPDATE held_events h SET channel_id = NULL FROM returning_member r
             WHERE h.user_id = r.user_id AND h.event_ts = r.back_at + interval '10 minutes';",
        )
        .expect("hold back the last hours");
    let away_days: f64 = client
        .query_one(
            "SELECT (extract(epoch FROM back_at - last_seen) / 86400)::float8 FROM returning_member",
            &[],
        )
        .expect("the returning member")
        .get(0);
    assert!(
        away_days > 14.0,
        "the returning member was away only {away_days} days"
    );
    assert_eq!(build(&mut client), "ok");
    client
        .batch_execute(
            "ANALYZE guildstats.raw_voice_events, guildstats.raw_heartbeats, guildstats.raw_voice_snapshots,
                     guildstats.voice_sessions;
             INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
             SELECT guild_id, user_id, channel_id, event_ts, self_mute, self_deaf FROM held_events ORDER BY event_ts;
             INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
             SELECT source, guild_id, beat_at FROM held_beats ORDER BY beat_at;",
        )
        .expect("the last hours arrive");

    // A fresh session: a backend's table counters keep what earlier transactions read until
    // they are flushed, and pg_stat_xact_user_tables would show them too.
    let mut builder = db.connect();
    let mut tx = builder.transaction().expect("begin");
    let events_read: i64 = tx
        .query_one(
            "SELECT events_read FROM guildstats.build_voice_sessions()",
            &[],
        )
        .expect("incremental build")
        .get(0);
    let read: Vec<(String, i64, i64)> = tx
        .query(
            "SELECT s.relname::text, s.seq_tup_read + coalesce(s.idx_tup_fetch, 0), c.reltuples::bigint
             FROM pg_stat_xact_user_tables s JOIN pg_class c ON c.oid = s.relid
             WHERE s.schemaname = 'guildstats'
               AND s.relname IN ('raw_voice_events', 'raw_heartbeats', 'voice_sessions')
             ORDER BY 1",
            &[],
        )
        .expect("rows read in this transaction")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    tx.commit().expect("commit");

    assert!(events_read > 50, "only {events_read} events arrived");
    assert_eq!(read.len(), 3, "{read:?}");
    for (table, rows_read, rows) in &read {
        assert!(
            *rows > 20 * events_read,
            "{table}: a history of {rows} rows is too small for this test ({events_read} new events)"
        );
        // What arrived is about 1 % of the events; everything read must stay within 10 % of
        // each table (a scan of the history reads all of it).
        assert!(
            rows_read * 10 < *rows,
            "{table}: the build read {rows_read} of {rows} rows for {events_read} new events"
        );
    }
    let diff = differences_from_full_rebuild(&mut client);
    assert!(
        diff.is_empty(),
        "incremental sessions differ from a full rebuild: {diff:#?}"
    );
}
