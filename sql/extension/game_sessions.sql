-- Player sessions on game servers, rebuilt from consecutive polls (raw_server_polls and
-- raw_server_players) by build_game_sessions(), and what is computed from them.
--
-- A2S gives no player ids: a player is (server, name). A session is one visit:
--   - it starts at the first poll that lists the name, back-dated by the connected seconds the
--     server reported (when between 0 and 7 days), but never before the latest answered poll before it (that poll saw the
--     server and did not list them, or listed them in an earlier visit);
--   - it goes on while every next poll of the server lists the name, comes within
--     game_session_gap() of the one before, and reports no fewer connected seconds (a drop is
--     a reconnect);
--   - it ends at the first answered poll without the name. A failed poll, a silence longer
--     than the gap or a reconnect end it at the last poll that listed it: time nobody saw is
--     never claimed.
-- Game servers belong to no guild: the table and views are community-wide (isolation.sql leaves
-- tables without guild_id unfiltered).

-- Resolved on its own, like future_tolerance_for(): game servers have no guild, so only the
-- global settings row applies, and settings_for() keeps its signature.
CREATE FUNCTION game_session_gap()
RETURNS interval
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce((SELECT s.game_session_gap FROM @extschema@.settings s WHERE s.guild_id IS NULL),
                    interval '5 minutes');
END;
COMMENT ON FUNCTION game_session_gap() IS
    'The longest silence between two polls of a game server that a player session survives: the global settings row''s game_session_gap, else 5 minutes (five polls at the poller''s default 60 s interval). Example: SELECT guildstats.game_session_gap();';

CREATE TABLE game_sessions (
    server       text        NOT NULL,
    player_name  text        NOT NULL,
    joined_at    timestamptz NOT NULL,
    left_at      timestamptz,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    polls        integer     NOT NULL,
    end_reason   text        NOT NULL,
    PRIMARY KEY (server, player_name, first_seen),
    CONSTRAINT game_sessions_end_reason_known
        CHECK (end_reason IN ('left', 'failed_poll', 'silence', 'reconnected', 'open')),
    CONSTRAINT game_sessions_open_has_no_end CHECK ((end_reason = 'open') = (left_at IS NULL))
);
CREATE INDEX game_sessions_server_time_idx ON game_sessions (server, last_seen);
-- For the map drain: the leaves within minutes of an instant.
CREATE INDEX game_sessions_server_left_idx ON game_sessions (server, left_at);

COMMENT ON TABLE game_sessions IS
    'One row per visit of a player (server and name: A2S gives no ids) to a game server, from consecutive polls; kept current by build_game_sessions(). Players with an empty name (still connecting) are left out; two players sharing a name on one server count as one.';
COMMENT ON COLUMN game_sessions.server IS 'The polled address, host:port (raw_server_polls.server).';
COMMENT ON COLUMN game_sessions.player_name IS 'Player name as reported, colour codes included.';
COMMENT ON COLUMN game_sessions.joined_at IS 'First poll that listed the player, back-dated by the connected seconds it reported, but not before the latest answered poll before it; the first poll itself when the server does not report connected time (Quake 3) or reports an impossible one (negative, not finite or over 7 days).';
COMMENT ON COLUMN game_sessions.left_at IS 'The first answered poll without the player; the last poll that listed them when a failed poll, a silence longer than game_session_gap() or a reconnect followed; NULL while the latest poll lists them.';
COMMENT ON COLUMN game_sessions.first_seen IS 'The first poll that listed the player in this visit.';
COMMENT ON COLUMN game_sessions.last_seen IS 'The last poll that listed the player in this visit.';
COMMENT ON COLUMN game_sessions.polls IS 'Polls that listed the player in this visit.';
COMMENT ON COLUMN game_sessions.end_reason IS 'left (an answered poll without them), failed_poll, silence (no poll for longer than game_session_gap()), reconnected (the connected seconds dropped) or open.';

SELECT pg_catalog.pg_extension_config_dump('game_sessions', '');

-- The window computation for some servers, each from an instant on: every session whose first
-- sighting is at or after rebuild_from. The poll just before rebuild_from is read too, for the
-- first sighting's "was the poll before mine listing me" test.
CREATE FUNCTION _game_sessions_from(servers text[], rebuild_from timestamptz[])
RETURNS SETOF game_sessions
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH scope AS (
        SELECT u.server, u.rebuild_from,
               coalesce((SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                          WHERE p.server = u.server AND p.polled_at < u.rebuild_from),
                        u.rebuild_from) AS read_from
          FROM unnest(_game_sessions_from.servers, _game_sessions_from.rebuild_from) AS u(server, rebuild_from)
    ), polls AS (
        SELECT p.server, p.polled_at, p.ok, s.rebuild_from,
               lag(p.polled_at) OVER w AS prev_poll_at,
               lead(p.polled_at) OVER w AS next_poll_at,
               lead(p.ok) OVER w AS next_ok
          FROM scope s
          JOIN @extschema@.raw_server_polls p ON p.server = s.server AND p.polled_at >= s.read_from
        WINDOW w AS (PARTITION BY p.server ORDER BY p.polled_at)
    ), sightings AS (
        SELECT p.server, x.name, p.polled_at, p.prev_poll_at, p.next_poll_at, p.next_ok, p.rebuild_from,
               x.connected_seconds
          FROM polls p
          CROSS JOIN LATERAL (
              -- A connected time that is negative, not finite or over a week is garbage from
              -- the server: treated as not reported (as Quake 3 does), since back-dating by it
              -- would overflow the interval and stop the builder, or put a join centuries back.
              SELECT r.name, max(r.connected_seconds) FILTER (WHERE r.connected_seconds BETWEEN 0 AND 604800) AS connected_seconds
                FROM @extschema@.raw_server_players r
               WHERE r.server = p.server AND r.polled_at = p.polled_at AND r.name <> ''
               GROUP BY r.name) x
         WHERE p.ok
    ), flagged AS (
        SELECT s.*,
               CASE WHEN lag(s.polled_at) OVER w IS NULL
                      OR lag(s.polled_at) OVER w IS DISTINCT FROM s.prev_poll_at
                      OR s.polled_at - lag(s.polled_at) OVER w > @extschema@.game_session_gap()
                      OR s.connected_seconds < lag(s.connected_seconds) OVER w
                    THEN 1 ELSE 0 END AS starts
          FROM sightings s
        WINDOW w AS (PARTITION BY s.server, s.name ORDER BY s.polled_at)
    ), numbered AS (
        SELECT f.*, sum(f.starts) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS visit,
               lead(f.starts) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS next_starts,
               lead(f.polled_at) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS next_seen_at
          FROM flagged f
    ), visits AS (
        SELECT n.server, n.name, min(n.polled_at) AS first_seen, max(n.polled_at) AS last_seen,
               count(*)::integer AS polls, min(n.rebuild_from) AS rebuild_from,
               (array_agg(n.connected_seconds ORDER BY n.polled_at))[1] AS first_connected,
               (array_agg(n.next_poll_at ORDER BY n.polled_at DESC))[1] AS next_poll_at,
               (array_agg(n.next_ok ORDER BY n.polled_at DESC))[1] AS next_ok,
               (array_agg(n.next_seen_at ORDER BY n.polled_at DESC))[1] AS next_seen_at
          FROM numbered n
         GROUP BY n.server, n.name, n.visit
    ), ended AS (
        SELECT v.*,
               CASE WHEN v.next_poll_at IS NULL THEN 'open'
                    WHEN NOT v.next_ok THEN 'failed_poll'
                    WHEN v.next_poll_at - v.last_seen > @extschema@.game_session_gap() THEN 'silence'
                    WHEN v.next_seen_at = v.next_poll_at THEN 'reconnected'
                    ELSE 'left' END AS end_reason
          FROM visits v
         WHERE v.first_seen >= v.rebuild_from
    )
    SELECT e.server, e.name,
           greatest(e.first_seen - coalesce(make_interval(secs => e.first_connected), interval '0'),
                    (SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                      WHERE p.server = e.server AND p.polled_at < e.first_seen AND p.ok)),
           CASE e.end_reason WHEN 'open' THEN NULL WHEN 'left' THEN e.next_poll_at ELSE e.last_seen END,
           e.first_seen, e.last_seen, e.polls, e.end_reason
      FROM ended e;
END;
COMMENT ON FUNCTION _game_sessions_from(text[], timestamptz[]) IS
    'Internal to build_game_sessions(): the sessions of each server (servers[i]) whose first sighting is at or after rebuild_from[i], computed from the raw polls.';

-- Game servers belong to no guild: one step over every server (per = all).
CREATE FUNCTION _build_game_sessions_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    poll_ids    int8multirange := @extschema@._claimed(claims, 'raw_server_polls');
    player_ids  int8multirange := @extschema@._claimed(claims, 'raw_server_players');
    rows_read         bigint;
    servers_rebuilt   bigint;
    sessions_removed  bigint := 0;
    sessions_written  bigint;
    servers     text[];
    cuts        timestamptz[];
    starts      timestamptz[];
BEGIN
    IF _build_game_sessions_step.full THEN
        SELECT count(*) INTO sessions_removed FROM @extschema@.game_sessions;
        TRUNCATE @extschema@.game_sessions;
    END IF;

    -- Per server, the earliest new poll or player row. A row at t changes at most the session
    -- that contains the poll just before t (its end) and everything after: those are removed
    -- and recomputed from the first sighting of the earliest of them.
    WITH fresh AS (
        SELECT p.server, p.polled_at FROM @extschema@.raw_server_polls p
         WHERE p.ingest_id BETWEEN lower(poll_ids) AND upper(poll_ids) - 1 AND p.ingest_id <@ poll_ids
        UNION ALL
        SELECT r.server, r.polled_at FROM @extschema@.raw_server_players r
         WHERE r.ingest_id BETWEEN lower(player_ids) AND upper(player_ids) - 1 AND r.ingest_id <@ player_ids
    ), touched AS (
        SELECT f.server, min(f.polled_at) AS earliest, count(*) AS n FROM fresh f GROUP BY f.server
    )
    SELECT coalesce(sum(t.n), 0), coalesce(array_agg(t.server ORDER BY t.server), '{}'),
           coalesce(array_agg(coalesce((SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                                         WHERE p.server = t.server AND p.polled_at < t.earliest),
                                       '-infinity') ORDER BY t.server), '{}')
      INTO rows_read, servers, cuts
      FROM touched t;
    servers_rebuilt := cardinality(servers);

    -- Recomputed from the first sighting of the earliest session reaching the cut; every session
    -- starting from there goes, even one that ended before the cut, since it is computed again.
    starts := ARRAY(SELECT least(c.cut, (SELECT min(g.first_seen) FROM @extschema@.game_sessions g
                                          WHERE g.server = c.server AND g.last_seen >= c.cut))
                      FROM unnest(servers, cuts) WITH ORDINALITY AS c(server, cut, i) ORDER BY c.i);
    WITH removed AS (
        DELETE FROM @extschema@.game_sessions g
         USING unnest(servers, starts) AS c(server, rebuild_from)
         WHERE g.server = c.server AND g.first_seen >= c.rebuild_from
        RETURNING 1
    )
    SELECT sessions_removed + count(*) INTO sessions_removed FROM removed;

    INSERT INTO @extschema@.game_sessions
    SELECT * FROM @extschema@._game_sessions_from(servers, starts);
    GET DIAGNOSTICS sessions_written = ROW_COUNT;

    RETURN jsonb_build_object('rows_read', rows_read, 'servers_rebuilt', servers_rebuilt,
                              'sessions_removed', sessions_removed, 'sessions_written', sessions_written);
END
$$;
COMMENT ON FUNCTION _build_game_sessions_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_game_sessions (see guildstats.builders): recomputes the sessions of every server with new polls from the session its earliest new poll can change.';

CREATE FUNCTION build_game_sessions(full boolean DEFAULT false)
RETURNS TABLE (rows_read bigint, servers_rebuilt bigint, sessions_removed bigint,
               sessions_written bigint, elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_game_sessions', $1))
        AS r(rows_read bigint, servers_rebuilt bigint, sessions_removed bigint,
               sessions_written bigint, elapsed interval, status text)
$$;
COMMENT ON FUNCTION build_game_sessions(boolean) IS
    'Brings guildstats.game_sessions up to date with the polls that arrived since the last call (exactly once, like every builder; late and out-of-order polls included) and returns one summary row; full => true starts from scratch. Safe to call concurrently: a second caller gets status ''skipped: ...''.';

-- What follows reads the sessions, not the polls (except map changes, which only polls carry).
-- An open session counts up to its last poll: nobody saw further.

CREATE VIEW game_server_hourly AS
WITH spans AS (
    SELECT g.server, g.joined_at AS t0, coalesce(g.left_at, g.last_seen) AS t1
      FROM @extschema@.game_sessions g
), pieces AS (
    -- Each session cut at the hours it spans.
    SELECT s.server, h.hour, s.t0,
           extract(epoch FROM least(s.t1, h.hour + interval '1 hour') - greatest(s.t0, h.hour)) AS seconds
      FROM spans s
     CROSS JOIN LATERAL generate_series(date_trunc('hour', s.t0), s.t1, interval '1 hour') AS h(hour)
     WHERE h.hour < s.t1 OR s.t0 = s.t1
), hours AS (
    SELECT p.server, p.hour, sum(p.seconds) AS seconds,
           count(*) FILTER (WHERE p.t0 >= p.hour) AS joins
      FROM pieces p
     GROUP BY p.server, p.hour
), points AS (
    -- Players right after each join or leave, and at each hour's start (delta 0); leaves
    -- before joins at the same instant, so a hand-over is not two players at once.
    SELECT x.server, x.at,
           sum(x.delta) OVER (PARTITION BY x.server ORDER BY x.at, x.delta ROWS UNBOUNDED PRECEDING) AS players
      FROM (SELECT s.server, s.t0 AS at, 1 AS delta FROM spans s
            UNION ALL
            SELECT s.server, s.t1, -1 FROM spans s
            UNION ALL
            SELECT h.server, h.hour, 0 FROM hours h) x
), peaks AS (
    SELECT p.server, date_trunc('hour', p.at) AS hour, max(p.players) AS players
      FROM points p
     GROUP BY p.server, date_trunc('hour', p.at)
)
SELECT h.server, h.hour, h.seconds / 3600.0 AS avg_players, k.players::integer AS peak_players, h.joins
  FROM hours h
  JOIN peaks k ON k.server = h.server AND k.hour = h.hour;
COMMENT ON VIEW game_server_hourly IS
    'Game-server use per server and hour, from game_sessions: average players (player-hours in the hour / 1 h), the most players at once, and sessions started. Divide avg_players by the slot count for utilization. Example: SELECT * FROM guildstats.game_server_hourly ORDER BY server, hour;';
COMMENT ON COLUMN game_server_hourly.server IS 'Server address, host:port.';
COMMENT ON COLUMN game_server_hourly.hour IS 'Start of the hour.';
COMMENT ON COLUMN game_server_hourly.avg_players IS 'Average players on the server during the hour (session time inside the hour / 1 h).';
COMMENT ON COLUMN game_server_hourly.peak_players IS 'Most players at once during the hour.';
COMMENT ON COLUMN game_server_hourly.joins IS 'Sessions that started in the hour.';

CREATE VIEW game_map_drain AS
WITH changes AS (
    SELECT c.server, c.polled_at AS changed_at, c.map
      FROM (SELECT p.server, p.polled_at, p.map,
                   lag(p.map) OVER (PARTITION BY p.server ORDER BY p.polled_at) AS prev_map
              FROM @extschema@.raw_server_polls p WHERE p.ok AND p.map IS NOT NULL) c
     WHERE c.prev_map IS NOT NULL AND c.prev_map <> c.map
), at_change AS (
    -- Players on at each change: a running count in which, at the same instant, the change
    -- comes before joins (they came after it) and leaves (they were still there).
    SELECT x.server, x.at AS changed_at, x.map, x.is_session,
           sum(x.delta) OVER (PARTITION BY x.server ORDER BY x.at, x.is_session ROWS UNBOUNDED PRECEDING) AS players
      FROM (SELECT g.server, g.joined_at AS at, 1 AS delta, true AS is_session, NULL::text AS map
              FROM @extschema@.game_sessions g WHERE g.server IN (SELECT server FROM changes)
            UNION ALL
            SELECT g.server, coalesce(g.left_at, g.last_seen), -1, true, NULL
              FROM @extschema@.game_sessions g WHERE g.server IN (SELECT server FROM changes)
            UNION ALL
            SELECT c.server, c.changed_at, 0, false, c.map FROM changes c) x
), per_change AS (
    SELECT a.server, a.map, a.changed_at, a.players AS players_at_change,
           (SELECT count(*) FROM @extschema@.game_sessions g
             WHERE g.server = a.server AND g.end_reason = 'left'
               AND g.left_at >= a.changed_at AND g.left_at <= a.changed_at + interval '5 minutes'
               AND g.joined_at < a.changed_at) AS players_lost
      FROM at_change a
     WHERE NOT a.is_session
)
SELECT d.server, d.map, count(*) AS map_changes, sum(d.players_at_change) AS players_at_change,
       sum(d.players_lost) AS players_lost,
       sum(d.players_lost)::numeric / nullif(sum(d.players_at_change), 0) AS drain
  FROM per_change d
 GROUP BY d.server, d.map;
COMMENT ON VIEW game_map_drain IS
    'The "map drain" per server and map: of the players on the server when it changed to this map (joined before the first poll showing it, still there at it), how many left within 5 minutes (an answered poll without them, the change poll included). Map changes come from consecutive answered polls; the players from game_sessions. Example: SELECT * FROM guildstats.game_map_drain ORDER BY drain DESC;';
COMMENT ON COLUMN game_map_drain.server IS 'Server address, host:port.';
COMMENT ON COLUMN game_map_drain.map IS 'The map the server changed to.';
COMMENT ON COLUMN game_map_drain.map_changes IS 'Times the server changed to this map.';
COMMENT ON COLUMN game_map_drain.players_at_change IS 'Players in a session at the change, summed over the changes.';
COMMENT ON COLUMN game_map_drain.players_lost IS 'Of those, players who left within 5 minutes after the change.';
COMMENT ON COLUMN game_map_drain.drain IS 'players_lost / players_at_change (0 to 1); NULL when nobody was on.';

CREATE VIEW game_server_seeding AS
SELECT h.server, extract(hour FROM h.hour)::integer AS hour_of_day,
       count(*) AS hours_seen,
       avg(h.joins) AS avg_joins,
       avg(h.peak_players) AS avg_peak_players,
       rank() OVER (PARTITION BY h.server ORDER BY avg(h.joins) DESC, extract(hour FROM h.hour)) AS fill_rank
  FROM @extschema@.game_server_hourly h
 GROUP BY h.server, extract(hour FROM h.hour);
COMMENT ON VIEW game_server_seeding IS
    'When each game server fills fastest, per hour of day (UTC), from game_sessions: the average sessions started in that hour over the hours it had players; fill_rank 1 is the best seeding hour. Example: SELECT * FROM guildstats.game_server_seeding WHERE fill_rank = 1;';
COMMENT ON COLUMN game_server_seeding.server IS 'Server address, host:port.';
COMMENT ON COLUMN game_server_seeding.hour_of_day IS 'Hour of the day, 0 to 23, UTC.';
COMMENT ON COLUMN game_server_seeding.hours_seen IS 'Hours at this time of day with at least one player.';
COMMENT ON COLUMN game_server_seeding.avg_joins IS 'Sessions started per such hour, on average: how fast the server fills.';
COMMENT ON COLUMN game_server_seeding.avg_peak_players IS 'Most players at once per such hour, on average.';
COMMENT ON COLUMN game_server_seeding.fill_rank IS '1 for the hour of day with the most joins (ties to the earlier hour).';

-- Coverage marks: how much of each day the Discord bot was connected, so charts can mark
-- incomplete days. The time between two heartbeats no further apart than outage_after is
-- covered; a longer silence is not (as for the voice sessions).
CREATE VIEW coverage_daily AS
WITH beats AS (
    SELECT b.guild_id, b.beat_at,
           lead(b.beat_at) OVER (PARTITION BY b.guild_id ORDER BY b.beat_at) AS next_beat
      FROM @extschema@.raw_heartbeats b
     WHERE b.source = 'discord' AND b.guild_id IS NOT NULL
), guilds AS (
    -- The settings once per guild, not once per beat.
    SELECT k.guild_id, s.calendar_time_zone AS tz, s.outage_after
      FROM (SELECT DISTINCT b.guild_id FROM beats b) k
     CROSS JOIN LATERAL @extschema@.settings_for(k.guild_id) s
), covered AS (
    SELECT b.guild_id, b.beat_at AS t0, b.next_beat AS t1
      FROM beats b JOIN guilds g USING (guild_id)
     WHERE b.next_beat - b.beat_at <= g.outage_after
), bounds AS (
    SELECT b.guild_id, g.tz, min(b.beat_at) AS first_beat, max(b.beat_at) AS last_beat
      FROM beats b JOIN guilds g USING (guild_id)
     GROUP BY b.guild_id, g.tz
), days AS (
    SELECT o.guild_id, o.last_beat, d::date AS day,
           (d::date::timestamp AT TIME ZONE o.tz) AS day_start,
           ((d::date + 1)::timestamp AT TIME ZONE o.tz) AS day_end
      FROM bounds o
     CROSS JOIN LATERAL generate_series((o.first_beat AT TIME ZONE o.tz)::date,
                                        (o.last_beat AT TIME ZONE o.tz)::date, interval '1 day') AS d
)
SELECT d.guild_id, d.day,
       coalesce(sum(extract(epoch FROM least(c.t1, d.day_end) - greatest(c.t0, d.day_start))), 0)::numeric
           / extract(epoch FROM d.day_end - d.day_start)::numeric AS coverage,
       d.last_beat >= d.day_end AS is_complete
  FROM days d
  LEFT JOIN covered c ON c.guild_id = d.guild_id AND c.t0 < d.day_end AND c.t1 > d.day_start
 GROUP BY d.guild_id, d.day, d.day_start, d.day_end, d.last_beat;
COMMENT ON VIEW coverage_daily IS
    'Coverage marks: per guild and calendar day (the guild''s time zone), the share of the day the Discord bot was connected, from raw_heartbeats (a silence longer than outage_after is not covered), from the guild''s first heartbeat to its latest. Charts mark days below 1 as incomplete. Example: SELECT * FROM guildstats.coverage_daily WHERE coverage < 1;';
COMMENT ON COLUMN coverage_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN coverage_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN coverage_daily.coverage IS 'Connected time / length of the day (0 to 1).';
COMMENT ON COLUMN coverage_daily.is_complete IS 'The day is over as far as the heartbeats know (a later beat exists); false for today.';
