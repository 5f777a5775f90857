-- The Discord command functions (issue 14) on small synthetic data: the empty database, bad
-- input, /voice, /top voice_hours and messages, /community. The ET:Legacy answers are checked on
-- the real files end to end (tests/tests/commands.rs).
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';

-- Nothing imported yet: every command answers ok false with a reason, never an error.
SELECT guildstats.command_last_session(77);
SELECT guildstats.command_stats(77, player => 'lu');
SELECT guildstats.command_stats(77, user_id => 1);
SELECT guildstats.command_top(77, 'kills');
SELECT guildstats.command_top(77, 'voice_hours');
SELECT guildstats.command_top(77, 'messages');
SELECT guildstats.command_link_candidates(77, 1, 'lu');
SELECT guildstats.command_link(77, 1, '0A26D447');
SELECT guildstats.command_server(77);
SELECT guildstats.command_voice(77, 1);
SELECT guildstats.command_community(77);

-- Bad input: a clear answer naming the problem.
SELECT guildstats.command_stats(77, player => repeat('x', 500)) ->> 'error' AS too_long;
SELECT guildstats.command_stats(77, player => '') ->> 'error' AS empty;
SELECT guildstats.command_stats(77, player => '^1^2') ->> 'error' AS only_colour_codes;
SELECT guildstats.command_stats(77) ->> 'error' AS nothing_given;
SELECT guildstats.command_link_candidates(77, 1, repeat('''', 500)) ->> 'error' AS quotes_500;
SELECT guildstats.command_top(77, 'kills%'' OR 1=1 --') ->> 'error' AS bad_metric;
SELECT guildstats.command_top(77, 'kills', 'forever') ->> 'error' AS bad_period;
SELECT guildstats.command_top(77, 'kills', max_rows => 0) ->> 'error' AS bad_rows;
SELECT guildstats.command_top(77, 'kills', map => repeat('m', 500)) ->> 'error' AS long_map;
SELECT guildstats.command_top(77, NULL) ->> 'error' AS null_metric;
SELECT guildstats.command_link(77, 1, 'not-a-guid\%_') ->> 'error' AS bad_guid;
SELECT guildstats.command_link(77, 1, NULL) ->> 'error' AS null_guid;
SELECT guildstats.command_voice(77, NULL) ->> 'error' AS no_member;

-- The name matcher on an empty database: nobody, whatever is typed.
SELECT count(*) AS nobody FROM guildstats.command_find_player('%');

-- Settings: the season starts on the first day of the quarter unless set; the minimum rounds
-- default to et_min_rounds; a guild row overrides the global one.
SELECT season_start = date_trunc('quarter', now())::date AS quarter_default, top_min_rounds, link_voice_rounds
FROM guildstats.command_settings_for(77);
INSERT INTO guildstats.command_settings (guild_id, season_start, top_min_rounds) VALUES (NULL, '2026-01-15', 2);
INSERT INTO guildstats.command_settings (guild_id, link_voice_rounds) VALUES (77, 4);
SELECT * FROM guildstats.command_settings_for(77);
SELECT * FROM guildstats.command_settings_for(78);
\set VERBOSITY terse
INSERT INTO guildstats.command_settings (guild_id, link_voice_rounds) VALUES (79, 0);
\set VERBOSITY default

-- Voice in guild 77 as of Wednesday 2026-03-11 12:00 UTC (the week began Monday 03-09):
--   member 1: 2 h on 03-09 in channel 500, 1 h on 03-02, 3 h on 02-20, 5 h AFK (never counts);
--   member 2: 2 h on 03-09 in channel 500 (one hour with member 1), 0.5 h on 03-10;
--   member 3: 1.5 h in channel 501 on 03-09, and in channel 500 since 11:00 (open: 1 h so far).
-- Week: 1 = 2.0 h, 2 = 2.5 h, 3 = 2.5 h. Month: 1 = 3.0 h, 2 = 2.5 h, 3 = 2.5 h.
INSERT INTO guildstats.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                       is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
VALUES (77, 1, 500, '2026-03-09 20:00+00', '2026-03-09 22:00+00', 'leave', false, 'join', false, 0, 0),
       (77, 1, 500, '2026-03-02 20:00+00', '2026-03-02 21:00+00', 'leave', false, 'join', false, 0, 0),
       (77, 1, 500, '2026-02-20 20:00+00', '2026-02-20 23:00+00', 'leave', false, 'join', false, 0, 0),
       (77, 1, 999, '2026-03-10 10:00+00', '2026-03-10 15:00+00', 'leave', true, 'join', false, 0, 0),
       (77, 2, 500, '2026-03-09 21:00+00', '2026-03-09 23:00+00', 'leave', false, 'join', false, 0, 0),
       (77, 2, 500, '2026-03-10 20:00+00', '2026-03-10 20:30+00', 'leave', false, 'join', false, 0, 0),
       (77, 3, 501, '2026-03-09 20:00+00', '2026-03-09 21:30+00', 'leave', false, 'join', false, 0, 0),
       (77, 3, 500, '2026-03-11 11:00+00', NULL, NULL, false, 'join', false, 0, 0),
       (78, 1, 600, '2026-03-09 20:00+00', '2026-03-10 20:00+00', 'leave', false, 'join', false, 0, 0);
INSERT INTO guildstats.members (guild_id, user_id, first_seen, last_seen, is_active, display_name)
VALUES (77, 1, '2026-01-01', '2026-03-11', true, 'Alice'), (77, 2, '2026-01-01', '2026-03-11', true, 'Bob'),
       (77, 3, '2026-01-01', '2026-03-11', true, 'Cara');
-- Partners come from the co-presence builder, as build_all() runs it; the row that
-- build_voice_sessions() would have left tells it the guild's horizon, and the change it
-- would have noted tells the rollups (read by /top voice_hours) where their days go stale.
INSERT INTO guildstats.voice_build_guilds (guild_id, horizon, has_heartbeats, settings_fingerprint)
VALUES (77, '2026-03-11 12:00+00', false, 'hand-made sessions');
SELECT guildstats._note_voice_change(77, '2026-02-20 20:00+00');
SELECT status FROM guildstats.build_voice_copresence();

SELECT jsonb_pretty(guildstats.command_voice(77, 1, as_of => '2026-03-11 12:00+00'));
SELECT v ->> 'hours_week' AS week, v ->> 'rank_week' AS rank_week, v ->> 'hours_month' AS month,
       v ->> 'rank_month' AS rank_month, v -> 'partners' AS partners
FROM guildstats.command_voice(77, 3, as_of => '2026-03-11 12:00+00') v;
SELECT guildstats.command_voice(77, 4, as_of => '2026-03-11 12:00+00') ->> 'error' AS unknown_member;

SELECT jsonb_pretty(guildstats.command_top(77, 'voice_hours', 'week', as_of => '2026-03-11 12:00+00'));
SELECT r ->> 'user_id' AS user_id, r ->> 'value' AS hours, r ->> 'rank' AS rank
FROM jsonb_array_elements(guildstats.command_top(77, 'VOICE_HOURS', 'month', as_of => '2026-03-11 12:00+00') -> 'rows') r;
-- The season (2026-01-15 from the global row) includes February; all time includes it too.
SELECT r ->> 'user_id' AS user_id, r ->> 'value' AS hours
FROM jsonb_array_elements(guildstats.command_top(77, 'voice_hours', 'season', as_of => '2026-03-11 12:00+00') -> 'rows') r;

-- Messages: bots never count; a message after as_of does not either.
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at, is_bot)
VALUES (77, 10, 1, 1, '2026-03-09 10:00+00', false), (77, 10, 1, 2, '2026-03-10 10:00+00', false),
       (77, 10, 1, 3, '2026-03-10 11:00+00', false), (77, 10, 2, 4, '2026-03-10 12:00+00', false),
       (77, 10, 9, 5, '2026-03-10 12:00+00', true), (77, 10, 9, 6, '2026-03-10 12:01+00', true),
       (77, 10, 2, 7, '2026-03-12 12:00+00', false), (77, 10, 2, 8, '2026-03-01 12:00+00', false);
SELECT r ->> 'user_id' AS user_id, r ->> 'name' AS name, r ->> 'value' AS messages, r ->> 'rank' AS rank
FROM jsonb_array_elements(guildstats.command_top(77, 'messages', 'week', as_of => '2026-03-11 12:00+00') -> 'rows') r;
SELECT r ->> 'user_id' AS user_id, r ->> 'value' AS messages
FROM jsonb_array_elements(guildstats.command_top(77, 'messages', 'month', as_of => '2026-03-11 12:00+00', max_rows => 1) -> 'rows') r;

-- /community: activity on 03-10 (members 1 and 2 wrote), no economy, health problems listed.
-- It reads the rollups: nothing counts before build_rollups() has run.
SELECT c ->> 'dau' AS dau, c ->> 'built_through' AS built_through
FROM guildstats.command_community(77, as_of => '2026-03-10 18:00+00') c;
SELECT status FROM guildstats.build_rollups();
SELECT c ->> 'built_through' IS NOT NULL AS built, c ->> 'ok' AS ok, c ->> 'day' AS day, c ->> 'dau' AS dau, c ->> 'mau' AS mau, c ->> 'dau_mau' AS dau_mau,
       c -> 'economy_alerts' AS economy_alerts, jsonb_array_length(c -> 'health_problems') > 0 AS has_problems
FROM guildstats.command_community(77, as_of => '2026-03-10 18:00+00') c;

-- /top messages after build_rollups() reads member_messages_daily and _monthly, adding from the
-- raw table the rows the build has not processed and as_of's own day: the same counts as the
-- raw messages (periods started by hand: UTC, the season from 2026-01-15), late rows included.
SELECT day, user_id, messages FROM guildstats.member_messages_daily WHERE guild_id = 77 ORDER BY 1, 2;
SELECT month, user_id, messages FROM guildstats.member_messages_monthly WHERE guild_id = 77 ORDER BY 1, 2;
CREATE TEMP VIEW top_messages_check AS
WITH cases AS (
    SELECT p, a FROM unnest(ARRAY['week', 'month', 'season', 'all']) p,
                     unnest(ARRAY['2026-02-27 09:00+00', '2026-03-01 11:00+00', '2026-03-02 09:00+00', '2026-03-10 11:30+00',
                                  '2026-03-11 12:00+00', '2026-03-31 23:59+00', '2026-04-02 00:00+00']::timestamptz[]) a),
got AS (
    SELECT c.p, c.a, (r ->> 'user_id')::bigint AS user_id, (r ->> 'value')::bigint AS n
    FROM cases c, jsonb_array_elements(guildstats.command_top(77, 'messages', c.p, as_of => c.a, max_rows => 100) -> 'rows') r),
want AS (
    SELECT c.p, c.a, m.user_id, count(*) AS n
    FROM cases c JOIN guildstats.raw_messages m
      ON m.guild_id = 77 AND NOT m.is_bot AND m.sent_at < c.a
     AND m.sent_at >= CASE c.p WHEN 'week' THEN date_trunc('week', c.a AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                               WHEN 'month' THEN date_trunc('month', c.a AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                               WHEN 'season' THEN timestamptz '2026-01-15 00:00+00' ELSE '-infinity' END
    GROUP BY 1, 2, 3)
SELECT count(*) AS counts, count(*) FILTER (WHERE g.n IS DISTINCT FROM w.n) AS different
FROM got g FULL JOIN want w USING (p, a, user_id);
SELECT * FROM top_messages_check;
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at, is_bot)
VALUES (77, 10, 3, 9, '2026-03-02 08:00+00', false), (77, 10, 3, 10, '2026-02-27 08:00+00', false),
       (77, 10, 1, 11, '2026-03-10 09:00+00', false);
SELECT * FROM top_messages_check;
SELECT status FROM guildstats.build_rollups();
SELECT * FROM top_messages_check;
SELECT month, user_id, messages FROM guildstats.member_messages_monthly WHERE guild_id = 77 ORDER BY 1, 2;

-- /community runs without JIT: compiling health()'s plan cost far more than running it.
SELECT proconfig FROM pg_proc WHERE oid = 'guildstats.command_community(bigint, timestamptz)'::regprocedure;

-- Admins: listed per guild.
INSERT INTO guildstats.command_admins (guild_id, user_id) VALUES (77, 7);
SELECT guildstats.command_is_admin(77, 7) AS admin, guildstats.command_is_admin(78, 7) AS other_guild,
       guildstats.command_is_admin(77, 1) AS member;

-- Every command function says what it is.
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'guildstats' AND (p.proname LIKE 'command\_%' OR p.proname LIKE '\_command\_%')
  AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT prosecdef, proconfig FROM pg_proc WHERE oid = 'guildstats.command_link(bigint, bigint, text, bigint)'::regprocedure;

-- /top voice_hours reads build_rollups()'s member_voice_daily for the whole days it has seen
-- and the sessions for the rest: the same hours as summing the sessions (intersected with the
-- period another way here), before and after sessions the rollup has not seen yet, with a
-- session over midnight at a month's end and one still open.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (79, 1, 100, '2026-02-28 23:00+00'), (79, 1, NULL, '2026-03-01 01:00+00'),
    (79, 1, 100, '2026-03-09 20:00+00'), (79, 1, NULL, '2026-03-09 22:00+00'),
    (79, 2, 100, '2026-03-09 21:00+00'), (79, 2, NULL, '2026-03-09 23:30+00'),
    (79, 2, 100, '2026-03-10 10:00+00'), (79, 2, NULL, '2026-03-10 11:00+00'),
    (79, 2, 100, '2026-03-11 08:00+00');
SELECT bool_and(status LIKE 'ok%') AS built FROM guildstats.build_all();
CREATE TEMP VIEW top_voice_check AS
WITH cases AS (
    SELECT p, a FROM unnest(ARRAY['week', 'month', 'season', 'all']) p,
                     unnest(ARRAY['2026-03-01 00:30+00', '2026-03-09 21:30+00', '2026-03-10 12:00+00',
                                  '2026-03-11 12:00+00', '2026-03-12 00:00+00']::timestamptz[]) a),
periods AS (
    SELECT c.p, c.a, tstzrange(CASE c.p WHEN 'week' THEN date_trunc('week', c.a AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                                        WHEN 'month' THEN date_trunc('month', c.a AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                                        WHEN 'season' THEN (SELECT s.season_start FROM guildstats.command_settings_for(79) s)::timestamp AT TIME ZONE 'UTC'
                                        ELSE '-infinity' END, c.a) AS span
    FROM cases c),
got AS (
    SELECT c.p, c.a, (r ->> 'user_id')::bigint AS user_id, (r ->> 'value')::numeric AS hours
    FROM cases c, jsonb_array_elements(guildstats.command_top(79, 'voice_hours', c.p, as_of => c.a, max_rows => 100) -> 'rows') r),
want AS (
    SELECT q.p, q.a, q.user_id, round((sum(extract(epoch FROM upper(q.part) - lower(q.part))) / 3600)::numeric, 1) AS hours
    FROM (SELECT pe.p, pe.a, v.user_id, tstzrange(v.started_at, v.ended_at) * pe.span AS part
          FROM periods pe JOIN guildstats.voice_sessions v ON v.guild_id = 79 AND NOT v.is_afk) q
    WHERE NOT isempty(q.part)
    GROUP BY 1, 2, 3)
SELECT count(*) AS hours, count(*) FILTER (WHERE g.hours IS DISTINCT FROM w.hours) AS different
FROM got g FULL JOIN want w USING (p, a, user_id);
SELECT * FROM top_voice_check;
-- The rollup is what is read for the days it has: a day altered there shows, then put back.
UPDATE guildstats.member_voice_daily SET active_seconds = active_seconds + 36000 WHERE guild_id = 79 AND day = '2026-03-09' AND user_id = 1;
SELECT r ->> 'user_id' AS user_id, r ->> 'value' AS hours
FROM jsonb_array_elements(guildstats.command_top(79, 'voice_hours', 'week', as_of => '2026-03-10 12:00+00') -> 'rows') r;
UPDATE guildstats.member_voice_daily SET active_seconds = active_seconds - 36000 WHERE guild_id = 79 AND day = '2026-03-09' AND user_id = 1;
-- Late events before the rollup's days: sessions rewritten, the rollup not yet, then rebuilt.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (79, 3, 100, '2026-03-02 18:00+00'), (79, 3, NULL, '2026-03-02 19:30+00');
SELECT status LIKE 'ok%' AS built FROM guildstats.build_voice_sessions();
SELECT count(*) AS pending FROM guildstats.voice_session_changes WHERE consumer = 'build_rollups' AND guild_id = 79;
SELECT * FROM top_voice_check;
SELECT status LIKE 'ok%' AS built FROM guildstats.build_rollups();
SELECT * FROM top_voice_check;
DROP VIEW top_voice_check;
DELETE FROM guildstats.raw_voice_events WHERE guild_id = 79; DELETE FROM guildstats.member_voice_daily WHERE guild_id = 79;
DELETE FROM guildstats.voice_session_changes WHERE guild_id = 79;

DELETE FROM guildstats.voice_sessions; DELETE FROM guildstats.members;
DELETE FROM guildstats.voice_copresence_daily; DELETE FROM guildstats.voice_copresence_guilds; DELETE FROM guildstats.voice_build_guilds; DELETE FROM guildstats.raw_messages;
DELETE FROM guildstats.member_messages_daily; DELETE FROM guildstats.member_messages_monthly;
DELETE FROM guildstats.command_settings; DELETE FROM guildstats.command_admins;
