-- Retention: cohorts of users by first activity or by join date, and who comes back in each
-- later day, week or month (in the guild's calendar time zone).
--
-- Underneath is one aggregate over any (user, cohort time, activity time) input,
-- retention_agg(), whose concrete state type has a combine function (parallel plans,
-- storable, rollup()). activity_events is the default input until core tables exist.

CREATE VIEW activity_events AS
SELECT guild_id, user_id, event_ts AS activity_at, 'voice'::text AS kind
FROM @extschema@.raw_voice_events WHERE channel_id IS NOT NULL
UNION ALL
SELECT guild_id, user_id, sent_at, 'message' FROM @extschema@.raw_messages WHERE NOT is_bot
UNION ALL
SELECT guild_id, user_id, tx_ts, 'points' FROM @extschema@.raw_point_transactions
UNION ALL
SELECT guild_id, user_id, event_ts, 'member' FROM @extschema@.raw_member_events
WHERE event_type IN ('join', 'update') AND NOT is_bot;
COMMENT ON VIEW activity_events IS
    'Every sign of life of a user, from the raw tables: voice joins and moves (kind voice), messages by non-bots (message), point transactions (points), member joins and profile updates of non-bots (member). Columns: guild_id, user_id, activity_at, kind. The input of retention() and the activity metrics, which leave out kind member by default (a join is not engagement, and Discord reports the original join date of members who joined before tracking began).';

-- retention_state, retention_agg() and rollup(retention_state) are declared with their C
-- functions by state_aggregate! in extension/src/retention.rs.

CREATE FUNCTION retention_rows(state retention_state, max_offset integer DEFAULT 365)
RETURNS TABLE (cohort_start date, cohort_size bigint, period_offset integer, retained bigint,
               rate double precision, retained_or_later bigint, rate_or_later double precision)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT * FROM @extschema@._retention_rows(state::bytea, max_offset) $$;
COMMENT ON FUNCTION retention_rows(retention_state, integer) IS
    'The cohort table of a retention state: one row per cohort and period offset (0 = the cohort period) up to the last period with any activity in the state, and at most max_offset (default 365; 0 to 36525, else an error). retained: users active in exactly that period; retained_or_later: active in that period or any later one (also later than max_offset); rates are shares of cohort_size. A table of more than 10,000,000 rows is an error, raised before any row. Example: SELECT r.* FROM (SELECT guildstats.retention_agg(1, NULL, now()::timestamp, ''day'') s) a, guildstats.retention_rows(a.s, 30) r;';
COMMENT ON FUNCTION _retention_rows(bytea, integer) IS
    'Internal: retention_rows() over the state''s binary form, which it checks.';

-- The date_trunc unit of a period as retention_agg() reads it (day, week or month, with the
-- plural and -ly spellings), or NULL.
CREATE FUNCTION _period_unit(period text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE lower(btrim(period))
               WHEN 'day' THEN 'day' WHEN 'days' THEN 'day' WHEN 'daily' THEN 'day'
               WHEN 'week' THEN 'week' WHEN 'weeks' THEN 'week' WHEN 'weekly' THEN 'week'
               WHEN 'month' THEN 'month' WHEN 'months' THEN 'month' WHEN 'monthly' THEN 'month'
           END
$$;
COMMENT ON FUNCTION _period_unit(text) IS
    'Internal: the date_trunc unit (day, week, month) of a retention period as retention_agg() accepts it (day, days, daily, week, ...), or NULL for anything else.';

-- How much a member did in each period, by one measure (see retention()): one row per member
-- and period with the local time of their first activity in it and the amount. A row per
-- period rather than per event keeps the threshold exact under parallel plans: it is applied
-- after every partial sum is in.
CREATE FUNCTION _retention_activity(guild_id bigint, activity text, kinds text[], tz text, unit text)
RETURNS TABLE (user_id bigint, first_at timestamp, amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT m.user_id, min(m.at), sum(m.amount)
    FROM (SELECT e.user_id, e.activity_at AT TIME ZONE _retention_activity.tz AS at, 1::numeric AS amount
          FROM @extschema@.activity_events e
          WHERE _retention_activity.activity = 'events' AND e.guild_id = _retention_activity.guild_id
            AND (CASE WHEN _retention_activity.kinds IS NULL THEN e.kind <> 'member'
                      ELSE e.kind = ANY (_retention_activity.kinds) END)
          UNION ALL
          -- Voice time is already split at midnight in the guild's calendar (member_voice_daily).
          SELECT d.user_id, d.day::timestamp, (d.active_seconds / 60)::numeric
          FROM @extschema@.member_voice_daily d
          WHERE _retention_activity.activity = 'voice_minutes' AND d.guild_id = _retention_activity.guild_id
            AND d.active_seconds > 0
          UNION ALL
          SELECT r.user_id, r.saved_at, 1
          FROM (SELECT DISTINCT l.user_id, p.round_id, x.saved_at
                FROM @extschema@.et_guid_links l
                JOIN @extschema@.et_player_rounds p ON p.guid = l.guid AND NOT p.is_bot
                JOIN @extschema@.et_rounds x ON x.round_id = p.round_id
                WHERE _retention_activity.activity = 'rounds'
                  AND l.guild_id = _retention_activity.guild_id) r) m
    GROUP BY m.user_id, date_trunc(_retention_activity.unit, m.at)
$$;
COMMENT ON FUNCTION _retention_activity(bigint, text, text[], text, text) IS
    'Internal: per member and period (unit: day, week or month, as date_trunc takes them) of a guild, the local time of the first activity and the amount of activity (events of the kinds, voice minutes or ET:Legacy rounds; see retention()).';

CREATE FUNCTION retention(guild_id bigint, period text DEFAULT 'week',
                          cohort_by text DEFAULT 'first_activity', kinds text[] DEFAULT NULL,
                          max_offset integer DEFAULT 365, min_activity numeric DEFAULT NULL,
                          activity text DEFAULT 'events')
RETURNS TABLE (cohort_start date, cohort_size bigint, period_offset integer, retained bigint,
               rate double precision, retained_or_later bigint, rate_or_later double precision)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(retention.guild_id) s);
    unit text := @extschema@._period_unit(retention.period);
BEGIN
    IF retention.cohort_by IS DISTINCT FROM 'first_activity' AND retention.cohort_by IS DISTINCT FROM 'join' THEN
        RAISE EXCEPTION 'retention: cohort_by must be first_activity or join, got %', retention.cohort_by
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention.activity IS NULL OR retention.activity NOT IN ('events', 'voice_minutes', 'rounds') THEN
        RAISE EXCEPTION 'retention: activity must be events, voice_minutes or rounds, got %', coalesce(retention.activity, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention.kinds IS NOT NULL AND retention.activity <> 'events' THEN
        RAISE EXCEPTION 'retention: kinds % only applies to activity events, not %', retention.kinds, retention.activity
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- retention_rows() is strict: a NULL max_offset would answer an empty table, not an error.
    IF retention.max_offset IS NULL THEN
        RAISE EXCEPTION 'retention: max_offset must be between 0 and 36525, got NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention.min_activity = 'NaN' OR retention.min_activity < 0 THEN
        RAISE EXCEPTION 'retention: min_activity must be a number of at least 0, got %', retention.min_activity
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention.min_activity IS NULL AND retention.activity = 'events' THEN
        -- Any activity counts: every event goes straight into the aggregate.
        IF retention.cohort_by = 'first_activity' THEN
            RETURN QUERY
            SELECT r.*
            FROM (SELECT @extschema@.retention_agg(e.user_id, NULL::timestamp, e.activity_at AT TIME ZONE tz,
                                                   retention.period) AS s
                  FROM @extschema@.activity_events e
                  WHERE e.guild_id = retention.guild_id
                    AND (CASE WHEN retention.kinds IS NULL THEN e.kind <> 'member'
                              ELSE e.kind = ANY (retention.kinds) END)) a,
                 @extschema@.retention_rows(a.s, retention.max_offset) r
            ORDER BY 1, 3;
        ELSE
            RETURN QUERY
            WITH joined AS (
                SELECT m.user_id, min(m.event_ts) AS joined_at
                FROM @extschema@.raw_member_events m
                WHERE m.guild_id = retention.guild_id AND m.event_type = 'join'
                GROUP BY m.user_id)
            SELECT r.*
            FROM (SELECT @extschema@.retention_agg(x.user_id, x.cohort_at, x.activity_at, retention.period) AS s
                  FROM (SELECT j.user_id, j.joined_at AT TIME ZONE tz AS cohort_at, NULL::timestamp AS activity_at
                        FROM joined j
                        UNION ALL
                        SELECT e.user_id, NULL, e.activity_at AT TIME ZONE tz
                        FROM @extschema@.activity_events e JOIN joined j USING (user_id)
                        WHERE e.guild_id = retention.guild_id
                          AND (CASE WHEN retention.kinds IS NULL THEN e.kind <> 'member'
                                    ELSE e.kind = ANY (retention.kinds) END)) x) a,
                 @extschema@.retention_rows(a.s, retention.max_offset) r
            ORDER BY 1, 3;
        END IF;
        RETURN;
    END IF;
    IF unit IS NULL THEN
        -- The aggregate's own error for a period it does not know.
        PERFORM @extschema@.retention_agg(NULL, NULL, NULL, retention.period);
    END IF;
    -- One row per member and period: a period below min_activity still places the member in a
    -- cohort (cohort_at) but is not an active period (activity_at NULL).
    IF retention.cohort_by = 'first_activity' THEN
        RETURN QUERY
        SELECT r.*
        FROM (SELECT @extschema@.retention_agg(
                         p.user_id, p.first_at,
                         CASE WHEN retention.min_activity IS NULL OR p.amount >= retention.min_activity
                              THEN p.first_at END,
                         retention.period) AS s
              FROM @extschema@._retention_activity(retention.guild_id, retention.activity, retention.kinds,
                                                   tz, unit) p) a,
             @extschema@.retention_rows(a.s, retention.max_offset) r
        ORDER BY 1, 3;
    ELSE
        RETURN QUERY
        WITH joined AS (
            SELECT m.user_id, min(m.event_ts) AT TIME ZONE tz AS joined_at
            FROM @extschema@.raw_member_events m
            WHERE m.guild_id = retention.guild_id AND m.event_type = 'join'
            GROUP BY m.user_id)
        SELECT r.*
        FROM (SELECT @extschema@.retention_agg(x.user_id, x.cohort_at, x.activity_at, retention.period) AS s
              FROM (SELECT j.user_id, j.joined_at AS cohort_at, NULL::timestamp AS activity_at
                    FROM joined j
                    UNION ALL
                    SELECT p.user_id, NULL, p.first_at
                    FROM @extschema@._retention_activity(retention.guild_id, retention.activity,
                                                         retention.kinds, tz, unit) p
                    JOIN joined j USING (user_id)
                    WHERE retention.min_activity IS NULL OR p.amount >= retention.min_activity) x) a,
             @extschema@.retention_rows(a.s, retention.max_offset) r
        ORDER BY 1, 3;
    END IF;
END
$$;
COMMENT ON FUNCTION retention(bigint, text, text, text[], integer, numeric, text) IS
    'Retention cohort table of a guild for a heatmap (rows: cohort_start, cohort_size, period_offset, retained, rate, retained_or_later, rate_or_later). period: day, week or month in settings_for(guild_id).calendar_time_zone. cohort_by: first_activity (first activity in activity_events) or join (first join in raw_member_events). kinds: the activity_events kinds that count as activity (voice, message, points, member); default all but member, since a join date (Discord reports the original one, possibly years before tracking began) or a rename is not engagement. max_offset: the last period offset shown (default 365; 0 to 36525, NULL or anything else is an error), so that one outlier timestamp, years away, cannot turn the table into millions of rows. activity and min_activity make retention depth-weighted: activity is what is measured (events: rows of activity_events of the kinds, the default; voice_minutes: minutes in voice outside AFK, from the member_voice_daily rollup; rounds: ET:Legacy rounds played under the member''s GUIDs in et_guid_links, by the game server''s clock), and a member counts as retained in a period only with at least min_activity of it there (default NULL: any activity). The cohort is still the first period with any of that activity (or the join); the table reaches the last period in which somebody met the threshold. Example: SELECT * FROM guildstats.retention(1234, ''week'', min_activity => 30, activity => ''voice_minutes'');';

CREATE FUNCTION retention_dn(guild_id bigint, days integer[] DEFAULT '{1,7,30,90}', kinds text[] DEFAULT NULL,
                             min_activity numeric DEFAULT NULL, activity text DEFAULT 'events')
RETURNS TABLE (day_offset integer, eligible_users bigint, retained bigint, rate double precision,
               retained_or_later bigint, rate_or_later double precision)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- A NULL or negative day has no meaning, and a day past 36525 would be reported as
    -- retention()'s max_offset: each gets its own error, naming the days.
    IF retention_dn.days IS NULL OR array_position(retention_dn.days, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(retention_dn.days) AS n WHERE n NOT BETWEEN 0 AND 36525) THEN
        RAISE EXCEPTION 'retention_dn: days must be between 0 and 36525, got %', coalesce(retention_dn.days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT d.n,
           coalesce(sum(r.cohort_size), 0)::bigint,
           coalesce(sum(r.retained), 0)::bigint,
           sum(r.retained)::double precision / nullif(sum(r.cohort_size), 0),
           coalesce(sum(r.retained_or_later), 0)::bigint,
           sum(r.retained_or_later)::double precision / nullif(sum(r.cohort_size), 0)
    FROM unnest(retention_dn.days) AS d(n)
    LEFT JOIN @extschema@.retention(retention_dn.guild_id, 'day', 'first_activity', retention_dn.kinds,
                                    (SELECT greatest(max(n), 0) FROM unnest(retention_dn.days) AS n),
                                    retention_dn.min_activity, retention_dn.activity) r
           ON r.period_offset = d.n
    GROUP BY d.n
    ORDER BY d.n;
END
$$;
COMMENT ON FUNCTION retention_dn(bigint, integer[], text[], numeric, text) IS
    'Classic D1/D7/D30/D90 retention of a guild (days configurable): of the users whose first activity was at least N days before the last activity in the data (eligible_users), the share active exactly N calendar days after their first day (rate), and N days or later (rate_or_later). Each day must be between 0 and 36525 (NULL, negative or larger days are an error). min_activity and activity make it depth-weighted, as in retention(): active on a day means at least min_activity events, voice minutes or rounds that day. Example: SELECT * FROM guildstats.retention_dn(1234); SELECT * FROM guildstats.retention_dn(1234, min_activity => 30, activity => ''voice_minutes'');';

CREATE FUNCTION voice_hours_retention(guild_id bigint, period text DEFAULT 'week', max_offset integer DEFAULT 52)
RETURNS TABLE (cohort_start date, cohort_size bigint, period_offset integer, active_members bigint,
               voice_hours double precision, hours_share double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    unit text := @extschema@._period_unit(voice_hours_retention.period);
BEGIN
    IF unit IS NULL THEN
        RAISE EXCEPTION 'voice_hours_retention: period must be day, week or month, got %',
            coalesce(voice_hours_retention.period, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF voice_hours_retention.max_offset IS NULL OR voice_hours_retention.max_offset NOT BETWEEN 0 AND 36525 THEN
        RAISE EXCEPTION 'voice_hours_retention: max_offset must be between 0 and 36525, got %',
            coalesce(voice_hours_retention.max_offset::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH per AS (
        -- Voice time per member and period; the rollup's days are calendar days of the guild.
        SELECT d.user_id, date_trunc(unit, d.day::timestamp)::date AS p, sum(d.active_seconds) AS seconds
        FROM @extschema@.member_voice_daily d
        WHERE d.guild_id = voice_hours_retention.guild_id AND d.active_seconds > 0
        GROUP BY 1, 2),
    cohort AS (SELECT per.user_id, min(per.p) AS c FROM per GROUP BY 1),
    cells AS (
        SELECT k.c, per.p, count(*) AS members, sum(per.seconds) / 3600 AS hours
        FROM per JOIN cohort k USING (user_id)
        GROUP BY 1, 2),
    offset_of AS (
        SELECT cells.c, cells.p, cells.members, cells.hours,
               CASE unit WHEN 'day' THEN cells.p - cells.c
                         WHEN 'week' THEN (cells.p - cells.c) / 7
                         ELSE ((extract(year FROM cells.p) - extract(year FROM cells.c)) * 12
                               + extract(month FROM cells.p) - extract(month FROM cells.c))::integer
               END AS o
        FROM cells),
    horizon AS (SELECT max(per.p) AS last FROM per),
    sizes AS (SELECT k.c, count(*) AS n FROM cohort k GROUP BY 1)
    SELECT s.c, s.n, g.o, coalesce(x.members, 0), coalesce(x.hours, 0),
           coalesce(x.hours, 0) / w0.hours
    FROM sizes s
    CROSS JOIN horizon h
    JOIN offset_of w0 ON w0.c = s.c AND w0.o = 0
    CROSS JOIN LATERAL generate_series(
        0, least(voice_hours_retention.max_offset,
                 CASE unit WHEN 'day' THEN h.last - s.c
                           WHEN 'week' THEN (h.last - s.c) / 7
                           ELSE ((extract(year FROM h.last) - extract(year FROM s.c)) * 12
                                 + extract(month FROM h.last) - extract(month FROM s.c))::integer
                 END)) AS g(o)
    LEFT JOIN offset_of x ON x.c = s.c AND x.o = g.o
    ORDER BY 1, 3;
END
$$;
COMMENT ON FUNCTION voice_hours_retention(bigint, text, integer) IS
    'Retention of voice time rather than of heads: members grouped by the period (day, week or month in the guild''s calendar) of their first voice time outside AFK (cohort_start, cohort_size), and for each later period (period_offset, 0 = the cohort period, up to the last period with voice data and at most max_offset, default 52; 0 to 36525) how many of them were in voice (active_members), their voice_hours, and hours_share: those hours as a share of the cohort''s hours in period 0 (1 = the cohort still spends as much time in voice as in its first period; can exceed 1). Reads the member_voice_daily rollup (build_rollups()), so a session over midnight counts on both days. Example: SELECT * FROM guildstats.voice_hours_retention(1234, ''week'', 12);';
