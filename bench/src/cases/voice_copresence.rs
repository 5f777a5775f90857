//! Voice co-presence: `build_voice_copresence()` against a plain-SQL computation of the same
//! table (every pair of overlapping sessions in one channel joined directly, the overlap cut
//! at each midnight of the guild's time zone, summed per pair and day), in full and after the
//! latest 10,000 voice events arrive on top of the history.
//!
//! The data is the synthetic community with `scale * 3 / 100` members over a year (30,000
//! members at the default scale of 1M) and one regular voice channel per 150 members (200 at
//! 30,000). Its voice sessions are built untimed while preparing (in
//! the incremental case, the voice build of the new events runs untimed in `reset`, in the
//! transaction that `answer_after` rolls back). Both sides give the same summary of the table
//! they wrote, untimed: pair-days, distinct pairs and the total shared seconds.

use super::{query_answer, Case, Side};
use guildstats_synth::{Community, CommunityConfig};
use postgres::Client;

/// One regular voice channel per this many members, as a large guild has: with the demo's
/// five rooms at every size, 30,000 members would crowd into them and the pairs would grow
/// with the square of the members.
const MEMBERS_PER_VOICE_CHANNEL: u32 = 150;

/// Events that arrive after the history in the incremental case (a tenth of them at a smoke
/// scale, where the year has fewer).
const INCREMENT: i64 = 10_000;

/// Loads the community once per (scale, seed) for both cases and builds its voice sessions.
fn prepare_shared(client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
    if let Some(sessions) =
        super::cached_load(client, "bench_copresence_data", "sessions", scale, seed)
    {
        return Ok(sessions);
    }
    let mut config = CommunityConfig::demo().with_seed(seed);
    config.days = 365;
    let members = u32::try_from(scale * 3 / 100).unwrap_or(u32::MAX).max(50);
    let community = Community::new(
        config
            .with_members(members)
            .with_members_per_voice_channel(MEMBERS_PER_VOICE_CHANNEL),
    )
    .map_err(|e| e.to_string())?;
    super::load_voice_raw(
        client,
        &community,
        "bench_voice_data, bench_copresence_data",
    )?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS bench_held_copresence_events, bench_held_copresence_beats;
             CREATE TABLE bench_held_copresence_events AS
             SELECT * FROM guildstats.raw_voice_events ORDER BY event_ts DESC, ingest_id DESC
             LIMIT least({INCREMENT}, (SELECT count(*) / 10 FROM guildstats.raw_voice_events));
             CREATE TABLE bench_held_copresence_beats AS
             SELECT * FROM guildstats.raw_heartbeats
             WHERE beat_at > (SELECT min(event_ts) FROM bench_held_copresence_events);
             DELETE FROM guildstats.raw_voice_events WHERE ingest_id IN (SELECT ingest_id FROM bench_held_copresence_events);
             DELETE FROM guildstats.raw_heartbeats WHERE ingest_id IN (SELECT ingest_id FROM bench_held_copresence_beats);
             SELECT guildstats.rebuild_voice_sessions();
             ANALYZE guildstats.voice_sessions;
             SELECT guildstats.build_voice_copresence(full => true);
             CREATE TABLE bench_copresence_data AS
             SELECT {scale}::bigint AS scale, {seed}::bigint AS seed,
                    (SELECT count(*) FROM guildstats.voice_sessions) AS sessions;
             {HELPERS}"
        ))
        .map_err(|e| e.to_string())?;
    let sessions: i64 = client
        .query_one("SELECT sessions FROM bench_copresence_data", &[])
        .map_err(|e| e.to_string())?
        .get(0);
    Ok(sessions as u64)
}

const HELPERS: &str = r#"
CREATE TABLE IF NOT EXISTS bench_plain_pairs (LIKE guildstats.voice_copresence_daily);

CREATE OR REPLACE FUNCTION bench_copresence_summary(pairs regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
    EXECUTE format($q$
        SELECT count(*) || ' pair-days, ' || count(DISTINCT (guild_id, user_a, user_b)) || ' pairs, '
               || round(sum(shared_seconds)::numeric) || ' s'
        FROM %s$q$, pairs)
    INTO result;
    RETURN result;
END $$;

CREATE OR REPLACE FUNCTION bench_plain_copresence() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE bench_plain_pairs;
    INSERT INTO bench_plain_pairs
    SELECT a.guild_id, d.day::date, a.user_id, b.user_id,
           sum(extract(epoch FROM least(a.e, b.e, (d.day + interval '1 day') AT TIME ZONE s.calendar_time_zone)
                                  - greatest(a.started_at, b.started_at, d.day AT TIME ZONE s.calendar_time_zone)))
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
    GROUP BY 1, 2, 3, 4;
    RETURN 'ok';
END $$;
"#;

fn summary_of(client: &mut Client, side: Side) -> Result<Option<String>, String> {
    let table = match side {
        Side::Extension => "guildstats.voice_copresence_daily",
        Side::Baseline => "bench_plain_pairs",
    };
    query_answer(
        client,
        &format!("SELECT bench_copresence_summary('{table}')"),
    )
    .map(Some)
}

pub struct CopresenceFullBuild;

impl Case for CopresenceFullBuild {
    fn name(&self) -> &'static str {
        "copresence_full_build"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        prepare_shared(client, scale, seed)
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT status FROM guildstats.build_voice_copresence(full => true)"
    }

    fn baseline_sql(&self) -> &'static str {
        "SELECT bench_plain_copresence()"
    }

    fn answer_after(&self, client: &mut Client, side: Side) -> Result<Option<String>, String> {
        summary_of(client, side)
    }
}

pub struct CopresenceIncremental;

impl Case for CopresenceIncremental {
    fn name(&self) -> &'static str {
        "copresence_incremental_10k"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        prepare_shared(client, scale, seed)?;
        client
            .batch_execute("SELECT guildstats.build_voice_copresence(full => true)")
            .map_err(|e| e.to_string())?;
        let held: i64 = client
            .query_one("SELECT count(*) FROM bench_held_copresence_events", &[])
            .map_err(|e| e.to_string())?
            .get(0);
        Ok(held as u64)
    }

    fn reset(&self, client: &mut Client) -> Result<(), String> {
        client
            .batch_execute(
                "BEGIN;
                 INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf,
                                                          server_mute, server_deaf, self_stream, self_video, source)
                 SELECT guild_id, user_id, channel_id, event_ts, self_mute, self_deaf,
                        server_mute, server_deaf, self_stream, self_video, source
                 FROM bench_held_copresence_events ORDER BY ingest_id;
                 INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
                 SELECT source, guild_id, beat_at FROM bench_held_copresence_beats ORDER BY ingest_id;
                 SELECT guildstats.build_voice_sessions();",
            )
            .map_err(|e| e.to_string())
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT status FROM guildstats.build_voice_copresence()"
    }

    fn baseline_sql(&self) -> &'static str {
        "SELECT bench_plain_copresence()"
    }

    fn answer_after(&self, client: &mut Client, side: Side) -> Result<Option<String>, String> {
        let summary = summary_of(client, side);
        client
            .batch_execute("ROLLBACK")
            .map_err(|e| e.to_string())?;
        summary
    }
}
