-- Daily, weekly and monthly rollups per member, in each guild's calendar time zone
-- (settings.calendar_time_zone), refreshed by build_rollups() from the first touched day on.

CREATE TABLE member_voice_daily (
    guild_id        bigint           NOT NULL,
    user_id         bigint           NOT NULL,
    day             date             NOT NULL,
    active_seconds  double precision NOT NULL,
    afk_seconds     double precision NOT NULL,
    PRIMARY KEY (guild_id, day, user_id)
);
COMMENT ON TABLE member_voice_daily IS
    'Voice time per member and calendar day in the guild''s time zone. A session over midnight is split between the days (DST days have 23 or 25 hours). Open sessions count up to the voice horizon.';
COMMENT ON COLUMN member_voice_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_voice_daily.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN member_voice_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN member_voice_daily.active_seconds IS 'Seconds in voice outside the AFK channel that day.';
COMMENT ON COLUMN member_voice_daily.afk_seconds IS 'Seconds in the AFK channel that day (never active).';
SELECT pg_catalog.pg_extension_config_dump('member_voice_daily', '');

CREATE TABLE member_engagement_weekly (
    guild_id             bigint           NOT NULL,
    user_id              bigint           NOT NULL,
    week                 date             NOT NULL,
    voice_seconds        double precision NOT NULL,
    events_attended      integer          NOT NULL,
    distinct_event_types integer          NOT NULL,
    PRIMARY KEY (guild_id, week, user_id)
);
COMMENT ON TABLE member_engagement_weekly IS
    'Engagement per member and calendar week (Monday to Sunday in the guild''s time zone): active voice time and scheduled events attended.';
COMMENT ON COLUMN member_engagement_weekly.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_engagement_weekly.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN member_engagement_weekly.week IS 'The Monday the week starts on, in settings.calendar_time_zone.';
COMMENT ON COLUMN member_engagement_weekly.voice_seconds IS 'Active voice seconds (AFK excluded) that week.';
COMMENT ON COLUMN member_engagement_weekly.events_attended IS 'Scheduled events that started that week and that the member attended.';
COMMENT ON COLUMN member_engagement_weekly.distinct_event_types IS 'Distinct kinds of those events (entity_type and name: a weekly Game night is one kind).';
SELECT pg_catalog.pg_extension_config_dump('member_engagement_weekly', '');

CREATE TABLE member_monthly_status (
    guild_id              bigint  NOT NULL,
    user_id               bigint  NOT NULL,
    month                 date    NOT NULL,
    was_active            boolean NOT NULL,
    active_by_voice       boolean NOT NULL,
    active_by_messages    boolean NOT NULL,
    active_by_attendance  boolean NOT NULL,
    PRIMARY KEY (guild_id, month, user_id)
);
COMMENT ON TABLE member_monthly_status IS
    'One row per member and calendar month from the month they were first seen (at the earliest the guild''s first month of voice or message data) until the month they left (or the guild''s latest month): whether they were active, and how.';
COMMENT ON COLUMN member_monthly_status.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_monthly_status.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN member_monthly_status.month IS 'First day of the calendar month in settings.calendar_time_zone.';
COMMENT ON COLUMN member_monthly_status.was_active IS 'Active by voice, messages or event attendance that month.';
COMMENT ON COLUMN member_monthly_status.active_by_voice IS 'Some active (non-AFK) voice time that month.';
COMMENT ON COLUMN member_monthly_status.active_by_messages IS 'At least one message that month.';
COMMENT ON COLUMN member_monthly_status.active_by_attendance IS 'Attended a scheduled event that started that month.';
SELECT pg_catalog.pg_extension_config_dump('member_monthly_status', '');

-- The guilds to refresh: voice sessions or attendance changed (voice_session_changes), new
-- messages, and every guild with members when starting over.
CREATE FUNCTION _build_rollups_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    message_ids  int8multirange := @extschema@._claimed(claims, 'raw_messages');
BEGIN
    IF _build_rollups_plan.full THEN
        TRUNCATE @extschema@.member_voice_daily, @extschema@.member_engagement_weekly,
                 @extschema@.member_monthly_status;
    END IF;
    RETURN jsonb_build_object('guilds', coalesce((SELECT jsonb_agg(DISTINCT c.guild_id ORDER BY c.guild_id) FROM (
        SELECT v.guild_id FROM @extschema@.voice_session_changes v WHERE v.consumer = 'build_rollups'
        UNION
        SELECT m.guild_id FROM @extschema@.raw_messages m
         WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1 AND m.ingest_id <@ message_ids
        UNION
        SELECT m.guild_id FROM @extschema@.members m WHERE _build_rollups_plan.full) c), '[]'));
END
$$;
COMMENT ON FUNCTION _build_rollups_plan(jsonb, boolean) IS
    'Internal: the plan of build_rollups (see guildstats.builders): empties the rollups on a full rebuild and lists the guilds to refresh.';

CREATE FUNCTION _build_rollups_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    message_ids   int8multirange := @extschema@._claimed(claims, 'raw_messages');
    g             record;
    n             bigint;
    tracked_since timestamptz;
    daily_rows    bigint;
    weekly_rows   bigint;
    monthly_rows  bigint;
BEGIN
    -- From the first touched day on, in the guild's calendar time zone, up to its voice horizon.
    SELECT c.guild_id, min(c.changed_from) AS changed_from, s.calendar_time_zone AS tz,
           coalesce(b.horizon, '-infinity') AS horizon
      INTO g
      FROM (SELECT v.guild_id, v.changed_from FROM @extschema@.voice_session_changes v
             WHERE v.consumer = 'build_rollups' AND v.guild_id = _build_rollups_step.guild
            UNION ALL
            SELECT m.guild_id, min(m.sent_at) FROM @extschema@.raw_messages m
             WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1
               AND m.ingest_id <@ message_ids AND m.guild_id = _build_rollups_step.guild
             GROUP BY m.guild_id
            UNION ALL
            SELECT m.guild_id, '-infinity' FROM @extschema@.members m
             WHERE _build_rollups_step.full AND m.guild_id = _build_rollups_step.guild
             GROUP BY m.guild_id) c
      CROSS JOIN LATERAL @extschema@.settings_for(c.guild_id) s
      LEFT JOIN @extschema@.voice_build_guilds b ON b.guild_id = c.guild_id
     GROUP BY c.guild_id, s.calendar_time_zone, b.horizon;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;


    -- Days from the first touched one.
    DELETE FROM @extschema@.member_voice_daily d
     WHERE d.guild_id = g.guild_id AND d.day >= (g.changed_from AT TIME ZONE g.tz)::date;
    INSERT INTO @extschema@.member_voice_daily (guild_id, user_id, day, active_seconds, afk_seconds)
    SELECT g.guild_id, p.user_id, p.day,
           coalesce(sum(p.seconds) FILTER (WHERE NOT p.is_afk), 0),
           coalesce(sum(p.seconds) FILTER (WHERE p.is_afk), 0)
    FROM (SELECT v.user_id, v.is_afk, d.day::date AS day,
                 extract(epoch FROM least(coalesce(v.ended_at, g.horizon), (d.day + interval '1 day') AT TIME ZONE g.tz)
                                    - greatest(v.started_at, d.day AT TIME ZONE g.tz))::double precision AS seconds
            FROM @extschema@.voice_sessions v
            CROSS JOIN LATERAL generate_series(
                greatest((v.started_at AT TIME ZONE g.tz)::date, (g.changed_from AT TIME ZONE g.tz)::date)::timestamp,
                (coalesce(v.ended_at, g.horizon) AT TIME ZONE g.tz)::date::timestamp,
                interval '1 day') AS d(day)
           WHERE v.guild_id = g.guild_id
             AND coalesce(v.ended_at, g.horizon) > ((g.changed_from AT TIME ZONE g.tz)::date::timestamp AT TIME ZONE g.tz)) p
    WHERE p.seconds > 0
    GROUP BY p.user_id, p.day;
    GET DIAGNOSTICS n = ROW_COUNT;
    daily_rows := n;

    -- Weeks from the week of the first touched day.
    DELETE FROM @extschema@.member_engagement_weekly w
     WHERE w.guild_id = g.guild_id
       AND w.week >= date_trunc('week', (g.changed_from AT TIME ZONE g.tz)::date)::date;
    INSERT INTO @extschema@.member_engagement_weekly (guild_id, user_id, week, voice_seconds,
                                                      events_attended, distinct_event_types)
    SELECT g.guild_id, x.user_id, x.week, sum(x.voice_seconds), sum(x.attended)::integer,
           count(DISTINCT x.event_kind)::integer
    FROM (SELECT d.user_id, date_trunc('week', d.day)::date AS week, d.active_seconds AS voice_seconds,
                 0 AS attended, NULL::text AS event_kind
            FROM @extschema@.member_voice_daily d
           WHERE d.guild_id = g.guild_id
             AND d.day >= date_trunc('week', (g.changed_from AT TIME ZONE g.tz)::date)::date
          UNION ALL
          SELECT a.user_id, date_trunc('week', (e.actual_start AT TIME ZONE g.tz)::date)::date, 0, 1,
                 e.entity_type || ':' || e.name
            FROM @extschema@.event_attendance a
            JOIN @extschema@.events e ON e.event_id = a.event_id
           WHERE a.guild_id = g.guild_id
             AND (e.actual_start AT TIME ZONE g.tz)::date
                 >= date_trunc('week', (g.changed_from AT TIME ZONE g.tz)::date)::date) x
    GROUP BY x.user_id, x.week
    HAVING sum(x.voice_seconds) > 0 OR sum(x.attended) > 0;
    GET DIAGNOSTICS n = ROW_COUNT;
    weekly_rows := n;

    -- Months from the month of the first touched day, for every member present then (and
    -- not before the guild's first voice event or message: earlier months have no data).
    SELECT least((SELECT min(e.event_ts) FROM @extschema@.raw_voice_events e WHERE e.guild_id = g.guild_id),
                 (SELECT min(r.sent_at) FROM @extschema@.raw_messages r WHERE r.guild_id = g.guild_id))
      INTO tracked_since;
    DELETE FROM @extschema@.member_monthly_status s
     WHERE s.guild_id = g.guild_id
       AND s.month >= date_trunc('month', (g.changed_from AT TIME ZONE g.tz)::date)::date;
    INSERT INTO @extschema@.member_monthly_status (guild_id, user_id, month, was_active, active_by_voice,
                                                   active_by_messages, active_by_attendance)
    SELECT g.guild_id, m.user_id, mo.month,
           coalesce(av.yes, false) OR coalesce(am.yes, false) OR coalesce(aa.yes, false),
           coalesce(av.yes, false), coalesce(am.yes, false), coalesce(aa.yes, false)
    FROM @extschema@.members m
    CROSS JOIN LATERAL (
        SELECT mo::date AS month
        FROM generate_series(
            greatest(date_trunc('month', (m.first_seen AT TIME ZONE g.tz)::date),
                     date_trunc('month', (g.changed_from AT TIME ZONE g.tz)::date),
                     date_trunc('month', (tracked_since AT TIME ZONE g.tz)::date)),
            date_trunc('month', (coalesce(m.left_at,
                                          (SELECT max(x.last_seen) FROM @extschema@.members x WHERE x.guild_id = g.guild_id))
                                 AT TIME ZONE g.tz)::date),
            interval '1 month') AS mo) mo
    LEFT JOIN LATERAL (
        SELECT true AS yes FROM @extschema@.member_voice_daily d
         WHERE d.guild_id = g.guild_id AND d.user_id = m.user_id AND d.active_seconds > 0
           AND d.day >= mo.month AND d.day < (mo.month + interval '1 month')::date
         LIMIT 1) av ON true
    LEFT JOIN LATERAL (
        SELECT true AS yes FROM @extschema@.raw_messages r
         WHERE r.guild_id = g.guild_id AND r.user_id = m.user_id
           AND r.sent_at >= (mo.month::timestamp AT TIME ZONE g.tz)
           AND r.sent_at < ((mo.month + interval '1 month')::timestamp AT TIME ZONE g.tz)
         LIMIT 1) am ON true
    LEFT JOIN LATERAL (
        SELECT true AS yes FROM @extschema@.event_attendance a
          JOIN @extschema@.events e ON e.event_id = a.event_id
         WHERE a.guild_id = g.guild_id AND a.user_id = m.user_id
           AND e.actual_start >= (mo.month::timestamp AT TIME ZONE g.tz)
           AND e.actual_start < ((mo.month + interval '1 month')::timestamp AT TIME ZONE g.tz)
         LIMIT 1) aa ON true
    WHERE m.guild_id = g.guild_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    monthly_rows := n;
    DELETE FROM @extschema@.voice_session_changes c
     WHERE c.consumer = 'build_rollups' AND c.guild_id = _build_rollups_step.guild;
    RETURN jsonb_build_object('guilds_refreshed', 1, 'daily_rows', daily_rows, 'weekly_rows', weekly_rows,
                              'monthly_rows', monthly_rows);
END
$$;
COMMENT ON FUNCTION _build_rollups_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_rollups (see guildstats.builders): refreshes one guild''s member_voice_daily, member_engagement_weekly and member_monthly_status from its first changed day on.';

CREATE FUNCTION build_rollups(full boolean DEFAULT false)
RETURNS TABLE (guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_rollups', $1))
        AS r(guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint,
             elapsed interval, status text)
$$;
COMMENT ON FUNCTION build_rollups(boolean) IS
    'Refreshes member_voice_daily, member_engagement_weekly and member_monthly_status from the first day that changed (voice sessions rewritten by build_voice_sessions(), attendance, new messages) on, per guild, in the guild''s calendar time zone. Returns one summary row; full => true starts over. build_all() runs it last.';
