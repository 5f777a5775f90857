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
SELECT guild_id, afk_channel_id, session_cap, event_grace, calendar_time_zone, et_session_gap,
       et_min_rounds, outage_after
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

\echo 'ET:Legacy import (build_all() imported the files above; this call finds what is left)'
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

\echo 'Voice sessions built from the raw events (build_voice_sessions)'
SELECT count(*) AS sessions, count(*) FILTER (WHERE ended_at IS NULL) AS open_now,
       count(*) FILTER (WHERE end_reason = 'outage') AS cut_by_outage,
       count(*) FILTER (WHERE is_afk) AS afk_sessions,
       round((sum(extract(epoch FROM ended_at - started_at)) FILTER (WHERE NOT is_afk) / 3600)::numeric) AS active_hours
FROM guildstats.voice_sessions;

\echo 'Top members by active voice hours over the last 30 days of data (AFK excluded)'
WITH last_day AS (SELECT guild_id, max(day) AS day FROM guildstats.member_voice_daily GROUP BY guild_id)
SELECT d.user_id, coalesce(m.display_name, '') AS display_name,
       round((sum(d.active_seconds) / 3600)::numeric, 1) AS active_hours,
       count(*) AS days_in_voice
FROM guildstats.member_voice_daily d
JOIN last_day l ON l.guild_id = d.guild_id AND d.day > l.day - 30
LEFT JOIN guildstats.members m ON m.guild_id = d.guild_id AND m.user_id = d.user_id
GROUP BY d.user_id, m.display_name
ORDER BY active_hours DESC, d.user_id
LIMIT 10;

\echo 'When the community is in voice: active voice hours per weekday and hour (guild time zone)'
\echo 'each cell is one hour from 00 to 23, darker is busier:  (none) . : - = + * # % @ (most)'
WITH hours AS (
    SELECT s.calendar_time_zone AS tz, h.hour_start,
           extract(epoch FROM least(v.ended_at, h.hour_start + interval '1 hour')
                              - greatest(v.started_at, h.hour_start)) / 3600 AS hours
    FROM guildstats.voice_sessions v
    CROSS JOIN LATERAL guildstats.settings_for(v.guild_id) s
    CROSS JOIN LATERAL generate_series(date_trunc('hour', v.started_at), v.ended_at, interval '1 hour') AS h(hour_start)
    WHERE NOT v.is_afk AND v.ended_at IS NOT NULL
), cells AS (
    SELECT extract(isodow FROM hour_start AT TIME ZONE tz)::int AS dow,
           extract(hour FROM hour_start AT TIME ZONE tz)::int AS hour,
           sum(hours) AS hours
    FROM hours WHERE hours > 0 GROUP BY 1, 2
), grid AS (
    SELECT d.dow, hr.hour, coalesce(c.hours, 0) AS hours,
           coalesce(c.hours, 0) / nullif(max(coalesce(c.hours, 0)) OVER (), 0) AS share_of_peak
    FROM generate_series(1, 7) d(dow) CROSS JOIN generate_series(0, 23) hr(hour)
    LEFT JOIN cells c ON c.dow = d.dow AND c.hour = hr.hour
)
SELECT (ARRAY['Mon','Tue','Wed','Thu','Fri','Sat','Sun'])[dow] AS weekday,
       string_agg(substr(' .:-=+*#%@', 1 + least(9, floor(10 * coalesce(share_of_peak, 0))::int), 1),
                  '' ORDER BY hour) AS "00    06    12    18    ",
       round(sum(hours)::numeric) AS hours,
       (array_agg(hour ORDER BY hours DESC, hour))[1] AS busiest_hour
FROM grid
GROUP BY dow
ORDER BY dow;

\echo 'The last event: who came, and how many were on time (within settings.event_grace of the start)'
WITH last_event AS (
    SELECT * FROM guildstats.events WHERE actual_start IS NOT NULL
    ORDER BY actual_start DESC, event_id DESC LIMIT 1
)
SELECT e.name, e.entity_type, e.actual_start, e.actual_end - e.actual_start AS duration,
       count(a.user_id) AS attendees,
       count(a.user_id) FILTER (WHERE a.joined_on_time) AS on_time,
       round(100.0 * count(a.user_id) FILTER (WHERE a.joined_on_time) / nullif(count(a.user_id), 0), 1) AS on_time_pct,
       round((avg(a.overlap_seconds) / 60)::numeric, 1) AS avg_minutes_there
FROM last_event e
LEFT JOIN guildstats.event_attendance a ON a.event_id = e.event_id
GROUP BY e.event_id, e.name, e.entity_type, e.actual_start, e.actual_end;

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
