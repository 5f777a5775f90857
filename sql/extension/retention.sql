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

CREATE FUNCTION retention(guild_id bigint, period text DEFAULT 'week',
                          cohort_by text DEFAULT 'first_activity', kinds text[] DEFAULT NULL,
                          max_offset integer DEFAULT 365)
RETURNS TABLE (cohort_start date, cohort_size bigint, period_offset integer, retained bigint,
               rate double precision, retained_or_later bigint, rate_or_later double precision)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(retention.guild_id) s);
BEGIN
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
    ELSIF retention.cohort_by = 'join' THEN
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
    ELSE
        RAISE EXCEPTION 'retention: cohort_by must be first_activity or join, got %', retention.cohort_by
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION retention(bigint, text, text, text[], integer) IS
    'Retention cohort table of a guild for a heatmap (rows: cohort_start, cohort_size, period_offset, retained, rate, retained_or_later, rate_or_later). period: day, week or month in settings_for(guild_id).calendar_time_zone. cohort_by: first_activity (first activity in activity_events) or join (first join in raw_member_events). kinds: the activity_events kinds that count as activity (voice, message, points, member); default all but member, since a join date (Discord reports the original one, possibly years before tracking began) or a rename is not engagement. max_offset: the last period offset shown (default 365; at most 36525), so that one outlier timestamp, years away, cannot turn the table into millions of rows. Example: SELECT * FROM guildstats.retention(1234, ''week'');';

CREATE FUNCTION retention_dn(guild_id bigint, days integer[] DEFAULT '{1,7,30,90}', kinds text[] DEFAULT NULL)
RETURNS TABLE (day_offset integer, eligible_users bigint, retained bigint, rate double precision,
               retained_or_later bigint, rate_or_later double precision)
LANGUAGE sql STABLE
AS $$
    SELECT d.n,
           coalesce(sum(r.cohort_size), 0)::bigint,
           coalesce(sum(r.retained), 0)::bigint,
           sum(r.retained)::double precision / nullif(sum(r.cohort_size), 0),
           coalesce(sum(r.retained_or_later), 0)::bigint,
           sum(r.retained_or_later)::double precision / nullif(sum(r.cohort_size), 0)
    FROM unnest(retention_dn.days) AS d(n)
    LEFT JOIN @extschema@.retention(retention_dn.guild_id, 'day', 'first_activity', retention_dn.kinds,
                                    (SELECT greatest(max(n), 0) FROM unnest(retention_dn.days) AS n)) r
           ON r.period_offset = d.n
    GROUP BY d.n
    ORDER BY d.n
$$;
COMMENT ON FUNCTION retention_dn(bigint, integer[], text[]) IS
    'Classic D1/D7/D30/D90 retention of a guild (days configurable): of the users whose first activity was at least N days before the last activity in the data (eligible_users), the share active exactly N calendar days after their first day (rate), and N days or later (rate_or_later). Days past 36525 are an error. Example: SELECT * FROM guildstats.retention_dn(1234);';
