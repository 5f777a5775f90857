-- What the demo prints. Each query is one question a community admin asks.
\pset footer off

\echo
\echo 'Raw rows loaded, per table'
SELECT c.relname AS raw_table,
       (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM guildstats.%I', c.relname), false, true, '')))[1]::text::bigint AS rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'guildstats' AND c.relkind = 'r' AND c.relname LIKE 'raw\_%'
ORDER BY c.relname;

\echo 'Settings in force per guild (built-in defaults unless overridden in guildstats.settings)'
SELECT guild_id, afk_channel_id, session_cap, event_grace, calendar_time_zone, et_session_gap
FROM guildstats.effective_settings
ORDER BY guild_id;

\echo 'Voice channel joins per weekday (guild time zone), from the raw events'
SELECT to_char(e.event_ts AT TIME ZONE s.calendar_time_zone, 'ID Dy') AS weekday,
       count(*) AS joins
FROM guildstats.raw_voice_events e
CROSS JOIN LATERAL guildstats.settings_for(e.guild_id) s
WHERE e.channel_id IS NOT NULL
GROUP BY 1
ORDER BY 1;

\echo 'Most active writers (message count; the text itself is never stored)'
SELECT user_id, count(*) AS messages, sum(char_count) AS characters
FROM guildstats.raw_messages
GROUP BY user_id
ORDER BY messages DESC, user_id
LIMIT 5;

\echo 'Game-server polls: answered share per server'
SELECT server, count(*) AS polls, round(100.0 * avg(ok::int), 1) AS answered_pct
FROM guildstats.raw_server_polls
GROUP BY server
ORDER BY server;

\echo 'ET:Legacy import (new files import on insert; this call finds what is left)'
SELECT files_read, rounds_imported, files_failed, orphan_round2, sessions, status
FROM guildstats.import_et_rounds();

\echo 'ET:Legacy: the last gaming session'
SELECT started_at, ended_at, rounds, array_to_string(maps, ', ') AS maps, players
FROM guildstats.et_sessions WHERE et_session_id = guildstats.et_last_session_id();
SELECT name, rounds, kills, deaths, round(kd::numeric, 2) AS kd, round(dpm) AS dpm,
       gibs, revives, round(mvp_score::numeric, 1) AS mvp_score,
       CASE WHEN is_mvp THEN 'MVP' ELSE '' END AS mvp
FROM guildstats.et_session_summary();
SELECT map, outcome, array_to_string(winners, ', ') AS winners
FROM guildstats.et_session_maps();

\echo 'ET:Legacy all-time top 10 by kills'
SELECT rank, name, rounds, value::bigint AS kills FROM guildstats.et_leaderboard('kills');

\echo 'ET:Legacy all-time top 10 by DPM (damage per minute played)'
SELECT rank, name, rounds, round(value::numeric, 1) AS dpm FROM guildstats.et_leaderboard('dpm');

\echo 'ET:Legacy rounds per map (orphan round 2s and cancelled restarts are left out of statistics)'
SELECT map, count(*) AS rounds, count(*) FILTER (WHERE is_orphan) AS orphan_round2,
       min(saved_at)::date AS first_day, max(saved_at)::date AS last_day
FROM guildstats.et_rounds
GROUP BY map
ORDER BY rounds DESC, map;

\echo 'ET:Legacy servers, colour codes stripped'
SELECT DISTINCT server_name_raw, server_name, guildstats.et_clean_name(server_name_raw) = server_name AS same_as_et_clean_name
FROM guildstats.et_rounds
ORDER BY 1;
