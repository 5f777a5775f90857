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

\echo 'Retention heatmap: weekly cohorts by first activity, % active in exactly week N after (guild time zone)'
SELECT r.cohort_start, r.cohort_size AS users,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 0) AS w0,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 1) AS w1,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 2) AS w2,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 3) AS w3,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 4) AS w4,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 6) AS w6,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 8) AS w8,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 12) AS w12,
       max(round(100 * r.rate)) FILTER (WHERE r.period_offset = 16) AS w16
FROM (SELECT DISTINCT guild_id FROM guildstats.raw_guilds) g
CROSS JOIN LATERAL guildstats.retention(g.guild_id, 'week') r
GROUP BY r.cohort_start, r.cohort_size
ORDER BY r.cohort_start;

\echo 'D1 / D7 / D30 / D90 retention (share of users active exactly N days after their first day)'
SELECT d.day_offset AS n, d.eligible_users, d.retained, round(100 * d.rate::numeric, 1) AS pct,
       round(100 * d.rate_or_later::numeric, 1) AS pct_n_or_later
FROM (SELECT DISTINCT guild_id FROM guildstats.raw_guilds) g
CROSS JOIN LATERAL guildstats.retention_dn(g.guild_id) d
ORDER BY d.day_offset;

\echo 'Points economy, last 7 days of data: circulation, flows, distribution of balances, alerts'
SELECT e.day, e.circulation, e.earned, e.spent, e.net, e.users_with_points AS holders,
       e.median_balance AS median, round(100 * e.top1_share::numeric, 1) AS top1_pct,
       round(e.gini::numeric, 3) AS gini, round(100 * e.inflation::numeric, 2) AS inflation_pct, e.alerts
FROM (SELECT DISTINCT guild_id FROM guildstats.raw_guilds) g
CROSS JOIN LATERAL (SELECT * FROM guildstats.economy_health(g.guild_id) ORDER BY day DESC LIMIT 7) e
ORDER BY e.day;

\echo 'Daily, weekly and monthly active users, last 7 days of data (DAU/MAU = stickiness)'
SELECT a.day, a.dau, a.wau, a.mau, round(100 * a.dau_mau::numeric, 1) AS dau_mau_pct,
       a.new_users, a.returning_users, a.churned_users
FROM (SELECT DISTINCT guild_id FROM guildstats.raw_guilds) g
CROSS JOIN LATERAL (SELECT * FROM guildstats.activity_daily(g.guild_id) ORDER BY day DESC LIMIT 7) a
ORDER BY a.day;

\echo 'Engagement segments on the last day of data'
SELECT s.segment, s.users, s.description
FROM (SELECT DISTINCT guild_id FROM guildstats.raw_guilds) g
CROSS JOIN LATERAL guildstats.engagement_segments(g.guild_id) s;

\echo 'Health checks (guildstats.health(); the demo data is historical, so freshness and heartbeats look old)'
SELECT check_name, severity, status, detail FROM guildstats.health();
