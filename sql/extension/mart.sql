-- guildstats_mart: what BI tools (Superset, Metabase, Grafana) read. One view per question,
-- with names and column comments a community admin understands, real date / timestamptz time
-- columns in the guild's calendar time zone (settings.calendar_time_zone), and guild_id on
-- every relation so that one filter serves every chart.
--
-- The views read the builders' core tables and rollups (members, member_voice_daily,
-- member_engagement_weekly, member_monthly_status, voice_sessions, events, event_attendance),
-- never the raw rows those are built from. Raw tables are read only where no rollup exists
-- (chat, points, game-server polls, ingest lag). ET:Legacy servers and game servers belong to
-- no guild: their views repeat their rows for every guild, so the guild filter still works.

CREATE SCHEMA guildstats_mart;
COMMENT ON SCHEMA guildstats_mart IS
    'guildstats views for BI tools: one view per dashboard question, guild_id on every view, calendar days in the guild''s time zone. Read by the guildstats_reader role.';

CREATE VIEW guildstats_mart.guilds AS
SELECT k.guild_id,
       coalesce((SELECT g.name FROM @extschema@.raw_guilds g WHERE g.guild_id = k.guild_id
                 ORDER BY g.observed_at DESC, g.ingest_id DESC LIMIT 1), 'guild ' || k.guild_id) AS guild_name,
       s.calendar_time_zone
FROM (SELECT guild_id FROM @extschema@.raw_guilds
      UNION SELECT guild_id FROM @extschema@.members) k
CROSS JOIN LATERAL @extschema@.settings_for(k.guild_id) s;
COMMENT ON VIEW guildstats_mart.guilds IS 'Every known guild with its latest name and the time zone its calendar days are counted in: the values of the guild filter.';
COMMENT ON COLUMN guildstats_mart.guilds.guild_id IS 'Discord guild (server) id.';
COMMENT ON COLUMN guildstats_mart.guilds.guild_name IS 'The guild''s latest known name.';
COMMENT ON COLUMN guildstats_mart.guilds.calendar_time_zone IS 'Time zone of the guild''s calendar days, weeks and months.';

CREATE VIEW guildstats_mart.members AS
SELECT m.guild_id, m.user_id,
       coalesce(m.display_name, 'user ' || m.user_id) AS member_name,
       m.first_seen, m.last_seen, m.joined_at, m.left_at,
       m.is_active AS is_member, m.is_bot,
       date_trunc('month', (coalesce(m.joined_at, m.first_seen) AT TIME ZONE g.calendar_time_zone))::date AS join_month
FROM @extschema@.members m
JOIN guildstats_mart.guilds g USING (guild_id);
COMMENT ON VIEW guildstats_mart.members IS 'One row per person ever seen in a guild: name, first and last activity, latest join and leave, and whether they are a member now.';
COMMENT ON COLUMN guildstats_mart.members.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.members.user_id IS 'Discord user id.';
COMMENT ON COLUMN guildstats_mart.members.member_name IS 'Latest display name, or "user <id>" when none was reported.';
COMMENT ON COLUMN guildstats_mart.members.first_seen IS 'First activity of any kind (voice, message, membership change, points).';
COMMENT ON COLUMN guildstats_mart.members.last_seen IS 'Latest activity of any kind.';
COMMENT ON COLUMN guildstats_mart.members.joined_at IS 'Latest join; empty when the member joined before tracking began.';
COMMENT ON COLUMN guildstats_mart.members.left_at IS 'Leave or ban after the latest join; empty while a member.';
COMMENT ON COLUMN guildstats_mart.members.is_member IS 'A member now (no leave or ban after the latest join).';
COMMENT ON COLUMN guildstats_mart.members.is_bot IS 'A bot account.';
COMMENT ON COLUMN guildstats_mart.members.join_month IS 'First day of the month of the join (else of the first activity), in the guild''s time zone: the join cohort.';

CREATE VIEW guildstats_mart.member_voice_daily AS
SELECT d.guild_id, d.day, d.user_id, coalesce(m.display_name, 'user ' || d.user_id) AS member_name,
       d.active_seconds / 3600.0 AS voice_hours, d.afk_seconds / 3600.0 AS afk_hours,
       date_trunc('week', d.day)::date AS week
FROM @extschema@.member_voice_daily d
LEFT JOIN @extschema@.members m ON m.guild_id = d.guild_id AND m.user_id = d.user_id;
COMMENT ON VIEW guildstats_mart.member_voice_daily IS 'Voice time per member and calendar day (from the member_voice_daily rollup): sum voice_hours by day or week for the guild''s voice time, count user_id for voice users.';
COMMENT ON COLUMN guildstats_mart.member_voice_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.member_voice_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.member_voice_daily.user_id IS 'Discord user id.';
COMMENT ON COLUMN guildstats_mart.member_voice_daily.member_name IS 'The member''s latest display name.';
COMMENT ON COLUMN guildstats_mart.member_voice_daily.voice_hours IS 'Hours in voice outside the AFK channel that day.';
COMMENT ON COLUMN guildstats_mart.member_voice_daily.afk_hours IS 'Hours in the AFK channel that day (not counted as active).';
COMMENT ON COLUMN guildstats_mart.member_voice_daily.week IS 'The Monday of the day''s week.';

CREATE VIEW guildstats_mart.voice_hour_weekday AS
SELECT v.guild_id, v.hour_start, (h.local_hour)::date AS day,
       extract(isodow FROM h.local_hour)::integer AS weekday,
       to_char(h.local_hour, 'ID Dy') AS weekday_name,
       extract(hour FROM h.local_hour)::integer AS hour_of_day,
       v.voice_hours, v.voice_users
FROM @extschema@.guild_voice_hourly v
JOIN guildstats_mart.guilds g ON g.guild_id = v.guild_id
CROSS JOIN LATERAL (SELECT v.hour_start AT TIME ZONE g.calendar_time_zone AS local_hour) h;
COMMENT ON VIEW guildstats_mart.voice_hour_weekday IS 'Voice time per hour (from the guild_voice_hourly rollup of voice sessions, AFK excluded), with the hour of day and weekday in the guild''s time zone: sum voice_hours by weekday_name and hour_of_day for the weekly heatmap.';
COMMENT ON COLUMN guildstats_mart.voice_hour_weekday.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.voice_hour_weekday.hour_start IS 'Start of the hour.';
COMMENT ON COLUMN guildstats_mart.voice_hour_weekday.day IS 'Calendar day of the hour in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.voice_hour_weekday.weekday IS 'ISO weekday of the hour: 1 Monday to 7 Sunday.';
COMMENT ON COLUMN guildstats_mart.voice_hour_weekday.weekday_name IS 'Weekday as "1 Mon" to "7 Sun" (sorts in week order).';
COMMENT ON COLUMN guildstats_mart.voice_hour_weekday.hour_of_day IS 'Hour of the day, 0 to 23, in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.voice_hour_weekday.voice_hours IS 'Hours spent in voice within that hour, summed over members.';
COMMENT ON COLUMN guildstats_mart.voice_hour_weekday.voice_users IS 'Members in voice at some point of that hour.';

CREATE VIEW guildstats_mart.events AS
SELECT e.guild_id, e.event_id, e.name AS event_name, e.entity_type, e.status, e.is_cancelled,
       e.scheduled_start, e.actual_start, e.actual_end,
       coalesce(e.actual_start, e.scheduled_start, e.first_observed_at) AS start_time,
       (coalesce(e.actual_start, e.scheduled_start, e.first_observed_at) AT TIME ZONE g.calendar_time_zone)::date AS day,
       coalesce(a.attendees, 0) AS attendees,
       coalesce(a.on_time, 0) AS on_time_attendees,
       coalesce(a.attendees - a.on_time, 0) AS late_attendees,
       a.avg_minutes AS avg_minutes_per_attendee,
       coalesce(a.total_hours, 0) AS attendee_hours
FROM @extschema@.events e
JOIN guildstats_mart.guilds g ON g.guild_id = e.guild_id
LEFT JOIN (SELECT x.event_id, count(*) AS attendees, count(*) FILTER (WHERE x.joined_on_time) AS on_time,
                  avg(x.overlap_seconds) / 60.0 AS avg_minutes, sum(x.overlap_seconds) / 3600.0 AS total_hours
             FROM @extschema@.event_attendance x GROUP BY x.event_id) a ON a.event_id = e.event_id;
COMMENT ON VIEW guildstats_mart.events IS 'One row per Discord scheduled event with its attendance: how many came, on time or late, and how long they stayed.';
COMMENT ON COLUMN guildstats_mart.events.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.events.event_id IS 'Discord scheduled-event id.';
COMMENT ON COLUMN guildstats_mart.events.event_name IS 'Event title.';
COMMENT ON COLUMN guildstats_mart.events.entity_type IS 'voice, stage or external.';
COMMENT ON COLUMN guildstats_mart.events.status IS 'scheduled, active, completed or canceled.';
COMMENT ON COLUMN guildstats_mart.events.is_cancelled IS 'The event was cancelled.';
COMMENT ON COLUMN guildstats_mart.events.scheduled_start IS 'Announced start.';
COMMENT ON COLUMN guildstats_mart.events.actual_start IS 'When it really started; empty if it never did.';
COMMENT ON COLUMN guildstats_mart.events.actual_end IS 'When it really ended; empty while running or never started.';
COMMENT ON COLUMN guildstats_mart.events.start_time IS 'Actual start, else the announced start: the event''s time for charts.';
COMMENT ON COLUMN guildstats_mart.events.day IS 'Calendar day of start_time in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.events.attendees IS 'Members who spent time in the event''s channel while it ran.';
COMMENT ON COLUMN guildstats_mart.events.on_time_attendees IS 'Attendees there at the start or within the grace period (settings.event_grace).';
COMMENT ON COLUMN guildstats_mart.events.late_attendees IS 'Attendees who arrived after the grace period.';
COMMENT ON COLUMN guildstats_mart.events.avg_minutes_per_attendee IS 'Average minutes an attendee spent in the event; empty without attendees.';
COMMENT ON COLUMN guildstats_mart.events.attendee_hours IS 'Hours spent in the event, summed over attendees.';

CREATE VIEW guildstats_mart.event_attendance AS
SELECT a.guild_id, a.event_id, e.name AS event_name,
       coalesce(e.actual_start, e.scheduled_start) AS event_start,
       (coalesce(e.actual_start, e.scheduled_start) AT TIME ZONE g.calendar_time_zone)::date AS day,
       a.user_id, coalesce(m.display_name, 'user ' || a.user_id) AS member_name,
       a.first_join, a.last_leave, a.overlap_seconds / 60.0 AS minutes_attended, a.joined_on_time,
       CASE WHEN a.joined_on_time THEN 'on time' ELSE 'late' END AS arrival
FROM @extschema@.event_attendance a
JOIN @extschema@.events e ON e.event_id = a.event_id
JOIN guildstats_mart.guilds g ON g.guild_id = a.guild_id
LEFT JOIN @extschema@.members m ON m.guild_id = a.guild_id AND m.user_id = a.user_id;
COMMENT ON VIEW guildstats_mart.event_attendance IS 'One row per member who attended a scheduled event: when they came and left, minutes attended, on time or late.';
COMMENT ON COLUMN guildstats_mart.event_attendance.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.event_attendance.event_id IS 'Discord scheduled-event id.';
COMMENT ON COLUMN guildstats_mart.event_attendance.event_name IS 'Event title.';
COMMENT ON COLUMN guildstats_mart.event_attendance.event_start IS 'When the event started.';
COMMENT ON COLUMN guildstats_mart.event_attendance.day IS 'Calendar day of the event start in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.event_attendance.user_id IS 'Discord user id.';
COMMENT ON COLUMN guildstats_mart.event_attendance.member_name IS 'The member''s latest display name.';
COMMENT ON COLUMN guildstats_mart.event_attendance.first_join IS 'Start of the member''s first voice stint overlapping the event.';
COMMENT ON COLUMN guildstats_mart.event_attendance.last_leave IS 'End of the member''s last voice stint overlapping the event; empty while still there.';
COMMENT ON COLUMN guildstats_mart.event_attendance.minutes_attended IS 'Minutes in the event''s channel while it ran.';
COMMENT ON COLUMN guildstats_mart.event_attendance.joined_on_time IS 'There at the start or within the grace period.';
COMMENT ON COLUMN guildstats_mart.event_attendance.arrival IS '"on time" or "late".';

CREATE VIEW guildstats_mart.member_engagement_weekly AS
SELECT w.guild_id, w.week, w.user_id, coalesce(m.display_name, 'user ' || w.user_id) AS member_name,
       w.voice_seconds / 3600.0 AS voice_hours, w.events_attended, w.distinct_event_types,
       w.voice_seconds / 3600.0 + w.events_attended AS engagement_score,
       CASE WHEN w.voice_seconds / 3600.0 + w.events_attended >= 10 THEN '3 high (10+)'
            WHEN w.voice_seconds / 3600.0 + w.events_attended >= 2 THEN '2 medium (2-10)'
            ELSE '1 low (under 2)' END AS engagement_level,
       coalesce(p.voice_seconds / 3600.0 + p.events_attended, 0) AS previous_week_score,
       w.voice_seconds / 3600.0 + w.events_attended
           - coalesce(p.voice_seconds / 3600.0 + p.events_attended, 0) AS score_change
FROM @extschema@.member_engagement_weekly w
LEFT JOIN @extschema@.member_engagement_weekly p
       ON p.guild_id = w.guild_id AND p.user_id = w.user_id AND p.week = w.week - 7
LEFT JOIN @extschema@.members m ON m.guild_id = w.guild_id AND m.user_id = w.user_id;
COMMENT ON VIEW guildstats_mart.member_engagement_weekly IS 'Engagement per member and week (from the member_engagement_weekly rollup): voice hours plus events attended as one score, its level, and its change against the week before (rising and falling members).';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.week IS 'The Monday the week starts on, in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.user_id IS 'Discord user id.';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.member_name IS 'The member''s latest display name.';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.voice_hours IS 'Hours in voice (AFK excluded) that week.';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.events_attended IS 'Scheduled events attended that week.';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.distinct_event_types IS 'Different kinds of events attended that week.';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.engagement_score IS 'voice_hours + events_attended: an hour in voice and an event attended weigh the same.';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.engagement_level IS 'Level of the score: "3 high (10+)", "2 medium (2-10)", "1 low (under 2)".';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.previous_week_score IS 'The member''s score the week before (0 when inactive then).';
COMMENT ON COLUMN guildstats_mart.member_engagement_weekly.score_change IS 'engagement_score - previous_week_score: positive for rising members, negative for falling ones.';

CREATE VIEW guildstats_mart.member_monthly_status AS
SELECT s.guild_id, s.month, s.user_id, coalesce(m.display_name, 'user ' || s.user_id) AS member_name,
       s.was_active, CASE WHEN s.was_active THEN 'active' ELSE 'inactive' END AS status,
       s.active_by_voice, s.active_by_messages, s.active_by_attendance,
       f.first_month AS first_month,
       CASE WHEN s.month = f.first_month THEN 'new this month' ELSE 'from earlier months' END AS tenure
FROM @extschema@.member_monthly_status s
JOIN (SELECT x.guild_id, x.user_id, min(x.month) AS first_month
        FROM @extschema@.member_monthly_status x GROUP BY x.guild_id, x.user_id) f
  ON f.guild_id = s.guild_id AND f.user_id = s.user_id
LEFT JOIN @extschema@.members m ON m.guild_id = s.guild_id AND m.user_id = s.user_id;
COMMENT ON VIEW guildstats_mart.member_monthly_status IS 'One row per member and calendar month while they belonged to the guild (from the member_monthly_status rollup): active or inactive, by what, and whether the month is their first.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.month IS 'First day of the month in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.user_id IS 'Discord user id.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.member_name IS 'The member''s latest display name.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.was_active IS 'Active by voice, messages or event attendance that month.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.status IS '"active" or "inactive".';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.active_by_voice IS 'Spent time in voice (AFK excluded) that month.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.active_by_messages IS 'Wrote a message that month.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.active_by_attendance IS 'Attended a scheduled event that month.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.first_month IS 'The member''s first month in the data.';
COMMENT ON COLUMN guildstats_mart.member_monthly_status.tenure IS '"new this month" in the member''s first month, else "from earlier months".';

CREATE VIEW guildstats_mart.member_status_counts_monthly AS
SELECT s.guild_id, s.month, CASE WHEN s.was_active THEN 'active' ELSE 'inactive' END AS status,
       CASE WHEN s.is_new THEN 'new this month' ELSE 'from earlier months' END AS tenure, s.members
FROM @extschema@.guild_monthly_status s;
COMMENT ON VIEW guildstats_mart.member_status_counts_monthly IS 'Members per guild and month, active or inactive, new this month or from earlier months (from the guild_monthly_status rollup): the counts of member_monthly_status, for charts of the whole guild.';
COMMENT ON COLUMN guildstats_mart.member_status_counts_monthly.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.member_status_counts_monthly.month IS 'First day of the calendar month (guild time zone).';
COMMENT ON COLUMN guildstats_mart.member_status_counts_monthly.status IS 'active or inactive that month.';
COMMENT ON COLUMN guildstats_mart.member_status_counts_monthly.tenure IS 'new this month (the member''s first month) or from earlier months.';
COMMENT ON COLUMN guildstats_mart.member_status_counts_monthly.members IS 'Members.';

CREATE VIEW guildstats_mart.executive_daily AS
-- The member count per day is computed once (MATERIALIZED), then looked up for each day.
WITH zones AS MATERIALIZED (
    SELECT a.guild_id, s.calendar_time_zone AS tz
    FROM (SELECT DISTINCT x.guild_id FROM @extschema@.guild_activity_daily x) a
    CROSS JOIN LATERAL @extschema@.settings_for(a.guild_id) s),
member_marks AS (
    SELECT m.guild_id, (m.first_seen AT TIME ZONE z.tz)::date AS day, 1 AS delta
    FROM @extschema@.members m JOIN zones z USING (guild_id)
    WHERE NOT m.is_bot
    UNION ALL
    SELECT m.guild_id, (m.left_at AT TIME ZONE z.tz)::date, -1
    FROM @extschema@.members m JOIN zones z USING (guild_id)
    WHERE NOT m.is_bot AND m.left_at IS NOT NULL),
member_days AS MATERIALIZED (
    SELECT guild_id, day, sum(sum(delta)) OVER (PARTITION BY guild_id ORDER BY day) AS members
    FROM member_marks GROUP BY guild_id, day)
SELECT a.guild_id, a.day,
       (SELECT md.members FROM member_days md WHERE md.guild_id = a.guild_id AND md.day <= a.day
         ORDER BY md.day DESC LIMIT 1) AS members,
       a.dau, a.wau, a.mau, a.dau::double precision / nullif(a.mau, 0) AS dau_mau,
       a.new_users AS new_members, a.returning_users AS returning_members,
       a.messages::numeric AS messages, a.voice_hours, e.circulation AS points_in_circulation
FROM @extschema@.guild_activity_daily a
LEFT JOIN @extschema@.economy_daily e ON e.guild_id = a.guild_id AND e.day = a.day;
COMMENT ON VIEW guildstats_mart.executive_daily IS 'The executive numbers per guild and calendar day (from the guild_activity_daily and economy_daily rollups): members, DAU, WAU, MAU, stickiness (DAU/MAU), new and returning members, messages, voice hours and points in circulation.';
COMMENT ON COLUMN guildstats_mart.executive_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.executive_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.executive_daily.members IS 'People (bots excluded) seen by the end of that day and not gone by then.';
COMMENT ON COLUMN guildstats_mart.executive_daily.dau IS 'Daily active users: active that day (voice, messages or points).';
COMMENT ON COLUMN guildstats_mart.executive_daily.wau IS 'Weekly active users: active in the 7 days ending that day.';
COMMENT ON COLUMN guildstats_mart.executive_daily.mau IS 'Monthly active users: active in the 30 days ending that day.';
COMMENT ON COLUMN guildstats_mart.executive_daily.dau_mau IS 'Stickiness: dau / mau.';
COMMENT ON COLUMN guildstats_mart.executive_daily.new_members IS 'Users whose first activity ever was that day.';
COMMENT ON COLUMN guildstats_mart.executive_daily.returning_members IS 'Users active that day who had been active before.';
COMMENT ON COLUMN guildstats_mart.executive_daily.messages IS 'Messages that day (bots excluded).';
COMMENT ON COLUMN guildstats_mart.executive_daily.voice_hours IS 'Hours in voice that day (AFK excluded), summed over members.';
COMMENT ON COLUMN guildstats_mart.executive_daily.points_in_circulation IS 'Sum of all point balances at the end of the day; empty before the first transaction.';

CREATE VIEW guildstats_mart.retention_daily AS
SELECT a.guild_id, a.day, a.new_users AS cohort_size,
       CASE WHEN a.day + 1 <= l.last_day THEN a.new_users END AS d1_eligible,
       CASE WHEN a.day + 1 <= l.last_day THEN a.d1_retained END AS d1_retained,
       CASE WHEN a.day + 7 <= l.last_day THEN a.new_users END AS d7_eligible,
       CASE WHEN a.day + 7 <= l.last_day THEN a.d7_retained END AS d7_retained,
       CASE WHEN a.day + 30 <= l.last_day THEN a.new_users END AS d30_eligible,
       CASE WHEN a.day + 30 <= l.last_day THEN a.d30_retained END AS d30_retained
FROM @extschema@.guild_activity_daily a
JOIN (SELECT x.guild_id, max(x.day) AS last_day FROM @extschema@.guild_activity_daily x GROUP BY x.guild_id) l
  ON l.guild_id = a.guild_id
WHERE a.new_users > 0;
COMMENT ON VIEW guildstats_mart.retention_daily IS 'D1, D7 and D30 retention per day of first activity (from the guild_activity_daily rollup): of the users first active that day, how many were active again exactly 1, 7 and 30 days later. Rate over a period: sum(dN_retained) / sum(dN_eligible).';
COMMENT ON COLUMN guildstats_mart.retention_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.retention_daily.day IS 'Day of first activity (the cohort) in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.retention_daily.cohort_size IS 'Users whose first activity was that day.';
COMMENT ON COLUMN guildstats_mart.retention_daily.d1_eligible IS 'cohort_size when the data reaches a day after the cohort day, else empty.';
COMMENT ON COLUMN guildstats_mart.retention_daily.d1_retained IS 'Of them, active exactly 1 day later.';
COMMENT ON COLUMN guildstats_mart.retention_daily.d7_eligible IS 'cohort_size when the data reaches 7 days after the cohort day, else empty.';
COMMENT ON COLUMN guildstats_mart.retention_daily.d7_retained IS 'Of them, active exactly 7 days later.';
COMMENT ON COLUMN guildstats_mart.retention_daily.d30_eligible IS 'cohort_size when the data reaches 30 days after the cohort day, else empty.';
COMMENT ON COLUMN guildstats_mart.retention_daily.d30_retained IS 'Of them, active exactly 30 days later.';

CREATE VIEW guildstats_mart.retention_cohorts AS
-- Weeks by first activity and months come from the guild_retention_cohorts rollup that
-- build_rollups() keeps; weeks by join, from retention() over the raw joins.
SELECT c.guild_id, c.period, c.cohort_by, c.cohort_start, c.cohort_size, c.period_offset, c.retained,
       c.retained::double precision / c.cohort_size AS rate, c.retained_or_later,
       c.retained_or_later::double precision / c.cohort_size AS rate_or_later
FROM @extschema@.guild_retention_cohorts c
UNION ALL
SELECT g.guild_id, 'week', 'join', r.cohort_start, r.cohort_size, r.period_offset,
       r.retained, r.rate, r.retained_or_later, r.rate_or_later
FROM guildstats_mart.guilds g
CROSS JOIN LATERAL @extschema@.retention(g.guild_id, 'week', 'join') r;
COMMENT ON VIEW guildstats_mart.retention_cohorts IS 'Retention cohort tables for heatmaps: weekly and monthly cohorts, by first activity or by join month; one row per cohort and period offset (0 = the cohort''s own period). Weekly cohorts by first activity and monthly cohorts are as of the last build_rollups() (the guild_retention_cohorts rollup).';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.period IS 'week or month (calendar, guild time zone).';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.cohort_by IS 'first_activity (the period of a user''s first activity) or join (the period they joined; monthly join cohorts start with the guild''s first tracked month).';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.cohort_start IS 'First day of the cohort''s week or month.';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.cohort_size IS 'Users in the cohort.';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.period_offset IS 'Weeks or months after the cohort period (0 = the cohort period).';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.retained IS 'Cohort users active in exactly that period.';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.rate IS 'retained / cohort_size.';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.retained_or_later IS 'Cohort users active in that period or any later one.';
COMMENT ON COLUMN guildstats_mart.retention_cohorts.rate_or_later IS 'retained_or_later / cohort_size.';

CREATE VIEW guildstats_mart.economy_daily AS
SELECT e.guild_id, e.day, e.circulation, e.earned, e.spent, e.net, e.accounts, e.users_with_points,
       e.median_balance, e.top1_share, e.gini, e.inflation, e.negative_streak,
       e.alert_inflation, e.alert_net_negative, e.alert_gini,
       array_to_string(e.alerts, ', ') AS alerts,
       0.10::double precision AS inflation_threshold, 0.7::double precision AS gini_threshold
FROM @extschema@.economy_daily e;
COMMENT ON VIEW guildstats_mart.economy_daily IS 'The points economy per guild and calendar day (economy_health(), kept in the economy_daily rollup): circulation, flows, inequality, inflation and the three alerts, with the alert thresholds as columns for chart lines.';
COMMENT ON COLUMN guildstats_mart.economy_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.economy_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.economy_daily.circulation IS 'Sum of all balances at the end of the day.';
COMMENT ON COLUMN guildstats_mart.economy_daily.earned IS 'Points earned that day.';
COMMENT ON COLUMN guildstats_mart.economy_daily.spent IS 'Points spent that day (a positive number).';
COMMENT ON COLUMN guildstats_mart.economy_daily.net IS 'earned - spent.';
COMMENT ON COLUMN guildstats_mart.economy_daily.accounts IS 'Users with any transaction so far.';
COMMENT ON COLUMN guildstats_mart.economy_daily.users_with_points IS 'Users with a positive balance.';
COMMENT ON COLUMN guildstats_mart.economy_daily.median_balance IS 'Median balance over accounts.';
COMMENT ON COLUMN guildstats_mart.economy_daily.top1_share IS 'Share of all points held by the richest 1 % of accounts (0 to 1).';
COMMENT ON COLUMN guildstats_mart.economy_daily.gini IS 'Gini coefficient of balances (0 equal, 1 one holder has everything).';
COMMENT ON COLUMN guildstats_mart.economy_daily.inflation IS 'Change of circulation against the day before (0.1 = 10 %).';
COMMENT ON COLUMN guildstats_mart.economy_daily.negative_streak IS 'Days in a row, up to this one, with net < 0.';
COMMENT ON COLUMN guildstats_mart.economy_daily.alert_inflation IS 'Inflation above 10 % that day.';
COMMENT ON COLUMN guildstats_mart.economy_daily.alert_net_negative IS 'Net negative 3 or more days in a row.';
COMMENT ON COLUMN guildstats_mart.economy_daily.alert_gini IS 'Gini above 0.7.';
COMMENT ON COLUMN guildstats_mart.economy_daily.alerts IS 'The alerts raised that day, comma-separated; empty when none.';
COMMENT ON COLUMN guildstats_mart.economy_daily.inflation_threshold IS 'The inflation alert threshold (0.10), for a line on charts.';
COMMENT ON COLUMN guildstats_mart.economy_daily.gini_threshold IS 'The Gini alert threshold (0.7), for a line on charts.';

CREATE VIEW guildstats_mart.economy_flows_daily AS
SELECT t.guild_id, t.day, t.user_id, coalesce(m.display_name, 'user ' || t.user_id) AS member_name,
       CASE WHEN t.reason = '' THEN '(none)' ELSE t.reason END AS reason,
       t.earned::numeric AS earned, t.spent::numeric AS spent, t.transactions
FROM @extschema@.member_points_daily t
LEFT JOIN @extschema@.members m ON m.guild_id = t.guild_id AND m.user_id = t.user_id;
COMMENT ON VIEW guildstats_mart.economy_flows_daily IS 'Point flows per guild, calendar day, member and reason (from the member_points_daily rollup): earned and spent. Sum by reason for earn vs spend by type, by member_name for top earners and spenders.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.user_id IS 'Discord user id of the holder.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.member_name IS 'The holder''s latest display name.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.reason IS 'Why the points moved (daily, message, shop, ...).';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.earned IS 'Points earned.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.spent IS 'Points spent (a positive number).';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.transactions IS 'Transactions.';

CREATE VIEW guildstats_mart.economy_reasons_daily AS
SELECT r.guild_id, r.day, CASE WHEN r.reason = '' THEN '(none)' ELSE r.reason END AS reason,
       r.earned::numeric AS earned, r.spent::numeric AS spent, r.transactions
FROM @extschema@.guild_points_reason_daily r;
COMMENT ON VIEW guildstats_mart.economy_reasons_daily IS 'Point flows per guild, calendar day and reason (from the guild_points_reason_daily rollup): sum by reason for earn vs spend by type.';
COMMENT ON COLUMN guildstats_mart.economy_reasons_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.economy_reasons_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.economy_reasons_daily.reason IS 'Why the points moved (daily, message, shop, ...); (none) when the source sent no reason.';
COMMENT ON COLUMN guildstats_mart.economy_reasons_daily.earned IS 'Points earned.';
COMMENT ON COLUMN guildstats_mart.economy_reasons_daily.spent IS 'Points spent (a positive number).';
COMMENT ON COLUMN guildstats_mart.economy_reasons_daily.transactions IS 'Transactions.';

CREATE VIEW guildstats_mart.economy_members_monthly AS
SELECT t.guild_id, t.month, t.user_id, coalesce(m.display_name, 'user ' || t.user_id) AS member_name,
       t.earned::numeric AS earned, t.spent::numeric AS spent, t.transactions
FROM @extschema@.member_points_monthly t
LEFT JOIN @extschema@.members m ON m.guild_id = t.guild_id AND m.user_id = t.user_id;
COMMENT ON VIEW guildstats_mart.economy_members_monthly IS 'Point flows per guild, calendar month and member, all reasons together (from the member_points_monthly rollup): sum by member_name for top earners and spenders. A time range picks whole months.';
COMMENT ON COLUMN guildstats_mart.economy_members_monthly.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.economy_members_monthly.month IS 'First day of the calendar month in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.economy_members_monthly.user_id IS 'Discord user id of the holder.';
COMMENT ON COLUMN guildstats_mart.economy_members_monthly.member_name IS 'The holder''s latest display name.';
COMMENT ON COLUMN guildstats_mart.economy_members_monthly.earned IS 'Points earned.';
COMMENT ON COLUMN guildstats_mart.economy_members_monthly.spent IS 'Points spent (a positive number).';
COMMENT ON COLUMN guildstats_mart.economy_members_monthly.transactions IS 'Transactions.';

CREATE VIEW guildstats_mart.chat_daily AS
SELECT c.guild_id, c.day, c.channel_id,
       coalesce(nullif((SELECT n.name FROM @extschema@.raw_channels n WHERE n.channel_id = c.channel_id
                         ORDER BY n.observed_at DESC, n.ingest_id DESC LIMIT 1), ''),
                'channel ' || c.channel_id) AS channel_name,
       c.messages, c.authors, c.characters, c.with_attachments, c.replies
FROM @extschema@.chat_channel_daily c;
COMMENT ON VIEW guildstats_mart.chat_daily IS 'Chat per guild, calendar day and channel, bots excluded (from the chat_channel_daily rollup).';
COMMENT ON COLUMN guildstats_mart.chat_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.chat_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.chat_daily.channel_id IS 'Discord channel id (threads count in their parent).';
COMMENT ON COLUMN guildstats_mart.chat_daily.channel_name IS 'The channel''s latest name.';
COMMENT ON COLUMN guildstats_mart.chat_daily.messages IS 'Messages.';
COMMENT ON COLUMN guildstats_mart.chat_daily.authors IS 'Distinct authors.';
COMMENT ON COLUMN guildstats_mart.chat_daily.characters IS 'Characters written.';
COMMENT ON COLUMN guildstats_mart.chat_daily.with_attachments IS 'Messages with attachments.';
COMMENT ON COLUMN guildstats_mart.chat_daily.replies IS 'Replies.';

CREATE VIEW guildstats_mart.et_player_rounds AS
SELECT g.guild_id, p.saved_at AT TIME ZONE g.calendar_time_zone AS round_time,
       p.saved_at::date AS day, p.map, p.round_number, p.et_session_id AS session_id,
       p.guid, p.clean_name AS player_name, p.kills, p.deaths, p.damage_given, p.time_played_seconds,
       CASE WHEN p.damage_given IS NOT NULL THEN p.time_played_seconds END AS damage_seconds,
       p.headshots, p.revives_given AS revives, p.gibs, p.xp, p.hits, p.shots
FROM @extschema@.et_counted_player_rounds p
CROSS JOIN guildstats_mart.guilds g
WHERE NOT p.is_bot;
COMMENT ON VIEW guildstats_mart.et_player_rounds IS 'ET:Legacy player rounds that count (no orphan round 2s, no restarted rounds, no bots), for leaderboards over any period: sum kills and deaths per player_name; DPM = sum(damage_given) * 60 / sum(damage_seconds). ET servers belong to no guild: every guild sees them.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.guild_id IS 'Discord guild id (every guild sees every ET round).';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.round_time IS 'When the round was saved, the server''s local time read in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.day IS 'The server''s local calendar day of the round.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.map IS 'Map.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.round_number IS '1 or 2 (stopwatch).';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.session_id IS 'Gaming session of the round.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.guid IS 'Player GUID.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.player_name IS 'Name in that round, without colour codes.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.kills IS 'Kills.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.deaths IS 'Deaths.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.damage_given IS 'Damage given; empty when the stats file does not say.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.time_played_seconds IS 'Seconds played.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.damage_seconds IS 'Seconds played in rounds that report damage: the DPM denominator.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.headshots IS 'Headshots.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.revives IS 'Revives given.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.gibs IS 'Gibs.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.xp IS 'XP.';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.hits IS 'Hits (for accuracy: sum(hits) / sum(shots)).';
COMMENT ON COLUMN guildstats_mart.et_player_rounds.shots IS 'Shots fired.';

CREATE VIEW guildstats_mart.et_players AS
SELECT g.guild_id, p.guid, p.name AS player_name, p.rounds,
       p.first_seen AT TIME ZONE g.calendar_time_zone AS first_seen,
       p.last_seen AT TIME ZONE g.calendar_time_zone AS last_seen,
       p.kills, p.deaths, p.kd, p.dpm, p.accuracy, p.headshots, p.revives, p.gibs, p.xp,
       p.time_played_seconds / 3600.0::double precision AS hours_played
FROM @extschema@.et_players p
CROSS JOIN guildstats_mart.guilds g
WHERE NOT p.is_bot;
COMMENT ON VIEW guildstats_mart.et_players IS 'ET:Legacy players (by GUID, bots excluded) over all counted rounds: latest name, totals and ratios.';
COMMENT ON COLUMN guildstats_mart.et_players.guild_id IS 'Discord guild id (every guild sees every ET player).';
COMMENT ON COLUMN guildstats_mart.et_players.guid IS 'Player GUID.';
COMMENT ON COLUMN guildstats_mart.et_players.player_name IS 'Latest name, without colour codes.';
COMMENT ON COLUMN guildstats_mart.et_players.rounds IS 'Counted rounds played.';
COMMENT ON COLUMN guildstats_mart.et_players.first_seen IS 'First round.';
COMMENT ON COLUMN guildstats_mart.et_players.last_seen IS 'Latest round: the player''s time column.';
COMMENT ON COLUMN guildstats_mart.et_players.kills IS 'Kills.';
COMMENT ON COLUMN guildstats_mart.et_players.deaths IS 'Deaths.';
COMMENT ON COLUMN guildstats_mart.et_players.kd IS 'Kills per death.';
COMMENT ON COLUMN guildstats_mart.et_players.dpm IS 'Damage per minute played.';
COMMENT ON COLUMN guildstats_mart.et_players.accuracy IS 'Hits per shot, in percent.';
COMMENT ON COLUMN guildstats_mart.et_players.headshots IS 'Headshots.';
COMMENT ON COLUMN guildstats_mart.et_players.revives IS 'Revives given.';
COMMENT ON COLUMN guildstats_mart.et_players.gibs IS 'Gibs.';
COMMENT ON COLUMN guildstats_mart.et_players.xp IS 'XP.';
COMMENT ON COLUMN guildstats_mart.et_players.hours_played IS 'Hours played.';

CREATE VIEW guildstats_mart.et_sessions AS
SELECT g.guild_id, s.et_session_id AS session_id,
       s.started_at AT TIME ZONE g.calendar_time_zone AS started_at,
       s.ended_at AT TIME ZONE g.calendar_time_zone AS ended_at,
       s.rounds, array_to_string(s.maps, ', ') AS maps, s.players,
       s.et_session_id = @extschema@.et_last_session_id() AS is_last
FROM @extschema@.et_sessions s
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.et_sessions IS 'ET:Legacy gaming sessions (rounds close together in time): when, how many rounds, which maps, how many players.';
COMMENT ON COLUMN guildstats_mart.et_sessions.guild_id IS 'Discord guild id (every guild sees every ET session).';
COMMENT ON COLUMN guildstats_mart.et_sessions.session_id IS 'Session id (its first round).';
COMMENT ON COLUMN guildstats_mart.et_sessions.started_at IS 'First round of the session.';
COMMENT ON COLUMN guildstats_mart.et_sessions.ended_at IS 'Last round of the session.';
COMMENT ON COLUMN guildstats_mart.et_sessions.rounds IS 'Rounds played.';
COMMENT ON COLUMN guildstats_mart.et_sessions.maps IS 'Maps in the order first played.';
COMMENT ON COLUMN guildstats_mart.et_sessions.players IS 'Distinct players, bots excluded.';
COMMENT ON COLUMN guildstats_mart.et_sessions.is_last IS 'The most recent session.';

CREATE VIEW guildstats_mart.et_last_session AS
SELECT g.guild_id, s.started_at AT TIME ZONE g.calendar_time_zone AS session_start,
       x.guid, x.name AS player_name, x.rounds, x.kills, x.deaths, x.kd, x.efficiency,
       x.damage_given, x.dpm, x.gibs, x.revives, x.xp, x.mvp_score, x.is_mvp
FROM @extschema@.et_session_summary() x
JOIN @extschema@.et_sessions s ON s.et_session_id = @extschema@.et_last_session_id()
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.et_last_session IS 'The players of the last ET:Legacy session with their totals and the MVP (et_session_summary()).';
COMMENT ON COLUMN guildstats_mart.et_last_session.guild_id IS 'Discord guild id (every guild sees every ET session).';
COMMENT ON COLUMN guildstats_mart.et_last_session.session_start IS 'When the session started.';
COMMENT ON COLUMN guildstats_mart.et_last_session.guid IS 'Player GUID.';
COMMENT ON COLUMN guildstats_mart.et_last_session.player_name IS 'Latest name in the session.';
COMMENT ON COLUMN guildstats_mart.et_last_session.rounds IS 'Rounds played in the session.';
COMMENT ON COLUMN guildstats_mart.et_last_session.kills IS 'Kills.';
COMMENT ON COLUMN guildstats_mart.et_last_session.deaths IS 'Deaths.';
COMMENT ON COLUMN guildstats_mart.et_last_session.kd IS 'Kills per death.';
COMMENT ON COLUMN guildstats_mart.et_last_session.efficiency IS 'kills / (kills + deaths), in percent.';
COMMENT ON COLUMN guildstats_mart.et_last_session.damage_given IS 'Damage given.';
COMMENT ON COLUMN guildstats_mart.et_last_session.dpm IS 'Damage per minute.';
COMMENT ON COLUMN guildstats_mart.et_last_session.gibs IS 'Gibs.';
COMMENT ON COLUMN guildstats_mart.et_last_session.revives IS 'Revives given.';
COMMENT ON COLUMN guildstats_mart.et_last_session.xp IS 'XP.';
COMMENT ON COLUMN guildstats_mart.et_last_session.mvp_score IS 'K/D * 10 + efficiency + damage / 100.';
COMMENT ON COLUMN guildstats_mart.et_last_session.is_mvp IS 'The session''s MVP.';

CREATE VIEW guildstats_mart.et_maps AS
SELECT g.guild_id, m.started_at AT TIME ZONE g.calendar_time_zone AS played_at, m.match_id, m.map,
       m.et_session_id AS session_id, coalesce(m.outcome, 'unfinished') AS outcome,
       m.time_to_beat_seconds / 60.0::double precision AS time_to_beat_minutes
FROM @extschema@.et_matches m
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.et_maps IS 'ET:Legacy stopwatch maps played: when, which map, the time to beat and the result.';
COMMENT ON COLUMN guildstats_mart.et_maps.guild_id IS 'Discord guild id (every guild sees every ET map).';
COMMENT ON COLUMN guildstats_mart.et_maps.played_at IS 'Start of the map (its round 1).';
COMMENT ON COLUMN guildstats_mart.et_maps.match_id IS 'Match id (date and time of round 1).';
COMMENT ON COLUMN guildstats_mart.et_maps.map IS 'Map name.';
COMMENT ON COLUMN guildstats_mart.et_maps.session_id IS 'Gaming session.';
COMMENT ON COLUMN guildstats_mart.et_maps.outcome IS 'round1_attackers, round2_attackers, draw, unknown or unfinished.';
COMMENT ON COLUMN guildstats_mart.et_maps.time_to_beat_minutes IS 'The time the round-1 attackers set, in minutes.';

CREATE VIEW guildstats_mart.et_awards AS
SELECT g.guild_id, s.started_at AT TIME ZONE g.calendar_time_zone AS session_start,
       a.award, a.guid, a.name AS player_name, a.value
FROM @extschema@.et_awards() a
JOIN @extschema@.et_sessions s ON s.et_session_id = @extschema@.et_last_session_id()
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.et_awards IS 'Awards of the last ET:Legacy session (et_awards()): most kills, damage, revives, best accuracy, ...; ties share an award.';
COMMENT ON COLUMN guildstats_mart.et_awards.guild_id IS 'Discord guild id (every guild sees every ET session).';
COMMENT ON COLUMN guildstats_mart.et_awards.session_start IS 'When the session started.';
COMMENT ON COLUMN guildstats_mart.et_awards.award IS 'The award.';
COMMENT ON COLUMN guildstats_mart.et_awards.guid IS 'Winner''s GUID.';
COMMENT ON COLUMN guildstats_mart.et_awards.player_name IS 'Winner''s name.';
COMMENT ON COLUMN guildstats_mart.et_awards.value IS 'The winning value.';

CREATE VIEW guildstats_mart.game_servers_hourly AS
SELECT g.guild_id, h.hour, h.server, coalesce(s.label, h.server) AS server_label,
       h.polls, h.ok_polls, h.ok_polls::double precision / h.polls AS uptime,
       h.player_sum::numeric / nullif(h.player_polls, 0) AS avg_players, h.max_players_seen, h.slots,
       h.utilization_sum / nullif(h.utilization_polls, 0) AS utilization
FROM @extschema@.server_polls_hourly h
LEFT JOIN @extschema@.game_servers s ON s.address = h.server
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.game_servers_hourly IS 'Game servers per hour (from the server_polls_hourly rollup): uptime (share of polls answered), players and utilization (players / slots).';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.guild_id IS 'Discord guild id (every guild sees every game server).';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.hour IS 'Start of the hour.';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.server IS 'Server address, host:port.';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.server_label IS 'The server''s label in game_servers, else its address.';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.polls IS 'Polls that hour.';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.ok_polls IS 'Polls answered.';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.uptime IS 'ok_polls / polls (0 to 1).';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.avg_players IS 'Average players reported.';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.max_players_seen IS 'Most players reported.';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.slots IS 'Player slots.';
COMMENT ON COLUMN guildstats_mart.game_servers_hourly.utilization IS 'Players / slots, averaged over answered polls (0 to 1).';

CREATE VIEW guildstats_mart.data_health AS
SELECT g.guild_id, now() AS checked_at, h.check_name, h.severity, h.status, h.detail,
       h.status = 'ok' AS is_ok
FROM @extschema@.health() h
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.data_health IS 'Data-quality checks (health()): freshness of every input, heartbeats, ET imports, game servers; status ok means nothing to do.';
COMMENT ON COLUMN guildstats_mart.data_health.guild_id IS 'Discord guild id (the checks cover the whole database).';
COMMENT ON COLUMN guildstats_mart.data_health.checked_at IS 'When the checks ran (now).';
COMMENT ON COLUMN guildstats_mart.data_health.check_name IS 'What is checked.';
COMMENT ON COLUMN guildstats_mart.data_health.severity IS 'critical, warning or info.';
COMMENT ON COLUMN guildstats_mart.data_health.status IS 'ok, or what is wrong (stale, missing, failing, ...).';
COMMENT ON COLUMN guildstats_mart.data_health.detail IS 'The numbers behind the status.';
COMMENT ON COLUMN guildstats_mart.data_health.is_ok IS 'status is ok.';

CREATE VIEW guildstats_mart.ingest_lag_hourly AS
SELECT g.guild_id, l.hour, l.source_table, l.rows, l.avg_lag_seconds, l.p95_lag_seconds, l.max_lag_seconds
FROM @extschema@.ingest_lag_rollup l
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.ingest_lag_hourly IS 'How long after the fact each input reached the database, per raw table and hour of event time (from the ingest_lag_rollup rollup).';
COMMENT ON COLUMN guildstats_mart.ingest_lag_hourly.guild_id IS 'Discord guild id (the lag covers the whole database).';
COMMENT ON COLUMN guildstats_mart.ingest_lag_hourly.hour IS 'Hour of the events.';
COMMENT ON COLUMN guildstats_mart.ingest_lag_hourly.source_table IS 'The raw table.';
COMMENT ON COLUMN guildstats_mart.ingest_lag_hourly.rows IS 'Rows of that hour.';
COMMENT ON COLUMN guildstats_mart.ingest_lag_hourly.avg_lag_seconds IS 'Average seconds from the event to its row being stored.';
COMMENT ON COLUMN guildstats_mart.ingest_lag_hourly.p95_lag_seconds IS '95th percentile of that lag, seconds.';
COMMENT ON COLUMN guildstats_mart.ingest_lag_hourly.max_lag_seconds IS 'Largest lag, seconds.';

CREATE VIEW guildstats_mart.ingester_heartbeats AS
SELECT g.guild_id, b.source, b.guild_id AS beat_guild_id, max(b.beat_at) AS last_beat,
       extract(epoch FROM now() - max(b.beat_at))::double precision AS seconds_since_last_beat,
       count(*) FILTER (WHERE b.beat_at > now() - interval '1 hour') AS beats_last_hour
FROM @extschema@.raw_heartbeats b
JOIN guildstats_mart.guilds g ON b.guild_id IS NULL OR b.guild_id = g.guild_id
GROUP BY g.guild_id, b.source, b.guild_id;
COMMENT ON VIEW guildstats_mart.ingester_heartbeats IS 'Liveness of every ingester: its latest heartbeat and how long ago that was.';
COMMENT ON COLUMN guildstats_mart.ingester_heartbeats.guild_id IS 'Discord guild id (ingesters tied to no guild appear under every guild).';
COMMENT ON COLUMN guildstats_mart.ingester_heartbeats.source IS 'The ingester: discord, gameserver or sftp.';
COMMENT ON COLUMN guildstats_mart.ingester_heartbeats.beat_guild_id IS 'The guild the ingester reports for; empty for ingesters tied to no guild.';
COMMENT ON COLUMN guildstats_mart.ingester_heartbeats.last_beat IS 'Latest heartbeat.';
COMMENT ON COLUMN guildstats_mart.ingester_heartbeats.seconds_since_last_beat IS 'Seconds since the latest heartbeat.';
COMMENT ON COLUMN guildstats_mart.ingester_heartbeats.beats_last_hour IS 'Heartbeats in the last hour.';

CREATE VIEW guildstats_mart.builder_status AS
SELECT g.guild_id, p.builder, max(p.updated_at) AS last_run,
       extract(epoch FROM now() - max(p.updated_at))::double precision AS seconds_since_last_run,
       bool_or(p.pending_ids <> '{}') AS has_pending_rows
FROM @extschema@.build_progress p
CROSS JOIN guildstats_mart.guilds g
GROUP BY g.guild_id, p.builder;
COMMENT ON VIEW guildstats_mart.builder_status IS 'When each incremental builder last recorded progress (build_progress): a builder that stops running shows here first.';
COMMENT ON COLUMN guildstats_mart.builder_status.guild_id IS 'Discord guild id (the builders serve every guild).';
COMMENT ON COLUMN guildstats_mart.builder_status.builder IS 'The builder function.';
COMMENT ON COLUMN guildstats_mart.builder_status.last_run IS 'Latest progress recorded.';
COMMENT ON COLUMN guildstats_mart.builder_status.seconds_since_last_run IS 'Seconds since then.';
COMMENT ON COLUMN guildstats_mart.builder_status.has_pending_rows IS 'Rows of writers still in flight at the last run wait to be looked at again.';

CREATE VIEW guildstats_mart.live_activity_5min AS
SELECT c.guild_id, c.window_start, c.messages, c.authors
FROM @extschema@.chat_activity_5min c;
COMMENT ON VIEW guildstats_mart.live_activity_5min IS 'Messages per guild and 5-minute window (bots excluded; from the chat_activity_5min rollup, as of the last build), for live operations panels.';
COMMENT ON COLUMN guildstats_mart.live_activity_5min.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.live_activity_5min.window_start IS 'Start of the 5-minute window (UTC-aligned).';
COMMENT ON COLUMN guildstats_mart.live_activity_5min.messages IS 'Messages in the window.';
COMMENT ON COLUMN guildstats_mart.live_activity_5min.authors IS 'Distinct authors in the window.';

CREATE VIEW guildstats_mart.voice_now AS
SELECT b.guild_id, b.horizon AS as_of,
       count(v.user_id) FILTER (WHERE NOT v.is_afk) AS voice_users,
       count(v.user_id) FILTER (WHERE v.is_afk) AS afk_users,
       count(DISTINCT v.channel_id) FILTER (WHERE NOT v.is_afk) AS busy_channels
FROM @extschema@.voice_build_guilds b
LEFT JOIN @extschema@.voice_sessions v ON v.guild_id = b.guild_id AND v.ended_at IS NULL
GROUP BY b.guild_id, b.horizon;
COMMENT ON VIEW guildstats_mart.voice_now IS 'Who is in voice now, per guild: the sessions still open at the voice builder''s horizon (its latest heartbeat).';
COMMENT ON COLUMN guildstats_mart.voice_now.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.voice_now.as_of IS 'The instant the counts are for: the guild''s latest heartbeat seen by the last build.';
COMMENT ON COLUMN guildstats_mart.voice_now.voice_users IS 'Members in voice outside the AFK channel.';
COMMENT ON COLUMN guildstats_mart.voice_now.afk_users IS 'Members in the AFK channel.';
COMMENT ON COLUMN guildstats_mart.voice_now.busy_channels IS 'Voice channels with someone in them (AFK excluded).';

CREATE VIEW guildstats_mart.coverage_daily AS
SELECT c.guild_id, c.day, date_trunc('week', c.day)::date AS week, c.coverage, c.is_complete,
       c.coverage < 1 AS is_partial
FROM @extschema@.coverage_daily c;
COMMENT ON VIEW guildstats_mart.coverage_daily IS 'Coverage marks: per guild and day, the share of the day the Discord bot was connected. Join on guild_id and day (or week) to mark the periods of other charts whose data is incomplete.';
COMMENT ON COLUMN guildstats_mart.coverage_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.coverage_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.coverage_daily.week IS 'First day (Monday) of the day''s week.';
COMMENT ON COLUMN guildstats_mart.coverage_daily.coverage IS 'Share of the day the bot was connected (0 to 1).';
COMMENT ON COLUMN guildstats_mart.coverage_daily.is_complete IS 'The day is over (a later heartbeat exists).';
COMMENT ON COLUMN guildstats_mart.coverage_daily.is_partial IS 'The bot missed part of the day: mark it on charts.';

-- The show-up funnel of scheduled events (funnel.sql).
CREATE VIEW guildstats_mart.event_funnel AS
SELECT f.guild_id, f.event_id, f.name AS event_name, f.started, f.is_cancelled, f.start_time,
       (f.start_time AT TIME ZONE g.calendar_time_zone)::date AS day,
       f.interested, f.in_voice, f.on_server, f.played, f.attendees, f.walk_ins,
       f.voice_rate, f.no_show_rate, f.server_rate, f.play_rate
FROM @extschema@.event_funnel f
JOIN guildstats_mart.guilds g ON g.guild_id = f.guild_id;
COMMENT ON VIEW guildstats_mart.event_funnel IS 'The show-up funnel per scheduled event: members interested, of those in voice during the event, also seen on a game server, also playing ET:Legacy rounds; with the rates from stage to stage and the no-show rate. Walk-ins came into voice without marking interest.';
COMMENT ON COLUMN guildstats_mart.event_funnel.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.event_funnel.event_id IS 'Discord scheduled-event id.';
COMMENT ON COLUMN guildstats_mart.event_funnel.event_name IS 'Event title.';
COMMENT ON COLUMN guildstats_mart.event_funnel.started IS 'The event started; events cancelled before their start have no funnel (zero counts, empty rates).';
COMMENT ON COLUMN guildstats_mart.event_funnel.is_cancelled IS 'The event was cancelled.';
COMMENT ON COLUMN guildstats_mart.event_funnel.start_time IS 'Actual start, else the announced start: the event''s time for charts.';
COMMENT ON COLUMN guildstats_mart.event_funnel.day IS 'Calendar day of start_time in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.event_funnel.interested IS 'Members interested in the event (their latest interest by its end).';
COMMENT ON COLUMN guildstats_mart.event_funnel.in_voice IS 'Interested members who came into voice during the event.';
COMMENT ON COLUMN guildstats_mart.event_funnel.on_server IS 'Of those, members seen on a game server during the event.';
COMMENT ON COLUMN guildstats_mart.event_funnel.played IS 'Of those, members who played ET:Legacy rounds during the event.';
COMMENT ON COLUMN guildstats_mart.event_funnel.attendees IS 'Everybody in voice during the event, interested or not.';
COMMENT ON COLUMN guildstats_mart.event_funnel.walk_ins IS 'Members in voice during the event without having marked interest.';
COMMENT ON COLUMN guildstats_mart.event_funnel.voice_rate IS 'in_voice / interested.';
COMMENT ON COLUMN guildstats_mart.event_funnel.no_show_rate IS 'Interested members who did not come into voice, as a share of the interested.';
COMMENT ON COLUMN guildstats_mart.event_funnel.server_rate IS 'on_server / in_voice.';
COMMENT ON COLUMN guildstats_mart.event_funnel.play_rate IS 'played / on_server.';

CREATE VIEW guildstats_mart.member_event_funnel AS
SELECT f.guild_id, f.user_id, coalesce(m.display_name, 'user ' || f.user_id) AS member_name,
       (f.first_event_start AT TIME ZONE g.calendar_time_zone)::date AS first_event_day,
       (f.last_event_start AT TIME ZONE g.calendar_time_zone)::date AS last_event_day,
       f.events_interested, f.events_attended, f.no_shows, f.walk_ins, f.no_show_rate
FROM @extschema@.member_event_funnel f
JOIN guildstats_mart.guilds g ON g.guild_id = f.guild_id
LEFT JOIN @extschema@.members m ON m.guild_id = f.guild_id AND m.user_id = f.user_id;
COMMENT ON VIEW guildstats_mart.member_event_funnel IS 'Per member: scheduled events they were interested in, attended in voice, missed (no-shows) and came to without marking interest (walk-ins), and their no-show rate.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.user_id IS 'Discord user id.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.member_name IS 'Latest display name, else the user id.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.first_event_day IS 'Day (guild time zone) of the member''s first event in the funnel.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.last_event_day IS 'Day (guild time zone) of the member''s latest event in the funnel.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.events_interested IS 'Started events the member was interested in.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.events_attended IS 'Of those, events attended in voice.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.no_shows IS 'Of those, events missed.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.walk_ins IS 'Events attended in voice without marking interest.';
COMMENT ON COLUMN guildstats_mart.member_event_funnel.no_show_rate IS 'no_shows / events_interested; empty when never interested.';

CREATE VIEW guildstats_mart.event_retention_d30 AS
SELECT r.guild_id, date_trunc('month', r.event_day)::date AS month, r.cohort,
       count(*) AS members,
       count(*) FILTER (WHERE r.eligible) AS eligible_members,
       count(*) FILTER (WHERE r.eligible AND r.retained_d30) AS retained,
       count(*) FILTER (WHERE r.eligible AND r.retained_d30)::double precision
           / nullif(count(*) FILTER (WHERE r.eligible), 0) AS retention_rate
FROM @extschema@.event_retention_d30 r
GROUP BY r.guild_id, date_trunc('month', r.event_day)::date, r.cohort;
COMMENT ON VIEW guildstats_mart.event_retention_d30 IS 'Do members who attend keep coming? Per guild, month of the member''s first event in the funnel and cohort (attended, absent: interested but not in voice, walk_in: in voice without interest): how many are still active 30 days or more after that event. Only members whose 30th day the data already reaches (eligible_members) are in the rate.';
COMMENT ON COLUMN guildstats_mart.event_retention_d30.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.event_retention_d30.month IS 'First day of the month of the members'' first event (guild time zone).';
COMMENT ON COLUMN guildstats_mart.event_retention_d30.cohort IS 'attended, absent or walk_in, at the member''s first event in the funnel.';
COMMENT ON COLUMN guildstats_mart.event_retention_d30.members IS 'Members in the cohort.';
COMMENT ON COLUMN guildstats_mart.event_retention_d30.eligible_members IS 'Of those, members whose 30th day after the event the data already reaches.';
COMMENT ON COLUMN guildstats_mart.event_retention_d30.retained IS 'Of the eligible, members active on the 30th day after their first event or later.';
COMMENT ON COLUMN guildstats_mart.event_retention_d30.retention_rate IS 'retained / eligible_members; empty without eligible members.';
CREATE VIEW guildstats_mart.voice_regular_groups AS
SELECT g.guild_id, r.group_id, r.user_id, coalesce(m.display_name, 'user ' || r.user_id) AS member_name, r.group_size
FROM (SELECT c.guild_id FROM @extschema@.voice_copresence_guilds c) g
CROSS JOIN LATERAL @extschema@.voice_regular_groups(g.guild_id) r
LEFT JOIN @extschema@.members m ON m.guild_id = g.guild_id AND m.user_id = r.user_id;
COMMENT ON VIEW guildstats_mart.voice_regular_groups IS 'Groups of regulars per guild: members linked by at least 60 shared voice minutes in the last 28 days (settings.regular_min_minutes, regular_window_days), directly or through each other. Count user_id by group_id for the size of each circle; members with no such partner are in no group.';
COMMENT ON COLUMN guildstats_mart.voice_regular_groups.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.voice_regular_groups.group_id IS 'The group: the smallest user id in it.';
COMMENT ON COLUMN guildstats_mart.voice_regular_groups.user_id IS 'Discord user id of a member of the group.';
COMMENT ON COLUMN guildstats_mart.voice_regular_groups.member_name IS 'The member''s latest display name, or "user <id>".';
COMMENT ON COLUMN guildstats_mart.voice_regular_groups.group_size IS 'Members in the group.';

-- ==== #11 chart speed: guild-level views for the voice and engagement charts ====
CREATE VIEW guildstats_mart.voice_daily AS
SELECT v.guild_id, v.day, date_trunc('week', v.day)::date AS week,
       v.active_seconds / 3600.0 AS voice_hours, v.afk_seconds / 3600.0 AS afk_hours, v.voice_users
FROM @extschema@.guild_voice_daily v;
COMMENT ON VIEW guildstats_mart.voice_daily IS 'Voice time per guild and calendar day (from the guild_voice_daily rollup): sum voice_hours by day or week for the guild''s voice time; voice_users counts the members in voice that day (summed over several days it counts member-days).';
COMMENT ON COLUMN guildstats_mart.voice_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.voice_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.voice_daily.week IS 'The Monday of the day''s week.';
COMMENT ON COLUMN guildstats_mart.voice_daily.voice_hours IS 'Hours in voice outside the AFK channel that day, summed over members.';
COMMENT ON COLUMN guildstats_mart.voice_daily.afk_hours IS 'Hours in the AFK channel that day, summed over members.';
COMMENT ON COLUMN guildstats_mart.voice_daily.voice_users IS 'Members with voice time that day.';

CREATE VIEW guildstats_mart.member_voice_monthly AS
SELECT v.guild_id, v.month, v.user_id, coalesce(m.display_name, 'user ' || v.user_id) AS member_name,
       v.active_seconds / 3600.0 AS voice_hours, v.afk_seconds / 3600.0 AS afk_hours
FROM @extschema@.member_voice_monthly v
LEFT JOIN @extschema@.members m ON m.guild_id = v.guild_id AND m.user_id = v.user_id;
COMMENT ON VIEW guildstats_mart.member_voice_monthly IS 'Voice time per member and calendar month (from the member_voice_monthly rollup): sum voice_hours by member_name for the top members by voice time. A time range picks whole months.';
COMMENT ON COLUMN guildstats_mart.member_voice_monthly.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.member_voice_monthly.month IS 'First day of the month in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.member_voice_monthly.user_id IS 'Discord user id.';
COMMENT ON COLUMN guildstats_mart.member_voice_monthly.member_name IS 'The member''s latest display name.';
COMMENT ON COLUMN guildstats_mart.member_voice_monthly.voice_hours IS 'Hours in voice outside the AFK channel that month.';
COMMENT ON COLUMN guildstats_mart.member_voice_monthly.afk_hours IS 'Hours in the AFK channel that month (not counted as active).';

CREATE VIEW guildstats_mart.engagement_levels_weekly AS
SELECT w.guild_id, w.week, w.engagement_level, w.members, w.voice_seconds / 3600.0 AS voice_hours,
       w.events_attended, w.voice_seconds / 3600.0 + w.events_attended AS engagement
FROM @extschema@.guild_engagement_weekly w;
COMMENT ON VIEW guildstats_mart.engagement_levels_weekly IS 'Engaged members per guild, week and engagement level (from the guild_engagement_weekly rollup, the counts of member_engagement_weekly): sum members by week for the engaged members, by engagement_level for the distribution, engagement for the guild''s weekly score.';
COMMENT ON COLUMN guildstats_mart.engagement_levels_weekly.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.engagement_levels_weekly.week IS 'The Monday the week starts on, in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.engagement_levels_weekly.engagement_level IS 'Level of the members'' weekly score (voice hours + events attended): "3 high (10+)", "2 medium (2-10)", "1 low (under 2)".';
COMMENT ON COLUMN guildstats_mart.engagement_levels_weekly.members IS 'Members at that level that week (member-weeks when summed over weeks).';
COMMENT ON COLUMN guildstats_mart.engagement_levels_weekly.voice_hours IS 'Their hours in voice (AFK excluded) that week.';
COMMENT ON COLUMN guildstats_mart.engagement_levels_weekly.events_attended IS 'Their scheduled events attended that week.';
COMMENT ON COLUMN guildstats_mart.engagement_levels_weekly.engagement IS 'voice_hours + events_attended: the sum of their engagement scores.';

CREATE VIEW guildstats_mart.member_engagement_monthly AS
SELECT e.guild_id, e.month, e.user_id, coalesce(m.display_name, 'user ' || e.user_id) AS member_name,
       e.engagement, e.score_change
FROM @extschema@.member_engagement_monthly e
LEFT JOIN @extschema@.members m ON m.guild_id = e.guild_id AND m.user_id = e.user_id;
COMMENT ON VIEW guildstats_mart.member_engagement_monthly IS 'Engagement per member and month (from the member_engagement_monthly rollup, the sums of member_engagement_weekly over the weeks starting in the month): sum score_change by member_name for rising and falling members. A time range picks whole months.';
COMMENT ON COLUMN guildstats_mart.member_engagement_monthly.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.member_engagement_monthly.month IS 'First day of the month the weeks start in, in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.member_engagement_monthly.user_id IS 'Discord user id.';
COMMENT ON COLUMN guildstats_mart.member_engagement_monthly.member_name IS 'The member''s latest display name.';
COMMENT ON COLUMN guildstats_mart.member_engagement_monthly.engagement IS 'The weekly engagement scores (voice hours + events attended) of those weeks, summed.';
COMMENT ON COLUMN guildstats_mart.member_engagement_monthly.score_change IS 'The weekly changes of the score against the week before, summed: positive for rising members, negative for falling ones.';
-- ==== end of #11 chart speed
