-- Activity metrics, game-server windows and health(): hand-made data, and DAU/WAU/MAU against
-- count(DISTINCT) on random activity.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SET extra_float_digits = 0;
INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (9, 'Europe/Berlin');
INSERT INTO guildstats.raw_channels (guild_id, channel_id, observed_at, name, kind) VALUES
    (9, 1, '2026-01-01', 'general', 'text'), (9, 1, '2026-02-01', 'lobby', 'text'), (9, 2, '2026-01-01', 'memes', 'text');
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts) VALUES
    (9, 10, 'join', '2026-03-01 08:00+00'), (9, 12, 'ban', '2026-03-02 08:00+00'),
    (9, 12, 'leave', '2026-03-02 08:00+00');
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at, char_count, is_bot) VALUES
    (9, 1, 10, 901, '2026-03-01 10:00+00', 10, false), (9, 1, 11, 902, '2026-03-01 23:30+00', 20, false),
    (9, 2, 11, 903, '2026-03-03 10:00+00', 5, false), (9, 1, 99, 904, '2026-03-03 10:00+00', 50, true),
    (9, 1, 10, 905, '2026-04-15 10:00+00', 1, false);
SELECT * FROM guildstats.activity_daily(9, '2026-03-01', '2026-03-04');
SELECT day, dau, wau, mau, churned_users FROM guildstats.activity_daily(9)
WHERE day IN ('2026-04-01', '2026-04-02', '2026-04-15');
SELECT * FROM guildstats.engagement_segments(9, '2026-03-03');
SELECT * FROM guildstats.chat_activity_daily WHERE guild_id = 9 ORDER BY day, channel_id;
SELECT * FROM guildstats.moderation_daily WHERE guild_id = 9 ORDER BY day;

-- Game servers: two polls a minute apart, one failed.
INSERT INTO guildstats.raw_server_polls (server, polled_at, ok, player_count, max_players) VALUES
    ('srv:1', '2026-03-01 20:00+00', true, 4, 16), ('srv:1', '2026-03-01 20:01+00', false, NULL, NULL),
    ('srv:1', '2026-03-01 20:06+00', true, 8, 16);
INSERT INTO guildstats.raw_server_players (server, polled_at, player_index, name) VALUES
    ('srv:1', '2026-03-01 20:00+00', 0, 'a'), ('srv:1', '2026-03-01 20:00+00', 1, 'b'),
    ('srv:1', '2026-03-01 20:06+00', 0, 'a');
SELECT * FROM guildstats.server_activity_5min ORDER BY window_start;
SELECT server, hour, polls, ok_polls, round(uptime::numeric, 3) AS uptime, avg_players, slots,
       round(utilization::numeric, 3) AS utilization
FROM guildstats.server_activity_hourly;
SELECT source_table, rows FROM guildstats.ingest_lag_hourly WHERE source_table = 'raw_server_polls';

-- health(): heartbeats long ago are missing; a failed ET import shows.
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at) VALUES ('discord', 9, '2026-03-01 20:00+00');
INSERT INTO guildstats.raw_et_stats_files (file_name, content, imported_at, import_error)
VALUES ('x-round-1.txt', 'abc', now(), 'x-round-1.txt: no header');
-- The users active without a member row are looked for among the people build_members() saw.
SELECT status FROM guildstats.build_members();
SELECT check_name, severity, status FROM guildstats.health();
-- Each heartbeat pair is found by skipping through the (source, guild_id, beat_at) key: with
-- several sources, guilds and beats of no guild, the same pairs, statuses and last beats as
-- grouping every beat.
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at) VALUES
    ('discord', 8, now() - interval '1 minute'), ('discord', 8, now() - interval '2 hours'),
    ('discord', 10, '2026-03-02 20:00+00'), ('gameserver', NULL, now() - interval '10 minutes'),
    ('gameserver', NULL, now() - interval '30 seconds'), ('gameserver', 9, '2026-03-01 10:00+00'),
    ('gameserver', 11, now() - interval '20 seconds'), ('sftp', NULL, '2026-03-01 09:00+00');
WITH plain AS (
    SELECT 'heartbeat: ' || source || coalesce(' guild ' || guild_id, '') AS check_name,
           CASE WHEN now() - max(beat_at) > interval '5 minutes' THEN 'missing' ELSE 'ok' END AS status,
           'last beat ' || to_char(max(beat_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS detail
    FROM guildstats.raw_heartbeats GROUP BY source, guild_id)
SELECT coalesce(h.check_name, p.check_name) AS check_name, h.status, h.status = p.status AS same_status,
       h.detail = p.detail AS same_detail
FROM (SELECT * FROM guildstats.health() WHERE check_name LIKE 'heartbeat:%') h
FULL JOIN plain p ON p.check_name = h.check_name
ORDER BY 1;

-- DAU/WAU/MAU against count(DISTINCT) over random activity of 400 users.
SELECT setseed(0.3);
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key)
SELECT 9, 1000 + floor(random() * 400)::int, 1,
       timestamptz '2026-01-01 00:00+01' + random() * interval '90 days', 'r' || i
FROM generate_series(1, 6000) i;
WITH local AS (SELECT DISTINCT user_id, (activity_at AT TIME ZONE 'Europe/Berlin')::date AS d
               FROM guildstats.activity_events WHERE guild_id = 9),
plain AS (SELECT c.day,
                 (SELECT count(DISTINCT user_id) FROM local WHERE d = c.day) AS dau,
                 (SELECT count(DISTINCT user_id) FROM local WHERE d BETWEEN c.day - 6 AND c.day) AS wau,
                 (SELECT count(DISTINCT user_id) FROM local WHERE d BETWEEN c.day - 29 AND c.day) AS mau
          FROM (SELECT g::date AS day FROM generate_series(date '2026-01-01', date '2026-04-20', '1 day') g) c)
SELECT count(*) AS days, count(*) FILTER (WHERE p.dau = a.dau AND p.wau = a.wau AND p.mau = a.mau) AS equal
FROM plain p JOIN guildstats.activity_daily(9, '2026-01-01', '2026-04-20') a USING (day);
-- Leave the shared regression database as we found it.
TRUNCATE guildstats.raw_channels, guildstats.raw_member_events, guildstats.raw_messages,
         guildstats.raw_server_polls, guildstats.raw_server_players, guildstats.raw_heartbeats,
         guildstats.raw_et_stats_files, guildstats.raw_point_transactions;
DELETE FROM guildstats.settings WHERE guild_id = 9;
