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


-- The plan does what is not per guild, the step the rest. The plan: on a full rebuild empties
-- every rollup; adds the active days of the claimed rows (the steps' dashboards read them); the
-- server-poll and ingest-lag rollups, which carry no guild; and lists the guilds to refresh:
-- voice sessions rewritten (voice_session_changes), new messages, voice joins or point
-- transactions, and every guild with members when starting over.
CREATE FUNCTION _build_rollups_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    message_ids     int8multirange := @extschema@._claimed(claims, 'raw_messages');
    voice_event_ids int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    point_ids       int8multirange := @extschema@._claimed(claims, 'raw_point_transactions');
    poll_ids        int8multirange := @extschema@._claimed(claims, 'raw_server_polls');
BEGIN
    IF _build_rollups_plan.full THEN
        TRUNCATE @extschema@.member_voice_daily, @extschema@.member_engagement_weekly,
                 @extschema@.member_monthly_status, @extschema@.member_active_days,
                 @extschema@.guild_activity_daily, @extschema@.chat_channel_daily,
                 @extschema@.chat_activity_5min, @extschema@.guild_voice_hourly,
                 @extschema@.member_points_daily, @extschema@.economy_daily, @extschema@.member_point_balances,
                 @extschema@.guild_points_reason_daily, @extschema@.member_points_monthly, @extschema@.guild_monthly_status,
                 @extschema@.member_messages_daily, @extschema@.member_messages_monthly,
                 @extschema@.server_polls_hourly, @extschema@.ingest_lag_rollup;
    END IF;

    -- Active days only grow with new raw rows (erasure deletes the member's days with them).
    INSERT INTO @extschema@.member_active_days (guild_id, user_id, day)
    SELECT DISTINCT a.guild_id, a.user_id, (a.at AT TIME ZONE s.calendar_time_zone)::date
    FROM (SELECT e.guild_id, e.user_id, e.event_ts AS at FROM @extschema@.raw_voice_events e
           WHERE e.ingest_id BETWEEN lower(voice_event_ids) AND upper(voice_event_ids) - 1
             AND e.ingest_id <@ voice_event_ids AND e.channel_id IS NOT NULL
          UNION ALL
          SELECT m.guild_id, m.user_id, m.sent_at FROM @extschema@.raw_messages m
           WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1
             AND m.ingest_id <@ message_ids AND NOT m.is_bot
          UNION ALL
          SELECT t.guild_id, t.user_id, t.tx_ts FROM @extschema@.raw_point_transactions t
           WHERE t.ingest_id BETWEEN lower(point_ids) AND upper(point_ids) - 1
             AND t.ingest_id <@ point_ids) a
    CROSS JOIN LATERAL @extschema@.settings_for(a.guild_id) s
    ON CONFLICT DO NOTHING;

    PERFORM @extschema@._rollup_server_polls(poll_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_voice_events', 'event_ts', voice_event_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_messages', 'sent_at', message_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_point_transactions', 'tx_ts', point_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_server_polls', 'polled_at', poll_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_member_events', 'event_ts',
                                           @extschema@._claimed(claims, 'raw_member_events'));
    PERFORM @extschema@._rollup_ingest_lag('raw_heartbeats', 'beat_at',
                                           @extschema@._claimed(claims, 'raw_heartbeats'));
    PERFORM @extschema@._rollup_ingest_lag('raw_et_stats_files', 'fetched_at',
                                           @extschema@._claimed(claims, 'raw_et_stats_files'));

    RETURN jsonb_build_object('guilds', coalesce((SELECT jsonb_agg(c.guild_id ORDER BY c.guild_id) FROM (
        SELECT g.guild_id FROM @extschema@._build_rollups_changes(claims, _build_rollups_plan.full, NULL) g) c), '[]'));
END
$$;
COMMENT ON FUNCTION _build_rollups_plan(jsonb, boolean) IS
    'Internal: the plan of build_rollups (see guildstats.builders): empties the rollups on a full rebuild, adds the claimed rows'' active days and the server-poll and ingest-lag rollups, and lists the guilds to refresh.';

-- Per guild, the first instant each kind of input changed from: voice sessions rewritten, new
-- messages, new active days (voice joins, messages, points), new point transactions.
CREATE FUNCTION _build_rollups_changes(claims jsonb, full boolean, guild bigint)
RETURNS TABLE (guild_id bigint, changed_from timestamptz, voice_from timestamptz, messages_from timestamptz,
               active_from timestamptz, points_from timestamptz, tz text, horizon timestamptz)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    message_ids     int8multirange := @extschema@._claimed(claims, 'raw_messages');
    voice_event_ids int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    point_ids       int8multirange := @extschema@._claimed(claims, 'raw_point_transactions');
BEGIN
    RETURN QUERY
        SELECT c.guild_id,
               min(c.changed_from) FILTER (WHERE c.kind IN ('voice', 'messages', 'full')),
               min(c.changed_from) FILTER (WHERE c.kind IN ('voice', 'full')),
               min(c.changed_from) FILTER (WHERE c.kind IN ('messages', 'full')),
               min(c.changed_from) FILTER (WHERE c.kind IN ('voice_events', 'messages', 'points', 'full')),
               min(c.changed_from) FILTER (WHERE c.kind IN ('points', 'full')),
               s.calendar_time_zone, coalesce(b.horizon, '-infinity')
        FROM (SELECT v.guild_id, v.changed_from, 'voice' AS kind FROM @extschema@.voice_session_changes v
               WHERE v.consumer = 'build_rollups'
              UNION ALL
              SELECT m.guild_id, min(m.sent_at), 'messages' FROM @extschema@.raw_messages m
               WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1
                 AND m.ingest_id <@ message_ids
               GROUP BY m.guild_id
              UNION ALL
              SELECT e.guild_id, min(e.event_ts), 'voice_events' FROM @extschema@.raw_voice_events e
               WHERE e.ingest_id BETWEEN lower(voice_event_ids) AND upper(voice_event_ids) - 1
                 AND e.ingest_id <@ voice_event_ids AND e.channel_id IS NOT NULL
               GROUP BY e.guild_id
              UNION ALL
              SELECT t.guild_id, min(t.tx_ts), 'points' FROM @extschema@.raw_point_transactions t
               WHERE t.ingest_id BETWEEN lower(point_ids) AND upper(point_ids) - 1
                 AND t.ingest_id <@ point_ids
               GROUP BY t.guild_id
              UNION ALL
              SELECT m.guild_id, '-infinity', 'full' FROM @extschema@.members m WHERE _build_rollups_changes.full
              GROUP BY m.guild_id) c
        CROSS JOIN LATERAL @extschema@.settings_for(c.guild_id) s
        LEFT JOIN @extschema@.voice_build_guilds b ON b.guild_id = c.guild_id
        WHERE _build_rollups_changes.guild IS NULL OR c.guild_id = _build_rollups_changes.guild
        GROUP BY c.guild_id, s.calendar_time_zone, b.horizon
        ORDER BY c.guild_id;
END
$$;
COMMENT ON FUNCTION _build_rollups_changes(jsonb, boolean, bigint) IS
    'Internal to build_rollups: per guild (every guild when guild is NULL), the first instant each kind of input changed from in this run, with its calendar time zone and voice horizon.';

CREATE FUNCTION _build_rollups_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g             record;
    n             bigint;
    tracked_since timestamptz;
    daily_rows    bigint := 0;
    weekly_rows   bigint := 0;
    monthly_rows  bigint := 0;
BEGIN
    SELECT * INTO g FROM @extschema@._build_rollups_changes(claims, _build_rollups_step.full, guild) c;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;

    -- The member rollups, when voice sessions or messages changed.
    IF g.changed_from IS NOT NULL THEN

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
        DELETE FROM @extschema@.guild_monthly_status s
         WHERE s.guild_id = g.guild_id
           AND s.month >= date_trunc('month', (g.changed_from AT TIME ZONE g.tz)::date)::date;
        INSERT INTO @extschema@.guild_monthly_status (guild_id, month, was_active, is_new, members)
        SELECT g.guild_id, s.month, s.was_active,
               s.month = (SELECT min(x.month) FROM @extschema@.member_monthly_status x
                           WHERE x.guild_id = g.guild_id AND x.user_id = s.user_id),
               count(*)
        FROM @extschema@.member_monthly_status s
        WHERE s.guild_id = g.guild_id
          AND s.month >= date_trunc('month', (g.changed_from AT TIME ZONE g.tz)::date)::date
        GROUP BY 2, 3, 4;
    END IF;

    PERFORM @extschema@._rollup_dashboards(g.guild_id, g.tz, g.horizon, g.voice_from, g.messages_from,
                                           g.active_from, g.points_from);
    PERFORM @extschema@._rollup_charts(g.guild_id, g.tz, g.changed_from, g.active_from);
    DELETE FROM @extschema@.voice_session_changes c
     WHERE c.consumer = 'build_rollups' AND c.guild_id = _build_rollups_step.guild;
    RETURN jsonb_build_object('guilds_refreshed', 1, 'daily_rows', daily_rows, 'weekly_rows', weekly_rows,
                              'monthly_rows', monthly_rows);
END
$$;
COMMENT ON FUNCTION _build_rollups_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_rollups (see guildstats.builders): refreshes one guild''s member rollups (member_voice_daily, member_engagement_weekly, member_monthly_status with its counts in guild_monthly_status), dashboard rollups and chart rollups (_rollup_charts) from the first instant each of their inputs changed on.';

CREATE FUNCTION build_rollups(full boolean DEFAULT false)
RETURNS TABLE (guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_rollups', $1))
        AS r(guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint,
             elapsed interval, status text)
$$;
COMMENT ON FUNCTION build_rollups(boolean) IS
    'Refreshes member_voice_daily, member_engagement_weekly and member_monthly_status from the first day that changed (voice sessions rewritten by build_voice_sessions(), attendance, new messages) on, per guild, in the guild''s calendar time zone. Returns one summary row; full => true starts over. Also keeps the dashboard rollups the BI mart reads (member_active_days, guild_activity_daily, chat_channel_daily, chat_activity_5min, guild_voice_hourly, member_points_daily, economy_daily, server_polls_hourly, ingest_lag_rollup) and the message counts /top messages reads (member_messages_daily, member_messages_monthly). build_all() runs it last.';

-- Dashboard rollups: what the BI mart (guildstats_mart) reads instead of rescanning raw rows.
-- build_rollups() keeps them, each from the first day (or hour) that new raw rows or rewritten
-- voice sessions touched on, like the rollups above.

CREATE TABLE member_active_days (
    guild_id  bigint NOT NULL,
    user_id   bigint NOT NULL,
    day       date   NOT NULL,
    PRIMARY KEY (guild_id, user_id, day)
);
CREATE INDEX member_active_days_day_idx ON member_active_days (guild_id, day);
COMMENT ON TABLE member_active_days IS
    'The calendar days (guild time zone) on which a member showed activity: a voice join or move, a message (bots excluded) or a point transaction, as activity_events without member events. The input of guild_activity_daily; a late raw row adds its day.';
COMMENT ON COLUMN member_active_days.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_active_days.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN member_active_days.day IS 'Calendar day in settings.calendar_time_zone.';
SELECT pg_catalog.pg_extension_config_dump('member_active_days', '');

CREATE TABLE guild_activity_daily (
    guild_id         bigint           NOT NULL,
    day              date             NOT NULL,
    dau              bigint           NOT NULL,
    wau              bigint           NOT NULL,
    mau              bigint           NOT NULL,
    new_users        bigint           NOT NULL,
    returning_users  bigint           NOT NULL,
    d1_retained      bigint           NOT NULL,
    d7_retained      bigint           NOT NULL,
    d30_retained     bigint           NOT NULL,
    messages         bigint           NOT NULL,
    voice_hours      double precision NOT NULL,
    PRIMARY KEY (guild_id, day)
);
COMMENT ON TABLE guild_activity_daily IS
    'Per guild and calendar day, from its first to its last day with activity (member_active_days): active users over 1, 7 and 30 days, new and returning users, how many of the day''s new users came back 1, 7 and 30 days later, messages and voice hours. Counts, no member: erase_member() leaves them, and the next rebuild of those days recounts without the member.';
COMMENT ON COLUMN guild_activity_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN guild_activity_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN guild_activity_daily.dau IS 'Users active that day.';
COMMENT ON COLUMN guild_activity_daily.wau IS 'Users active in the 7 days ending that day.';
COMMENT ON COLUMN guild_activity_daily.mau IS 'Users active in the 30 days ending that day.';
COMMENT ON COLUMN guild_activity_daily.new_users IS 'Users whose first active day was that day (the day''s cohort).';
COMMENT ON COLUMN guild_activity_daily.returning_users IS 'Users active that day who had been active before.';
COMMENT ON COLUMN guild_activity_daily.d1_retained IS 'Of the day''s new users, those active again exactly 1 day later.';
COMMENT ON COLUMN guild_activity_daily.d7_retained IS 'Of the day''s new users, those active again exactly 7 days later.';
COMMENT ON COLUMN guild_activity_daily.d30_retained IS 'Of the day''s new users, those active again exactly 30 days later.';
COMMENT ON COLUMN guild_activity_daily.messages IS 'Messages that day, bots excluded (from chat_channel_daily).';
COMMENT ON COLUMN guild_activity_daily.voice_hours IS 'Active voice hours that day, summed over members (from member_voice_daily).';
SELECT pg_catalog.pg_extension_config_dump('guild_activity_daily', '');

CREATE TABLE chat_channel_daily (
    guild_id          bigint NOT NULL,
    day               date   NOT NULL,
    channel_id        bigint NOT NULL,
    messages          bigint NOT NULL,
    authors           bigint NOT NULL,
    characters        bigint NOT NULL,
    with_attachments  bigint NOT NULL,
    replies           bigint NOT NULL,
    PRIMARY KEY (guild_id, day, channel_id)
);
COMMENT ON TABLE chat_channel_daily IS
    'Chat per guild, calendar day (guild time zone) and channel, bots excluded: the rows of chat_activity_daily, kept by build_rollups().';
COMMENT ON COLUMN chat_channel_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN chat_channel_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN chat_channel_daily.channel_id IS 'Discord channel snowflake.';
COMMENT ON COLUMN chat_channel_daily.messages IS 'Messages.';
COMMENT ON COLUMN chat_channel_daily.authors IS 'Distinct authors.';
COMMENT ON COLUMN chat_channel_daily.characters IS 'Characters written.';
COMMENT ON COLUMN chat_channel_daily.with_attachments IS 'Messages with attachments.';
COMMENT ON COLUMN chat_channel_daily.replies IS 'Replies.';
SELECT pg_catalog.pg_extension_config_dump('chat_channel_daily', '');

CREATE TABLE chat_activity_5min (
    guild_id      bigint      NOT NULL,
    window_start  timestamptz NOT NULL,
    messages      bigint      NOT NULL,
    authors       bigint      NOT NULL,
    PRIMARY KEY (guild_id, window_start)
);
COMMENT ON TABLE chat_activity_5min IS
    'Messages per guild and 5-minute window (UTC-aligned), bots excluded, for live operations panels.';
COMMENT ON COLUMN chat_activity_5min.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN chat_activity_5min.window_start IS 'Start of the 5-minute window.';
COMMENT ON COLUMN chat_activity_5min.messages IS 'Messages in the window.';
COMMENT ON COLUMN chat_activity_5min.authors IS 'Distinct authors in the window.';
SELECT pg_catalog.pg_extension_config_dump('chat_activity_5min', '');

CREATE TABLE guild_voice_hourly (
    guild_id     bigint           NOT NULL,
    hour_start   timestamptz      NOT NULL,
    voice_hours  double precision NOT NULL,
    voice_users  bigint           NOT NULL,
    PRIMARY KEY (guild_id, hour_start)
);
COMMENT ON TABLE guild_voice_hourly IS
    'Voice time per guild and hour (AFK excluded, open sessions up to the voice horizon), cut from voice_sessions.';
COMMENT ON COLUMN guild_voice_hourly.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN guild_voice_hourly.hour_start IS 'Start of the hour.';
COMMENT ON COLUMN guild_voice_hourly.voice_hours IS 'Hours in voice within that hour, summed over members.';
COMMENT ON COLUMN guild_voice_hourly.voice_users IS 'Members in voice at some point of that hour.';
SELECT pg_catalog.pg_extension_config_dump('guild_voice_hourly', '');

CREATE TABLE member_points_daily (
    guild_id      bigint NOT NULL,
    day           date   NOT NULL,
    user_id       bigint NOT NULL,
    reason        text   NOT NULL,
    earned        bigint NOT NULL,
    spent         bigint NOT NULL,
    transactions  bigint NOT NULL,
    PRIMARY KEY (guild_id, day, user_id, reason)
);
COMMENT ON TABLE member_points_daily IS
    'Point flows per member, calendar day (guild time zone) and reason, from raw_point_transactions.';
COMMENT ON COLUMN member_points_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_points_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN member_points_daily.user_id IS 'Discord user snowflake of the holder.';
COMMENT ON COLUMN member_points_daily.reason IS 'The transactions'' reason as sent (may be empty).';
COMMENT ON COLUMN member_points_daily.earned IS 'Points earned (positive amounts).';
COMMENT ON COLUMN member_points_daily.spent IS 'Points spent (negative amounts, as a positive number).';
COMMENT ON COLUMN member_points_daily.transactions IS 'Transactions.';
SELECT pg_catalog.pg_extension_config_dump('member_points_daily', '');

CREATE TABLE economy_daily (
    guild_id            bigint           NOT NULL,
    day                 date             NOT NULL,
    circulation         bigint           NOT NULL,
    earned              bigint           NOT NULL,
    spent               bigint           NOT NULL,
    net                 bigint           NOT NULL,
    accounts            bigint           NOT NULL,
    users_with_points   bigint           NOT NULL,
    median_balance      double precision,
    top1_share          double precision,
    gini                double precision,
    inflation           double precision,
    negative_streak     integer          NOT NULL,
    alert_inflation     boolean          NOT NULL,
    alert_net_negative  boolean          NOT NULL,
    alert_gini          boolean          NOT NULL,
    alerts              text[]           NOT NULL,
    PRIMARY KEY (guild_id, day)
);
COMMENT ON TABLE economy_daily IS
    'The rows of economy_health() per guild and calendar day, from the first to the last day with point transactions, kept by build_rollups() from the first day new transactions touched on.';
COMMENT ON COLUMN economy_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN economy_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN economy_daily.circulation IS 'Sum of all balances at the end of the day.';
COMMENT ON COLUMN economy_daily.earned IS 'Points earned that day.';
COMMENT ON COLUMN economy_daily.spent IS 'Points spent that day (a positive number).';
COMMENT ON COLUMN economy_daily.net IS 'earned - spent.';
COMMENT ON COLUMN economy_daily.accounts IS 'Users with any transaction so far.';
COMMENT ON COLUMN economy_daily.users_with_points IS 'Users with a positive balance.';
COMMENT ON COLUMN economy_daily.median_balance IS 'Median balance over accounts.';
COMMENT ON COLUMN economy_daily.top1_share IS 'Share of all points held by the richest 1 % of accounts.';
COMMENT ON COLUMN economy_daily.gini IS 'Gini coefficient of balances.';
COMMENT ON COLUMN economy_daily.inflation IS 'Change of circulation against the day before.';
COMMENT ON COLUMN economy_daily.negative_streak IS 'Days in a row, up to this one, with net < 0.';
COMMENT ON COLUMN economy_daily.alert_inflation IS 'Inflation above 10 % that day.';
COMMENT ON COLUMN economy_daily.alert_net_negative IS 'Net negative 3 or more days in a row.';
COMMENT ON COLUMN economy_daily.alert_gini IS 'Gini above 0.7.';
COMMENT ON COLUMN economy_daily.alerts IS 'The alerts raised that day.';
SELECT pg_catalog.pg_extension_config_dump('economy_daily', '');

CREATE TABLE server_polls_hourly (
    server            text             NOT NULL,
    hour              timestamptz      NOT NULL,
    polls             bigint           NOT NULL,
    ok_polls          bigint           NOT NULL,
    player_sum        bigint           NOT NULL,
    player_polls      bigint           NOT NULL,
    max_players_seen  integer,
    slots             integer,
    utilization_sum   double precision NOT NULL,
    utilization_polls bigint           NOT NULL,
    PRIMARY KEY (server, hour)
);
COMMENT ON TABLE server_polls_hourly IS
    'Game-server polls per server and hour (UTC), as sums that new polls add to: the input of server_activity_hourly''s numbers in the mart. Community-wide (no guild).';
COMMENT ON COLUMN server_polls_hourly.server IS 'The polled address, host:port.';
COMMENT ON COLUMN server_polls_hourly.hour IS 'Start of the hour.';
COMMENT ON COLUMN server_polls_hourly.polls IS 'Polls.';
COMMENT ON COLUMN server_polls_hourly.ok_polls IS 'Polls answered.';
COMMENT ON COLUMN server_polls_hourly.player_sum IS 'Players reported, summed over answered polls that report them.';
COMMENT ON COLUMN server_polls_hourly.player_polls IS 'Answered polls that report a player count.';
COMMENT ON COLUMN server_polls_hourly.max_players_seen IS 'Most players an answered poll reported.';
COMMENT ON COLUMN server_polls_hourly.slots IS 'Most player slots an answered poll reported.';
COMMENT ON COLUMN server_polls_hourly.utilization_sum IS 'players / slots summed over answered polls that report both (slots > 0).';
COMMENT ON COLUMN server_polls_hourly.utilization_polls IS 'Answered polls that report both players and slots (slots > 0).';
SELECT pg_catalog.pg_extension_config_dump('server_polls_hourly', '');

CREATE TABLE ingest_lag_rollup (
    source_table     text             NOT NULL,
    hour             timestamptz      NOT NULL,
    rows             bigint           NOT NULL,
    avg_lag_seconds  double precision NOT NULL,
    p95_lag_seconds  double precision NOT NULL,
    max_lag_seconds  double precision NOT NULL,
    PRIMARY KEY (source_table, hour)
);
COMMENT ON TABLE ingest_lag_rollup IS
    'The rows of the view ingest_lag_hourly (lag from event to storage per raw table and hour of event time), kept by build_rollups() for the hours new raw rows fall in. Community-wide (no guild).';
COMMENT ON COLUMN ingest_lag_rollup.source_table IS 'The raw table.';
COMMENT ON COLUMN ingest_lag_rollup.hour IS 'Hour of the events.';
COMMENT ON COLUMN ingest_lag_rollup.rows IS 'Rows of that hour.';
COMMENT ON COLUMN ingest_lag_rollup.avg_lag_seconds IS 'Average seconds from the event to its row being stored.';
COMMENT ON COLUMN ingest_lag_rollup.p95_lag_seconds IS '95th percentile of that lag, seconds.';
COMMENT ON COLUMN ingest_lag_rollup.max_lag_seconds IS 'Largest lag, seconds.';
SELECT pg_catalog.pg_extension_config_dump('ingest_lag_rollup', '');

CREATE TABLE guild_monthly_status (
    guild_id    bigint  NOT NULL,
    month       date    NOT NULL,
    was_active  boolean NOT NULL,
    is_new      boolean NOT NULL,
    members     bigint  NOT NULL,
    PRIMARY KEY (guild_id, month, was_active, is_new)
);
COMMENT ON TABLE guild_monthly_status IS
    'Members per guild and calendar month, active or not, in their first month or from earlier months, counted from member_monthly_status: what the active vs inactive and new vs earlier charts read instead of every member''s months.';
COMMENT ON COLUMN guild_monthly_status.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN guild_monthly_status.month IS 'First day of the calendar month in settings.calendar_time_zone.';
COMMENT ON COLUMN guild_monthly_status.was_active IS 'Active by voice, messages or event attendance that month.';
COMMENT ON COLUMN guild_monthly_status.is_new IS 'The month is the member''s first in member_monthly_status.';
COMMENT ON COLUMN guild_monthly_status.members IS 'Members.';
SELECT pg_catalog.pg_extension_config_dump('guild_monthly_status', '');
-- A member's first month, one step down this index instead of a scan of their months.
CREATE INDEX member_monthly_status_user_idx ON member_monthly_status (guild_id, user_id, month);

CREATE TABLE guild_points_reason_daily (
    guild_id      bigint NOT NULL,
    day           date   NOT NULL,
    reason        text   NOT NULL,
    earned        bigint NOT NULL,
    spent         bigint NOT NULL,
    transactions  bigint NOT NULL,
    PRIMARY KEY (guild_id, day, reason)
);
COMMENT ON TABLE guild_points_reason_daily IS
    'Point flows per guild, calendar day (guild time zone) and reason, summed from member_points_daily: what the earn vs spend by type chart reads instead of every member''s rows.';
COMMENT ON COLUMN guild_points_reason_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN guild_points_reason_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN guild_points_reason_daily.reason IS 'The transactions'' reason as sent (may be empty).';
COMMENT ON COLUMN guild_points_reason_daily.earned IS 'Points earned (positive amounts).';
COMMENT ON COLUMN guild_points_reason_daily.spent IS 'Points spent (negative amounts, as a positive number).';
COMMENT ON COLUMN guild_points_reason_daily.transactions IS 'Transactions.';
SELECT pg_catalog.pg_extension_config_dump('guild_points_reason_daily', '');

CREATE TABLE member_points_monthly (
    guild_id      bigint NOT NULL,
    month         date   NOT NULL,
    user_id       bigint NOT NULL,
    earned        bigint NOT NULL,
    spent         bigint NOT NULL,
    transactions  bigint NOT NULL,
    PRIMARY KEY (guild_id, month, user_id)
);
COMMENT ON TABLE member_points_monthly IS
    'Point flows per member and calendar month (guild time zone), all reasons together, summed from member_points_daily: what the top earners and spenders charts read instead of every member''s days.';
COMMENT ON COLUMN member_points_monthly.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_points_monthly.month IS 'First day of the calendar month in settings.calendar_time_zone.';
COMMENT ON COLUMN member_points_monthly.user_id IS 'Discord user snowflake of the holder.';
COMMENT ON COLUMN member_points_monthly.earned IS 'Points earned (positive amounts).';
COMMENT ON COLUMN member_points_monthly.spent IS 'Points spent (negative amounts, as a positive number).';
COMMENT ON COLUMN member_points_monthly.transactions IS 'Transactions.';
SELECT pg_catalog.pg_extension_config_dump('member_points_monthly', '');

CREATE TABLE member_messages_daily (
    guild_id  bigint NOT NULL,
    day       date   NOT NULL,
    user_id   bigint NOT NULL,
    messages  bigint NOT NULL,
    PRIMARY KEY (guild_id, day, user_id)
);
COMMENT ON TABLE member_messages_daily IS
    'Messages per member and calendar day (guild time zone), bots excluded, kept by build_rollups(): only the raw_messages rows it has processed (build_progress), so that command_top adds the others from the raw table without counting any twice.';
COMMENT ON COLUMN member_messages_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_messages_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN member_messages_daily.user_id IS 'Discord user snowflake of the author.';
COMMENT ON COLUMN member_messages_daily.messages IS 'Messages written that day.';
SELECT pg_catalog.pg_extension_config_dump('member_messages_daily', '');

CREATE TABLE member_messages_monthly (
    guild_id  bigint NOT NULL,
    month     date   NOT NULL,
    user_id   bigint NOT NULL,
    messages  bigint NOT NULL,
    PRIMARY KEY (guild_id, month, user_id)
);
COMMENT ON TABLE member_messages_monthly IS
    'Messages per member and calendar month (guild time zone), summed from member_messages_daily: what /top messages reads for the whole months of a period instead of every day.';
COMMENT ON COLUMN member_messages_monthly.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_messages_monthly.month IS 'First day of the calendar month in settings.calendar_time_zone.';
COMMENT ON COLUMN member_messages_monthly.user_id IS 'Discord user snowflake of the author.';
COMMENT ON COLUMN member_messages_monthly.messages IS 'Messages written that month.';
SELECT pg_catalog.pg_extension_config_dump('member_messages_monthly', '');

CREATE TABLE member_point_balances (
    guild_id   bigint NOT NULL,
    user_id    bigint NOT NULL,
    balance    bigint NOT NULL,
    first_day  date   NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
COMMENT ON TABLE member_point_balances IS
    'Every point account''s balance at the end of the last day economy_daily holds for its guild, kept by build_rollups() so that an incremental build walks the economy on from there instead of summing the whole ledger again. Internal state of the builder.';
COMMENT ON COLUMN member_point_balances.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_point_balances.user_id IS 'Discord user snowflake of the holder.';
COMMENT ON COLUMN member_point_balances.balance IS 'Sum of the holder''s transactions up to the end of that day (may be negative).';
COMMENT ON COLUMN member_point_balances.first_day IS 'Calendar day (guild time zone) of the holder''s first transaction.';
SELECT pg_catalog.pg_extension_config_dump('member_point_balances', '');

CREATE FUNCTION _add_point_balances(guild_id bigint, from_day date, to_day date)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO @extschema@.member_point_balances AS b (guild_id, user_id, balance, first_day)
    SELECT p.guild_id, p.user_id, sum(p.earned - p.spent)::bigint, min(p.day)
    FROM @extschema@.member_points_daily p
    WHERE p.guild_id = _add_point_balances.guild_id AND p.day BETWEEN _add_point_balances.from_day AND _add_point_balances.to_day
    GROUP BY p.guild_id, p.user_id
    ON CONFLICT ON CONSTRAINT member_point_balances_pkey
    DO UPDATE SET balance = b.balance + excluded.balance, first_day = least(b.first_day, excluded.first_day);
END;
COMMENT ON FUNCTION _add_point_balances(bigint, date, date) IS
    'Internal to build_rollups(): adds the flows of member_points_daily from from_day to to_day to member_point_balances.';

CREATE FUNCTION _rollup_dashboards(guild_id bigint, tz text, horizon timestamptz, voice_from timestamptz,
                                   messages_from timestamptz, active_from timestamptz, points_from timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g         bigint := _rollup_dashboards.guild_id;
    day_from  date;
    day_start timestamptz;
    from_hour timestamptz;
    first_day date;
    last_day  date;
    lo        date;
    built_to  date;
    streak    integer;
    done_through bigint;
    done_pending int8multirange;
BEGIN
    -- Chat per channel and day, and per 5 minutes, from the first day with new messages.
    IF messages_from IS NOT NULL THEN
        day_from := (messages_from AT TIME ZONE tz)::date;
        day_start := day_from::timestamp AT TIME ZONE tz;
        DELETE FROM @extschema@.chat_channel_daily c WHERE c.guild_id = g AND c.day >= day_from;
        INSERT INTO @extschema@.chat_channel_daily (guild_id, day, channel_id, messages, authors, characters,
                                                    with_attachments, replies)
        SELECT g, (m.sent_at AT TIME ZONE tz)::date, m.channel_id, count(*), count(DISTINCT m.user_id),
               coalesce(sum(m.char_count), 0), count(*) FILTER (WHERE m.attachment_count > 0),
               count(*) FILTER (WHERE m.is_reply)
        FROM @extschema@.raw_messages m
        WHERE m.guild_id = g AND NOT m.is_bot AND m.sent_at >= day_start
        GROUP BY 2, 3;
        -- Messages per member and day, then month, for /top messages: of the processed rows
        -- only (see member_messages_daily), the rest being command_top's raw tail.
        SELECT p.processed_through, p.pending_ids INTO done_through, done_pending
          FROM @extschema@.build_progress p
         WHERE p.builder = 'build_rollups' AND p.source_table = 'raw_messages';
        DELETE FROM @extschema@.member_messages_daily d WHERE d.guild_id = g AND d.day >= day_from;
        INSERT INTO @extschema@.member_messages_daily (guild_id, day, user_id, messages)
        SELECT g, (m.sent_at AT TIME ZONE tz)::date, m.user_id, count(*)
        FROM @extschema@.raw_messages m
        WHERE m.guild_id = g AND NOT m.is_bot AND m.sent_at >= day_start
          AND m.ingest_id <= coalesce(done_through, 0)
          AND NOT (m.ingest_id BETWEEN lower(done_pending) AND upper(done_pending) - 1
                   AND m.ingest_id <@ done_pending)
        GROUP BY 2, 3;
        DELETE FROM @extschema@.member_messages_monthly d
         WHERE d.guild_id = g AND d.month >= date_trunc('month', day_from)::date;
        INSERT INTO @extschema@.member_messages_monthly (guild_id, month, user_id, messages)
        SELECT g, date_trunc('month', d.day)::date, d.user_id, sum(d.messages)
        FROM @extschema@.member_messages_daily d
        WHERE d.guild_id = g AND d.day >= date_trunc('month', day_from)::date
        GROUP BY 2, 3;
        IF isfinite(day_start) THEN
            day_start := date_bin(interval '5 minutes', day_start, timestamptz '2000-01-01 00:00+00');
        END IF;
        DELETE FROM @extschema@.chat_activity_5min c WHERE c.guild_id = g AND c.window_start >= day_start;
        INSERT INTO @extschema@.chat_activity_5min (guild_id, window_start, messages, authors)
        SELECT g, date_bin(interval '5 minutes', m.sent_at, timestamptz '2000-01-01 00:00+00'), count(*),
               count(DISTINCT m.user_id)
        FROM @extschema@.raw_messages m
        WHERE m.guild_id = g AND NOT m.is_bot AND m.sent_at >= day_start
        GROUP BY 2;
    END IF;

    -- Voice per hour from the first hour rewritten sessions overlap.
    IF voice_from IS NOT NULL THEN
        from_hour := date_trunc('hour', voice_from, 'UTC');
        DELETE FROM @extschema@.guild_voice_hourly v WHERE v.guild_id = g AND v.hour_start >= from_hour;
        INSERT INTO @extschema@.guild_voice_hourly (guild_id, hour_start, voice_hours, voice_users)
        SELECT g, h.hour_start,
               (sum(extract(epoch FROM least(coalesce(v.ended_at, horizon), h.hour_start + interval '1 hour')
                                     - greatest(v.started_at, h.hour_start))) / 3600)::double precision,
               count(DISTINCT v.user_id)
        FROM @extschema@.voice_sessions v
        CROSS JOIN LATERAL generate_series(greatest(date_trunc('hour', v.started_at, 'UTC'), from_hour),
                                           coalesce(v.ended_at, horizon) - interval '1 microsecond',
                                           interval '1 hour') AS h(hour_start)
        WHERE v.guild_id = g AND NOT v.is_afk AND coalesce(v.ended_at, horizon) > v.started_at
          AND coalesce(v.ended_at, horizon) > from_hour
        GROUP BY h.hour_start;
    END IF;

    -- Active users per day. A new active day changes that day's DAU, the WAU and MAU of the
    -- 30 days after it, and the D1/D7/D30 counts of the cohorts up to 30 days before it.
    IF coalesce(active_from, voice_from, messages_from) IS NOT NULL THEN
        SELECT min(a.day), max(a.day) INTO first_day, last_day
          FROM @extschema@.member_active_days a WHERE a.guild_id = g;
        IF first_day IS NULL THEN
            DELETE FROM @extschema@.guild_activity_daily d WHERE d.guild_id = g;
        ELSE
            lo := greatest(first_day,
                           least(greatest((active_from AT TIME ZONE tz)::date, first_day) - 30,
                                 (voice_from AT TIME ZONE tz)::date, (messages_from AT TIME ZONE tz)::date));
            DELETE FROM @extschema@.guild_activity_daily d WHERE d.guild_id = g AND d.day >= lo;
            INSERT INTO @extschema@.guild_activity_daily (guild_id, day, dau, wau, mau, new_users, returning_users,
                                                          d1_retained, d7_retained, d30_retained, messages, voice_hours)
            WITH act AS (
                SELECT a.user_id, a.day, lead(a.day) OVER (PARTITION BY a.user_id ORDER BY a.day) AS next_day
                FROM @extschema@.member_active_days a
                WHERE a.guild_id = g AND a.day >= lo - 30),
            firsts AS (
                SELECT f.user_id, f.first_day
                FROM (SELECT u.user_id,
                             (SELECT min(x.day) FROM @extschema@.member_active_days x
                               WHERE x.guild_id = g AND x.user_id = u.user_id) AS first_day
                      FROM (SELECT DISTINCT a.user_id FROM act a WHERE a.day >= lo) u) f
                WHERE f.first_day >= lo),
            cohorts AS (
                SELECT f.first_day AS day, count(*) AS new_users,
                       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM @extschema@.member_active_days x
                                                       WHERE x.guild_id = g AND x.user_id = f.user_id AND x.day = f.first_day + 1)) AS d1,
                       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM @extschema@.member_active_days x
                                                       WHERE x.guild_id = g AND x.user_id = f.user_id AND x.day = f.first_day + 7)) AS d7,
                       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM @extschema@.member_active_days x
                                                       WHERE x.guild_id = g AND x.user_id = f.user_id AND x.day = f.first_day + 30)) AS d30
                FROM firsts f GROUP BY f.first_day),
            -- Each active day opens the interval [day, min(day + width, next active day)) in which
            -- the user counts in the window ending on a day: running sums of +1 / -1 marks.
            marks AS (
                SELECT a.day, 1 AS dau, 1 AS wau, 1 AS mau FROM act a
                UNION ALL SELECT least(a.day + 7, coalesce(a.next_day, a.day + 7)), 0, -1, 0 FROM act a
                UNION ALL SELECT least(a.day + 30, coalesce(a.next_day, a.day + 30)), 0, 0, -1 FROM act a),
            per_day AS (
                SELECT m.day, sum(m.dau) AS dau, sum(m.wau) AS wau, sum(m.mau) AS mau FROM marks m GROUP BY m.day),
            running AS (
                SELECT d::date AS day, coalesce(p.dau, 0) AS dau,
                       sum(coalesce(p.wau, 0)) OVER w AS wau, sum(coalesce(p.mau, 0)) OVER w AS mau
                FROM generate_series((lo - 30)::timestamp, last_day::timestamp, interval '1 day') AS d
                LEFT JOIN per_day p ON p.day = d::date
                WINDOW w AS (ORDER BY d)),
            chat AS (
                SELECT c.day, sum(c.messages) AS messages FROM @extschema@.chat_channel_daily c
                WHERE c.guild_id = g AND c.day >= lo GROUP BY c.day),
            voice AS (
                SELECT v.day, sum(v.active_seconds) / 3600.0 AS hours FROM @extschema@.member_voice_daily v
                WHERE v.guild_id = g AND v.day >= lo GROUP BY v.day)
            SELECT g, r.day, r.dau, r.wau, r.mau, coalesce(c.new_users, 0), r.dau - coalesce(c.new_users, 0),
                   coalesce(c.d1, 0), coalesce(c.d7, 0), coalesce(c.d30, 0),
                   coalesce(ch.messages, 0), coalesce(v.hours, 0)
            FROM running r
            LEFT JOIN cohorts c ON c.day = r.day
            LEFT JOIN chat ch ON ch.day = r.day
            LEFT JOIN voice v ON v.day = r.day
            WHERE r.day >= lo;
        END IF;
    END IF;

    -- Point flows and the economy from the first day with new transactions (and from the day
    -- after the last one built, so that quiet days between count too). The walk picks up from
    -- member_point_balances, the balances at the end of the last day built: first taken back
    -- to the day before the rewrite with the flows the rollup held, so that a build reads only
    -- the days it rewrites, not the whole ledger.
    IF points_from IS NOT NULL THEN
        SELECT (min(t.tx_ts) AT TIME ZONE tz)::date, (max(t.tx_ts) AT TIME ZONE tz)::date INTO first_day, last_day
          FROM @extschema@.raw_point_transactions t WHERE t.guild_id = g;
        SELECT max(e.day) INTO built_to FROM @extschema@.economy_daily e WHERE e.guild_id = g;
        IF built_to IS NULL OR NOT EXISTS (SELECT 1 FROM @extschema@.member_point_balances b WHERE b.guild_id = g) THEN
            -- Nothing to take back from: the balances start over from the flows before lo.
            DELETE FROM @extschema@.member_point_balances b WHERE b.guild_id = g;
            built_to := '-infinity';
        END IF;
        day_from := (points_from AT TIME ZONE tz)::date;
        lo := greatest(least(day_from, built_to + 1), first_day);
        IF built_to >= lo THEN
            UPDATE @extschema@.member_point_balances b SET balance = b.balance - x.net
              FROM (SELECT p.user_id, sum(p.earned - p.spent)::bigint AS net FROM @extschema@.member_points_daily p
                     WHERE p.guild_id = g AND p.day BETWEEN lo AND built_to GROUP BY p.user_id) x
             WHERE b.guild_id = g AND b.user_id = x.user_id;
            DELETE FROM @extschema@.member_point_balances b WHERE b.guild_id = g AND b.first_day >= lo;
        ELSIF built_to < lo - 1 THEN
            PERFORM @extschema@._add_point_balances(g, built_to + 1, lo - 1);
        END IF;

        DELETE FROM @extschema@.member_points_daily p WHERE p.guild_id = g AND p.day >= day_from;
        INSERT INTO @extschema@.member_points_daily (guild_id, day, user_id, reason, earned, spent, transactions)
        SELECT g, (t.tx_ts AT TIME ZONE tz)::date, t.user_id, t.reason,
               coalesce(sum(t.amount) FILTER (WHERE t.amount > 0), 0),
               coalesce(-sum(t.amount) FILTER (WHERE t.amount < 0), 0), count(*)
        FROM @extschema@.raw_point_transactions t
        WHERE t.guild_id = g AND t.tx_ts >= (day_from::timestamp AT TIME ZONE tz)
        GROUP BY 2, 3, 4;
        DELETE FROM @extschema@.guild_points_reason_daily r WHERE r.guild_id = g AND r.day >= day_from;
        INSERT INTO @extschema@.guild_points_reason_daily (guild_id, day, reason, earned, spent, transactions)
        SELECT g, p.day, p.reason, sum(p.earned), sum(p.spent), sum(p.transactions)
        FROM @extschema@.member_points_daily p
        WHERE p.guild_id = g AND p.day >= day_from
        GROUP BY p.day, p.reason;
        DELETE FROM @extschema@.member_points_monthly m
         WHERE m.guild_id = g AND m.month >= date_trunc('month', day_from)::date;
        INSERT INTO @extschema@.member_points_monthly (guild_id, month, user_id, earned, spent, transactions)
        SELECT g, date_trunc('month', p.day)::date, p.user_id, sum(p.earned), sum(p.spent), sum(p.transactions)
        FROM @extschema@.member_points_daily p
        WHERE p.guild_id = g AND p.day >= date_trunc('month', day_from)::date
        GROUP BY 2, 3;

        IF lo IS NULL THEN
            -- No transaction left (all erased, or opted out on arrival).
            DELETE FROM @extschema@.economy_daily e WHERE e.guild_id = g;
            DELETE FROM @extschema@.member_point_balances b WHERE b.guild_id = g;
        ELSE
            SELECT e.negative_streak INTO streak FROM @extschema@.economy_daily e WHERE e.guild_id = g AND e.day = lo - 1;
            DELETE FROM @extschema@.economy_daily e WHERE e.guild_id = g AND e.day >= lo;
            INSERT INTO @extschema@.economy_daily
            SELECT g, h.* FROM @extschema@._economy_health_continued(g, lo, last_day, coalesce(streak, 0)) h;
            PERFORM @extschema@._add_point_balances(g, lo, last_day);
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION _rollup_dashboards(bigint, text, timestamptz, timestamptz, timestamptz, timestamptz, timestamptz) IS
    'Internal to build_rollups(): refreshes one guild''s dashboard rollups (chat_channel_daily, chat_activity_5min, guild_voice_hourly, guild_activity_daily, member_points_daily, guild_points_reason_daily, member_points_monthly, economy_daily with member_point_balances, member_messages_daily, member_messages_monthly) from the first instant each input changed (NULL: unchanged), in the guild''s time zone tz, open voice sessions counted up to horizon.';

CREATE FUNCTION _rollup_server_polls(poll_ids int8multirange)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO @extschema@.server_polls_hourly AS h (server, hour, polls, ok_polls, player_sum, player_polls,
                                                      max_players_seen, slots, utilization_sum, utilization_polls)
    SELECT p.server, date_trunc('hour', p.polled_at, 'UTC'), count(*), count(*) FILTER (WHERE p.ok),
           coalesce(sum(p.player_count) FILTER (WHERE p.ok), 0), count(p.player_count) FILTER (WHERE p.ok),
           max(p.player_count) FILTER (WHERE p.ok), max(p.max_players) FILTER (WHERE p.ok),
           coalesce(sum(p.player_count::double precision / nullif(p.max_players, 0)) FILTER (WHERE p.ok), 0),
           count(p.player_count::double precision / nullif(p.max_players, 0)) FILTER (WHERE p.ok)
    FROM @extschema@.raw_server_polls p
    WHERE p.ingest_id BETWEEN lower(_rollup_server_polls.poll_ids) AND upper(_rollup_server_polls.poll_ids) - 1
      AND p.ingest_id <@ _rollup_server_polls.poll_ids
    GROUP BY 1, 2
    ON CONFLICT (server, hour) DO UPDATE
       SET polls = h.polls + excluded.polls,
           ok_polls = h.ok_polls + excluded.ok_polls,
           player_sum = h.player_sum + excluded.player_sum,
           player_polls = h.player_polls + excluded.player_polls,
           max_players_seen = greatest(h.max_players_seen, excluded.max_players_seen),
           slots = greatest(h.slots, excluded.slots),
           utilization_sum = h.utilization_sum + excluded.utilization_sum,
           utilization_polls = h.utilization_polls + excluded.utilization_polls;
END;
COMMENT ON FUNCTION _rollup_server_polls(int8multirange) IS
    'Internal to build_rollups(): adds the polls of the claimed ingest ids to server_polls_hourly (every column is a sum or a maximum, so new polls add to their hour).';

-- A percentile does not add up, so the hours new rows fall in are recounted from the raw
-- table. The time indexes of the raw tables lead with guild_id: the rows are read guild by
-- guild (the guilds found by skipping through the index), plus the rows of no guild.
CREATE FUNCTION _rollup_ingest_lag(source_table text, time_column text, claim int8multirange)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    from_hour timestamptz;
    guild_indexed boolean := _rollup_ingest_lag.source_table IN
        ('raw_voice_events', 'raw_messages', 'raw_point_transactions', 'raw_heartbeats');
    rows_sql text;
BEGIN
    EXECUTE format('SELECT date_trunc(''hour'', min(t.%I), ''UTC'') FROM @extschema@.%I t
                     WHERE t.ingest_id BETWEEN lower($1) AND upper($1) - 1 AND t.ingest_id <@ $1',
                   time_column, source_table)
       INTO from_hour USING claim;
    IF from_hour IS NULL THEN
        RETURN;
    END IF;
    IF guild_indexed THEN
        rows_sql := format(
            'WITH RECURSIVE guilds AS (
                 SELECT (SELECT min(t.guild_id) FROM @extschema@.%1$I t) AS guild_id
                 UNION ALL
                 SELECT (SELECT min(t.guild_id) FROM @extschema@.%1$I t WHERE t.guild_id > g.guild_id)
                 FROM guilds g WHERE g.guild_id IS NOT NULL)
             SELECT x.at, x.received_at FROM guilds g
             CROSS JOIN LATERAL (SELECT t.%2$I AS at, t.received_at FROM @extschema@.%1$I t
                                  WHERE t.guild_id = g.guild_id AND t.%2$I >= $1) x
             UNION ALL
             SELECT t.%2$I, t.received_at FROM @extschema@.%1$I t WHERE t.guild_id IS NULL AND t.%2$I >= $1',
            source_table, time_column);
    ELSE
        rows_sql := format('SELECT t.%2$I AS at, t.received_at FROM @extschema@.%1$I t WHERE t.%2$I >= $1',
                           source_table, time_column);
    END IF;
    DELETE FROM @extschema@.ingest_lag_rollup l
     WHERE l.source_table = _rollup_ingest_lag.source_table AND l.hour >= from_hour;
    EXECUTE format(
        'INSERT INTO @extschema@.ingest_lag_rollup (source_table, hour, rows, avg_lag_seconds, p95_lag_seconds, max_lag_seconds)
         SELECT %L, date_trunc(''hour'', r.at, ''UTC''), count(*),
                avg(extract(epoch FROM r.received_at - r.at))::double precision,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.received_at - r.at)),
                max(extract(epoch FROM r.received_at - r.at))::double precision
         FROM (%s) r GROUP BY 2', source_table, rows_sql)
       USING from_hour;
END
$$;
COMMENT ON FUNCTION _rollup_ingest_lag(text, text, int8multirange) IS
    'Internal to build_rollups(): recounts ingest_lag_rollup for one raw table (its event-time column time_column) from the hour of the earliest of the claimed ingest ids on.';

-- ==== #11 chart speed: guild-level rollups for the voice, engagement and cohort charts ====
-- The voice, engagement and cohort charts read these small tables instead of every member's
-- days, weeks or months. _rollup_charts() keeps them from the member rollups above, from the
-- first day, week or month that changed; build_rollups() runs it after the member rollups.

CREATE TABLE guild_voice_daily (
    guild_id        bigint           NOT NULL,
    day             date             NOT NULL,
    active_seconds  double precision NOT NULL,
    afk_seconds     double precision NOT NULL,
    voice_users     bigint           NOT NULL,
    PRIMARY KEY (guild_id, day)
);
COMMENT ON TABLE guild_voice_daily IS
    'Voice time per guild and calendar day (guild time zone), summed from member_voice_daily: what the voice-per-day and per-week charts read instead of every member''s days.';
COMMENT ON COLUMN guild_voice_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN guild_voice_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN guild_voice_daily.active_seconds IS 'Seconds in voice outside the AFK channel that day, summed over members.';
COMMENT ON COLUMN guild_voice_daily.afk_seconds IS 'Seconds in the AFK channel that day, summed over members.';
COMMENT ON COLUMN guild_voice_daily.voice_users IS 'Members with any voice time that day (rows of member_voice_daily).';
SELECT pg_catalog.pg_extension_config_dump('guild_voice_daily', '');

CREATE TABLE member_voice_monthly (
    guild_id        bigint           NOT NULL,
    month           date             NOT NULL,
    user_id         bigint           NOT NULL,
    active_seconds  double precision NOT NULL,
    afk_seconds     double precision NOT NULL,
    PRIMARY KEY (guild_id, month, user_id)
);
COMMENT ON TABLE member_voice_monthly IS
    'Voice time per member and calendar month (guild time zone), summed from member_voice_daily: what the top members by voice time chart reads (a month of rows per member instead of a day).';
COMMENT ON COLUMN member_voice_monthly.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_voice_monthly.month IS 'First day of the calendar month in settings.calendar_time_zone.';
COMMENT ON COLUMN member_voice_monthly.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN member_voice_monthly.active_seconds IS 'Seconds in voice outside the AFK channel that month.';
COMMENT ON COLUMN member_voice_monthly.afk_seconds IS 'Seconds in the AFK channel that month.';
SELECT pg_catalog.pg_extension_config_dump('member_voice_monthly', '');

CREATE TABLE guild_engagement_weekly (
    guild_id          bigint           NOT NULL,
    week              date             NOT NULL,
    engagement_level  text             NOT NULL,
    members           bigint           NOT NULL,
    voice_seconds     double precision NOT NULL,
    events_attended   bigint           NOT NULL,
    PRIMARY KEY (guild_id, week, engagement_level)
);
COMMENT ON TABLE guild_engagement_weekly IS
    'Engaged members per guild, calendar week and engagement level (a member''s voice hours plus events attended that week: "3 high (10+)", "2 medium (2-10)", "1 low (under 2)"), counted from member_engagement_weekly: what the weekly engagement and engagement levels charts read.';
COMMENT ON COLUMN guild_engagement_weekly.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN guild_engagement_weekly.week IS 'The Monday the week starts on, in settings.calendar_time_zone.';
COMMENT ON COLUMN guild_engagement_weekly.engagement_level IS 'The level of the members'' weekly score, as guildstats_mart.member_engagement_weekly.engagement_level.';
COMMENT ON COLUMN guild_engagement_weekly.members IS 'Members at that level that week (rows of member_engagement_weekly).';
COMMENT ON COLUMN guild_engagement_weekly.voice_seconds IS 'Their active voice seconds that week, summed.';
COMMENT ON COLUMN guild_engagement_weekly.events_attended IS 'Their events attended that week, summed.';
SELECT pg_catalog.pg_extension_config_dump('guild_engagement_weekly', '');

CREATE TABLE member_engagement_monthly (
    guild_id      bigint           NOT NULL,
    month         date             NOT NULL,
    user_id       bigint           NOT NULL,
    engagement    double precision NOT NULL,
    score_change  double precision NOT NULL,
    PRIMARY KEY (guild_id, month, user_id)
);
COMMENT ON TABLE member_engagement_monthly IS
    'Engagement per member and calendar month of the weeks'' Mondays (guild time zone), summed from member_engagement_weekly: the weekly scores (voice hours plus events attended) and their changes against the week before, for the rising and falling members charts (a month of rows per member instead of a week, without a join to the week before).';
COMMENT ON COLUMN member_engagement_monthly.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_engagement_monthly.month IS 'First day of the calendar month the weeks start in, in settings.calendar_time_zone.';
COMMENT ON COLUMN member_engagement_monthly.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN member_engagement_monthly.engagement IS 'The member''s weekly scores (voice hours + events attended) of those weeks, summed.';
COMMENT ON COLUMN member_engagement_monthly.score_change IS 'Each of those weeks'' score minus the week before''s (0 when inactive then), summed.';
SELECT pg_catalog.pg_extension_config_dump('member_engagement_monthly', '');

CREATE TABLE guild_retention_cohorts (
    guild_id           bigint NOT NULL,
    period             text   NOT NULL CHECK (period IN ('week', 'month')),
    cohort_by          text   NOT NULL CHECK (cohort_by IN ('first_activity', 'join')),
    cohort_start       date   NOT NULL,
    period_offset      integer NOT NULL,
    cohort_size        bigint NOT NULL,
    retained           bigint NOT NULL,
    retained_or_later  bigint NOT NULL,
    PRIMARY KEY (guild_id, period, cohort_by, cohort_start, period_offset)
);
COMMENT ON TABLE guild_retention_cohorts IS
    'Retention cohort tables per guild, as retention_rows() gives them: weekly cohorts by first activity (from member_active_days, kept from the first changed week on), monthly cohorts by first activity and by join month (from member_monthly_status, recounted when its months are rewritten). What guildstats_mart.retention_cohorts reads instead of aggregating every member''s days.';
COMMENT ON COLUMN guild_retention_cohorts.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN guild_retention_cohorts.period IS 'week or month (calendar, guild time zone).';
COMMENT ON COLUMN guild_retention_cohorts.cohort_by IS 'first_activity or join (monthly only).';
COMMENT ON COLUMN guild_retention_cohorts.cohort_start IS 'First day of the cohort''s week or month.';
COMMENT ON COLUMN guild_retention_cohorts.period_offset IS 'Periods after the cohort period (0 = the cohort period), up to the last period with activity and at most 365.';
COMMENT ON COLUMN guild_retention_cohorts.cohort_size IS 'Users in the cohort.';
COMMENT ON COLUMN guild_retention_cohorts.retained IS 'Cohort users active in exactly that period.';
COMMENT ON COLUMN guild_retention_cohorts.retained_or_later IS 'Cohort users active in that period or any later one.';
SELECT pg_catalog.pg_extension_config_dump('guild_retention_cohorts', '');

CREATE FUNCTION _rollup_charts(guild_id bigint, tz text, changed_from timestamptz, active_from timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g         bigint := _rollup_charts.guild_id;
    day_from  date;
    week_from date;
    first_tracked date;
BEGIN
    -- From the member rollups build_rollups() has just rewritten from changed_from's day on.
    IF changed_from IS NOT NULL THEN
        day_from := (changed_from AT TIME ZONE tz)::date;
        DELETE FROM @extschema@.guild_voice_daily v WHERE v.guild_id = g AND v.day >= day_from;
        INSERT INTO @extschema@.guild_voice_daily (guild_id, day, active_seconds, afk_seconds, voice_users)
        SELECT g, d.day, sum(d.active_seconds), sum(d.afk_seconds), count(*)
        FROM @extschema@.member_voice_daily d
        WHERE d.guild_id = g AND d.day >= day_from
        GROUP BY d.day;

        DELETE FROM @extschema@.member_voice_monthly v
         WHERE v.guild_id = g AND v.month >= date_trunc('month', day_from)::date;
        INSERT INTO @extschema@.member_voice_monthly (guild_id, month, user_id, active_seconds, afk_seconds)
        SELECT g, date_trunc('month', d.day)::date, d.user_id, sum(d.active_seconds), sum(d.afk_seconds)
        FROM @extschema@.member_voice_daily d
        WHERE d.guild_id = g AND d.day >= date_trunc('month', day_from)::date
        GROUP BY 2, 3;

        DELETE FROM @extschema@.guild_engagement_weekly w
         WHERE w.guild_id = g AND w.week >= date_trunc('week', day_from)::date;
        INSERT INTO @extschema@.guild_engagement_weekly (guild_id, week, engagement_level, members,
                                                         voice_seconds, events_attended)
        SELECT g, w.week,
               CASE WHEN w.voice_seconds / 3600.0 + w.events_attended >= 10 THEN '3 high (10+)'
                    WHEN w.voice_seconds / 3600.0 + w.events_attended >= 2 THEN '2 medium (2-10)'
                    ELSE '1 low (under 2)' END,
               count(*), sum(w.voice_seconds), sum(w.events_attended)
        FROM @extschema@.member_engagement_weekly w
        WHERE w.guild_id = g AND w.week >= date_trunc('week', day_from)::date
        GROUP BY 2, 3;

        -- From the month of the first rewritten week: a month's weeks need the week before it.
        DELETE FROM @extschema@.member_engagement_monthly e
         WHERE e.guild_id = g AND e.month >= date_trunc('month', date_trunc('week', day_from))::date;
        INSERT INTO @extschema@.member_engagement_monthly (guild_id, month, user_id, engagement, score_change)
        SELECT g, date_trunc('month', w.week)::date, w.user_id,
               sum(w.voice_seconds / 3600.0 + w.events_attended),
               sum(w.voice_seconds / 3600.0 + w.events_attended
                   - coalesce(p.voice_seconds / 3600.0 + p.events_attended, 0))
        FROM @extschema@.member_engagement_weekly w
        LEFT JOIN @extschema@.member_engagement_weekly p
               ON p.guild_id = g AND p.user_id = w.user_id AND p.week = w.week - 7
        WHERE w.guild_id = g AND w.week >= date_trunc('month', date_trunc('week', day_from))::date
        GROUP BY 2, 3;

        -- Monthly cohorts: a year is a dozen months, and a rewrite of member_monthly_status (all
        -- of this month's members) already costs more than recounting them whole.
        DELETE FROM @extschema@.guild_retention_cohorts c WHERE c.guild_id = g AND c.period = 'month';
        SELECT min(y.month) INTO first_tracked FROM @extschema@.member_monthly_status y WHERE y.guild_id = g;
        INSERT INTO @extschema@.guild_retention_cohorts (guild_id, period, cohort_by, cohort_start, period_offset,
                                                         cohort_size, retained, retained_or_later)
        SELECT g, 'month', c.cohort_by, r.cohort_start, r.period_offset, r.cohort_size, r.retained, r.retained_or_later
        FROM (VALUES ('first_activity'), ('join')) AS c(cohort_by)
        CROSS JOIN LATERAL (
            SELECT @extschema@.retention_agg(x.user_id,
                                             CASE WHEN c.cohort_by = 'join' THEN jm.join_month::timestamp END,
                                             CASE WHEN x.was_active THEN x.month::timestamp END, 'month') AS state
            FROM @extschema@.member_monthly_status x
            JOIN (SELECT m.user_id,
                         date_trunc('month', (coalesce(m.joined_at, m.first_seen) AT TIME ZONE tz))::date AS join_month
                    FROM @extschema@.members m WHERE m.guild_id = g) jm ON jm.user_id = x.user_id
            WHERE x.guild_id = g AND (x.was_active OR c.cohort_by = 'join')
              -- Discord reports the original join date of members from before tracking began:
              -- those joins have no activity to follow, so join cohorts start with the first
              -- tracked month.
              AND (c.cohort_by = 'first_activity' OR jm.join_month >= first_tracked)) a
        CROSS JOIN LATERAL @extschema@.retention_rows(a.state) r;
    END IF;

    -- Weekly cohorts by first activity, from the week of the first new active day on: the
    -- cells of earlier weeks keep their counts (nobody gains or loses activity in them), the
    -- later ones are counted again over the members active since then.
    IF active_from IS NOT NULL THEN
        week_from := date_trunc('week', (active_from AT TIME ZONE tz)::date)::date;
        DELETE FROM @extschema@.guild_retention_cohorts c
         WHERE c.guild_id = g AND c.period = 'week' AND c.cohort_by = 'first_activity'
           AND c.cohort_start + 7 * c.period_offset >= week_from;
        INSERT INTO @extschema@.guild_retention_cohorts (guild_id, period, cohort_by, cohort_start, period_offset,
                                                         cohort_size, retained, retained_or_later)
        WITH act AS (
            SELECT DISTINCT a.user_id, date_trunc('week', a.day)::date AS week
            FROM @extschema@.member_active_days a
            WHERE a.guild_id = g AND a.day >= week_from),
        users AS (
            -- A member's cohort: the week of their first active day, one step down the
            -- (guild_id, user_id, day) key.
            SELECT a.user_id, max(a.week) AS last_week,
                   (SELECT date_trunc('week', min(x.day))::date FROM @extschema@.member_active_days x
                     WHERE x.guild_id = g AND x.user_id = a.user_id) AS cohort
            FROM act a GROUP BY a.user_id),
        cohorts AS (
            -- Earlier cohorts keep their size (every member of theirs was active before week_from).
            SELECT c.cohort_start, c.cohort_size FROM @extschema@.guild_retention_cohorts c
             WHERE c.guild_id = g AND c.period = 'week' AND c.cohort_by = 'first_activity' AND c.period_offset = 0
            UNION ALL
            SELECT u.cohort, count(*) FROM users u WHERE u.cohort >= week_from GROUP BY u.cohort),
        cells AS (
            SELECT c.cohort_start, c.cohort_size, w.week::date AS week
            FROM cohorts c
            CROSS JOIN (SELECT max(u.last_week) AS last_week FROM users u) l
            CROSS JOIN LATERAL generate_series(greatest(c.cohort_start, week_from)::timestamp,
                                               least(l.last_week, c.cohort_start + 7 * 365)::timestamp,
                                               interval '1 week') AS w(week)),
        retained AS (
            SELECT u.cohort, a.week, count(*) AS n FROM act a JOIN users u ON u.user_id = a.user_id GROUP BY 1, 2),
        lasts AS (
            SELECT u.cohort, u.last_week, count(*) AS n FROM users u GROUP BY 1, 2)
        SELECT g, 'week', 'first_activity', c.cohort_start, (c.week - c.cohort_start) / 7, c.cohort_size,
               coalesce(r.n, 0),
               coalesce((SELECT sum(l.n) FROM lasts l WHERE l.cohort = c.cohort_start AND l.last_week >= c.week), 0)
        FROM cells c
        LEFT JOIN retained r ON r.cohort = c.cohort_start AND r.week = c.week;
    END IF;
END
$$;
COMMENT ON FUNCTION _rollup_charts(bigint, text, timestamptz, timestamptz) IS
    'Internal to build_rollups(): refreshes one guild''s chart rollups (guild_voice_daily, member_voice_monthly, guild_engagement_weekly, member_engagement_monthly and the monthly cohorts of guild_retention_cohorts from the member rollups, from changed_from''s day, month or week on; the weekly cohorts by first activity from member_active_days, from active_from''s week on), in the guild''s time zone tz.';
-- ==== end of #11 chart speed
