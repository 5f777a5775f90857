-- Game-server player sessions and coverage marks, hand-worked: every expectation below can be
-- checked by eye against the polls.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
-- Earlier tests leave raw rows behind: build them first, so the counts below are ours alone.
SELECT count(*) AS builders FROM guildstats.build_all();

CREATE FUNCTION pg_temp.differences_from_full_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE differences bigint;
BEGIN
    CREATE TEMP TABLE incremental AS SELECT * FROM guildstats.game_sessions;
    PERFORM guildstats.build_game_sessions(full => true);
    SELECT count(*) INTO differences FROM (
        (SELECT * FROM incremental EXCEPT SELECT * FROM guildstats.game_sessions)
        UNION ALL
        (SELECT * FROM guildstats.game_sessions EXCEPT SELECT * FROM incremental)) d;
    DROP TABLE incremental;
    RETURN differences;
END $$;

-- Server gs1:27015, a poll every minute 20:00-20:10; the 20:06 poll failed; the map changes
-- from oasis to baserace at 20:04.
INSERT INTO guildstats.raw_server_polls (server, polled_at, ok, map)
SELECT 'gs1:27015', t, t <> '2026-03-01 20:06', CASE WHEN t < '2026-03-01 20:04' THEN 'oasis' ELSE 'baserace' END
  FROM generate_series(timestamptz '2026-03-01 20:00', '2026-03-01 20:10', interval '1 minute') t;
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name, connected_seconds) VALUES
    -- Alice: connected 30 s at 20:01, so she joined at 20:00:30; gone at 20:04.
    ('gs1:27015', '2026-03-01 20:01', 0, 'Alice', 30),
    ('gs1:27015', '2026-03-01 20:02', 0, 'Alice', 90),
    ('gs1:27015', '2026-03-01 20:03', 0, 'Alice', 150),
    -- Bob: says 300 s at 20:02, but the 20:01 poll did not list him: joined 20:01.
    ('gs1:27015', '2026-03-01 20:02', 1, 'Bob', 300),
    ('gs1:27015', '2026-03-01 20:03', 1, 'Bob', 360),
    -- 20 s at 20:04: he reconnected (back-dated to 20:03:40); the failed 20:06 poll ends that visit at 20:05.
    ('gs1:27015', '2026-03-01 20:04', 0, 'Bob', 20),
    ('gs1:27015', '2026-03-01 20:05', 0, 'Bob', 80),
    -- After the failed poll: a new visit, back-dated no further than the last answered poll (20:05).
    ('gs1:27015', '2026-03-01 20:07', 0, 'Bob', 260),
    ('gs1:27015', '2026-03-01 20:08', 0, 'Bob', 320),
    ('gs1:27015', '2026-03-01 20:09', 0, 'Bob', 380),
    ('gs1:27015', '2026-03-01 20:10', 0, 'Bob', 440),   -- still there: open
    ('gs1:27015', '2026-03-01 20:09', 1, '', 5);         -- still connecting, no name: left out

-- Server gs2:27960 (Quake 3: no connected seconds), polls at 21:00, 21:01, then silence until
-- 21:10 (longer than the 5-minute gap), 21:11, 21:12. Carol is on it, and Alice too (a player
-- in two servers is two sessions).
INSERT INTO guildstats.raw_server_polls (server, polled_at, protocol, map) VALUES
    ('gs2:27960', '2026-03-01 21:00', 'q3', 'supply'), ('gs2:27960', '2026-03-01 21:01', 'q3', 'supply'),
    ('gs2:27960', '2026-03-01 21:10', 'q3', 'supply'), ('gs2:27960', '2026-03-01 21:11', 'q3', 'supply'),
    ('gs2:27960', '2026-03-01 21:12', 'q3', 'supply');
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name) VALUES
    ('gs2:27960', '2026-03-01 21:00', 0, 'Carol'), ('gs2:27960', '2026-03-01 21:01', 0, 'Carol'),
    ('gs2:27960', '2026-03-01 21:10', 0, 'Carol'), ('gs2:27960', '2026-03-01 21:11', 0, 'Carol'),
    ('gs2:27960', '2026-03-01 21:00', 1, 'Alice'), ('gs2:27960', '2026-03-01 21:01', 1, 'Alice');

SELECT rows_read, servers_rebuilt, sessions_removed, sessions_written, status FROM guildstats.build_game_sessions();
SELECT server, player_name, joined_at, left_at, first_seen, last_seen, polls, end_reason
FROM guildstats.game_sessions WHERE server IN ('gs1:27015', 'gs2:27960') ORDER BY server, player_name, first_seen;

-- The same polls again (the ingester retrying) change nothing; the build has nothing to do.
INSERT INTO guildstats.raw_server_polls (server, polled_at) VALUES ('gs1:27015', '2026-03-01 20:03') ON CONFLICT DO NOTHING;
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name, connected_seconds)
VALUES ('gs1:27015', '2026-03-01 20:03', 1, 'Bob', 360) ON CONFLICT DO NOTHING;
SELECT rows_read, servers_rebuilt, sessions_written, status FROM guildstats.build_game_sessions();

-- A late poll out of order: gs2 was polled at 21:05 too, with Carol on and Alice gone. Carol's
-- gaps are now 4 and 5 minutes: her two visits become one; Alice left at 21:05. Bob leaves gs1
-- at 20:11. Only the sessions from the poll
-- before each late row on are rebuilt, and the result equals a full rebuild.
INSERT INTO guildstats.raw_server_polls (server, polled_at, protocol, map) VALUES
    ('gs2:27960', '2026-03-01 21:05', 'q3', 'supply'), ('gs1:27015', '2026-03-01 20:11', 'a2s', 'baserace');
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name) VALUES
    ('gs2:27960', '2026-03-01 21:05', 0, 'Carol');
SELECT rows_read, servers_rebuilt, sessions_removed, sessions_written, status FROM guildstats.build_game_sessions();
SELECT server, player_name, joined_at, left_at, polls, end_reason
FROM guildstats.game_sessions WHERE server IN ('gs1:27015', 'gs2:27960') ORDER BY server, player_name, first_seen;
SELECT pg_temp.differences_from_full_rebuild();

-- A late poll at the end of a long visit rebuilds from that visit's start: a short visit of
-- someone else inside it is rebuilt too, not written twice.
INSERT INTO guildstats.raw_server_polls (server, polled_at)
SELECT 'gs3:27015', t FROM generate_series(timestamptz '2026-03-01 10:00', '2026-03-01 10:05', interval '1 minute') t;
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name, connected_seconds)
SELECT 'gs3:27015', t, 0, 'Dave', 60 * extract(minute FROM t) FROM generate_series(timestamptz '2026-03-01 10:00', '2026-03-01 10:05', interval '1 minute') t
UNION ALL
SELECT 'gs3:27015', '2026-03-01 10:02', 1, 'Eve', 10;
SELECT rows_read, servers_rebuilt, sessions_written, status FROM guildstats.build_game_sessions();
INSERT INTO guildstats.raw_server_polls (server, polled_at) VALUES ('gs3:27015', '2026-03-01 10:06');
SELECT rows_read, servers_rebuilt, sessions_removed, sessions_written, status FROM guildstats.build_game_sessions();
SELECT player_name, joined_at, left_at, polls, end_reason FROM guildstats.game_sessions
WHERE server = 'gs3:27015' ORDER BY player_name;
SELECT pg_temp.differences_from_full_rebuild();

-- Per hour, from the sessions: gs1 at 20:00 had Alice 20:00:30-20:04 (210 s) and Bob
-- 20:01-20:03, 20:03:40-20:05, 20:05-20:11 (120 + 80 + 360 s): 770 s / 3600 s; two at once at most.
SELECT server, hour, round(avg_players * 3600) AS player_seconds, peak_players, joins
FROM guildstats.game_server_hourly WHERE server IN ('gs1:27015', 'gs2:27960') ORDER BY server, hour;
-- The map changed to baserace at 20:04 with Alice and Bob on: Alice left at 20:04, Bob's visit
-- ended at a failed poll (not a leave): one of two lost.
SELECT server, map, map_changes, players_at_change, players_lost, drain
FROM guildstats.game_map_drain WHERE server IN ('gs1:27015', 'gs2:27960') ORDER BY server, map;
SELECT server, hour_of_day, hours_seen, avg_joins, fill_rank
FROM guildstats.game_server_seeding WHERE server IN ('gs1:27015', 'gs2:27960') ORDER BY server, fill_rank;

-- The gap is a setting (global row: game servers belong to no guild). At 3 minutes, Carol's
-- 21:01 -> 21:05 and 21:05 -> 21:10 gaps split her visit in three. (The settings are put back
-- at the end: the tests after this one share the database.)
CREATE TEMP TABLE settings_before AS SELECT * FROM guildstats.settings;
INSERT INTO guildstats.settings (guild_id, game_session_gap) VALUES (NULL, '3 minutes')
ON CONFLICT (guild_id) DO UPDATE SET game_session_gap = EXCLUDED.game_session_gap;
SELECT status FROM guildstats.build_game_sessions(full => true);
SELECT player_name, joined_at, left_at, end_reason FROM guildstats.game_sessions
WHERE server = 'gs2:27960' AND player_name = 'Carol' ORDER BY first_seen;
-- A changed setting applies from the next full rebuild on.
UPDATE guildstats.settings SET game_session_gap = NULL WHERE guild_id IS NULL;
SELECT status FROM guildstats.build_game_sessions(full => true);

-- Against an independent computation: a walker that goes through each server's polls one by
-- one, keeping the open visits in a table, on random polls (failed ones, silences, reconnects,
-- shared names), delivered in random order over several builds.
CREATE TEMP TABLE walked (server text, player_name text, joined_at timestamptz, left_at timestamptz,
                          first_seen timestamptz, last_seen timestamptz, polls integer, end_reason text);
CREATE FUNCTION pg_temp.walk(the_server text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    gap interval := guildstats.game_session_gap();
    p record; s record; prev_at timestamptz; last_ok timestamptz;
BEGIN
    CREATE TEMP TABLE open_visits (player_name text PRIMARY KEY, joined_at timestamptz, first_seen timestamptz,
                                   last_seen timestamptz, last_connected real, polls integer);
    FOR p IN SELECT polled_at, ok FROM guildstats.raw_server_polls WHERE server = the_server ORDER BY polled_at LOOP
        IF NOT p.ok OR p.polled_at - prev_at > gap THEN
            INSERT INTO walked SELECT the_server, o.player_name, o.joined_at, o.last_seen, o.first_seen, o.last_seen,
                                      o.polls, CASE WHEN p.ok THEN 'silence' ELSE 'failed_poll' END FROM open_visits o;
            DELETE FROM open_visits;
        END IF;
        IF p.ok THEN
            INSERT INTO walked SELECT the_server, o.player_name, o.joined_at, p.polled_at, o.first_seen, o.last_seen, o.polls, 'left'
              FROM open_visits o WHERE NOT EXISTS (SELECT 1 FROM guildstats.raw_server_players r
                    WHERE r.server = the_server AND r.polled_at = p.polled_at AND r.name = o.player_name);
            DELETE FROM open_visits o WHERE NOT EXISTS (SELECT 1 FROM guildstats.raw_server_players r
                    WHERE r.server = the_server AND r.polled_at = p.polled_at AND r.name = o.player_name);
            FOR s IN SELECT r.name, max(r.connected_seconds) AS c FROM guildstats.raw_server_players r
                      WHERE r.server = the_server AND r.polled_at = p.polled_at AND r.name <> '' GROUP BY r.name LOOP
                IF EXISTS (SELECT 1 FROM open_visits o WHERE o.player_name = s.name AND s.c < o.last_connected) THEN
                    INSERT INTO walked SELECT the_server, o.player_name, o.joined_at, o.last_seen, o.first_seen, o.last_seen, o.polls, 'reconnected'
                      FROM open_visits o WHERE o.player_name = s.name;
                    DELETE FROM open_visits o WHERE o.player_name = s.name;
                END IF;
                UPDATE open_visits o SET last_seen = p.polled_at, last_connected = s.c, polls = o.polls + 1
                 WHERE o.player_name = s.name;
                IF NOT FOUND THEN
                    INSERT INTO open_visits VALUES (s.name,
                        CASE WHEN s.c IS NULL THEN p.polled_at
                             ELSE greatest(p.polled_at - s.c * interval '1 second', last_ok) END,
                        p.polled_at, p.polled_at, s.c, 1);
                END IF;
            END LOOP;
            last_ok := p.polled_at;
        END IF;
        prev_at := p.polled_at;
    END LOOP;
    INSERT INTO walked SELECT the_server, o.player_name, o.joined_at, NULL, o.first_seen, o.last_seen, o.polls, 'open'
      FROM open_visits o;
    DROP TABLE open_visits;
END $$;

SELECT setseed(0.13);
CREATE TEMP TABLE random_polls AS
SELECT 'rnd' || s || ':27015' AS server,
       timestamptz '2026-04-01 00:00' + sum((20 + floor(random() * 400)) * interval '1 second')
           OVER (PARTITION BY s ORDER BY i) AS polled_at,
       random() > 0.08 AS ok, random() AS batch, 'map' || (i / 7 % 4) AS map
  FROM generate_series(1, 3) s, generate_series(1, 300) i;
CREATE TEMP TABLE random_players AS
SELECT p.server, p.polled_at, row_number() OVER (PARTITION BY p.server, p.polled_at ORDER BY n) - 1 AS player_index,
       'p' || n AS name,
       -- Mostly growing with time, sometimes small (a reconnect); never NULL on server 1, always on 3.
       CASE WHEN p.server LIKE 'rnd3%' THEN NULL
            WHEN random() < 0.1 THEN floor(random() * 60)
            ELSE extract(epoch FROM p.polled_at - timestamptz '2026-04-01 00:00') / 4 END AS connected_seconds,
       p.batch
  FROM random_polls p, generate_series(1, 6) n
 WHERE p.ok AND random() < 0.6;
-- Three deliveries in random order, each followed by a build.
DO $$
BEGIN
    FOR k IN 0..2 LOOP
        INSERT INTO guildstats.raw_server_polls (server, polled_at, ok, map)
        SELECT server, polled_at, ok, map FROM random_polls WHERE floor(batch * 3) = k;
        INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name, connected_seconds)
        SELECT server, polled_at, player_index, name, connected_seconds FROM random_players WHERE floor(batch * 3) = k;
        PERFORM guildstats.build_game_sessions();
    END LOOP;
END $$;
SELECT pg_temp.walk(server) FROM (SELECT DISTINCT server FROM random_polls) s;
SELECT count(*) > 200 AS enough_sessions, count(DISTINCT end_reason) AS end_reasons FROM walked;
SELECT count(*) AS differences FROM (
    (SELECT * FROM walked EXCEPT SELECT * FROM guildstats.game_sessions WHERE server LIKE 'rnd%')
    UNION ALL
    (SELECT * FROM guildstats.game_sessions WHERE server LIKE 'rnd%' EXCEPT SELECT * FROM walked)) d;
SELECT pg_temp.differences_from_full_rebuild();

-- The hourly view against a sum done another way: seconds per session split by hour with
-- generate_series over whole seconds would be slow; instead, the total over all hours must be
-- the total session time.
SELECT round((SELECT sum(avg_players) * 3600 FROM guildstats.game_server_hourly WHERE server LIKE 'rnd%'))
     = round((SELECT sum(extract(epoch FROM coalesce(left_at, last_seen) - joined_at)) FROM guildstats.game_sessions
               WHERE server LIKE 'rnd%')) AS hours_add_up;

-- Peaks and joins against brute force: the most sessions overlapping any instant at which
-- someone joined, or the hour's start, counted one by one.
SELECT count(*) AS hours_differing FROM guildstats.game_server_hourly h
 WHERE h.server LIKE 'rnd%'
   AND (h.peak_players, h.joins) IS DISTINCT FROM (
       (SELECT max((SELECT count(*) FROM guildstats.game_sessions g
                     WHERE g.server = h.server AND g.joined_at <= t.at AND coalesce(g.left_at, g.last_seen) > t.at))
          FROM (SELECT h.hour AS at
                UNION ALL
                SELECT g.joined_at FROM guildstats.game_sessions g
                 WHERE g.server = h.server AND g.joined_at >= h.hour AND g.joined_at < h.hour + interval '1 hour') t),
       (SELECT count(*) FROM guildstats.game_sessions g
         WHERE g.server = h.server AND g.joined_at >= h.hour AND g.joined_at < h.hour + interval '1 hour'));
-- The map drain against a count session by session.
SELECT count(*) AS maps_differing
  FROM guildstats.game_map_drain d
  JOIN (SELECT c.server, c.map,
               sum((SELECT count(*) FROM guildstats.game_sessions g WHERE g.server = c.server
                      AND g.joined_at < c.polled_at AND coalesce(g.left_at, g.last_seen) >= c.polled_at)) AS players_at_change,
               sum((SELECT count(*) FROM guildstats.game_sessions g WHERE g.server = c.server AND g.end_reason = 'left'
                      AND g.joined_at < c.polled_at AND g.left_at BETWEEN c.polled_at AND c.polled_at + interval '5 minutes')) AS players_lost
          FROM guildstats.raw_server_polls c
         WHERE c.server LIKE 'rnd%' AND c.ok
           AND c.map <> (SELECT p.map FROM guildstats.raw_server_polls p
                          WHERE p.server = c.server AND p.ok AND p.map IS NOT NULL AND p.polled_at < c.polled_at
                          ORDER BY p.polled_at DESC LIMIT 1)
         GROUP BY c.server, c.map) e USING (server, map)
 WHERE (d.players_at_change, d.players_lost) IS DISTINCT FROM (e.players_at_change, e.players_lost);
SELECT count(*) > 5 AS maps_seen, sum(players_lost) > 0 AS some_lost FROM guildstats.game_map_drain WHERE server LIKE 'rnd%';

-- Coverage: guild 901's bot beats every minute 23:40-23:55, is silent over midnight, and beats
-- again 00:10-00:20. Day 1 is covered 15 minutes (900 s), day 2 10 minutes (600 s); the
-- outage across midnight counts on neither day. Day 2 is not over yet.
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', 901, t FROM generate_series(timestamptz '2026-03-01 23:40', '2026-03-01 23:55', interval '1 minute') t
UNION ALL
SELECT 'discord', 901, t FROM generate_series(timestamptz '2026-03-02 00:10', '2026-03-02 00:20', interval '1 minute') t
UNION ALL
SELECT 'gameserver', 901, '2026-03-02 00:00';  -- another ingester's beat: not the bot
SELECT guild_id, day, round(coverage * 86400) AS covered_seconds, is_complete
FROM guildstats.coverage_daily WHERE guild_id = 901 ORDER BY day;
-- With a 20-minute outage threshold the silence is a mere gap: covered, across midnight.
INSERT INTO guildstats.settings (guild_id, outage_after) VALUES (901, '20 minutes');
SELECT day, round(coverage * 86400) AS covered_seconds FROM guildstats.coverage_daily WHERE guild_id = 901 ORDER BY day;
SELECT day, week, is_partial FROM guildstats_mart.coverage_daily WHERE guild_id = 901 ORDER BY day;

DELETE FROM guildstats.settings;
INSERT INTO guildstats.settings SELECT * FROM settings_before;
DELETE FROM guildstats.raw_heartbeats WHERE guild_id = 901;
DELETE FROM guildstats.raw_server_players WHERE server LIKE 'rnd%' OR server IN ('gs1:27015', 'gs2:27960', 'gs3:27015');
DELETE FROM guildstats.raw_server_polls WHERE server LIKE 'rnd%' OR server IN ('gs1:27015', 'gs2:27960', 'gs3:27015');
SELECT status FROM guildstats.build_game_sessions(full => true);
