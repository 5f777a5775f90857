-- Economy health: the points economy of a guild, one row per calendar day (guild time zone).

CREATE FUNCTION economy_health(guild_id bigint, from_day date DEFAULT NULL, to_day date DEFAULT NULL)
RETURNS TABLE (
    day                 date,
    circulation         bigint,
    earned              bigint,
    spent               bigint,
    net                 bigint,
    accounts            bigint,
    users_with_points   bigint,
    median_balance      double precision,
    top1_share          double precision,
    gini                double precision,
    inflation           double precision,
    negative_streak     integer,
    alert_inflation     boolean,
    alert_net_negative  boolean,
    alert_gini          boolean,
    alerts              text[]
)
LANGUAGE sql STABLE PARALLEL RESTRICTED
AS $$
    WITH zone AS (SELECT s.calendar_time_zone AS tz FROM @extschema@.settings_for(economy_health.guild_id) s),
    bounds AS (
        SELECT coalesce(economy_health.from_day, (min(t.tx_ts) AT TIME ZONE zone.tz)::date) AS from_day,
               coalesce(economy_health.to_day, (max(t.tx_ts) AT TIME ZONE zone.tz)::date) AS to_day
        FROM zone LEFT JOIN @extschema@.raw_point_transactions t ON t.guild_id = economy_health.guild_id
        GROUP BY zone.tz)
    SELECT h.* FROM bounds, @extschema@._economy_health(economy_health.guild_id, bounds.from_day, bounds.to_day) h
$$;
COMMENT ON FUNCTION economy_health(bigint, date, date) IS
    'The points economy of a guild per calendar day (settings_for(guild_id).calendar_time_zone), from raw_point_transactions, with balances as of the end of each day: circulation (sum of balances), earned, spent, net, accounts (users with any transaction so far), users_with_points (balance > 0), median_balance, top1_share (share held by the richest 1 % of accounts), gini (over all accounts; overdrafts count as 0), inflation (circulation change against the previous day), negative_streak, and alerts: inflation > 10 %/day, net negative 3+ days in a row, gini > 0.7. Days default to the first and last day with transactions. Example: SELECT * FROM guildstats.economy_health(1234, ''2026-03-01'', ''2026-03-31'');';
COMMENT ON FUNCTION _economy_health(bigint, date, date) IS
    'Internal: the day-by-day walk behind economy_health(); takes explicit bounds.';
COMMENT ON FUNCTION _economy_health_continued(bigint, date, date, integer) IS
    'Internal to build_rollups(): the rows of economy_health() from from_day to to_day, walked on from member_point_balances (the balances at the end of the day before from_day) and streak_before (that day''s negative_streak) over the flows of member_points_daily.';
