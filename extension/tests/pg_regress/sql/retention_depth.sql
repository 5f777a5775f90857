-- Depth-weighted retention (min_activity, activity) and the retention of voice hours, on
-- hand-worked cases (members just below and at the threshold, empty cohorts, NULLs), against
-- plain SQL written another way on random data, and in forced parallel plans.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SET extra_float_digits = 0;

-- Guild 21, weeks from Monday 2026-03-02 (UTC calendar). Voice minutes per week:
--   201: 40 | 30 | 29.99     (at the threshold in week 1, just below it in week 2)
--   202: 10 | 60 |           (below in its cohort week, above the next)
--   203:    |  5 |           (cohort of week 1, never above)
-- Threshold 30: cohort 03-02 (2 members) retained 1 and 2 at offsets 0 and 1; cohort 03-09
-- (1 member) 0 at offset 0. Week 2, where nobody reached 30 minutes, is past the table's end.
INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (21, 'UTC');
INSERT INTO guildstats.member_voice_daily (guild_id, user_id, day, active_seconds, afk_seconds) VALUES
    (21, 201, '2026-03-02', 1800, 0), (21, 201, '2026-03-08', 600, 500),
    (21, 201, '2026-03-10', 1800, 0),
    (21, 201, '2026-03-16', 1799.4, 0),
    (21, 202, '2026-03-04', 600, 0), (21, 202, '2026-03-11', 3600, 0),
    (21, 203, '2026-03-12', 300, 0),
    (21, 204, '2026-03-03', 0, 900);  -- AFK only: not a member of any cohort
SELECT * FROM guildstats.retention(21, 'week', min_activity => 30, activity => 'voice_minutes');
-- Without a threshold every voice day counts; with 0 the same.
SELECT * FROM guildstats.retention(21, 'week', activity => 'voice_minutes')
EXCEPT SELECT * FROM guildstats.retention(21, 'week', min_activity => 0, activity => 'voice_minutes');
SELECT period_offset, retained FROM guildstats.retention(21, 'week', activity => 'voice_minutes') ORDER BY cohort_start, period_offset;
-- Just above 40 minutes nobody is retained in week 0; 29.99 keeps 201 in week 2.
SELECT period_offset, retained FROM guildstats.retention(21, 'week', min_activity => 40.01, activity => 'voice_minutes') WHERE cohort_start = '2026-03-02';
SELECT period_offset, retained FROM guildstats.retention(21, 'week', min_activity => 29.99, activity => 'voice_minutes') WHERE cohort_start = '2026-03-02';
-- D-n on days: 201 and 202's days.
SELECT * FROM guildstats.retention_dn(21, '{1,2,7,14}', min_activity => 30, activity => 'voice_minutes');

-- Events: guild 22, messages per week. 301: 2 | 1; 302: 1 | 2; 303 joined, never wrote.
INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (22, 'UTC');
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts) VALUES
    (22, 301, 'join', '2026-03-02 08:00+00'), (22, 302, 'join', '2026-03-02 08:00+00'),
    (22, 303, 'join', '2026-03-03 08:00+00');
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
    (22, 1, 301, 1, '2026-03-02 10:00+00'), (22, 1, 301, 2, '2026-03-08 23:00+00'),
    (22, 1, 301, 3, '2026-03-09 10:00+00'),
    (22, 1, 302, 4, '2026-03-03 10:00+00'),
    (22, 1, 302, 5, '2026-03-10 10:00+00'), (22, 1, 302, 6, '2026-03-15 23:59+00');
-- Cohort 03-02 by first activity: 2 members; at 2 messages: week 0 301, week 1 302.
SELECT * FROM guildstats.retention(22, 'week', min_activity => 2);
-- By join: 303 is in the cohort with no activity at all (an empty member of it).
SELECT * FROM guildstats.retention(22, 'week', 'join', min_activity => 2);
-- A threshold of 1 event is plain retention, on both cohort definitions.
SELECT count(*) AS differences FROM (
    (SELECT * FROM guildstats.retention(22, 'day') EXCEPT ALL SELECT * FROM guildstats.retention(22, 'day', min_activity => 1))
    UNION ALL
    (SELECT * FROM guildstats.retention(22, 'day', min_activity => 1) EXCEPT ALL SELECT * FROM guildstats.retention(22, 'day'))
    UNION ALL
    (SELECT * FROM guildstats.retention(22, 'week', 'join') EXCEPT ALL SELECT * FROM guildstats.retention(22, 'week', 'join', min_activity => 1))
    UNION ALL
    (SELECT * FROM guildstats.retention(22, 'week', 'join', min_activity => 1) EXCEPT ALL SELECT * FROM guildstats.retention(22, 'week', 'join'))) d;
-- Old calls are unchanged: positional arguments, and no activity at all (empty cohorts).
SELECT * FROM guildstats.retention_dn(22, '{1,7}');
SELECT * FROM guildstats.retention_dn(22, '{1,7}', '{message}');
SELECT count(*) AS no_rows FROM guildstats.retention(99, 'week', min_activity => 30, activity => 'voice_minutes');
SELECT * FROM guildstats.retention_dn(99, '{1}', min_activity => 2);
-- NULL min_activity is "any activity"; bad arguments are errors naming them.
SELECT count(*) FROM guildstats.retention(22, 'week', min_activity => NULL);
SELECT * FROM guildstats.retention(22, 'week', min_activity => -1);
SELECT * FROM guildstats.retention(22, 'week', min_activity => 'NaN');
SELECT * FROM guildstats.retention(22, 'week', activity => 'hours');
SELECT * FROM guildstats.retention(22, 'week', activity => NULL);
SELECT * FROM guildstats.retention(22, 'week', kinds => '{voice}', activity => 'voice_minutes');
SELECT * FROM guildstats.retention(22, 'fortnight', min_activity => 2);

-- Rounds: GUID AAAA0001 is member 401 of guild 23; two rounds on 03-02, one on 03-09, and a
-- bot row that does not count. At 2 rounds: week 0 yes, week 1 no.
INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (23, 'UTC');
INSERT INTO guildstats.et_guid_links (guid, guild_id, user_id) VALUES ('AAAA0001', 23, 401);
INSERT INTO guildstats.et_rounds (round_id, raw_ingest_id, sha256, file_name, source, saved_at, map, round_number,
                                  server_name, server_name_raw, config, player_count)
SELECT 9000 + n, 9000 + n, decode(md5(n::text), 'hex'), 'r' || n, 'test', t, 'supply', 1, 's', 's', 'c', 1
FROM (VALUES (1, '2026-03-02 20:00'::timestamp), (2, '2026-03-02 20:30'), (3, '2026-03-09 20:00'),
             (4, '2026-03-10 20:00')) v(n, t);
INSERT INTO guildstats.et_player_rounds (round_id, guid, name, clean_name, is_bot, team, values_basis, kills,
                                         deaths, hits, shots, headshots, file_stats)
SELECT 9000 + n, g, 'p', 'p', g <> 'AAAA0001', 1, 'file', 0, 0, 0, 0, 0, '{}'
FROM (VALUES (1, 'AAAA0001'), (2, 'AAAA0001'), (3, 'AAAA0001'), (4, 'AAAA0001')) v(n, g)
WHERE n <> 4;
SELECT * FROM guildstats.retention(23, 'week', min_activity => 2, activity => 'rounds');

-- Random voice time of 400 members over 70 days against plain SQL: per member and week the
-- minutes; the cohort is the first week; retained where the minutes reach 30.
SELECT setseed(0.3);
INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (24, 'UTC');
INSERT INTO guildstats.member_voice_daily (guild_id, user_id, day, active_seconds, afk_seconds)
SELECT 24, u, '2026-01-05'::date + d, floor(random() * 1200), 0
FROM generate_series(1, 400) u, generate_series(0, 69) d
WHERE random() < 0.03 + 0.15 * (u % 3) + 0 * d;  -- "+ 0 * d": drawn per row, not per member
CREATE TEMP TABLE expected AS
WITH weeks AS (
    SELECT user_id, (day - date '2026-01-05') / 7 AS w, sum(active_seconds) / 60 AS minutes
    FROM guildstats.member_voice_daily WHERE guild_id = 24 AND active_seconds > 0 GROUP BY 1, 2),
firsts AS (SELECT user_id, min(w) AS c FROM weeks GROUP BY 1),
-- The table reaches the last week where somebody reached 30 minutes, or a cohort starts.
last AS (SELECT greatest((SELECT max(w) FROM weeks WHERE minutes >= 30), (SELECT max(c) FROM firsts)) AS w)
SELECT date '2026-01-05' + 7 * f.c AS cohort_start,
       count(*) OVER (PARTITION BY f.c, o.o) AS cohort_size, o.o AS period_offset,
       f.user_id,
       EXISTS (SELECT 1 FROM weeks x WHERE x.user_id = f.user_id AND x.w = f.c + o.o AND x.minutes >= 30) AS kept,
       EXISTS (SELECT 1 FROM weeks x WHERE x.user_id = f.user_id AND x.w >= f.c + o.o AND x.minutes >= 30) AS kept_later
FROM firsts f, last l, generate_series(0, l.w - f.c) o(o);
SELECT count(*) AS mismatches FROM (
    (SELECT cohort_start, max(cohort_size), period_offset, count(*) FILTER (WHERE kept), count(*) FILTER (WHERE kept_later)
     FROM expected GROUP BY cohort_start, period_offset
     EXCEPT
     SELECT cohort_start, cohort_size, period_offset, retained, retained_or_later
     FROM guildstats.retention(24, 'week', min_activity => 30, activity => 'voice_minutes'))
    UNION ALL
    (SELECT cohort_start, cohort_size, period_offset, retained, retained_or_later
     FROM guildstats.retention(24, 'week', min_activity => 30, activity => 'voice_minutes')
     EXCEPT
     SELECT cohort_start, max(cohort_size), period_offset, count(*) FILTER (WHERE kept), count(*) FILTER (WHERE kept_later)
     FROM expected GROUP BY cohort_start, period_offset)) d;
SELECT count(*) AS cells, sum(retained) AS retained, sum(cohort_size) FILTER (WHERE period_offset = 0) AS members
FROM guildstats.retention(24, 'week', min_activity => 30, activity => 'voice_minutes');

-- Voice hours (guild 21): cohort 03-02 spent 40 + 10 minutes in week 0, 30 + 60 in week 1 and
-- 29.99 in week 2: shares 1, 1.8, 0.5998. Cohort 03-09: 5 minutes, then nothing: 1, 0.
SELECT cohort_start, cohort_size, period_offset, active_members, round(voice_hours::numeric, 5) AS voice_hours,
       round(hours_share::numeric, 5) AS hours_share
FROM guildstats.voice_hours_retention(21);
SELECT period_offset, active_members, round(voice_hours::numeric, 5) AS voice_hours
FROM guildstats.voice_hours_retention(21, 'day', 3) WHERE cohort_start = '2026-03-02';
SELECT count(*) AS no_rows FROM guildstats.voice_hours_retention(99);
SELECT * FROM guildstats.voice_hours_retention(21, 'year');
SELECT * FROM guildstats.voice_hours_retention(21, 'week', -1);
-- Random data against plain SQL: the hours of each cohort and week, over its week-0 hours
-- (summed in another order, so compared to 1e-9).
SELECT count(*) AS mismatches, count(*) FILTER (WHERE e.o IS NULL) AS missing, count(*) FILTER (WHERE f.period_offset IS NULL) AS extra
FROM (
    WITH weeks AS (
        SELECT user_id, (day - date '2026-01-05') / 7 AS w, sum(active_seconds) / 3600 AS hours
        FROM guildstats.member_voice_daily WHERE guild_id = 24 AND active_seconds > 0 GROUP BY 1, 2),
    firsts AS (SELECT user_id, min(w) AS c FROM weeks GROUP BY 1),
    cell AS (SELECT f.c, x.w - f.c AS o, count(*) AS members, sum(x.hours) AS hours
             FROM weeks x JOIN firsts f USING (user_id) GROUP BY 1, 2)
    SELECT date '2026-01-05' + 7 * a.c AS cohort_start, a.o, a.members, a.hours, a.hours / b.hours AS share
    FROM cell a JOIN cell b ON b.c = a.c AND b.o = 0) e
FULL JOIN (SELECT * FROM guildstats.voice_hours_retention(24) WHERE active_members > 0) f
       ON f.cohort_start = e.cohort_start AND f.period_offset = e.o
WHERE e.o IS NULL OR f.period_offset IS NULL OR f.active_members <> e.members
   OR abs(f.voice_hours - e.hours) > 1e-9 OR abs(f.hours_share - e.share) > 1e-9;
SELECT count(*) AS cells, count(*) FILTER (WHERE active_members = 0) AS empty_cells
FROM guildstats.voice_hours_retention(24);

-- Forced parallel plans give the same tables.
CREATE TEMP TABLE serial_depth AS SELECT * FROM guildstats.retention(24, 'day', min_activity => 15, activity => 'voice_minutes');
CREATE TEMP TABLE serial_hours AS SELECT * FROM guildstats.voice_hours_retention(24, 'day', 80);
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET force_parallel_mode = on;
SELECT (SELECT count(*) FROM (SELECT * FROM serial_depth EXCEPT ALL
                               SELECT * FROM guildstats.retention(24, 'day', min_activity => 15, activity => 'voice_minutes')) d)
     + (SELECT count(*) FROM (SELECT * FROM guildstats.retention(24, 'day', min_activity => 15, activity => 'voice_minutes')
                              EXCEPT ALL SELECT * FROM serial_depth) d) AS depth_mismatches,
       (SELECT count(*) FROM (SELECT * FROM serial_hours EXCEPT ALL
                              SELECT * FROM guildstats.voice_hours_retention(24, 'day', 80)) d)
     + (SELECT count(*) FROM (SELECT * FROM guildstats.voice_hours_retention(24, 'day', 80)
                              EXCEPT ALL SELECT * FROM serial_hours) d) AS hours_mismatches,
       (SELECT count(*) FROM serial_depth) AS depth_cells, (SELECT count(*) FROM serial_hours) AS hours_cells;
RESET force_parallel_mode; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;

-- Leave nothing behind for the suites that follow: they build everything and list settings.
DELETE FROM guildstats.et_player_rounds WHERE round_id BETWEEN 9001 AND 9004;
DELETE FROM guildstats.et_rounds WHERE round_id BETWEEN 9001 AND 9004;
DELETE FROM guildstats.et_guid_links WHERE guild_id = 23;
DELETE FROM guildstats.member_voice_daily WHERE guild_id IN (21, 24);
DELETE FROM guildstats.raw_messages WHERE guild_id = 22;
DELETE FROM guildstats.raw_member_events WHERE guild_id = 22;
DELETE FROM guildstats.settings WHERE guild_id BETWEEN 21 AND 24;
