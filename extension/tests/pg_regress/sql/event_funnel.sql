-- The show-up funnel of scheduled events, hand-worked, then checked against plain SQL over the
-- raw tables written another way, before and after late rows, and against a full rebuild.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
-- Earlier tests leave raw rows behind: build them first, so the counts below are ours alone.
SELECT count(*) AS builders FROM guildstats.build_all();

-- Guild 130 (calendar UTC). Members, named by their latest display name.
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts, display_name) VALUES
    (130, 201, 'join', '2026-02-01 10:00+00', 'Anna'),   -- interested, voice, server, ET rounds
    (130, 202, 'join', '2026-02-01 10:00+00', 'Ben'),    -- interested but absent
    (130, 203, 'join', '2026-02-01 10:00+00', 'Cleo'),   -- in voice without interest
    (130, 204, 'join', '2026-02-01 10:00+00', 'Dora'),   -- interested, in voice, not on a server
    (130, 205, 'join', '2026-02-01 10:00+00', 'Emil'),   -- on the server as Owl, his GUID's name
    (130, 206, 'join', '2026-02-01 10:00+00', 'Gus'),    -- on the server under his name, no GUID link
    (130, 207, 'join', '2026-02-01 10:00+00', 'Hank'),   -- took his interest back before the event
    (130, 208, 'join', '2026-02-01 10:00+00', 'Ida'),    -- took it back only after the event
    (130, 209, 'join', '2026-02-01 10:00+00', 'Twin'),   -- two members named Twin: the name
    (130, 210, 'join', '2026-02-01 10:00+00', 'twin ');  -- "twin" on a server is nobody's
-- Event 13000 in channel 1300, 20:00-21:00. Event 13001 names no channel and runs across
-- midnight (23:30-00:30). Event 13002 was cancelled before it started.
INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, name, channel_id, entity_type, status, scheduled_start) VALUES
    (130, 13000, '2026-03-01 12:00+00', 'Frag night', 1300, 'voice', 'scheduled', '2026-03-02 20:00+00'),
    (130, 13000, '2026-03-02 20:00+00', 'Frag night', 1300, 'voice', 'active', '2026-03-02 20:00+00'),
    (130, 13000, '2026-03-02 21:00+00', 'Frag night', 1300, 'voice', 'completed', '2026-03-02 20:00+00'),
    (130, 13001, '2026-03-01 12:00+00', 'Midnight cup', NULL, 'external', 'scheduled', '2026-03-02 23:30+00'),
    (130, 13001, '2026-03-02 23:30+00', 'Midnight cup', NULL, 'external', 'active', '2026-03-02 23:30+00'),
    (130, 13001, '2026-03-03 00:30+00', 'Midnight cup', NULL, 'external', 'completed', '2026-03-02 23:30+00'),
    (130, 13002, '2026-03-01 12:00+00', 'Town hall', 1300, 'voice', 'scheduled', '2026-03-04 20:00+00'),
    (130, 13002, '2026-03-03 18:00+00', 'Town hall', 1300, 'voice', 'canceled', '2026-03-04 20:00+00');
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at) VALUES
    (130, 13000, 201, 'add', '2026-03-01 13:00+00'), (130, 13000, 202, 'add', '2026-03-01 13:00+00'),
    (130, 13000, 204, 'add', '2026-03-01 13:00+00'), (130, 13000, 205, 'add', '2026-03-01 13:00+00'),
    (130, 13000, 206, 'add', '2026-03-01 13:00+00'), (130, 13000, 209, 'add', '2026-03-01 13:00+00'),
    (130, 13000, 207, 'add', '2026-03-01 13:00+00'), (130, 13000, 207, 'remove', '2026-03-02 18:00+00'),
    (130, 13000, 208, 'add', '2026-03-01 13:00+00'), (130, 13000, 208, 'remove', '2026-03-02 22:00+00'),
    (130, 13001, 201, 'add', '2026-03-02 12:00+00'), (130, 13001, 204, 'add', '2026-03-02 12:00+00'),
    (130, 13002, 201, 'add', '2026-03-01 14:00+00');
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (130, 201, 1300, '2026-03-02 19:55+00'), (130, 201, NULL, '2026-03-02 20:50+00'),
    (130, 203, 1300, '2026-03-02 20:05+00'), (130, 203, NULL, '2026-03-02 20:30+00'),
    (130, 204, 1300, '2026-03-02 20:00+00'), (130, 204, NULL, '2026-03-02 21:00+00'),
    (130, 205, 1300, '2026-03-02 20:10+00'), (130, 205, NULL, '2026-03-02 20:40+00'),
    (130, 206, 1300, '2026-03-02 20:10+00'), (130, 206, NULL, '2026-03-02 20:40+00'),
    (130, 209, 1300, '2026-03-02 20:10+00'), (130, 209, NULL, '2026-03-02 20:40+00'),
    -- Across midnight, in another channel: the channel-less event counts any channel.
    (130, 201, 1301, '2026-03-02 23:50+00'), (130, 201, NULL, '2026-03-03 00:20+00'),
    -- D30: Anna is back a month later; Ben is not.
    (130, 201, 1300, '2026-04-05 20:00+00'), (130, 201, NULL, '2026-04-05 20:30+00'),
    (130, 204, 1300, '2026-04-05 20:00+00'), (130, 204, NULL, '2026-04-05 20:30+00');
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', 130, t FROM generate_series(timestamptz '2026-03-02 19:00+00', '2026-03-03 02:00+00', interval '1 minute') t
UNION ALL
SELECT 'discord', 130, t FROM generate_series(timestamptz '2026-04-05 19:50+00', '2026-04-05 20:40+00', interval '1 minute') t
UNION ALL SELECT 'discord', 130, '2026-04-10 00:00+00';
-- A game server polled every 5 minutes during the event: Anna as ^1Anna, Emil as Owl (the name
-- his linked GUID plays under), Gus as gus, and "twin"; Dora is not there.
INSERT INTO guildstats.raw_server_polls (server, polled_at, ok, map)
SELECT 'et.funnel:27960', t, true, 'supply'
  FROM generate_series(timestamptz '2026-03-02 20:00+00', '2026-03-02 21:00+00', interval '5 minutes') t;
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name)
SELECT 'et.funnel:27960', t, p.i, p.name
  FROM generate_series(timestamptz '2026-03-02 20:15+00', '2026-03-02 20:35+00', interval '5 minutes') t,
       (VALUES (0, '^1Anna'), (1, 'Owl'), (2, ' gus'), (3, 'twin')) AS p(i, name);
-- One ET:Legacy round saved at 20:30 after 7:30 of play: Anna's GUID and Emil's.
INSERT INTO guildstats.raw_et_stats_files (file_name, content) VALUES ('2026-03-02-203000-supply-round-1.txt', convert_to(
E'^1Funnel ^7Server\\supply\\legacy3\\1\\1\\2\\10:00\\7:30\n'
'AAAA0130\\^1Fox\\0\\2\\16 30 100 5 3 2 \t1200\t900\t0\t0\t2\t0\t0\t0\t90.0\t40\t3\t1\t1\t0\t1\t0\t0\t0\t0\t0\t100\t0.0\t7.5\t0.0\t10.0\t0.8\t1.7\t2\t30\t1\t0\t0\t0\t0\t0\t0\t0\t0\n'
'BBBB0130\\^4O^7wl\\0\\1\\32 20 80 3 5 1 \t800\t1100\t0\t0\t1\t0\t0\t0\t85.0\t30\t2\t1\t1\t0\t1\t0\t0\t0\t0\t0\t80\t0.0\t7.5\t0.0\t10.0\t1.2\t0.6\t2\t30\t1\t0\t0\t0\t0\t0\t0\t0\t0\n', 'UTF8'));
INSERT INTO guildstats.et_guid_links (guid, guild_id, user_id) VALUES ('AAAA0130', 130, 201), ('BBBB0130', 130, 205);
SELECT count(*) AS builders FROM guildstats.build_all();

-- Per member: Ben and Ida are no-shows (Ida's take-back came after the end), Hank is not
-- interested, Cleo walked in, Gus is on the server by his display name, Emil by his GUID's
-- name and through the round, the Twins by nobody's name. Event 13002 never started: no rows.
SELECT event_id, user_id, interested, in_voice, voice_minutes, on_server, server_name_key, played, rounds_played
FROM guildstats.event_funnel_members WHERE guild_id = 130 ORDER BY event_id, user_id;
SELECT event_id, name, started, interested, in_voice, on_server, played, attendees, walk_ins,
       round(voice_rate::numeric, 3) AS voice_rate, round(no_show_rate::numeric, 3) AS no_show_rate,
       round(server_rate::numeric, 3) AS server_rate, round(play_rate::numeric, 3) AS play_rate
FROM guildstats.event_funnel WHERE guild_id = 130 ORDER BY event_id;
SELECT user_id, events_interested, events_attended, no_shows, walk_ins, round(no_show_rate::numeric, 3) AS no_show_rate
FROM guildstats.member_event_funnel WHERE guild_id = 130 ORDER BY user_id;
-- D30: the first event of each member in the funnel is 13000; the data reaches 2026-04-10.
SELECT user_id, event_id, event_day, cohort, eligible, retained_d30
FROM guildstats.event_retention_d30 WHERE guild_id = 130 ORDER BY user_id;
SELECT month, cohort, members, eligible_members, retained, retention_rate
FROM guildstats_mart.event_retention_d30 WHERE guild_id = 130 ORDER BY cohort;
SELECT event_name, day, interested, in_voice, on_server, played, walk_ins
FROM guildstats_mart.event_funnel WHERE guild_id = 130 ORDER BY event_id;

-- The same stages from the raw tables, written another way: windows from the status changes,
-- interest from the last action by the end, voice from raw join/leave pairs, the server from
-- the raw polls, rounds from the round's own start and end, names cleaned with translate-free
-- string functions.
CREATE TEMP VIEW funnel_by_hand AS
WITH ev AS (
    SELECT r.event_id, r.guild_id,
           min(r.observed_at) FILTER (WHERE r.status = 'active') AS s,
           min(r.observed_at) FILTER (WHERE r.status IN ('completed', 'canceled')) AS e,
           (array_agg(r.channel_id ORDER BY r.observed_at DESC))[1] AS channel_id
      FROM guildstats.raw_scheduled_events r WHERE r.guild_id = 130
     GROUP BY r.event_id, r.guild_id
    HAVING min(r.observed_at) FILTER (WHERE r.status = 'active') IS NOT NULL
), last_action AS (
    SELECT ev.event_id, u.user_id, max(u.observed_at) AS at
      FROM ev JOIN guildstats.raw_scheduled_event_users u ON u.event_id = ev.event_id AND u.observed_at <= ev.e
     GROUP BY ev.event_id, u.user_id
), interested AS (
    SELECT l.event_id, l.user_id FROM last_action l
      JOIN guildstats.raw_scheduled_event_users u ON u.event_id = l.event_id AND u.user_id = l.user_id AND u.observed_at = l.at
     WHERE u.action = 'add'
), stints AS (
    SELECT v.user_id, v.channel_id, v.event_ts AS a,
           (SELECT min(w.event_ts) FROM guildstats.raw_voice_events w
             WHERE w.guild_id = v.guild_id AND w.user_id = v.user_id AND w.event_ts > v.event_ts) AS b
      FROM guildstats.raw_voice_events v WHERE v.guild_id = 130 AND v.channel_id IS NOT NULL
), voice AS (
    SELECT DISTINCT ev.event_id, st.user_id FROM ev JOIN stints st
        ON (ev.channel_id IS NULL OR st.channel_id = ev.channel_id) AND st.a < ev.e AND st.b > ev.s
), names AS (
    SELECT k, min(user_id) AS user_id FROM (
        SELECT DISTINCT lower(trim(display_name)) AS k, user_id FROM guildstats.raw_member_events WHERE guild_id = 130
        UNION
        SELECT DISTINCT lower(p.clean_name), l.user_id FROM guildstats.et_guid_links l JOIN guildstats.et_player_rounds p USING (guid)
         WHERE l.guild_id = 130) n
     GROUP BY k HAVING count(DISTINCT user_id) = 1
), rounds AS (
    SELECT ev.event_id, l.user_id, count(*) AS n
      FROM ev JOIN guildstats.et_guid_links l ON l.guild_id = ev.guild_id
      JOIN guildstats.et_player_rounds p ON p.guid = l.guid
      JOIN guildstats.et_rounds r ON r.round_id = p.round_id
     WHERE (r.saved_at AT TIME ZONE 'UTC') > ev.s
       AND (r.saved_at AT TIME ZONE 'UTC') - r.time_used_seconds * interval '1 second' < ev.e
     GROUP BY ev.event_id, l.user_id
), server AS (
    SELECT DISTINCT ev.event_id, n.user_id FROM ev
      JOIN guildstats.raw_server_players p ON p.polled_at >= ev.s AND p.polled_at < ev.e
      JOIN names n ON n.k = lower(trim(replace(replace(p.name, '^1', ''), '^7', '')))
    UNION SELECT event_id, user_id FROM rounds
)
SELECT c.event_id, c.user_id,
       c.user_id IN (SELECT user_id FROM interested i WHERE i.event_id = c.event_id) AS interested,
       c.user_id IN (SELECT user_id FROM voice v WHERE v.event_id = c.event_id) AS in_voice,
       c.user_id IN (SELECT user_id FROM server s WHERE s.event_id = c.event_id) AS on_server,
       coalesce((SELECT n FROM rounds r WHERE r.event_id = c.event_id AND r.user_id = c.user_id), 0)::integer AS rounds_played
FROM (SELECT event_id, user_id FROM interested UNION SELECT event_id, user_id FROM voice) c;

-- Both ways agree: no row in one and not the other.
CREATE TEMP VIEW funnel_mismatch AS
(SELECT event_id, user_id, interested, in_voice, on_server, rounds_played FROM guildstats.event_funnel_members WHERE guild_id = 130
 EXCEPT SELECT * FROM funnel_by_hand)
UNION ALL
(SELECT * FROM funnel_by_hand
 EXCEPT SELECT event_id, user_id, interested, in_voice, on_server, rounds_played FROM guildstats.event_funnel_members WHERE guild_id = 130);
SELECT count(*) AS hand_rows FROM funnel_by_hand;
SELECT * FROM funnel_mismatch;

-- Late rows: Ben's voice stint in the event arrives now, Cleo marks interest late (observed
-- during the event), Dora shows up on the server. An incremental build updates the funnel.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (130, 202, 1300, '2026-03-02 20:30+00'), (130, 202, NULL, '2026-03-02 20:45+00');
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at) VALUES
    (130, 13000, 203, 'add', '2026-03-02 20:06+00');
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name)
VALUES ('et.funnel:27960', '2026-03-02 20:20+00', 4, 'Dora'), ('et.funnel:27960', '2026-03-02 20:25+00', 4, 'Dora');
SELECT count(*) AS builders FROM guildstats.build_all();
SELECT event_id, interested, in_voice, on_server, played, attendees, walk_ins, round(no_show_rate::numeric, 3) AS no_show_rate
FROM guildstats.event_funnel WHERE guild_id = 130 ORDER BY event_id;
SELECT * FROM funnel_mismatch;
CREATE TEMP TABLE funnel_incremental AS SELECT * FROM guildstats.event_funnel_members WHERE guild_id = 130;

-- A full rebuild of every builder the funnel reads gives the same rows.
SELECT status FROM guildstats.build_members(full => true);
SELECT status FROM guildstats.build_voice_sessions(full => true);
SELECT status FROM guildstats.build_event_attendance(full => true);
SELECT status FROM guildstats.build_game_sessions(full => true);
SELECT count(*) AS differences FROM (
    (SELECT * FROM funnel_incremental EXCEPT SELECT * FROM guildstats.event_funnel_members WHERE guild_id = 130)
    UNION ALL
    (SELECT * FROM guildstats.event_funnel_members WHERE guild_id = 130 EXCEPT SELECT * FROM funnel_incremental)) d;

-- Readers bound to another guild see nothing of guild 130's funnel.
CREATE ROLE funnel_reader LOGIN;
GRANT USAGE ON SCHEMA guildstats, guildstats_mart TO funnel_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA guildstats, guildstats_mart TO funnel_reader;
INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('funnel_reader', 131);
SET ROLE funnel_reader;
SELECT count(*) AS seen_members FROM guildstats.event_funnel_members WHERE guild_id = 130;
SELECT count(*) AS seen_events FROM guildstats_mart.event_funnel WHERE guild_id = 130;
RESET ROLE;
DELETE FROM guildstats.reader_guilds WHERE role_name = 'funnel_reader';
REVOKE ALL ON ALL TABLES IN SCHEMA guildstats, guildstats_mart FROM funnel_reader;
REVOKE ALL ON SCHEMA guildstats, guildstats_mart FROM funnel_reader;
DROP ROLE funnel_reader;

-- Erasure: once Anna is erased, no funnel view names her (her game-server name no longer
-- resolves, her interest and attendance are gone).
SELECT count(*) > 0 AS erased FROM guildstats.erase_member(guild_id => 130, user_id => 201) WHERE rows_changed > 0;
SELECT (SELECT count(*) FROM guildstats.event_funnel_members WHERE guild_id = 130 AND user_id = 201)
     + (SELECT count(*) FROM guildstats.member_event_funnel WHERE guild_id = 130 AND user_id = 201)
     + (SELECT count(*) FROM guildstats.event_retention_d30 WHERE guild_id = 130 AND user_id = 201)
     + (SELECT count(*) FROM guildstats.event_member_names WHERE guild_id = 130 AND user_id = 201) AS rows_naming_anna;

-- The suites share a database: leave no rows of ours behind.
DELETE FROM guildstats.et_guid_links WHERE guild_id = 130;
DELETE FROM guildstats.raw_member_events WHERE guild_id = 130;
DELETE FROM guildstats.raw_scheduled_events WHERE guild_id = 130;
DELETE FROM guildstats.raw_scheduled_event_users WHERE guild_id = 130;
DELETE FROM guildstats.raw_voice_events WHERE guild_id = 130;
DELETE FROM guildstats.raw_heartbeats WHERE guild_id = 130;
DELETE FROM guildstats.raw_server_players WHERE server = 'et.funnel:27960';
DELETE FROM guildstats.raw_server_polls WHERE server = 'et.funnel:27960';
DELETE FROM guildstats.raw_et_stats_files WHERE file_name = '2026-03-02-203000-supply-round-1.txt';
DELETE FROM guildstats.et_weapon_rounds WHERE guid IN ('AAAA0130', 'BBBB0130');
DELETE FROM guildstats.et_player_rounds WHERE guid IN ('AAAA0130', 'BBBB0130');
DELETE FROM guildstats.et_rounds WHERE file_name = '2026-03-02-203000-supply-round-1.txt';
SELECT status FROM guildstats.build_members(full => true);
SELECT status FROM guildstats.build_voice_sessions(full => true);
SELECT status FROM guildstats.build_event_attendance(full => true);
SELECT status FROM guildstats.build_game_sessions(full => true);
SELECT status FROM guildstats.build_rollups(full => true);
