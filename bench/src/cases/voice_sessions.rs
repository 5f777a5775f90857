//! Voice sessionization: `build_voice_sessions()` against the best plain-SQL sessionization we
//! know (gaps and islands with window functions, written into a regular table), against the
//! write floor (the same rows inserted into a copy of `voice_sessions`), and an incremental
//! build of the latest 10,000 events on top of the history against a plain-SQL full rebuild.
//!
//! The data is the synthetic community scaled to `scale` voice events, without bot outages so
//! that the plain-SQL version (which knows nothing of outages and snapshots) computes the same
//! sessions. After each timed run both sides give the same summary of the table they wrote
//! (sessions, open sessions, total time with open ones up to the horizon, self-muted seconds),
//! untimed: it reads every session, which would cost more than the incremental build it checks.
//! The data has one guild.
//!
//! In the incremental case the 10,000 events (and their heartbeats) arrive untimed in an open
//! transaction; the timed statement is the build alone (`build_voice_sessions()`, or the
//! plain-SQL rebuild), and the transaction is rolled back after the summary so that every run
//! starts from the same history.

use super::{query_answer, Case, Side};
use guildstats_synth::{Community, CommunityConfig};
use postgres::Client;

/// Events that arrive after the history in the incremental case.
const INCREMENT: i64 = 10_000;

/// Loads the raw rows once per (scale, seed) for all voice cases, and creates the helpers.
fn prepare_shared(client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
    if let Some(events) = super::cached_load(client, "bench_voice_data", "events", scale, seed) {
        return Ok(events);
    }
    let mut config = CommunityConfig::demo().with_seed(seed);
    config.outages = 0;
    let config = config.with_target_voice_events(scale);
    let community = Community::new(config).map_err(|e| e.to_string())?;
    super::load_voice_raw(client, &community, "bench_voice_data")?;
    client
        .batch_execute(&format!(
            "CREATE TABLE bench_voice_data AS
             SELECT {scale}::bigint AS scale, {seed}::bigint AS seed,
                    (SELECT count(*) FROM guildstats.raw_voice_events) AS events;
             {HELPERS}"
        ))
        .map_err(|e| e.to_string())?;
    let events: i64 = client
        .query_one("SELECT events FROM bench_voice_data", &[])
        .map_err(|e| e.to_string())?
        .get(0);
    Ok(events as u64)
}

/// The plain-SQL sessionization, the summary, and the incremental set-up, as SQL functions so
/// that each timed query is one statement.
const HELPERS: &str = r#"
CREATE TABLE IF NOT EXISTS bench_plain_sessions (
    guild_id bigint, user_id bigint, channel_id bigint, started_at timestamptz, ended_at timestamptz,
    is_afk boolean, self_mute_seconds double precision);
CREATE TABLE IF NOT EXISTS bench_floor_sessions (LIKE guildstats.voice_sessions INCLUDING ALL);
CREATE TABLE IF NOT EXISTS bench_floor_source AS SELECT * FROM guildstats.voice_sessions WITH NO DATA;

CREATE OR REPLACE FUNCTION bench_voice_summary(sessions regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
    EXECUTE format($q$
        SELECT count(*) || ' sessions, ' || count(*) FILTER (WHERE s.ended_at IS NULL) || ' open, '
               || sum(greatest(coalesce(s.ended_at, h.horizon), s.started_at) - s.started_at)
               || ', ' || round(sum(s.self_mute_seconds)::numeric) || ' s muted'
        FROM %s s
        CROSS JOIN (SELECT max(beat_at) AS horizon FROM guildstats.raw_heartbeats
                     WHERE source = 'discord') h$q$, sessions)
    INTO result;
    RETURN result;
END $$;

-- Gaps and islands: an island is a run of one user's events in one channel; it ends at the
-- next event (a move or a leave), or is open at the horizon (the latest heartbeat). In an open
-- island, muted time counts up to the horizon, as for the island itself, even when a later
-- flag change arrived after the last heartbeat.
CREATE OR REPLACE FUNCTION bench_plain_sessionize() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE bench_plain_sessions;
    INSERT INTO bench_plain_sessions
    SELECT i.guild_id, i.user_id, i.channel_id, min(i.event_ts),
           CASE WHEN count(i.next_ts) = count(*) THEN max(i.next_ts) END,
           i.channel_id IS NOT DISTINCT FROM g.afk_channel_id,
           coalesce(sum(extract(epoch FROM
                        greatest(CASE WHEN i.island_closed THEN i.next_ts
                                      ELSE least(coalesce(i.next_ts, h.horizon), h.horizon) END,
                                 i.event_ts) - i.event_ts))
                        FILTER (WHERE i.self_mute), 0)
    FROM (SELECT d.*, bool_and(d.next_ts IS NOT NULL) OVER (PARTITION BY d.guild_id, d.user_id, d.island) AS island_closed
          FROM (SELECT c.*, count(*) FILTER (WHERE c.changes) OVER (PARTITION BY c.guild_id, c.user_id ORDER BY c.event_ts) AS island
                FROM (SELECT e.guild_id, e.user_id, e.channel_id, e.event_ts, e.self_mute,
                             e.channel_id IS DISTINCT FROM lag(e.channel_id) OVER w AS changes,
                             lead(e.event_ts) OVER w AS next_ts
                      FROM guildstats.raw_voice_events e
                      WINDOW w AS (PARTITION BY e.guild_id, e.user_id ORDER BY e.event_ts)) c) d) i
    JOIN (SELECT guild_id, max(beat_at) AS horizon FROM guildstats.raw_heartbeats
           WHERE source = 'discord' GROUP BY guild_id) h USING (guild_id)
    LEFT JOIN (SELECT DISTINCT ON (guild_id) guild_id, afk_channel_id FROM guildstats.raw_guilds
                ORDER BY guild_id, observed_at DESC) g USING (guild_id)
    WHERE i.channel_id IS NOT NULL
    GROUP BY i.guild_id, i.user_id, i.island, i.channel_id, g.afk_channel_id;
    RETURN 'ok';
END $$;

CREATE OR REPLACE FUNCTION bench_write_floor() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE bench_floor_sessions;
    INSERT INTO bench_floor_sessions SELECT * FROM bench_floor_source;
    RETURN 'ok';
END $$;

"#;

/// The indexes and constraints of the floor's table that voice_sessions lacks after a
/// rebuild, and the other way round (names aside); empty when both carry the same.
const SAME_SHAPE: &str = r#"
WITH shape AS (
    SELECT i.indrelid AS t, regexp_replace(pg_get_indexdef(i.indexrelid), ' INDEX \S+ ON \S+ ', ' INDEX ON ') AS what
    FROM pg_index i WHERE i.indrelid IN ('guildstats.voice_sessions'::regclass, 'bench_floor_sessions'::regclass)
    UNION ALL
    SELECT c.conrelid, 'constraint ' || pg_get_constraintdef(c.oid)
    FROM pg_constraint c WHERE c.conrelid IN ('guildstats.voice_sessions'::regclass, 'bench_floor_sessions'::regclass)
)
SELECT coalesce(string_agg(what, '; '), '') FROM (
    (SELECT what FROM shape WHERE t = 'bench_floor_sessions'::regclass
     EXCEPT ALL SELECT what FROM shape WHERE t = 'guildstats.voice_sessions'::regclass)
    UNION ALL
    (SELECT what FROM shape WHERE t = 'guildstats.voice_sessions'::regclass
     EXCEPT ALL SELECT what FROM shape WHERE t = 'bench_floor_sessions'::regclass)) d
"#;

/// The extension's full build, timed.
const EXTENSION_FULL_BUILD: &str = "SELECT status FROM guildstats.rebuild_voice_sessions()";
/// The table each side writes, summarised after the timed run.
const EXTENSION_SUMMARY: &str = "SELECT bench_voice_summary('guildstats.voice_sessions')";

fn summary_of(
    client: &mut Client,
    side: Side,
    baseline_table: &str,
) -> Result<Option<String>, String> {
    let sql = match side {
        Side::Extension => EXTENSION_SUMMARY.to_string(),
        Side::Baseline => format!("SELECT bench_voice_summary('{baseline_table}')"),
    };
    query_answer(client, &sql).map(Some)
}

pub struct VoiceFullBuild;

impl Case for VoiceFullBuild {
    fn name(&self) -> &'static str {
        "voice_full_build"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        prepare_shared(client, scale, seed)
    }

    fn extension_sql(&self) -> &'static str {
        EXTENSION_FULL_BUILD
    }

    fn baseline_sql(&self) -> &'static str {
        "SELECT bench_plain_sessionize()"
    }

    fn answer_after(&self, client: &mut Client, side: Side) -> Result<Option<String>, String> {
        summary_of(client, side, "bench_plain_sessions")
    }
}

/// Baseline: only writing the finished rows into an empty table shaped like voice_sessions
/// (same keys, indexes and constraints). A ratio near 1 means the build costs little beyond
/// its writes; the report also prints the build's cost in floors (goal: at most 1.3).
pub struct VoiceWriteFloor;

impl Case for VoiceWriteFloor {
    fn name(&self) -> &'static str {
        "voice_write_floor"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        let events = prepare_shared(client, scale, seed)?;
        client
            .batch_execute(
                "SELECT guildstats.rebuild_voice_sessions();
                 TRUNCATE bench_floor_source;
                 INSERT INTO bench_floor_source SELECT * FROM guildstats.voice_sessions;",
            )
            .map_err(|e| e.to_string())?;
        // Its own statement: VACUUM cannot run inside the implicit transaction of a batch.
        client
            .batch_execute("VACUUM ANALYZE bench_floor_source")
            .map_err(|e| e.to_string())?;
        // The floor's table must carry what the rebuild leaves on voice_sessions, no less (a
        // floor without the primary key would flatter nothing but the floor) and no more.
        let differences = query_answer(client, SAME_SHAPE)?;
        if !differences.is_empty() {
            return Err(format!(
                "bench_floor_sessions differs from guildstats.voice_sessions after a rebuild: {differences}"
            ));
        }
        Ok(events)
    }

    /// Both sides start from a checkpoint, so that neither pays for flushing what the other
    /// wrote.
    fn reset(&self, client: &mut Client) -> Result<(), String> {
        client
            .batch_execute("CHECKPOINT")
            .map_err(|e| e.to_string())
    }

    fn note(&self) -> Option<&'static str> {
        Some(
            "the floor is TRUNCATE of an empty copy of voice_sessions (its primary key, its partial \
             index and its four CHECKs, checked to be those the rebuild leaves) and one INSERT ... \
             SELECT of the rebuild's rows from a plain table, in the rebuild's order, the indexes \
             maintained row by row; a CHECKPOINT, untimed, precedes every run of either side. \
             Goal: at most 1.3x the floor; measured 1.15x to 1.18x at load averages of 0.2 to 1.3 \
             since part 3 of issue 13 item 8 (the step writes each guild's sessions through COPY's \
             bulk write), main before it 1.41x to 1.50x alternated with it (README, Benchmarks); \
             the rest is the walk with its reads and the finish's index builds. A rebuild by a \
             caller under row-level security inserts the session arrays instead, as before part 3",
        )
    }

    fn extension_sql(&self) -> &'static str {
        EXTENSION_FULL_BUILD
    }

    fn baseline_sql(&self) -> &'static str {
        "SELECT bench_write_floor()"
    }

    fn baseline_is_write_floor(&self) -> bool {
        true
    }

    fn answer_after(&self, client: &mut Client, side: Side) -> Result<Option<String>, String> {
        summary_of(client, side, "bench_floor_sessions")
    }
}

/// The latest 10,000 events (and the heartbeats since the first of them) arrive after the
/// history was built: an incremental build against a plain-SQL full rebuild. Latest in time,
/// as a live bot delivers them: the loader's row order is not time order, and the last rows
/// loaded would leave thousands of later events in the history, beyond its horizon.
pub struct VoiceIncremental;

impl Case for VoiceIncremental {
    fn name(&self) -> &'static str {
        "voice_incremental_10k"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        prepare_shared(client, scale, seed)?;
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS bench_held_events, bench_held_beats;
                 CREATE TABLE bench_held_events AS
                 SELECT * FROM guildstats.raw_voice_events ORDER BY event_ts DESC, ingest_id DESC LIMIT {INCREMENT};
                 CREATE TABLE bench_held_beats AS
                 SELECT * FROM guildstats.raw_heartbeats
                 WHERE beat_at > (SELECT min(event_ts) FROM bench_held_events);
                 DELETE FROM guildstats.raw_voice_events WHERE ingest_id IN (SELECT ingest_id FROM bench_held_events);
                 DELETE FROM guildstats.raw_heartbeats WHERE ingest_id IN (SELECT ingest_id FROM bench_held_beats);
                 SELECT guildstats.rebuild_voice_sessions();"
            ))
            .map_err(|e| e.to_string())?;
        Ok(INCREMENT as u64)
    }

    /// The arrival, in a transaction `answer_after` rolls back. New arrivals draw new ingest
    /// ids.
    fn reset(&self, client: &mut Client) -> Result<(), String> {
        client
            .batch_execute(
                "BEGIN;
                 INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf,
                                                          server_mute, server_deaf, self_stream, self_video, source)
                 SELECT guild_id, user_id, channel_id, event_ts, self_mute, self_deaf,
                        server_mute, server_deaf, self_stream, self_video, source
                 FROM bench_held_events ORDER BY ingest_id;
                 INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
                 SELECT source, guild_id, beat_at FROM bench_held_beats ORDER BY ingest_id;",
            )
            .map_err(|e| e.to_string())
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT status FROM guildstats.build_voice_sessions()"
    }

    fn baseline_sql(&self) -> &'static str {
        "SELECT bench_plain_sessionize()"
    }

    fn answer_after(&self, client: &mut Client, side: Side) -> Result<Option<String>, String> {
        let summary = summary_of(client, side, "bench_plain_sessions");
        client
            .batch_execute("ROLLBACK")
            .map_err(|e| e.to_string())?;
        summary
    }
}
