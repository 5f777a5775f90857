//! Player sessions on game servers: `build_game_sessions()` against a plain-SQL computation of
//! the same visits written another way (each sighting joined to the server's previous poll,
//! instead of the builder's lag over the player's own sightings), full and incremental.
//!
//! The data is the synthetic community's two game servers (an A2S one that reports connected
//! seconds, a Quake 3 one that does not), polled every minute for `scale / 10,000` days (100 at
//! the default scale), failed polls and shared names included. Both sides write into a table
//! shaped like `game_sessions` (same keys and indexes); after each timed run both give the same
//! summary of what they wrote, untimed.
//!
//! In the incremental case the latest hour of polls arrives untimed in an open transaction on
//! top of the built history; the timed statement is the build alone (`build_game_sessions()`,
//! or the plain full computation), and the transaction is rolled back after the summary.

use super::{query_answer, Case, Side};
use guildstats_synth::{pg, Community, CommunityConfig, Table};
use postgres::Client;

/// Days of polls for a scale: 100 at the default scale of one million.
fn days_for(scale: u64) -> u32 {
    (scale / 10_000).clamp(2, 365) as u32
}

/// Loads the raw polls once per (scale, seed) for both cases, and creates the helpers.
fn prepare_shared(client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
    if let Some(rows) = super::cached_load(client, "bench_game_data", "rows", scale, seed) {
        return Ok(rows);
    }
    // The servers' population model does not depend on the members: a small guild keeps the
    // generation of the other tables (never loaded here) quick.
    let config = CommunityConfig::demo()
        .with_seed(seed)
        .with_members(200)
        .with_days(days_for(scale));
    let community = Community::new(config).map_err(|e| e.to_string())?;
    client
        .batch_execute(
            "TRUNCATE guildstats.raw_server_polls, guildstats.raw_server_players, guildstats.game_sessions;
             DROP TABLE IF EXISTS bench_game_data, bench_held_polls, bench_held_players;",
        )
        .map_err(|e| e.to_string())?;
    pg::load(
        client,
        &community,
        &[Table::ServerPolls, Table::ServerPlayers],
    )
    .map_err(|e| e.to_string())?;
    client
        .batch_execute(&format!(
            "ANALYZE guildstats.raw_server_polls; ANALYZE guildstats.raw_server_players;
             CREATE TABLE bench_game_data AS
             SELECT {scale}::bigint AS scale, {seed}::bigint AS seed,
                    (SELECT count(*) FROM guildstats.raw_server_polls)
                    + (SELECT count(*) FROM guildstats.raw_server_players) AS rows;
             {HELPERS}"
        ))
        .map_err(|e| e.to_string())?;
    let rows: i64 = client
        .query_one("SELECT rows FROM bench_game_data", &[])
        .map_err(|e| e.to_string())?
        .get(0);
    Ok(rows as u64)
}

/// The plain-SQL computation and the summary, as SQL functions so that each timed query is one
/// statement.
const HELPERS: &str = r#"
CREATE TABLE IF NOT EXISTS bench_plain_game_sessions (LIKE guildstats.game_sessions INCLUDING ALL);

CREATE OR REPLACE FUNCTION bench_game_summary(sessions regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
    EXECUTE format($q$
        SELECT count(*) || ' sessions, ' || count(*) FILTER (WHERE end_reason = 'open') || ' open, '
               || count(*) FILTER (WHERE end_reason = 'left') || ' left, '
               || count(*) FILTER (WHERE end_reason = 'reconnected') || ' reconnected, '
               || count(*) FILTER (WHERE end_reason IN ('failed_poll', 'silence')) || ' cut, '
               || sum(polls) || ' polls, '
               || sum(extract(epoch FROM coalesce(left_at, last_seen) - joined_at)) || ' s'
        FROM %s$q$, sessions)
    INTO result;
    RETURN result;
END $$;

-- A sighting continues the visit when the server's previous poll answered, came within the
-- gap and listed the same name with no fewer connected seconds; otherwise it starts one. A
-- visit ends at the server's poll after its last sighting: an answered poll without the name
-- (left, at that poll), one listing it again (a reconnect), a failed poll or a silence (both at
-- the last sighting), or nothing yet (open).
CREATE OR REPLACE FUNCTION bench_plain_game_sessions() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE gap interval := guildstats.game_session_gap();
BEGIN
    TRUNCATE bench_plain_game_sessions;
    INSERT INTO bench_plain_game_sessions
    WITH polls AS (
        SELECT server, polled_at, ok,
               lag(polled_at) OVER w AS prev_at, lag(ok) OVER w AS prev_ok,
               lead(polled_at) OVER w AS next_at, lead(ok) OVER w AS next_ok,
               max(polled_at) FILTER (WHERE ok) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                   AS answered_before
          FROM guildstats.raw_server_polls
        WINDOW w AS (PARTITION BY server ORDER BY polled_at)
    ), seen AS (
        SELECT server, polled_at, name,
               max(connected_seconds) FILTER (WHERE connected_seconds BETWEEN 0 AND 604800) AS c
          FROM guildstats.raw_server_players
         WHERE name <> ''
         GROUP BY server, polled_at, name
    ), marked AS (
        SELECT s.server, s.name, s.polled_at, s.c, p.next_at, p.next_ok, p.answered_before,
               NOT coalesce(p.prev_ok AND s.polled_at - p.prev_at <= gap AND b.polled_at IS NOT NULL
                            AND NOT coalesce(s.c < b.c, false), false) AS starts
          FROM seen s
          JOIN polls p USING (server, polled_at)
          LEFT JOIN seen b ON b.server = s.server AND b.name = s.name AND b.polled_at = p.prev_at
         WHERE p.ok
    ), numbered AS (
        SELECT m.*, count(*) FILTER (WHERE m.starts) OVER w AS visit,
               lead(m.polled_at) OVER w IS NOT DISTINCT FROM m.next_at AS seen_next
          FROM marked m
        WINDOW w AS (PARTITION BY m.server, m.name ORDER BY m.polled_at)
    ), visits AS (
        SELECT server, name, count(*)::integer AS polls,
               min(polled_at) AS first_seen, max(polled_at) AS last_seen,
               (array_agg(next_at ORDER BY polled_at DESC))[1] AS next_at,
               (array_agg(next_ok ORDER BY polled_at DESC))[1] AS next_ok,
               (array_agg(seen_next ORDER BY polled_at DESC))[1] AS seen_next,
               (array_agg(c ORDER BY polled_at))[1] AS first_c,
               (array_agg(answered_before ORDER BY polled_at))[1] AS answered_before
          FROM numbered
         GROUP BY server, name, visit
    ), ended AS (
        SELECT v.*,
               CASE WHEN v.next_at IS NULL THEN 'open'
                    WHEN NOT v.next_ok THEN 'failed_poll'
                    WHEN v.next_at - v.last_seen > gap THEN 'silence'
                    WHEN v.seen_next THEN 'reconnected'
                    ELSE 'left' END AS end_reason
          FROM visits v
    )
    SELECT server, name,
           greatest(first_seen - coalesce(first_c, 0) * interval '1 second', answered_before),
           CASE end_reason WHEN 'open' THEN NULL WHEN 'left' THEN next_at ELSE last_seen END,
           first_seen, last_seen, polls, end_reason
      FROM ended;
    RETURN 'ok';
END $$;
"#;

fn summary_of(client: &mut Client, side: Side) -> Result<Option<String>, String> {
    let table = match side {
        Side::Extension => "guildstats.game_sessions",
        Side::Baseline => "bench_plain_game_sessions",
    };
    query_answer(client, &format!("SELECT bench_game_summary('{table}')")).map(Some)
}

pub struct GameSessionsFull;

impl Case for GameSessionsFull {
    fn name(&self) -> &'static str {
        "game_sessions_full_build"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        prepare_shared(client, scale, seed)
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT status FROM guildstats.build_game_sessions(full => true)"
    }

    fn baseline_sql(&self) -> &'static str {
        "SELECT bench_plain_game_sessions()"
    }

    fn answer_after(&self, client: &mut Client, side: Side) -> Result<Option<String>, String> {
        summary_of(client, side)
    }
}

/// The latest hour of polls (and their players) arrives after the history was built.
pub struct GameSessionsIncremental;

impl Case for GameSessionsIncremental {
    fn name(&self) -> &'static str {
        "game_sessions_incremental_1h"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        prepare_shared(client, scale, seed)?;
        client
            .batch_execute(
                "DROP TABLE IF EXISTS bench_held_polls, bench_held_players;
                 CREATE TABLE bench_held_polls AS
                 SELECT * FROM guildstats.raw_server_polls
                  WHERE polled_at > (SELECT max(polled_at) FROM guildstats.raw_server_polls) - interval '1 hour';
                 CREATE TABLE bench_held_players AS
                 SELECT r.* FROM guildstats.raw_server_players r
                  WHERE (r.server, r.polled_at) IN (SELECT server, polled_at FROM bench_held_polls);
                 DELETE FROM guildstats.raw_server_players WHERE ingest_id IN (SELECT ingest_id FROM bench_held_players);
                 DELETE FROM guildstats.raw_server_polls WHERE ingest_id IN (SELECT ingest_id FROM bench_held_polls);
                 SELECT guildstats.build_game_sessions(full => true);",
            )
            .map_err(|e| e.to_string())?;
        let held: i64 = client
            .query_one(
                "SELECT (SELECT count(*) FROM bench_held_polls) + (SELECT count(*) FROM bench_held_players)",
                &[],
            )
            .map_err(|e| e.to_string())?
            .get(0);
        Ok(held as u64)
    }

    /// The arrival, in a transaction `answer_after` rolls back; new rows draw new ingest ids.
    fn reset(&self, client: &mut Client) -> Result<(), String> {
        client
            .batch_execute(
                "BEGIN;
                 INSERT INTO guildstats.raw_server_polls (server, polled_at, ok, protocol, error, server_name, map, game,
                                                          player_count, max_players, bot_count, latency_ms, source)
                 SELECT server, polled_at, ok, protocol, error, server_name, map, game,
                        player_count, max_players, bot_count, latency_ms, source
                 FROM bench_held_polls ORDER BY ingest_id;
                 INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name, score,
                                                            connected_seconds, ping_ms, source)
                 SELECT server, polled_at, player_index, name, score, connected_seconds, ping_ms, source
                 FROM bench_held_players ORDER BY ingest_id;",
            )
            .map_err(|e| e.to_string())
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT status FROM guildstats.build_game_sessions()"
    }

    fn baseline_sql(&self) -> &'static str {
        "SELECT bench_plain_game_sessions()"
    }

    fn answer_after(&self, client: &mut Client, side: Side) -> Result<Option<String>, String> {
        let summary = summary_of(client, side);
        client
            .batch_execute("ROLLBACK")
            .map_err(|e| e.to_string())?;
        summary
    }
}
