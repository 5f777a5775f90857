-- Retention: the aggregate on hand-made triples, periods in the guild's time zone, cohorts by
-- join date, D1/D7, rollup, parallel plans, and a plain-SQL cohort query on random data.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SET extra_float_digits = 0;

-- Three users: 1 active on days 0, 1, 3; 2 on days 0 and 2; 3 starts on day 1.
CREATE TABLE ret_triples (user_id bigint, cohort_at timestamp, activity_at timestamp);
INSERT INTO ret_triples VALUES
    (1, NULL, '2026-03-02 10:00'), (1, NULL, '2026-03-03 10:00'), (1, NULL, '2026-03-05 10:00'),
    (1, NULL, '2026-03-03 11:00'),
    (2, NULL, '2026-03-02 23:00'), (2, NULL, '2026-03-04 01:00'),
    (3, NULL, '2026-03-03 09:00'), (NULL, NULL, '2026-03-09 09:00');
SELECT r.* FROM (SELECT guildstats.retention_agg(user_id, cohort_at, activity_at, 'day') s FROM ret_triples) a,
     guildstats.retention_rows(a.s) r ORDER BY 1, 3;
-- Weeks start on Monday (2026-03-02); months.
SELECT r.cohort_start, r.cohort_size, r.period_offset, r.retained
FROM (SELECT guildstats.rollup(a.s) AS merged
      FROM (SELECT guildstats.retention_agg(user_id, NULL, activity_at, 'week') s FROM ret_triples
            UNION ALL SELECT guildstats.retention_agg(4, NULL, '2026-03-01 12:00'::timestamp, 'week')) a) m,
     guildstats.retention_rows(m.merged) r ORDER BY 1, 3;
SELECT r.cohort_start, r.cohort_size, r.period_offset, r.retained
FROM (SELECT guildstats.retention_agg(u, NULL, t, 'month') s
      FROM (VALUES (1, '2026-01-31 23:59'::timestamp), (1, '2026-03-01 00:00'), (2, '2026-02-01 00:00')) v(u, t)) a,
     guildstats.retention_rows(a.s) r ORDER BY 1, 3;
-- Explicit cohorts (join dates): a user who joined and never came back still counts.
SELECT r.cohort_start, r.cohort_size, r.period_offset, r.retained, r.retained_or_later
FROM (SELECT guildstats.retention_agg(u, c, t, 'day') s
      FROM (VALUES (1, '2026-03-01 10:00'::timestamp, NULL::timestamp), (1, NULL, '2026-03-03 10:00'),
                   (2, '2026-03-01 12:00', NULL)) v(u, c, t)) a,
     guildstats.retention_rows(a.s) r ORDER BY 1, 3;
-- Errors: unknown or mixed periods, NULL period; empty input gives no rows.
SELECT guildstats.retention_agg(user_id, NULL, activity_at, 'year') FROM ret_triples;
SELECT guildstats.rollup(s) FROM (SELECT guildstats.retention_agg(1, NULL, now()::timestamp, 'day') s
                                  UNION ALL SELECT guildstats.retention_agg(1, NULL, now()::timestamp, 'week')) x;
SELECT count(*) AS no_rows FROM guildstats.retention_rows(
    (SELECT guildstats.retention_agg(user_id, NULL, activity_at, 'day') FROM ret_triples WHERE false));
-- A state survives text and a table.
SELECT s::text::guildstats.retention_state::text = s::text AS text_round_trip
FROM (SELECT guildstats.retention_agg(user_id, NULL, activity_at, 'day') s FROM ret_triples) a;
SELECT '\x02'::guildstats.retention_state;

-- From the raw tables, in the guild's time zone: a message at 23:30 UTC on Sunday is Monday in Berlin.
INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (5, 'Europe/Berlin');
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts) VALUES
    (5, 100, 'join', '2026-03-01 09:00+00'), (5, 101, 'join', '2026-03-02 09:00+00'),
    (5, 102, 'join', '2026-03-02 10:00+00'), (5, 103, 'leave', '2026-03-02 10:00+00');
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
    (5, 1, 100, 501, '2026-03-08 23:30+00'), (5, 1, 101, 502, '2026-03-10 12:00+00'),
    (5, 1, 103, 503, '2026-03-16 12:00+00');
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (5, 100, 7, '2026-03-17 20:00+00'), (5, 100, NULL, '2026-03-17 22:00+00');
SELECT * FROM guildstats.retention(5, 'week');
SELECT * FROM guildstats.retention(5, 'week', 'join');
SELECT * FROM guildstats.retention(5, 'week', 'join', '{voice}');
SELECT * FROM guildstats.retention(5, 'week', 'signup');
SELECT * FROM guildstats.retention_dn(5, '{1,7,14,30}');

-- Random activity of 3000 users over 60 days against a plain-SQL cohort query.
SELECT setseed(0.7);
CREATE TABLE ret_activity AS
SELECT u AS user_id,
       timestamp '2026-01-01' + (first_day + floor(-ln(1 - random()) * 10))::int * interval '1 day'
                              + random() * interval '1 day' AS activity_at
FROM (SELECT u, floor(random() * 50)::int AS first_day, 1 + floor(random() * 8)::int AS n
      FROM generate_series(1, 3000) u) users,
     LATERAL generate_series(1, users.n) i;
ANALYZE ret_activity;
CREATE TABLE ret_ours AS
SELECT r.* FROM (SELECT guildstats.retention_agg(user_id, NULL, activity_at, 'week') s FROM ret_activity) a,
     guildstats.retention_rows(a.s) r;
WITH weeks AS (SELECT DISTINCT user_id, date_trunc('week', activity_at)::date AS wk FROM ret_activity),
cohorts AS (SELECT user_id, min(wk) AS cohort FROM weeks GROUP BY user_id),
offs AS (SELECT c.cohort, w.user_id, (w.wk - c.cohort) / 7 AS k FROM weeks w JOIN cohorts c USING (user_id)),
plain AS (
    SELECT s.cohort, s.size, g.k,
           (SELECT count(*) FROM offs o WHERE o.cohort = s.cohort AND o.k = g.k) AS retained,
           (SELECT count(DISTINCT o.user_id) FROM offs o WHERE o.cohort = s.cohort AND o.k >= g.k) AS or_later
    FROM (SELECT cohort, count(*) AS size FROM cohorts GROUP BY cohort) s,
         generate_series(0, ((SELECT max(wk) FROM weeks) - s.cohort) / 7) g(k))
SELECT count(*) AS cells,
       count(*) FILTER (WHERE o.cohort_size = p.size AND o.retained = p.retained
                          AND o.retained_or_later = p.or_later) AS equal
FROM plain p FULL JOIN ret_ours o ON o.cohort_start = p.cohort AND o.period_offset = p.k;

-- Parallel plan and the same answer without workers.
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT guildstats.retention_agg(user_id, NULL, activity_at, 'week') FROM ret_activity;
SELECT md5(guildstats.retention_agg(user_id, NULL, activity_at, 'day')::text) AS p_md5 FROM ret_activity \gset
SET max_parallel_workers_per_gather = 0;
SELECT :'p_md5' = md5(guildstats.retention_agg(user_id, NULL, activity_at, 'day')::text) AS same_state
FROM ret_activity;
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE ret_triples, ret_activity, ret_ours;
-- Leave the shared regression database as we found it.
TRUNCATE guildstats.raw_member_events, guildstats.raw_messages, guildstats.raw_voice_events;
DELETE FROM guildstats.settings WHERE guild_id = 5;
