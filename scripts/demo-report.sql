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

\echo 'ET:Legacy round files on record, per map'
SELECT substring(file_name FROM '^\d{4}-\d\d-\d\d-\d{6}-(.+)-round-\d+\.txt$') AS map,
       count(*) AS files,
       min(substring(file_name FROM '^(\d{4}-\d\d-\d\d)')) AS first_day,
       max(substring(file_name FROM '^(\d{4}-\d\d-\d\d)')) AS last_day
FROM guildstats.raw_et_stats_files
GROUP BY 1
ORDER BY files DESC, map;

\echo 'ET:Legacy server names, colour codes stripped by guildstats.et_clean_name()'
SELECT DISTINCT split_part(convert_from(content, 'SQL_ASCII'), E'\\', 1) AS raw_server_name,
       guildstats.et_clean_name(split_part(convert_from(content, 'SQL_ASCII'), E'\\', 1)) AS server_name
FROM guildstats.raw_et_stats_files
ORDER BY 1;
