-- guildstats 0.1.0 -> 0.2.0
--
-- Run by `ALTER EXTENSION guildstats UPDATE`. Every schema change made since 0.1.0 is written
-- here as well as in sql/extension/*.sql; the upgrade test (tests/tests/upgrade.rs) proves that
-- an upgraded database has exactly the schema of a fresh install and keeps its rows.
\echo Use "ALTER EXTENSION guildstats UPDATE TO '0.2.0'" to load this file. \quit


-- ---------------------------------------------------------------------------------------------
-- Retention bounded (issue 10): retention_rows(), retention() and the internal _retention_rows()
-- take max_offset; retention_dn() asks only for the offsets it reports. 0.1.0's
-- _retention_rows(bytea) is gone from the schema; its C symbol stays in the library.
DROP FUNCTION retention_rows(retention_state);
DROP FUNCTION _retention_rows(bytea);
DROP FUNCTION retention(bigint, text, text, text[]);
CREATE FUNCTION _retention_rows(state bytea, max_offset integer)
RETURNS TABLE (cohort_start date, cohort_size bigint, period_offset integer, retained bigint,
               rate double precision, retained_or_later bigint, rate_or_later double precision)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_retention_rows_bounded_wrapper';
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

CREATE OR REPLACE FUNCTION retention_dn(guild_id bigint, days integer[] DEFAULT '{1,7,30,90}', kinds text[] DEFAULT NULL)
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
