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
-- ---------------------------------------------------------------------------------------------
-- Timestamps at the door, quarantine, builder locks (issue 10, items 3 to 7)
-- ---------------------------------------------------------------------------------------------
-- Raw timestamps must be finite and within [2000-01-01, 2100-01-01) UTC (a CHECK per column), and
-- rows dated further ahead of their arrival than future_tolerance_for(guild_id) go to quarantine
-- (a trigger per raw table). 0.1.0 rows that break either rule are moved to quarantine first, so
-- that adding the constraints cannot fail and no row is lost. The builders lock rows of
-- builder_locks instead of advisory locks any login could take.
-- The plausible range of a raw timestamp, for the quarantine trigger and the upgrade (the
-- CHECKs below spell the same bounds out).
CREATE FUNCTION _is_plausible_time(ts timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ts >= timestamptz '2000-01-01 00:00:00+00' AND ts < timestamptz '2100-01-01 00:00:00+00';
COMMENT ON FUNCTION _is_plausible_time(timestamptz) IS
    'Internal: true when a raw timestamp is finite and within [2000-01-01, 2100-01-01) UTC (NULL stays NULL). The CHECK <table>_<column>_plausible on every contract timestamp of the raw tables holds the same bounds.';

CREATE TABLE quarantine (
    quarantine_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_table    text        NOT NULL,
    guild_id        bigint,
    user_id         bigint,
    row_data        jsonb       NOT NULL,
    row_hash        bytea       NOT NULL,
    reason          text        NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT quarantine_row_key UNIQUE (source_table, row_hash)
);

COMMENT ON TABLE quarantine IS
    'Raw rows set aside instead of stored: their own time lay further ahead of their arrival than future_tolerance_for(guild_id) (a skewed clock, a bad client). The builders never see them; health() counts them. To keep one, correct its time and INSERT row_data into source_table again. Timestamps outside [2000-01-01, 2100-01-01) never get this far: the raw tables refuse them (SQLSTATE 23514).';
COMMENT ON COLUMN quarantine.quarantine_id IS 'Order in which rows were set aside.';
COMMENT ON COLUMN quarantine.source_table IS 'The raw table the row was inserted into, e.g. raw_voice_events.';
COMMENT ON COLUMN quarantine.guild_id IS 'The row''s guild_id, if its table has one.';
COMMENT ON COLUMN quarantine.user_id IS 'The row''s user_id, if its table has one.';
COMMENT ON COLUMN quarantine.row_data IS 'The row as inserted, as a JSON object of its columns (timestamps in UTC; without ingest_id, received_at and the columns the database computes).';
COMMENT ON COLUMN quarantine.row_hash IS 'SHA-256 of row_data as text: a replayed row is set aside once.';
COMMENT ON COLUMN quarantine.reason IS 'Why the row was set aside, naming the column, its value and the tolerance in force.';
COMMENT ON COLUMN quarantine.quarantined_at IS 'When the row arrived (it would have been its received_at).';

SELECT pg_catalog.pg_extension_config_dump('quarantine', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('quarantine', 'quarantine_id')::regclass, '');

CREATE FUNCTION _quarantine_future_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    time_column  text := TG_ARGV[0];
    fact         jsonb := to_jsonb(NEW) - ARRAY['ingest_id', 'received_at', 'sha256', 'size_bytes',
                                                'imported_at', 'import_error'];
    dated_at     timestamptz := (fact ->> time_column)::timestamptz;
    guild        bigint := (fact ->> 'guild_id')::bigint;
    tolerance    interval := @extschema@.future_tolerance_for(guild);
BEGIN
    -- An impossible time is the CHECK's to refuse, with SQLSTATE 23514: the client must hear of it.
    IF dated_at <= now() + tolerance OR NOT @extschema@._is_plausible_time(dated_at) THEN
        RETURN NEW;
    END IF;
    INSERT INTO @extschema@.quarantine (source_table, guild_id, user_id, row_data, row_hash, reason)
    VALUES (TG_TABLE_NAME, guild, (fact ->> 'user_id')::bigint, fact,
            sha256(convert_to(fact::text, 'UTF8')),
            format('%s.%s = %s is %s after the row arrived (%s), more than the future_tolerance of %s',
                   TG_TABLE_NAME, time_column, dated_at, date_trunc('second', dated_at - now()),
                   date_trunc('second', now()), tolerance))
    ON CONFLICT (source_table, row_hash) DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION _quarantine_future_row() IS
    'Internal trigger function: moves a raw row whose own time (the column named by the trigger''s argument) lies more than future_tolerance_for(guild_id) after its arrival into quarantine instead of the raw table.';

ALTER TABLE settings ADD COLUMN future_tolerance interval;
ALTER TABLE settings ADD CONSTRAINT settings_future_tolerance_not_negative CHECK (future_tolerance >= interval '0');
COMMENT ON COLUMN settings.future_tolerance IS 'How far after its arrival a raw row may be dated (a clock running ahead) before it goes to quarantine instead of its raw table (built-in default 1 day). Read it with future_tolerance_for(guild_id); guild-less rows (game servers, ET files) use the global row.';

CREATE OR REPLACE FUNCTION future_tolerance_for(guild_id bigint)
RETURNS interval
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce((SELECT s.future_tolerance FROM @extschema@.settings s
                      WHERE s.guild_id = future_tolerance_for.guild_id),
                    (SELECT s.future_tolerance FROM @extschema@.settings s WHERE s.guild_id IS NULL),
                    interval '1 day');
END;
COMMENT ON FUNCTION future_tolerance_for(bigint) IS
    'The future tolerance in force for a guild (NULL: rows without a guild): its settings row, else the global row, else 1 day. A raw row dated further than this after its arrival goes to quarantine. Example: SELECT guildstats.future_tolerance_for(1234);';

-- 0.1.0 accepted any timestamp: rows that break the new rules move to quarantine, with why.
DO $move$
DECLARE
    guarded   record;
    moved     bigint;
    total     bigint := 0;
    caller_tz text := current_setting('TimeZone');
BEGIN
    PERFORM set_config('TimeZone', 'UTC', true);
    FOR guarded IN
        SELECT * FROM (VALUES
            ('raw_voice_events', 'event_ts', true), ('raw_voice_snapshots', 'taken_at', true),
            ('raw_heartbeats', 'beat_at', true), ('raw_messages', 'sent_at', true),
            ('raw_member_events', 'event_ts', true), ('raw_guilds', 'observed_at', true),
            ('raw_channels', 'observed_at', true), ('raw_scheduled_events', 'observed_at', true),
            ('raw_scheduled_events', 'scheduled_start', false), ('raw_scheduled_events', 'scheduled_end', false),
            ('raw_scheduled_event_users', 'observed_at', true), ('raw_server_polls', 'polled_at', true),
            ('raw_server_players', 'polled_at', true), ('raw_et_stats_files', 'fetched_at', true),
            ('raw_point_transactions', 'tx_ts', true)
        ) AS g(table_name, column_name, dates_the_row)
    LOOP
        EXECUTE format($sql$
            WITH moved AS (
                DELETE FROM @extschema@.%1$I t
                 WHERE NOT @extschema@._is_plausible_time(t.%2$I)
                    OR (%3$L AND t.%2$I > t.received_at
                                 + @extschema@.future_tolerance_for((to_jsonb(t) ->> 'guild_id')::bigint))
                RETURNING t.*
            ), facts AS (
                SELECT to_jsonb(m) - ARRAY['ingest_id', 'received_at', 'sha256', 'size_bytes',
                                           'imported_at', 'import_error'] AS fact,
                       m.%2$I AS dated_at, m.received_at
                  FROM moved m
            )
            INSERT INTO @extschema@.quarantine (source_table, guild_id, user_id, row_data, row_hash, reason, quarantined_at)
            SELECT %1$L, (f.fact ->> 'guild_id')::bigint, (f.fact ->> 'user_id')::bigint, f.fact,
                   sha256(convert_to(f.fact::text, 'UTF8')),
                   CASE WHEN @extschema@._is_plausible_time(f.dated_at)
                        THEN format('%1$s.%2$s = %%s is %%s after the row arrived (%%s), more than the future_tolerance of %%s (set aside by the upgrade to 0.2.0)',
                                    f.dated_at, date_trunc('second', f.dated_at - f.received_at),
                                    date_trunc('second', f.received_at),
                                    @extschema@.future_tolerance_for((f.fact ->> 'guild_id')::bigint))
                        ELSE format('%1$s.%2$s = %%s is outside [2000-01-01, 2100-01-01) UTC (set aside by the upgrade to 0.2.0)',
                                    f.dated_at)
                   END,
                   f.received_at
              FROM facts f
            ON CONFLICT (source_table, row_hash) DO NOTHING$sql$,
            guarded.table_name, guarded.column_name, guarded.dates_the_row);
        GET DIAGNOSTICS moved = ROW_COUNT;
        total := total + moved;
    END LOOP;
    PERFORM set_config('TimeZone', caller_tz, true);
    IF total > 0 THEN
        RAISE NOTICE 'guildstats 0.2.0: % raw rows with impossible or far-future timestamps moved to guildstats.quarantine; rebuild the derived tables (SELECT * FROM guildstats.rebuild_voice_sessions(); then build_members, build_event_attendance and build_rollups with full => true)', total;
    END IF;
END
$move$;

-- The timestamp rule, table by table: a CHECK on every contract timestamp, and the quarantine
-- trigger on the column that dates the row (the trigger fires only for rows dated after now(),
-- so the ordinary row costs one comparison).
DO $timestamps$
DECLARE
    guarded record;
BEGIN
    FOR guarded IN
        SELECT * FROM (VALUES
            ('raw_voice_events', 'event_ts', true), ('raw_voice_snapshots', 'taken_at', true),
            ('raw_heartbeats', 'beat_at', true), ('raw_messages', 'sent_at', true),
            ('raw_member_events', 'event_ts', true), ('raw_guilds', 'observed_at', true),
            ('raw_channels', 'observed_at', true), ('raw_scheduled_events', 'observed_at', true),
            ('raw_scheduled_events', 'scheduled_start', false), ('raw_scheduled_events', 'scheduled_end', false),
            ('raw_scheduled_event_users', 'observed_at', true), ('raw_server_polls', 'polled_at', true),
            ('raw_server_players', 'polled_at', true), ('raw_et_stats_files', 'fetched_at', true),
            ('raw_point_transactions', 'tx_ts', true)
        ) AS g(table_name, column_name, dates_the_row)
    LOOP
        -- The bounds of _is_plausible_time() written out: a CHECK calling a function needs
        -- EXECUTE on it for every inserting role, and roles.sql grants the ingest role none.
        EXECUTE format('ALTER TABLE @extschema@.%I ADD CONSTRAINT %I CHECK (%I >= %L::timestamptz AND %I < %L::timestamptz)',
                       guarded.table_name, guarded.table_name || '_' || guarded.column_name || '_plausible',
                       guarded.column_name, '2000-01-01 00:00:00+00', guarded.column_name, '2100-01-01 00:00:00+00');
        IF guarded.dates_the_row THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON @extschema@.%I FOR EACH ROW
                            WHEN (NEW.%I > pg_catalog.now()) EXECUTE FUNCTION @extschema@._quarantine_future_row(%L)',
                           guarded.table_name || '_quarantine_future', guarded.table_name,
                           guarded.column_name, guarded.column_name);
            EXECUTE format('COMMENT ON TRIGGER %I ON @extschema@.%I IS %L',
                           guarded.table_name || '_quarantine_future', guarded.table_name,
                           format('Moves a row whose %s lies more than future_tolerance_for(guild_id) after its arrival into quarantine.',
                                  guarded.column_name));
        END IF;
    END LOOP;
END
$timestamps$;

COMMENT ON COLUMN raw_voice_events.event_ts IS 'When the state change happened (the ingester''s clock at receipt). Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_voice_snapshots.taken_at IS 'When the snapshot was taken. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_heartbeats.beat_at IS 'When the ingester was known to be alive and connected. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_messages.sent_at IS 'When the message was posted. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_member_events.event_ts IS 'When the change happened (Discord''s joined_at for joins when known, else the ingester''s clock). Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_guilds.observed_at IS 'When this state was seen. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_channels.observed_at IS 'When this state was seen. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_scheduled_events.observed_at IS 'When this state was seen; a change of status to active or completed marks the actual start or end. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_scheduled_events.scheduled_start IS 'Announced start. Refused unless NULL or within [2000-01-01, 2100-01-01) UTC.';
COMMENT ON COLUMN raw_scheduled_events.scheduled_end IS 'Announced end, if any. Refused unless NULL or within [2000-01-01, 2100-01-01) UTC.';
COMMENT ON COLUMN raw_scheduled_event_users.observed_at IS 'When the change was seen (the ingester''s clock at receipt; Discord gives no time). Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_server_polls.polled_at IS 'When the query was sent. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_server_players.polled_at IS 'The poll this row belongs to (matches raw_server_polls.polled_at). Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_et_stats_files.fetched_at IS 'When the ingester fetched the file. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';
COMMENT ON COLUMN raw_point_transactions.tx_ts IS 'When the transaction happened. Refused unless within [2000-01-01, 2100-01-01) UTC; a row dated further ahead of its arrival than future_tolerance_for(guild_id) goes to quarantine instead.';

CREATE OR REPLACE FUNCTION health()
RETURNS TABLE (check_name text, severity text, status text, detail text)
LANGUAGE sql STABLE
AS $$
    WITH latest AS (
        SELECT 'raw_heartbeats' AS source_table, max(received_at) AS last_row FROM @extschema@.raw_heartbeats
        UNION ALL SELECT 'raw_voice_events', max(received_at) FROM @extschema@.raw_voice_events
        UNION ALL SELECT 'raw_messages', max(received_at) FROM @extschema@.raw_messages
        UNION ALL SELECT 'raw_member_events', max(received_at) FROM @extschema@.raw_member_events
        UNION ALL SELECT 'raw_server_polls', max(received_at) FROM @extschema@.raw_server_polls
        UNION ALL SELECT 'raw_point_transactions', max(received_at) FROM @extschema@.raw_point_transactions
        UNION ALL SELECT 'raw_et_stats_files', max(received_at) FROM @extschema@.raw_et_stats_files),
    freshness AS (
        SELECT 'freshness: ' || source_table AS check_name,
               CASE WHEN source_table IN ('raw_heartbeats', 'raw_server_polls') THEN 'critical' ELSE 'warning' END AS severity,
               CASE WHEN last_row IS NULL THEN 'no data'
                    WHEN now() - last_row > CASE WHEN source_table IN ('raw_heartbeats', 'raw_server_polls')
                                                 THEN interval '15 minutes' ELSE interval '1 day' END THEN 'stale'
                    ELSE 'ok' END AS status,
               coalesce('last row received ' || to_char(last_row AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC',
                        'no rows yet') AS detail
        FROM latest),
    beats AS (
        SELECT 'heartbeat: ' || source || coalesce(' guild ' || guild_id, '') AS check_name, 'critical' AS severity,
               CASE WHEN now() - max(beat_at) > interval '5 minutes' THEN 'missing' ELSE 'ok' END AS status,
               'last beat ' || to_char(max(beat_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS detail
        FROM @extschema@.raw_heartbeats GROUP BY source, guild_id),
    et AS (
        SELECT 'et files: failed imports' AS check_name, 'warning' AS severity,
               CASE WHEN count(*) FILTER (WHERE import_error IS NOT NULL) > 0 THEN 'failing' ELSE 'ok' END AS status,
               count(*) FILTER (WHERE import_error IS NOT NULL) || ' of ' || count(*) || ' files have an import_error' AS detail
        FROM @extschema@.raw_et_stats_files
        UNION ALL
        SELECT 'et files: not imported', 'warning',
               CASE WHEN count(*) > 0 THEN 'pending' ELSE 'ok' END,
               count(*) || ' files received over an hour ago are not imported yet'
        FROM @extschema@.raw_et_stats_files
        WHERE imported_at IS NULL AND import_error IS NULL AND received_at < now() - interval '1 hour'),
    orphans AS (
        SELECT 'activity without member row' AS check_name, 'info' AS severity,
               CASE WHEN count(*) > 0 THEN 'found' ELSE 'ok' END AS status,
               count(*) || ' users are active but have no raw_member_events row (joined before tracking began?)' AS detail
        FROM (SELECT DISTINCT a.guild_id, a.user_id FROM @extschema@.activity_events a
              WHERE NOT EXISTS (SELECT 1 FROM @extschema@.raw_member_events m
                                WHERE m.guild_id = a.guild_id AND m.user_id = a.user_id)) x),
    polls AS (
        SELECT 'game server: ' || server AS check_name, 'warning' AS severity,
               CASE WHEN count(*) FILTER (WHERE NOT ok) * 2 > count(*) THEN 'down'
                    WHEN count(*) FILTER (WHERE NOT ok) > 0 THEN 'degraded' ELSE 'ok' END AS status,
               count(*) FILTER (WHERE NOT ok) || ' of ' || count(*) || ' polls failed in the last hour of data' AS detail
        FROM @extschema@.raw_server_polls p
        WHERE p.polled_at > (SELECT max(polled_at) FROM @extschema@.raw_server_polls q WHERE q.server = p.server) - interval '1 hour'
        GROUP BY server),
    quarantined AS (
        SELECT 'quarantined rows' AS check_name, 'warning' AS severity,
               CASE WHEN sum(n) > 0 THEN 'found' ELSE 'ok' END AS status,
               coalesce(sum(n), 0) || ' raw rows are in quarantine (dated too far ahead of their arrival, or set aside by an upgrade)'
               || coalesce(' (' || string_agg(source_table || ': ' || n, ', ' ORDER BY source_table) || ')', '') AS detail
        FROM (SELECT q.source_table, count(*) AS n FROM @extschema@.quarantine q GROUP BY q.source_table) per_table),
    -- Who holds the builders' locks (rows of builder_locks, locked FOR UPDATE: a RowShareLock on
    -- the table, which only roles with UPDATE on it can take). A build holds them for seconds; a
    -- transaction that holds one for minutes keeps every build skipped and erase_member()
    -- waiting. The transaction's age is visible to superusers and pg_read_all_stats members.
    lock_holders AS (
        SELECT l.pid, a.xact_start
        FROM (SELECT DISTINCT k.pid FROM pg_catalog.pg_locks k
               WHERE k.locktype = 'relation' AND k.relation = '@extschema@.builder_locks'::regclass
                 AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                 AND k.mode = 'RowShareLock' AND k.granted AND k.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()) l
        LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid),
    builder_locks AS (
        SELECT 'builder locks' AS check_name, 'warning' AS severity,
               CASE WHEN bool_or(h.xact_start < now() - interval '5 minutes') THEN 'stuck'
                    WHEN count(*) > 0 THEN 'busy' ELSE 'ok' END AS status,
               coalesce('held by pid ' || string_agg(h.pid || coalesce(' since ' || to_char(h.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', ''),
                                                   ', ' ORDER BY h.pid)
                        || '; while held, builds are skipped and erase_member() waits',
                        'no builder lock is held') AS detail
        FROM lock_holders h)
    SELECT * FROM freshness
    UNION ALL SELECT * FROM beats
    UNION ALL SELECT * FROM et
    UNION ALL SELECT * FROM orphans
    UNION ALL SELECT * FROM polls
    UNION ALL SELECT * FROM quarantined
    UNION ALL SELECT * FROM builder_locks
    ORDER BY 1
$$;
COMMENT ON FUNCTION health() IS
    'Data-quality checks, one row each (check_name, severity, status, detail): freshness of every raw table (stale after 15 minutes for heartbeats and polls, a day for the rest), missing heartbeats per ingester and guild (none for 5 minutes), ET stats files that failed to import or wait unimported for over an hour, users active without any member row, failed game-server polls in the last hour of data, raw rows set aside in quarantine (dated too far ahead of their arrival), and who holds the builders'' locks (busy while a build runs, stuck when a transaction has held one for over 5 minutes, naming its pid). status ok means nothing to do.';

CREATE TABLE builder_locks (
    builder  text PRIMARY KEY
);
INSERT INTO builder_locks (builder)
VALUES ('import_et_rounds'), ('build_members'), ('build_voice_sessions'), ('build_event_attendance'),
       ('build_rollups');
COMMENT ON TABLE builder_locks IS
    'One row per builder; a builder runs while it holds its row locked (SELECT ... FOR UPDATE SKIP LOCKED), and erase_member() locks every row. Only roles with UPDATE on this table (guildstats_admin) can hold them. Do not edit.';
COMMENT ON COLUMN builder_locks.builder IS 'The builder function, e.g. build_voice_sessions.';

CREATE OR REPLACE FUNCTION _try_builder_lock(builder text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM @extschema@.builder_locks l WHERE l.builder = _try_builder_lock.builder
        FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.builder_locks l WHERE l.builder = _try_builder_lock.builder) THEN
        RAISE EXCEPTION 'guildstats: builder_locks has no row for %', builder
            USING HINT = 'Reinstall the row: INSERT INTO guildstats.builder_locks VALUES (''' || builder || ''').';
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION _try_builder_lock(text) IS
    'Internal to the builders: locks the builder''s row of builder_locks until the end of the transaction and returns true, or returns false at once when another transaction holds it.';

CREATE OR REPLACE FUNCTION import_et_rounds()
RETURNS TABLE (
    files_read         integer,
    rounds_imported    integer,
    files_failed       integer,
    rounds_linked      integer,
    round2_recomputed  integer,
    orphan_round2      integer,
    sessions           integer,
    elapsed            interval,
    status             text
)
LANGUAGE plpgsql
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    pending record;
    n_read integer := 0;
    n_imported integer := 0;
    n_failed integer := 0;
    n_linked integer := 0;
    n_recomputed integer := 0;
    batch_size constant integer := 500;
    batch_read integer;
    batch_imported integer;
    batch_failed integer;
    gap interval;
BEGIN
    -- pg_cron never overlaps itself, but a person may call this at the same time.
    IF NOT @extschema@._try_builder_lock('import_et_rounds') THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, clock_timestamp() - started,
            'skipped: another import_et_rounds() is running; its results will be there when it commits'::text;
        RETURN;
    END IF;

    -- Batches through the fast path (parse everything, then one statement per table); a batch
    -- that fails there for any reason is redone one file at a time, each in a subtransaction.
    LOOP
        BEGIN
            SELECT b.files_read, b.rounds_imported, b.files_failed
            INTO batch_read, batch_imported, batch_failed
            FROM @extschema@._et_import_batch(batch_size) AS b;
        EXCEPTION WHEN OTHERS THEN
            batch_read := 0; batch_imported := 0; batch_failed := 0;
            FOR pending IN
                SELECT f.ingest_id
                FROM @extschema@.raw_et_stats_files f
                WHERE f.imported_at IS NULL AND f.import_error IS NULL
                  AND NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds r WHERE r.sha256 = f.sha256)
                ORDER BY f.ingest_id
                LIMIT batch_size
            LOOP
                batch_read := batch_read + 1;
                BEGIN
                    PERFORM @extschema@._et_import_file(pending.ingest_id);
                    UPDATE @extschema@.raw_et_stats_files SET imported_at = now(), import_error = NULL
                    WHERE ingest_id = pending.ingest_id;
                    batch_imported := batch_imported + 1;
                EXCEPTION WHEN OTHERS THEN
                    -- The file's rows are rolled back with the subtransaction; the raw file
                    -- stays, with the reason next to it, and the batch goes on.
                    UPDATE @extschema@.raw_et_stats_files SET import_error = SQLERRM
                    WHERE ingest_id = pending.ingest_id;
                    batch_failed := batch_failed + 1;
                END;
            END LOOP;
        END;
        n_read := n_read + batch_read;
        n_imported := n_imported + batch_imported;
        n_failed := n_failed + batch_failed;
        EXIT WHEN batch_read < batch_size;
    END LOOP;

    -- A big backfill leaves the planner's statistics describing nearly empty tables; the
    -- linking step looks rounds up by time, so refresh those of the rounds (a small table: the
    -- players' and weapons' statistics are left to autovacuum).
    IF n_imported >= 200 THEN
        ANALYZE @extschema@.et_rounds;
    END IF;

    SELECT s.et_session_gap INTO gap FROM @extschema@.settings_for(NULL) s;
    SELECT l.rounds_linked, l.round2_recomputed INTO n_linked, n_recomputed
    FROM @extschema@._et_link_new(gap) AS l;

    RETURN QUERY SELECT n_read, n_imported, n_failed, n_linked, n_recomputed,
        (SELECT count(*)::integer FROM @extschema@.et_rounds WHERE is_orphan),
        (SELECT count(*)::integer FROM @extschema@.et_sessions),
        clock_timestamp() - started, 'ok'::text;
END
$$;

CREATE OR REPLACE FUNCTION build_members(full boolean DEFAULT false)
RETURNS TABLE (rows_read bigint, members_added bigint, members_updated bigint,
               elapsed interval, status text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    started      timestamptz := clock_timestamp();
    voice_ids    int8multirange;
    message_ids  int8multirange;
    member_ids   int8multirange;
    point_ids    int8multirange;
BEGIN
    rows_read := 0; members_added := 0; members_updated := 0;
    IF NOT @extschema@._try_builder_lock('build_members') THEN
        elapsed := clock_timestamp() - started;
        status := 'skipped: another build_members() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    IF build_members.full THEN
        PERFORM @extschema@._reset_progress('build_members');
        TRUNCATE @extschema@.members;
    END IF;
    voice_ids := @extschema@._claim_ingest_ids('build_members', 'raw_voice_events');
    message_ids := @extschema@._claim_ingest_ids('build_members', 'raw_messages');
    member_ids := @extschema@._claim_ingest_ids('build_members', 'raw_member_events');
    point_ids := @extschema@._claim_ingest_ids('build_members', 'raw_point_transactions');

    CREATE TEMP TABLE IF NOT EXISTS _guildstats_member_activity (
        guild_id bigint, user_id bigint, first_seen timestamptz, last_seen timestamptz, rows bigint
    ) ON COMMIT DROP;
    TRUNCATE _guildstats_member_activity;
    INSERT INTO _guildstats_member_activity
    SELECT a.guild_id, a.user_id, min(a.first_seen), max(a.last_seen), sum(a.n)
    FROM (SELECT e.guild_id, e.user_id, min(e.event_ts) AS first_seen, max(e.event_ts) AS last_seen, count(*) AS n
            FROM @extschema@.raw_voice_events e
           WHERE e.ingest_id BETWEEN lower(voice_ids) AND upper(voice_ids) - 1 AND e.ingest_id <@ voice_ids
           GROUP BY 1, 2
          UNION ALL
          SELECT m.guild_id, m.user_id, min(m.sent_at), max(m.sent_at), count(*)
            FROM @extschema@.raw_messages m
           WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1 AND m.ingest_id <@ message_ids
           GROUP BY 1, 2
          UNION ALL
          SELECT x.guild_id, x.user_id, min(x.event_ts), max(x.event_ts), count(*)
            FROM @extschema@.raw_member_events x
           WHERE x.ingest_id BETWEEN lower(member_ids) AND upper(member_ids) - 1 AND x.ingest_id <@ member_ids
           GROUP BY 1, 2
          UNION ALL
          SELECT p.guild_id, p.user_id, min(p.tx_ts), max(p.tx_ts), count(*)
            FROM @extschema@.raw_point_transactions p
           WHERE p.ingest_id BETWEEN lower(point_ids) AND upper(point_ids) - 1 AND p.ingest_id <@ point_ids
           GROUP BY 1, 2) a
    GROUP BY 1, 2;
    SELECT coalesce(sum(a.rows), 0) INTO rows_read FROM _guildstats_member_activity a;

    -- Activity: earliest and latest of whatever arrived, merged with what is known.
    WITH upserted AS (
        INSERT INTO @extschema@.members AS m (guild_id, user_id, first_seen, last_seen, is_active)
        SELECT a.guild_id, a.user_id, a.first_seen, a.last_seen, true
        FROM _guildstats_member_activity a
        ON CONFLICT (guild_id, user_id) DO UPDATE
           SET first_seen = least(m.first_seen, EXCLUDED.first_seen),
               last_seen = greatest(m.last_seen, EXCLUDED.last_seen)
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
      INTO members_added, members_updated FROM upserted;

    -- Membership: recomputed from all membership changes of the users that have new ones.
    UPDATE @extschema@.members m
       SET joined_at = s.joined_at,
           left_at = s.left_at,
           is_active = s.left_at IS NULL,
           display_name = coalesce(s.display_name, m.display_name),
           is_bot = s.is_bot
      FROM (SELECT t.guild_id, t.user_id, j.joined_at,
                   (SELECT max(x.event_ts) FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id
                       AND x.event_type IN ('leave', 'ban')
                       AND (j.joined_at IS NULL OR x.event_ts > j.joined_at)) AS left_at,
                   (SELECT x.display_name FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id AND x.display_name IS NOT NULL
                     ORDER BY x.event_ts DESC, x.ingest_id DESC LIMIT 1) AS display_name,
                   (SELECT bool_or(x.is_bot) FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id) AS is_bot
              FROM (SELECT DISTINCT x.guild_id, x.user_id FROM @extschema@.raw_member_events x
                     WHERE x.ingest_id BETWEEN lower(member_ids) AND upper(member_ids) - 1
                       AND x.ingest_id <@ member_ids) t
              CROSS JOIN LATERAL (SELECT max(x.event_ts) AS joined_at FROM @extschema@.raw_member_events x
                                   WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id
                                     AND x.event_type = 'join') j) s
     WHERE m.guild_id = s.guild_id AND m.user_id = s.user_id;

    elapsed := clock_timestamp() - started;
    status := CASE WHEN build_members.full THEN 'ok: full rebuild' ELSE 'ok' END;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION build_voice_sessions(full boolean DEFAULT false)
RETURNS TABLE (events_read bigint, snapshots_read bigint, heartbeats_read bigint,
               guilds_built integer, users_rebuilt bigint, sessions_opened bigint,
               sessions_closed bigint, sessions_updated bigint, sessions_removed bigint,
               elapsed interval, status text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    started       timestamptz := clock_timestamp();
    event_ids     int8multirange;
    snapshot_ids  int8multirange;
    beat_ids      int8multirange;
    g             record;
    done          record;
    horizon       timestamptz;
    beats_exist   boolean;
    fingerprint   text;
    whole_guild   boolean;
    guild_dirty   timestamptz;
    users         bigint[];
    dirty_from    timestamptz[];
    changed       timestamptz;
    event_guilds     bigint[];
    snapshot_guilds  bigint[];
    beat_guilds      bigint[];
    caller_jit       text;
BEGIN
    events_read := 0; snapshots_read := 0; heartbeats_read := 0; guilds_built := 0;
    users_rebuilt := 0; sessions_opened := 0; sessions_closed := 0; sessions_updated := 0;
    sessions_removed := 0;
    IF NOT @extschema@._try_builder_lock('build_voice_sessions') THEN
        elapsed := clock_timestamp() - started;
        status := 'skipped: another build_voice_sessions() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    IF build_voice_sessions.full THEN
        PERFORM @extschema@._reset_progress('build_voice_sessions');
        DELETE FROM @extschema@.voice_build_guilds;
        TRUNCATE @extschema@.voice_sessions;
    END IF;
    -- An incremental build is thousands of index probes that the planner costs as if they read
    -- every row they might: JIT-compiling them took longer than running them. (A full build
    -- scans, where JIT may pay.) Restored below, for the rest of the caller's transaction.
    caller_jit := pg_catalog.current_setting('jit');
    IF NOT build_voice_sessions.full THEN
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    event_ids := @extschema@._claim_ingest_ids('build_voice_sessions', 'raw_voice_events');
    snapshot_ids := @extschema@._claim_ingest_ids('build_voice_sessions', 'raw_voice_snapshots');
    beat_ids := @extschema@._claim_ingest_ids('build_voice_sessions', 'raw_heartbeats');

    -- One pass over each claim: how many rows, and which guilds they touch.
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO events_read, event_guilds
      FROM (SELECT e.guild_id, count(*) AS n FROM @extschema@.raw_voice_events e
             WHERE e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
               AND (event_ids = int8multirange(range_merge(event_ids)) OR e.ingest_id <@ event_ids)
             GROUP BY e.guild_id) c;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO snapshots_read, snapshot_guilds
      FROM (SELECT x.guild_id, count(*) AS n FROM @extschema@.raw_voice_snapshots x
             WHERE x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
               AND x.ingest_id <@ snapshot_ids
             GROUP BY x.guild_id) c;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO heartbeats_read, beat_guilds
      FROM (SELECT b.guild_id, count(*) AS n FROM @extschema@.raw_heartbeats b
             WHERE b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1 AND b.ingest_id <@ beat_ids
               AND b.source = 'discord' AND b.guild_id IS NOT NULL
             GROUP BY b.guild_id) c;

    FOR g IN
        SELECT DISTINCT t.guild_id FROM unnest(event_guilds || snapshot_guilds || beat_guilds) AS t(guild_id)
        UNION
        SELECT d.guild_id FROM @extschema@.voice_build_guilds d
         WHERE d.settings_fingerprint IS DISTINCT FROM @extschema@._voice_settings_fingerprint(d.guild_id)
        ORDER BY 1
    LOOP
        SELECT max(b.beat_at) INTO horizon FROM @extschema@.raw_heartbeats b
         WHERE b.source = 'discord' AND b.guild_id = g.guild_id;
        beats_exist := horizon IS NOT NULL;
        IF NOT beats_exist THEN
            SELECT greatest((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e WHERE e.guild_id = g.guild_id),
                            (SELECT max(x.taken_at) FROM @extschema@.raw_voice_snapshots x WHERE x.guild_id = g.guild_id))
              INTO horizon;
        END IF;
        IF horizon IS NULL THEN
            CONTINUE;  -- heartbeats of another source only: nothing to build
        END IF;
        fingerprint := @extschema@._voice_settings_fingerprint(g.guild_id);
        SELECT * INTO done FROM @extschema@.voice_build_guilds d WHERE d.guild_id = g.guild_id;
        whole_guild := done IS NULL OR done.settings_fingerprint IS DISTINCT FROM fingerprint
                       OR done.has_heartbeats IS DISTINCT FROM beats_exist OR horizon < done.horizon;

        IF whole_guild THEN
            users := NULL;
            dirty_from := NULL;
        ELSE
            -- Guild-wide changes reach every user in a session at or after them: a new snapshot,
            -- heartbeats that change the outages (from the last old beat before the earliest new
            -- one), and the move of the horizon itself.
            SELECT least(done.horizon,
                         (SELECT min(x.taken_at) FROM @extschema@.raw_voice_snapshots x
                           WHERE x.guild_id = g.guild_id
                             AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                             AND x.ingest_id <@ snapshot_ids),
                         (SELECT coalesce((SELECT max(o.beat_at) FROM @extschema@.raw_heartbeats o
                                            WHERE o.source = 'discord' AND o.guild_id = g.guild_id
                                              AND o.beat_at < nb.first_new
                                              AND NOT (o.ingest_id <@ beat_ids)),
                                          nb.first_new)
                            FROM (SELECT min(b.beat_at) AS first_new FROM @extschema@.raw_heartbeats b
                                   WHERE b.source = 'discord' AND b.guild_id = g.guild_id
                                     AND b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1
                                     AND b.ingest_id <@ beat_ids) nb))
              INTO guild_dirty;
            SELECT array_agg(t.user_id), array_agg(t.at) INTO users, dirty_from
              FROM (SELECT e.user_id, min(e.event_ts) AS at FROM @extschema@.raw_voice_events e
                     WHERE e.guild_id = g.guild_id
                       AND e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
                       AND e.ingest_id <@ event_ids
                     GROUP BY e.user_id
                    UNION ALL
                    SELECT v.user_id, x.taken_at
                      FROM @extschema@.raw_voice_snapshots x
                      CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                     WHERE x.guild_id = g.guild_id
                       AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                       AND x.ingest_id <@ snapshot_ids
                    UNION ALL
                    -- Sessions that end after the change without an event of their user after
                    -- it (a leave or a move is such an event, and is found just below).
                    SELECT v.user_id, guild_dirty FROM @extschema@.voice_sessions v
                     WHERE v.guild_id = g.guild_id AND (v.ended_at >= guild_dirty OR v.ended_at IS NULL)
                       AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))
                    UNION ALL
                    -- Users seen after a guild-wide change may have had sessions the old walk
                    -- dropped (begun inside what looked like an outage): walk them again too.
                    SELECT DISTINCT e.user_id, guild_dirty FROM @extschema@.raw_voice_events e
                     WHERE e.guild_id = g.guild_id AND e.event_ts >= guild_dirty
                    UNION ALL
                    SELECT DISTINCT v.user_id, guild_dirty
                      FROM @extschema@.raw_voice_snapshots x
                      CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                     WHERE x.guild_id = g.guild_id AND x.taken_at >= guild_dirty
                   ) t;
            users := coalesce(users, '{}');
            dirty_from := coalesce(dirty_from, '{}');
        END IF;

        SELECT users_rebuilt + w.users_rebuilt, sessions_opened + w.sessions_opened,
               sessions_closed + w.sessions_closed, sessions_updated + w.sessions_updated,
               sessions_removed + w.sessions_removed, w.changed_from
          INTO users_rebuilt, sessions_opened, sessions_closed, sessions_updated, sessions_removed, changed
          FROM @extschema@._voice_write_sessions(g.guild_id, horizon, users, dirty_from) w;
        -- Open sessions grow with the horizon even when nothing else changed.
        SELECT least(changed, (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                WHERE v.guild_id = g.guild_id AND v.ended_at IS NULL
                                  AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))))
          INTO changed;
        PERFORM @extschema@._note_voice_change(g.guild_id, changed);
        guilds_built := guilds_built + 1;

        INSERT INTO @extschema@.voice_build_guilds AS d (guild_id, horizon, has_heartbeats, settings_fingerprint, built_at)
        VALUES (g.guild_id, horizon, beats_exist, fingerprint, now())
        ON CONFLICT (guild_id) DO UPDATE
           SET horizon = EXCLUDED.horizon, has_heartbeats = EXCLUDED.has_heartbeats,
               settings_fingerprint = EXCLUDED.settings_fingerprint, built_at = EXCLUDED.built_at;
    END LOOP;

    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    elapsed := clock_timestamp() - started;
    status := CASE WHEN build_voice_sessions.full THEN 'ok: full rebuild' ELSE 'ok' END;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION build_event_attendance(full boolean DEFAULT false)
RETURNS TABLE (observations_read bigint, events_built bigint, attendance_rows bigint,
               elapsed interval, status text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    started      timestamptz := clock_timestamp();
    event_ids    int8multirange;
    touched      bigint[];
BEGIN
    observations_read := 0; events_built := 0; attendance_rows := 0;
    IF NOT @extschema@._try_builder_lock('build_event_attendance') THEN
        elapsed := clock_timestamp() - started;
        status := 'skipped: another build_event_attendance() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    IF build_event_attendance.full THEN
        PERFORM @extschema@._reset_progress('build_event_attendance');
        DELETE FROM @extschema@.voice_session_changes c WHERE c.consumer = 'build_event_attendance';
        TRUNCATE @extschema@.event_attendance, @extschema@.events;
    END IF;
    event_ids := @extschema@._claim_ingest_ids('build_event_attendance', 'raw_scheduled_events');
    SELECT count(*) INTO observations_read FROM @extschema@.raw_scheduled_events r
     WHERE r.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1 AND r.ingest_id <@ event_ids;

    -- Events with new observations, every event when starting over, and events whose window
    -- reaches into changed voice sessions (running events always do).
    SELECT array_agg(DISTINCT t.event_id) INTO touched FROM (
        SELECT r.event_id FROM @extschema@.raw_scheduled_events r
         WHERE r.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1 AND r.ingest_id <@ event_ids
        UNION ALL
        SELECT r.event_id FROM @extschema@.raw_scheduled_events r WHERE build_event_attendance.full
        UNION ALL
        SELECT e.event_id FROM @extschema@.events e
          JOIN @extschema@.voice_session_changes c
            ON c.consumer = 'build_event_attendance' AND c.guild_id = e.guild_id
         WHERE e.actual_start IS NOT NULL AND (e.actual_end IS NULL OR e.actual_end > c.changed_from)
    ) t;
    DELETE FROM @extschema@.voice_session_changes c WHERE c.consumer = 'build_event_attendance';
    touched := coalesce(touched, '{}');

    -- Latest state, and actual start and end from the status changes.
    INSERT INTO @extschema@.events AS ev (guild_id, event_id, name, entity_type, channel_id, status, is_cancelled,
                                          scheduled_start, scheduled_end, actual_start, actual_end,
                                          first_observed_at, last_observed_at)
    SELECT l.guild_id, l.event_id, l.name, l.entity_type, l.channel_id, l.status, l.status = 'canceled',
           l.scheduled_start, l.scheduled_end, s.actual_start,
           (SELECT min(r.observed_at) FROM @extschema@.raw_scheduled_events r
             WHERE r.event_id = l.event_id AND r.status IN ('completed', 'canceled')
               AND r.observed_at > s.actual_start),
           s.first_observed_at, s.last_observed_at
    FROM unnest(touched) AS t(event_id)
    CROSS JOIN LATERAL (SELECT * FROM @extschema@.raw_scheduled_events r WHERE r.event_id = t.event_id
                        ORDER BY r.observed_at DESC, r.ingest_id DESC LIMIT 1) l
    CROSS JOIN LATERAL (SELECT min(r.observed_at) FILTER (WHERE r.status = 'active') AS actual_start,
                               min(r.observed_at) AS first_observed_at, max(r.observed_at) AS last_observed_at
                        FROM @extschema@.raw_scheduled_events r WHERE r.event_id = t.event_id) s
    ON CONFLICT (event_id) DO UPDATE
       SET guild_id = EXCLUDED.guild_id, name = EXCLUDED.name, entity_type = EXCLUDED.entity_type,
           channel_id = EXCLUDED.channel_id, status = EXCLUDED.status, is_cancelled = EXCLUDED.is_cancelled,
           scheduled_start = EXCLUDED.scheduled_start, scheduled_end = EXCLUDED.scheduled_end,
           actual_start = EXCLUDED.actual_start, actual_end = EXCLUDED.actual_end,
           first_observed_at = EXCLUDED.first_observed_at, last_observed_at = EXCLUDED.last_observed_at;
    GET DIAGNOSTICS events_built = ROW_COUNT;

    DELETE FROM @extschema@.event_attendance a WHERE a.event_id = ANY (touched);
    INSERT INTO @extschema@.event_attendance (event_id, guild_id, user_id, first_join, last_leave,
                                              overlap_seconds, joined_on_time)
    SELECT w.event_id, w.guild_id, v.user_id, min(v.started_at),
           CASE WHEN bool_or(v.ended_at IS NULL) THEN NULL ELSE max(v.ended_at) END,
           sum(extract(epoch FROM least(coalesce(v.ended_at, w.horizon), w.window_end)
                                  - greatest(v.started_at, w.actual_start)))::double precision,
           min(v.started_at) <= w.actual_start + w.event_grace
    FROM (SELECT e.event_id, e.guild_id, e.channel_id, e.actual_start, st.event_grace, b.horizon,
                 coalesce(e.actual_end, b.horizon) AS window_end
            FROM @extschema@.events e
            JOIN @extschema@.voice_build_guilds b ON b.guild_id = e.guild_id
            CROSS JOIN LATERAL @extschema@.settings_for(e.guild_id) st
           WHERE e.event_id = ANY (touched) AND e.actual_start IS NOT NULL) w
    JOIN @extschema@.voice_sessions v
      ON v.guild_id = w.guild_id AND NOT v.is_afk
     AND (w.channel_id IS NULL OR v.channel_id = w.channel_id)
     AND v.started_at < w.window_end
     AND coalesce(v.ended_at, w.horizon) > w.actual_start
    GROUP BY w.event_id, w.guild_id, v.user_id, w.actual_start, w.event_grace
    HAVING sum(extract(epoch FROM least(coalesce(v.ended_at, w.horizon), w.window_end)
                                  - greatest(v.started_at, w.actual_start))) > 0;
    GET DIAGNOSTICS attendance_rows = ROW_COUNT;

    -- The weekly and monthly rollups count attendance: refresh them from these events on.
    INSERT INTO @extschema@.voice_session_changes AS c (consumer, guild_id, changed_from)
    SELECT 'build_rollups', e.guild_id, min(coalesce(e.actual_start, e.first_observed_at))
    FROM @extschema@.events e WHERE e.event_id = ANY (touched)
    GROUP BY e.guild_id
    ON CONFLICT (consumer, guild_id) DO UPDATE SET changed_from = least(c.changed_from, EXCLUDED.changed_from);

    elapsed := clock_timestamp() - started;
    status := CASE WHEN build_event_attendance.full THEN 'ok: full rebuild' ELSE 'ok' END;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION build_rollups(full boolean DEFAULT false)
RETURNS TABLE (guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint,
               elapsed interval, status text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    started      timestamptz := clock_timestamp();
    message_ids  int8multirange;
    g            record;
    n            bigint;
    tracked_since timestamptz;
BEGIN
    guilds_refreshed := 0; daily_rows := 0; weekly_rows := 0; monthly_rows := 0;
    IF NOT @extschema@._try_builder_lock('build_rollups') THEN
        elapsed := clock_timestamp() - started;
        status := 'skipped: another build_rollups() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    IF build_rollups.full THEN
        PERFORM @extschema@._reset_progress('build_rollups');
        TRUNCATE @extschema@.member_voice_daily, @extschema@.member_engagement_weekly,
                 @extschema@.member_monthly_status;
    END IF;
    message_ids := @extschema@._claim_ingest_ids('build_rollups', 'raw_messages');

    FOR g IN
        SELECT c.guild_id, min(c.changed_from) AS changed_from, s.calendar_time_zone AS tz,
               coalesce(b.horizon, '-infinity') AS horizon
        FROM (SELECT v.guild_id, v.changed_from FROM @extschema@.voice_session_changes v
               WHERE v.consumer = 'build_rollups'
              UNION ALL
              SELECT m.guild_id, min(m.sent_at) FROM @extschema@.raw_messages m
               WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1
                 AND m.ingest_id <@ message_ids
               GROUP BY m.guild_id
              UNION ALL
              SELECT m.guild_id, '-infinity' FROM @extschema@.members m WHERE build_rollups.full
              GROUP BY m.guild_id) c
        CROSS JOIN LATERAL @extschema@.settings_for(c.guild_id) s
        LEFT JOIN @extschema@.voice_build_guilds b ON b.guild_id = c.guild_id
        GROUP BY c.guild_id, s.calendar_time_zone, b.horizon
        ORDER BY c.guild_id
    LOOP
        guilds_refreshed := guilds_refreshed + 1;

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
        daily_rows := daily_rows + n;

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
        weekly_rows := weekly_rows + n;

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
        monthly_rows := monthly_rows + n;
    END LOOP;
    DELETE FROM @extschema@.voice_session_changes c WHERE c.consumer = 'build_rollups';

    elapsed := clock_timestamp() - started;
    status := CASE WHEN build_rollups.full THEN 'ok: full rebuild' ELSE 'ok' END;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION erase_member(guild_id bigint, user_id bigint)
RETURNS TABLE (table_name text, rows_changed bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lock_wait text;
    n bigint;
BEGIN
    IF erase_member.guild_id IS NULL OR erase_member.user_id IS NULL THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): both are required', erase_member.guild_id, erase_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Waits for builds in flight, but not forever: a transaction left open holding a builder's
    -- lock gets a clear error instead of a hang (the caller's lock_timeout, else 30 seconds).
    lock_wait := current_setting('lock_timeout');
    BEGIN
        IF lock_wait = '0' THEN
            PERFORM set_config('lock_timeout', '30s', true);
        END IF;
        PERFORM 1 FROM @extschema@.builder_locks l ORDER BY l.builder FOR UPDATE;
        PERFORM set_config('lock_timeout', lock_wait, true);
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): a build held the builders'' locks for longer than lock_timeout (%); nothing was erased',
            erase_member.guild_id, erase_member.user_id, CASE lock_wait WHEN '0' THEN '30s' ELSE lock_wait END
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Retry when the build has committed; pg_stat_activity shows the transaction holding guildstats.builder_locks.';
    END;

    -- Every table with a (guild_id, user_id) pair, raw first.
    FOR table_name IN
        SELECT c.relname::text
          FROM pg_class c
          JOIN pg_namespace s ON s.oid = c.relnamespace
         WHERE s.nspname = '@extschema@' AND c.relkind = 'r'
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
         ORDER BY c.relname NOT LIKE 'raw\_%', c.relname
    LOOP
        EXECUTE format('DELETE FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2', table_name)
            USING erase_member.guild_id, erase_member.user_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        rows_changed := n;
        RETURN NEXT;
    END LOOP;

    UPDATE @extschema@.raw_voice_snapshots s
       SET voice_states = (SELECT coalesce(jsonb_agg(v ORDER BY o), '[]'::jsonb)
                             FROM jsonb_array_elements(s.voice_states) WITH ORDINALITY AS e(v, o)
                            WHERE (v->>'user_id') IS DISTINCT FROM erase_member.user_id::text)
     WHERE s.guild_id = erase_member.guild_id
       AND jsonb_typeof(s.voice_states) = 'array'
       AND EXISTS (SELECT 1 FROM jsonb_array_elements(s.voice_states) v
                    WHERE v->>'user_id' = erase_member.user_id::text);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_voice_snapshots'; rows_changed := n; RETURN NEXT;

    UPDATE @extschema@.raw_scheduled_events e
       SET creator_id = NULL
     WHERE e.guild_id = erase_member.guild_id AND e.creator_id = erase_member.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_scheduled_events'; rows_changed := n; RETURN NEXT;

END
$$;

-- ---------------------------------------------------------------------------------------------
-- ET:Legacy import (issue 10, items 9-11): files are imported by the builders, never by the
-- insert; per-file range errors and UTF-8 repair warnings; a bounded file name.
-- ---------------------------------------------------------------------------------------------

-- Inserting a file no longer imports it (build_all() / import_et_rounds() do), so that the
-- ingester's INSERT cannot time out or fail because of the file.
DROP TRIGGER raw_et_stats_files_import ON raw_et_stats_files;
DROP FUNCTION _et_import_on_insert();

ALTER TABLE raw_et_stats_files ADD COLUMN import_warning text;

-- A name longer than any file name used to fail on the btree index (the row was lost); now it
-- is a check violation the ingesters set aside with the reason. A row stored before with such a
-- name is kept: the constraint then covers new rows only (NOT VALID), and a warning says so.
DO $length$
DECLARE
    too_long bigint;
BEGIN
    SELECT count(*) INTO too_long FROM raw_et_stats_files WHERE octet_length(file_name) > 1024;
    IF too_long = 0 THEN
        ALTER TABLE raw_et_stats_files ADD CONSTRAINT raw_et_stats_files_file_name_length
            CHECK (octet_length(file_name) <= 1024);
    ELSE
        ALTER TABLE raw_et_stats_files ADD CONSTRAINT raw_et_stats_files_file_name_length
            CHECK (octet_length(file_name) <= 1024) NOT VALID;
        RAISE WARNING 'guildstats: % raw_et_stats_files row(s) have a file name longer than 1024 bytes; they are kept, and raw_et_stats_files_file_name_length checks new rows only', too_long;
    END IF;
END
$length$;

COMMENT ON TABLE raw_et_stats_files IS
    'ET:Legacy end-of-round stats files (c0rnp0rn format), byte for byte as fetched. The same content is stored once, whatever its name or source. import_et_rounds() (run by build_all(), which pg_cron runs every minute) parses them and records its outcome in imported_at / import_error / import_warning; the content always stays, and inserting a row never imports anything, so no file can make the insert fail or time out.';
COMMENT ON COLUMN raw_et_stats_files.file_name IS 'File name as on the game server, e.g. 2025-10-12-213000-supply-round-1.txt; it carries the round''s date, time, map and round number. At most 1024 bytes (a Linux file name has at most 255): a longer one is refused with a check violation (SQLSTATE 23514), which the ingesters set aside with the reason, instead of failing on the index.';
COMMENT ON COLUMN raw_et_stats_files.import_warning IS 'What the import had to repair to read the file, naming the file (bytes that were not UTF-8, replaced by U+FFFD); NULL for a clean file or one not imported yet.';

-- One file: parse, store the round and its players with the file's values, record what the
-- parser repaired. Raises on a bad file, with a message that names it (parse errors do; any
-- other error gets the name in front); import_et_rounds() runs it in a subtransaction.
CREATE OR REPLACE FUNCTION _et_import_file(raw_ingest_id bigint)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    raw record;
    doc jsonb;
    new_round_id bigint;
BEGIN
    SELECT r.ingest_id, r.file_name, r.source, r.content, r.sha256 INTO raw
    FROM @extschema@.raw_et_stats_files r WHERE r.ingest_id = raw_ingest_id;
    BEGIN
        doc := @extschema@.et_parse_round(raw.file_name, raw.content);
        INSERT INTO @extschema@.et_rounds (
            raw_ingest_id, sha256, file_name, source, saved_at, map, round_number, server_name,
            server_name_raw, config, defender_team, winner_team, time_limit_seconds,
            time_used_seconds, lua_fields, player_count)
        VALUES (
            raw.ingest_id, raw.sha256, raw.file_name, raw.source, (doc ->> 'saved_at')::timestamp,
            doc ->> 'map', (doc ->> 'round_number')::smallint, doc #>> '{header,server_name}',
            doc #>> '{header,server_name_raw}', doc #>> '{header,config}',
            (doc #>> '{header,defender_team}')::smallint, (doc #>> '{header,winner_team}')::smallint,
            (doc #>> '{header,time_limit_seconds}')::integer,
            (doc #>> '{header,time_used_seconds}')::integer, (doc ->> 'lua_fields')::smallint,
            jsonb_array_length(doc -> 'players'))
        RETURNING round_id INTO new_round_id;
        PERFORM @extschema@._et_store_players(
            @extschema@._et_player_rows(new_round_id, doc -> 'players', doc -> 'players'));
    EXCEPTION WHEN OTHERS THEN
        IF starts_with(SQLERRM, raw.file_name) THEN
            RAISE;
        END IF;
        RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = raw.file_name || ': ' || SQLERRM;
    END;
    UPDATE @extschema@.raw_et_stats_files
    SET import_warning = nullif(array_to_string(ARRAY(
            SELECT jsonb_array_elements_text(doc -> 'warnings')), E'\n'), '')
    WHERE ingest_id = raw.ingest_id;
    RETURN new_round_id;
END
$$;
COMMENT ON FUNCTION _et_import_file(bigint) IS
    'Internal: imports one raw ET:Legacy file and records its warnings in import_warning (raises on a malformed file).';
COMMENT ON FUNCTION et_parse_round(text, bytea) IS
    'Parses one ET:Legacy stats file (c0rnp0rn format, Lua versions with 33, 36, 37 or 38 extended fields) without writing anything: a jsonb document with the file name facts, the header, every player with weapons and named extended fields (absent fields are null, never 0), and warnings (bytes that were not UTF-8, replaced by U+FFFD). Raises an error naming the file, line and problem when the file is malformed, and also the player, field and value when a number lies outside its documented range (counts 0 to 2147483647, team 1 to 3, header round 1 or 2 and the file name''s, defender and winner 1 or 2). Example: SELECT guildstats.et_parse_round(file_name, content) -> ''header'' FROM guildstats.raw_et_stats_files;';

COMMENT ON FUNCTION _et_import_file(bigint) IS
    'Internal: imports one raw ET:Legacy file and records its warnings in import_warning (raises on a malformed file).';

-- Files imported by 0.1.0 are held to the 0.2.0 rules too, so that an upgraded database holds
-- what a fresh import of the same files gives: a file with a number outside its range (once
-- stored as NULL) loses its round and gets its error; a repaired one gets its warning; a byte
-- order mark leaves the server name. If any round went, every round is relinked by the next
-- import_et_rounds() (build_all() runs it within a minute), so that no pairing, match or
-- session names it for long: linking here would create its work table as an extension member.
DO $revalidate$
DECLARE
    f record;
    doc jsonb;
    dropped integer := 0;
BEGIN
    FOR f IN SELECT r.ingest_id, r.file_name, r.content
             FROM raw_et_stats_files r WHERE r.imported_at IS NOT NULL
             ORDER BY r.ingest_id
    LOOP
        BEGIN
            doc := et_parse_round(f.file_name, f.content);
            IF jsonb_array_length(doc -> 'warnings') > 0 THEN
                UPDATE raw_et_stats_files
                SET import_warning = array_to_string(ARRAY(
                        SELECT jsonb_array_elements_text(doc -> 'warnings')), E'\n')
                WHERE ingest_id = f.ingest_id;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            DELETE FROM et_rounds WHERE raw_ingest_id = f.ingest_id;
            UPDATE raw_et_stats_files SET imported_at = NULL, import_error = SQLERRM
            WHERE ingest_id = f.ingest_id;
            dropped := dropped + 1;
        END;
    END LOOP;
    UPDATE et_rounds
    SET server_name = substr(server_name, 2), server_name_raw = substr(server_name_raw, 2)
    WHERE starts_with(server_name_raw, U&'\FEFF');
    IF dropped > 0 THEN
        -- Rounds without a session are what the next import links; with no link state left it
        -- relinks every round from scratch (as after a change of et_session_gap).
        UPDATE et_rounds SET et_session_id = NULL;
        DELETE FROM et_link_state;
        RAISE WARNING 'guildstats: % imported ET:Legacy file(s) break the 0.2.0 range rules; their rounds were removed, import_error says why, and the next import_et_rounds() relinks every round', dropped;
    END IF;
END
$revalidate$;
-- ==== privacy: erasure in every form, export_member, opt_out, per-guild isolation (issue 10: 8, 14, 15, 16)

-- raw_tables.sql: the snapshot column's comment tells the canonical form.
COMMENT ON COLUMN raw_voice_snapshots.voice_states IS
    'JSON array of objects {"user_id": bigint, "channel_id": bigint, "self_mute": bool, "self_deaf": bool}; user and channel ids may be sent as numbers or strings of digits and are stored as numbers (trigger raw_voice_snapshots_canonical). A document that is not an array is not a snapshot: kept as sent, ignored by the builders.';

-- sql/extension/privacy.sql, whole: every object in it is new except erase_member (replaced).
-- Erasure: a member who asks to be forgotten is removed from every table that names them, raw
-- and derived, in one transaction. The builders' locks are taken first (waiting, not trying), so
-- no build in flight can write the member back from rows it read before the erasure.
--
-- Snapshots are rewritten without the member's entry rather than deleted: the other people in
-- voice at that moment are still true. A scheduled event the member created keeps existing
-- without its creator. ET:Legacy rounds are the game server's public record under a nickname and
-- are kept; the member's links to their GUIDs (et_guid_links) go with the other tables.

-- Snowflakes in JSON documents. The ingesters may send a user id as a number or as a string of
-- digits; "04242" and 4242 are the same member. Everything that looks for a member in a document
-- compares through _snowflake(), and snapshots are stored in one canonical form (numbers), so
-- that erasure, export and opt-out cannot miss an entry because of how it was spelled.
CREATE FUNCTION _snowflake(value jsonb)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT CASE
        WHEN jsonb_typeof(value) = 'string' AND (value #>> '{}') ~ '^0*[0-9]{1,19}$'
             AND (value #>> '{}')::numeric <= 9223372036854775807
            THEN (value #>> '{}')::numeric::bigint
        WHEN jsonb_typeof(value) = 'number' AND (value #>> '{}')::numeric BETWEEN 0 AND 9223372036854775807
             AND (value #>> '{}')::numeric = trunc((value #>> '{}')::numeric)
            THEN (value #>> '{}')::numeric::bigint
    END
$$;
COMMENT ON FUNCTION _snowflake(jsonb) IS
    'Internal: the Discord id a JSON value holds (a whole number, or a string of digits with any leading zeros, within bigint); NULL for anything else.';

CREATE FUNCTION _mentions_id(document jsonb, id bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT EXISTS (
        SELECT 1 FROM jsonb_path_query(document, 'strict $.**') v
         WHERE jsonb_typeof(v) IN ('number', 'string') AND @extschema@._snowflake(v) = id)
$$;
COMMENT ON FUNCTION _mentions_id(jsonb, bigint) IS
    'Internal: the JSON document holds the id anywhere, at any depth, as a number or a string of digits.';

-- The canonical voice_states: the same array with every user_id and channel_id that is a
-- snowflake written as a JSON number. Entries the builders cannot read stay as they came (they
-- are skipped at build time and still found by erasure). A document that is not an array is not
-- a snapshot (the builders ignore it); it is kept as sent, and erase_member() blanks it to JSON
-- null when it mentions the member anywhere.
CREATE FUNCTION _canonical_voice_states(voice_states jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT CASE jsonb_typeof(voice_states)
        WHEN 'array' THEN (
            SELECT coalesce(jsonb_agg(
                       CASE WHEN jsonb_typeof(v) = 'object'
                            THEN v || jsonb_strip_nulls(jsonb_build_object(
                                          'user_id', @extschema@._snowflake(v -> 'user_id'),
                                          'channel_id', @extschema@._snowflake(v -> 'channel_id')))
                            ELSE v END
                       ORDER BY n), '[]'::jsonb)
              FROM jsonb_array_elements(voice_states) WITH ORDINALITY AS e(v, n))
        ELSE voice_states END
$$;
COMMENT ON FUNCTION _canonical_voice_states(jsonb) IS
    'Internal: a raw_voice_snapshots.voice_states array with every user_id and channel_id that is a snowflake written as a JSON number ("04242" becomes 4242); other entries and non-array documents unchanged.';

CREATE FUNCTION _voice_state_is_member(entry jsonb, user_id bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT coalesce(@extschema@._snowflake(entry -> 'user_id') = user_id,
                    @extschema@._mentions_id(entry, user_id))
$$;
COMMENT ON FUNCTION _voice_state_is_member(jsonb, bigint) IS
    'Internal: a voice_states entry is the member''s: its user_id is theirs however spelled, or, when it has no readable user_id, it mentions their id anywhere.';

-- Every table of the extension that names a member by (guild_id, user_id), found by catalog so
-- that a new one cannot be forgotten by erasure, export or opt-out. Raw tables first.
CREATE FUNCTION _member_tables()
RETURNS SETOF text
LANGUAGE sql STABLE
AS $$
    SELECT c.relname::text
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
     WHERE s.nspname = '@extschema@' AND c.relkind = 'r'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
     ORDER BY c.relname NOT LIKE 'raw\_%', c.relname
$$;
COMMENT ON FUNCTION _member_tables() IS
    'Internal: the extension''s tables that have both guild_id and user_id, raw tables first.';

-- Opt-out: one list in the database, read by the Discord bot too. Inserting a member erases
-- everything stored about them in that guild; from then on the raw tables drop their rows on
-- arrival (a BEFORE trigger), whichever ingester sends them and however stale its own list is,
-- so the builders never see them. Deleting the row opts the member back in, from then on.
CREATE TABLE opt_out (
    guild_id  bigint      NOT NULL,
    user_id   bigint      NOT NULL,
    since     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);
COMMENT ON TABLE opt_out IS
    'Members who opted out of tracking, per guild. Inserting a row erases the member''s stored rows in that guild (erase_member) and makes every raw table drop their later rows on arrival; the Discord bot reads the same list and does not even send them. Delete the row to opt back in.';
COMMENT ON COLUMN opt_out.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN opt_out.user_id IS 'Discord user snowflake of the member who opted out.';
COMMENT ON COLUMN opt_out.since IS 'When the opt-out was recorded.';
SELECT pg_catalog.pg_extension_config_dump('opt_out', '');

CREATE FUNCTION is_opted_out(guild_id bigint, user_id bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@.opt_out o
                    WHERE o.guild_id = is_opted_out.guild_id AND o.user_id = is_opted_out.user_id)
$$;
COMMENT ON FUNCTION is_opted_out(bigint, bigint) IS
    'The member opted out of tracking in the guild (has a row in opt_out). Example: SELECT guildstats.is_opted_out(guild_id => 1, user_id => 42);';

-- Raw tables that name a member by (guild_id, user_id): a row of an opted-out member is dropped
-- (RETURN NULL), not refused, so that the rest of the ingester's batch goes on. The trigger
-- functions are SECURITY DEFINER because the ingest role may execute no function of its own;
-- they touch nothing but the row and the list.
CREATE FUNCTION _drop_opted_out_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF @extschema@.is_opted_out(NEW.guild_id, NEW.user_id) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION _drop_opted_out_row() IS
    'Internal trigger function: drops an arriving raw row whose (guild_id, user_id) is in opt_out.';

CREATE FUNCTION _scheduled_event_without_opted_out()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.creator_id IS NOT NULL AND @extschema@.is_opted_out(NEW.guild_id, NEW.creator_id) THEN
        NEW.creator_id := NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION _scheduled_event_without_opted_out() IS
    'Internal trigger function: an arriving scheduled event keeps no creator who opted out.';

CREATE FUNCTION _canonical_snapshot()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.voice_states := @extschema@._canonical_voice_states(NEW.voice_states);
    IF jsonb_typeof(NEW.voice_states) = 'array'
       AND EXISTS (SELECT 1 FROM @extschema@.opt_out o WHERE o.guild_id = NEW.guild_id) THEN
        NEW.voice_states := (
            SELECT coalesce(jsonb_agg(v ORDER BY n), '[]'::jsonb)
              FROM jsonb_array_elements(NEW.voice_states) WITH ORDINALITY AS e(v, n)
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.opt_out o
                                WHERE o.guild_id = NEW.guild_id
                                  AND @extschema@._voice_state_is_member(v, o.user_id)));
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION _canonical_snapshot() IS
    'Internal trigger function: stores raw_voice_snapshots.voice_states in canonical form (_canonical_voice_states) without the entries of members who opted out.';

CREATE TRIGGER raw_voice_snapshots_canonical
BEFORE INSERT OR UPDATE OF voice_states, guild_id ON raw_voice_snapshots
FOR EACH ROW EXECUTE FUNCTION _canonical_snapshot();
COMMENT ON TRIGGER raw_voice_snapshots_canonical ON raw_voice_snapshots IS
    'Writes user and channel ids as JSON numbers and leaves out members who opted out, so that erasure, export and the builders see one spelling.';

CREATE TRIGGER raw_scheduled_events_opt_out
BEFORE INSERT OR UPDATE OF creator_id, guild_id ON raw_scheduled_events
FOR EACH ROW EXECUTE FUNCTION _scheduled_event_without_opted_out();
COMMENT ON TRIGGER raw_scheduled_events_opt_out ON raw_scheduled_events IS
    'A scheduled event created by a member who opted out is stored without its creator.';

-- One trigger per table that names a member, found by catalog so that a new raw table cannot be
-- forgotten (the regression test checks every such table has it).
DO $opt_out_triggers$
DECLARE
    member_table text;
BEGIN
    FOR member_table IN
        SELECT t FROM @extschema@._member_tables() t WHERE t LIKE 'raw\_%' OR t = 'et_guid_links'
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF guild_id, user_id ON @extschema@.%I
                        FOR EACH ROW EXECUTE FUNCTION @extschema@._drop_opted_out_row()',
                       member_table || '_opt_out', member_table);
        EXECUTE format('COMMENT ON TRIGGER %I ON @extschema@.%I IS %L',
                       member_table || '_opt_out', member_table,
                       'Drops an arriving row of a member who opted out (see opt_out).');
    END LOOP;
END
$opt_out_triggers$;

CREATE OR REPLACE FUNCTION erase_member(guild_id bigint, user_id bigint)
RETURNS TABLE (table_name text, rows_changed bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    builder text;
    n bigint;
BEGIN
    IF erase_member.guild_id IS NULL OR erase_member.user_id IS NULL THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): both are required', erase_member.guild_id, erase_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOREACH builder IN ARRAY ARRAY['build_voice_sessions', 'build_members', 'build_event_attendance',
                                   'build_rollups', 'import_et_rounds'] LOOP
        PERFORM pg_advisory_xact_lock(hashtext('guildstats.' || builder));
    END LOOP;

    -- Every table with a (guild_id, user_id) pair, raw first.
    FOR table_name IN
        -- The list itself must survive the erasure it causes.
        SELECT t FROM @extschema@._member_tables() t WHERE t <> 'opt_out'
    LOOP
        EXECUTE format('DELETE FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2', table_name)
            USING erase_member.guild_id, erase_member.user_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        rows_changed := n;
        RETURN NEXT;
    END LOOP;

    -- Snapshots in every form: entries whose user_id is the member, however spelled; entries
    -- the builders cannot read that mention the member anywhere; and documents that are not
    -- arrays (not snapshots at all) that mention the member, blanked to JSON null.
    UPDATE @extschema@.raw_voice_snapshots s
       SET voice_states = CASE jsonb_typeof(s.voice_states)
               WHEN 'array' THEN (
                   SELECT coalesce(jsonb_agg(v ORDER BY o), '[]'::jsonb)
                     FROM jsonb_array_elements(s.voice_states) WITH ORDINALITY AS e(v, o)
                    WHERE NOT @extschema@._voice_state_is_member(v, erase_member.user_id))
               ELSE 'null'::jsonb END
     WHERE s.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(s.voice_states, erase_member.user_id)
       AND (jsonb_typeof(s.voice_states) <> 'array'
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(s.voice_states) v
                        WHERE @extschema@._voice_state_is_member(v, erase_member.user_id)));
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_voice_snapshots'; rows_changed := n; RETURN NEXT;

    UPDATE @extschema@.raw_scheduled_events e
       SET creator_id = NULL
     WHERE e.guild_id = erase_member.guild_id AND e.creator_id = erase_member.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_scheduled_events'; rows_changed := n; RETURN NEXT;

END
$$;

COMMENT ON FUNCTION erase_member(bigint, bigint) IS
    'Forgets a member of a guild: deletes their rows from every raw and derived table that has (guild_id, user_id) (opt_out excepted), removes their entries from voice snapshots however the id is spelled (a document that is not an array and mentions them becomes JSON null), clears them as creator of scheduled events and unlinks their ET:Legacy GUIDs. Returns the rows changed per table. To keep their later rows out too, insert them into opt_out instead (which calls this). Example: SELECT * FROM guildstats.erase_member(guild_id => 1, user_id => 42);';
-- The opt-out takes effect in the transaction that records it. The member tables are locked
-- against inserts first (SHARE waits for inserts in flight and holds new ones until commit), so
-- no row of the member can slip in between the erasure and the commit of the list's row.
CREATE FUNCTION _opt_out_erase()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    member_table regclass;
BEGIN
    FOR member_table IN
        SELECT c.oid::regclass FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         WHERE t.tgfoid IN ('@extschema@._drop_opted_out_row()'::regprocedure,
                            '@extschema@._canonical_snapshot()'::regprocedure,
                            '@extschema@._scheduled_event_without_opted_out()'::regprocedure)
         ORDER BY c.oid
    LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', member_table);
    END LOOP;
    PERFORM @extschema@.erase_member(NEW.guild_id, NEW.user_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION _opt_out_erase() IS
    'Internal trigger function: a member who opts out is erased (erase_member) in the same transaction, with the member tables locked against inserts until it commits.';

CREATE TRIGGER opt_out_erase
AFTER INSERT OR UPDATE OF guild_id, user_id ON opt_out
FOR EACH ROW EXECUTE FUNCTION _opt_out_erase();
COMMENT ON TRIGGER opt_out_erase ON opt_out IS
    'Erases the member''s stored rows when they opt out.';

-- Access: everything stored about a member, as one document (the GDPR right of access). Built as
-- one query, so that every part comes from the same snapshot of the database. Other members'
-- entries in a voice snapshot are left out: only the member's own entry, with its snapshot's
-- identity and time, is theirs to see.
CREATE FUNCTION export_member(guild_id bigint, user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[] := ARRAY[]::text[];
    member_table text;
    document jsonb;
BEGIN
    IF export_member.guild_id IS NULL OR export_member.user_id IS NULL THEN
        RAISE EXCEPTION 'export_member(guild_id => %, user_id => %): both are required', export_member.guild_id, export_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Every table with a (guild_id, user_id) pair, the same set erase_member() empties.
    FOR member_table IN
        SELECT t FROM @extschema@._member_tables() t
    LOOP
        parts := array_append(parts, format(
            '%L, (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)), ''[]'') FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2)',
            member_table, member_table));
    END LOOP;
    parts := array_append(parts, $part$'raw_voice_snapshots', (
        SELECT coalesce(jsonb_agg(jsonb_build_object('ingest_id', s.ingest_id, 'guild_id', s.guild_id,
                                                     'taken_at', s.taken_at, 'source', s.source,
                                                     'received_at', s.received_at, 'voice_state', e.v)
                                  ORDER BY s.taken_at, e.n), '[]')
          FROM @extschema@.raw_voice_snapshots s
          CROSS JOIN LATERAL (SELECT v, n FROM jsonb_array_elements(
                                  CASE jsonb_typeof(s.voice_states) WHEN 'array' THEN s.voice_states
                                       ELSE jsonb_build_array(s.voice_states) END) WITH ORDINALITY AS x(v, n)) e
         WHERE s.guild_id = $1 AND @extschema@._voice_state_is_member(e.v, $2))$part$);
    parts := array_append(parts, $part$'raw_scheduled_events', (
        SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.observed_at, e.event_id), '[]')
          FROM @extschema@.raw_scheduled_events e WHERE e.guild_id = $1 AND e.creator_id = $2)$part$);
    -- The member's ET:Legacy rounds, through the GUIDs linked to them.
    parts := array_append(parts, $part$'et_player_rounds', (
        SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.round_id, p.guid), '[]')
          FROM @extschema@.et_player_rounds p
         WHERE p.guid IN (SELECT l.guid FROM @extschema@.et_guid_links l WHERE l.guild_id = $1 AND l.user_id = $2))$part$);
    EXECUTE format('SELECT jsonb_build_object(''guild_id'', $1, ''user_id'', $2, ''exported_at'', now(), ''tables'', jsonb_build_object(%s))',
                   array_to_string(parts, ', '))
       INTO document
      USING export_member.guild_id, export_member.user_id;
    RETURN document;
END
$$;
COMMENT ON FUNCTION export_member(bigint, bigint) IS
    'Everything stored about a member of a guild, raw and derived, as one JSON document (the GDPR right of access): {guild_id, user_id, exported_at, tables: {table: [rows]}} with every row of every table that has (guild_id, user_id), the member''s own entries of voice snapshots (others in the same snapshot are left out), the scheduled events they created, and their ET:Legacy rounds through linked GUIDs. Example: SELECT guildstats.export_member(guild_id => 1, user_id => 42);';

-- Snapshots stored before 0.2.0 get the canonical form the trigger now gives every new row.
UPDATE @extschema@.raw_voice_snapshots
   SET voice_states = @extschema@._canonical_voice_states(voice_states)
 WHERE voice_states IS DISTINCT FROM @extschema@._canonical_voice_states(voice_states);

-- sql/extension/isolation.sql, whole (new). A fresh install runs it last of all (finalize);
-- sections appended after this one that create views or tables with a guild_id must call
-- isolate_by_guild() on them.
-- Per-guild isolation for readers. A login bound to guilds in reader_guilds sees, in every table
-- that has a guild_id, only the rows of those guilds (and rows of no guild, such as the default
-- settings); a login bound to nothing sees no guild's rows. The admin and ingest roles, and
-- superusers (the builders run as one of these), see everything. Tables without a guild_id (game
-- servers, ET:Legacy rounds, build bookkeeping) are community-wide and not filtered.
--
-- Enforced by row-level security, so that it holds for every client (Superset, psql, a
-- notebook): views run with the caller's rights (security_invoker), and the reader-callable
-- functions are SECURITY INVOKER, so they read through the same policies.

CREATE TABLE reader_guilds (
    role_name  name        NOT NULL,
    guild_id   bigint,
    added_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reader_guilds_key UNIQUE NULLS NOT DISTINCT (role_name, guild_id)
);
COMMENT ON TABLE reader_guilds IS
    'Which guilds a login may read: one row per (login role, guild); guild_id NULL means every guild. A login with no row sees no guild''s rows. Members of guildstats_admin and guildstats_ingest, and superusers, see everything. Each login sees only its own rows here.';
COMMENT ON COLUMN reader_guilds.role_name IS 'The login role (current_user) the row binds; compared by name, so a renamed role must be bound again.';
COMMENT ON COLUMN reader_guilds.guild_id IS 'A guild the role may read; NULL: every guild.';
COMMENT ON COLUMN reader_guilds.added_at IS 'When the binding was made.';
SELECT pg_catalog.pg_extension_config_dump('reader_guilds', '');

ALTER TABLE reader_guilds ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_guilds_own ON reader_guilds
    USING (role_name = current_user
           OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                       WHERE r.rolname = 'guildstats_admin' AND pg_catalog.pg_has_role(r.oid, 'MEMBER')));
COMMENT ON POLICY reader_guilds_own ON reader_guilds IS
    'A login sees its own bindings; the admin sees and manages all of them.';

-- The one policy, written once. Every part is uncorrelated except guild_id, so PostgreSQL
-- evaluates the role checks once per query (InitPlans) and the guild list as a hashed subplan;
-- a reader's own `WHERE guild_id = ...` still uses the guild indexes (int8 equality is
-- leakproof, so it may run before the policy).
CREATE FUNCTION isolate_by_guild(relation regclass)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
    has_guild boolean;
BEGIN
    SELECT c.relkind,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
      INTO kind, has_guild
      FROM pg_class c WHERE c.oid = relation;
    IF kind IN ('v') THEN
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', relation);
        RETURN format('%s: view runs with the caller''s rights', relation);
    ELSIF kind = 'm' THEN
        RAISE EXCEPTION 'isolate_by_guild(%): a materialized view cannot carry row-level security', relation
            USING HINT = 'Store the rows in a table (refreshed by a function) or put a view over it, then isolate that.';
    ELSIF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'isolate_by_guild(%): only tables and views can be isolated', relation;
    ELSIF NOT has_guild THEN
        RAISE EXCEPTION 'isolate_by_guild(%): the table has no guild_id column', relation;
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', relation);
    IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = relation AND p.polname = 'guild_isolation') THEN
        EXECUTE format($policy$
            CREATE POLICY guild_isolation ON %s
                USING (guild_id IS NULL
                       OR guild_id IN (SELECT b.guild_id FROM @extschema@.reader_guilds b WHERE b.role_name = current_user)
                       OR EXISTS (SELECT 1 FROM @extschema@.reader_guilds b WHERE b.role_name = current_user AND b.guild_id IS NULL)
                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                                   WHERE r.rolname IN ('guildstats_admin', 'guildstats_ingest')
                                     AND pg_catalog.pg_has_role(r.oid, 'MEMBER')))
                WITH CHECK (true)$policy$, relation);
        EXECUTE format('COMMENT ON POLICY guild_isolation ON %s IS %L', relation,
                       'Readers see the rows of the guilds reader_guilds binds them to; admin and ingest see all. Writes are governed by the grants.');
    END IF;
    RETURN format('%s: rows filtered by reader_guilds', relation);
END
$$;
COMMENT ON FUNCTION isolate_by_guild(regclass) IS
    'Puts a table or view under per-guild isolation: a table with a guild_id gets row-level security with the guild_isolation policy (readers see the guilds reader_guilds binds them to), a view runs with the caller''s rights so the policies of the tables below apply. Idempotent. For relations created outside the extension, e.g. a BI mart; run as their owner. Example: SELECT guildstats.isolate_by_guild(''guildstats.voice_sessions'');';

SELECT count(@extschema@.isolate_by_guild(c.oid))
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname = '@extschema@'
   AND (c.relkind = 'v'
        OR (c.relkind IN ('r', 'p') AND c.relname <> 'reader_guilds'
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)));
-- ==== end of privacy

-- ==== BI mart (issue 11): schema guildstats_mart, the views dashboards read ====
-- Same statements as sql/extension/mart.sql.

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
SELECT v.guild_id, h.hour_start, (h.local_hour)::date AS day,
       extract(isodow FROM h.local_hour)::integer AS weekday,
       to_char(h.local_hour, 'ID Dy') AS weekday_name,
       extract(hour FROM h.local_hour)::integer AS hour_of_day,
       (sum(extract(epoch FROM least(coalesce(v.ended_at, b.horizon), h.hour_start + interval '1 hour')
                             - greatest(v.started_at, h.hour_start))) / 3600)::double precision AS voice_hours,
       count(DISTINCT v.user_id) AS voice_users
FROM @extschema@.voice_sessions v
JOIN @extschema@.voice_build_guilds b ON b.guild_id = v.guild_id
JOIN guildstats_mart.guilds g ON g.guild_id = v.guild_id
CROSS JOIN LATERAL (
    SELECT t AS hour_start, t AT TIME ZONE g.calendar_time_zone AS local_hour
    FROM generate_series(date_trunc('hour', v.started_at),
                         coalesce(v.ended_at, b.horizon) - interval '1 microsecond',
                         interval '1 hour') AS t) h
WHERE NOT v.is_afk AND coalesce(v.ended_at, b.horizon) > v.started_at
GROUP BY v.guild_id, h.hour_start, h.local_hour;
COMMENT ON VIEW guildstats_mart.voice_hour_weekday IS 'Voice time per hour (from voice sessions, AFK excluded), with the hour of day and weekday in the guild''s time zone: sum voice_hours by weekday_name and hour_of_day for the weekly heatmap.';
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

CREATE VIEW guildstats_mart.executive_daily AS
WITH member_marks AS (
    SELECT m.guild_id, (m.first_seen AT TIME ZONE g.calendar_time_zone)::date AS day, 1 AS delta
    FROM @extschema@.members m JOIN guildstats_mart.guilds g USING (guild_id)
    WHERE NOT m.is_bot
    UNION ALL
    SELECT m.guild_id, (m.left_at AT TIME ZONE g.calendar_time_zone)::date, -1
    FROM @extschema@.members m JOIN guildstats_mart.guilds g USING (guild_id)
    WHERE NOT m.is_bot AND m.left_at IS NOT NULL),
member_days AS (
    SELECT guild_id, day, sum(sum(delta)) OVER (PARTITION BY guild_id ORDER BY day) AS members
    FROM member_marks GROUP BY guild_id, day),
voice AS (
    SELECT d.guild_id, d.day, sum(d.active_seconds) / 3600.0 AS voice_hours
    FROM @extschema@.member_voice_daily d GROUP BY d.guild_id, d.day),
chat AS (
    SELECT c.guild_id, c.day, sum(c.messages) AS messages
    FROM @extschema@.chat_activity_daily c GROUP BY c.guild_id, c.day)
SELECT g.guild_id, a.day,
       (SELECT md.members FROM member_days md WHERE md.guild_id = g.guild_id AND md.day <= a.day
         ORDER BY md.day DESC LIMIT 1) AS members,
       a.dau, a.wau, a.mau, a.dau_mau, a.new_users AS new_members, a.returning_users AS returning_members,
       coalesce(c.messages, 0) AS messages, coalesce(v.voice_hours, 0) AS voice_hours,
       e.circulation AS points_in_circulation
FROM guildstats_mart.guilds g
CROSS JOIN LATERAL @extschema@.activity_daily(g.guild_id) a
LEFT JOIN chat c ON c.guild_id = g.guild_id AND c.day = a.day
LEFT JOIN voice v ON v.guild_id = g.guild_id AND v.day = a.day
LEFT JOIN LATERAL @extschema@.economy_health(g.guild_id) e ON e.day = a.day;
COMMENT ON VIEW guildstats_mart.executive_daily IS 'The executive numbers per guild and calendar day: members, DAU, WAU, MAU, stickiness (DAU/MAU), new and returning members, messages, voice hours and points in circulation.';
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
SELECT g.guild_id, r.cohort_start AS day, max(r.cohort_size) AS cohort_size,
       max(r.cohort_size) FILTER (WHERE r.period_offset = 1) AS d1_eligible,
       max(r.retained) FILTER (WHERE r.period_offset = 1) AS d1_retained,
       max(r.cohort_size) FILTER (WHERE r.period_offset = 7) AS d7_eligible,
       max(r.retained) FILTER (WHERE r.period_offset = 7) AS d7_retained,
       max(r.cohort_size) FILTER (WHERE r.period_offset = 30) AS d30_eligible,
       max(r.retained) FILTER (WHERE r.period_offset = 30) AS d30_retained
FROM guildstats_mart.guilds g
CROSS JOIN LATERAL @extschema@.retention(g.guild_id, 'day') r
GROUP BY g.guild_id, r.cohort_start;
COMMENT ON VIEW guildstats_mart.retention_daily IS 'D1, D7 and D30 retention per day of first activity: of the users first active that day, how many were active again exactly 1, 7 and 30 days later. Rate over a period: sum(dN_retained) / sum(dN_eligible).';
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
SELECT g.guild_id, 'week'::text AS period, c.cohort_by, r.cohort_start, r.cohort_size, r.period_offset,
       r.retained, r.rate, r.retained_or_later, r.rate_or_later
FROM guildstats_mart.guilds g
CROSS JOIN (VALUES ('first_activity'), ('join')) AS c(cohort_by)
CROSS JOIN LATERAL @extschema@.retention(g.guild_id, 'week', c.cohort_by) r
UNION ALL
-- Months come from the monthly rollup: an active month of member_monthly_status is a month
-- with voice, messages or attendance, the same activity retention() counts.
SELECT s.guild_id, 'month', c.cohort_by, r.cohort_start, r.cohort_size, r.period_offset,
       r.retained, r.rate, r.retained_or_later, r.rate_or_later
FROM (SELECT DISTINCT guild_id FROM @extschema@.member_monthly_status) s
CROSS JOIN (VALUES ('first_activity'), ('join')) AS c(cohort_by)
CROSS JOIN LATERAL (
    SELECT @extschema@.retention_agg(x.user_id,
                                     CASE WHEN c.cohort_by = 'join' THEN jm.join_month::timestamp END,
                                     CASE WHEN x.was_active THEN x.month::timestamp END, 'month') AS state
    FROM @extschema@.member_monthly_status x
    JOIN guildstats_mart.members jm ON jm.guild_id = x.guild_id AND jm.user_id = x.user_id
    WHERE x.guild_id = s.guild_id AND (x.was_active OR c.cohort_by = 'join')
      -- Discord reports the original join date of members from before tracking began: those
      -- joins have no activity to follow, so join cohorts start with the first tracked month.
      AND (c.cohort_by = 'first_activity'
           OR jm.join_month >= (SELECT min(y.month) FROM @extschema@.member_monthly_status y
                                 WHERE y.guild_id = s.guild_id))) a
CROSS JOIN LATERAL @extschema@.retention_rows(a.state) r;
COMMENT ON VIEW guildstats_mart.retention_cohorts IS 'Retention cohort tables for heatmaps: weekly and monthly cohorts, by first activity or by join month; one row per cohort and period offset (0 = the cohort''s own period).';
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
SELECT g.guild_id, e.day, e.circulation, e.earned, e.spent, e.net, e.accounts, e.users_with_points,
       e.median_balance, e.top1_share, e.gini, e.inflation, e.negative_streak,
       e.alert_inflation, e.alert_net_negative, e.alert_gini,
       array_to_string(e.alerts, ', ') AS alerts,
       0.10::double precision AS inflation_threshold, 0.7::double precision AS gini_threshold
FROM guildstats_mart.guilds g
CROSS JOIN LATERAL @extschema@.economy_health(g.guild_id) e;
COMMENT ON VIEW guildstats_mart.economy_daily IS 'The points economy per guild and calendar day (economy_health()): circulation, flows, inequality, inflation and the three alerts, with the alert thresholds as columns for chart lines.';
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
SELECT t.guild_id, (t.tx_ts AT TIME ZONE g.calendar_time_zone)::date AS day,
       t.user_id, coalesce(m.display_name, 'user ' || t.user_id) AS member_name,
       CASE WHEN t.reason = '' THEN '(none)' ELSE t.reason END AS reason,
       coalesce(sum(t.amount) FILTER (WHERE t.amount > 0), 0) AS earned,
       coalesce(-sum(t.amount) FILTER (WHERE t.amount < 0), 0) AS spent,
       count(*) AS transactions
FROM @extschema@.raw_point_transactions t
JOIN guildstats_mart.guilds g ON g.guild_id = t.guild_id
LEFT JOIN @extschema@.members m ON m.guild_id = t.guild_id AND m.user_id = t.user_id
GROUP BY t.guild_id, 2, t.user_id, m.display_name, 5;
COMMENT ON VIEW guildstats_mart.economy_flows_daily IS 'Point flows per guild, calendar day, member and reason: earned and spent. Sum by reason for earn vs spend by type, by member_name for top earners and spenders.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.user_id IS 'Discord user id of the holder.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.member_name IS 'The holder''s latest display name.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.reason IS 'Why the points moved (daily, message, shop, ...).';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.earned IS 'Points earned.';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.spent IS 'Points spent (a positive number).';
COMMENT ON COLUMN guildstats_mart.economy_flows_daily.transactions IS 'Transactions.';

CREATE VIEW guildstats_mart.chat_daily AS
SELECT c.guild_id, c.day, c.channel_id, coalesce(nullif(c.channel_name, ''), 'channel ' || c.channel_id) AS channel_name,
       c.messages, c.authors, c.characters, c.with_attachments, c.replies
FROM @extschema@.chat_activity_daily c;
COMMENT ON VIEW guildstats_mart.chat_daily IS 'Chat per guild, calendar day and channel, bots excluded.';
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
       h.polls, h.ok_polls, h.uptime, h.avg_players, h.max_players_seen, h.slots, h.utilization
FROM @extschema@.server_activity_hourly h
LEFT JOIN @extschema@.game_servers s ON s.address = h.server
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.game_servers_hourly IS 'Game servers per hour: uptime (share of polls answered), players and utilization (players / slots).';
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
SELECT g.guild_id, l.hour, l.source_table, l.rows,
       extract(epoch FROM l.avg_lag)::double precision AS avg_lag_seconds, l.p95_lag_seconds,
       extract(epoch FROM l.max_lag)::double precision AS max_lag_seconds
FROM @extschema@.ingest_lag_hourly l
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.ingest_lag_hourly IS 'How long after the fact each input reached the database, per raw table and hour of event time.';
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
SELECT m.guild_id, date_bin(interval '5 minutes', m.sent_at, timestamptz '2000-01-01 00:00+00') AS window_start,
       count(*) AS messages, count(DISTINCT m.user_id) AS authors
FROM @extschema@.raw_messages m
WHERE NOT m.is_bot
GROUP BY m.guild_id, 2;
COMMENT ON VIEW guildstats_mart.live_activity_5min IS 'Messages per guild and 5-minute window (bots excluded), for live operations panels; filter on window_start to keep it cheap.';
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

-- ==== the BI views under per-guild isolation (a fresh install runs isolation.sql after mart.sql)
SELECT count(@extschema@.isolate_by_guild(c.oid))
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname = 'guildstats_mart' AND c.relkind = 'v';

-- ==== functions that more than one section above changed: their final definitions
-- erase_member: the privacy section's version, with the builder lock table of the timestamps
-- section (a lock timeout and a clear error instead of advisory locks) and the quarantine.
CREATE OR REPLACE FUNCTION erase_member(guild_id bigint, user_id bigint)
RETURNS TABLE (table_name text, rows_changed bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lock_wait text;
    n bigint;
BEGIN
    IF erase_member.guild_id IS NULL OR erase_member.user_id IS NULL THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): both are required', erase_member.guild_id, erase_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Waits for builds in flight, but not forever: a transaction left open holding a builder's
    -- lock gets a clear error instead of a hang (the caller's lock_timeout, else 30 seconds).
    lock_wait := current_setting('lock_timeout');
    BEGIN
        IF lock_wait = '0' THEN
            PERFORM set_config('lock_timeout', '30s', true);
        END IF;
        PERFORM 1 FROM @extschema@.builder_locks l ORDER BY l.builder FOR UPDATE;
        PERFORM set_config('lock_timeout', lock_wait, true);
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): a build held the builders'' locks for longer than lock_timeout (%); nothing was erased',
            erase_member.guild_id, erase_member.user_id, CASE lock_wait WHEN '0' THEN '30s' ELSE lock_wait END
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Retry when the build has committed; pg_stat_activity shows the transaction holding guildstats.builder_locks.';
    END;

    -- Every table with a (guild_id, user_id) pair, raw first.
    FOR table_name IN
        -- The list itself must survive the erasure it causes.
        SELECT t FROM @extschema@._member_tables() t WHERE t <> 'opt_out'
    LOOP
        EXECUTE format('DELETE FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2', table_name)
            USING erase_member.guild_id, erase_member.user_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        rows_changed := n;
        RETURN NEXT;
    END LOOP;

    -- Snapshots in every form: entries whose user_id is the member, however spelled; entries
    -- the builders cannot read that mention the member anywhere; and documents that are not
    -- arrays (not snapshots at all) that mention the member, blanked to JSON null.
    UPDATE @extschema@.raw_voice_snapshots s
       SET voice_states = CASE jsonb_typeof(s.voice_states)
               WHEN 'array' THEN (
                   SELECT coalesce(jsonb_agg(v ORDER BY o), '[]'::jsonb)
                     FROM jsonb_array_elements(s.voice_states) WITH ORDINALITY AS e(v, o)
                    WHERE NOT @extschema@._voice_state_is_member(v, erase_member.user_id))
               ELSE 'null'::jsonb END
     WHERE s.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(s.voice_states, erase_member.user_id)
       AND (jsonb_typeof(s.voice_states) <> 'array'
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(s.voice_states) v
                        WHERE @extschema@._voice_state_is_member(v, erase_member.user_id)));
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_voice_snapshots'; rows_changed := n; RETURN NEXT;

    UPDATE @extschema@.raw_scheduled_events e
       SET creator_id = NULL
     WHERE e.guild_id = erase_member.guild_id AND e.creator_id = erase_member.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_scheduled_events'; rows_changed := n; RETURN NEXT;

    -- Quarantined raw rows are kept whole, so they name members inside row_data too (a
    -- snapshot's voice states, an event's creator). Those that mention the member go whole:
    -- nothing is built from them, and a redacted copy would no longer be the row that came.
    DELETE FROM @extschema@.quarantine q
     WHERE q.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(q.row_data, erase_member.user_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'quarantine (row_data)'; rows_changed := n; RETURN NEXT;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- ET:Legacy skill ratings (issue 13, item 3): et_rated_maps, et_rating_history, et_ratings,
-- build_et_ratings() (in build_all() after import_et_rounds), et_rating_games(),
-- et_win_probability(), et_balance_teams(); as sql/extension/et_ratings.sql creates them.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE et_rated_maps (
    map_seq          integer          PRIMARY KEY,
    match_id         text             NOT NULL UNIQUE,
    started_at       timestamp        NOT NULL,
    outcome          text             NOT NULL,
    fingerprint      text             NOT NULL,
    win_probability  double precision NOT NULL,
    rated_at         timestamptz      NOT NULL DEFAULT now()
);
COMMENT ON TABLE et_rated_maps IS
    'The stopwatch maps build_et_ratings() has rated, in rating order. Rebuilt from et_matches.';
COMMENT ON COLUMN et_rated_maps.map_seq IS 'Position in rating order (started_at, match_id), from 1.';
COMMENT ON COLUMN et_rated_maps.match_id IS 'The map (et_matches).';
COMMENT ON COLUMN et_rated_maps.started_at IS 'Save time of its round 1.';
COMMENT ON COLUMN et_rated_maps.outcome IS 'round1_attackers, round2_attackers or draw.';
COMMENT ON COLUMN et_rated_maps.fingerprint IS 'Internal: a hash of the sides, shares and result; a change replays the ratings from this map on.';
COMMENT ON COLUMN et_rated_maps.win_probability IS 'Predicted chance, before the map, that the round-1 attackers win (full-time players).';
COMMENT ON COLUMN et_rated_maps.rated_at IS 'When the map was rated.';

CREATE TABLE et_rating_history (
    guid          text             NOT NULL,
    map_seq       integer          NOT NULL,
    match_id      text             NOT NULL,
    side          smallint         NOT NULL,
    share         double precision NOT NULL,
    result        text             NOT NULL,
    mu_before     double precision NOT NULL,
    sigma_before  double precision NOT NULL,
    mu            double precision NOT NULL,
    sigma         double precision NOT NULL,
    PRIMARY KEY (guid, map_seq)
);
CREATE INDEX et_rating_history_seq_idx ON et_rating_history (map_seq);
COMMENT ON TABLE et_rating_history IS
    'One row per player and rated map: the rating before and after it. A GUID''s rows in map_seq order are its rating history.';
COMMENT ON COLUMN et_rating_history.guid IS 'The player (et_player_rounds.guid).';
COMMENT ON COLUMN et_rating_history.map_seq IS 'The map''s position in rating order (et_rated_maps).';
COMMENT ON COLUMN et_rating_history.match_id IS 'The map (et_matches).';
COMMENT ON COLUMN et_rating_history.side IS '1: the round-1 attackers; 2: the round-1 defenders.';
COMMENT ON COLUMN et_rating_history.share IS 'Share of the map the player played, in (0, 1]: their seconds over the rounds'' lengths.';
COMMENT ON COLUMN et_rating_history.result IS 'won, lost or draw.';
COMMENT ON COLUMN et_rating_history.mu_before IS 'Mean skill before the map (25 for a new player).';
COMMENT ON COLUMN et_rating_history.sigma_before IS 'Uncertainty before the map (25/3 for a new player).';
COMMENT ON COLUMN et_rating_history.mu IS 'Mean skill after the map.';
COMMENT ON COLUMN et_rating_history.sigma IS 'Uncertainty after the map.';

CREATE TABLE et_ratings (
    guid         text             PRIMARY KEY,
    mu           double precision NOT NULL,
    sigma        double precision NOT NULL,
    ordinal      double precision NOT NULL,
    maps         integer          NOT NULL,
    last_map_seq integer          NOT NULL
);
COMMENT ON TABLE et_ratings IS
    'Current skill rating of every ET:Legacy player (GUID) who played a rated stopwatch map (bots left out): the last row of their et_rating_history.';
COMMENT ON COLUMN et_ratings.guid IS 'The player.';
COMMENT ON COLUMN et_ratings.mu IS 'Mean skill.';
COMMENT ON COLUMN et_ratings.sigma IS 'Uncertainty of mu.';
COMMENT ON COLUMN et_ratings.ordinal IS 'mu - 3 sigma: the conservative skill leaderboards sort by.';
COMMENT ON COLUMN et_ratings.maps IS 'Rated maps played.';
COMMENT ON COLUMN et_ratings.last_map_seq IS 'The last rated map played (et_rated_maps.map_seq).';

INSERT INTO builder_locks (builder) VALUES ('build_et_ratings');

CREATE FUNCTION _et_normal_cdf(z double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    -- PostgreSQL 15 has no erf. erf(t) = 2/sqrt(pi) exp(-t^2) sum 2^n t^(2n+1) / (2n+1)!!:
    -- positive terms only, so no cancellation; beyond |t| = 6, 1 - erf(t) < 3e-17. The same
    -- series as the Rust engine's normal_cdf.
    t     double precision := z / sqrt(2.0::double precision);
    term  double precision := t;
    total double precision := t;
    n     integer := 0;
BEGIN
    IF abs(t) >= 6 THEN
        RETURN 0.5 * (1 + sign(t));
    END IF;
    WHILE abs(term) > abs(total) * 1e-17 LOOP
        n := n + 1;
        term := term * 2 * t * t / (2 * n + 1);
        total := total + term;
    END LOOP;
    RETURN 0.5 * (1 + 2 / sqrt(pi()) * exp(-t * t) * total);
END
$$;
COMMENT ON FUNCTION _et_normal_cdf(double precision) IS
    'Internal to the ratings: the standard normal distribution function (PostgreSQL 15 has no erf).';

CREATE FUNCTION et_win_probability(mu_a double precision[], sigma_a double precision[],
                                   mu_b double precision[], sigma_b double precision[])
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT @extschema@._et_normal_cdf(
        ((SELECT sum(m) FROM unnest(mu_a) m) - (SELECT sum(m) FROM unnest(mu_b) m))
        / sqrt(2 * (25.0 / 6) ^ 2 + (SELECT sum(s * s) FROM unnest(sigma_a) s)
                                  + (SELECT sum(s * s) FROM unnest(sigma_b) s)));
END;
COMMENT ON FUNCTION et_win_probability(double precision[], double precision[], double precision[], double precision[]) IS
    'Predicted chance that team A (its players'' mu and sigma) beats team B: Phi((sum mu_A - sum mu_B) / sqrt(2 beta^2 + sum sigma_A^2 + sum sigma_B^2)), beta = 25/6, as openskill''s PlackettLuce.predict_win. Example: SELECT guildstats.et_win_probability(''{30}'', ''{5}'', ''{25}'', ''{8}'');';

-- One game's update (Weng & Lin 2011, Algorithm 4, two teams; openskill's constants: beta 25/6,
-- kappa 0.0001, tau 25/300), with each player counted by their share of the map. The arrays
-- are parallel, one element a player; side is 1 or 2; winner_side 0 for a draw.
CREATE FUNCTION _et_rate_game(side smallint[], mu double precision[], sigma double precision[],
                              share double precision[], winner_side smallint,
                              OUT new_mu double precision[], OUT new_sigma double precision[])
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    beta_sq   constant double precision := (25.0 / 6) ^ 2;
    kappa     constant double precision := 0.0001;
    tau_sq    constant double precision := (25.0 / 300) ^ 2;
    team_mu   double precision[] := '{0,0}';
    team_var  double precision[] := '{0,0}';
    rank      integer[];
    e         double precision[];
    sum_q     double precision[] := '{0,0}';
    a         double precision[] := '{0,0}';
    omega     double precision[] := '{0,0}';
    delta     double precision[] := '{0,0}';
    c         double precision;
    quotient  double precision;
    var       double precision;
    part      double precision;
    i         integer;
    q         integer;
    s         integer;
BEGIN
    FOR i IN 1 .. cardinality(side) LOOP
        var := sigma[i] * sigma[i] + tau_sq;
        team_mu[side[i]] := team_mu[side[i]] + share[i] * mu[i];
        team_var[side[i]] := team_var[side[i]] + share[i] * var;
    END LOOP;
    rank := CASE winner_side WHEN 1 THEN '{0,1}'::integer[] WHEN 2 THEN '{1,0}'::integer[] ELSE '{0,0}'::integer[] END;
    c := sqrt(team_var[1] + beta_sq + team_var[2] + beta_sq);
    e := ARRAY[exp(team_mu[1] / c), exp(team_mu[2] / c)];
    FOR q IN 1 .. 2 LOOP
        FOR s IN 1 .. 2 LOOP
            IF rank[s] >= rank[q] THEN sum_q[q] := sum_q[q] + e[s]; END IF;
            IF rank[s] = rank[q] THEN a[q] := a[q] + 1; END IF;
        END LOOP;
    END LOOP;
    FOR i IN 1 .. 2 LOOP
        FOR q IN 1 .. 2 LOOP
            CONTINUE WHEN rank[q] > rank[i];
            quotient := e[i] / sum_q[q];
            delta[i] := delta[i] + quotient * (1 - quotient) / a[q];
            omega[i] := omega[i] + CASE WHEN q = i THEN 1 - quotient ELSE -quotient END / a[q];
        END LOOP;
        omega[i] := omega[i] * team_var[i] / c;
        delta[i] := delta[i] * sqrt(team_var[i]) / c * team_var[i] / (c * c);
    END LOOP;
    new_mu := '{}'; new_sigma := '{}';
    FOR i IN 1 .. cardinality(side) LOOP
        var := sigma[i] * sigma[i] + tau_sq;
        part := share[i] * var / team_var[side[i]];
        new_mu := new_mu || (mu[i] + part * omega[side[i]]);
        new_sigma := new_sigma || (sqrt(var) * sqrt(greatest(1 - part * delta[side[i]], kappa)));
    END LOOP;
END
$$;
COMMENT ON FUNCTION _et_rate_game(smallint[], double precision[], double precision[], double precision[], smallint) IS
    'Internal to build_et_ratings(): one Weng–Lin Plackett–Luce update of two teams with play shares (the Rust engine''s rate_two_teams).';

CREATE FUNCTION et_rating_games()
RETURNS TABLE (match_id text, started_at timestamp, outcome text, guid text, side smallint, share double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH maps AS (
        SELECT m.match_id, m.started_at, m.outcome, m.round1_id, m.round2_id
        FROM @extschema@.et_matches m
        JOIN @extschema@.et_rounds r1 ON r1.round_id = m.round1_id
        JOIN @extschema@.et_rounds r2 ON r2.round_id = m.round2_id
        WHERE m.outcome IN ('round1_attackers', 'round2_attackers', 'draw')
          AND r1.restart_kind IS DISTINCT FROM 'cancelled'
          AND r2.restart_kind IS DISTINCT FROM 'cancelled'
    ), played AS (
        -- Side 1 is whoever attacked in round 1: attackers then, defenders in round 2.
        SELECT mp.match_id, p.round_id, p.guid, p.is_bot, p.time_played_seconds,
               CASE WHEN (p.round_id = mp.round1_id) = (p.team <> r.defender_team) THEN 1 ELSE 2 END::smallint AS side
        FROM maps mp
        JOIN @extschema@.et_player_rounds p ON p.round_id IN (mp.round1_id, mp.round2_id)
        JOIN @extschema@.et_rounds r ON r.round_id = p.round_id
        WHERE p.team IN (1, 2)
    ), lengths AS (
        -- A round lasts as long as its longest-playing player; a file without times counts
        -- every player present as there for the whole round.
        SELECT pl.round_id, max(pl.time_played_seconds) AS seconds FROM played pl GROUP BY pl.round_id
    ), per_side AS (
        SELECT pl.match_id, pl.guid, pl.side,
               sum(CASE WHEN l.seconds > 0 THEN coalesce(pl.time_played_seconds, l.seconds)::double precision / l.seconds ELSE 1 END) / 2 AS share
        FROM played pl JOIN lengths l USING (round_id)
        WHERE NOT pl.is_bot
        GROUP BY pl.match_id, pl.guid, pl.side
    ), chosen AS (
        -- A player who switched sides mid-map counts for the side they played longer.
        SELECT DISTINCT ON (ps.match_id, ps.guid) ps.*
        FROM per_side ps
        WHERE ps.share > 0
        ORDER BY ps.match_id, ps.guid, ps.share DESC, ps.side
    )
    SELECT mp.match_id, mp.started_at, mp.outcome, ch.guid, ch.side, least(ch.share, 1.0)
    FROM maps mp JOIN chosen ch USING (match_id)
    WHERE (SELECT count(DISTINCT c2.side) FROM chosen c2 WHERE c2.match_id = mp.match_id) = 2
    ORDER BY mp.started_at, mp.match_id, ch.side, ch.guid;
END;
COMMENT ON FUNCTION et_rating_games() IS
    'The games build_et_ratings() rates, one row per player and map in rating order: finished stopwatch maps with a result (not cancelled by a restart) and humans on both sides; side 1 attacked in round 1; share is the player''s seconds over the two rounds'' lengths (the longest time played in each), capped at 1.';

CREATE FUNCTION build_et_ratings(full boolean DEFAULT false)
RETURNS TABLE (maps_rated integer, maps_replayed integer, players_rated integer,
               elapsed interval, status text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    started    timestamptz := clock_timestamp();
    first_diff integer;
    g          record;
    rated      record;
    touched    text[];
    mus        double precision[];
    sigmas     double precision[];
BEGIN
    maps_rated := 0; maps_replayed := 0; players_rated := 0;
    IF NOT @extschema@._try_builder_lock('build_et_ratings') THEN
        elapsed := clock_timestamp() - started;
        status := 'skipped: another build_et_ratings() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    IF build_et_ratings.full THEN
        PERFORM @extschema@._reset_progress('build_et_ratings');
        TRUNCATE @extschema@.et_rated_maps, @extschema@.et_rating_history, @extschema@.et_ratings;
    END IF;
    -- The files seen so far; the maps themselves are compared below, so files imported later
    -- (or by a later import_et_rounds()) are never missed.
    PERFORM @extschema@._claim_ingest_ids('build_et_ratings', 'raw_et_stats_files');

    CREATE TEMP TABLE IF NOT EXISTS _et_rating_games (
        map_seq integer, match_id text, started_at timestamp, outcome text,
        guid text, side smallint, share double precision, fingerprint text) ON COMMIT DROP;
    TRUNCATE _et_rating_games;
    INSERT INTO _et_rating_games
    SELECT dense_rank() OVER (ORDER BY gm.started_at, gm.match_id)::integer, gm.match_id, gm.started_at,
           gm.outcome, gm.guid, gm.side, gm.share,
           md5(gm.outcome || string_agg(gm.side || ':' || gm.guid || ':' || gm.share::text, ',')
                   OVER (PARTITION BY gm.match_id))
    FROM @extschema@.et_rating_games() gm;

    SELECT min(coalesce(cur.map_seq, old.map_seq)) INTO first_diff
    FROM (SELECT DISTINCT t.map_seq, t.match_id, t.fingerprint FROM _et_rating_games t) cur
    FULL JOIN @extschema@.et_rated_maps old ON old.map_seq = cur.map_seq
    WHERE cur.match_id IS DISTINCT FROM old.match_id OR cur.fingerprint IS DISTINCT FROM old.fingerprint;

    IF first_diff IS NULL THEN
        elapsed := clock_timestamp() - started;
        status := 'ok';
        RETURN NEXT;
        RETURN;
    END IF;

    -- Forget everything from the first difference on, and put the players concerned back to
    -- their rating before it.
    SELECT count(*) INTO maps_replayed FROM @extschema@.et_rated_maps m WHERE m.map_seq >= first_diff;
    SELECT coalesce(array_agg(DISTINCT h.guid), '{}') INTO touched
    FROM @extschema@.et_rating_history h WHERE h.map_seq >= first_diff;
    DELETE FROM @extschema@.et_rating_history h WHERE h.map_seq >= first_diff;
    DELETE FROM @extschema@.et_rated_maps m WHERE m.map_seq >= first_diff;
    DELETE FROM @extschema@.et_ratings r WHERE r.guid = ANY (touched);
    INSERT INTO @extschema@.et_ratings (guid, mu, sigma, ordinal, maps, last_map_seq)
    SELECT DISTINCT ON (h.guid) h.guid, h.mu, h.sigma, h.mu - 3 * h.sigma,
           count(*) OVER (PARTITION BY h.guid), h.map_seq
    FROM @extschema@.et_rating_history h
    WHERE h.guid = ANY (touched)
    ORDER BY h.guid, h.map_seq DESC;

    FOR g IN
        SELECT t.map_seq, t.match_id, t.started_at, t.outcome, t.fingerprint,
               array_agg(t.guid ORDER BY t.side, t.guid) AS guids,
               array_agg(t.side ORDER BY t.side, t.guid) AS sides,
               array_agg(t.share ORDER BY t.side, t.guid) AS shares
        FROM _et_rating_games t
        WHERE t.map_seq >= first_diff
        GROUP BY t.map_seq, t.match_id, t.started_at, t.outcome, t.fingerprint
        ORDER BY t.map_seq
    LOOP
        -- The ratings as of this map: the loop's query cannot see updates made inside it.
        SELECT array_agg(coalesce(r.mu, 25.0) ORDER BY u.o), array_agg(coalesce(r.sigma, 25.0 / 3) ORDER BY u.o)
          INTO mus, sigmas
          FROM unnest(g.guids) WITH ORDINALITY u(guid, o)
          LEFT JOIN @extschema@.et_ratings r ON r.guid = u.guid;
        SELECT * INTO rated FROM @extschema@._et_rate_game(
            g.sides, mus, sigmas, g.shares,
            CASE g.outcome WHEN 'round1_attackers' THEN 1 WHEN 'round2_attackers' THEN 2 ELSE 0 END::smallint);
        INSERT INTO @extschema@.et_rated_maps (map_seq, match_id, started_at, outcome, fingerprint, win_probability)
        VALUES (g.map_seq, g.match_id, g.started_at, g.outcome, g.fingerprint,
                @extschema@.et_win_probability(
                    ARRAY(SELECT m FROM unnest(mus, g.sides) u(m, s) WHERE s = 1),
                    ARRAY(SELECT m FROM unnest(sigmas, g.sides) u(m, s) WHERE s = 1),
                    ARRAY(SELECT m FROM unnest(mus, g.sides) u(m, s) WHERE s = 2),
                    ARRAY(SELECT m FROM unnest(sigmas, g.sides) u(m, s) WHERE s = 2)));
        INSERT INTO @extschema@.et_rating_history
            (guid, map_seq, match_id, side, share, result, mu_before, sigma_before, mu, sigma)
        SELECT u.guid, g.map_seq, g.match_id, u.side, u.share,
               CASE WHEN g.outcome = 'draw' THEN 'draw'
                    WHEN (g.outcome = 'round1_attackers') = (u.side = 1) THEN 'won' ELSE 'lost' END,
               u.mu_before, u.sigma_before, u.mu, u.sigma
        FROM unnest(g.guids, g.sides, g.shares, mus, sigmas, rated.new_mu, rated.new_sigma)
             AS u(guid, side, share, mu_before, sigma_before, mu, sigma);
        INSERT INTO @extschema@.et_ratings AS r (guid, mu, sigma, ordinal, maps, last_map_seq)
        SELECT u.guid, u.mu, u.sigma, u.mu - 3 * u.sigma, 1, g.map_seq
        FROM unnest(g.guids, rated.new_mu, rated.new_sigma) AS u(guid, mu, sigma)
        ON CONFLICT (guid) DO UPDATE
            SET mu = excluded.mu, sigma = excluded.sigma, ordinal = excluded.ordinal,
                maps = r.maps + 1, last_map_seq = excluded.last_map_seq;
        maps_rated := maps_rated + 1;
        players_rated := players_rated + cardinality(g.guids);
    END LOOP;
    elapsed := clock_timestamp() - started;
    status := 'ok';
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_et_ratings(boolean) IS
    'Rates the finished stopwatch maps of et_rating_games() in order into et_rated_maps, et_rating_history and et_ratings (Weng–Lin Plackett–Luce, openskill''s defaults: mu 25, sigma 25/3, beta 25/6, kappa 0.0001, tau 25/300; each player counted by their share of the map). Incremental: replays from the first map that is new or changed, so a late earlier map replays what follows it. full => true starts over. One row: maps rated, maps replayed (rated before and rated again), player ratings updated, status (ok, or skipped while another build runs).';

CREATE FUNCTION et_balance_teams(guids text[])
RETURNS TABLE (team_a text[], team_b text[], names_a text[], names_b text[],
               win_probability double precision, method text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    n        integer;
    mus      double precision[];
    sigmas   double precision[];
    ids      text[];
    best     bigint;
    picked   boolean[];
    sum_a    double precision := 0;
    sum_b    double precision := 0;
    size_a   integer := 0;
    i        integer;
    best_i   integer;
    best_j   integer;
BEGIN
    n := cardinality(guids);
    IF guids IS NULL OR n < 2 THEN
        RAISE EXCEPTION 'guildstats: et_balance_teams needs at least 2 GUIDs, got %', coalesce(n, 0);
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(guids) g WHERE g IS NULL) THEN
        RAISE EXCEPTION 'guildstats: et_balance_teams: guids contains NULL';
    END IF;
    IF (SELECT count(DISTINCT g) FROM unnest(guids) g) <> n THEN
        RAISE EXCEPTION 'guildstats: et_balance_teams: guids lists a GUID twice: %',
            (SELECT min(g) FROM unnest(guids) g GROUP BY g HAVING count(*) > 1 LIMIT 1);
    END IF;
    -- Unknown players get a new player's rating. Strongest first: the greedy pass wants it,
    -- and the exhaustive one then keeps the strongest player in team A.
    SELECT array_agg(u.guid ORDER BY coalesce(r.mu, 25.0) DESC, u.guid),
           array_agg(coalesce(r.mu, 25.0) ORDER BY coalesce(r.mu, 25.0) DESC, u.guid),
           array_agg(coalesce(r.sigma, 25.0 / 3) ORDER BY coalesce(r.mu, 25.0) DESC, u.guid)
      INTO ids, mus, sigmas
      FROM unnest(guids) u(guid) LEFT JOIN @extschema@.et_ratings r ON r.guid = u.guid;

    IF n <= 12 THEN
        -- Every split with player 1 in team A and sizes n/2 (rounded either way): at most
        -- 2^11 masks. Ties go to the lowest mask. The closest win chance is the closest sum of
        -- mu: Phi is monotonic, and its denominator sums every player's sigma^2 whatever the split.
        SELECT s.mask INTO best
        FROM generate_series(0, (1::bigint << n) - 1) s(mask),
             LATERAL (SELECT sum(mus[k]) FILTER (WHERE s.mask & (1::bigint << (k - 1)) <> 0) AS ma,
                             sum(mus[k]) FILTER (WHERE s.mask & (1::bigint << (k - 1)) = 0) AS mb,
                             count(*) FILTER (WHERE s.mask & (1::bigint << (k - 1)) <> 0) AS na
                      FROM generate_series(1, n) k) t
        WHERE s.mask & 1 = 1 AND t.na IN (n / 2, (n + 1) / 2)
        ORDER BY abs(t.ma - t.mb), s.mask
        LIMIT 1;
        picked := ARRAY(SELECT best & (1::bigint << (k - 1)) <> 0 FROM generate_series(1, n) k);
        method := 'exhaustive';
    ELSE
        -- Strongest first, each to the weaker side while it has room.
        picked := '{}';
        FOR i IN 1 .. n LOOP
            IF size_a < (n + 1) / 2 AND (sum_a <= sum_b OR i - 1 - size_a = n / 2) THEN
                picked := picked || true; sum_a := sum_a + mus[i]; size_a := size_a + 1;
            ELSE
                picked := picked || false; sum_b := sum_b + mus[i];
            END IF;
        END LOOP;
        -- Then swap the pair across the teams that narrows the gap most, while one does.
        LOOP
            SELECT x.i, x.j INTO best_i, best_j
            FROM (SELECT a.k AS i, b.k AS j,
                         abs(sum_a - sum_b - 2 * (mus[a.k] - mus[b.k])) AS gap
                  FROM generate_series(1, n) a(k), generate_series(1, n) b(k)
                  WHERE picked[a.k] AND NOT picked[b.k]) x
            WHERE x.gap < abs(sum_a - sum_b) - 1e-12
            ORDER BY x.gap, x.i, x.j
            LIMIT 1;
            EXIT WHEN NOT FOUND;
            picked[best_i] := false; picked[best_j] := true;
            sum_a := sum_a - mus[best_i] + mus[best_j];
            sum_b := sum_b - mus[best_j] + mus[best_i];
        END LOOP;
        method := 'greedy';
    END IF;
    SELECT array_agg(u.id ORDER BY u.id) FILTER (WHERE u.p),
           array_agg(u.id ORDER BY u.id) FILTER (WHERE NOT u.p),
           array_agg(coalesce(pl.name, u.id) ORDER BY u.id) FILTER (WHERE u.p),
           array_agg(coalesce(pl.name, u.id) ORDER BY u.id) FILTER (WHERE NOT u.p),
           @extschema@.et_win_probability(array_agg(u.m) FILTER (WHERE u.p), array_agg(u.s) FILTER (WHERE u.p),
                                          array_agg(u.m) FILTER (WHERE NOT u.p), array_agg(u.s) FILTER (WHERE NOT u.p))
      INTO team_a, team_b, names_a, names_b, win_probability
      FROM unnest(ids, mus, sigmas, picked) u(id, m, s, p)
      LEFT JOIN LATERAL (SELECT (array_agg(c.clean_name ORDER BY c.round_id DESC))[1] AS name
                           FROM @extschema@.et_player_rounds c WHERE c.guid = u.id) pl ON true;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION et_balance_teams(text[]) IS
    'Proposes two teams from the given GUIDs with the closest predicted win chance (et_ratings; a GUID without a rating counts as a new player): every split for up to 12 players; beyond, strongest first to the weaker side, then the best swaps while they narrow the gap (close, not always the best). Returns the GUIDs and latest names of each team, team A''s predicted win probability and the method. Example: SELECT * FROM guildstats.et_balance_teams(ARRAY[''AAAA0001'', ''BBBB0002'', ''CCCC0003'', ''DDDD0004'']);';

CREATE OR REPLACE FUNCTION build_all()
RETURNS TABLE (builder text, status text, elapsed interval)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@.import_et_rounds();
    builder := 'import_et_rounds'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_et_ratings();
    builder := 'build_et_ratings'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_members();
    builder := 'build_members'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_voice_sessions();
    builder := 'build_voice_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_event_attendance();
    builder := 'build_event_attendance'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_rollups();
    builder := 'build_rollups'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_all() IS
    'Runs every builder in dependency order (import_et_rounds, build_et_ratings, build_members, build_voice_sessions, build_event_attendance, build_rollups) in the caller''s transaction and returns one row per builder with its status. What pg_cron runs every minute (sql/ops/cron.sql).';

-- ==== game-server player sessions and coverage marks (issue 13: 5, 6) ====
ALTER TABLE settings ADD COLUMN game_session_gap interval;
ALTER TABLE settings ADD CONSTRAINT settings_game_session_gap_positive CHECK (game_session_gap > interval '0');
COMMENT ON COLUMN settings.game_session_gap IS 'Two polls of a game server further apart than this end the player sessions open at the first one, at that poll (built-in default 5 minutes). Game servers belong to no guild: only the global row sets it; read it with game_session_gap().';
INSERT INTO builder_locks (builder) VALUES ('build_game_sessions');

-- Resolved on its own, like future_tolerance_for(): game servers have no guild, so only the
-- global settings row applies, and settings_for() keeps its signature.
CREATE FUNCTION game_session_gap()
RETURNS interval
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce((SELECT s.game_session_gap FROM @extschema@.settings s WHERE s.guild_id IS NULL),
                    interval '5 minutes');
END;
COMMENT ON FUNCTION game_session_gap() IS
    'The longest silence between two polls of a game server that a player session survives: the global settings row''s game_session_gap, else 5 minutes (five polls at the poller''s default 60 s interval). Example: SELECT guildstats.game_session_gap();';

CREATE TABLE game_sessions (
    server       text        NOT NULL,
    player_name  text        NOT NULL,
    joined_at    timestamptz NOT NULL,
    left_at      timestamptz,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    polls        integer     NOT NULL,
    end_reason   text        NOT NULL,
    PRIMARY KEY (server, player_name, first_seen),
    CONSTRAINT game_sessions_end_reason_known
        CHECK (end_reason IN ('left', 'failed_poll', 'silence', 'reconnected', 'open')),
    CONSTRAINT game_sessions_open_has_no_end CHECK ((end_reason = 'open') = (left_at IS NULL))
);
CREATE INDEX game_sessions_server_time_idx ON game_sessions (server, last_seen);
-- For the map drain: the leaves within minutes of an instant.
CREATE INDEX game_sessions_server_left_idx ON game_sessions (server, left_at);

COMMENT ON TABLE game_sessions IS
    'One row per visit of a player (server and name: A2S gives no ids) to a game server, from consecutive polls; kept current by build_game_sessions(). Players with an empty name (still connecting) are left out; two players sharing a name on one server count as one.';
COMMENT ON COLUMN game_sessions.server IS 'The polled address, host:port (raw_server_polls.server).';
COMMENT ON COLUMN game_sessions.player_name IS 'Player name as reported, colour codes included.';
COMMENT ON COLUMN game_sessions.joined_at IS 'First poll that listed the player, back-dated by the connected seconds it reported, but not before the latest answered poll before it; the first poll itself when the server does not report connected time (Quake 3).';
COMMENT ON COLUMN game_sessions.left_at IS 'The first answered poll without the player; the last poll that listed them when a failed poll, a silence longer than game_session_gap() or a reconnect followed; NULL while the latest poll lists them.';
COMMENT ON COLUMN game_sessions.first_seen IS 'The first poll that listed the player in this visit.';
COMMENT ON COLUMN game_sessions.last_seen IS 'The last poll that listed the player in this visit.';
COMMENT ON COLUMN game_sessions.polls IS 'Polls that listed the player in this visit.';
COMMENT ON COLUMN game_sessions.end_reason IS 'left (an answered poll without them), failed_poll, silence (no poll for longer than game_session_gap()), reconnected (the connected seconds dropped) or open.';

SELECT pg_catalog.pg_extension_config_dump('game_sessions', '');

-- The window computation for some servers, each from an instant on: every session whose first
-- sighting is at or after rebuild_from. The poll just before rebuild_from is read too, for the
-- first sighting's "was the poll before mine listing me" test.
CREATE FUNCTION _game_sessions_from(servers text[], rebuild_from timestamptz[])
RETURNS SETOF game_sessions
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH scope AS (
        SELECT u.server, u.rebuild_from,
               coalesce((SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                          WHERE p.server = u.server AND p.polled_at < u.rebuild_from),
                        u.rebuild_from) AS read_from
          FROM unnest(_game_sessions_from.servers, _game_sessions_from.rebuild_from) AS u(server, rebuild_from)
    ), polls AS (
        SELECT p.server, p.polled_at, p.ok, s.rebuild_from,
               lag(p.polled_at) OVER w AS prev_poll_at,
               lead(p.polled_at) OVER w AS next_poll_at,
               lead(p.ok) OVER w AS next_ok
          FROM scope s
          JOIN @extschema@.raw_server_polls p ON p.server = s.server AND p.polled_at >= s.read_from
        WINDOW w AS (PARTITION BY p.server ORDER BY p.polled_at)
    ), sightings AS (
        SELECT p.server, x.name, p.polled_at, p.prev_poll_at, p.next_poll_at, p.next_ok, p.rebuild_from,
               x.connected_seconds
          FROM polls p
          CROSS JOIN LATERAL (
              SELECT r.name, max(r.connected_seconds) AS connected_seconds
                FROM @extschema@.raw_server_players r
               WHERE r.server = p.server AND r.polled_at = p.polled_at AND r.name <> ''
               GROUP BY r.name) x
         WHERE p.ok
    ), flagged AS (
        SELECT s.*,
               CASE WHEN lag(s.polled_at) OVER w IS NULL
                      OR lag(s.polled_at) OVER w IS DISTINCT FROM s.prev_poll_at
                      OR s.polled_at - lag(s.polled_at) OVER w > @extschema@.game_session_gap()
                      OR s.connected_seconds < lag(s.connected_seconds) OVER w
                    THEN 1 ELSE 0 END AS starts
          FROM sightings s
        WINDOW w AS (PARTITION BY s.server, s.name ORDER BY s.polled_at)
    ), numbered AS (
        SELECT f.*, sum(f.starts) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS visit,
               lead(f.starts) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS next_starts,
               lead(f.polled_at) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS next_seen_at
          FROM flagged f
    ), visits AS (
        SELECT n.server, n.name, min(n.polled_at) AS first_seen, max(n.polled_at) AS last_seen,
               count(*)::integer AS polls, min(n.rebuild_from) AS rebuild_from,
               (array_agg(n.connected_seconds ORDER BY n.polled_at))[1] AS first_connected,
               (array_agg(n.next_poll_at ORDER BY n.polled_at DESC))[1] AS next_poll_at,
               (array_agg(n.next_ok ORDER BY n.polled_at DESC))[1] AS next_ok,
               (array_agg(n.next_seen_at ORDER BY n.polled_at DESC))[1] AS next_seen_at
          FROM numbered n
         GROUP BY n.server, n.name, n.visit
    ), ended AS (
        SELECT v.*,
               CASE WHEN v.next_poll_at IS NULL THEN 'open'
                    WHEN NOT v.next_ok THEN 'failed_poll'
                    WHEN v.next_poll_at - v.last_seen > @extschema@.game_session_gap() THEN 'silence'
                    WHEN v.next_seen_at = v.next_poll_at THEN 'reconnected'
                    ELSE 'left' END AS end_reason
          FROM visits v
         WHERE v.first_seen >= v.rebuild_from
    )
    SELECT e.server, e.name,
           greatest(e.first_seen - coalesce(make_interval(secs => e.first_connected), interval '0'),
                    (SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                      WHERE p.server = e.server AND p.polled_at < e.first_seen AND p.ok)),
           CASE e.end_reason WHEN 'open' THEN NULL WHEN 'left' THEN e.next_poll_at ELSE e.last_seen END,
           e.first_seen, e.last_seen, e.polls, e.end_reason
      FROM ended e;
END;
COMMENT ON FUNCTION _game_sessions_from(text[], timestamptz[]) IS
    'Internal to build_game_sessions(): the sessions of each server (servers[i]) whose first sighting is at or after rebuild_from[i], computed from the raw polls.';

CREATE FUNCTION build_game_sessions(full boolean DEFAULT false)
RETURNS TABLE (rows_read bigint, servers_rebuilt bigint, sessions_removed bigint,
               sessions_written bigint, elapsed interval, status text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    started     timestamptz := clock_timestamp();
    poll_ids    int8multirange;
    player_ids  int8multirange;
    servers     text[];
    cuts        timestamptz[];
    starts      timestamptz[];
BEGIN
    rows_read := 0; servers_rebuilt := 0; sessions_removed := 0; sessions_written := 0;
    IF NOT @extschema@._try_builder_lock('build_game_sessions') THEN
        elapsed := clock_timestamp() - started;
        status := 'skipped: another build_game_sessions() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    IF build_game_sessions.full THEN
        PERFORM @extschema@._reset_progress('build_game_sessions');
        SELECT count(*) INTO sessions_removed FROM @extschema@.game_sessions;
        TRUNCATE @extschema@.game_sessions;
    END IF;
    poll_ids := @extschema@._claim_ingest_ids('build_game_sessions', 'raw_server_polls');
    player_ids := @extschema@._claim_ingest_ids('build_game_sessions', 'raw_server_players');

    -- Per server, the earliest new poll or player row. A row at t changes at most the session
    -- that contains the poll just before t (its end) and everything after: those are removed
    -- and recomputed from the first sighting of the earliest of them.
    WITH fresh AS (
        SELECT p.server, p.polled_at FROM @extschema@.raw_server_polls p
         WHERE p.ingest_id BETWEEN lower(poll_ids) AND upper(poll_ids) - 1 AND p.ingest_id <@ poll_ids
        UNION ALL
        SELECT r.server, r.polled_at FROM @extschema@.raw_server_players r
         WHERE r.ingest_id BETWEEN lower(player_ids) AND upper(player_ids) - 1 AND r.ingest_id <@ player_ids
    ), touched AS (
        SELECT f.server, min(f.polled_at) AS earliest, count(*) AS n FROM fresh f GROUP BY f.server
    )
    SELECT coalesce(sum(t.n), 0), coalesce(array_agg(t.server ORDER BY t.server), '{}'),
           coalesce(array_agg(coalesce((SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                                         WHERE p.server = t.server AND p.polled_at < t.earliest),
                                       '-infinity') ORDER BY t.server), '{}')
      INTO rows_read, servers, cuts
      FROM touched t;
    servers_rebuilt := cardinality(servers);

    -- Recomputed from the first sighting of the earliest session reaching the cut; every session
    -- starting from there goes, even one that ended before the cut, since it is computed again.
    starts := ARRAY(SELECT least(c.cut, (SELECT min(g.first_seen) FROM @extschema@.game_sessions g
                                          WHERE g.server = c.server AND g.last_seen >= c.cut))
                      FROM unnest(servers, cuts) WITH ORDINALITY AS c(server, cut, i) ORDER BY c.i);
    WITH removed AS (
        DELETE FROM @extschema@.game_sessions g
         USING unnest(servers, starts) AS c(server, rebuild_from)
         WHERE g.server = c.server AND g.first_seen >= c.rebuild_from
        RETURNING 1
    )
    SELECT sessions_removed + count(*) INTO sessions_removed FROM removed;

    INSERT INTO @extschema@.game_sessions
    SELECT * FROM @extschema@._game_sessions_from(servers, starts);
    GET DIAGNOSTICS sessions_written = ROW_COUNT;

    elapsed := clock_timestamp() - started;
    status := CASE WHEN build_game_sessions.full THEN 'ok: full rebuild' ELSE 'ok' END;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_game_sessions(boolean) IS
    'Brings guildstats.game_sessions up to date with the polls that arrived since the last call (exactly once, like every builder; late and out-of-order polls included) and returns one summary row; full => true starts from scratch. Safe to call concurrently: a second caller gets status ''skipped: ...''.';

-- What follows reads the sessions, not the polls (except map changes, which only polls carry).
-- An open session counts up to its last poll: nobody saw further.

CREATE VIEW game_server_hourly AS
WITH spans AS (
    SELECT g.server, g.joined_at AS t0, coalesce(g.left_at, g.last_seen) AS t1
      FROM @extschema@.game_sessions g
), pieces AS (
    -- Each session cut at the hours it spans.
    SELECT s.server, h.hour, s.t0,
           extract(epoch FROM least(s.t1, h.hour + interval '1 hour') - greatest(s.t0, h.hour)) AS seconds
      FROM spans s
     CROSS JOIN LATERAL generate_series(date_trunc('hour', s.t0), s.t1, interval '1 hour') AS h(hour)
     WHERE h.hour < s.t1 OR s.t0 = s.t1
), hours AS (
    SELECT p.server, p.hour, sum(p.seconds) AS seconds,
           count(*) FILTER (WHERE p.t0 >= p.hour) AS joins
      FROM pieces p
     GROUP BY p.server, p.hour
), points AS (
    -- Players right after each join or leave, and at each hour's start (delta 0); leaves
    -- before joins at the same instant, so a hand-over is not two players at once.
    SELECT x.server, x.at,
           sum(x.delta) OVER (PARTITION BY x.server ORDER BY x.at, x.delta ROWS UNBOUNDED PRECEDING) AS players
      FROM (SELECT s.server, s.t0 AS at, 1 AS delta FROM spans s
            UNION ALL
            SELECT s.server, s.t1, -1 FROM spans s
            UNION ALL
            SELECT h.server, h.hour, 0 FROM hours h) x
), peaks AS (
    SELECT p.server, date_trunc('hour', p.at) AS hour, max(p.players) AS players
      FROM points p
     GROUP BY p.server, date_trunc('hour', p.at)
)
SELECT h.server, h.hour, h.seconds / 3600.0 AS avg_players, k.players::integer AS peak_players, h.joins
  FROM hours h
  JOIN peaks k ON k.server = h.server AND k.hour = h.hour;
COMMENT ON VIEW game_server_hourly IS
    'Game-server use per server and hour, from game_sessions: average players (player-hours in the hour / 1 h), the most players at once, and sessions started. Divide avg_players by the slot count for utilization. Example: SELECT * FROM guildstats.game_server_hourly ORDER BY server, hour;';
COMMENT ON COLUMN game_server_hourly.server IS 'Server address, host:port.';
COMMENT ON COLUMN game_server_hourly.hour IS 'Start of the hour.';
COMMENT ON COLUMN game_server_hourly.avg_players IS 'Average players on the server during the hour (session time inside the hour / 1 h).';
COMMENT ON COLUMN game_server_hourly.peak_players IS 'Most players at once during the hour.';
COMMENT ON COLUMN game_server_hourly.joins IS 'Sessions that started in the hour.';

CREATE VIEW game_map_drain AS
WITH changes AS (
    SELECT c.server, c.polled_at AS changed_at, c.map
      FROM (SELECT p.server, p.polled_at, p.map,
                   lag(p.map) OVER (PARTITION BY p.server ORDER BY p.polled_at) AS prev_map
              FROM @extschema@.raw_server_polls p WHERE p.ok AND p.map IS NOT NULL) c
     WHERE c.prev_map IS NOT NULL AND c.prev_map <> c.map
), at_change AS (
    -- Players on at each change: a running count in which, at the same instant, the change
    -- comes before joins (they came after it) and leaves (they were still there).
    SELECT x.server, x.at AS changed_at, x.map, x.is_session,
           sum(x.delta) OVER (PARTITION BY x.server ORDER BY x.at, x.is_session ROWS UNBOUNDED PRECEDING) AS players
      FROM (SELECT g.server, g.joined_at AS at, 1 AS delta, true AS is_session, NULL::text AS map
              FROM @extschema@.game_sessions g WHERE g.server IN (SELECT server FROM changes)
            UNION ALL
            SELECT g.server, coalesce(g.left_at, g.last_seen), -1, true, NULL
              FROM @extschema@.game_sessions g WHERE g.server IN (SELECT server FROM changes)
            UNION ALL
            SELECT c.server, c.changed_at, 0, false, c.map FROM changes c) x
), per_change AS (
    SELECT a.server, a.map, a.changed_at, a.players AS players_at_change,
           (SELECT count(*) FROM @extschema@.game_sessions g
             WHERE g.server = a.server AND g.end_reason = 'left'
               AND g.left_at >= a.changed_at AND g.left_at <= a.changed_at + interval '5 minutes'
               AND g.joined_at < a.changed_at) AS players_lost
      FROM at_change a
     WHERE NOT a.is_session
)
SELECT d.server, d.map, count(*) AS map_changes, sum(d.players_at_change) AS players_at_change,
       sum(d.players_lost) AS players_lost,
       sum(d.players_lost)::numeric / nullif(sum(d.players_at_change), 0) AS drain
  FROM per_change d
 GROUP BY d.server, d.map;
COMMENT ON VIEW game_map_drain IS
    'The "map drain" per server and map: of the players on the server when it changed to this map (joined before the first poll showing it, still there at it), how many left within 5 minutes (an answered poll without them, the change poll included). Map changes come from consecutive answered polls; the players from game_sessions. Example: SELECT * FROM guildstats.game_map_drain ORDER BY drain DESC;';
COMMENT ON COLUMN game_map_drain.server IS 'Server address, host:port.';
COMMENT ON COLUMN game_map_drain.map IS 'The map the server changed to.';
COMMENT ON COLUMN game_map_drain.map_changes IS 'Times the server changed to this map.';
COMMENT ON COLUMN game_map_drain.players_at_change IS 'Players in a session at the change, summed over the changes.';
COMMENT ON COLUMN game_map_drain.players_lost IS 'Of those, players who left within 5 minutes after the change.';
COMMENT ON COLUMN game_map_drain.drain IS 'players_lost / players_at_change (0 to 1); NULL when nobody was on.';

CREATE VIEW game_server_seeding AS
SELECT h.server, extract(hour FROM h.hour)::integer AS hour_of_day,
       count(*) AS hours_seen,
       avg(h.joins) AS avg_joins,
       avg(h.peak_players) AS avg_peak_players,
       rank() OVER (PARTITION BY h.server ORDER BY avg(h.joins) DESC, extract(hour FROM h.hour)) AS fill_rank
  FROM @extschema@.game_server_hourly h
 GROUP BY h.server, extract(hour FROM h.hour);
COMMENT ON VIEW game_server_seeding IS
    'When each game server fills fastest, per hour of day (UTC), from game_sessions: the average sessions started in that hour over the hours it had players; fill_rank 1 is the best seeding hour. Example: SELECT * FROM guildstats.game_server_seeding WHERE fill_rank = 1;';
COMMENT ON COLUMN game_server_seeding.server IS 'Server address, host:port.';
COMMENT ON COLUMN game_server_seeding.hour_of_day IS 'Hour of the day, 0 to 23, UTC.';
COMMENT ON COLUMN game_server_seeding.hours_seen IS 'Hours at this time of day with at least one player.';
COMMENT ON COLUMN game_server_seeding.avg_joins IS 'Sessions started per such hour, on average: how fast the server fills.';
COMMENT ON COLUMN game_server_seeding.avg_peak_players IS 'Most players at once per such hour, on average.';
COMMENT ON COLUMN game_server_seeding.fill_rank IS '1 for the hour of day with the most joins (ties to the earlier hour).';

-- Coverage marks: how much of each day the Discord bot was connected, so charts can mark
-- incomplete days. The time between two heartbeats no further apart than outage_after is
-- covered; a longer silence is not (as for the voice sessions).
CREATE VIEW coverage_daily AS
WITH beats AS (
    SELECT b.guild_id, b.beat_at,
           lead(b.beat_at) OVER (PARTITION BY b.guild_id ORDER BY b.beat_at) AS next_beat
      FROM @extschema@.raw_heartbeats b
     WHERE b.source = 'discord' AND b.guild_id IS NOT NULL
), guilds AS (
    -- The settings once per guild, not once per beat.
    SELECT k.guild_id, s.calendar_time_zone AS tz, s.outage_after
      FROM (SELECT DISTINCT b.guild_id FROM beats b) k
     CROSS JOIN LATERAL @extschema@.settings_for(k.guild_id) s
), covered AS (
    SELECT b.guild_id, b.beat_at AS t0, b.next_beat AS t1
      FROM beats b JOIN guilds g USING (guild_id)
     WHERE b.next_beat - b.beat_at <= g.outage_after
), bounds AS (
    SELECT b.guild_id, g.tz, min(b.beat_at) AS first_beat, max(b.beat_at) AS last_beat
      FROM beats b JOIN guilds g USING (guild_id)
     GROUP BY b.guild_id, g.tz
), days AS (
    SELECT o.guild_id, o.last_beat, d::date AS day,
           (d::date::timestamp AT TIME ZONE o.tz) AS day_start,
           ((d::date + 1)::timestamp AT TIME ZONE o.tz) AS day_end
      FROM bounds o
     CROSS JOIN LATERAL generate_series((o.first_beat AT TIME ZONE o.tz)::date,
                                        (o.last_beat AT TIME ZONE o.tz)::date, interval '1 day') AS d
)
SELECT d.guild_id, d.day,
       coalesce(sum(extract(epoch FROM least(c.t1, d.day_end) - greatest(c.t0, d.day_start))), 0)::numeric
           / extract(epoch FROM d.day_end - d.day_start)::numeric AS coverage,
       d.last_beat >= d.day_end AS is_complete
  FROM days d
  LEFT JOIN covered c ON c.guild_id = d.guild_id AND c.t0 < d.day_end AND c.t1 > d.day_start
 GROUP BY d.guild_id, d.day, d.day_start, d.day_end, d.last_beat;
COMMENT ON VIEW coverage_daily IS
    'Coverage marks: per guild and calendar day (the guild''s time zone), the share of the day the Discord bot was connected, from raw_heartbeats (a silence longer than outage_after is not covered), from the guild''s first heartbeat to its latest. Charts mark days below 1 as incomplete. Example: SELECT * FROM guildstats.coverage_daily WHERE coverage < 1;';
COMMENT ON COLUMN coverage_daily.guild_id IS 'Discord guild id.';
COMMENT ON COLUMN coverage_daily.day IS 'Calendar day in the guild''s time zone.';
COMMENT ON COLUMN coverage_daily.coverage IS 'Connected time / length of the day (0 to 1).';
COMMENT ON COLUMN coverage_daily.is_complete IS 'The day is over as far as the heartbeats know (a later beat exists); false for today.';

CREATE OR REPLACE FUNCTION build_all()
RETURNS TABLE (builder text, status text, elapsed interval)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@.import_et_rounds();
    builder := 'import_et_rounds'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_members();
    builder := 'build_members'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_voice_sessions();
    builder := 'build_voice_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_event_attendance();
    builder := 'build_event_attendance'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_game_sessions();
    builder := 'build_game_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_rollups();
    builder := 'build_rollups'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_all() IS
    'Runs every builder in dependency order (import_et_rounds, build_members, build_voice_sessions, build_event_attendance, build_game_sessions, build_rollups) in the caller''s transaction and returns one row per builder with its status. What pg_cron runs every minute (sql/ops/cron.sql).';

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

SELECT count(@extschema@.isolate_by_guild(v::regclass))
  FROM unnest(ARRAY['@extschema@.game_server_hourly', '@extschema@.game_map_drain', '@extschema@.game_server_seeding',
                    '@extschema@.coverage_daily', 'guildstats_mart.coverage_daily']) v;
-- ==== end of game-server player sessions and coverage marks

-- ==== build_all(), which the ratings and game-sessions sections each changed: its final definition
CREATE OR REPLACE FUNCTION build_all()
RETURNS TABLE (builder text, status text, elapsed interval)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@.import_et_rounds();
    builder := 'import_et_rounds'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_et_ratings();
    builder := 'build_et_ratings'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_members();
    builder := 'build_members'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_voice_sessions();
    builder := 'build_voice_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_event_attendance();
    builder := 'build_event_attendance'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_game_sessions();
    builder := 'build_game_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_rollups();
    builder := 'build_rollups'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_all() IS
    'Runs every builder in dependency order (import_et_rounds, build_et_ratings, build_members, build_voice_sessions, build_event_attendance, build_game_sessions, build_rollups) in the caller''s transaction and returns one row per builder with its status. What pg_cron runs every minute (sql/ops/cron.sql).';

-- ==== show-up funnel of scheduled events (issue 13, item 4): event_member_names,
-- ==== event_funnel_members, event_funnel, member_event_funnel, event_retention_d30 and their
-- ==== guildstats_mart views. Same statements as sql/extension/funnel.sql and the end of mart.sql.
-- The show-up funnel of scheduled events: who said they would come, who came into voice, who was
-- seen on a game server, who played ET:Legacy rounds, and whether those who came stay around.
--
-- Views, not a builder: every stage reads tables the builders already keep (events,
-- event_attendance, game_sessions, et_player_rounds) or the small interest table, through
-- indexes, per event and per candidate member. Presence in voice is event_attendance itself, so
-- the funnel and the attendance figures cannot disagree; and erase_member() needs nothing more
-- (every row here comes from a table it already empties).
--
-- The stages, for an event that started (events.actual_start), over its window
-- [actual_start, actual_end), a running event up to its guild's voice horizon:
--   interested  the member's latest interest action (raw_scheduled_event_users) observed no
--               later than the end of the window is 'add';
--   in voice    the member has a row in event_attendance (the event's channel, any voice
--               channel for events without one, AFK excluded);
--   on server   a game session (any server: game servers belong to no guild) under one of the
--               member's names overlaps the window (a visit seen by a single poll counts at that
--               poll), or the member played a counted round in it;
--   played      a counted ET:Legacy round (et_counted_player_rounds) of a GUID linked to the
--               member in this guild (et_guid_links) overlaps the window: the round ran from
--               saved_at - time_used_seconds to saved_at, the server's local time read in the
--               guild's calendar time zone (as guildstats_mart.et_player_rounds reads it).
-- A member's names: their latest display name (members.display_name) and every name their
-- linked GUIDs played under. Names compare by _player_name_key(); a key that names more than
-- one member of the guild names nobody.

CREATE FUNCTION _player_name_key(name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(lower(btrim(regexp_replace(name, '\^.', '', 'g'))), '');
COMMENT ON FUNCTION _player_name_key(text) IS
    'Internal to the event funnel: the form in which a game-server player name and a member''s name are compared: ET colour codes (a ^ and the character after it) removed, surrounding spaces trimmed, lower case; NULL for a name that is nothing else.';

-- The funnel looks up the sessions that overlap an event, across servers. An open session
-- counts up to its last poll, as in the other session views; the range is closed, so that a
-- visit seen by one poll only (joined and left at that poll) still counts at that instant.
CREATE INDEX game_sessions_span_idx ON game_sessions USING gist (tstzrange(joined_at, coalesce(left_at, last_seen), '[]'));

CREATE VIEW event_member_names AS
SELECT n.guild_id, n.name_key, min(n.user_id) AS user_id,
       bool_or(n.by_guid) AS by_guid, bool_or(NOT n.by_guid) AS by_display_name
FROM (SELECT m.guild_id, m.user_id, @extschema@._player_name_key(m.display_name) AS name_key, false AS by_guid
        FROM @extschema@.members m
       WHERE m.display_name IS NOT NULL AND NOT m.is_bot
      UNION
      SELECT l.guild_id, l.user_id, @extschema@._player_name_key(p.clean_name), true
        FROM @extschema@.et_guid_links l
        JOIN @extschema@.et_player_rounds p ON p.guid = l.guid) n
WHERE n.name_key IS NOT NULL
GROUP BY n.guild_id, n.name_key
HAVING count(DISTINCT n.user_id) = 1;
COMMENT ON VIEW event_member_names IS
    'The names under which a member is recognised on a game server, per guild: their latest display name and every name their linked ET:Legacy GUIDs played under, as _player_name_key(); a key that would name two members of the guild is left out.';
COMMENT ON COLUMN event_member_names.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_member_names.name_key IS 'The name as _player_name_key() gives it.';
COMMENT ON COLUMN event_member_names.user_id IS 'The one member of the guild the name stands for.';
COMMENT ON COLUMN event_member_names.by_guid IS 'A GUID linked to the member (et_guid_links) played under this name.';
COMMENT ON COLUMN event_member_names.by_display_name IS 'It is the member''s latest display name.';

CREATE VIEW event_funnel_members AS
WITH w AS (
    SELECT e.guild_id, e.event_id, e.actual_start,
           coalesce(e.actual_end, b.horizon, now()) AS window_end,
           st.calendar_time_zone
      FROM @extschema@.events e
      LEFT JOIN @extschema@.voice_build_guilds b ON b.guild_id = e.guild_id
     CROSS JOIN LATERAL @extschema@.settings_for(e.guild_id) st
     WHERE e.actual_start IS NOT NULL
), names_seen AS MATERIALIZED (
    -- The names on a game server during each event: the sessions that overlap it first (a few
    -- per event, by the range index), each name made a key once; only then the members.
    SELECT DISTINCT w.event_id, w.guild_id, @extschema@._player_name_key(g.player_name) AS name_key
      FROM w
      JOIN @extschema@.game_sessions g
        ON tstzrange(g.joined_at, coalesce(g.left_at, g.last_seen), '[]') && tstzrange(w.actual_start, w.window_end)
), seen AS (
    SELECT DISTINCT ON (x.event_id, n.user_id) x.event_id, n.user_id, n.name_key
      FROM names_seen x
      JOIN @extschema@.event_member_names n ON n.guild_id = x.guild_id AND n.name_key = x.name_key
     ORDER BY x.event_id, n.user_id, n.name_key
)
SELECT w.guild_id, w.event_id, c.user_id, c.interested,
       a.user_id IS NOT NULL AS in_voice,
       coalesce(a.overlap_seconds, 0) / 60.0::double precision AS voice_minutes,
       s.name_key IS NOT NULL OR r.rounds > 0 AS on_server,
       s.name_key AS server_name_key,
       r.rounds > 0 AS played,
       r.rounds AS rounds_played
FROM w
-- The candidates: interested by the end of the event, or in voice during it.
CROSS JOIN LATERAL (
    SELECT x.user_id, bool_or(x.interested) AS interested
      FROM (SELECT i.user_id, true AS interested
              FROM (SELECT DISTINCT ON (u.user_id) u.user_id, u.action
                      FROM @extschema@.raw_scheduled_event_users u
                     WHERE u.event_id = w.event_id AND u.guild_id = w.guild_id AND u.observed_at <= w.window_end
                     ORDER BY u.user_id, u.observed_at DESC, u.ingest_id DESC) i
             WHERE i.action = 'add'
            UNION ALL
            SELECT a.user_id, false FROM @extschema@.event_attendance a WHERE a.event_id = w.event_id) x
     GROUP BY x.user_id) c
LEFT JOIN @extschema@.event_attendance a ON a.event_id = w.event_id AND a.user_id = c.user_id
LEFT JOIN seen s ON s.event_id = w.event_id AND s.user_id = c.user_id
CROSS JOIN LATERAL (
    SELECT count(DISTINCT p.round_id)::integer AS rounds
      FROM @extschema@.et_guid_links l
      JOIN @extschema@.et_counted_player_rounds p ON p.guid = l.guid
      JOIN @extschema@.et_rounds t ON t.round_id = p.round_id
     WHERE l.guild_id = w.guild_id AND l.user_id = c.user_id
       AND (p.saved_at - make_interval(secs => coalesce(t.time_used_seconds, 0))) AT TIME ZONE w.calendar_time_zone < w.window_end
       AND p.saved_at AT TIME ZONE w.calendar_time_zone > w.actual_start) r;
COMMENT ON VIEW event_funnel_members IS
    'The show-up funnel per started scheduled event and member: one row per member who was interested in the event (latest interest action by the end of the event is add) or attended it in voice (event_attendance), with each stage: in voice, seen on a game server under one of their names (event_member_names) or playing, and ET:Legacy rounds played through their linked GUIDs, all within the event''s window [actual_start, actual_end). Events that never started (cancelled before) have no rows.';
COMMENT ON COLUMN event_funnel_members.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_funnel_members.event_id IS 'The event (events.event_id).';
COMMENT ON COLUMN event_funnel_members.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN event_funnel_members.interested IS 'The member''s latest interest action observed by the end of the event is add.';
COMMENT ON COLUMN event_funnel_members.in_voice IS 'The member attended in voice (a row in event_attendance).';
COMMENT ON COLUMN event_funnel_members.voice_minutes IS 'Minutes in the event''s voice channel while it ran (event_attendance.overlap_seconds / 60); 0 when absent.';
COMMENT ON COLUMN event_funnel_members.on_server IS 'A game session under one of the member''s names overlapped the event, or the member played a counted round during it.';
COMMENT ON COLUMN event_funnel_members.server_name_key IS 'The name (as _player_name_key()) under which a game session was seen; NULL when none was (on_server may still be true through played rounds).';
COMMENT ON COLUMN event_funnel_members.played IS 'A GUID linked to the member played a counted ET:Legacy round during the event.';
COMMENT ON COLUMN event_funnel_members.rounds_played IS 'Counted ET:Legacy rounds during the event in which a linked GUID played.';

CREATE VIEW event_funnel AS
SELECT e.guild_id, e.event_id, e.name, e.status, e.is_cancelled, e.actual_start IS NOT NULL AS started,
       coalesce(e.actual_start, e.scheduled_start, e.first_observed_at) AS start_time,
       coalesce(f.interested, 0) AS interested,
       coalesce(f.in_voice, 0) AS in_voice,
       coalesce(f.on_server, 0) AS on_server,
       coalesce(f.played, 0) AS played,
       coalesce(f.attendees, 0) AS attendees,
       coalesce(f.walk_ins, 0) AS walk_ins,
       f.in_voice::double precision / nullif(f.interested, 0) AS voice_rate,
       (f.interested - f.in_voice)::double precision / nullif(f.interested, 0) AS no_show_rate,
       f.on_server::double precision / nullif(f.in_voice, 0) AS server_rate,
       f.played::double precision / nullif(f.on_server, 0) AS play_rate
FROM @extschema@.events e
LEFT JOIN (SELECT m.event_id,
                  count(*) FILTER (WHERE m.interested) AS interested,
                  count(*) FILTER (WHERE m.interested AND m.in_voice) AS in_voice,
                  count(*) FILTER (WHERE m.interested AND m.in_voice AND m.on_server) AS on_server,
                  count(*) FILTER (WHERE m.interested AND m.in_voice AND m.on_server AND m.played) AS played,
                  count(*) FILTER (WHERE m.in_voice) AS attendees,
                  count(*) FILTER (WHERE m.in_voice AND NOT m.interested) AS walk_ins
             FROM @extschema@.event_funnel_members m GROUP BY m.event_id) f ON f.event_id = e.event_id;
COMMENT ON VIEW event_funnel IS
    'The show-up funnel per scheduled event (from event_funnel_members): interested members, then of those the ones in voice, then also on a game server, then also playing ET:Legacy rounds, with the conversion from each stage to the next and the no-show rate (interested but not in voice). Events that never started keep their row with zero counts and NULL rates.';
COMMENT ON COLUMN event_funnel.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_funnel.event_id IS 'Discord scheduled-event snowflake.';
COMMENT ON COLUMN event_funnel.name IS 'Title, as last observed.';
COMMENT ON COLUMN event_funnel.status IS 'scheduled, active, completed or canceled.';
COMMENT ON COLUMN event_funnel.is_cancelled IS 'The event was cancelled (before it started: no funnel; after: the funnel up to the cancellation).';
COMMENT ON COLUMN event_funnel.started IS 'The event started (events.actual_start is known); only started events have a funnel.';
COMMENT ON COLUMN event_funnel.start_time IS 'Actual start, else the announced start, else the first observation.';
COMMENT ON COLUMN event_funnel.interested IS 'Stage 1: members interested in the event.';
COMMENT ON COLUMN event_funnel.in_voice IS 'Stage 2: interested members who attended in voice.';
COMMENT ON COLUMN event_funnel.on_server IS 'Stage 3: of those, members also seen on a game server during the event.';
COMMENT ON COLUMN event_funnel.played IS 'Stage 4: of those, members who also played ET:Legacy rounds during the event.';
COMMENT ON COLUMN event_funnel.attendees IS 'Every member in voice during the event, interested or not (as event_attendance counts them).';
COMMENT ON COLUMN event_funnel.walk_ins IS 'Members in voice during the event who had not marked themselves interested.';
COMMENT ON COLUMN event_funnel.voice_rate IS 'in_voice / interested; NULL without interested members.';
COMMENT ON COLUMN event_funnel.no_show_rate IS '(interested - in_voice) / interested: interested members who did not come into voice; NULL without interested members.';
COMMENT ON COLUMN event_funnel.server_rate IS 'on_server / in_voice; NULL when nobody interested came into voice.';
COMMENT ON COLUMN event_funnel.play_rate IS 'played / on_server; NULL when nobody reached the server stage.';

CREATE VIEW member_event_funnel AS
SELECT m.guild_id, m.user_id,
       count(*) FILTER (WHERE m.interested)::integer AS events_interested,
       count(*) FILTER (WHERE m.interested AND m.in_voice)::integer AS events_attended,
       count(*) FILTER (WHERE m.interested AND NOT m.in_voice)::integer AS no_shows,
       count(*) FILTER (WHERE m.in_voice AND NOT m.interested)::integer AS walk_ins,
       count(*) FILTER (WHERE m.interested AND NOT m.in_voice)::double precision
           / nullif(count(*) FILTER (WHERE m.interested), 0) AS no_show_rate,
       min(e.actual_start) AS first_event_start,
       max(e.actual_start) AS last_event_start
FROM @extschema@.event_funnel_members m
JOIN @extschema@.events e ON e.event_id = m.event_id
GROUP BY m.guild_id, m.user_id;
COMMENT ON VIEW member_event_funnel IS
    'Per member, over the started scheduled events of their guild (event_funnel_members): events they were interested in, of those the ones they attended in voice and the no-shows, events they attended without having marked interest (walk-ins), and their no-show rate.';
COMMENT ON COLUMN member_event_funnel.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_event_funnel.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN member_event_funnel.events_interested IS 'Started events the member was interested in.';
COMMENT ON COLUMN member_event_funnel.events_attended IS 'Of those, events the member attended in voice.';
COMMENT ON COLUMN member_event_funnel.no_shows IS 'Of those, events the member did not attend in voice.';
COMMENT ON COLUMN member_event_funnel.walk_ins IS 'Events the member attended in voice without having marked interest.';
COMMENT ON COLUMN member_event_funnel.no_show_rate IS 'no_shows / events_interested; NULL when never interested.';
COMMENT ON COLUMN member_event_funnel.first_event_start IS 'Actual start of the member''s first event in the funnel (interested or attended).';
COMMENT ON COLUMN member_event_funnel.last_event_start IS 'Actual start of the member''s latest event in the funnel.';

-- D30 of attendees vs non-attendees, one cohort entry per member: their first started event in
-- the funnel (interested or in voice). Counting every (member, event) pair would weigh regulars, who are
-- interested in many events, many times over.
CREATE VIEW event_retention_d30 AS
SELECT f.guild_id, f.user_id, f.event_id, f.event_day,
       CASE WHEN NOT f.interested THEN 'walk_in' WHEN f.in_voice THEN 'attended' ELSE 'absent' END AS cohort,
       coalesce((b.horizon AT TIME ZONE f.calendar_time_zone)::date >= f.event_day + 30, false) AS eligible,
       EXISTS (SELECT 1 FROM @extschema@.voice_sessions v
                WHERE v.guild_id = f.guild_id AND v.user_id = f.user_id AND v.started_at >= f.day_30)
       OR EXISTS (SELECT 1 FROM @extschema@.raw_messages x
                   WHERE x.guild_id = f.guild_id AND x.user_id = f.user_id AND x.sent_at >= f.day_30 AND NOT x.is_bot)
       OR EXISTS (SELECT 1 FROM @extschema@.raw_point_transactions x
                   WHERE x.guild_id = f.guild_id AND x.user_id = f.user_id AND x.tx_ts >= f.day_30) AS retained_d30
FROM (SELECT DISTINCT ON (m.guild_id, m.user_id) m.guild_id, m.user_id, m.event_id, m.interested, m.in_voice,
             st.calendar_time_zone, d.event_day,
             (d.event_day + 30)::timestamp AT TIME ZONE st.calendar_time_zone AS day_30
        FROM @extschema@.event_funnel_members m
        JOIN @extschema@.events e ON e.event_id = m.event_id
       CROSS JOIN LATERAL @extschema@.settings_for(m.guild_id) st
       CROSS JOIN LATERAL (SELECT (e.actual_start AT TIME ZONE st.calendar_time_zone)::date AS event_day) d
       ORDER BY m.guild_id, m.user_id, e.actual_start, m.event_id) f
LEFT JOIN @extschema@.voice_build_guilds b ON b.guild_id = f.guild_id;
COMMENT ON VIEW event_retention_d30 IS
    'Do members who attend keep coming? One row per member of the funnel (event_funnel_members): their first started event there, whether they were interested and attended it in voice (cohort attended), interested but not in voice (absent) or in voice without interest (walk_in), and D30: retained_d30 is true when they started a voice session (voice_sessions, AFK included), sent a message or made a point transaction on the 30th calendar day after that event''s day (guild time zone) or later. eligible is false while the guild''s data (its voice horizon, voice_build_guilds.horizon) does not reach that 30th day: those rows cannot show retention yet and are left out of rates. Compare with: SELECT cohort, avg(retained_d30::int) FROM guildstats.event_retention_d30 WHERE eligible GROUP BY cohort;';
COMMENT ON COLUMN event_retention_d30.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_retention_d30.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN event_retention_d30.event_id IS 'The member''s first started event in the funnel (interested in it or in voice during it).';
COMMENT ON COLUMN event_retention_d30.event_day IS 'Calendar day of that event''s actual start in the guild''s time zone.';
COMMENT ON COLUMN event_retention_d30.cohort IS 'attended (interested and in voice at that event), absent (interested, not in voice) or walk_in (in voice without having marked interest).';
COMMENT ON COLUMN event_retention_d30.eligible IS 'The guild''s voice horizon (voice_build_guilds.horizon, its latest heartbeat) is on event_day + 30 or later, so retention can be observed.';
COMMENT ON COLUMN event_retention_d30.retained_d30 IS 'The member started a voice session, sent a message (not as a bot) or made a point transaction on event_day + 30 or any later day.';

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

SELECT count(@extschema@.isolate_by_guild(v::regclass))
  FROM unnest(ARRAY['@extschema@.event_member_names', '@extschema@.event_funnel_members', '@extschema@.event_funnel',
                    '@extschema@.member_event_funnel', '@extschema@.event_retention_d30',
                    'guildstats_mart.event_funnel', 'guildstats_mart.member_event_funnel',
                    'guildstats_mart.event_retention_d30']) v;
-- ==== end of show-up funnel
-- ==== depth-weighted retention and the retention of voice hours (issue 13: 7) ====
-- retention() and retention_dn() take min_activity and activity (new trailing arguments with
-- defaults, so every existing call means what it meant); _period_unit(), _retention_activity() and
-- voice_hours_retention() are new. The state types and their C functions are unchanged (issue
-- 13: 9 only moved their declarations into Rust).
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

-- The BI views call retention(), so it cannot simply be dropped: each view that depends on it
-- gets a placeholder of the same columns while the function is replaced, then its own
-- definition back (CREATE OR REPLACE keeps comments, grants and the views built on it; its
-- options are given again since it would reset them).
DO $upgrade$
DECLARE
    v record;
    saved jsonb := '[]';
BEGIN
    FOR v IN
        SELECT DISTINCT c.oid, c.oid::regclass::text AS name, pg_get_viewdef(c.oid) AS def,
               array_to_string(c.reloptions, ', ') AS options,
               (SELECT string_agg(format('NULL::%s%s AS %I', format_type(a.atttypid, a.atttypmod),
                                         CASE WHEN a.attcollation <> 0
                                              THEN (SELECT format(' COLLATE %I.%I', n.nspname, co.collname)
                                                    FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace
                                                    WHERE co.oid = a.attcollation) ELSE '' END,
                                         a.attname), ', ' ORDER BY a.attnum)
                FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS placeholder
        FROM pg_depend d
        JOIN pg_rewrite w ON d.classid = 'pg_rewrite'::regclass AND w.oid = d.objid
        JOIN pg_class c ON c.oid = w.ev_class
        WHERE d.refclassid = 'pg_proc'::regclass
          AND d.refobjid = '@extschema@.retention(bigint, text, text, text[], integer)'::regprocedure
          AND c.relkind = 'v'
    LOOP
        saved := saved || jsonb_build_object('name', v.name, 'def', v.def, 'options', v.options);
        EXECUTE format('CREATE OR REPLACE VIEW %s AS SELECT %s WHERE false', v.name, v.placeholder);
    END LOOP;
    PERFORM set_config('guildstats.upgrade_retention_views', saved::text, true);
END
$upgrade$;
DROP FUNCTION retention(bigint, text, text, text[], integer);
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
    'Retention cohort table of a guild for a heatmap (rows: cohort_start, cohort_size, period_offset, retained, rate, retained_or_later, rate_or_later). period: day, week or month in settings_for(guild_id).calendar_time_zone. cohort_by: first_activity (first activity in activity_events) or join (first join in raw_member_events). kinds: the activity_events kinds that count as activity (voice, message, points, member); default all but member, since a join date (Discord reports the original one, possibly years before tracking began) or a rename is not engagement. max_offset: the last period offset shown (default 365; at most 36525), so that one outlier timestamp, years away, cannot turn the table into millions of rows. activity and min_activity make retention depth-weighted: activity is what is measured (events: rows of activity_events of the kinds, the default; voice_minutes: minutes in voice outside AFK, from the member_voice_daily rollup; rounds: ET:Legacy rounds played under the member''s GUIDs in et_guid_links, by the game server''s clock), and a member counts as retained in a period only with at least min_activity of it there (default NULL: any activity). The cohort is still the first period with any of that activity (or the join); the table reaches the last period in which somebody met the threshold. Example: SELECT * FROM guildstats.retention(1234, ''week'', min_activity => 30, activity => ''voice_minutes'');';

DO $upgrade$
DECLARE
    v jsonb;
BEGIN
    FOR v IN SELECT * FROM jsonb_array_elements(current_setting('guildstats.upgrade_retention_views')::jsonb)
    LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s%s AS %s', v->>'name',
                       CASE WHEN coalesce(v->>'options', '') <> '' THEN format(' WITH (%s)', v->>'options') ELSE '' END,
                       v->>'def');
    END LOOP;
END
$upgrade$;
DROP FUNCTION retention_dn(bigint, integer[], text[]);
CREATE FUNCTION retention_dn(guild_id bigint, days integer[] DEFAULT '{1,7,30,90}', kinds text[] DEFAULT NULL,
                             min_activity numeric DEFAULT NULL, activity text DEFAULT 'events')
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
                                    (SELECT greatest(max(n), 0) FROM unnest(retention_dn.days) AS n),
                                    retention_dn.min_activity, retention_dn.activity) r
           ON r.period_offset = d.n
    GROUP BY d.n
    ORDER BY d.n
$$;
COMMENT ON FUNCTION retention_dn(bigint, integer[], text[], numeric, text) IS
    'Classic D1/D7/D30/D90 retention of a guild (days configurable): of the users whose first activity was at least N days before the last activity in the data (eligible_users), the share active exactly N calendar days after their first day (rate), and N days or later (rate_or_later). Days past 36525 are an error. min_activity and activity make it depth-weighted, as in retention(): active on a day means at least min_activity events, voice minutes or rounds that day. Example: SELECT * FROM guildstats.retention_dn(1234); SELECT * FROM guildstats.retention_dn(1234, min_activity => 30, activity => ''voice_minutes'');';

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
-- ==== end of depth-weighted retention
-- ==== dashboard rollups (issue 11, item 6): what the BI mart reads instead of raw rows ====
-- Same statements as sql/extension/rollups.sql (tables, build_rollups() and its helpers) and
-- sql/extension/mart.sql (the views that now read them). build_rollups() claims raw_messages
-- again from the start, so that its first run after the upgrade fills the new rollups too.

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

    -- Point flows and the economy from the first day with new transactions. The economy's
    -- balances carry over from earlier days, which _economy_health() folds into its opening.
    IF points_from IS NOT NULL THEN
        day_from := (points_from AT TIME ZONE tz)::date;
        DELETE FROM @extschema@.member_points_daily p WHERE p.guild_id = g AND p.day >= day_from;
        INSERT INTO @extschema@.member_points_daily (guild_id, day, user_id, reason, earned, spent, transactions)
        SELECT g, (t.tx_ts AT TIME ZONE tz)::date, t.user_id, t.reason,
               coalesce(sum(t.amount) FILTER (WHERE t.amount > 0), 0),
               coalesce(-sum(t.amount) FILTER (WHERE t.amount < 0), 0), count(*)
        FROM @extschema@.raw_point_transactions t
        WHERE t.guild_id = g AND t.tx_ts >= (day_from::timestamp AT TIME ZONE tz)
        GROUP BY 2, 3, 4;

        SELECT (min(t.tx_ts) AT TIME ZONE tz)::date, (max(t.tx_ts) AT TIME ZONE tz)::date INTO first_day, last_day
          FROM @extschema@.raw_point_transactions t WHERE t.guild_id = g;
        lo := greatest(day_from, first_day);
        DELETE FROM @extschema@.economy_daily e WHERE e.guild_id = g AND e.day >= lo;
        IF lo IS NOT NULL THEN
            INSERT INTO @extschema@.economy_daily
            SELECT g, h.* FROM @extschema@._economy_health(g, lo, last_day) h;
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION _rollup_dashboards(bigint, text, timestamptz, timestamptz, timestamptz, timestamptz, timestamptz) IS
    'Internal to build_rollups(): refreshes one guild''s dashboard rollups (chat_channel_daily, chat_activity_5min, guild_voice_hourly, guild_activity_daily, member_points_daily, economy_daily) from the first instant each input changed (NULL: unchanged), in the guild''s time zone tz, open voice sessions counted up to horizon.';

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

CREATE OR REPLACE FUNCTION build_rollups(full boolean DEFAULT false)
RETURNS TABLE (guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint,
               elapsed interval, status text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    started      timestamptz := clock_timestamp();
    message_ids  int8multirange;
    g            record;
    n            bigint;
    tracked_since timestamptz;
    voice_event_ids int8multirange;
    point_ids    int8multirange;
    poll_ids     int8multirange;
    lo           date;
BEGIN
    guilds_refreshed := 0; daily_rows := 0; weekly_rows := 0; monthly_rows := 0;
    IF NOT @extschema@._try_builder_lock('build_rollups') THEN
        elapsed := clock_timestamp() - started;
        status := 'skipped: another build_rollups() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    IF build_rollups.full THEN
        PERFORM @extschema@._reset_progress('build_rollups');
        TRUNCATE @extschema@.member_voice_daily, @extschema@.member_engagement_weekly,
                 @extschema@.member_monthly_status, @extschema@.member_active_days,
                 @extschema@.guild_activity_daily, @extschema@.chat_channel_daily,
                 @extschema@.chat_activity_5min, @extschema@.guild_voice_hourly,
                 @extschema@.member_points_daily, @extschema@.economy_daily,
                 @extschema@.server_polls_hourly, @extschema@.ingest_lag_rollup;
    END IF;
    message_ids := @extschema@._claim_ingest_ids('build_rollups', 'raw_messages');
    voice_event_ids := @extschema@._claim_ingest_ids('build_rollups', 'raw_voice_events');
    point_ids := @extschema@._claim_ingest_ids('build_rollups', 'raw_point_transactions');
    poll_ids := @extschema@._claim_ingest_ids('build_rollups', 'raw_server_polls');

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

    -- Per guild, the first instant each kind of input changed from: voice sessions rewritten,
    -- new messages, new active days (voice joins, messages, points), new point transactions.
    FOR g IN
        SELECT c.guild_id,
               min(c.changed_from) FILTER (WHERE c.kind IN ('voice', 'messages', 'full')) AS changed_from,
               min(c.changed_from) FILTER (WHERE c.kind IN ('voice', 'full')) AS voice_from,
               min(c.changed_from) FILTER (WHERE c.kind IN ('messages', 'full')) AS messages_from,
               min(c.changed_from) FILTER (WHERE c.kind IN ('voice_events', 'messages', 'points', 'full')) AS active_from,
               min(c.changed_from) FILTER (WHERE c.kind IN ('points', 'full')) AS points_from,
               s.calendar_time_zone AS tz, coalesce(b.horizon, '-infinity') AS horizon
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
              SELECT m.guild_id, '-infinity', 'full' FROM @extschema@.members m WHERE build_rollups.full
              GROUP BY m.guild_id) c
        CROSS JOIN LATERAL @extschema@.settings_for(c.guild_id) s
        LEFT JOIN @extschema@.voice_build_guilds b ON b.guild_id = c.guild_id
        GROUP BY c.guild_id, s.calendar_time_zone, b.horizon
        ORDER BY c.guild_id
    LOOP
        guilds_refreshed := guilds_refreshed + 1;

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
            daily_rows := daily_rows + n;

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
            weekly_rows := weekly_rows + n;

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
            monthly_rows := monthly_rows + n;
        END IF;

        PERFORM @extschema@._rollup_dashboards(g.guild_id, g.tz, g.horizon, g.voice_from, g.messages_from,
                                               g.active_from, g.points_from);
    END LOOP;
    DELETE FROM @extschema@.voice_session_changes c WHERE c.consumer = 'build_rollups';
    PERFORM @extschema@._rollup_server_polls(poll_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_voice_events', 'event_ts', voice_event_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_messages', 'sent_at', message_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_point_transactions', 'tx_ts', point_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_server_polls', 'polled_at', poll_ids);
    PERFORM @extschema@._rollup_ingest_lag('raw_member_events', 'event_ts',
                                           @extschema@._claim_ingest_ids('build_rollups', 'raw_member_events'));
    PERFORM @extschema@._rollup_ingest_lag('raw_heartbeats', 'beat_at',
                                           @extschema@._claim_ingest_ids('build_rollups', 'raw_heartbeats'));
    PERFORM @extschema@._rollup_ingest_lag('raw_et_stats_files', 'fetched_at',
                                           @extschema@._claim_ingest_ids('build_rollups', 'raw_et_stats_files'));

    elapsed := clock_timestamp() - started;
    status := CASE WHEN build_rollups.full THEN 'ok: full rebuild' ELSE 'ok' END;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_rollups(boolean) IS
    'Refreshes member_voice_daily, member_engagement_weekly and member_monthly_status from the first day that changed (voice sessions rewritten by build_voice_sessions(), attendance, new messages) on, per guild, in the guild''s calendar time zone. Returns one summary row; full => true starts over. Also keeps the dashboard rollups the BI mart reads (member_active_days, guild_activity_daily, chat_channel_daily, chat_activity_5min, guild_voice_hourly, member_points_daily, economy_daily, server_polls_hourly, ingest_lag_rollup). build_all() runs it last.';

DELETE FROM @extschema@.build_progress p WHERE p.builder = 'build_rollups';

CREATE OR REPLACE VIEW guildstats_mart.voice_hour_weekday AS
SELECT v.guild_id, v.hour_start, (h.local_hour)::date AS day,
       extract(isodow FROM h.local_hour)::integer AS weekday,
       to_char(h.local_hour, 'ID Dy') AS weekday_name,
       extract(hour FROM h.local_hour)::integer AS hour_of_day,
       v.voice_hours, v.voice_users
FROM @extschema@.guild_voice_hourly v
JOIN guildstats_mart.guilds g ON g.guild_id = v.guild_id
CROSS JOIN LATERAL (SELECT v.hour_start AT TIME ZONE g.calendar_time_zone AS local_hour) h;
COMMENT ON VIEW guildstats_mart.voice_hour_weekday IS 'Voice time per hour (from the guild_voice_hourly rollup of voice sessions, AFK excluded), with the hour of day and weekday in the guild''s time zone: sum voice_hours by weekday_name and hour_of_day for the weekly heatmap.';

CREATE OR REPLACE VIEW guildstats_mart.executive_daily AS
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

CREATE OR REPLACE VIEW guildstats_mart.retention_daily AS
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

CREATE OR REPLACE VIEW guildstats_mart.retention_cohorts AS
-- Weeks by first activity come from the active days (the same activity retention() counts, at
-- day resolution, which is all a week needs); by join, from retention() over the raw joins.
SELECT a.guild_id, 'week'::text AS period, 'first_activity'::text AS cohort_by, r.cohort_start, r.cohort_size,
       r.period_offset, r.retained, r.rate, r.retained_or_later, r.rate_or_later
FROM (SELECT x.guild_id, @extschema@.retention_agg(x.user_id, NULL::timestamp, x.day::timestamp, 'week') AS state
        FROM @extschema@.member_active_days x GROUP BY x.guild_id) a
CROSS JOIN LATERAL @extschema@.retention_rows(a.state, 365) r
UNION ALL
SELECT g.guild_id, 'week', 'join', r.cohort_start, r.cohort_size, r.period_offset,
       r.retained, r.rate, r.retained_or_later, r.rate_or_later
FROM guildstats_mart.guilds g
CROSS JOIN LATERAL @extschema@.retention(g.guild_id, 'week', 'join') r
UNION ALL
-- Months come from the monthly rollup: an active month of member_monthly_status is a month
-- with voice, messages or attendance, the same activity retention() counts.
SELECT s.guild_id, 'month', c.cohort_by, r.cohort_start, r.cohort_size, r.period_offset,
       r.retained, r.rate, r.retained_or_later, r.rate_or_later
FROM (SELECT DISTINCT guild_id FROM @extschema@.member_monthly_status) s
CROSS JOIN (VALUES ('first_activity'), ('join')) AS c(cohort_by)
CROSS JOIN LATERAL (
    SELECT @extschema@.retention_agg(x.user_id,
                                     CASE WHEN c.cohort_by = 'join' THEN jm.join_month::timestamp END,
                                     CASE WHEN x.was_active THEN x.month::timestamp END, 'month') AS state
    FROM @extschema@.member_monthly_status x
    JOIN guildstats_mart.members jm ON jm.guild_id = x.guild_id AND jm.user_id = x.user_id
    WHERE x.guild_id = s.guild_id AND (x.was_active OR c.cohort_by = 'join')
      -- Discord reports the original join date of members from before tracking began: those
      -- joins have no activity to follow, so join cohorts start with the first tracked month.
      AND (c.cohort_by = 'first_activity'
           OR jm.join_month >= (SELECT min(y.month) FROM @extschema@.member_monthly_status y
                                 WHERE y.guild_id = s.guild_id))) a
CROSS JOIN LATERAL @extschema@.retention_rows(a.state) r;
COMMENT ON VIEW guildstats_mart.retention_cohorts IS 'Retention cohort tables for heatmaps: weekly and monthly cohorts, by first activity or by join month; one row per cohort and period offset (0 = the cohort''s own period).';

CREATE OR REPLACE VIEW guildstats_mart.economy_daily AS
SELECT e.guild_id, e.day, e.circulation, e.earned, e.spent, e.net, e.accounts, e.users_with_points,
       e.median_balance, e.top1_share, e.gini, e.inflation, e.negative_streak,
       e.alert_inflation, e.alert_net_negative, e.alert_gini,
       array_to_string(e.alerts, ', ') AS alerts,
       0.10::double precision AS inflation_threshold, 0.7::double precision AS gini_threshold
FROM @extschema@.economy_daily e;
COMMENT ON VIEW guildstats_mart.economy_daily IS 'The points economy per guild and calendar day (economy_health(), kept in the economy_daily rollup): circulation, flows, inequality, inflation and the three alerts, with the alert thresholds as columns for chart lines.';

CREATE OR REPLACE VIEW guildstats_mart.economy_flows_daily AS
SELECT t.guild_id, t.day, t.user_id, coalesce(m.display_name, 'user ' || t.user_id) AS member_name,
       CASE WHEN t.reason = '' THEN '(none)' ELSE t.reason END AS reason,
       t.earned::numeric AS earned, t.spent::numeric AS spent, t.transactions
FROM @extschema@.member_points_daily t
LEFT JOIN @extschema@.members m ON m.guild_id = t.guild_id AND m.user_id = t.user_id;
COMMENT ON VIEW guildstats_mart.economy_flows_daily IS 'Point flows per guild, calendar day, member and reason (from the member_points_daily rollup): earned and spent. Sum by reason for earn vs spend by type, by member_name for top earners and spenders.';

CREATE OR REPLACE VIEW guildstats_mart.chat_daily AS
SELECT c.guild_id, c.day, c.channel_id,
       coalesce(nullif((SELECT n.name FROM @extschema@.raw_channels n WHERE n.channel_id = c.channel_id
                         ORDER BY n.observed_at DESC, n.ingest_id DESC LIMIT 1), ''),
                'channel ' || c.channel_id) AS channel_name,
       c.messages, c.authors, c.characters, c.with_attachments, c.replies
FROM @extschema@.chat_channel_daily c;
COMMENT ON VIEW guildstats_mart.chat_daily IS 'Chat per guild, calendar day and channel, bots excluded (from the chat_channel_daily rollup).';

CREATE OR REPLACE VIEW guildstats_mart.game_servers_hourly AS
SELECT g.guild_id, h.hour, h.server, coalesce(s.label, h.server) AS server_label,
       h.polls, h.ok_polls, h.ok_polls::double precision / h.polls AS uptime,
       h.player_sum::numeric / nullif(h.player_polls, 0) AS avg_players, h.max_players_seen, h.slots,
       h.utilization_sum / nullif(h.utilization_polls, 0) AS utilization
FROM @extschema@.server_polls_hourly h
LEFT JOIN @extschema@.game_servers s ON s.address = h.server
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.game_servers_hourly IS 'Game servers per hour (from the server_polls_hourly rollup): uptime (share of polls answered), players and utilization (players / slots).';

CREATE OR REPLACE VIEW guildstats_mart.ingest_lag_hourly AS
SELECT g.guild_id, l.hour, l.source_table, l.rows, l.avg_lag_seconds, l.p95_lag_seconds, l.max_lag_seconds
FROM @extschema@.ingest_lag_rollup l
CROSS JOIN guildstats_mart.guilds g;
COMMENT ON VIEW guildstats_mart.ingest_lag_hourly IS 'How long after the fact each input reached the database, per raw table and hour of event time (from the ingest_lag_rollup rollup).';

CREATE OR REPLACE VIEW guildstats_mart.live_activity_5min AS
SELECT c.guild_id, c.window_start, c.messages, c.authors
FROM @extschema@.chat_activity_5min c;
COMMENT ON VIEW guildstats_mart.live_activity_5min IS 'Messages per guild and 5-minute window (bots excluded; from the chat_activity_5min rollup, as of the last build), for live operations panels.';

-- health(): the freshness, orphan and game-server checks through indexes (same statements as
-- sql/extension/activity.sql).
CREATE OR REPLACE FUNCTION health()
RETURNS TABLE (check_name text, severity text, status text, detail text)
LANGUAGE sql STABLE
AS $$
    -- The latest arrival is the row with the highest ingest_id (arrival order): one step down
    -- the primary key instead of reading every received_at of tables of millions of rows.
    WITH latest AS (
        SELECT 'raw_heartbeats' AS source_table,
               (SELECT t.received_at FROM @extschema@.raw_heartbeats t ORDER BY t.ingest_id DESC LIMIT 1) AS last_row
        UNION ALL SELECT 'raw_voice_events',
               (SELECT t.received_at FROM @extschema@.raw_voice_events t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_messages',
               (SELECT t.received_at FROM @extschema@.raw_messages t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_member_events',
               (SELECT t.received_at FROM @extschema@.raw_member_events t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_server_polls',
               (SELECT t.received_at FROM @extschema@.raw_server_polls t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_point_transactions',
               (SELECT t.received_at FROM @extschema@.raw_point_transactions t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_et_stats_files',
               (SELECT t.received_at FROM @extschema@.raw_et_stats_files t ORDER BY t.ingest_id DESC LIMIT 1)),
    freshness AS (
        SELECT 'freshness: ' || source_table AS check_name,
               CASE WHEN source_table IN ('raw_heartbeats', 'raw_server_polls') THEN 'critical' ELSE 'warning' END AS severity,
               CASE WHEN last_row IS NULL THEN 'no data'
                    WHEN now() - last_row > CASE WHEN source_table IN ('raw_heartbeats', 'raw_server_polls')
                                                 THEN interval '15 minutes' ELSE interval '1 day' END THEN 'stale'
                    ELSE 'ok' END AS status,
               coalesce('last row received ' || to_char(last_row AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC',
                        'no rows yet') AS detail
        FROM latest),
    beats AS (
        SELECT 'heartbeat: ' || source || coalesce(' guild ' || guild_id, '') AS check_name, 'critical' AS severity,
               CASE WHEN now() - max(beat_at) > interval '5 minutes' THEN 'missing' ELSE 'ok' END AS status,
               'last beat ' || to_char(max(beat_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS detail
        FROM @extschema@.raw_heartbeats GROUP BY source, guild_id),
    et AS (
        SELECT 'et files: failed imports' AS check_name, 'warning' AS severity,
               CASE WHEN count(*) FILTER (WHERE import_error IS NOT NULL) > 0 THEN 'failing' ELSE 'ok' END AS status,
               count(*) FILTER (WHERE import_error IS NOT NULL) || ' of ' || count(*) || ' files have an import_error' AS detail
        FROM @extschema@.raw_et_stats_files
        UNION ALL
        SELECT 'et files: not imported', 'warning',
               CASE WHEN count(*) > 0 THEN 'pending' ELSE 'ok' END,
               count(*) || ' files received over an hour ago are not imported yet'
        FROM @extschema@.raw_et_stats_files
        WHERE imported_at IS NULL AND import_error IS NULL AND received_at < now() - interval '1 hour'),
    orphans AS (
        SELECT 'activity without member row' AS check_name, 'info' AS severity,
               CASE WHEN count(*) > 0 THEN 'found' ELSE 'ok' END AS status,
               count(*) || ' users are active but have no raw_member_events row (joined before tracking began?)' AS detail
        -- The people build_members() has seen, each probed in the raw tables through their
        -- (guild_id, user_id, time) indexes, instead of every raw row made distinct.
        FROM @extschema@.members x
        WHERE NOT EXISTS (SELECT 1 FROM @extschema@.raw_member_events m
                           WHERE m.guild_id = x.guild_id AND m.user_id = x.user_id)
          AND (EXISTS (SELECT 1 FROM @extschema@.raw_voice_events v
                        WHERE v.guild_id = x.guild_id AND v.user_id = x.user_id AND v.channel_id IS NOT NULL)
               OR EXISTS (SELECT 1 FROM @extschema@.raw_messages r
                           WHERE r.guild_id = x.guild_id AND r.user_id = x.user_id AND NOT r.is_bot)
               OR EXISTS (SELECT 1 FROM @extschema@.raw_point_transactions t
                           WHERE t.guild_id = x.guild_id AND t.user_id = x.user_id))),
    -- Each server's last hour through the (server, polled_at) key: the servers found by skipping
    -- through it, not by reading every poll ever made.
    polls AS (
        SELECT 'game server: ' || l.server AS check_name, 'warning' AS severity,
               CASE WHEN x.failed * 2 > x.n THEN 'down'
                    WHEN x.failed > 0 THEN 'degraded' ELSE 'ok' END AS status,
               x.failed || ' of ' || x.n || ' polls failed in the last hour of data' AS detail
        FROM (WITH RECURSIVE servers AS (
                  SELECT (SELECT min(s.server) FROM @extschema@.raw_server_polls s) AS server
                  UNION ALL
                  SELECT (SELECT min(s.server) FROM @extschema@.raw_server_polls s WHERE s.server > v.server)
                  FROM servers v WHERE v.server IS NOT NULL)
              SELECT servers.server FROM servers WHERE servers.server IS NOT NULL) l
        CROSS JOIN LATERAL (SELECT max(q.polled_at) AS last_poll FROM @extschema@.raw_server_polls q
                             WHERE q.server = l.server) m
        CROSS JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE NOT p.ok) AS failed
                              FROM @extschema@.raw_server_polls p
                             WHERE p.server = l.server AND p.polled_at > m.last_poll - interval '1 hour') x),
    quarantined AS (
        SELECT 'quarantined rows' AS check_name, 'warning' AS severity,
               CASE WHEN sum(n) > 0 THEN 'found' ELSE 'ok' END AS status,
               coalesce(sum(n), 0) || ' raw rows are in quarantine (dated too far ahead of their arrival, or set aside by an upgrade)'
               || coalesce(' (' || string_agg(source_table || ': ' || n, ', ' ORDER BY source_table) || ')', '') AS detail
        FROM (SELECT q.source_table, count(*) AS n FROM @extschema@.quarantine q GROUP BY q.source_table) per_table),
    -- Who holds the builders' locks (rows of builder_locks, locked FOR UPDATE: a RowShareLock on
    -- the table, which only roles with UPDATE on it can take). A build holds them for seconds; a
    -- transaction that holds one for minutes keeps every build skipped and erase_member()
    -- waiting. The transaction's age is visible to superusers and pg_read_all_stats members.
    lock_holders AS (
        SELECT l.pid, a.xact_start
        FROM (SELECT DISTINCT k.pid FROM pg_catalog.pg_locks k
               WHERE k.locktype = 'relation' AND k.relation = '@extschema@.builder_locks'::regclass
                 AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                 AND k.mode = 'RowShareLock' AND k.granted AND k.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()) l
        LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid),
    builder_locks AS (
        SELECT 'builder locks' AS check_name, 'warning' AS severity,
               CASE WHEN bool_or(h.xact_start < now() - interval '5 minutes') THEN 'stuck'
                    WHEN count(*) > 0 THEN 'busy' ELSE 'ok' END AS status,
               coalesce('held by pid ' || string_agg(h.pid || coalesce(' since ' || to_char(h.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', ''),
                                                   ', ' ORDER BY h.pid)
                        || '; while held, builds are skipped and erase_member() waits',
                        'no builder lock is held') AS detail
        FROM lock_holders h)
    SELECT * FROM freshness
    UNION ALL SELECT * FROM beats
    UNION ALL SELECT * FROM et
    UNION ALL SELECT * FROM orphans
    UNION ALL SELECT * FROM polls
    UNION ALL SELECT * FROM quarantined
    UNION ALL SELECT * FROM builder_locks
    ORDER BY 1
$$;
COMMENT ON FUNCTION health() IS
    'Data-quality checks, one row each (check_name, severity, status, detail): freshness of every raw table (its latest arrival by ingest_id; stale after 15 minutes for heartbeats and polls, a day for the rest), missing heartbeats per ingester and guild (none for 5 minutes), ET stats files that failed to import or wait unimported for over an hour, users active (voice, messages, points) without any member row (among the people build_members() has seen), failed game-server polls in the last hour of data, raw rows set aside in quarantine (dated too far ahead of their arrival), and who holds the builders'' locks (busy while a build runs, stuck when a transaction has held one for over 5 minutes, naming its pid). status ok means nothing to do.';

-- New tables with a guild_id and the replaced views under per-guild isolation, as isolation.sql
-- does on a fresh install.
SELECT count(@extschema@.isolate_by_guild(x.relation::regclass))
  FROM unnest(ARRAY['@extschema@.member_active_days', '@extschema@.guild_activity_daily',
                    '@extschema@.chat_channel_daily', '@extschema@.chat_activity_5min',
                    '@extschema@.guild_voice_hourly', '@extschema@.member_points_daily',
                    '@extschema@.economy_daily',
                    'guildstats_mart.voice_hour_weekday', 'guildstats_mart.executive_daily', 'guildstats_mart.retention_daily', 'guildstats_mart.retention_cohorts', 'guildstats_mart.economy_daily', 'guildstats_mart.economy_flows_daily', 'guildstats_mart.chat_daily', 'guildstats_mart.game_servers_hourly', 'guildstats_mart.ingest_lag_hourly', 'guildstats_mart.live_activity_5min']) AS x(relation);
-- ==== end of dashboard rollups

-- ==== voice co-presence (issue 13: 2): pairs per day, top partners, groups of regulars, integration score
ALTER TABLE settings ADD COLUMN regular_min_minutes integer;
ALTER TABLE settings ADD COLUMN regular_window_days integer;
ALTER TABLE settings ADD CONSTRAINT settings_regular_min_minutes_positive CHECK (regular_min_minutes > 0);
ALTER TABLE settings ADD CONSTRAINT settings_regular_window_days_positive CHECK (regular_window_days > 0);
COMMENT ON COLUMN settings.regular_min_minutes IS 'Two members are regulars of each other with at least this many minutes of shared voice within regular_window_days (built-in default 60). Read it with regulars_threshold_for(guild_id).';
COMMENT ON COLUMN settings.regular_window_days IS 'The window, in days, of regular_min_minutes (built-in default 28).';

INSERT INTO builder_locks (builder) VALUES ('build_voice_copresence');

CREATE OR REPLACE FUNCTION _note_voice_change(guild_id bigint, changed_from timestamptz)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO @extschema@.voice_session_changes AS c (consumer, guild_id, changed_from)
    SELECT consumer, _note_voice_change.guild_id, _note_voice_change.changed_from
    FROM unnest(ARRAY['build_event_attendance', 'build_rollups', 'build_voice_copresence']) AS consumer
    WHERE _note_voice_change.changed_from IS NOT NULL
    ON CONFLICT (consumer, guild_id) DO UPDATE SET changed_from = least(c.changed_from, EXCLUDED.changed_from);
END;
COMMENT ON FUNCTION _note_voice_change(bigint, timestamptz) IS
    'Internal to the builders: tells the downstream builders that a guild''s voice sessions from changed_from on may have changed.';
COMMENT ON COLUMN voice_session_changes.consumer IS 'The downstream builder: build_event_attendance, build_rollups or build_voice_copresence.';

-- Voice co-presence: who spends time in voice with whom. build_voice_copresence() keeps the
-- shared time of every pair of members per calendar day; top partners, groups of regulars and
-- the newcomer integration score are read from it.
--
-- Cost: a channel with n people at once holds n(n-1)/2 pairs, so the rows grow with the square
-- of channel occupancy, not with the number of sessions. Pairs are found per channel and day
-- (sessions cut at midnight first), so a busy channel's year is never joined with itself.

CREATE TABLE voice_copresence_daily (
    guild_id        bigint           NOT NULL,
    day             date             NOT NULL,
    user_a          bigint           NOT NULL,
    user_b          bigint           NOT NULL,
    shared_seconds  double precision NOT NULL,
    PRIMARY KEY (guild_id, day, user_a, user_b),
    CONSTRAINT voice_copresence_daily_pair_ordered CHECK (user_a < user_b),
    CONSTRAINT voice_copresence_daily_positive CHECK (shared_seconds > 0)
);
-- A member's partners are read by user_b as often as by user_a (voice_top_partners).
CREATE INDEX voice_copresence_daily_user_b ON voice_copresence_daily (guild_id, user_b, day);
CREATE INDEX voice_copresence_daily_user_a ON voice_copresence_daily (guild_id, user_a, day);
COMMENT ON TABLE voice_copresence_daily IS
    'Shared voice time per pair of members and calendar day (the guild''s settings.calendar_time_zone): both in the same channel at the same time, the AFK channel excluded. Each unordered pair once (user_a < user_b); time over midnight is split between the days; a member''s overlapping sessions count once; open sessions count up to the voice horizon. Built by build_voice_copresence().';
COMMENT ON COLUMN voice_copresence_daily.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN voice_copresence_daily.day IS 'Calendar day in settings.calendar_time_zone.';
COMMENT ON COLUMN voice_copresence_daily.user_a IS 'Discord user snowflake, the smaller of the pair.';
COMMENT ON COLUMN voice_copresence_daily.user_b IS 'Discord user snowflake, the larger of the pair.';
COMMENT ON COLUMN voice_copresence_daily.shared_seconds IS 'Seconds both spent in the same non-AFK voice channel that day.';
COMMENT ON INDEX voice_copresence_daily_user_a IS 'A member''s pairs where they are user_a, by day.';
COMMENT ON INDEX voice_copresence_daily_user_b IS 'A member''s pairs where they are user_b, by day.';
SELECT pg_catalog.pg_extension_config_dump('voice_copresence_daily', '');

CREATE TABLE voice_copresence_guilds (
    guild_id            bigint      PRIMARY KEY,
    calendar_time_zone  text        NOT NULL,
    built_at            timestamptz NOT NULL
);
COMMENT ON TABLE voice_copresence_guilds IS
    'Bookkeeping of build_voice_copresence(): the guilds it has built and the time zone their days were cut in. A guild with voice sessions but no row here (new, or sessions built before this builder existed) or with another time zone now is built whole.';
COMMENT ON COLUMN voice_copresence_guilds.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN voice_copresence_guilds.calendar_time_zone IS 'settings.calendar_time_zone when the guild was last built.';
COMMENT ON COLUMN voice_copresence_guilds.built_at IS 'When the guild was last built.';
SELECT pg_catalog.pg_extension_config_dump('voice_copresence_guilds', '');

CREATE FUNCTION _voice_copresence_pairs(guild_id bigint, from_day date, time_zone text, horizon timestamptz)
RETURNS TABLE (day date, user_a bigint, user_b bigint, shared_seconds double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH clipped AS (
        SELECT v.user_id, v.channel_id,
               tstzrange(greatest(v.started_at, (_voice_copresence_pairs.from_day::timestamp AT TIME ZONE _voice_copresence_pairs.time_zone)),
                         coalesce(v.ended_at, _voice_copresence_pairs.horizon)) AS r
        FROM @extschema@.voice_sessions v
        WHERE v.guild_id = _voice_copresence_pairs.guild_id AND NOT v.is_afk
          AND coalesce(v.ended_at, _voice_copresence_pairs.horizon)
              > (_voice_copresence_pairs.from_day::timestamp AT TIME ZONE _voice_copresence_pairs.time_zone)
          AND v.started_at < coalesce(v.ended_at, _voice_copresence_pairs.horizon)
    ),
    -- A member's overlapping stints in one channel count once.
    merged AS (
        SELECT c.user_id, c.channel_id, unnest(range_agg(c.r)) AS r
        FROM clipped c GROUP BY c.user_id, c.channel_id
    ),
    pieces AS (
        SELECT m.user_id, m.channel_id, d.day::date AS day,
               m.r * tstzrange(d.day AT TIME ZONE _voice_copresence_pairs.time_zone,
                               (d.day + interval '1 day') AT TIME ZONE _voice_copresence_pairs.time_zone) AS r
        FROM merged m
        CROSS JOIN LATERAL generate_series((lower(m.r) AT TIME ZONE _voice_copresence_pairs.time_zone)::date::timestamp,
                                           (upper(m.r) AT TIME ZONE _voice_copresence_pairs.time_zone)::date::timestamp,
                                           interval '1 day') AS d(day)
    ),
    together AS (
        SELECT a.day, a.user_id AS user_a, b.user_id AS user_b, a.r * b.r AS r
        FROM pieces a
        JOIN pieces b ON b.channel_id = a.channel_id AND b.day = a.day AND b.user_id > a.user_id AND b.r && a.r
        WHERE NOT isempty(a.r)
    ),
    -- A pair together in two channels at once (overlapping sessions of both) counts once.
    unioned AS (
        SELECT o.day, o.user_a, o.user_b, unnest(range_agg(o.r)) AS r
        FROM together o GROUP BY o.day, o.user_a, o.user_b
    )
    SELECT u.day, u.user_a, u.user_b, sum(extract(epoch FROM upper(u.r) - lower(u.r)))::double precision
    FROM unioned u
    GROUP BY u.day, u.user_a, u.user_b
    HAVING sum(extract(epoch FROM upper(u.r) - lower(u.r))) > 0;
END;
COMMENT ON FUNCTION _voice_copresence_pairs(bigint, date, text, timestamptz) IS
    'Internal to build_voice_copresence(): the shared voice seconds of every pair of a guild per calendar day in time_zone, from from_day on, open sessions counted up to horizon.';

CREATE FUNCTION build_voice_copresence(full boolean DEFAULT false)
RETURNS TABLE (guilds_refreshed integer, pair_rows bigint, elapsed interval, status text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    started  timestamptz := clock_timestamp();
    g        record;
    n        bigint;
BEGIN
    guilds_refreshed := 0; pair_rows := 0;
    IF NOT @extschema@._try_builder_lock('build_voice_copresence') THEN
        elapsed := clock_timestamp() - started;
        status := 'skipped: another build_voice_copresence() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    IF build_voice_copresence.full THEN
        DELETE FROM @extschema@.voice_copresence_guilds;
        TRUNCATE @extschema@.voice_copresence_daily;
    END IF;

    -- The days from the earliest session build_voice_sessions() rewrote; a guild never built
    -- here, or whose calendar time zone changed, whole.
    FOR g IN
        SELECT c.guild_id, min(c.changed_from) AS changed_from, s.calendar_time_zone AS tz, b.horizon
        FROM (SELECT v.guild_id, v.changed_from FROM @extschema@.voice_session_changes v
               WHERE v.consumer = 'build_voice_copresence'
              UNION ALL
              SELECT b.guild_id, '-infinity' FROM @extschema@.voice_build_guilds b
               WHERE NOT EXISTS (SELECT 1 FROM @extschema@.voice_copresence_guilds d
                                  WHERE d.guild_id = b.guild_id
                                    AND d.calendar_time_zone = (SELECT s.calendar_time_zone
                                                                  FROM @extschema@.settings_for(b.guild_id) s))) c
        CROSS JOIN LATERAL @extschema@.settings_for(c.guild_id) s
        JOIN @extschema@.voice_build_guilds b ON b.guild_id = c.guild_id
        GROUP BY c.guild_id, s.calendar_time_zone, b.horizon
        ORDER BY c.guild_id
    LOOP
        guilds_refreshed := guilds_refreshed + 1;
        DELETE FROM @extschema@.voice_copresence_daily d
         WHERE d.guild_id = g.guild_id AND d.day >= (g.changed_from AT TIME ZONE g.tz)::date;
        INSERT INTO @extschema@.voice_copresence_daily (guild_id, day, user_a, user_b, shared_seconds)
        SELECT g.guild_id, p.day, p.user_a, p.user_b, p.shared_seconds
        FROM @extschema@._voice_copresence_pairs(g.guild_id, (g.changed_from AT TIME ZONE g.tz)::date, g.tz, g.horizon) p;
        GET DIAGNOSTICS n = ROW_COUNT;
        pair_rows := pair_rows + n;
        INSERT INTO @extschema@.voice_copresence_guilds AS d (guild_id, calendar_time_zone, built_at)
        VALUES (g.guild_id, g.tz, now())
        ON CONFLICT (guild_id) DO UPDATE SET calendar_time_zone = EXCLUDED.calendar_time_zone, built_at = EXCLUDED.built_at;
    END LOOP;
    DELETE FROM @extschema@.voice_session_changes c WHERE c.consumer = 'build_voice_copresence';

    elapsed := clock_timestamp() - started;
    status := CASE WHEN build_voice_copresence.full THEN 'ok: full rebuild' ELSE 'ok' END;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_voice_copresence(boolean) IS
    'Refreshes voice_copresence_daily from the first calendar day whose voice sessions build_voice_sessions() rewrote, per guild (a guild never built, or whose calendar time zone changed, whole). Returns one summary row; full => true starts over. build_all() runs it after build_voice_sessions().';

CREATE FUNCTION voice_top_partners(guild_id bigint, user_id bigint, from_day date DEFAULT NULL,
                                   to_day date DEFAULT NULL, max_rows integer DEFAULT 5)
RETURNS TABLE (partner_id bigint, partner_name text, shared_minutes double precision, days_together bigint)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT p.partner_id, m.display_name, p.seconds / 60.0, p.days
    FROM (SELECT x.partner_id, sum(x.shared_seconds) AS seconds, count(DISTINCT x.day) AS days
          FROM (SELECT d.user_b AS partner_id, d.shared_seconds, d.day FROM @extschema@.voice_copresence_daily d
                 WHERE d.guild_id = voice_top_partners.guild_id AND d.user_a = voice_top_partners.user_id
                   AND d.day >= coalesce(voice_top_partners.from_day, '-infinity')
                   AND d.day <= coalesce(voice_top_partners.to_day, 'infinity')
                UNION ALL
                SELECT d.user_a, d.shared_seconds, d.day FROM @extschema@.voice_copresence_daily d
                 WHERE d.guild_id = voice_top_partners.guild_id AND d.user_b = voice_top_partners.user_id
                   AND d.day >= coalesce(voice_top_partners.from_day, '-infinity')
                   AND d.day <= coalesce(voice_top_partners.to_day, 'infinity')) x
          GROUP BY x.partner_id) p
    LEFT JOIN @extschema@.members m ON m.guild_id = voice_top_partners.guild_id AND m.user_id = p.partner_id
    ORDER BY p.seconds DESC, p.partner_id
    LIMIT greatest(voice_top_partners.max_rows, 0);
END;
COMMENT ON FUNCTION voice_top_partners(bigint, bigint, date, date, integer) IS
    'A member''s top voice partners in a guild: the members they shared a (non-AFK) voice channel with most, with the shared minutes and the number of days together, between from_day and to_day inclusive (calendar days in the guild''s time zone; NULL: unbounded), most shared first, at most max_rows. partner_name is the latest display name, if any. Reads voice_copresence_daily. Example: SELECT * FROM guildstats.voice_top_partners(guild_id => 1, user_id => 42);';

-- Regulars: members with a partner above the threshold of settings.regular_min_minutes in the
-- last settings.regular_window_days days. Resolved on its own, like future_tolerance_for(), so
-- that settings_for() keeps its signature.
CREATE FUNCTION regulars_threshold_for(guild_id bigint)
RETURNS TABLE (min_minutes integer, window_days integer)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(g.regular_min_minutes, d.regular_min_minutes, 60),
           coalesce(g.regular_window_days, d.regular_window_days, 28)
    FROM (SELECT 1) AS one
    LEFT JOIN @extschema@.settings d ON d.guild_id IS NULL
    LEFT JOIN @extschema@.settings g ON g.guild_id = regulars_threshold_for.guild_id;
END;
COMMENT ON FUNCTION regulars_threshold_for(bigint) IS
    'The threshold that makes two members of a guild regulars of each other: at least min_minutes of shared voice within window_days days (settings.regular_min_minutes and regular_window_days: the guild''s row, else the global row, else 60 minutes in 28 days). Example: SELECT * FROM guildstats.regulars_threshold_for(1234);';

CREATE FUNCTION voice_regular_groups(guild_id bigint, as_of date DEFAULT NULL)
RETURNS TABLE (group_id bigint, user_id bigint, group_size integer)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    last_day  date := voice_regular_groups.as_of;
    min_seconds double precision;
    days      integer;
    users     bigint[];
    ea        integer[];
    eb        integer[];
    parent    integer[];
    ra        integer;
    rb        integer;
BEGIN
    SELECT t.min_minutes * 60.0, t.window_days INTO min_seconds, days
      FROM @extschema@.regulars_threshold_for(voice_regular_groups.guild_id) t;
    IF last_day IS NULL THEN
        SELECT max(d.day) INTO last_day FROM @extschema@.voice_copresence_daily d
         WHERE d.guild_id = voice_regular_groups.guild_id;
    END IF;
    WITH edges AS (
        SELECT d.user_a, d.user_b FROM @extschema@.voice_copresence_daily d
         WHERE d.guild_id = voice_regular_groups.guild_id
           AND d.day > last_day - days AND d.day <= last_day
         GROUP BY d.user_a, d.user_b
        HAVING sum(d.shared_seconds) >= min_seconds),
    nodes AS (
        SELECT x.u, row_number() OVER (ORDER BY x.u)::integer AS i
          FROM (SELECT e.user_a AS u FROM edges e UNION SELECT e.user_b FROM edges e) x)
    SELECT (SELECT array_agg(n.u ORDER BY n.i) FROM nodes n),
           array_agg(na.i), array_agg(nb.i)
      INTO users, ea, eb
      FROM edges e JOIN nodes na ON na.u = e.user_a JOIN nodes nb ON nb.u = e.user_b;
    IF users IS NULL THEN
        RETURN;
    END IF;

    -- Union-find with the smaller index as root: a component's root is its smallest user id,
    -- which names the group stably while the group grows.
    parent := ARRAY(SELECT generate_series(1, cardinality(users)));
    FOR k IN 1 .. cardinality(ea) LOOP
        ra := ea[k];
        WHILE parent[ra] <> ra LOOP parent[ra] := parent[parent[ra]]; ra := parent[ra]; END LOOP;
        rb := eb[k];
        WHILE parent[rb] <> rb LOOP parent[rb] := parent[parent[rb]]; rb := parent[rb]; END LOOP;
        IF ra < rb THEN parent[rb] := ra; ELSIF rb < ra THEN parent[ra] := rb; END IF;
    END LOOP;
    FOR k IN 1 .. cardinality(users) LOOP
        ra := k;
        WHILE parent[ra] <> ra LOOP ra := parent[ra]; END LOOP;
        parent[k] := ra;
    END LOOP;

    RETURN QUERY
    SELECT users[r.root], r.member, (count(*) OVER (PARTITION BY r.root))::integer
      FROM unnest(users, parent) AS r(member, root)
     ORDER BY 1, 2;
END
$$;
COMMENT ON FUNCTION voice_regular_groups(bigint, date) IS
    'Groups of regulars of a guild: the connected components of the graph whose edges are the pairs above regulars_threshold_for(guild_id) (by default at least 60 shared voice minutes in the 28 days up to as_of; as_of NULL: the latest day with shared voice). One row per member in a group (guildstats_mart.voice_regular_groups has every guild''s, with guild_id and names); group_id is the smallest user id of the group, group_size its number of members. Members with no partner above the threshold are in no group. Example: SELECT * FROM guildstats.voice_regular_groups(guild_id => 1);';

-- The newcomer integration score. A newcomer's day 0 is their first activity (members.first_seen,
-- which a tracked join dates); a partner is a regular when, in the window before that day, they
-- had some partner above the threshold: judged with what was known then, so a newcomer's
-- later friends do not make themselves look integrated.
CREATE FUNCTION voice_newcomer_integration(guild_id bigint)
RETURNS TABLE (user_id bigint, first_day date, regulars_met integer, score_band text, retained_d30 boolean)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH setup AS (
        SELECT s.calendar_time_zone AS tz, t.min_minutes * 60.0 AS min_seconds, t.window_days AS days
          FROM @extschema@.settings_for(voice_newcomer_integration.guild_id) s,
               @extschema@.regulars_threshold_for(voice_newcomer_integration.guild_id) t),
    span AS (
        SELECT (min(m.first_seen) AT TIME ZONE setup.tz)::date AS tracked_from,
               (max(m.last_seen) AT TIME ZONE setup.tz)::date AS data_until
          FROM @extschema@.members m, setup
         WHERE m.guild_id = voice_newcomer_integration.guild_id
         GROUP BY setup.tz),
    newcomers AS (
        SELECT m.user_id, (m.first_seen AT TIME ZONE setup.tz)::date AS first_day
          FROM @extschema@.members m, setup, span
         WHERE m.guild_id = voice_newcomer_integration.guild_id AND NOT m.is_bot
           -- Before a whole window of data nobody can be told a regular.
           AND (m.first_seen AT TIME ZONE setup.tz)::date >= span.tracked_from + setup.days),
    -- When each member was a regular, in one pass over the pairs rather than one window sum per
    -- newcomer and partner: a pair-day counts in the windows of the days after it (from day + 1
    -- to day + window), so a running sum of +seconds at day + 1 and -seconds at day + 1 + window
    -- is the pair's window total at each day, constant until its next change.
    deltas AS (
        SELECT d.user_a, d.user_b, d.day + 1 AS at, d.shared_seconds AS delta
          FROM @extschema@.voice_copresence_daily d WHERE d.guild_id = voice_newcomer_integration.guild_id
        UNION ALL
        SELECT d.user_a, d.user_b, d.day + 1 + setup.days, -d.shared_seconds
          FROM @extschema@.voice_copresence_daily d, setup WHERE d.guild_id = voice_newcomer_integration.guild_id),
    totals AS (
        SELECT p.user_a, p.user_b, p.at,
               sum(p.delta) OVER w AS total, lead(p.at) OVER w AS until
          FROM (SELECT x.user_a, x.user_b, x.at, sum(x.delta) AS delta FROM deltas x
                 GROUP BY x.user_a, x.user_b, x.at) p
        WINDOW w AS (PARTITION BY p.user_a, p.user_b ORDER BY p.at)),
    regular_days AS (
        SELECT u.user_id, range_agg(daterange(t.at, t.until)) AS days
          FROM totals t
          CROSS JOIN setup
          CROSS JOIN LATERAL (VALUES (t.user_a), (t.user_b)) AS u(user_id)
         WHERE t.total >= setup.min_seconds AND t.until IS NOT NULL
         GROUP BY u.user_id),
    met AS (
        SELECT n.user_id, count(*) FILTER (WHERE n.first_day <@ r.days)::integer AS regulars
          FROM newcomers n
          CROSS JOIN LATERAL (
              SELECT DISTINCT CASE WHEN d.user_a = n.user_id THEN d.user_b ELSE d.user_a END AS partner
                FROM @extschema@.voice_copresence_daily d
               WHERE d.guild_id = voice_newcomer_integration.guild_id
                 AND (d.user_a = n.user_id OR d.user_b = n.user_id)
                 AND d.day >= n.first_day AND d.day < n.first_day + 14) p
          LEFT JOIN regular_days r ON r.user_id = p.partner
         GROUP BY n.user_id)
    SELECT n.user_id, n.first_day, coalesce(met.regulars, 0),
           CASE WHEN coalesce(met.regulars, 0) = 0 THEN '0'
                WHEN met.regulars <= 2 THEN '1-2'
                WHEN met.regulars <= 5 THEN '3-5'
                ELSE '6+' END,
           CASE WHEN span.data_until < n.first_day + 30 THEN NULL
                ELSE coalesce(seen.last_active >= ((n.first_day + 30)::timestamp AT TIME ZONE setup.tz), false) END
      FROM newcomers n
      CROSS JOIN setup
      CROSS JOIN span
      LEFT JOIN met ON met.user_id = n.user_id
      -- Active on day 30 or later: their latest activity is. One pass over the guild's activity,
      -- not a probe per newcomer (activity_events is a union of raw tables).
      LEFT JOIN (SELECT e.user_id, max(e.activity_at) AS last_active FROM @extschema@.activity_events e
                  WHERE e.guild_id = voice_newcomer_integration.guild_id AND e.kind <> 'member'
                  GROUP BY e.user_id) seen ON seen.user_id = n.user_id
     ORDER BY n.first_day, n.user_id;
END;
COMMENT ON FUNCTION voice_newcomer_integration(bigint) IS
    'The newcomer integration score of a guild''s members: for each member first seen (members.first_seen, calendar day in the guild''s time zone) at least a regulars window after the data begins, regulars_met is how many distinct regulars they shared voice with in their first 14 days (days 0 to 13). A regular is a member who, in the window before the newcomer''s first day, had a partner above regulars_threshold_for(guild_id). score_band: 0, 1-2, 3-5 or 6+. retained_d30: active (activity_events, kind member excluded) on day 30 or later; NULL while the data does not reach day 30. Example: SELECT * FROM guildstats.voice_newcomer_integration(guild_id => 1);';

CREATE VIEW voice_integration_retention AS
SELECT g.guild_id, i.score_band,
       min(i.regulars_met) AS min_regulars_met,
       count(*) AS newcomers,
       count(*) FILTER (WHERE i.retained_d30) AS retained_d30,
       round(count(*) FILTER (WHERE i.retained_d30)::numeric / nullif(count(*), 0), 3) AS d30_rate
FROM (SELECT DISTINCT c.guild_id FROM @extschema@.voice_copresence_guilds c) g
CROSS JOIN LATERAL @extschema@.voice_newcomer_integration(g.guild_id) i
WHERE i.retained_d30 IS NOT NULL
GROUP BY g.guild_id, i.score_band;
COMMENT ON VIEW voice_integration_retention IS
    'Whether the newcomer integration score predicts retention: per guild and score band (0, 1-2, 3-5, 6+ regulars met in voice in the first 14 days, voice_newcomer_integration()), the newcomers whose data reaches day 30 and the share of them still active on day 30 or later.';
COMMENT ON COLUMN voice_integration_retention.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN voice_integration_retention.score_band IS 'Regulars met in the first 14 days: 0, 1-2, 3-5 or 6+.';
COMMENT ON COLUMN voice_integration_retention.min_regulars_met IS 'The smallest score in the band among these newcomers: sorts the bands.';
COMMENT ON COLUMN voice_integration_retention.newcomers IS 'Newcomers in the band whose data reaches day 30.';
COMMENT ON COLUMN voice_integration_retention.retained_d30 IS 'Of them, active on day 30 after their first day or later.';
COMMENT ON COLUMN voice_integration_retention.d30_rate IS 'retained_d30 / newcomers, to three decimals.';

CREATE OR REPLACE FUNCTION erase_member(guild_id bigint, user_id bigint)
RETURNS TABLE (table_name text, rows_changed bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lock_wait text;
    n bigint;
BEGIN
    IF erase_member.guild_id IS NULL OR erase_member.user_id IS NULL THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): both are required', erase_member.guild_id, erase_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Waits for builds in flight, but not forever: a transaction left open holding a builder's
    -- lock gets a clear error instead of a hang (the caller's lock_timeout, else 30 seconds).
    lock_wait := current_setting('lock_timeout');
    BEGIN
        IF lock_wait = '0' THEN
            PERFORM set_config('lock_timeout', '30s', true);
        END IF;
        PERFORM 1 FROM @extschema@.builder_locks l ORDER BY l.builder FOR UPDATE;
        PERFORM set_config('lock_timeout', lock_wait, true);
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): a build held the builders'' locks for longer than lock_timeout (%); nothing was erased',
            erase_member.guild_id, erase_member.user_id, CASE lock_wait WHEN '0' THEN '30s' ELSE lock_wait END
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Retry when the build has committed; pg_stat_activity shows the transaction holding guildstats.builder_locks.';
    END;

    -- Every table with a (guild_id, user_id) pair, raw first.
    FOR table_name IN
        -- The list itself must survive the erasure it causes.
        SELECT t FROM @extschema@._member_tables() t WHERE t <> 'opt_out'
    LOOP
        EXECUTE format('DELETE FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2', table_name)
            USING erase_member.guild_id, erase_member.user_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        rows_changed := n;
        RETURN NEXT;
    END LOOP;

    -- Pairs name the member as user_a or user_b, not user_id.
    DELETE FROM @extschema@.voice_copresence_daily p
     WHERE p.guild_id = erase_member.guild_id
       AND (p.user_a = erase_member.user_id OR p.user_b = erase_member.user_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'voice_copresence_daily'; rows_changed := n; RETURN NEXT;

    -- Snapshots in every form: entries whose user_id is the member, however spelled; entries
    -- the builders cannot read that mention the member anywhere; and documents that are not
    -- arrays (not snapshots at all) that mention the member, blanked to JSON null.
    UPDATE @extschema@.raw_voice_snapshots s
       SET voice_states = CASE jsonb_typeof(s.voice_states)
               WHEN 'array' THEN (
                   SELECT coalesce(jsonb_agg(v ORDER BY o), '[]'::jsonb)
                     FROM jsonb_array_elements(s.voice_states) WITH ORDINALITY AS e(v, o)
                    WHERE NOT @extschema@._voice_state_is_member(v, erase_member.user_id))
               ELSE 'null'::jsonb END
     WHERE s.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(s.voice_states, erase_member.user_id)
       AND (jsonb_typeof(s.voice_states) <> 'array'
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(s.voice_states) v
                        WHERE @extschema@._voice_state_is_member(v, erase_member.user_id)));
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_voice_snapshots'; rows_changed := n; RETURN NEXT;

    UPDATE @extschema@.raw_scheduled_events e
       SET creator_id = NULL
     WHERE e.guild_id = erase_member.guild_id AND e.creator_id = erase_member.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_scheduled_events'; rows_changed := n; RETURN NEXT;

    -- Quarantined raw rows are kept whole, so they name members inside row_data too (a
    -- snapshot's voice states, an event's creator). Those that mention the member go whole:
    -- nothing is built from them, and a redacted copy would no longer be the row that came.
    DELETE FROM @extschema@.quarantine q
     WHERE q.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(q.row_data, erase_member.user_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'quarantine (row_data)'; rows_changed := n; RETURN NEXT;
END
$$;

COMMENT ON FUNCTION erase_member(bigint, bigint) IS
    'Forgets a member of a guild: deletes their rows from every raw and derived table that has (guild_id, user_id) (opt_out excepted) and their pairs from voice_copresence_daily, removes their entries from voice snapshots however the id is spelled (a document that is not an array and mentions them becomes JSON null), clears them as creator of scheduled events and unlinks their ET:Legacy GUIDs. Returns the rows changed per table. To keep their later rows out too, insert them into opt_out instead (which calls this). Example: SELECT * FROM guildstats.erase_member(guild_id => 1, user_id => 42);';

CREATE OR REPLACE FUNCTION export_member(guild_id bigint, user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[] := ARRAY[]::text[];
    member_table text;
    document jsonb;
BEGIN
    IF export_member.guild_id IS NULL OR export_member.user_id IS NULL THEN
        RAISE EXCEPTION 'export_member(guild_id => %, user_id => %): both are required', export_member.guild_id, export_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Every table with a (guild_id, user_id) pair, the same set erase_member() empties.
    FOR member_table IN
        SELECT t FROM @extschema@._member_tables() t
    LOOP
        parts := array_append(parts, format(
            '%L, (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)), ''[]'') FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2)',
            member_table, member_table));
    END LOOP;
    parts := array_append(parts, $part$'raw_voice_snapshots', (
        SELECT coalesce(jsonb_agg(jsonb_build_object('ingest_id', s.ingest_id, 'guild_id', s.guild_id,
                                                     'taken_at', s.taken_at, 'source', s.source,
                                                     'received_at', s.received_at, 'voice_state', e.v)
                                  ORDER BY s.taken_at, e.n), '[]')
          FROM @extschema@.raw_voice_snapshots s
          CROSS JOIN LATERAL (SELECT v, n FROM jsonb_array_elements(
                                  CASE jsonb_typeof(s.voice_states) WHEN 'array' THEN s.voice_states
                                       ELSE jsonb_build_array(s.voice_states) END) WITH ORDINALITY AS x(v, n)) e
         WHERE s.guild_id = $1 AND @extschema@._voice_state_is_member(e.v, $2))$part$);
    -- The member's pairs of shared voice time, from either side of the pair.
    parts := array_append(parts, $part$'voice_copresence_daily', (
        SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.day, p.user_a, p.user_b), '[]')
          FROM @extschema@.voice_copresence_daily p
         WHERE p.guild_id = $1 AND (p.user_a = $2 OR p.user_b = $2))$part$);
    parts := array_append(parts, $part$'raw_scheduled_events', (
        SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.observed_at, e.event_id), '[]')
          FROM @extschema@.raw_scheduled_events e WHERE e.guild_id = $1 AND e.creator_id = $2)$part$);
    -- The member's ET:Legacy rounds, through the GUIDs linked to them.
    parts := array_append(parts, $part$'et_player_rounds', (
        SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.round_id, p.guid), '[]')
          FROM @extschema@.et_player_rounds p
         WHERE p.guid IN (SELECT l.guid FROM @extschema@.et_guid_links l WHERE l.guild_id = $1 AND l.user_id = $2))$part$);
    EXECUTE format('SELECT jsonb_build_object(''guild_id'', $1, ''user_id'', $2, ''exported_at'', now(), ''tables'', jsonb_build_object(%s))',
                   array_to_string(parts, ', '))
       INTO document
      USING export_member.guild_id, export_member.user_id;
    RETURN document;
END
$$;
COMMENT ON FUNCTION export_member(bigint, bigint) IS
    'Everything stored about a member of a guild, raw and derived, as one JSON document (the GDPR right of access): {guild_id, user_id, exported_at, tables: {table: [rows]}} with every row of every table that has (guild_id, user_id), the member''s own entries of voice snapshots (others in the same snapshot are left out), their pairs of shared voice time (voice_copresence_daily), the scheduled events they created, and their ET:Legacy rounds through linked GUIDs. Example: SELECT guildstats.export_member(guild_id => 1, user_id => 42);';

CREATE OR REPLACE FUNCTION build_all()
RETURNS TABLE (builder text, status text, elapsed interval)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@.import_et_rounds();
    builder := 'import_et_rounds'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_et_ratings();
    builder := 'build_et_ratings'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_members();
    builder := 'build_members'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_voice_sessions();
    builder := 'build_voice_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_voice_copresence();
    builder := 'build_voice_copresence'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_event_attendance();
    builder := 'build_event_attendance'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_game_sessions();
    builder := 'build_game_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_rollups();
    builder := 'build_rollups'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_all() IS
    'Runs every builder in dependency order (import_et_rounds, build_et_ratings, build_members, build_voice_sessions, build_voice_copresence, build_event_attendance, build_game_sessions, build_rollups) in the caller''s transaction and returns one row per builder with its status. What pg_cron runs every minute (sql/ops/cron.sql).';

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

SELECT count(@extschema@.isolate_by_guild(v::regclass))
  FROM unnest(ARRAY['@extschema@.voice_copresence_daily', '@extschema@.voice_copresence_guilds',
                    '@extschema@.voice_integration_retention', 'guildstats_mart.voice_regular_groups']) v;
-- ==== end of voice co-presence

-- ==== Discord command answers (issue 14: 1, 3, 5, 6): sql/extension/commands.sql ====
-- The answers of the Discord slash commands (issue 14). The bot calls ONE function per command
-- and renders the jsonb it returns; all the logic is here. The shapes are documented in
-- docs/commands.md. A user's mistake (unknown player, ambiguous name, empty database, bad
-- metric) is an {"ok": false, "error": ...} answer, never an exception, so that the bot can
-- show it as is; only real faults raise.
--
-- ET:Legacy rounds carry the game server's local time (timestamp without time zone). As in the
-- BI mart, it is read in the guild's calendar time zone wherever it meets Discord time.

CREATE TABLE command_settings (
    guild_id           bigint,
    season_start       date,
    top_min_rounds     integer,
    link_voice_rounds  integer,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT command_settings_guild_key UNIQUE NULLS NOT DISTINCT (guild_id),
    CONSTRAINT command_settings_top_min_rounds_not_negative CHECK (top_min_rounds >= 0),
    CONSTRAINT command_settings_link_voice_rounds_positive CHECK (link_voice_rounds > 0)
);
COMMENT ON TABLE command_settings IS
    'Settings of the Discord commands, resolved like settings: a guild row, else the global row (guild_id NULL), else the built-in default. Read them with command_settings_for(guild_id).';
COMMENT ON COLUMN command_settings.guild_id IS 'The guild these settings apply to; NULL for the global row.';
COMMENT ON COLUMN command_settings.season_start IS 'First day of the current season for /top period:season (built-in default: the first day of the current calendar quarter in the guild''s calendar time zone).';
COMMENT ON COLUMN command_settings.top_min_rounds IS '/top ranks ET:Legacy players only with at least this many counted rounds in the period (built-in default: the et_min_rounds setting, itself 5 by default).';
COMMENT ON COLUMN command_settings.link_voice_rounds IS '/link links a claimed GUID at once when the member was in a voice channel of the guild (not AFK) during at least this many of the GUID''s counted rounds (built-in default 3); otherwise the claim waits for an admin.';
COMMENT ON COLUMN command_settings.updated_at IS 'When the row was last written.';
SELECT pg_catalog.pg_extension_config_dump('command_settings', '');

CREATE TABLE command_admins (
    guild_id  bigint      NOT NULL,
    user_id   bigint      NOT NULL,
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);
COMMENT ON TABLE command_admins IS
    'Discord members who may confirm /link claims of their guild (command_link(confirmed_by => ...)). Kept in the database, not read from Discord roles, so that the database alone decides who can write links.';
COMMENT ON COLUMN command_admins.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN command_admins.user_id IS 'Discord user snowflake of the admin.';
COMMENT ON COLUMN command_admins.added_at IS 'When the admin was added.';
SELECT pg_catalog.pg_extension_config_dump('command_admins', '');

CREATE TABLE et_guid_claims (
    guild_id    bigint      NOT NULL,
    user_id     bigint      NOT NULL,
    guid        text        NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    voice_overlap_rounds integer NOT NULL,
    PRIMARY KEY (guild_id, user_id, guid)
);
COMMENT ON TABLE et_guid_claims IS
    'Pending /link claims: a member said a GUID is theirs, but neither an admin confirmed it nor did their voice time match the GUID''s rounds. command_link() writes it and removes the claim once the GUID is linked.';
COMMENT ON COLUMN et_guid_claims.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN et_guid_claims.user_id IS 'The member who claims the GUID.';
COMMENT ON COLUMN et_guid_claims.guid IS 'The claimed ET:Legacy GUID (8 upper-case hex characters).';
COMMENT ON COLUMN et_guid_claims.claimed_at IS 'When the member last claimed it.';
COMMENT ON COLUMN et_guid_claims.voice_overlap_rounds IS 'Of the GUID''s counted rounds, how many the member spent (partly) in voice when claiming: what the automatic match fell short of.';
SELECT pg_catalog.pg_extension_config_dump('et_guid_claims', '');

CREATE FUNCTION command_settings_for(guild_id bigint)
RETURNS TABLE (season_start date, top_min_rounds integer, link_voice_rounds integer, calendar_time_zone text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(g.season_start, d.season_start,
                    date_trunc('quarter', now() AT TIME ZONE s.calendar_time_zone)::date),
           coalesce(g.top_min_rounds, d.top_min_rounds, s.et_min_rounds),
           coalesce(g.link_voice_rounds, d.link_voice_rounds, 3),
           s.calendar_time_zone
    FROM @extschema@.settings_for(command_settings_for.guild_id) s
    LEFT JOIN @extschema@.command_settings d ON d.guild_id IS NULL
    LEFT JOIN @extschema@.command_settings g ON g.guild_id = command_settings_for.guild_id;
END;
COMMENT ON FUNCTION command_settings_for(bigint) IS
    'The command settings in force for a guild (its command_settings row, else the global row, else the built-in default), with its calendar time zone. Example: SELECT * FROM guildstats.command_settings_for(1234);';

CREATE FUNCTION _command_error(message text, extra jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT jsonb_build_object('ok', false, 'error', message) || coalesce(extra, '{}');
END;
COMMENT ON FUNCTION _command_error(text, jsonb) IS
    'Internal: the {"ok": false, "error": message} answer of a command, with extra fields (e.g. candidates).';

CREATE FUNCTION _command_ratio(numerator numeric, denominator numeric)
RETURNS double precision
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    -- K/D as the game shows it: kills when there were no deaths.
    SELECT round(CASE WHEN coalesce(denominator, 0) = 0 THEN numerator ELSE numerator / denominator END, 2)::double precision;
END;
COMMENT ON FUNCTION _command_ratio(numeric, numeric) IS
    'Internal: numerator / denominator rounded to 2 decimals, or the numerator when the denominator is 0 (K/D with no deaths).';

CREATE FUNCTION _command_dpm(damage numeric, seconds numeric)
RETURNS double precision
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT round(damage * 60 / nullif(seconds, 0), 1)::double precision;
END;
COMMENT ON FUNCTION _command_dpm(numeric, numeric) IS
    'Internal: damage per minute (damage * 60 / seconds played) rounded to 1 decimal; NULL without time played.';

CREATE FUNCTION command_find_player(name text)
RETURNS TABLE (guid text, player_name text, rounds integer, last_seen timestamp, match text, score double precision)
LANGUAGE plpgsql STABLE
AS $$
-- The tiers are tried in order and the first that finds anybody answers: an exact name beats a
-- prefix, a prefix beats a substring, a substring beats a similar spelling. No user text ever
-- reaches LIKE or a regular expression, so '%', '_' and backslashes are plain characters.
DECLARE
    wanted text := lower(btrim(@extschema@.et_clean_name(name)));
BEGIN
    IF wanted IS NULL OR wanted = '' OR length(wanted) > 64 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH names AS MATERIALIZED (
        SELECT DISTINCT p.guid, lower(p.clean_name) AS used
        FROM @extschema@.et_counted_player_rounds p WHERE NOT p.is_bot
    ), tiered AS MATERIALIZED (
        SELECT n.guid, n.used,
               CASE WHEN n.used = wanted THEN 1
                    WHEN left(n.used, length(wanted)) = wanted THEN 2
                    WHEN strpos(n.used, wanted) > 0 THEN 3
                    ELSE 4 END AS tier
        FROM names n
    ), typed AS (
        SELECT DISTINCT substr(wanted, i, 2) AS piece FROM generate_series(1, length(wanted) - 1) i
    ), alike AS MATERIALIZED (
        -- Only when no name contains the typed one (a one-time filter: otherwise not computed):
        -- the Dice coefficient of the two names' sets of two-character pieces,
        -- 2 |A and B| / (|A| + |B|); "sebastain" finds "sebastian" with 0.625.
        SELECT pc.guid,
               2.0 * count(*) FILTER (WHERE pc.piece IN (SELECT t.piece FROM typed t))
                   / (count(*) + (SELECT count(*) FROM typed)) AS score
        FROM (SELECT DISTINCT n.guid, n.used, substr(n.used, i, 2) AS piece
              FROM names n, generate_series(1, length(n.used) - 1) i
              WHERE NOT EXISTS (SELECT 1 FROM tiered t WHERE t.tier < 4)) pc
        GROUP BY pc.guid, pc.used
    ), matched AS (
        SELECT t.guid, min(t.tier) AS tier, NULL::double precision AS score
        FROM tiered t
        WHERE t.tier < 4 AND t.tier = (SELECT min(t2.tier) FROM tiered t2)
        GROUP BY t.guid
        UNION ALL
        SELECT sm.guid, 4, max(sm.score) FROM alike sm WHERE sm.score >= 0.5 GROUP BY sm.guid
    )
    SELECT w.guid, pl.name, pl.rounds, pl.last_seen,
           (ARRAY['exact', 'prefix', 'substring', 'similar'])[w.tier], w.score
    FROM matched w
    JOIN (SELECT p.guid, (array_agg(p.clean_name ORDER BY p.saved_at DESC))[1] AS name,
                 count(*)::integer AS rounds, max(p.saved_at) AS last_seen
          FROM @extschema@.et_counted_player_rounds p
          WHERE p.guid IN (SELECT m.guid FROM matched m)
          GROUP BY p.guid) pl ON pl.guid = w.guid
    ORDER BY w.score DESC NULLS LAST, pl.rounds DESC, w.guid;
END
$$;
COMMENT ON FUNCTION command_find_player(text) IS
    'ET:Legacy players (not bots) whose names match a typed name, colour codes stripped and case ignored, by the first tier that finds anybody: exact, prefix, substring, similar (score: the Dice coefficient of the two names'' sets of two-character pieces, at least 0.5, with any name the GUID used; NULL in the other tiers). Every name a GUID ever used counts. Empty names and names over 64 characters match nobody. Example: SELECT * FROM guildstats.command_find_player(''^1lu'');';

CREATE FUNCTION _command_name_problem(name text)
RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN name IS NULL OR btrim(@extschema@.et_clean_name(name)) = '' THEN 'Give a player name.'
                WHEN length(name) > 64 THEN format('A player name is at most 64 characters; this one has %s.', length(name))
           END;
END;
COMMENT ON FUNCTION _command_name_problem(text) IS
    'Internal: why a typed player name cannot be looked up (empty, longer than 64 characters), or NULL when it can.';

-- Rounds of GUIDs during which a member was in voice: a round spans the time its attackers
-- used (else its time limit) before its save time, read in the guild's time zone.
CREATE FUNCTION _voice_overlap_rounds(guild_id bigint, user_id bigint)
RETURNS TABLE (guid text, rounds bigint)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH tz AS (SELECT s.calendar_time_zone AS tz FROM @extschema@.settings_for(_voice_overlap_rounds.guild_id) s),
    spans AS (
        SELECT r.round_id,
               (r.saved_at - make_interval(secs => coalesce(r.time_used_seconds, r.time_limit_seconds, 0))) AT TIME ZONE tz.tz AS from_t,
               r.saved_at AT TIME ZONE tz.tz AS to_t
        FROM @extschema@.et_rounds r, tz
        WHERE NOT r.is_orphan AND r.restart_kind IS DISTINCT FROM 'cancelled'
    ), heard AS (
        SELECT DISTINCT s.round_id
        FROM spans s
        JOIN @extschema@.voice_sessions v
          ON v.guild_id = _voice_overlap_rounds.guild_id AND v.user_id = _voice_overlap_rounds.user_id
         AND NOT v.is_afk AND v.started_at < s.to_t AND coalesce(v.ended_at, 'infinity') > s.from_t
    )
    SELECT p.guid, count(*)
    FROM heard h
    JOIN @extschema@.et_player_rounds p ON p.round_id = h.round_id
    WHERE NOT p.is_bot
    GROUP BY p.guid;
END;
COMMENT ON FUNCTION _voice_overlap_rounds(bigint, bigint) IS
    'Internal: per GUID, the counted ET:Legacy rounds it played during which the member was in a voice channel of the guild (AFK excluded). A round spans its time used (else its time limit) before its save time, the server''s local time read in the guild''s calendar time zone.';

CREATE FUNCTION _command_period_start(guild_id bigint, period text, as_of timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE period
               WHEN 'week' THEN date_trunc('week', as_of AT TIME ZONE c.calendar_time_zone) AT TIME ZONE c.calendar_time_zone
               WHEN 'month' THEN date_trunc('month', as_of AT TIME ZONE c.calendar_time_zone) AT TIME ZONE c.calendar_time_zone
               WHEN 'season' THEN c.season_start::timestamp AT TIME ZONE c.calendar_time_zone
               WHEN 'all' THEN '-infinity'::timestamptz
           END
    FROM @extschema@.command_settings_for(_command_period_start.guild_id) c;
END;
COMMENT ON FUNCTION _command_period_start(bigint, text, timestamptz) IS
    'Internal: when a command period (week: since Monday, month: since the 1st, season: since command_settings.season_start, all) began at as_of, in the guild''s calendar time zone; NULL for an unknown period.';

CREATE FUNCTION _voice_seconds(guild_id bigint, since timestamptz, until timestamptz)
RETURNS TABLE (user_id bigint, seconds double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT v.user_id,
           sum(extract(epoch FROM least(coalesce(v.ended_at, until), until) - greatest(v.started_at, since)))
    FROM @extschema@.voice_sessions v
    WHERE v.guild_id = _voice_seconds.guild_id AND NOT v.is_afk
      AND v.started_at < until AND coalesce(v.ended_at, 'infinity') > since
    GROUP BY v.user_id;
END;
COMMENT ON FUNCTION _voice_seconds(bigint, timestamptz, timestamptz) IS
    'Internal: per member, seconds in voice (AFK excluded) within [since, until); open sessions count up to until.';

CREATE FUNCTION command_last_session(guild_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    sid bigint := @extschema@.et_last_session_id();
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(command_last_session.guild_id) s);
    team_a text[];
    team_b text[];
    answer jsonb;
BEGIN
    IF sid IS NULL THEN
        RETURN @extschema@._command_error('No ET:Legacy session has been imported yet.');
    END IF;
    -- Teams are the two player sets with the most map wins (et_session_teams); substitutes who
    -- belong to neither show with team null.
    SELECT st.guids INTO team_a FROM @extschema@.et_session_teams(sid) st LIMIT 1;
    SELECT st.guids INTO team_b FROM @extschema@.et_session_teams(sid) st WHERE NOT st.guids && team_a LIMIT 1;

    WITH rounds AS (
        SELECT r.* FROM @extschema@.et_rounds r WHERE r.et_session_id = sid
    ), players AS (
        SELECT p.guid, (array_agg(p.clean_name ORDER BY p.saved_at DESC))[1] AS name,
               sum(p.kills) AS kills, sum(p.deaths) AS deaths,
               sum(p.damage_given) AS damage_given, sum(p.damage_received) AS damage_received,
               sum(p.time_played_seconds) FILTER (WHERE p.damage_given IS NOT NULL) AS damage_seconds,
               sum(p.gibs) AS gibs, sum(p.time_played_seconds) AS seconds
        FROM @extschema@.et_counted_player_rounds p
        WHERE p.et_session_id = sid AND NOT p.is_bot
        GROUP BY p.guid
    ), sides AS (
        SELECT m.match_id,
               array_agg(p.guid) FILTER (WHERE p.team IN (1, 2) AND p.team <> r1.defender_team) AS attackers,
               array_agg(p.guid) FILTER (WHERE p.team = r1.defender_team) AS defenders
        FROM @extschema@.et_matches m
        JOIN @extschema@.et_rounds r1 ON r1.round_id = m.round1_id
        JOIN @extschema@.et_player_rounds p ON p.round_id = m.round1_id
        WHERE m.et_session_id = sid
        GROUP BY m.match_id
    ), maps AS (
        SELECT m.started_at, m.match_id, m.map, m.outcome,
               r1.winner_team AS w1, r2.winner_team AS w2,
               r1.time_used_seconds AS t1, r2.time_used_seconds AS t2,
               CASE m.outcome WHEN 'round1_attackers' THEN s.attackers WHEN 'round2_attackers' THEN s.defenders END AS winners
        FROM @extschema@.et_matches m
        JOIN @extschema@.et_rounds r1 ON r1.round_id = m.round1_id
        LEFT JOIN @extschema@.et_rounds r2 ON r2.round_id = m.round2_id
        LEFT JOIN sides s ON s.match_id = m.match_id
        WHERE m.et_session_id = sid
    ), mvp AS (
        SELECT su.guid, su.name, su.mvp_score FROM @extschema@.et_session_summary(sid) su
        WHERE su.is_mvp ORDER BY su.guid LIMIT 1
    )
    SELECT jsonb_build_object(
        'ok', true,
        'session', (SELECT jsonb_build_object(
                        'id', s.et_session_id,
                        'started_at', s.started_at AT TIME ZONE tz,
                        'ended_at', s.ended_at AT TIME ZONE tz,
                        'server', (SELECT mode() WITHIN GROUP (ORDER BY r.server_name) FROM rounds r),
                        'rounds', s.rounds)
                    FROM @extschema@.et_sessions s WHERE s.et_session_id = sid),
        'maps', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'map', m.map,
                        'round1_winner', CASE m.w1 WHEN 1 THEN 'axis' WHEN 2 THEN 'allies' END,
                        'round2_winner', CASE m.w2 WHEN 1 THEN 'axis' WHEN 2 THEN 'allies' END,
                        'round1_time_s', m.t1,
                        'round2_time_s', m.t2,
                        'result', CASE m.outcome
                                      WHEN 'round1_attackers' THEN 'round 1 attackers win'
                                      WHEN 'round2_attackers' THEN 'round 2 attackers win'
                                      WHEN 'draw' THEN 'draw'
                                      WHEN 'unknown' THEN 'unknown'
                                      ELSE 'unfinished' END
                                  || coalesce(' (' || to_char(make_interval(secs => m.t1), 'FMMI:SS')
                                              || coalesce(' vs ' || to_char(make_interval(secs => m.t2), 'FMMI:SS'), '') || ')', ''),
                        'winner_team', CASE WHEN m.outcome = 'draw' THEN 'draw'
                                            WHEN m.winners IS NULL THEN NULL
                                            WHEN cardinality(ARRAY(SELECT unnest(m.winners) INTERSECT SELECT unnest(team_a)))
                                                 >= cardinality(ARRAY(SELECT unnest(m.winners) INTERSECT SELECT unnest(team_b)))
                                                THEN 'a' ELSE 'b' END)
                    ORDER BY m.started_at) FROM maps m), '[]'),
        'teams', jsonb_build_object(
                    'a', coalesce((SELECT jsonb_agg(p.name ORDER BY lower(p.name)) FROM players p WHERE p.guid = ANY (team_a)), '[]'),
                    'b', coalesce((SELECT jsonb_agg(p.name ORDER BY lower(p.name)) FROM players p WHERE p.guid = ANY (team_b)), '[]')),
        'players', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'name', p.name, 'guid', p.guid,
                        'team', CASE WHEN p.guid = ANY (team_a) THEN 'a' WHEN p.guid = ANY (team_b) THEN 'b' END,
                        'kills', p.kills, 'deaths', p.deaths,
                        'kd', @extschema@._command_ratio(p.kills, p.deaths),
                        'dpm', @extschema@._command_dpm(p.damage_given, p.damage_seconds),
                        'damage_given', p.damage_given, 'damage_received', p.damage_received,
                        'gibs', p.gibs, 'time_played_s', p.seconds)
                    ORDER BY p.kills DESC, p.deaths, p.guid) FROM players p), '[]'),
        'mvp', (SELECT jsonb_build_object('name', v.name, 'guid', v.guid,
                        'reason', format('highest MVP score %s (K/D x 10 + efficiency + damage / 100)', round(v.mvp_score::numeric, 1)))
                FROM mvp v),
        'awards', coalesce((SELECT jsonb_agg(jsonb_build_object('award', a.award, 'name', a.name, 'guid', a.guid, 'value', round(a.value::numeric, 2)::double precision))
                    FROM @extschema@.et_awards(sid) a), '[]'))
      INTO answer;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION command_last_session(bigint) IS
    'The /last_session answer: the last ET:Legacy gaming session (times in the guild''s calendar time zone), its maps with the stopwatch results (winner_team: which of the two teams won the map), the two teams, every player''s kills, deaths, K/D, DPM, damage given and received, gibs and time played (counted rounds, bots left out; sorted by kills), the MVP and the awards. Example: SELECT jsonb_pretty(guildstats.command_last_session(1234));';

CREATE FUNCTION command_stats(guild_id bigint, player text DEFAULT NULL, user_id bigint DEFAULT NULL,
                              as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    at_time timestamptz := coalesce(as_of, now());
    cfg record;
    found_guid text;
    linked_user bigint;
    problem text;
    candidates jsonb;
    local_now timestamp;
    answer jsonb;
BEGIN
    SELECT * INTO cfg FROM @extschema@.command_settings_for(command_stats.guild_id);
    local_now := at_time AT TIME ZONE cfg.calendar_time_zone;
    IF command_stats.user_id IS NULL THEN
        problem := @extschema@._command_name_problem(player);
        IF problem IS NOT NULL THEN
            RETURN @extschema@._command_error(problem);
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds) THEN
        RETURN @extschema@._command_error('No ET:Legacy rounds have been imported yet.');
    END IF;
    IF command_stats.user_id IS NOT NULL THEN
        SELECT l.guid INTO found_guid
          FROM @extschema@.et_guid_links l
          LEFT JOIN LATERAL (SELECT count(*) AS n FROM @extschema@.et_counted_player_rounds p WHERE p.guid = l.guid) c ON true
         WHERE l.guild_id = command_stats.guild_id AND l.user_id = command_stats.user_id
         ORDER BY c.n DESC, l.guid LIMIT 1;
        IF found_guid IS NULL THEN
            RETURN @extschema@._command_error('This member has not linked an ET:Legacy GUID yet: use /link.');
        END IF;
    ELSE
        SELECT jsonb_agg(jsonb_build_object('name', f.player_name, 'guid', f.guid, 'rounds', f.rounds)
                         ORDER BY f.score DESC NULLS LAST, f.rounds DESC, f.guid), min(f.guid)
          INTO candidates, found_guid
          FROM (SELECT * FROM @extschema@.command_find_player(player) LIMIT 10) f;
        IF candidates IS NULL THEN
            RETURN @extschema@._command_error(format('No ET:Legacy player is called anything like "%s".', left(player, 64)));
        ELSIF jsonb_array_length(candidates) > 1 THEN
            RETURN @extschema@._command_error(format('Several players match "%s": pick one.', left(player, 64)),
                                              jsonb_build_object('candidates', candidates));
        END IF;
    END IF;
    SELECT l.user_id INTO linked_user FROM @extschema@.et_guid_links l
     WHERE l.guid = found_guid AND l.guild_id = command_stats.guild_id;

    WITH mine AS (
        SELECT p.* FROM @extschema@.et_counted_player_rounds p WHERE p.guid = found_guid
    ), split AS (
        SELECT m.saved_at >= local_now - interval '30 days' AS recent, count(*) AS rounds,
               sum(m.kills) AS kills, sum(m.deaths) AS deaths, sum(m.damage_given) AS damage,
               sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL) AS damage_seconds
        FROM mine m GROUP BY 1
    ), sessions AS (
        SELECT m.et_session_id, min(m.saved_at) AS first_round,
               sum(m.kills) AS kills, sum(m.deaths) AS deaths, sum(m.damage_given) AS damage,
               sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL) AS damage_seconds
        FROM mine m GROUP BY m.et_session_id ORDER BY min(m.saved_at) DESC LIMIT 20
    ), ranked_players AS (
        SELECT p.guid, sum(p.kills)::double precision AS kills,
               sum(p.damage_given) * 60.0 / nullif(sum(p.time_played_seconds) FILTER (WHERE p.damage_given IS NOT NULL), 0) AS dpm,
               CASE WHEN sum(p.deaths) = 0 THEN sum(p.kills)::double precision
                    ELSE sum(p.kills)::double precision / sum(p.deaths) END AS kd
        FROM @extschema@.et_counted_player_rounds p
        WHERE NOT p.is_bot
        GROUP BY p.guid
        HAVING count(*) >= cfg.top_min_rounds
    ), metric_values AS (
        SELECT mt.metric, mt.ord, rp.guid,
               CASE mt.metric WHEN 'kills' THEN rp.kills WHEN 'dpm' THEN rp.dpm ELSE rp.kd END AS v
        FROM unnest(ARRAY['kills', 'dpm', 'kd']) WITH ORDINALITY AS mt(metric, ord)
        CROSS JOIN ranked_players rp
    ), ranks AS (
        -- As et_leaderboard ranks: 1 + the players with a higher value; null when not ranked.
        SELECT a.metric, a.ord, a.of,
               CASE WHEN a.mine IS NOT NULL THEN 1 + (SELECT count(*) FROM metric_values b WHERE b.metric = a.metric AND b.v > a.mine) END AS rank
        FROM (SELECT mv.metric, mv.ord, count(mv.v) AS of, max(mv.v) FILTER (WHERE mv.guid = found_guid) AS mine
              FROM metric_values mv GROUP BY mv.metric, mv.ord) a
    ), voice AS (
        SELECT (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id,
                    @extschema@._command_period_start(command_stats.guild_id, 'week', at_time), at_time) v
                 WHERE v.user_id = linked_user) AS week,
               (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id,
                    @extschema@._command_period_start(command_stats.guild_id, 'month', at_time), at_time) v
                 WHERE v.user_id = linked_user) AS month,
               (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id, '-infinity', at_time) v
                 WHERE v.user_id = linked_user) AS total
    )
    SELECT jsonb_build_object(
        'ok', true,
        'player', jsonb_build_object('name', (SELECT (array_agg(m.clean_name ORDER BY m.saved_at DESC))[1] FROM mine m),
                                     'guid', found_guid, 'user_id', linked_user::text),
        'totals', (SELECT jsonb_build_object(
                        'rounds', count(*), 'kills', sum(m.kills), 'deaths', sum(m.deaths),
                        'kd', @extschema@._command_ratio(sum(m.kills), sum(m.deaths)),
                        'dpm', @extschema@._command_dpm(sum(m.damage_given), sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL)),
                        'damage_given', sum(m.damage_given), 'gibs', sum(m.gibs),
                        'time_played_s', sum(m.time_played_seconds))
                   FROM mine m),
        'form', jsonb_build_object(
                    'last_30_days', (SELECT jsonb_build_object('rounds', coalesce(max(s.rounds), 0),
                                        'kd', @extschema@._command_ratio(max(s.kills), max(s.deaths)),
                                        'dpm', @extschema@._command_dpm(max(s.damage), max(s.damage_seconds)))
                                     FROM split s WHERE s.recent),
                    'before', (SELECT jsonb_build_object('rounds', coalesce(max(s.rounds), 0),
                                        'kd', @extschema@._command_ratio(max(s.kills), max(s.deaths)),
                                        'dpm', @extschema@._command_dpm(max(s.damage), max(s.damage_seconds)))
                               FROM split s WHERE NOT s.recent)),
        'voice_hours', CASE WHEN linked_user IS NOT NULL THEN
                           (SELECT jsonb_build_object('week', round(coalesce(v.week, 0)::numeric / 3600, 1)::double precision,
                                                      'month', round(coalesce(v.month, 0)::numeric / 3600, 1)::double precision,
                                                      'all', round(coalesce(v.total, 0)::numeric / 3600, 1)::double precision) FROM voice v) END,
        'events_attended', CASE WHEN linked_user IS NOT NULL THEN
                               (SELECT count(*) FROM @extschema@.event_attendance a
                                 WHERE a.guild_id = command_stats.guild_id AND a.user_id = linked_user) END,
        'ranks', (SELECT jsonb_agg(jsonb_build_object('metric', r.metric, 'rank', r.rank, 'of', r.of) ORDER BY r.ord)
                  FROM ranks r),
        'sessions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'session_id', s.et_session_id, 'date', s.first_round::date,
                        'kills', s.kills, 'deaths', s.deaths,
                        'kd', @extschema@._command_ratio(s.kills, s.deaths),
                        'dpm', @extschema@._command_dpm(s.damage, s.damage_seconds))
                    ORDER BY s.first_round) FROM sessions s), '[]'))
      INTO answer;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION command_stats(bigint, text, bigint, timestamptz) IS
    'The /stats answer for one ET:Legacy player, found by a Discord member''s GUID link (user_id; the linked GUID with the most rounds) or by name (colour codes stripped, case ignored: exact, prefix, substring, then similar spelling; several matches answer ok false with candidates): totals over counted rounds, form in the 30 days before as_of (default now) against before, voice hours (week, month, all; null when the GUID is linked to nobody in the guild), events attended, all-time rank for kills, dpm and kd among the players with at least command_settings.top_min_rounds rounds, as command_top ranks them (null when under the minimum), and the last 20 sessions played, oldest first. Example: SELECT jsonb_pretty(guildstats.command_stats(1234, player => ''lu''));';

CREATE FUNCTION command_top(guild_id bigint, metric text, period text DEFAULT 'all', map text DEFAULT NULL,
                            max_rows integer DEFAULT 10, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    metrics constant text[] := ARRAY['kills', 'dpm', 'kd', 'damage', 'gibs', 'time', 'voice_hours', 'messages'];
    periods constant text[] := ARRAY['week', 'month', 'season', 'all'];
    at_time timestamptz := coalesce(as_of, now());
    cfg record;
    since timestamptz;
    wanted_map text := nullif(btrim(map), '');
    rows_out jsonb;
BEGIN
    IF metric IS NULL OR NOT lower(metric) = ANY (metrics) THEN
        RETURN @extschema@._command_error(format('Unknown metric "%s": use one of %s.', left(coalesce(metric, ''), 64), array_to_string(metrics, ', ')));
    END IF;
    IF period IS NULL OR NOT lower(period) = ANY (periods) THEN
        RETURN @extschema@._command_error(format('Unknown period "%s": use one of %s.', left(coalesce(period, ''), 64), array_to_string(periods, ', ')));
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 100 THEN
        RETURN @extschema@._command_error('max_rows must be between 1 and 100.');
    END IF;
    IF length(wanted_map) > 64 THEN
        RETURN @extschema@._command_error(format('A map name is at most 64 characters; this one has %s.', length(wanted_map)));
    END IF;
    metric := lower(metric);
    period := lower(period);
    SELECT * INTO cfg FROM @extschema@.command_settings_for(command_top.guild_id);
    since := @extschema@._command_period_start(command_top.guild_id, period, at_time);

    IF metric = 'voice_hours' AND NOT EXISTS (SELECT 1 FROM @extschema@.voice_sessions v WHERE v.guild_id = command_top.guild_id) THEN
        RETURN @extschema@._command_error('No voice time has been recorded in this guild yet.');
    ELSIF metric = 'messages' AND NOT EXISTS (SELECT 1 FROM @extschema@.raw_messages m WHERE m.guild_id = command_top.guild_id) THEN
        RETURN @extschema@._command_error('No message has been recorded in this guild yet.');
    ELSIF metric NOT IN ('voice_hours', 'messages') AND NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds) THEN
        RETURN @extschema@._command_error('No ET:Legacy rounds have been imported yet.');
    END IF;

    IF metric IN ('voice_hours', 'messages') THEN
        WITH scores AS (
            SELECT v.user_id, v.seconds / 3600.0 AS value
            FROM @extschema@._voice_seconds(command_top.guild_id, since, at_time) v
            WHERE metric = 'voice_hours' AND v.seconds > 0
            UNION ALL
            SELECT m.user_id, count(*)
            FROM @extschema@.raw_messages m
            WHERE metric = 'messages' AND m.guild_id = command_top.guild_id AND NOT m.is_bot
              AND m.sent_at >= since AND m.sent_at < at_time
            GROUP BY m.user_id
        ), ranked AS (
            SELECT rank() OVER (ORDER BY s.value DESC) AS rank, s.* FROM scores s
            ORDER BY s.value DESC, s.user_id LIMIT max_rows
        )
        SELECT jsonb_agg(jsonb_build_object(
                   'rank', r.rank, 'name', mb.display_name, 'guid', NULL, 'user_id', r.user_id::text,
                   'value', round(r.value::numeric, CASE WHEN metric = 'voice_hours' THEN 1 ELSE 0 END)::double precision, 'rounds', NULL)
               ORDER BY r.rank, r.user_id)
          INTO rows_out
          FROM ranked r
          LEFT JOIN @extschema@.members mb ON mb.guild_id = command_top.guild_id AND mb.user_id = r.user_id;
    ELSE
        SELECT jsonb_agg(jsonb_build_object(
                   'rank', l.rank, 'name', l.name, 'guid', l.guid, 'user_id', k.user_id::text,
                   'value', round(l.value::numeric, CASE WHEN metric IN ('kd', 'dpm') THEN 2 ELSE 0 END)::double precision,
                   'rounds', l.rounds)
               ORDER BY l.rank, l.guid)
          INTO rows_out
          FROM @extschema@.et_leaderboard(
                   CASE metric WHEN 'time' THEN 'time_played' ELSE metric END,
                   since => CASE WHEN since = '-infinity' THEN NULL ELSE since AT TIME ZONE cfg.calendar_time_zone END,
                   until => at_time AT TIME ZONE cfg.calendar_time_zone,
                   map => wanted_map, min_rounds => cfg.top_min_rounds, top => max_rows) l
          LEFT JOIN @extschema@.et_guid_links k ON k.guid = l.guid AND k.guild_id = command_top.guild_id;
    END IF;
    RETURN jsonb_build_object(
        'ok', true, 'metric', metric, 'period', period, 'map', wanted_map,
        'since', CASE WHEN since = '-infinity' THEN NULL ELSE since END,
        'min_rounds', CASE WHEN metric IN ('voice_hours', 'messages') THEN NULL ELSE cfg.top_min_rounds END,
        'rows', coalesce(rows_out, '[]'));
END
$$;
COMMENT ON FUNCTION command_top(bigint, text, text, text, integer, timestamptz) IS
    'The /top answer: a leaderboard of metric kills, dpm, kd, damage, gibs, time (ET:Legacy, counted rounds, players with at least command_settings.top_min_rounds rounds in the period, optionally on one map) or voice_hours, messages (Discord members of the guild; AFK and bots left out) over period week (since Monday), month (since the 1st), season (since command_settings.season_start) or all, in the guild''s calendar time zone, up to as_of (default now). Times are hours for voice_hours and seconds for time. Example: SELECT jsonb_pretty(guildstats.command_top(1234, ''kills'', ''all'', max_rows => 3));';

CREATE FUNCTION command_link_candidates(guild_id bigint, user_id bigint, name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    problem text := @extschema@._command_name_problem(name);
    found jsonb;
BEGIN
    IF problem IS NOT NULL THEN
        RETURN @extschema@._command_error(problem);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds) THEN
        RETURN @extschema@._command_error('No ET:Legacy rounds have been imported yet.');
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'guid', f.guid, 'name', f.player_name, 'rounds', f.rounds, 'last_seen', f.last_seen,
               'voice_overlap_rounds', coalesce(o.rounds, 0),
               'linked_user_id', l.user_id::text)
           ORDER BY coalesce(o.rounds, 0) DESC, f.score DESC NULLS LAST, f.rounds DESC, f.guid)
      INTO found
      FROM (SELECT * FROM @extschema@.command_find_player(name) LIMIT 25) f
      LEFT JOIN @extschema@._voice_overlap_rounds(command_link_candidates.guild_id, command_link_candidates.user_id) o
             ON o.guid = f.guid
      LEFT JOIN @extschema@.et_guid_links l ON l.guid = f.guid;
    IF found IS NULL THEN
        RETURN @extschema@._command_error(format('No ET:Legacy player is called anything like "%s".', left(name, 64)));
    END IF;
    RETURN jsonb_build_object('ok', true, 'candidates', found);
END
$$;
COMMENT ON FUNCTION command_link_candidates(bigint, bigint, text) IS
    'The first step of /link: the GUIDs whose names match (as for /stats, up to 25), each with its latest name, rounds, last round (server local time), how many of its rounds the member spent in voice (voice_overlap_rounds; the most likely first) and the member it is already linked to, if any. Example: SELECT jsonb_pretty(guildstats.command_link_candidates(1234, 42, ''lu''));';

CREATE FUNCTION command_is_admin(guild_id bigint, user_id bigint)
RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM @extschema@.command_admins a
                    WHERE a.guild_id = command_is_admin.guild_id AND a.user_id = command_is_admin.user_id);
END;
COMMENT ON FUNCTION command_is_admin(bigint, bigint) IS
    'Whether a member is listed in command_admins for the guild, i.e. may confirm /link claims and is answered /community. Example: SELECT guildstats.command_is_admin(1234, 42);';

CREATE FUNCTION command_link(guild_id bigint, user_id bigint, guid text, confirmed_by bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
-- SECURITY DEFINER: the command login may read, not write; this function is its only way to
-- write a link, and it checks everything itself. The caller must be bound to the guild like a
-- reader (reader_guilds), so one guild's bot cannot link members of another.
DECLARE
    wanted text := upper(btrim(guid));
    caller name := session_user;
    overlap integer;
    needed integer;
    holder bigint;
BEGIN
    IF command_link.guild_id IS NULL OR command_link.user_id IS NULL THEN
        RETURN @extschema@._command_error('guild_id and user_id are required.');
    END IF;
    IF NOT (EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = caller AND r.rolsuper)
            OR EXISTS (SELECT 1 FROM @extschema@.reader_guilds b
                        WHERE b.role_name = caller AND (b.guild_id = command_link.guild_id OR b.guild_id IS NULL))
            OR EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'guildstats_admin' AND pg_has_role(caller, r.oid, 'MEMBER'))) THEN
        RAISE EXCEPTION 'command_link: login % is not bound to guild % in reader_guilds', caller, command_link.guild_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF @extschema@.is_opted_out(command_link.guild_id, command_link.user_id) THEN
        RETURN @extschema@._command_error('You opted out of tracking, so no GUID can be linked to you.');
    END IF;
    IF wanted IS NULL OR wanted !~ '^[0-9A-F]{8}$' THEN
        RETURN @extschema@._command_error(format('"%s" is not an ET:Legacy GUID (8 hexadecimal characters): pick one from the candidates.', left(coalesce(guid, ''), 64)));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.et_counted_player_rounds p WHERE p.guid = wanted AND NOT p.is_bot) THEN
        RETURN @extschema@._command_error(format('No counted ET:Legacy round has GUID %s.', wanted));
    END IF;
    IF confirmed_by IS NOT NULL AND NOT @extschema@.command_is_admin(command_link.guild_id, confirmed_by) THEN
        RETURN @extschema@._command_error('Only an admin of this guild (command_admins) can confirm a link.');
    END IF;
    SELECT l.user_id INTO holder FROM @extschema@.et_guid_links l WHERE l.guid = wanted AND l.guild_id = command_link.guild_id;
    IF holder = command_link.user_id THEN
        RETURN jsonb_build_object('ok', true, 'status', 'linked', 'message', format('GUID %s is already linked to you.', wanted));
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.et_guid_links l WHERE l.guid = wanted AND l.guild_id <> command_link.guild_id) THEN
        RETURN @extschema@._command_error(format('GUID %s is linked in another community.', wanted));
    END IF;
    IF holder IS NOT NULL AND confirmed_by IS NULL THEN
        RETURN @extschema@._command_error(format('GUID %s is linked to another member; an admin can move it.', wanted));
    END IF;

    SELECT o.rounds INTO overlap
      FROM @extschema@._voice_overlap_rounds(command_link.guild_id, command_link.user_id) o WHERE o.guid = wanted;
    overlap := coalesce(overlap, 0);
    needed := (SELECT c.link_voice_rounds FROM @extschema@.command_settings_for(command_link.guild_id) c);

    IF confirmed_by IS NOT NULL OR overlap >= needed THEN
        INSERT INTO @extschema@.et_guid_links AS l (guid, guild_id, user_id, linked_at, note)
        VALUES (wanted, command_link.guild_id, command_link.user_id, now(),
                CASE WHEN confirmed_by IS NOT NULL THEN format('confirmed by %s via /link', confirmed_by)
                     ELSE format('matched via /link: in voice during %s of its rounds', overlap) END)
        ON CONFLICT ON CONSTRAINT et_guid_links_pkey DO UPDATE
            SET user_id = excluded.user_id, linked_at = excluded.linked_at, note = excluded.note;
        DELETE FROM @extschema@.et_guid_claims c WHERE c.guild_id = command_link.guild_id AND c.guid = wanted;
        RETURN jsonb_build_object('ok', true, 'status', 'linked', 'message',
            CASE WHEN confirmed_by IS NOT NULL THEN format('GUID %s is linked, confirmed by an admin.', wanted)
                 ELSE format('GUID %s is linked: you were in voice during %s of its rounds.', wanted, overlap) END);
    END IF;
    INSERT INTO @extschema@.et_guid_claims AS c (guild_id, user_id, guid, claimed_at, voice_overlap_rounds)
    VALUES (command_link.guild_id, command_link.user_id, wanted, now(), overlap)
    ON CONFLICT ON CONSTRAINT et_guid_claims_pkey DO UPDATE
        SET claimed_at = excluded.claimed_at, voice_overlap_rounds = excluded.voice_overlap_rounds;
    RETURN jsonb_build_object('ok', true, 'status', 'pending', 'message',
        format('Claim for GUID %s saved; an admin must confirm it (you were in voice during %s of its rounds, %s needed to link at once).',
               wanted, overlap, needed));
END
$$;
COMMENT ON FUNCTION command_link(bigint, bigint, text, bigint) IS
    'The second step of /link: a member claims a GUID. It is linked (et_guid_links) when confirmed_by is an admin of the guild (command_admins; an admin may also move a GUID from another member), or at once when the member was in voice (AFK excluded) during at least command_settings.link_voice_rounds of the GUID''s counted rounds; otherwise the claim is stored in et_guid_claims as pending. SECURITY DEFINER: the only write the command login can make; the login must be bound to the guild in reader_guilds. Example: SELECT guildstats.command_link(1234, 42, ''0A26D447'', confirmed_by => 7);';

CREATE FUNCTION command_server(guild_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    servers jsonb;
BEGIN
    -- Who is in voice: an open, non-AFK voice session of a member linked to a GUID that used
    -- the name the server lists (colour codes stripped; A2S and q3 give no ids).
    WITH latest AS (
        SELECT DISTINCT ON (p.server) p.*
        FROM @extschema@.raw_server_polls p
        ORDER BY p.server, p.polled_at DESC
    ), in_voice AS (
        SELECT DISTINCT ON (lower(n.clean_name)) lower(n.clean_name) AS name, l.user_id
        FROM (SELECT DISTINCT pr.guid, pr.clean_name FROM @extschema@.et_player_rounds pr WHERE NOT pr.is_bot) n
        JOIN @extschema@.et_guid_links l ON l.guid = n.guid AND l.guild_id = command_server.guild_id
        ORDER BY lower(n.clean_name), l.user_id
    ), listed AS (
        SELECT sp.server, sp.polled_at, sp.player_index, @extschema@.et_clean_name(sp.name) AS name,
               sp.score, sp.ping_ms, iv.user_id,
               EXISTS (SELECT 1 FROM @extschema@.voice_sessions v
                        WHERE v.guild_id = command_server.guild_id AND v.user_id = iv.user_id
                          AND v.ended_at IS NULL AND NOT v.is_afk) AS in_voice
        FROM latest la
        JOIN @extschema@.raw_server_players sp ON sp.server = la.server AND sp.polled_at = la.polled_at
        LEFT JOIN in_voice iv ON iv.name = lower(@extschema@.et_clean_name(sp.name))
    )
    SELECT jsonb_agg(jsonb_build_object(
               'server', la.server, 'name', @extschema@.et_clean_name(la.server_name), 'map', la.map,
               'polled_at', la.polled_at, 'ok', la.ok, 'error', la.error, 'max_players', la.max_players,
               'players', coalesce((SELECT jsonb_agg(jsonb_build_object(
                               'name', li.name, 'score', li.score, 'ping', li.ping_ms,
                               'in_voice', li.in_voice, 'user_id', li.user_id::text)
                           ORDER BY li.score DESC NULLS LAST, li.player_index)
                           FROM listed li WHERE li.server = la.server), '[]'))
           ORDER BY la.server)
      INTO servers
      FROM latest la;
    IF servers IS NULL THEN
        RETURN @extschema@._command_error('No game server has been polled yet.');
    END IF;
    RETURN jsonb_build_object('ok', true, 'servers', servers);
END
$$;
COMMENT ON FUNCTION command_server(bigint) IS
    'The /server answer: the latest poll of each game server (ok false with the error when it failed), its map and players (colour codes stripped, best score first), and for each player whether a member of the guild linked to a GUID that used that name is in voice now (an open, non-AFK voice session). Example: SELECT jsonb_pretty(guildstats.command_server(1234));';

CREATE FUNCTION command_voice(guild_id bigint, user_id bigint, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    at_time timestamptz := coalesce(as_of, now());
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(command_voice.guild_id) s);
    wk_from timestamptz := @extschema@._command_period_start(command_voice.guild_id, 'week', at_time);
    mo_from timestamptz := @extschema@._command_period_start(command_voice.guild_id, 'month', at_time);
    answer jsonb;
BEGIN
    IF command_voice.user_id IS NULL THEN
        RETURN @extschema@._command_error('Name a member.');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.voice_sessions v
                    WHERE v.guild_id = command_voice.guild_id AND v.user_id = command_voice.user_id AND v.started_at < at_time) THEN
        RETURN @extschema@._command_error('No voice time recorded for this member yet.');
    END IF;
    WITH wk AS (
        SELECT w.*, rank() OVER (ORDER BY w.seconds DESC) AS rank
        FROM @extschema@._voice_seconds(command_voice.guild_id, wk_from, at_time) w WHERE w.seconds > 0
    ), mo AS (
        SELECT m.*, rank() OVER (ORDER BY m.seconds DESC) AS rank
        FROM @extschema@._voice_seconds(command_voice.guild_id, mo_from, at_time) m WHERE m.seconds > 0
    ), weeks AS (
        SELECT g.week_start, (SELECT w.seconds FROM @extschema@._voice_seconds(command_voice.guild_id,
                                   g.week_start, least(g.week_start + interval '7 days', at_time)) w
                               WHERE w.user_id = command_voice.user_id) AS seconds
        FROM (SELECT (date_trunc('week', at_time AT TIME ZONE tz) - n * interval '7 days') AT TIME ZONE tz AS week_start
              FROM generate_series(0, 11) n) g
    )
    SELECT jsonb_build_object(
        'ok', true,
        'user_id', command_voice.user_id::text,
        'name', (SELECT mb.display_name FROM @extschema@.members mb
                  WHERE mb.guild_id = command_voice.guild_id AND mb.user_id = command_voice.user_id),
        'hours_week', round(coalesce((SELECT w.seconds FROM wk w WHERE w.user_id = command_voice.user_id), 0)::numeric / 3600, 1)::double precision,
        'hours_month', round(coalesce((SELECT m.seconds FROM mo m WHERE m.user_id = command_voice.user_id), 0)::numeric / 3600, 1)::double precision,
        'rank_week', (SELECT w.rank FROM wk w WHERE w.user_id = command_voice.user_id),
        'rank_month', (SELECT m.rank FROM mo m WHERE m.user_id = command_voice.user_id),
        'members_ranked', (SELECT count(*) FROM mo),
        'members_ranked_week', (SELECT count(*) FROM wk),
        -- Partners from the co-presence builder (build_voice_copresence, run by build_all):
        -- shared minutes per pair and calendar day, the last 30 days including today.
        'partners', coalesce((SELECT jsonb_agg(jsonb_build_object('user_id', tp.partner_id::text, 'name', tp.partner_name,
                                                                  'shared_minutes', round(tp.shared_minutes)::bigint,
                                                                  'days_together', tp.days_together)
                                               ORDER BY tp.shared_minutes DESC, tp.partner_id)
                              FROM @extschema@.voice_top_partners(command_voice.guild_id, command_voice.user_id,
                                                                  from_day => (at_time AT TIME ZONE tz)::date - 29,
                                                                  to_day => (at_time AT TIME ZONE tz)::date,
                                                                  max_rows => 5) tp
                              WHERE tp.shared_minutes >= 1), '[]'),
        'weeks', (SELECT jsonb_agg(jsonb_build_object('week_start', (w.week_start AT TIME ZONE tz)::date,
                                                      'hours', round(coalesce(w.seconds, 0)::numeric / 3600, 1)::double precision)
                                   ORDER BY w.week_start) FROM weeks w))
      INTO answer;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION command_voice(bigint, bigint, timestamptz) IS
    'The /voice answer for a member at as_of (default now): voice hours this calendar week and month (guild time zone, AFK excluded, open sessions up to as_of), rank among the members with voice time in that week and month (members_ranked counts the month''s), the top 5 partners by minutes shared in the same channel on the last 30 calendar days (voice_top_partners, from the co-presence builder; at least one minute), and the hours of each of the last 12 weeks, oldest first. Example: SELECT jsonb_pretty(guildstats.command_voice(1234, 42));';

CREATE FUNCTION command_community(guild_id bigint, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    at_time timestamptz := coalesce(as_of, now());
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(command_community.guild_id) s);
    today date := (at_time AT TIME ZONE tz)::date;
    day_row record;
    answer jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @extschema@.activity_events e
                    WHERE e.guild_id = command_community.guild_id AND e.kind <> 'member') THEN
        RETURN @extschema@._command_error('No activity recorded for this guild yet.');
    END IF;
    SELECT a.* INTO day_row FROM @extschema@.activity_daily(command_community.guild_id, today, today) a;
    SELECT jsonb_build_object(
        'ok', true,
        'day', today,
        'dau', coalesce(day_row.dau, 0),
        'mau', coalesce(day_row.mau, 0),
        'dau_mau', round(day_row.dau_mau::numeric, 3)::double precision,
        'd7', (SELECT round(r.rate::numeric, 3)::double precision FROM @extschema@.retention_dn(command_community.guild_id, '{7}') r),
        'd30', (SELECT round(r.rate::numeric, 3)::double precision FROM @extschema@.retention_dn(command_community.guild_id, '{30}') r),
        'economy_alerts', coalesce((SELECT jsonb_agg(jsonb_build_object('day', e.day, 'alert', al.alert) ORDER BY e.day DESC, al.alert)
                                    FROM @extschema@.economy_health(command_community.guild_id, today - 29, today) e,
                                         unnest(e.alerts) AS al(alert)), '[]'),
        'health_problems', coalesce((SELECT jsonb_agg(h.severity || ': ' || h.check_name || ' ' || h.status || coalesce(' (' || h.detail || ')', '')
                                                      ORDER BY h.severity, h.check_name)
                                     FROM @extschema@.health() h WHERE h.status <> 'ok'), '[]'))
      INTO answer;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION command_community(bigint, timestamptz) IS
    'The /community answer (for admins; the bot checks who asks): DAU, MAU and DAU/MAU on as_of''s calendar day (default today), D7 and D30 retention (retention_dn), the points economy''s alerts of the last 30 days (economy_health) and every health() check that is not ok. Example: SELECT jsonb_pretty(guildstats.command_community(1234));';

-- A fresh install isolates these tables in isolation.sql (finalize); an upgrade does it here.
SELECT count(@extschema@.isolate_by_guild(t))
  FROM unnest(ARRAY['@extschema@.command_settings', '@extschema@.command_admins',
                    '@extschema@.et_guid_claims']::regclass[]) AS t;
-- ==== end of Discord command answers

-- ==== one builder framework (issue 13: 1): the registry guildstats.builders, the runner
-- _run_builder(), build_all() in dependency order, every builder moved onto them
-- Last, after every section that defines a builder the old way (build_rollups with the dashboard
-- rollups, build_voice_copresence): each is redefined here as its registered plan and step.
CREATE TABLE @extschema@.builders (
    name          text         PRIMARY KEY,
    registered    integer      GENERATED ALWAYS AS IDENTITY,
    reads         regclass[]   NOT NULL,
    claims        text[]       NOT NULL DEFAULT '{}',
    depends_on    text[]       NOT NULL DEFAULT '{}',
    per           text         NOT NULL CHECK (per IN ('guild', 'all')),
    plan          regprocedure,
    step          regprocedure NOT NULL,
    counters      text[]       NOT NULL,
    skipped_note  text
);
COMMENT ON TABLE builders IS
    'The registry of builders: one row per builder, run by _run_builder() (its lock, progress claims, reset on full and status) and by build_all() in dependency order. Readable by every role; only the extension owner can register a builder, since build_all() runs every step with its caller''s rights. See DEVELOPERS.md, "How to add a builder".';
COMMENT ON COLUMN builders.name IS 'The builder, named after its public function (e.g. build_voice_sessions); also its row of builder_locks and its build_progress.builder.';
COMMENT ON COLUMN builders.registered IS 'Registration order: breaks ties in the dependency order, so that builders independent of each other run in the order they were registered.';
COMMENT ON COLUMN builders.reads IS 'Every table the builder reads, raw and core.';
COMMENT ON COLUMN builders.claims IS 'The raw tables whose new ingest ids the runner claims for the builder (build_progress) before its plan runs, in this order; each a table of reads.';
COMMENT ON COLUMN builders.depends_on IS 'The builders whose output it reads: build_all() runs them first, and skips this one when one of them failed.';
COMMENT ON COLUMN builders.per IS 'guild: plan lists the guilds to build and step builds one guild, touching only its rows; all: one step over everything (its tables carry no guild).';
COMMENT ON COLUMN builders.plan IS 'f(claims jsonb, full boolean) RETURNS jsonb, run once under the lock: the work of a full rebuild''s reset, the counters it can tell at once, and for per = guild the guilds to build under the key "guilds". NULL for per = all.';
COMMENT ON COLUMN builders.step IS 'f(guild bigint, claims jsonb, full boolean) RETURNS jsonb: builds one guild (guild NULL for per = all) and returns its counters, optionally a "status" to report instead of ok.';
COMMENT ON COLUMN builders.counters IS 'The numeric columns of the builder''s result, in order: summed over its plan and steps, zero when it is skipped.';
COMMENT ON COLUMN builders.skipped_note IS 'Appended to the status of a call skipped because another call of the builder is running.';

CREATE FUNCTION _builders_check()
RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID);
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = NEW.step AND p.prorettype = 'jsonb'::regtype
                      AND pg_catalog.oidvectortypes(p.proargtypes) = 'bigint, jsonb, boolean') THEN
        RAISE EXCEPTION 'guildstats: builder %: step % must be f(guild bigint, claims jsonb, full boolean) RETURNS jsonb',
            NEW.name, NEW.step;
    END IF;
    IF NEW.plan IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = NEW.plan AND p.prorettype = 'jsonb'::regtype
           AND pg_catalog.oidvectortypes(p.proargtypes) = 'jsonb, boolean') THEN
        RAISE EXCEPTION 'guildstats: builder %: plan % must be f(claims jsonb, full boolean) RETURNS jsonb',
            NEW.name, NEW.plan;
    END IF;
    IF NEW.per = 'guild' AND NEW.plan IS NULL THEN
        RAISE EXCEPTION 'guildstats: builder % is per guild but has no plan to list the guilds', NEW.name;
    END IF;
    -- build_all() runs with the rights of whoever calls it, pg_cron's job owner included.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid IN (NEW.step, NEW.plan) AND p.proowner <> owner) THEN
        RAISE EXCEPTION 'guildstats: builder %: its functions must belong to %, the owner of guildstats.builders',
            NEW.name, owner::regrole;
    END IF;
    FOREACH t IN ARRAY NEW.claims LOOP
        IF NOT EXISTS (SELECT 1 FROM unnest(NEW.reads) r WHERE r = pg_catalog.to_regclass(format('@extschema@.%I', t))) THEN
            RAISE EXCEPTION 'guildstats: builder % claims %, which is not among the tables it reads', NEW.name, t;
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION _builders_check() IS
    'Internal: refuses a builders row whose plan or step has the wrong signature or another owner, or that claims a table it does not read.';

CREATE FUNCTION builder_order()
RETURNS TABLE (run_order integer, name text, depends_on text[])
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    done    text[] := '{}';
    nxt     record;
    missing record;
BEGIN
    SELECT b.name, d INTO missing FROM @extschema@.builders b, unnest(b.depends_on) d
     WHERE d NOT IN (SELECT x.name FROM @extschema@.builders x) ORDER BY 1, 2 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'guildstats: builder % depends on %, which is not a builder', missing.name, missing.d
            USING HINT = 'Register it first, or correct depends_on in guildstats.builders.';
    END IF;
    run_order := 0;
    LOOP
        SELECT b.name, b.depends_on INTO nxt FROM @extschema@.builders b
         WHERE b.name <> ALL (done) AND b.depends_on <@ done
         ORDER BY b.registered LIMIT 1;
        EXIT WHEN NOT FOUND;
        run_order := run_order + 1; name := nxt.name; depends_on := nxt.depends_on;
        done := done || nxt.name;
        RETURN NEXT;
    END LOOP;
    IF (SELECT count(*) FROM @extschema@.builders) > cardinality(done) THEN
        RAISE EXCEPTION 'guildstats: the builders % depend on each other in a cycle, so none of them can run first',
            (SELECT string_agg(b.name || ' (after ' || array_to_string(b.depends_on, ', ') || ')', ', ' ORDER BY b.name)
               FROM @extschema@.builders b WHERE b.name <> ALL (done))
            USING HINT = 'Remove one of the dependencies from guildstats.builders.depends_on.';
    END IF;
END
$$;
COMMENT ON FUNCTION builder_order() IS
    'The builders in the order build_all() runs them: each after every builder it depends on, ties in registration order. Raises an error naming the builders involved when their dependencies form a cycle or name no builder. Example: SELECT * FROM guildstats.builder_order();';

CREATE FUNCTION _builders_order_check()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM @extschema@.builder_order();
    -- Every builder has its lock row (builder_locks references builders, so none is left over).
    INSERT INTO @extschema@.builder_locks (builder)
    SELECT b.name FROM @extschema@.builders b ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION _builders_order_check() IS
    'Internal: after a change of builders, refuses a dependency cycle or an unknown dependency and gives every builder its row of builder_locks.';

CREATE FUNCTION _run_builder(builder text, full boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := clock_timestamp();
    b        @extschema@.builders;
    claims   jsonb := '{}';
    result   jsonb;
    part     jsonb;
    status   text;
    t        text;
    guild    bigint;
BEGIN
    SELECT * INTO b FROM @extschema@.builders r WHERE r.name = _run_builder.builder;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'guildstats: no builder is named %', builder
            USING HINT = 'SELECT name FROM guildstats.builders lists them.';
    END IF;
    result := (SELECT jsonb_object_agg(c, 0) FROM unnest(b.counters) c);
    IF NOT @extschema@._try_builder_lock(builder) THEN
        RETURN result || jsonb_build_object(
            'elapsed', clock_timestamp() - started,
            'status', 'skipped: another ' || builder || '() is running' || coalesce(b.skipped_note, ''));
    END IF;
    IF _run_builder.full THEN
        PERFORM @extschema@._reset_progress(builder);
    END IF;
    FOREACH t IN ARRAY b.claims LOOP
        claims := claims || jsonb_build_object(t, @extschema@._claim_ingest_ids(builder, t));
    END LOOP;

    part := '{}';
    IF b.plan IS NOT NULL THEN
        EXECUTE format('SELECT %s($1, $2)', @extschema@._function_name(b.plan)) INTO part USING claims, _run_builder.full;
        result := @extschema@._add_counters(result, part, b.counters);
        status := part->>'status';
    END IF;
    FOR guild IN
        SELECT g::bigint FROM jsonb_array_elements_text(part->'guilds') g WHERE b.per = 'guild'
        UNION ALL
        SELECT NULL WHERE b.per = 'all'
    LOOP
        EXECUTE format('SELECT %s($1, $2, $3)', @extschema@._function_name(b.step)) INTO part USING guild, claims, _run_builder.full;
        result := @extschema@._add_counters(result, part, b.counters);
        status := coalesce(part->>'status', status);
    END LOOP;
    RETURN result || jsonb_build_object(
        'elapsed', clock_timestamp() - started,
        'status', coalesce(status, CASE WHEN _run_builder.full THEN 'ok: full rebuild' ELSE 'ok' END));
END
$$;
COMMENT ON FUNCTION _run_builder(text, boolean) IS
    'Runs one builder of the registry in the caller''s transaction: takes its lock (or answers skipped), forgets its progress on full, claims its new raw rows, runs its plan and then its step for each guild (or once), and returns its counters with elapsed and status as one JSON object. The public builder functions are this, turned into their rows.';

CREATE FUNCTION _add_counters(total jsonb, part jsonb, counters text[])
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT total || coalesce(jsonb_object_agg(c, coalesce((total->>c)::numeric, 0) + (part->>c)::numeric), '{}')
      FROM unnest(counters) c WHERE part ? c
$$;
COMMENT ON FUNCTION _add_counters(jsonb, jsonb, text[]) IS
    'Internal to _run_builder(): total with each of counters increased by its value in part.';

CREATE FUNCTION _function_name(f regprocedure)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('%I.%I', n.nspname, p.proname)
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.oid = f
$$;
COMMENT ON FUNCTION _function_name(regprocedure) IS
    'Internal to _run_builder(): the schema-qualified name to call a registered function by (its argument types pick the overload).';

CREATE FUNCTION _claimed(claims jsonb, source_table text)
RETURNS int8multirange
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((claims->>source_table)::int8multirange, '{}')
$$;
COMMENT ON FUNCTION _claimed(jsonb, text) IS
    'Internal to the builders'' plans and steps: the ingest ids of source_table that the runner claimed for this run.';

CREATE TRIGGER builders_check BEFORE INSERT OR UPDATE ON builders
    FOR EACH ROW EXECUTE FUNCTION _builders_check();
COMMENT ON TRIGGER builders_check ON builders IS 'Checks each registration (see _builders_check).';

CREATE TRIGGER builders_order_check AFTER INSERT OR UPDATE OR DELETE ON builders
    FOR EACH STATEMENT EXECUTE FUNCTION _builders_order_check();
COMMENT ON TRIGGER builders_order_check ON builders IS 'Keeps the registry runnable (see _builders_order_check).';

COMMENT ON TABLE builder_locks IS
    'One row per builder of guildstats.builders (registering a builder adds it); a builder runs while it holds its row locked (SELECT ... FOR UPDATE SKIP LOCKED), and erase_member() locks every row. Only roles with UPDATE on this table (guildstats_admin) can hold them. Do not edit.';

CREATE FUNCTION _build_members_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    voice_ids    int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    message_ids  int8multirange := @extschema@._claimed(claims, 'raw_messages');
    member_ids   int8multirange := @extschema@._claimed(claims, 'raw_member_events');
    point_ids    int8multirange := @extschema@._claimed(claims, 'raw_point_transactions');
BEGIN
    IF _build_members_plan.full THEN
        TRUNCATE @extschema@.members;
    END IF;
    RETURN jsonb_build_object('guilds', coalesce((SELECT jsonb_agg(DISTINCT a.guild_id ORDER BY a.guild_id) FROM (
        SELECT e.guild_id FROM @extschema@.raw_voice_events e
         WHERE e.ingest_id BETWEEN lower(voice_ids) AND upper(voice_ids) - 1 AND e.ingest_id <@ voice_ids
        UNION
        SELECT m.guild_id FROM @extschema@.raw_messages m
         WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1 AND m.ingest_id <@ message_ids
        UNION
        SELECT x.guild_id FROM @extschema@.raw_member_events x
         WHERE x.ingest_id BETWEEN lower(member_ids) AND upper(member_ids) - 1 AND x.ingest_id <@ member_ids
        UNION
        SELECT p.guild_id FROM @extschema@.raw_point_transactions p
         WHERE p.ingest_id BETWEEN lower(point_ids) AND upper(point_ids) - 1 AND p.ingest_id <@ point_ids) a), '[]'));
END
$$;
COMMENT ON FUNCTION _build_members_plan(jsonb, boolean) IS
    'Internal: the plan of build_members (see guildstats.builders): empties members on a full rebuild and lists the guilds with new raw rows.';

CREATE FUNCTION _build_members_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g            bigint := _build_members_step.guild;
    voice_ids    int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    message_ids  int8multirange := @extschema@._claimed(claims, 'raw_messages');
    member_ids   int8multirange := @extschema@._claimed(claims, 'raw_member_events');
    point_ids    int8multirange := @extschema@._claimed(claims, 'raw_point_transactions');
    rows_read        bigint;
    members_added    bigint;
    members_updated  bigint;
BEGIN
    -- Once per transaction: IF NOT EXISTS would say so in a NOTICE for every further guild.
    IF pg_catalog.to_regclass('pg_temp._guildstats_member_activity') IS NULL THEN
        CREATE TEMP TABLE _guildstats_member_activity (
            guild_id bigint, user_id bigint, first_seen timestamptz, last_seen timestamptz, rows bigint
        ) ON COMMIT DROP;
    END IF;
    TRUNCATE _guildstats_member_activity;
    INSERT INTO _guildstats_member_activity
    SELECT g, a.user_id, min(a.first_seen), max(a.last_seen), sum(a.n)
    FROM (SELECT e.user_id, min(e.event_ts) AS first_seen, max(e.event_ts) AS last_seen, count(*) AS n
            FROM @extschema@.raw_voice_events e
           WHERE e.ingest_id BETWEEN lower(voice_ids) AND upper(voice_ids) - 1 AND e.ingest_id <@ voice_ids
             AND e.guild_id = g
           GROUP BY 1
          UNION ALL
          SELECT m.user_id, min(m.sent_at), max(m.sent_at), count(*)
            FROM @extschema@.raw_messages m
           WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1 AND m.ingest_id <@ message_ids
             AND m.guild_id = g
           GROUP BY 1
          UNION ALL
          SELECT x.user_id, min(x.event_ts), max(x.event_ts), count(*)
            FROM @extschema@.raw_member_events x
           WHERE x.ingest_id BETWEEN lower(member_ids) AND upper(member_ids) - 1 AND x.ingest_id <@ member_ids
             AND x.guild_id = g
           GROUP BY 1
          UNION ALL
          SELECT p.user_id, min(p.tx_ts), max(p.tx_ts), count(*)
            FROM @extschema@.raw_point_transactions p
           WHERE p.ingest_id BETWEEN lower(point_ids) AND upper(point_ids) - 1 AND p.ingest_id <@ point_ids
             AND p.guild_id = g
           GROUP BY 1) a
    GROUP BY a.user_id;
    SELECT coalesce(sum(a.rows), 0) INTO rows_read FROM _guildstats_member_activity a;

    -- Activity: earliest and latest of whatever arrived, merged with what is known.
    WITH upserted AS (
        INSERT INTO @extschema@.members AS m (guild_id, user_id, first_seen, last_seen, is_active)
        SELECT a.guild_id, a.user_id, a.first_seen, a.last_seen, true
        FROM _guildstats_member_activity a
        ON CONFLICT (guild_id, user_id) DO UPDATE
           SET first_seen = least(m.first_seen, EXCLUDED.first_seen),
               last_seen = greatest(m.last_seen, EXCLUDED.last_seen)
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
      INTO members_added, members_updated FROM upserted;

    -- Membership: recomputed from all membership changes of the users that have new ones.
    UPDATE @extschema@.members m
       SET joined_at = s.joined_at,
           left_at = s.left_at,
           is_active = s.left_at IS NULL,
           display_name = coalesce(s.display_name, m.display_name),
           is_bot = s.is_bot
      FROM (SELECT t.guild_id, t.user_id, j.joined_at,
                   (SELECT max(x.event_ts) FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id
                       AND x.event_type IN ('leave', 'ban')
                       AND (j.joined_at IS NULL OR x.event_ts > j.joined_at)) AS left_at,
                   (SELECT x.display_name FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id AND x.display_name IS NOT NULL
                     ORDER BY x.event_ts DESC, x.ingest_id DESC LIMIT 1) AS display_name,
                   (SELECT bool_or(x.is_bot) FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id) AS is_bot
              FROM (SELECT DISTINCT x.guild_id, x.user_id FROM @extschema@.raw_member_events x
                     WHERE x.ingest_id BETWEEN lower(member_ids) AND upper(member_ids) - 1
                       AND x.ingest_id <@ member_ids AND x.guild_id = g) t
              CROSS JOIN LATERAL (SELECT max(x.event_ts) AS joined_at FROM @extschema@.raw_member_events x
                                   WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id
                                     AND x.event_type = 'join') j) s
     WHERE m.guild_id = s.guild_id AND m.user_id = s.user_id;

    RETURN jsonb_build_object('rows_read', rows_read, 'members_added', members_added,
                              'members_updated', members_updated);
END
$$;
COMMENT ON FUNCTION _build_members_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_members (see guildstats.builders): merges one guild''s new raw rows into members.';

CREATE FUNCTION _build_voice_sessions_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    event_ids        int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    snapshot_ids     int8multirange := @extschema@._claimed(claims, 'raw_voice_snapshots');
    beat_ids         int8multirange := @extschema@._claimed(claims, 'raw_heartbeats');
    events_read      bigint;
    snapshots_read   bigint;
    heartbeats_read  bigint;
    event_guilds     bigint[];
    snapshot_guilds  bigint[];
    beat_guilds      bigint[];
    caller_jit       text := pg_catalog.current_setting('jit');
    guilds           jsonb;
BEGIN
    IF _build_voice_sessions_plan.full THEN
        DELETE FROM @extschema@.voice_build_guilds;
        TRUNCATE @extschema@.voice_sessions;
    ELSE
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    -- One pass over each claim: how many rows, and which guilds they touch.
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO events_read, event_guilds
      FROM (SELECT e.guild_id, count(*) AS n FROM @extschema@.raw_voice_events e
             WHERE e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
               AND (event_ids = int8multirange(range_merge(event_ids)) OR e.ingest_id <@ event_ids)
             GROUP BY e.guild_id) c;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO snapshots_read, snapshot_guilds
      FROM (SELECT x.guild_id, count(*) AS n FROM @extschema@.raw_voice_snapshots x
             WHERE x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
               AND x.ingest_id <@ snapshot_ids
             GROUP BY x.guild_id) c;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO heartbeats_read, beat_guilds
      FROM (SELECT b.guild_id, count(*) AS n FROM @extschema@.raw_heartbeats b
             WHERE b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1 AND b.ingest_id <@ beat_ids
               AND b.source = 'discord' AND b.guild_id IS NOT NULL
             GROUP BY b.guild_id) c;

    SELECT coalesce(jsonb_agg(t.guild_id ORDER BY t.guild_id), '[]') INTO guilds FROM (
        SELECT DISTINCT t.guild_id FROM unnest(event_guilds || snapshot_guilds || beat_guilds) AS t(guild_id)
        UNION
        SELECT d.guild_id FROM @extschema@.voice_build_guilds d
         WHERE d.settings_fingerprint IS DISTINCT FROM @extschema@._voice_settings_fingerprint(d.guild_id)
        ORDER BY 1
    ) t;
    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    RETURN jsonb_build_object('events_read', events_read, 'snapshots_read', snapshots_read,
                              'heartbeats_read', heartbeats_read, 'guilds', guilds);
END
$$;
COMMENT ON FUNCTION _build_voice_sessions_plan(jsonb, boolean) IS
    'Internal: the plan of build_voice_sessions (see guildstats.builders): empties the sessions on a full rebuild, counts the claimed rows and lists the guilds to build.';

CREATE FUNCTION _build_voice_sessions_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g             bigint := _build_voice_sessions_step.guild;
    event_ids     int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    snapshot_ids  int8multirange := @extschema@._claimed(claims, 'raw_voice_snapshots');
    beat_ids      int8multirange := @extschema@._claimed(claims, 'raw_heartbeats');
    done          record;
    written       record;
    horizon       timestamptz;
    beats_exist   boolean;
    fingerprint   text;
    whole_guild   boolean;
    guild_dirty   timestamptz;
    users         bigint[];
    dirty_from    timestamptz[];
    changed       timestamptz;
    caller_jit    text := pg_catalog.current_setting('jit');
BEGIN
    IF NOT _build_voice_sessions_step.full THEN
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    SELECT max(b.beat_at) INTO horizon FROM @extschema@.raw_heartbeats b
     WHERE b.source = 'discord' AND b.guild_id = g;
    beats_exist := horizon IS NOT NULL;
    IF NOT beats_exist THEN
        SELECT greatest((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e WHERE e.guild_id = g),
                        (SELECT max(x.taken_at) FROM @extschema@.raw_voice_snapshots x WHERE x.guild_id = g))
          INTO horizon;
    END IF;
    IF horizon IS NULL THEN
        PERFORM pg_catalog.set_config('jit', caller_jit, true);
        RETURN '{}';  -- heartbeats of another source only: nothing to build
    END IF;
    fingerprint := @extschema@._voice_settings_fingerprint(g);
    SELECT * INTO done FROM @extschema@.voice_build_guilds d WHERE d.guild_id = g;
    whole_guild := done IS NULL OR done.settings_fingerprint IS DISTINCT FROM fingerprint
                   OR done.has_heartbeats IS DISTINCT FROM beats_exist OR horizon < done.horizon;

    IF whole_guild THEN
        users := NULL;
        dirty_from := NULL;
    ELSE
        -- Guild-wide changes reach every user in a session at or after them: a new snapshot,
        -- heartbeats that change the outages (from the last old beat before the earliest new
        -- one), and the move of the horizon itself.
        SELECT least(done.horizon,
                     (SELECT min(x.taken_at) FROM @extschema@.raw_voice_snapshots x
                       WHERE x.guild_id = g
                         AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                         AND x.ingest_id <@ snapshot_ids),
                     (SELECT coalesce((SELECT max(o.beat_at) FROM @extschema@.raw_heartbeats o
                                        WHERE o.source = 'discord' AND o.guild_id = g
                                          AND o.beat_at < nb.first_new
                                          AND NOT (o.ingest_id <@ beat_ids)),
                                      nb.first_new)
                        FROM (SELECT min(b.beat_at) AS first_new FROM @extschema@.raw_heartbeats b
                               WHERE b.source = 'discord' AND b.guild_id = g
                                 AND b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1
                                 AND b.ingest_id <@ beat_ids) nb))
          INTO guild_dirty;
        SELECT array_agg(t.user_id), array_agg(t.at) INTO users, dirty_from
          FROM (SELECT e.user_id, min(e.event_ts) AS at FROM @extschema@.raw_voice_events e
                 WHERE e.guild_id = g
                   AND e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
                   AND e.ingest_id <@ event_ids
                 GROUP BY e.user_id
                UNION ALL
                SELECT v.user_id, x.taken_at
                  FROM @extschema@.raw_voice_snapshots x
                  CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                 WHERE x.guild_id = g
                   AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                   AND x.ingest_id <@ snapshot_ids
                UNION ALL
                -- Sessions that end after the change without an event of their user after
                -- it (a leave or a move is such an event, and is found just below).
                SELECT v.user_id, guild_dirty FROM @extschema@.voice_sessions v
                 WHERE v.guild_id = g AND (v.ended_at >= guild_dirty OR v.ended_at IS NULL)
                   AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))
                UNION ALL
                -- Users seen after a guild-wide change may have had sessions the old walk
                -- dropped (begun inside what looked like an outage): walk them again too.
                SELECT DISTINCT e.user_id, guild_dirty FROM @extschema@.raw_voice_events e
                 WHERE e.guild_id = g AND e.event_ts >= guild_dirty
                UNION ALL
                SELECT DISTINCT v.user_id, guild_dirty
                  FROM @extschema@.raw_voice_snapshots x
                  CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                 WHERE x.guild_id = g AND x.taken_at >= guild_dirty
               ) t;
        users := coalesce(users, '{}');
        dirty_from := coalesce(dirty_from, '{}');
    END IF;

    SELECT w.* INTO written FROM @extschema@._voice_write_sessions(g, horizon, users, dirty_from) w;
    changed := written.changed_from;
    -- Open sessions grow with the horizon even when nothing else changed.
    SELECT least(changed, (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                            WHERE v.guild_id = g AND v.ended_at IS NULL
                              AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))))
      INTO changed;
    PERFORM @extschema@._note_voice_change(g, changed);

    INSERT INTO @extschema@.voice_build_guilds AS d (guild_id, horizon, has_heartbeats, settings_fingerprint, built_at)
    VALUES (g, horizon, beats_exist, fingerprint, now())
    ON CONFLICT (guild_id) DO UPDATE
       SET horizon = EXCLUDED.horizon, has_heartbeats = EXCLUDED.has_heartbeats,
           settings_fingerprint = EXCLUDED.settings_fingerprint, built_at = EXCLUDED.built_at;

    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    RETURN jsonb_build_object('guilds_built', 1, 'users_rebuilt', written.users_rebuilt,
                              'sessions_opened', written.sessions_opened, 'sessions_closed', written.sessions_closed,
                              'sessions_updated', written.sessions_updated, 'sessions_removed', written.sessions_removed);
END
$$;
COMMENT ON FUNCTION _build_voice_sessions_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_voice_sessions (see guildstats.builders): rewrites one guild''s sessions from its earliest new observation on, or all of them when its settings, heartbeats or horizon changed, and tells the downstream builders from when.';

CREATE FUNCTION _build_event_attendance_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    event_ids  int8multirange := @extschema@._claimed(claims, 'raw_scheduled_events');
BEGIN
    IF _build_event_attendance_plan.full THEN
        DELETE FROM @extschema@.voice_session_changes c WHERE c.consumer = 'build_event_attendance';
        TRUNCATE @extschema@.event_attendance, @extschema@.events;
    END IF;
    RETURN jsonb_build_object(
        'observations_read',
        (SELECT count(*) FROM @extschema@.raw_scheduled_events r
          WHERE r.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1 AND r.ingest_id <@ event_ids),
        'guilds', coalesce((SELECT jsonb_agg(DISTINCT t.guild_id ORDER BY t.guild_id) FROM (
            SELECT r.guild_id FROM @extschema@.raw_scheduled_events r
             WHERE r.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1 AND r.ingest_id <@ event_ids
            UNION
            SELECT r.guild_id FROM @extschema@.raw_scheduled_events r WHERE _build_event_attendance_plan.full
            UNION
            SELECT c.guild_id FROM @extschema@.voice_session_changes c
             WHERE c.consumer = 'build_event_attendance') t), '[]'));
END
$$;
COMMENT ON FUNCTION _build_event_attendance_plan(jsonb, boolean) IS
    'Internal: the plan of build_event_attendance (see guildstats.builders): empties events and attendance on a full rebuild, counts the claimed observations and lists the guilds to build.';

CREATE FUNCTION _build_event_attendance_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    event_ids        int8multirange := @extschema@._claimed(claims, 'raw_scheduled_events');
    touched          bigint[];
    events_built     bigint;
    attendance_rows  bigint;
BEGIN
    -- The guild's events with new observations, all of them when starting over, and those whose
    -- window reaches into changed voice sessions (running events always do).
    SELECT array_agg(DISTINCT t.event_id) INTO touched FROM (
        SELECT r.event_id FROM @extschema@.raw_scheduled_events r
         WHERE r.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1 AND r.ingest_id <@ event_ids
           AND r.guild_id = _build_event_attendance_step.guild
        UNION ALL
        SELECT r.event_id FROM @extschema@.raw_scheduled_events r
         WHERE _build_event_attendance_step.full AND r.guild_id = _build_event_attendance_step.guild
        UNION ALL
        SELECT e.event_id FROM @extschema@.events e
          JOIN @extschema@.voice_session_changes c
            ON c.consumer = 'build_event_attendance' AND c.guild_id = e.guild_id
         WHERE e.guild_id = _build_event_attendance_step.guild
           AND e.actual_start IS NOT NULL AND (e.actual_end IS NULL OR e.actual_end > c.changed_from)
    ) t;
    DELETE FROM @extschema@.voice_session_changes c
     WHERE c.consumer = 'build_event_attendance' AND c.guild_id = _build_event_attendance_step.guild;
    touched := coalesce(touched, '{}');

    -- Latest state, and actual start and end from the status changes.
    INSERT INTO @extschema@.events AS ev (guild_id, event_id, name, entity_type, channel_id, status, is_cancelled,
                                          scheduled_start, scheduled_end, actual_start, actual_end,
                                          first_observed_at, last_observed_at)
    SELECT l.guild_id, l.event_id, l.name, l.entity_type, l.channel_id, l.status, l.status = 'canceled',
           l.scheduled_start, l.scheduled_end, s.actual_start,
           (SELECT min(r.observed_at) FROM @extschema@.raw_scheduled_events r
             WHERE r.event_id = l.event_id AND r.status IN ('completed', 'canceled')
               AND r.observed_at > s.actual_start),
           s.first_observed_at, s.last_observed_at
    FROM unnest(touched) AS t(event_id)
    CROSS JOIN LATERAL (SELECT * FROM @extschema@.raw_scheduled_events r WHERE r.event_id = t.event_id
                        ORDER BY r.observed_at DESC, r.ingest_id DESC LIMIT 1) l
    CROSS JOIN LATERAL (SELECT min(r.observed_at) FILTER (WHERE r.status = 'active') AS actual_start,
                               min(r.observed_at) AS first_observed_at, max(r.observed_at) AS last_observed_at
                        FROM @extschema@.raw_scheduled_events r WHERE r.event_id = t.event_id) s
    ON CONFLICT (event_id) DO UPDATE
       SET guild_id = EXCLUDED.guild_id, name = EXCLUDED.name, entity_type = EXCLUDED.entity_type,
           channel_id = EXCLUDED.channel_id, status = EXCLUDED.status, is_cancelled = EXCLUDED.is_cancelled,
           scheduled_start = EXCLUDED.scheduled_start, scheduled_end = EXCLUDED.scheduled_end,
           actual_start = EXCLUDED.actual_start, actual_end = EXCLUDED.actual_end,
           first_observed_at = EXCLUDED.first_observed_at, last_observed_at = EXCLUDED.last_observed_at;
    GET DIAGNOSTICS events_built = ROW_COUNT;

    DELETE FROM @extschema@.event_attendance a WHERE a.event_id = ANY (touched);
    INSERT INTO @extschema@.event_attendance (event_id, guild_id, user_id, first_join, last_leave,
                                              overlap_seconds, joined_on_time)
    SELECT w.event_id, w.guild_id, v.user_id, min(v.started_at),
           CASE WHEN bool_or(v.ended_at IS NULL) THEN NULL ELSE max(v.ended_at) END,
           sum(extract(epoch FROM least(coalesce(v.ended_at, w.horizon), w.window_end)
                                  - greatest(v.started_at, w.actual_start)))::double precision,
           min(v.started_at) <= w.actual_start + w.event_grace
    FROM (SELECT e.event_id, e.guild_id, e.channel_id, e.actual_start, st.event_grace, b.horizon,
                 coalesce(e.actual_end, b.horizon) AS window_end
            FROM @extschema@.events e
            JOIN @extschema@.voice_build_guilds b ON b.guild_id = e.guild_id
            CROSS JOIN LATERAL @extschema@.settings_for(e.guild_id) st
           WHERE e.event_id = ANY (touched) AND e.actual_start IS NOT NULL) w
    JOIN @extschema@.voice_sessions v
      ON v.guild_id = w.guild_id AND NOT v.is_afk
     AND (w.channel_id IS NULL OR v.channel_id = w.channel_id)
     AND v.started_at < w.window_end
     AND coalesce(v.ended_at, w.horizon) > w.actual_start
    GROUP BY w.event_id, w.guild_id, v.user_id, w.actual_start, w.event_grace
    HAVING sum(extract(epoch FROM least(coalesce(v.ended_at, w.horizon), w.window_end)
                                  - greatest(v.started_at, w.actual_start))) > 0;
    GET DIAGNOSTICS attendance_rows = ROW_COUNT;

    -- The weekly and monthly rollups count attendance: refresh them from these events on.
    INSERT INTO @extschema@.voice_session_changes AS c (consumer, guild_id, changed_from)
    SELECT 'build_rollups', e.guild_id, min(coalesce(e.actual_start, e.first_observed_at))
    FROM @extschema@.events e WHERE e.event_id = ANY (touched)
    GROUP BY e.guild_id
    ON CONFLICT (consumer, guild_id) DO UPDATE SET changed_from = least(c.changed_from, EXCLUDED.changed_from);

    RETURN jsonb_build_object('events_built', events_built, 'attendance_rows', attendance_rows);
END
$$;
COMMENT ON FUNCTION _build_event_attendance_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_event_attendance (see guildstats.builders): rebuilds one guild''s events that have new observations or overlap changed voice sessions, and their attendance.';

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
                 @extschema@.member_points_daily, @extschema@.economy_daily,
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
    END IF;

    PERFORM @extschema@._rollup_dashboards(g.guild_id, g.tz, g.horizon, g.voice_from, g.messages_from,
                                           g.active_from, g.points_from);
    DELETE FROM @extschema@.voice_session_changes c
     WHERE c.consumer = 'build_rollups' AND c.guild_id = _build_rollups_step.guild;
    RETURN jsonb_build_object('guilds_refreshed', 1, 'daily_rows', daily_rows, 'weekly_rows', weekly_rows,
                              'monthly_rows', monthly_rows);
END
$$;
COMMENT ON FUNCTION _build_rollups_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_rollups (see guildstats.builders): refreshes one guild''s member rollups (member_voice_daily, member_engagement_weekly, member_monthly_status) and dashboard rollups from the first instant each of their inputs changed on.';

CREATE FUNCTION _build_game_sessions_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    poll_ids    int8multirange := @extschema@._claimed(claims, 'raw_server_polls');
    player_ids  int8multirange := @extschema@._claimed(claims, 'raw_server_players');
    rows_read         bigint;
    servers_rebuilt   bigint;
    sessions_removed  bigint := 0;
    sessions_written  bigint;
    servers     text[];
    cuts        timestamptz[];
    starts      timestamptz[];
BEGIN
    IF _build_game_sessions_step.full THEN
        SELECT count(*) INTO sessions_removed FROM @extschema@.game_sessions;
        TRUNCATE @extschema@.game_sessions;
    END IF;

    -- Per server, the earliest new poll or player row. A row at t changes at most the session
    -- that contains the poll just before t (its end) and everything after: those are removed
    -- and recomputed from the first sighting of the earliest of them.
    WITH fresh AS (
        SELECT p.server, p.polled_at FROM @extschema@.raw_server_polls p
         WHERE p.ingest_id BETWEEN lower(poll_ids) AND upper(poll_ids) - 1 AND p.ingest_id <@ poll_ids
        UNION ALL
        SELECT r.server, r.polled_at FROM @extschema@.raw_server_players r
         WHERE r.ingest_id BETWEEN lower(player_ids) AND upper(player_ids) - 1 AND r.ingest_id <@ player_ids
    ), touched AS (
        SELECT f.server, min(f.polled_at) AS earliest, count(*) AS n FROM fresh f GROUP BY f.server
    )
    SELECT coalesce(sum(t.n), 0), coalesce(array_agg(t.server ORDER BY t.server), '{}'),
           coalesce(array_agg(coalesce((SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                                         WHERE p.server = t.server AND p.polled_at < t.earliest),
                                       '-infinity') ORDER BY t.server), '{}')
      INTO rows_read, servers, cuts
      FROM touched t;
    servers_rebuilt := cardinality(servers);

    -- Recomputed from the first sighting of the earliest session reaching the cut; every session
    -- starting from there goes, even one that ended before the cut, since it is computed again.
    starts := ARRAY(SELECT least(c.cut, (SELECT min(g.first_seen) FROM @extschema@.game_sessions g
                                          WHERE g.server = c.server AND g.last_seen >= c.cut))
                      FROM unnest(servers, cuts) WITH ORDINALITY AS c(server, cut, i) ORDER BY c.i);
    WITH removed AS (
        DELETE FROM @extschema@.game_sessions g
         USING unnest(servers, starts) AS c(server, rebuild_from)
         WHERE g.server = c.server AND g.first_seen >= c.rebuild_from
        RETURNING 1
    )
    SELECT sessions_removed + count(*) INTO sessions_removed FROM removed;

    INSERT INTO @extschema@.game_sessions
    SELECT * FROM @extschema@._game_sessions_from(servers, starts);
    GET DIAGNOSTICS sessions_written = ROW_COUNT;

    RETURN jsonb_build_object('rows_read', rows_read, 'servers_rebuilt', servers_rebuilt,
                              'sessions_removed', sessions_removed, 'sessions_written', sessions_written);
END
$$;
COMMENT ON FUNCTION _build_game_sessions_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_game_sessions (see guildstats.builders): recomputes the sessions of every server with new polls from the session its earliest new poll can change.';

CREATE FUNCTION _build_et_ratings_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    maps_rated     integer := 0;
    maps_replayed  integer := 0;
    players_rated  integer := 0;
    first_diff integer;
    g          record;
    rated      record;
    touched    text[];
    mus        double precision[];
    sigmas     double precision[];
BEGIN
    IF _build_et_ratings_step.full THEN
        TRUNCATE @extschema@.et_rated_maps, @extschema@.et_rating_history, @extschema@.et_ratings;
    END IF;
    -- Its claim on raw_et_stats_files only records the files seen so far; the maps themselves
    -- are compared below, so files imported later (or by a later import_et_rounds()) are never
    -- missed.

    CREATE TEMP TABLE IF NOT EXISTS _et_rating_games (
        map_seq integer, match_id text, started_at timestamp, outcome text,
        guid text, side smallint, share double precision, fingerprint text) ON COMMIT DROP;
    TRUNCATE _et_rating_games;
    INSERT INTO _et_rating_games
    SELECT dense_rank() OVER (ORDER BY gm.started_at, gm.match_id)::integer, gm.match_id, gm.started_at,
           gm.outcome, gm.guid, gm.side, gm.share,
           md5(gm.outcome || string_agg(gm.side || ':' || gm.guid || ':' || gm.share::text, ',')
                   OVER (PARTITION BY gm.match_id))
    FROM @extschema@.et_rating_games() gm;

    SELECT min(coalesce(cur.map_seq, old.map_seq)) INTO first_diff
    FROM (SELECT DISTINCT t.map_seq, t.match_id, t.fingerprint FROM _et_rating_games t) cur
    FULL JOIN @extschema@.et_rated_maps old ON old.map_seq = cur.map_seq
    WHERE cur.match_id IS DISTINCT FROM old.match_id OR cur.fingerprint IS DISTINCT FROM old.fingerprint;

    IF first_diff IS NULL THEN
        RETURN jsonb_build_object('status', 'ok');
    END IF;

    -- Forget everything from the first difference on, and put the players concerned back to
    -- their rating before it.
    SELECT count(*) INTO maps_replayed FROM @extschema@.et_rated_maps m WHERE m.map_seq >= first_diff;
    SELECT coalesce(array_agg(DISTINCT h.guid), '{}') INTO touched
    FROM @extschema@.et_rating_history h WHERE h.map_seq >= first_diff;
    DELETE FROM @extschema@.et_rating_history h WHERE h.map_seq >= first_diff;
    DELETE FROM @extschema@.et_rated_maps m WHERE m.map_seq >= first_diff;
    DELETE FROM @extschema@.et_ratings r WHERE r.guid = ANY (touched);
    INSERT INTO @extschema@.et_ratings (guid, mu, sigma, ordinal, maps, last_map_seq)
    SELECT DISTINCT ON (h.guid) h.guid, h.mu, h.sigma, h.mu - 3 * h.sigma,
           count(*) OVER (PARTITION BY h.guid), h.map_seq
    FROM @extschema@.et_rating_history h
    WHERE h.guid = ANY (touched)
    ORDER BY h.guid, h.map_seq DESC;

    FOR g IN
        SELECT t.map_seq, t.match_id, t.started_at, t.outcome, t.fingerprint,
               array_agg(t.guid ORDER BY t.side, t.guid) AS guids,
               array_agg(t.side ORDER BY t.side, t.guid) AS sides,
               array_agg(t.share ORDER BY t.side, t.guid) AS shares
        FROM _et_rating_games t
        WHERE t.map_seq >= first_diff
        GROUP BY t.map_seq, t.match_id, t.started_at, t.outcome, t.fingerprint
        ORDER BY t.map_seq
    LOOP
        -- The ratings as of this map: the loop's query cannot see updates made inside it.
        SELECT array_agg(coalesce(r.mu, 25.0) ORDER BY u.o), array_agg(coalesce(r.sigma, 25.0 / 3) ORDER BY u.o)
          INTO mus, sigmas
          FROM unnest(g.guids) WITH ORDINALITY u(guid, o)
          LEFT JOIN @extschema@.et_ratings r ON r.guid = u.guid;
        SELECT * INTO rated FROM @extschema@._et_rate_game(
            g.sides, mus, sigmas, g.shares,
            CASE g.outcome WHEN 'round1_attackers' THEN 1 WHEN 'round2_attackers' THEN 2 ELSE 0 END::smallint);
        INSERT INTO @extschema@.et_rated_maps (map_seq, match_id, started_at, outcome, fingerprint, win_probability)
        VALUES (g.map_seq, g.match_id, g.started_at, g.outcome, g.fingerprint,
                @extschema@.et_win_probability(
                    ARRAY(SELECT m FROM unnest(mus, g.sides) u(m, s) WHERE s = 1),
                    ARRAY(SELECT m FROM unnest(sigmas, g.sides) u(m, s) WHERE s = 1),
                    ARRAY(SELECT m FROM unnest(mus, g.sides) u(m, s) WHERE s = 2),
                    ARRAY(SELECT m FROM unnest(sigmas, g.sides) u(m, s) WHERE s = 2)));
        INSERT INTO @extschema@.et_rating_history
            (guid, map_seq, match_id, side, share, result, mu_before, sigma_before, mu, sigma)
        SELECT u.guid, g.map_seq, g.match_id, u.side, u.share,
               CASE WHEN g.outcome = 'draw' THEN 'draw'
                    WHEN (g.outcome = 'round1_attackers') = (u.side = 1) THEN 'won' ELSE 'lost' END,
               u.mu_before, u.sigma_before, u.mu, u.sigma
        FROM unnest(g.guids, g.sides, g.shares, mus, sigmas, rated.new_mu, rated.new_sigma)
             AS u(guid, side, share, mu_before, sigma_before, mu, sigma);
        INSERT INTO @extschema@.et_ratings AS r (guid, mu, sigma, ordinal, maps, last_map_seq)
        SELECT u.guid, u.mu, u.sigma, u.mu - 3 * u.sigma, 1, g.map_seq
        FROM unnest(g.guids, rated.new_mu, rated.new_sigma) AS u(guid, mu, sigma)
        ON CONFLICT (guid) DO UPDATE
            SET mu = excluded.mu, sigma = excluded.sigma, ordinal = excluded.ordinal,
                maps = r.maps + 1, last_map_seq = excluded.last_map_seq;
        maps_rated := maps_rated + 1;
        players_rated := players_rated + cardinality(g.guids);
    END LOOP;
    -- Its status says ok on a full rebuild too, as it always has.
    RETURN jsonb_build_object('maps_rated', maps_rated, 'maps_replayed', maps_replayed,
                              'players_rated', players_rated, 'status', 'ok');
END
$$;
COMMENT ON FUNCTION _build_et_ratings_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_et_ratings (see guildstats.builders): replays the ratings from the first map that is new or changed.';

CREATE FUNCTION _import_et_rounds_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    pending record;
    n_read integer := 0;
    n_imported integer := 0;
    n_failed integer := 0;
    n_linked integer := 0;
    n_recomputed integer := 0;
    batch_size constant integer := 500;
    batch_read integer;
    batch_imported integer;
    batch_failed integer;
    gap interval;
BEGIN
    -- Batches through the fast path (parse everything, then one statement per table); a batch
    -- that fails there for any reason is redone one file at a time, each in a subtransaction.
    LOOP
        BEGIN
            SELECT b.files_read, b.rounds_imported, b.files_failed
            INTO batch_read, batch_imported, batch_failed
            FROM @extschema@._et_import_batch(batch_size) AS b;
        EXCEPTION WHEN OTHERS THEN
            batch_read := 0; batch_imported := 0; batch_failed := 0;
            FOR pending IN
                SELECT f.ingest_id
                FROM @extschema@.raw_et_stats_files f
                WHERE f.imported_at IS NULL AND f.import_error IS NULL
                  AND NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds r WHERE r.sha256 = f.sha256)
                ORDER BY f.ingest_id
                LIMIT batch_size
            LOOP
                batch_read := batch_read + 1;
                BEGIN
                    PERFORM @extschema@._et_import_file(pending.ingest_id);
                    UPDATE @extschema@.raw_et_stats_files SET imported_at = now(), import_error = NULL
                    WHERE ingest_id = pending.ingest_id;
                    batch_imported := batch_imported + 1;
                EXCEPTION WHEN OTHERS THEN
                    -- The file's rows are rolled back with the subtransaction; the raw file
                    -- stays, with the reason next to it, and the batch goes on.
                    UPDATE @extschema@.raw_et_stats_files SET import_error = SQLERRM
                    WHERE ingest_id = pending.ingest_id;
                    batch_failed := batch_failed + 1;
                END;
            END LOOP;
        END;
        n_read := n_read + batch_read;
        n_imported := n_imported + batch_imported;
        n_failed := n_failed + batch_failed;
        EXIT WHEN batch_read < batch_size;
    END LOOP;

    -- A big backfill leaves the planner's statistics describing nearly empty tables; the
    -- linking step looks rounds up by time, so refresh those of the rounds (a small table: the
    -- players' and weapons' statistics are left to autovacuum).
    IF n_imported >= 200 THEN
        ANALYZE @extschema@.et_rounds;
    END IF;

    SELECT s.et_session_gap INTO gap FROM @extschema@.settings_for(NULL) s;
    SELECT l.rounds_linked, l.round2_recomputed INTO n_linked, n_recomputed
    FROM @extschema@._et_link_new(gap) AS l;

    RETURN jsonb_build_object('files_read', n_read, 'rounds_imported', n_imported, 'files_failed', n_failed,
        'rounds_linked', n_linked, 'round2_recomputed', n_recomputed,
        'orphan_round2', (SELECT count(*)::integer FROM @extschema@.et_rounds WHERE is_orphan),
        'sessions', (SELECT count(*)::integer FROM @extschema@.et_sessions));
END
$$;
COMMENT ON FUNCTION _import_et_rounds_step(bigint, jsonb, boolean) IS
    'Internal: the step of import_et_rounds (see guildstats.builders): imports the files not imported yet and links the rounds around them.';

-- The guilds to refresh: those whose sessions build_voice_sessions() rewrote, and those never
-- built here or whose calendar time zone changed (whole).
CREATE FUNCTION _build_voice_copresence_changes(full boolean, guild bigint)
RETURNS TABLE (guild_id bigint, changed_from timestamptz, tz text, horizon timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.guild_id, min(c.changed_from), s.calendar_time_zone, b.horizon
    FROM (SELECT v.guild_id, v.changed_from FROM @extschema@.voice_session_changes v
           WHERE v.consumer = 'build_voice_copresence'
          UNION ALL
          SELECT b.guild_id, '-infinity' FROM @extschema@.voice_build_guilds b
           WHERE NOT EXISTS (SELECT 1 FROM @extschema@.voice_copresence_guilds d
                              WHERE d.guild_id = b.guild_id
                                AND d.calendar_time_zone = (SELECT s.calendar_time_zone
                                                              FROM @extschema@.settings_for(b.guild_id) s))) c
    CROSS JOIN LATERAL @extschema@.settings_for(c.guild_id) s
    JOIN @extschema@.voice_build_guilds b ON b.guild_id = c.guild_id
    WHERE $2 IS NULL OR c.guild_id = $2
    GROUP BY c.guild_id, s.calendar_time_zone, b.horizon
    ORDER BY c.guild_id
$$;
COMMENT ON FUNCTION _build_voice_copresence_changes(boolean, bigint) IS
    'Internal to build_voice_copresence: per guild to refresh (every such guild when guild is NULL), the first instant its sessions changed from, its calendar time zone and voice horizon.';

CREATE FUNCTION _build_voice_copresence_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF _build_voice_copresence_plan.full THEN
        DELETE FROM @extschema@.voice_copresence_guilds;
        TRUNCATE @extschema@.voice_copresence_daily;
    END IF;
    -- A guild without voice_build_guilds has no sessions to pair; its notices are spent here,
    -- since no step will run for it.
    DELETE FROM @extschema@.voice_session_changes c
     WHERE c.consumer = 'build_voice_copresence'
       AND NOT EXISTS (SELECT 1 FROM @extschema@.voice_build_guilds b WHERE b.guild_id = c.guild_id);
    RETURN jsonb_build_object('guilds', coalesce((SELECT jsonb_agg(g.guild_id ORDER BY g.guild_id)
        FROM @extschema@._build_voice_copresence_changes(_build_voice_copresence_plan.full, NULL) g), '[]'));
END
$$;
COMMENT ON FUNCTION _build_voice_copresence_plan(jsonb, boolean) IS
    'Internal: the plan of build_voice_copresence (see guildstats.builders): empties the pairs on a full rebuild and lists the guilds to refresh.';

CREATE FUNCTION _build_voice_copresence_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g  record;
    n  bigint;
BEGIN
    SELECT * INTO g FROM @extschema@._build_voice_copresence_changes(_build_voice_copresence_step.full, guild) c;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;
    DELETE FROM @extschema@.voice_copresence_daily d
     WHERE d.guild_id = g.guild_id AND d.day >= (g.changed_from AT TIME ZONE g.tz)::date;
    INSERT INTO @extschema@.voice_copresence_daily (guild_id, day, user_a, user_b, shared_seconds)
    SELECT g.guild_id, p.day, p.user_a, p.user_b, p.shared_seconds
    FROM @extschema@._voice_copresence_pairs(g.guild_id, (g.changed_from AT TIME ZONE g.tz)::date, g.tz, g.horizon) p;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO @extschema@.voice_copresence_guilds AS d (guild_id, calendar_time_zone, built_at)
    VALUES (g.guild_id, g.tz, now())
    ON CONFLICT (guild_id) DO UPDATE SET calendar_time_zone = EXCLUDED.calendar_time_zone, built_at = EXCLUDED.built_at;
    DELETE FROM @extschema@.voice_session_changes c
     WHERE c.consumer = 'build_voice_copresence' AND c.guild_id = g.guild_id;
    RETURN jsonb_build_object('guilds_refreshed', 1, 'pair_rows', n);
END
$$;
COMMENT ON FUNCTION _build_voice_copresence_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_voice_copresence (see guildstats.builders): rewrites one guild''s voice_copresence_daily from the first day whose sessions changed on.';

-- The public builders keep their signatures and comments; their bodies call the runner.
CREATE OR REPLACE FUNCTION build_members(full boolean DEFAULT false)
RETURNS TABLE (rows_read bigint, members_added bigint, members_updated bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_members', $1))
        AS r(rows_read bigint, members_added bigint, members_updated bigint, elapsed interval, status text)
$$;

CREATE OR REPLACE FUNCTION build_voice_sessions(full boolean DEFAULT false)
RETURNS TABLE (events_read bigint, snapshots_read bigint, heartbeats_read bigint,
               guilds_built integer, users_rebuilt bigint, sessions_opened bigint,
               sessions_closed bigint, sessions_updated bigint, sessions_removed bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_voice_sessions', $1))
        AS r(events_read bigint, snapshots_read bigint, heartbeats_read bigint,
             guilds_built integer, users_rebuilt bigint, sessions_opened bigint,
             sessions_closed bigint, sessions_updated bigint, sessions_removed bigint,
             elapsed interval, status text)
$$;

CREATE OR REPLACE FUNCTION build_event_attendance(full boolean DEFAULT false)
RETURNS TABLE (observations_read bigint, events_built bigint, attendance_rows bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_event_attendance', $1))
        AS r(observations_read bigint, events_built bigint, attendance_rows bigint, elapsed interval, status text)
$$;

CREATE OR REPLACE FUNCTION build_rollups(full boolean DEFAULT false)
RETURNS TABLE (guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_rollups', $1))
        AS r(guilds_refreshed integer, daily_rows bigint, weekly_rows bigint, monthly_rows bigint,
             elapsed interval, status text)
$$;

CREATE OR REPLACE FUNCTION build_voice_copresence(full boolean DEFAULT false)
RETURNS TABLE (guilds_refreshed integer, pair_rows bigint, elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_voice_copresence', $1))
        AS r(guilds_refreshed integer, pair_rows bigint, elapsed interval, status text)
$$;
CREATE OR REPLACE FUNCTION build_game_sessions(full boolean DEFAULT false)
RETURNS TABLE (rows_read bigint, servers_rebuilt bigint, sessions_removed bigint,
               sessions_written bigint, elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_game_sessions', $1))
        AS r(rows_read bigint, servers_rebuilt bigint, sessions_removed bigint,
               sessions_written bigint, elapsed interval, status text)
$$;

CREATE OR REPLACE FUNCTION build_et_ratings(full boolean DEFAULT false)
RETURNS TABLE (maps_rated integer, maps_replayed integer, players_rated integer,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_et_ratings', $1))
        AS r(maps_rated integer, maps_replayed integer, players_rated integer,
               elapsed interval, status text)
$$;

CREATE OR REPLACE FUNCTION import_et_rounds()
RETURNS TABLE (files_read integer, rounds_imported integer, files_failed integer,
               rounds_linked integer, round2_recomputed integer, orphan_round2 integer,
               sessions integer, elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('import_et_rounds'))
        AS r(files_read integer, rounds_imported integer, files_failed integer,
               rounds_linked integer, round2_recomputed integer, orphan_round2 integer,
               sessions integer, elapsed interval, status text)
$$;

INSERT INTO @extschema@.builders (name, reads, claims, depends_on, per, plan, step, counters, skipped_note) VALUES
    ('import_et_rounds',
     '{raw_et_stats_files,et_rounds,et_player_rounds,et_matches,et_sessions,et_link_state,settings}',
     '{}', '{}', 'all', NULL,
     '_import_et_rounds_step(bigint, jsonb, boolean)',
     '{files_read,rounds_imported,files_failed,rounds_linked,round2_recomputed,orphan_round2,sessions}',
     '; its results will be there when it commits'),
    ('build_et_ratings',
     '{raw_et_stats_files,et_rounds,et_player_rounds,et_matches,et_rated_maps,et_rating_history,et_ratings}',
     '{raw_et_stats_files}', '{import_et_rounds}', 'all', NULL,
     '_build_et_ratings_step(bigint, jsonb, boolean)',
     '{maps_rated,maps_replayed,players_rated}', NULL),
    ('build_members',
     '{raw_voice_events,raw_messages,raw_member_events,raw_point_transactions,members}',
     '{raw_voice_events,raw_messages,raw_member_events,raw_point_transactions}', '{}', 'guild',
     '_build_members_plan(jsonb, boolean)', '_build_members_step(bigint, jsonb, boolean)',
     '{rows_read,members_added,members_updated}', NULL),
    ('build_voice_sessions',
     '{raw_voice_events,raw_voice_snapshots,raw_heartbeats,settings,voice_build_guilds,voice_sessions}',
     '{raw_voice_events,raw_voice_snapshots,raw_heartbeats}', '{}', 'guild',
     '_build_voice_sessions_plan(jsonb, boolean)', '_build_voice_sessions_step(bigint, jsonb, boolean)',
     '{events_read,snapshots_read,heartbeats_read,guilds_built,users_rebuilt,sessions_opened,sessions_closed,sessions_updated,sessions_removed}',
     NULL),
    ('build_voice_copresence',
     '{settings,voice_session_changes,voice_build_guilds,voice_sessions,voice_copresence_guilds,voice_copresence_daily}',
     '{}', '{build_voice_sessions}', 'guild',
     '_build_voice_copresence_plan(jsonb, boolean)', '_build_voice_copresence_step(bigint, jsonb, boolean)',
     '{guilds_refreshed,pair_rows}', NULL),
    ('build_event_attendance',
     '{raw_scheduled_events,settings,voice_session_changes,voice_build_guilds,voice_sessions,events,event_attendance}',
     '{raw_scheduled_events}', '{build_voice_sessions}', 'guild',
     '_build_event_attendance_plan(jsonb, boolean)', '_build_event_attendance_step(bigint, jsonb, boolean)',
     '{observations_read,events_built,attendance_rows}', NULL),
    ('build_game_sessions',
     '{raw_server_polls,raw_server_players,settings,game_sessions}',
     '{raw_server_polls,raw_server_players}', '{}', 'all', NULL,
     '_build_game_sessions_step(bigint, jsonb, boolean)',
     '{rows_read,servers_rebuilt,sessions_removed,sessions_written}', NULL),
    ('build_rollups',
     '{raw_messages,raw_voice_events,raw_point_transactions,raw_server_polls,raw_member_events,raw_heartbeats,raw_et_stats_files,settings,members,voice_session_changes,voice_build_guilds,voice_sessions,events,event_attendance,member_voice_daily,member_engagement_weekly,member_monthly_status,member_active_days,guild_activity_daily,chat_channel_daily,chat_activity_5min,guild_voice_hourly,member_points_daily,economy_daily,server_polls_hourly,ingest_lag_rollup}',
     '{raw_messages,raw_voice_events,raw_point_transactions,raw_server_polls,raw_member_events,raw_heartbeats,raw_et_stats_files}', '{build_members,build_voice_sessions,build_event_attendance}', 'guild',
     '_build_rollups_plan(jsonb, boolean)', '_build_rollups_step(bigint, jsonb, boolean)',
     '{guilds_refreshed,daily_rows,weekly_rows,monthly_rows}', NULL);

-- A lock row without a builder would be one no runner takes; then each row is a builder's.
DELETE FROM @extschema@.builder_locks l WHERE l.builder NOT IN (SELECT b.name FROM @extschema@.builders b);
ALTER TABLE @extschema@.builder_locks ADD FOREIGN KEY (builder) REFERENCES @extschema@.builders (name) ON DELETE CASCADE;

CREATE OR REPLACE FUNCTION build_all()
RETURNS TABLE (builder text, status text, elapsed interval)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    b       record;
    r       jsonb;
    failed  text[] := '{}';
    started timestamptz;
BEGIN
    FOR b IN SELECT o.name, o.depends_on FROM @extschema@.builder_order() o ORDER BY o.run_order LOOP
        builder := b.name;
        IF b.depends_on && failed THEN
            status := 'not run: ' || array_to_string(ARRAY(SELECT unnest(b.depends_on) INTERSECT SELECT unnest(failed) ORDER BY 1), ', ')
                      || ' failed';
            elapsed := interval '0';
            failed := failed || b.name;
            RETURN NEXT;
            CONTINUE;
        END IF;
        started := clock_timestamp();
        BEGIN
            r := @extschema@._run_builder(b.name);
            status := r->>'status';
            elapsed := (r->>'elapsed')::interval;
        EXCEPTION WHEN OTHERS THEN
            status := 'error: ' || SQLERRM;
            elapsed := clock_timestamp() - started;
            failed := failed || b.name;
            RAISE WARNING 'guildstats: build_all(): % failed: %', b.name, SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION build_all() IS
    'Runs every builder of guildstats.builders in dependency order (builder_order()) in the caller''s transaction and returns one row per builder with its status: ok, skipped while another call runs it, error: and the message when it failed (its work and progress are rolled back, the others keep theirs), or not run when a builder it depends on failed. What pg_cron runs every minute (sql/ops/cron.sql).';

CREATE OR REPLACE FUNCTION erase_member(guild_id bigint, user_id bigint)
RETURNS TABLE (table_name text, rows_changed bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lock_wait text;
    n bigint;
BEGIN
    IF erase_member.guild_id IS NULL OR erase_member.user_id IS NULL THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): both are required', erase_member.guild_id, erase_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Waits for builds in flight, but not forever: a transaction left open holding a builder's
    -- lock gets a clear error instead of a hang (the caller's lock_timeout, else 30 seconds).
    lock_wait := current_setting('lock_timeout');
    BEGIN
        IF lock_wait = '0' THEN
            PERFORM set_config('lock_timeout', '30s', true);
        END IF;
        -- Every builder of the registry, so that one registered later is kept out too.
        PERFORM 1 FROM @extschema@.builder_locks l JOIN @extschema@.builders b ON b.name = l.builder
         ORDER BY l.builder FOR UPDATE OF l;
        PERFORM set_config('lock_timeout', lock_wait, true);
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): a build held the builders'' locks for longer than lock_timeout (%); nothing was erased',
            erase_member.guild_id, erase_member.user_id, CASE lock_wait WHEN '0' THEN '30s' ELSE lock_wait END
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Retry when the build has committed; pg_stat_activity shows the transaction holding guildstats.builder_locks.';
    END;

    -- Every table with a (guild_id, user_id) pair, raw first.
    FOR table_name IN
        -- The list itself must survive the erasure it causes.
        SELECT t FROM @extschema@._member_tables() t WHERE t <> 'opt_out'
    LOOP
        EXECUTE format('DELETE FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2', table_name)
            USING erase_member.guild_id, erase_member.user_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        rows_changed := n;
        RETURN NEXT;
    END LOOP;

    -- Pairs name the member as user_a or user_b, not user_id.
    DELETE FROM @extschema@.voice_copresence_daily p
     WHERE p.guild_id = erase_member.guild_id
       AND (p.user_a = erase_member.user_id OR p.user_b = erase_member.user_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'voice_copresence_daily'; rows_changed := n; RETURN NEXT;

    -- Snapshots in every form: entries whose user_id is the member, however spelled; entries
    -- the builders cannot read that mention the member anywhere; and documents that are not
    -- arrays (not snapshots at all) that mention the member, blanked to JSON null.
    UPDATE @extschema@.raw_voice_snapshots s
       SET voice_states = CASE jsonb_typeof(s.voice_states)
               WHEN 'array' THEN (
                   SELECT coalesce(jsonb_agg(v ORDER BY o), '[]'::jsonb)
                     FROM jsonb_array_elements(s.voice_states) WITH ORDINALITY AS e(v, o)
                    WHERE NOT @extschema@._voice_state_is_member(v, erase_member.user_id))
               ELSE 'null'::jsonb END
     WHERE s.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(s.voice_states, erase_member.user_id)
       AND (jsonb_typeof(s.voice_states) <> 'array'
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(s.voice_states) v
                        WHERE @extschema@._voice_state_is_member(v, erase_member.user_id)));
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_voice_snapshots'; rows_changed := n; RETURN NEXT;

    UPDATE @extschema@.raw_scheduled_events e
       SET creator_id = NULL
     WHERE e.guild_id = erase_member.guild_id AND e.creator_id = erase_member.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_scheduled_events'; rows_changed := n; RETURN NEXT;

    -- Quarantined raw rows are kept whole, so they name members inside row_data too (a
    -- snapshot's voice states, an event's creator). Those that mention the member go whole:
    -- nothing is built from them, and a redacted copy would no longer be the row that came.
    DELETE FROM @extschema@.quarantine q
     WHERE q.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(q.row_data, erase_member.user_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'quarantine (row_data)'; rows_changed := n; RETURN NEXT;
END
$$;

-- ==== end of one builder framework

-- ==== export_member gives quarantined rows that name the member (issue 10: 15): sql/extension/privacy.sql
CREATE OR REPLACE FUNCTION export_member(guild_id bigint, user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[] := ARRAY[]::text[];
    member_table text;
    document jsonb;
BEGIN
    IF export_member.guild_id IS NULL OR export_member.user_id IS NULL THEN
        RAISE EXCEPTION 'export_member(guild_id => %, user_id => %): both are required', export_member.guild_id, export_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Every table with a (guild_id, user_id) pair, the same set erase_member() empties.
    FOR member_table IN
        SELECT t FROM @extschema@._member_tables() t WHERE t <> 'quarantine'
    LOOP
        parts := array_append(parts, format(
            '%L, (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)), ''[]'') FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2)',
            member_table, member_table));
    END LOOP;
    parts := array_append(parts, $part$'raw_voice_snapshots', (
        SELECT coalesce(jsonb_agg(jsonb_build_object('ingest_id', s.ingest_id, 'guild_id', s.guild_id,
                                                     'taken_at', s.taken_at, 'source', s.source,
                                                     'received_at', s.received_at, 'voice_state', e.v)
                                  ORDER BY s.taken_at, e.n), '[]')
          FROM @extschema@.raw_voice_snapshots s
          CROSS JOIN LATERAL (SELECT v, n FROM jsonb_array_elements(
                                  CASE jsonb_typeof(s.voice_states) WHEN 'array' THEN s.voice_states
                                       ELSE jsonb_build_array(s.voice_states) END) WITH ORDINALITY AS x(v, n)) e
         WHERE s.guild_id = $1 AND @extschema@._voice_state_is_member(e.v, $2))$part$);
    -- Rows set aside on arrival: the member's own, and those that name them inside row_data (a
    -- quarantined snapshot, the same set erase_member() deletes). A snapshot shows only the
    -- member's entries, as the stored snapshots do.
    parts := array_append(parts, $part$'quarantine', (
        SELECT coalesce(jsonb_agg(CASE WHEN q.user_id IS NULL AND q.row_data ? 'voice_states'
                   THEN to_jsonb(q) || jsonb_build_object('row_data', q.row_data || jsonb_build_object('voice_states', (
                            SELECT coalesce(jsonb_agg(e.v ORDER BY e.n), '[]')
                              FROM jsonb_array_elements(CASE jsonb_typeof(q.row_data -> 'voice_states')
                                                             WHEN 'array' THEN q.row_data -> 'voice_states'
                                                             ELSE jsonb_build_array(q.row_data -> 'voice_states') END)
                                   WITH ORDINALITY AS e(v, n)
                             WHERE @extschema@._voice_state_is_member(e.v, $2))))
                   ELSE to_jsonb(q) END ORDER BY q.quarantine_id), '[]')
          FROM @extschema@.quarantine q
         WHERE q.guild_id = $1 AND (q.user_id = $2 OR @extschema@._mentions_id(q.row_data, $2)))$part$);
    -- The member's pairs of shared voice time, from either side of the pair.
    parts := array_append(parts, $part$'voice_copresence_daily', (
        SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.day, p.user_a, p.user_b), '[]')
          FROM @extschema@.voice_copresence_daily p
         WHERE p.guild_id = $1 AND (p.user_a = $2 OR p.user_b = $2))$part$);
    parts := array_append(parts, $part$'raw_scheduled_events', (
        SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.observed_at, e.event_id), '[]')
          FROM @extschema@.raw_scheduled_events e WHERE e.guild_id = $1 AND e.creator_id = $2)$part$);
    -- The member's ET:Legacy rounds, through the GUIDs linked to them.
    parts := array_append(parts, $part$'et_player_rounds', (
        SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.round_id, p.guid), '[]')
          FROM @extschema@.et_player_rounds p
         WHERE p.guid IN (SELECT l.guid FROM @extschema@.et_guid_links l WHERE l.guild_id = $1 AND l.user_id = $2))$part$);
    EXECUTE format('SELECT jsonb_build_object(''guild_id'', $1, ''user_id'', $2, ''exported_at'', now(), ''tables'', jsonb_build_object(%s))',
                   array_to_string(parts, ', '))
       INTO document
      USING export_member.guild_id, export_member.user_id;
    RETURN document;
END
$$;
COMMENT ON FUNCTION export_member(bigint, bigint) IS
    'Everything stored about a member of a guild, raw and derived, as one JSON document (the GDPR right of access): {guild_id, user_id, exported_at, tables: {table: [rows]}} with every row of every table that has (guild_id, user_id), the member''s own entries of voice snapshots (others in the same snapshot are left out), their pairs of shared voice time (voice_copresence_daily), the scheduled events they created, the rows set aside in quarantine that are theirs or name them (a snapshot by their own entries), and their ET:Legacy rounds through linked GUIDs. Example: SELECT guildstats.export_member(guild_id => 1, user_id => 42);';

-- ==== end of export_member and quarantine

-- ==== second adversarial pass (issue 10, "Done when"): game-server garbage, team balancing, day ranges
-- A game server's connected time that is negative, not finite or over 7 days is treated as not
-- reported (it stopped build_game_sessions on every run); et_balance_teams takes at most 64 GUIDs;
-- activity_daily refuses infinite days and ranges over 100 years (_day_series); point amounts
-- beyond 10^15 and reasons over 1024 bytes are refused by raw_point_transactions (each stopped
-- build_rollups).
-- retention(max_offset => NULL) and retention_dn() with NULL or negative days are errors;
-- voice_top_partners(max_rows => NULL) gives every partner.
CREATE OR REPLACE FUNCTION @extschema@._game_sessions_from(servers text[], rebuild_from timestamptz[])
RETURNS SETOF game_sessions
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH scope AS (
        SELECT u.server, u.rebuild_from,
               coalesce((SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                          WHERE p.server = u.server AND p.polled_at < u.rebuild_from),
                        u.rebuild_from) AS read_from
          FROM unnest(_game_sessions_from.servers, _game_sessions_from.rebuild_from) AS u(server, rebuild_from)
    ), polls AS (
        SELECT p.server, p.polled_at, p.ok, s.rebuild_from,
               lag(p.polled_at) OVER w AS prev_poll_at,
               lead(p.polled_at) OVER w AS next_poll_at,
               lead(p.ok) OVER w AS next_ok
          FROM scope s
          JOIN @extschema@.raw_server_polls p ON p.server = s.server AND p.polled_at >= s.read_from
        WINDOW w AS (PARTITION BY p.server ORDER BY p.polled_at)
    ), sightings AS (
        SELECT p.server, x.name, p.polled_at, p.prev_poll_at, p.next_poll_at, p.next_ok, p.rebuild_from,
               x.connected_seconds
          FROM polls p
          CROSS JOIN LATERAL (
              -- A connected time that is negative, not finite or over a week is garbage from
              -- the server: treated as not reported (as Quake 3 does), since back-dating by it
              -- would overflow the interval and stop the builder, or put a join centuries back.
              SELECT r.name, max(r.connected_seconds) FILTER (WHERE r.connected_seconds BETWEEN 0 AND 604800) AS connected_seconds
                FROM @extschema@.raw_server_players r
               WHERE r.server = p.server AND r.polled_at = p.polled_at AND r.name <> ''
               GROUP BY r.name) x
         WHERE p.ok
    ), flagged AS (
        SELECT s.*,
               CASE WHEN lag(s.polled_at) OVER w IS NULL
                      OR lag(s.polled_at) OVER w IS DISTINCT FROM s.prev_poll_at
                      OR s.polled_at - lag(s.polled_at) OVER w > @extschema@.game_session_gap()
                      OR s.connected_seconds < lag(s.connected_seconds) OVER w
                    THEN 1 ELSE 0 END AS starts
          FROM sightings s
        WINDOW w AS (PARTITION BY s.server, s.name ORDER BY s.polled_at)
    ), numbered AS (
        SELECT f.*, sum(f.starts) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS visit,
               lead(f.starts) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS next_starts,
               lead(f.polled_at) OVER (PARTITION BY f.server, f.name ORDER BY f.polled_at) AS next_seen_at
          FROM flagged f
    ), visits AS (
        SELECT n.server, n.name, min(n.polled_at) AS first_seen, max(n.polled_at) AS last_seen,
               count(*)::integer AS polls, min(n.rebuild_from) AS rebuild_from,
               (array_agg(n.connected_seconds ORDER BY n.polled_at))[1] AS first_connected,
               (array_agg(n.next_poll_at ORDER BY n.polled_at DESC))[1] AS next_poll_at,
               (array_agg(n.next_ok ORDER BY n.polled_at DESC))[1] AS next_ok,
               (array_agg(n.next_seen_at ORDER BY n.polled_at DESC))[1] AS next_seen_at
          FROM numbered n
         GROUP BY n.server, n.name, n.visit
    ), ended AS (
        SELECT v.*,
               CASE WHEN v.next_poll_at IS NULL THEN 'open'
                    WHEN NOT v.next_ok THEN 'failed_poll'
                    WHEN v.next_poll_at - v.last_seen > @extschema@.game_session_gap() THEN 'silence'
                    WHEN v.next_seen_at = v.next_poll_at THEN 'reconnected'
                    ELSE 'left' END AS end_reason
          FROM visits v
         WHERE v.first_seen >= v.rebuild_from
    )
    SELECT e.server, e.name,
           greatest(e.first_seen - coalesce(make_interval(secs => e.first_connected), interval '0'),
                    (SELECT max(p.polled_at) FROM @extschema@.raw_server_polls p
                      WHERE p.server = e.server AND p.polled_at < e.first_seen AND p.ok)),
           CASE e.end_reason WHEN 'open' THEN NULL WHEN 'left' THEN e.next_poll_at ELSE e.last_seen END,
           e.first_seen, e.last_seen, e.polls, e.end_reason
      FROM ended e;
END;
COMMENT ON FUNCTION @extschema@._game_sessions_from(text[], timestamptz[]) IS
    'Internal to build_game_sessions(): the sessions of each server (servers[i]) whose first sighting is at or after rebuild_from[i], computed from the raw polls.';
COMMENT ON COLUMN @extschema@.game_sessions.joined_at IS 'First poll that listed the player, back-dated by the connected seconds it reported, but not before the latest answered poll before it; the first poll itself when the server does not report connected time (Quake 3) or reports an impossible one (negative, not finite or over 7 days).';

CREATE OR REPLACE FUNCTION @extschema@.et_balance_teams(guids text[])
RETURNS TABLE (team_a text[], team_b text[], names_a text[], names_b text[],
               win_probability double precision, method text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
DECLARE
    n        integer;
    mus      double precision[];
    sigmas   double precision[];
    ids      text[];
    best     bigint;
    picked   boolean[];
    sum_a    double precision := 0;
    sum_b    double precision := 0;
    size_a   integer := 0;
    i        integer;
    best_i   integer;
    best_j   integer;
BEGIN
    n := cardinality(guids);
    IF guids IS NULL OR n < 2 THEN
        RAISE EXCEPTION 'guildstats: et_balance_teams needs at least 2 GUIDs, got %', coalesce(n, 0);
    END IF;
    -- The swap search costs n^2 per swap: a long array would run for hours. No server holds
    -- more than 64 players (ET:Legacy's MAX_CLIENTS).
    IF n > 64 THEN
        RAISE EXCEPTION 'guildstats: et_balance_teams takes at most 64 GUIDs (a full server), got %', n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(guids) g WHERE g IS NULL) THEN
        RAISE EXCEPTION 'guildstats: et_balance_teams: guids contains NULL';
    END IF;
    IF (SELECT count(DISTINCT g) FROM unnest(guids) g) <> n THEN
        RAISE EXCEPTION 'guildstats: et_balance_teams: guids lists a GUID twice: %',
            (SELECT min(g) FROM unnest(guids) g GROUP BY g HAVING count(*) > 1 LIMIT 1);
    END IF;
    -- Unknown players get a new player's rating. Strongest first: the greedy pass wants it,
    -- and the exhaustive one then keeps the strongest player in team A.
    SELECT array_agg(u.guid ORDER BY coalesce(r.mu, 25.0) DESC, u.guid),
           array_agg(coalesce(r.mu, 25.0) ORDER BY coalesce(r.mu, 25.0) DESC, u.guid),
           array_agg(coalesce(r.sigma, 25.0 / 3) ORDER BY coalesce(r.mu, 25.0) DESC, u.guid)
      INTO ids, mus, sigmas
      FROM unnest(guids) u(guid) LEFT JOIN @extschema@.et_ratings r ON r.guid = u.guid;

    IF n <= 12 THEN
        -- Every split with player 1 in team A and sizes n/2 (rounded either way): at most
        -- 2^11 masks. Ties go to the lowest mask. The closest win chance is the closest sum of
        -- mu: Phi is monotonic, and its denominator sums every player's sigma^2 whatever the split.
        SELECT s.mask INTO best
        FROM generate_series(0, (1::bigint << n) - 1) s(mask),
             LATERAL (SELECT sum(mus[k]) FILTER (WHERE s.mask & (1::bigint << (k - 1)) <> 0) AS ma,
                             sum(mus[k]) FILTER (WHERE s.mask & (1::bigint << (k - 1)) = 0) AS mb,
                             count(*) FILTER (WHERE s.mask & (1::bigint << (k - 1)) <> 0) AS na
                      FROM generate_series(1, n) k) t
        WHERE s.mask & 1 = 1 AND t.na IN (n / 2, (n + 1) / 2)
        ORDER BY abs(t.ma - t.mb), s.mask
        LIMIT 1;
        picked := ARRAY(SELECT best & (1::bigint << (k - 1)) <> 0 FROM generate_series(1, n) k);
        method := 'exhaustive';
    ELSE
        -- Strongest first, each to the weaker side while it has room.
        picked := '{}';
        FOR i IN 1 .. n LOOP
            IF size_a < (n + 1) / 2 AND (sum_a <= sum_b OR i - 1 - size_a = n / 2) THEN
                picked := picked || true; sum_a := sum_a + mus[i]; size_a := size_a + 1;
            ELSE
                picked := picked || false; sum_b := sum_b + mus[i];
            END IF;
        END LOOP;
        -- Then swap the pair across the teams that narrows the gap most, while one does.
        LOOP
            SELECT x.i, x.j INTO best_i, best_j
            FROM (SELECT a.k AS i, b.k AS j,
                         abs(sum_a - sum_b - 2 * (mus[a.k] - mus[b.k])) AS gap
                  FROM generate_series(1, n) a(k), generate_series(1, n) b(k)
                  WHERE picked[a.k] AND NOT picked[b.k]) x
            WHERE x.gap < abs(sum_a - sum_b) - 1e-12
            ORDER BY x.gap, x.i, x.j
            LIMIT 1;
            EXIT WHEN NOT FOUND;
            picked[best_i] := false; picked[best_j] := true;
            sum_a := sum_a - mus[best_i] + mus[best_j];
            sum_b := sum_b - mus[best_j] + mus[best_i];
        END LOOP;
        method := 'greedy';
    END IF;
    SELECT array_agg(u.id ORDER BY u.id) FILTER (WHERE u.p),
           array_agg(u.id ORDER BY u.id) FILTER (WHERE NOT u.p),
           array_agg(coalesce(pl.name, u.id) ORDER BY u.id) FILTER (WHERE u.p),
           array_agg(coalesce(pl.name, u.id) ORDER BY u.id) FILTER (WHERE NOT u.p),
           @extschema@.et_win_probability(array_agg(u.m) FILTER (WHERE u.p), array_agg(u.s) FILTER (WHERE u.p),
                                          array_agg(u.m) FILTER (WHERE NOT u.p), array_agg(u.s) FILTER (WHERE NOT u.p))
      INTO team_a, team_b, names_a, names_b, win_probability
      FROM unnest(ids, mus, sigmas, picked) u(id, m, s, p)
      LEFT JOIN LATERAL (SELECT (array_agg(c.clean_name ORDER BY c.round_id DESC))[1] AS name
                           FROM @extschema@.et_player_rounds c WHERE c.guid = u.id) pl ON true;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.et_balance_teams(text[]) IS
    'Proposes two teams from the given GUIDs with the closest predicted win chance (et_ratings; a GUID without a rating counts as a new player): 2 to 64 GUIDs, each once; every split for up to 12 players; beyond, strongest first to the weaker side, then the best swaps while they narrow the gap (close, not always the best). Returns the GUIDs and latest names of each team, team A''s predicted win probability and the method. Example: SELECT * FROM guildstats.et_balance_teams(ARRAY[''AAAA0001'', ''BBBB0002'', ''CCCC0003'', ''DDDD0004'']);';


-- A caller's day range becomes one row per day: an infinite or far-off day would make the series
-- run until the disk holds no more temp files. Within 100 years, as economy_health() allows.
CREATE OR REPLACE FUNCTION @extschema@._day_series(caller text, from_day date, to_day date)
RETURNS SETOF date
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF NOT isfinite(from_day) OR NOT isfinite(to_day) OR to_day - from_day > 36600 THEN
        RAISE EXCEPTION '%: the days run from % to %, more than 100 years or not finite', caller, from_day, to_day
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give from_day and to_day as finite dates at most 100 years apart.';
    END IF;
    RETURN QUERY SELECT g::date FROM generate_series(from_day::timestamp, to_day::timestamp, interval '1 day') g;
END
$$;
COMMENT ON FUNCTION @extschema@._day_series(text, date, date) IS
    'Internal: every day from from_day to to_day (none when either is NULL or to_day comes first); an error naming the caller when a day is infinite or the days span more than 100 years (36,600 days).';

CREATE OR REPLACE FUNCTION @extschema@.activity_daily(guild_id bigint, from_day date DEFAULT NULL, to_day date DEFAULT NULL)
RETURNS TABLE (day date, dau bigint, wau bigint, mau bigint, dau_mau double precision,
               new_users bigint, returning_users bigint, churned_users bigint)
LANGUAGE sql STABLE
AS $$
    WITH zone AS (SELECT s.calendar_time_zone AS tz FROM @extschema@.settings_for(activity_daily.guild_id) s),
    active AS (
        SELECT DISTINCT e.user_id, (e.activity_at AT TIME ZONE zone.tz)::date AS d
        FROM @extschema@.activity_events e, zone
        WHERE e.guild_id = activity_daily.guild_id AND e.kind <> 'member'),
    marked AS (
        SELECT user_id, d, lead(d) OVER (PARTITION BY user_id ORDER BY d) AS next_d,
               min(d) OVER (PARTITION BY user_id) AS first_d
        FROM active),
    bounds AS (
        SELECT min(d) AS first_day, coalesce(activity_daily.from_day, min(d)) AS lo,
               coalesce(activity_daily.to_day, max(d)) AS hi FROM active),
    -- Each active day of a user opens an interval in which the user counts as active in the
    -- window ending on that day: [d, min(d + width, next active day)). Counting them is a
    -- running sum of +1 / -1 marks, linear in the number of user-days.
    marks AS (
        SELECT d AS day, 1 AS dau, 1 AS wau, 1 AS mau, (d = first_d)::int AS new_users, 0 AS churned
        FROM marked
        UNION ALL SELECT least(d + 7, coalesce(next_d, d + 7)), 0, -1, 0, 0, 0 FROM marked
        UNION ALL SELECT least(d + 30, coalesce(next_d, d + 30)), 0, 0, -1, 0, 0 FROM marked
        -- churned on d + 30: last seen on d and not in the 30 days after
        UNION ALL SELECT d + 30, 0, 0, 0, 0, 1 FROM marked WHERE next_d IS NULL OR next_d > d + 30),
    per_day AS (
        SELECT day, sum(dau) AS dau, sum(wau) AS wau, sum(mau) AS mau, sum(new_users) AS new_users,
               sum(churned) AS churned
        FROM marks GROUP BY day),
    running AS (
        SELECT g::date AS day, coalesce(p.dau, 0) AS dau,
               sum(coalesce(p.wau, 0)) OVER w AS wau, sum(coalesce(p.mau, 0)) OVER w AS mau,
               coalesce(p.new_users, 0) AS new_users, coalesce(p.churned, 0) AS churned
        FROM bounds b
        CROSS JOIN @extschema@._day_series('activity_daily', least(b.first_day, b.lo), b.hi) g
        LEFT JOIN per_day p ON p.day = g::date
        WINDOW w AS (ORDER BY g))
    SELECT r.day, r.dau::bigint, r.wau::bigint, r.mau::bigint,
           r.dau::double precision / nullif(r.mau, 0),
           r.new_users::bigint, (r.dau - r.new_users)::bigint, r.churned::bigint
    FROM running r, bounds b
    WHERE r.day >= b.lo
    ORDER BY r.day
$$;
COMMENT ON FUNCTION @extschema@.activity_daily(bigint, date, date) IS
    'Per calendar day of a guild (its calendar time zone), from activity_events (voice, messages, points; member joins and renames are not activity): dau, wau (7 days ending that day), mau (30 days), dau_mau (stickiness), new_users (first activity ever that day), returning_users (active that day, seen before), churned_users (last seen exactly 30 days earlier, not since). Days default to the first and last day with activity; the days from the earlier of from_day and the first day with activity to to_day must be finite and at most 100 years apart. Example: SELECT * FROM guildstats.activity_daily(1234, ''2026-03-01'', ''2026-03-31'');';


-- Point amounts beyond 10^15 either way and reasons over 1024 bytes: rows already stored go to
-- quarantine with the reason (health() counts them), then the table refuses new ones.
WITH moved AS (
    DELETE FROM @extschema@.raw_point_transactions t
     WHERE t.amount NOT BETWEEN -1000000000000000 AND 1000000000000000 OR octet_length(t.reason) > 1024
    RETURNING t.*
)
INSERT INTO @extschema@.quarantine (source_table, guild_id, user_id, row_data, row_hash, reason, quarantined_at)
SELECT 'raw_point_transactions', m.guild_id, m.user_id, f.fact, sha256(convert_to(f.fact::text, 'UTF8')),
       CASE WHEN m.amount NOT BETWEEN -1000000000000000 AND 1000000000000000
            THEN format('raw_point_transactions.amount = %s is beyond 10^15 either way (set aside by the upgrade to 0.2.0)', m.amount)
            ELSE format('raw_point_transactions.reason has %s bytes, more than 1024 (set aside by the upgrade to 0.2.0)', octet_length(m.reason))
       END,
       m.received_at
  FROM moved m
 CROSS JOIN LATERAL (SELECT to_jsonb(m) - ARRAY['ingest_id', 'received_at'] AS fact) f
ON CONFLICT (source_table, row_hash) DO NOTHING;
ALTER TABLE @extschema@.raw_point_transactions ADD CONSTRAINT raw_point_transactions_amount_bounded
    CHECK (amount BETWEEN -1000000000000000 AND 1000000000000000);
ALTER TABLE @extschema@.raw_point_transactions ADD CONSTRAINT raw_point_transactions_reason_length
    CHECK (octet_length(reason) <= 1024);
COMMENT ON COLUMN @extschema@.raw_point_transactions.amount IS 'Whole points: earned > 0, spent < 0. Refused (SQLSTATE 23514) beyond a quadrillion (10^15) either way, so that the rollups'' sums stay within bigint.';
COMMENT ON COLUMN @extschema@.raw_point_transactions.reason IS 'Why the points moved (e.g. daily, message, shop, transfer). At most 1024 bytes (a key of member_points_daily): a longer one is refused (SQLSTATE 23514).';
COMMENT ON TABLE @extschema@.quarantine IS
    'Raw rows set aside instead of stored: their own time lay further ahead of their arrival than future_tolerance_for(guild_id) (a skewed clock, a bad client), or the upgrade to 0.2.0 found them breaking a rule the raw tables now enforce (reason says which). The builders never see them; health() counts them. To keep one, correct it and INSERT row_data into source_table again. Timestamps outside [2000-01-01, 2100-01-01), point amounts beyond 10^15 and point reasons over 1024 bytes never get this far: the raw tables refuse them (SQLSTATE 23514).';

-- NULL and negative limits of retention() and retention_dn() are errors.
CREATE OR REPLACE FUNCTION @extschema@.retention(guild_id bigint, period text DEFAULT 'week',
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
COMMENT ON FUNCTION @extschema@.retention(bigint, text, text, text[], integer, numeric, text) IS
    'Retention cohort table of a guild for a heatmap (rows: cohort_start, cohort_size, period_offset, retained, rate, retained_or_later, rate_or_later). period: day, week or month in settings_for(guild_id).calendar_time_zone. cohort_by: first_activity (first activity in activity_events) or join (first join in raw_member_events). kinds: the activity_events kinds that count as activity (voice, message, points, member); default all but member, since a join date (Discord reports the original one, possibly years before tracking began) or a rename is not engagement. max_offset: the last period offset shown (default 365; 0 to 36525, NULL or anything else is an error), so that one outlier timestamp, years away, cannot turn the table into millions of rows. activity and min_activity make retention depth-weighted: activity is what is measured (events: rows of activity_events of the kinds, the default; voice_minutes: minutes in voice outside AFK, from the member_voice_daily rollup; rounds: ET:Legacy rounds played under the member''s GUIDs in et_guid_links, by the game server''s clock), and a member counts as retained in a period only with at least min_activity of it there (default NULL: any activity). The cohort is still the first period with any of that activity (or the join); the table reaches the last period in which somebody met the threshold. Example: SELECT * FROM guildstats.retention(1234, ''week'', min_activity => 30, activity => ''voice_minutes'');';

CREATE OR REPLACE FUNCTION @extschema@.retention_dn(guild_id bigint, days integer[] DEFAULT '{1,7,30,90}', kinds text[] DEFAULT NULL,
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
COMMENT ON FUNCTION @extschema@.retention_dn(bigint, integer[], text[], numeric, text) IS
    'Classic D1/D7/D30/D90 retention of a guild (days configurable): of the users whose first activity was at least N days before the last activity in the data (eligible_users), the share active exactly N calendar days after their first day (rate), and N days or later (rate_or_later). Each day must be between 0 and 36525 (NULL, negative or larger days are an error). min_activity and activity make it depth-weighted, as in retention(): active on a day means at least min_activity events, voice minutes or rounds that day. Example: SELECT * FROM guildstats.retention_dn(1234); SELECT * FROM guildstats.retention_dn(1234, min_activity => 30, activity => ''voice_minutes'');';


-- voice_top_partners(max_rows => NULL) gives every partner, not none.
CREATE OR REPLACE FUNCTION @extschema@.voice_top_partners(guild_id bigint, user_id bigint, from_day date DEFAULT NULL,
                                   to_day date DEFAULT NULL, max_rows integer DEFAULT 5)
RETURNS TABLE (partner_id bigint, partner_name text, shared_minutes double precision, days_together bigint)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT p.partner_id, m.display_name, p.seconds / 60.0, p.days
    FROM (SELECT x.partner_id, sum(x.shared_seconds) AS seconds, count(DISTINCT x.day) AS days
          FROM (SELECT d.user_b AS partner_id, d.shared_seconds, d.day FROM @extschema@.voice_copresence_daily d
                 WHERE d.guild_id = voice_top_partners.guild_id AND d.user_a = voice_top_partners.user_id
                   AND d.day >= coalesce(voice_top_partners.from_day, '-infinity')
                   AND d.day <= coalesce(voice_top_partners.to_day, 'infinity')
                UNION ALL
                SELECT d.user_a, d.shared_seconds, d.day FROM @extschema@.voice_copresence_daily d
                 WHERE d.guild_id = voice_top_partners.guild_id AND d.user_b = voice_top_partners.user_id
                   AND d.day >= coalesce(voice_top_partners.from_day, '-infinity')
                   AND d.day <= coalesce(voice_top_partners.to_day, 'infinity')) x
          GROUP BY x.partner_id) p
    LEFT JOIN @extschema@.members m ON m.guild_id = voice_top_partners.guild_id AND m.user_id = p.partner_id
    ORDER BY p.seconds DESC, p.partner_id
    -- greatest() skips a NULL: max_rows NULL would have answered no partner at all.
    LIMIT CASE WHEN voice_top_partners.max_rows IS NOT NULL THEN greatest(voice_top_partners.max_rows, 0) END;
END;
COMMENT ON FUNCTION @extschema@.voice_top_partners(bigint, bigint, date, date, integer) IS
    'A member''s top voice partners in a guild: the members they shared a (non-AFK) voice channel with most, with the shared minutes and the number of days together, between from_day and to_day inclusive (calendar days in the guild''s time zone; NULL: unbounded), most shared first, at most max_rows (NULL: all of them; 0 or less: none). partner_name is the latest display name, if any. Reads voice_copresence_daily. Example: SELECT * FROM guildstats.voice_top_partners(guild_id => 1, user_id => 42);';

-- ==== end of second adversarial pass (game-server garbage, team balancing, day ranges, point amounts, retention limits)

-- ==== settings have upper bounds (issue 10, "Done when"): sql/extension/settings.sql
-- An upgraded database with an absurd setting stops here, naming the constraint and the row's
-- value; correct the row (UPDATE guildstats.settings ...) and run ALTER EXTENSION again.
ALTER TABLE settings ADD CONSTRAINT settings_session_cap_at_most_a_year CHECK (session_cap <= interval '366 days');
ALTER TABLE settings ADD CONSTRAINT settings_event_grace_at_most_a_week CHECK (event_grace <= interval '7 days');
ALTER TABLE settings ADD CONSTRAINT settings_et_session_gap_at_most_30_days CHECK (et_session_gap <= interval '30 days');
ALTER TABLE settings ADD CONSTRAINT settings_et_min_rounds_at_most_100000 CHECK (et_min_rounds <= 100000);
ALTER TABLE settings ADD CONSTRAINT settings_outage_after_at_most_30_days CHECK (outage_after <= interval '30 days');
ALTER TABLE settings ADD CONSTRAINT settings_future_tolerance_at_most_a_year CHECK (future_tolerance <= interval '366 days');
ALTER TABLE settings ADD CONSTRAINT settings_game_session_gap_at_most_a_week CHECK (game_session_gap <= interval '7 days');
ALTER TABLE settings ADD CONSTRAINT settings_regular_min_minutes_at_most_a_year CHECK (regular_min_minutes <= 525600);
ALTER TABLE settings ADD CONSTRAINT settings_regular_window_days_at_most_10_years CHECK (regular_window_days <= 3660);

-- ==== end of settings upper bounds

-- ==== voice full rebuild speed (issue 13: 8): the sessions of a whole guild come as column
-- arrays unnested into the insert, and a full rebuild builds voice_sessions' indexes after
-- its rows when the caller owns the table.
CREATE FUNCTION @extschema@."_voice_sessionize_arrays"(
	"guild_id" bigint, /* i64 */
	"horizon" timestamp with time zone, /* TimestampWithTimeZone */
	"afk_channel_id" bigint, /* Option < i64 > */
	"ignored_channel_ids" bigint[], /* :: std :: option :: Option < Vec < Option < i64 > > > */
	"session_cap" interval, /* Interval */
	"outage_after" interval /* Interval */
) RETURNS TABLE (
	"users" bigint,  /* i64 */
	"user_id" bigint[],  /* Vec < i64 > */
	"channel_id" bigint[],  /* Vec < i64 > */
	"started_at" timestamp with time zone[],  /* Vec < TimestampWithTimeZone > */
	"ended_at" timestamp with time zone[],  /* Vec < Option < TimestampWithTimeZone > > */
	"start_reason" TEXT[],  /* Vec < & '_ str > */
	"end_reason" TEXT[],  /* Vec < Option < & '_ str > > */
	"is_afk" bool[],  /* Vec < bool > */
	"capped" bool[],  /* Vec < bool > */
	"self_mute_seconds" double precision[],  /* Vec < f64 > */
	"self_deaf_seconds" double precision[]  /* Vec < f64 > */
)
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'voice_sessionize_arrays_wrapper';
COMMENT ON FUNCTION @extschema@._voice_sessionize_arrays(bigint, timestamptz, bigint, bigint[], interval, interval) IS
    'Internal to build_voice_sessions(): the voice sessions of a whole guild, as _voice_sessionize(...) with users NULL gives them, in one row: the number of distinct users, then one array per column, element i of each making session i. A full rebuild unnests them into its insert. Writes nothing.';

-- Rebuilds one guild (or some of its users) and reports what changed. Internal.
CREATE OR REPLACE FUNCTION @extschema@._voice_write_sessions(guild_id bigint, horizon timestamptz,
                                      users bigint[], dirty_from timestamptz[],
                                      OUT users_rebuilt bigint, OUT sessions_opened bigint,
                                      OUT sessions_closed bigint, OUT sessions_updated bigint,
                                      OUT sessions_removed bigint, OUT changed_from timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g       bigint := _voice_write_sessions.guild_id;
    s       record;
    old     @extschema@.voice_sessions[];
    restart_users bigint[];
    restart_at    timestamptz[];
    marks_from    timestamptz;
    index_ddl     text[];
    drop_ddl      text[];
    ddl           text;
    bulk          boolean;
    a_user        bigint[];
    a_channel     bigint[];
    a_start       timestamptz[];
    a_end         timestamptz[];
    a_start_reason text[];
    a_end_reason  text[];
    a_afk         boolean[];
    a_capped      boolean[];
    a_mute        double precision[];
    a_deaf        double precision[];
BEGIN
    SELECT * INTO s FROM @extschema@.settings_for(g);
    IF users IS NULL THEN
        -- The whole guild.
        DELETE FROM @extschema@.voice_sessions v WHERE v.guild_id = g;
        -- Into an empty table that this transaction already holds exclusively (the TRUNCATE of
        -- a full rebuild), the rows go in without their indexes, which are built afterwards
        -- from all of them at once: that costs a fraction of maintaining them row by row. No
        -- other transaction can see the table in between. Only a role that owns the table may
        -- drop and create its indexes; any other caller writes through them as before.
        SELECT coalesce(array_agg(CASE WHEN c.oid IS NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid)
                                       ELSE format('ALTER TABLE @extschema@.voice_sessions ADD CONSTRAINT %I %s',
                                                   c.conname, pg_catalog.pg_get_constraintdef(c.oid)) END
                                  ORDER BY x.relname), '{}'),
               coalesce(array_agg(CASE WHEN c.oid IS NULL THEN format('DROP INDEX @extschema@.%I', x.relname)
                                       ELSE format('ALTER TABLE @extschema@.voice_sessions DROP CONSTRAINT %I', c.conname) END
                                  ORDER BY x.relname), '{}')
          INTO index_ddl, drop_ddl
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid
          LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
         WHERE i.indrelid = '@extschema@.voice_sessions'::regclass;
        bulk := cardinality(index_ddl) > 0
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                         WHERE l.locktype = 'relation' AND l.relation = '@extschema@.voice_sessions'::regclass
                           AND l.pid = pg_catalog.pg_backend_pid() AND l.mode = 'AccessExclusiveLock' AND l.granted)
            AND pg_catalog.pg_has_role((SELECT t.relowner FROM pg_catalog.pg_class t
                                         WHERE t.oid = '@extschema@.voice_sessions'::regclass), 'USAGE')
            -- A comment on an index or its constraint would not survive the drop.
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                             LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                            WHERE i.indrelid = '@extschema@.voice_sessions'::regclass
                              AND (pg_catalog.obj_description(i.indexrelid, 'pg_class') IS NOT NULL
                                   OR pg_catalog.obj_description(c.oid, 'pg_constraint') IS NOT NULL))
            AND NOT EXISTS (SELECT 1 FROM @extschema@.voice_sessions);
        IF bulk THEN
            FOREACH ddl IN ARRAY drop_ddl LOOP
                EXECUTE ddl;
            END LOOP;
        END IF;
        -- The sessions come as one row of column arrays that the insert unnests in its select
        -- list: returned a row at a time, or read from a function in FROM (which stores its
        -- whole result first), they cost more than the writing itself.
        SELECT (a.x).users, (a.x).user_id, (a.x).channel_id, (a.x).started_at, (a.x).ended_at,
               (a.x).start_reason, (a.x).end_reason, (a.x).is_afk, (a.x).capped,
               (a.x).self_mute_seconds, (a.x).self_deaf_seconds
          INTO users_rebuilt, a_user, a_channel, a_start, a_end, a_start_reason, a_end_reason,
               a_afk, a_capped, a_mute, a_deaf
          FROM (SELECT @extschema@._voice_sessionize_arrays(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                            s.session_cap, s.outage_after) AS x
                OFFSET 0) a;
        INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
        SELECT g, unnest(a_user), unnest(a_channel), unnest(a_start), unnest(a_end), unnest(a_end_reason),
               unnest(a_afk), unnest(a_start_reason), unnest(a_capped), unnest(a_mute), unnest(a_deaf);
        GET DIAGNOSTICS sessions_opened = ROW_COUNT;
        IF bulk THEN
            FOREACH ddl IN ARRAY index_ddl LOOP
                EXECUTE ddl;
            END LOOP;
        END IF;
        sessions_closed := 0; sessions_updated := 0; sessions_removed := 0;
        changed_from := '-infinity';
        RETURN;
    END IF;

    -- Each touched user is walked again from their last leave before the earliest instant the
    -- new rows touch: after a leave the user is out of voice whatever came before, so the
    -- walk can restart there from an empty state. Their sessions from that leave on are
    -- replaced. (Restarting at the touched instant itself would not do: the user may be in a
    -- session there, even one an outage made the old walk drop.) A user who never left starts
    -- at their first observation: their first event or, for one a snapshot listed first, their
    -- first session (a listing that opened none left them out of voice, as if unseen).
    --
    -- One index probe per user (two for a user who never left); none reads the history.
    SELECT array_agg(a.user_id ORDER BY a.user_id), array_agg(a.restart ORDER BY a.user_id)
      INTO restart_users, restart_at
      FROM (SELECT t.user_id, r.restart
              FROM (SELECT x.user_id, min(x.at) AS touched_at
                      FROM unnest(users, dirty_from) AS x(user_id, at)
                     GROUP BY x.user_id) t
              CROSS JOIN LATERAL (
                  SELECT coalesce((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e
                                    WHERE e.guild_id = g AND e.user_id = t.user_id
                                      AND e.channel_id IS NULL AND e.event_ts < t.touched_at),
                                  least((SELECT min(e.event_ts) FROM @extschema@.raw_voice_events e
                                          WHERE e.guild_id = g AND e.user_id = t.user_id),
                                        (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                          WHERE v.guild_id = g AND v.user_id = t.user_id),
                                        t.touched_at)) AS restart) r) a;
    restart_users := coalesce(restart_users, '{}');
    restart_at := coalesce(restart_at, '{}');

    -- By row address, each user's sessions found through the primary key: a join the planner
    -- may turn into a scan of the whole table would cost the history.
    WITH removed AS (
        DELETE FROM @extschema@.voice_sessions v
        WHERE v.ctid = ANY (ARRAY(
            SELECT d.ctid
              FROM unnest(restart_users, restart_at) AS r(user_id, restart)
              CROSS JOIN LATERAL (SELECT o.ctid FROM @extschema@.voice_sessions o
                                   WHERE o.guild_id = g AND o.user_id = r.user_id AND o.started_at >= r.restart
                                  OFFSET 0) d))
        RETURNING v.*
    )
    SELECT coalesce(array_agg(d), '{}') INTO old FROM removed d;

    -- Guild-wide marks (heartbeats, snapshots) matter to a user only while they are in a
    -- channel, so the walk needs them from the user's first entry after the restart, not from
    -- the restart: a user back after months away needs the marks since their return, not the
    -- months. That entry is an event entering a channel (_voice_sessionize finds the first
    -- among the events it reads), an old session (a snapshot listing that opened one: the
    -- sessions just removed are those from the restarts on), or comes at the touched instant.
    marks_from := least((SELECT min(x.at) FROM unnest(dirty_from) AS x(at)),
                        (SELECT min(o.started_at) FROM unnest(old) o));

    users_rebuilt := coalesce(cardinality(restart_users), 0);

    WITH fresh AS (
        INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
        SELECT g, n.user_id, n.channel_id, n.started_at, n.ended_at, n.end_reason,
               n.is_afk, n.start_reason, n.capped, n.self_mute_seconds, n.self_deaf_seconds
        FROM @extschema@._voice_sessionize(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                           s.session_cap, s.outage_after, restart_users, restart_at, marks_from) n
        RETURNING *
    ), compared AS (
        SELECT f.started_at AS new_start, f.ended_at AS new_end, o.started_at AS old_start, o.ended_at AS old_end,
               (f.*)::text IS DISTINCT FROM (o.*)::text AS changed
        FROM fresh f
        LEFT JOIN unnest(old) o ON o.user_id = f.user_id AND o.started_at = f.started_at
    )
    SELECT count(*) FILTER (WHERE old_start IS NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND old_end IS NULL AND new_end IS NOT NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND changed AND NOT (old_end IS NULL AND new_end IS NOT NULL)),
           cardinality(old) - count(old_start),
           least(min(new_start) FILTER (WHERE old_start IS NULL OR changed),
                 (SELECT min(o.started_at) FROM unnest(old) o
                   WHERE NOT EXISTS (SELECT 1 FROM compared c WHERE c.old_start = o.started_at AND c.new_start = o.started_at
                                       AND NOT c.changed)))
      INTO sessions_opened, sessions_closed, sessions_updated, sessions_removed, changed_from
      FROM compared;
END
$$;
COMMENT ON FUNCTION @extschema@._voice_write_sessions(bigint, timestamptz, bigint[], timestamptz[]) IS
    'Internal to build_voice_sessions(): rewrites the sessions of a whole guild (users NULL) or of the listed users from their last leave before dirty_from on, counts what changed, and returns the earliest start of a changed session.';

-- ==== end of voice full rebuild speed

-- ==== command speed (issue 14, item 4): a narrow covering index of player rounds for the
-- ==== commands' reads; command_find_player and command_stats read the counted rounds once and only
-- ==== the columns they use; command_server finds who is in voice from the guild's links.
-- ==== Same statements as sql/extension/commands.sql.
CREATE INDEX et_player_rounds_totals_idx ON et_player_rounds (guid, clean_name)
    INCLUDE (round_id, is_bot, kills, deaths, damage_given, time_played_seconds, gibs, hits, shots,
             headshots, revives_given, xp);
COMMENT ON INDEX et_player_rounds_totals_idx IS
    'Covers what the command functions and et_leaderboard read of a player round (GUID, name, bot flag, the summed numbers), so that they scan it instead of the wide rows.';
CREATE OR REPLACE FUNCTION command_find_player(name text)
RETURNS TABLE (guid text, player_name text, rounds integer, last_seen timestamp, match text, score double precision)
LANGUAGE plpgsql STABLE
AS $$
-- The tiers are tried in order and the first that finds anybody answers: an exact name beats a
-- prefix, a prefix beats a substring, a substring beats a similar spelling. No user text ever
-- reaches LIKE or a regular expression, so '%', '_' and backslashes are plain characters.
DECLARE
    wanted text := lower(btrim(@extschema@.et_clean_name(name)));
BEGIN
    IF wanted IS NULL OR wanted = '' OR length(wanted) > 64 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH named AS MATERIALIZED (
        -- One pass over the counted rounds: each GUID's names as written, with their rounds,
        -- last round and whether a human (not a bot) used them; everything below reads this.
        SELECT p.guid, p.clean_name, count(*)::integer AS rounds, max(p.saved_at) AS last_seen,
               bool_or(NOT p.is_bot) AS human
        FROM @extschema@.et_counted_player_rounds p
        GROUP BY p.guid, p.clean_name
    ), names AS MATERIALIZED (
        SELECT DISTINCT n.guid, lower(n.clean_name) AS used FROM named n WHERE n.human
    ), tiered AS MATERIALIZED (
        SELECT n.guid, n.used,
               CASE WHEN n.used = wanted THEN 1
                    WHEN left(n.used, length(wanted)) = wanted THEN 2
                    WHEN strpos(n.used, wanted) > 0 THEN 3
                    ELSE 4 END AS tier
        FROM names n
    ), typed AS (
        SELECT DISTINCT substr(wanted, i, 2) AS piece FROM generate_series(1, length(wanted) - 1) i
    ), alike AS MATERIALIZED (
        -- Only when no name contains the typed one (a one-time filter: otherwise not computed):
        -- the Dice coefficient of the two names' sets of two-character pieces,
        -- 2 |A and B| / (|A| + |B|); "sebastain" finds "sebastian" with 0.625.
        SELECT pc.guid,
               2.0 * count(*) FILTER (WHERE pc.piece IN (SELECT t.piece FROM typed t))
                   / (count(*) + (SELECT count(*) FROM typed)) AS score
        FROM (SELECT DISTINCT n.guid, n.used, substr(n.used, i, 2) AS piece
              FROM names n, generate_series(1, length(n.used) - 1) i
              WHERE NOT EXISTS (SELECT 1 FROM tiered t WHERE t.tier < 4)) pc
        GROUP BY pc.guid, pc.used
    ), matched AS (
        SELECT t.guid, min(t.tier) AS tier, NULL::double precision AS score
        FROM tiered t
        WHERE t.tier < 4 AND t.tier = (SELECT min(t2.tier) FROM tiered t2)
        GROUP BY t.guid
        UNION ALL
        SELECT sm.guid, 4, max(sm.score) FROM alike sm WHERE sm.score >= 0.5 GROUP BY sm.guid
    )
    SELECT w.guid, pl.name, pl.rounds, pl.last_seen,
           (ARRAY['exact', 'prefix', 'substring', 'similar'])[w.tier], w.score
    FROM matched w
    JOIN (SELECT n.guid, (array_agg(n.clean_name ORDER BY n.last_seen DESC))[1] AS name,
                 sum(n.rounds)::integer AS rounds, max(n.last_seen) AS last_seen
          FROM named n
          WHERE n.guid IN (SELECT m.guid FROM matched m)
          GROUP BY n.guid) pl ON pl.guid = w.guid
    ORDER BY w.score DESC NULLS LAST, pl.rounds DESC, w.guid;
END
$$;
CREATE OR REPLACE FUNCTION command_stats(guild_id bigint, player text DEFAULT NULL, user_id bigint DEFAULT NULL,
                              as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    at_time timestamptz := coalesce(as_of, now());
    cfg record;
    found_guid text;
    linked_user bigint;
    problem text;
    candidates jsonb;
    local_now timestamp;
    answer jsonb;
BEGIN
    SELECT * INTO cfg FROM @extschema@.command_settings_for(command_stats.guild_id);
    local_now := at_time AT TIME ZONE cfg.calendar_time_zone;
    IF command_stats.user_id IS NULL THEN
        problem := @extschema@._command_name_problem(player);
        IF problem IS NOT NULL THEN
            RETURN @extschema@._command_error(problem);
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds) THEN
        RETURN @extschema@._command_error('No ET:Legacy rounds have been imported yet.');
    END IF;
    IF command_stats.user_id IS NOT NULL THEN
        SELECT l.guid INTO found_guid
          FROM @extschema@.et_guid_links l
          LEFT JOIN LATERAL (SELECT count(*) AS n FROM @extschema@.et_counted_player_rounds p WHERE p.guid = l.guid) c ON true
         WHERE l.guild_id = command_stats.guild_id AND l.user_id = command_stats.user_id
         ORDER BY c.n DESC, l.guid LIMIT 1;
        IF found_guid IS NULL THEN
            RETURN @extschema@._command_error('This member has not linked an ET:Legacy GUID yet: use /link.');
        END IF;
    ELSE
        SELECT jsonb_agg(jsonb_build_object('name', f.player_name, 'guid', f.guid, 'rounds', f.rounds)
                         ORDER BY f.score DESC NULLS LAST, f.rounds DESC, f.guid), min(f.guid)
          INTO candidates, found_guid
          FROM (SELECT * FROM @extschema@.command_find_player(player) LIMIT 10) f;
        IF candidates IS NULL THEN
            RETURN @extschema@._command_error(format('No ET:Legacy player is called anything like "%s".', left(player, 64)));
        ELSIF jsonb_array_length(candidates) > 1 THEN
            RETURN @extschema@._command_error(format('Several players match "%s": pick one.', left(player, 64)),
                                              jsonb_build_object('candidates', candidates));
        END IF;
    END IF;
    SELECT l.user_id INTO linked_user FROM @extschema@.et_guid_links l
     WHERE l.guid = found_guid AND l.guild_id = command_stats.guild_id;

    WITH mine AS (
        -- Only the columns used: a player round carries its weapon stats too, many times wider.
        SELECT p.clean_name, p.saved_at, p.et_session_id, p.kills, p.deaths, p.damage_given,
               p.time_played_seconds, p.gibs
        FROM @extschema@.et_counted_player_rounds p WHERE p.guid = found_guid
    ), split AS (
        SELECT m.saved_at >= local_now - interval '30 days' AS recent, count(*) AS rounds,
               sum(m.kills) AS kills, sum(m.deaths) AS deaths, sum(m.damage_given) AS damage,
               sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL) AS damage_seconds
        FROM mine m GROUP BY 1
    ), sessions AS (
        SELECT m.et_session_id, min(m.saved_at) AS first_round,
               sum(m.kills) AS kills, sum(m.deaths) AS deaths, sum(m.damage_given) AS damage,
               sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL) AS damage_seconds
        FROM mine m GROUP BY m.et_session_id ORDER BY min(m.saved_at) DESC LIMIT 20
    ), ranked_players AS (
        SELECT p.guid, sum(p.kills)::double precision AS kills,
               sum(p.damage_given) * 60.0 / nullif(sum(p.time_played_seconds) FILTER (WHERE p.damage_given IS NOT NULL), 0) AS dpm,
               CASE WHEN sum(p.deaths) = 0 THEN sum(p.kills)::double precision
                    ELSE sum(p.kills)::double precision / sum(p.deaths) END AS kd
        FROM @extschema@.et_counted_player_rounds p
        WHERE NOT p.is_bot
        GROUP BY p.guid
        HAVING count(*) >= cfg.top_min_rounds
    ), metric_values AS (
        SELECT mt.metric, mt.ord, rp.guid,
               CASE mt.metric WHEN 'kills' THEN rp.kills WHEN 'dpm' THEN rp.dpm ELSE rp.kd END AS v
        FROM unnest(ARRAY['kills', 'dpm', 'kd']) WITH ORDINALITY AS mt(metric, ord)
        CROSS JOIN ranked_players rp
    ), ranks AS (
        -- As et_leaderboard ranks: 1 + the players with a higher value; null when not ranked.
        SELECT a.metric, a.ord, a.of,
               CASE WHEN a.mine IS NOT NULL THEN 1 + (SELECT count(*) FROM metric_values b WHERE b.metric = a.metric AND b.v > a.mine) END AS rank
        FROM (SELECT mv.metric, mv.ord, count(mv.v) AS of, max(mv.v) FILTER (WHERE mv.guid = found_guid) AS mine
              FROM metric_values mv GROUP BY mv.metric, mv.ord) a
    ), voice AS (
        SELECT (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id,
                    @extschema@._command_period_start(command_stats.guild_id, 'week', at_time), at_time) v
                 WHERE v.user_id = linked_user) AS week,
               (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id,
                    @extschema@._command_period_start(command_stats.guild_id, 'month', at_time), at_time) v
                 WHERE v.user_id = linked_user) AS month,
               (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id, '-infinity', at_time) v
                 WHERE v.user_id = linked_user) AS total
    )
    SELECT jsonb_build_object(
        'ok', true,
        'player', jsonb_build_object('name', (SELECT (array_agg(m.clean_name ORDER BY m.saved_at DESC))[1] FROM mine m),
                                     'guid', found_guid, 'user_id', linked_user::text),
        'totals', (SELECT jsonb_build_object(
                        'rounds', count(*), 'kills', sum(m.kills), 'deaths', sum(m.deaths),
                        'kd', @extschema@._command_ratio(sum(m.kills), sum(m.deaths)),
                        'dpm', @extschema@._command_dpm(sum(m.damage_given), sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL)),
                        'damage_given', sum(m.damage_given), 'gibs', sum(m.gibs),
                        'time_played_s', sum(m.time_played_seconds))
                   FROM mine m),
        'form', jsonb_build_object(
                    'last_30_days', (SELECT jsonb_build_object('rounds', coalesce(max(s.rounds), 0),
                                        'kd', @extschema@._command_ratio(max(s.kills), max(s.deaths)),
                                        'dpm', @extschema@._command_dpm(max(s.damage), max(s.damage_seconds)))
                                     FROM split s WHERE s.recent),
                    'before', (SELECT jsonb_build_object('rounds', coalesce(max(s.rounds), 0),
                                        'kd', @extschema@._command_ratio(max(s.kills), max(s.deaths)),
                                        'dpm', @extschema@._command_dpm(max(s.damage), max(s.damage_seconds)))
                               FROM split s WHERE NOT s.recent)),
        'voice_hours', CASE WHEN linked_user IS NOT NULL THEN
                           (SELECT jsonb_build_object('week', round(coalesce(v.week, 0)::numeric / 3600, 1)::double precision,
                                                      'month', round(coalesce(v.month, 0)::numeric / 3600, 1)::double precision,
                                                      'all', round(coalesce(v.total, 0)::numeric / 3600, 1)::double precision) FROM voice v) END,
        'events_attended', CASE WHEN linked_user IS NOT NULL THEN
                               (SELECT count(*) FROM @extschema@.event_attendance a
                                 WHERE a.guild_id = command_stats.guild_id AND a.user_id = linked_user) END,
        'ranks', (SELECT jsonb_agg(jsonb_build_object('metric', r.metric, 'rank', r.rank, 'of', r.of) ORDER BY r.ord)
                  FROM ranks r),
        'sessions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'session_id', s.et_session_id, 'date', s.first_round::date,
                        'kills', s.kills, 'deaths', s.deaths,
                        'kd', @extschema@._command_ratio(s.kills, s.deaths),
                        'dpm', @extschema@._command_dpm(s.damage, s.damage_seconds))
                    ORDER BY s.first_round) FROM sessions s), '[]'))
      INTO answer;
    RETURN answer;
END
$$;
CREATE OR REPLACE FUNCTION command_server(guild_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    servers jsonb;
BEGIN
    -- Who is in voice: an open, non-AFK voice session of a member linked to a GUID that used
    -- the name the server lists (colour codes stripped; A2S and q3 give no ids).
    WITH latest AS (
        SELECT DISTINCT ON (p.server) p.*
        FROM @extschema@.raw_server_polls p
        ORDER BY p.server, p.polled_at DESC
    ), in_voice AS (
        -- From the guild's links to their GUIDs' rounds (by the guid index), not from every
        -- round played: a guild links far fewer GUIDs than the servers have seen.
        SELECT DISTINCT ON (lower(n.clean_name)) lower(n.clean_name) AS name, l.user_id
        FROM @extschema@.et_guid_links l
        JOIN @extschema@.et_player_rounds n ON n.guid = l.guid AND NOT n.is_bot
        WHERE l.guild_id = command_server.guild_id
        ORDER BY lower(n.clean_name), l.user_id
    ), listed AS (
        SELECT sp.server, sp.polled_at, sp.player_index, @extschema@.et_clean_name(sp.name) AS name,
               sp.score, sp.ping_ms, iv.user_id,
               EXISTS (SELECT 1 FROM @extschema@.voice_sessions v
                        WHERE v.guild_id = command_server.guild_id AND v.user_id = iv.user_id
                          AND v.ended_at IS NULL AND NOT v.is_afk) AS in_voice
        FROM latest la
        JOIN @extschema@.raw_server_players sp ON sp.server = la.server AND sp.polled_at = la.polled_at
        LEFT JOIN in_voice iv ON iv.name = lower(@extschema@.et_clean_name(sp.name))
    )
    SELECT jsonb_agg(jsonb_build_object(
               'server', la.server, 'name', @extschema@.et_clean_name(la.server_name), 'map', la.map,
               'polled_at', la.polled_at, 'ok', la.ok, 'error', la.error, 'max_players', la.max_players,
               'players', coalesce((SELECT jsonb_agg(jsonb_build_object(
                               'name', li.name, 'score', li.score, 'ping', li.ping_ms,
                               'in_voice', li.in_voice, 'user_id', li.user_id::text)
                           ORDER BY li.score DESC NULLS LAST, li.player_index)
                           FROM listed li WHERE li.server = la.server), '[]'))
           ORDER BY la.server)
      INTO servers
      FROM latest la;
    IF servers IS NULL THEN
        RETURN @extschema@._command_error('No game server has been polled yet.');
    END IF;
    RETURN jsonb_build_object('ok', true, 'servers', servers);
END
$$;
-- ==== end of command speed

-- ==== BI speed (issue 11: 6): economy balances kept between builds, point and member-status rollups for charts, health() cheap on a flood of quarantined rows ====
-- build_rollups() walks the economy on from member_point_balances instead of summing the whole
-- ledger for the opening balances: an incremental build reads only the days it rewrites. The
-- earn vs spend by type and top earners / spenders charts read two small rollups of the flows.
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

CREATE FUNCTION "_economy_health_continued"(
	"guild_id" bigint,
	"from_day" date,
	"to_day" date,
	"streak_before" INT
) RETURNS TABLE (
	"day" date,
	"circulation" bigint,
	"earned" bigint,
	"spent" bigint,
	"net" bigint,
	"accounts" bigint,
	"users_with_points" bigint,
	"median_balance" double precision,
	"top1_share" double precision,
	"gini" double precision,
	"inflation" double precision,
	"negative_streak" INT,
	"alert_inflation" bool,
	"alert_net_negative" bool,
	"alert_gini" bool,
	"alerts" TEXT[]
)
STRICT STABLE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', '_economy_health_continued_wrapper';
COMMENT ON FUNCTION _economy_health_continued(bigint, date, date, integer) IS
    'Internal to build_rollups(): the rows of economy_health() from from_day to to_day, walked on from member_point_balances (the balances at the end of the day before from_day) and streak_before (that day''s negative_streak) over the flows of member_points_daily.';

CREATE OR REPLACE FUNCTION _rollup_dashboards(guild_id bigint, tz text, horizon timestamptz, voice_from timestamptz,
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
    'Internal to build_rollups(): refreshes one guild''s dashboard rollups (chat_channel_daily, chat_activity_5min, guild_voice_hourly, guild_activity_daily, member_points_daily, guild_points_reason_daily, member_points_monthly, economy_daily with member_point_balances) from the first instant each input changed (NULL: unchanged), in the guild''s time zone tz, open voice sessions counted up to horizon.';

CREATE OR REPLACE FUNCTION _build_rollups_plan(claims jsonb, full boolean)
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

CREATE OR REPLACE FUNCTION _build_rollups_step(guild bigint, claims jsonb, full boolean)
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
    DELETE FROM @extschema@.voice_session_changes c
     WHERE c.consumer = 'build_rollups' AND c.guild_id = _build_rollups_step.guild;
    RETURN jsonb_build_object('guilds_refreshed', 1, 'daily_rows', daily_rows, 'weekly_rows', weekly_rows,
                              'monthly_rows', monthly_rows);
END
$$;
COMMENT ON FUNCTION _build_rollups_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_rollups (see guildstats.builders): refreshes one guild''s member rollups (member_voice_daily, member_engagement_weekly, member_monthly_status with its counts in guild_monthly_status) and dashboard rollups from the first instant each of their inputs changed on.';

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

-- The new rollups start from what the older ones hold (member_point_balances is rebuilt from
-- member_points_daily by the next build that needs it).
INSERT INTO guild_monthly_status (guild_id, month, was_active, is_new, members)
SELECT s.guild_id, s.month, s.was_active,
       s.month = (SELECT min(x.month) FROM member_monthly_status x WHERE x.guild_id = s.guild_id AND x.user_id = s.user_id),
       count(*)
FROM member_monthly_status s GROUP BY 1, 2, 3, 4;
INSERT INTO guild_points_reason_daily (guild_id, day, reason, earned, spent, transactions)
SELECT p.guild_id, p.day, p.reason, sum(p.earned), sum(p.spent), sum(p.transactions)
FROM member_points_daily p GROUP BY 1, 2, 3;
INSERT INTO member_points_monthly (guild_id, month, user_id, earned, spent, transactions)
SELECT p.guild_id, date_trunc('month', p.day)::date, p.user_id, sum(p.earned), sum(p.spent), sum(p.transactions)
FROM member_points_daily p GROUP BY 1, 2, 3;

-- health() counts quarantined rows up to 100,000 per raw table.
CREATE OR REPLACE FUNCTION health()
RETURNS TABLE (check_name text, severity text, status text, detail text)
LANGUAGE sql STABLE
AS $$
    -- The latest arrival is the row with the highest ingest_id (arrival order): one step down
    -- the primary key instead of reading every received_at of tables of millions of rows.
    WITH latest AS (
        SELECT 'raw_heartbeats' AS source_table,
               (SELECT t.received_at FROM @extschema@.raw_heartbeats t ORDER BY t.ingest_id DESC LIMIT 1) AS last_row
        UNION ALL SELECT 'raw_voice_events',
               (SELECT t.received_at FROM @extschema@.raw_voice_events t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_messages',
               (SELECT t.received_at FROM @extschema@.raw_messages t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_member_events',
               (SELECT t.received_at FROM @extschema@.raw_member_events t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_server_polls',
               (SELECT t.received_at FROM @extschema@.raw_server_polls t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_point_transactions',
               (SELECT t.received_at FROM @extschema@.raw_point_transactions t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_et_stats_files',
               (SELECT t.received_at FROM @extschema@.raw_et_stats_files t ORDER BY t.ingest_id DESC LIMIT 1)),
    freshness AS (
        SELECT 'freshness: ' || source_table AS check_name,
               CASE WHEN source_table IN ('raw_heartbeats', 'raw_server_polls') THEN 'critical' ELSE 'warning' END AS severity,
               CASE WHEN last_row IS NULL THEN 'no data'
                    WHEN now() - last_row > CASE WHEN source_table IN ('raw_heartbeats', 'raw_server_polls')
                                                 THEN interval '15 minutes' ELSE interval '1 day' END THEN 'stale'
                    ELSE 'ok' END AS status,
               coalesce('last row received ' || to_char(last_row AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC',
                        'no rows yet') AS detail
        FROM latest),
    beats AS (
        SELECT 'heartbeat: ' || source || coalesce(' guild ' || guild_id, '') AS check_name, 'critical' AS severity,
               CASE WHEN now() - max(beat_at) > interval '5 minutes' THEN 'missing' ELSE 'ok' END AS status,
               'last beat ' || to_char(max(beat_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS detail
        FROM @extschema@.raw_heartbeats GROUP BY source, guild_id),
    et AS (
        SELECT 'et files: failed imports' AS check_name, 'warning' AS severity,
               CASE WHEN count(*) FILTER (WHERE import_error IS NOT NULL) > 0 THEN 'failing' ELSE 'ok' END AS status,
               count(*) FILTER (WHERE import_error IS NOT NULL) || ' of ' || count(*) || ' files have an import_error' AS detail
        FROM @extschema@.raw_et_stats_files
        UNION ALL
        SELECT 'et files: not imported', 'warning',
               CASE WHEN count(*) > 0 THEN 'pending' ELSE 'ok' END,
               count(*) || ' files received over an hour ago are not imported yet'
        FROM @extschema@.raw_et_stats_files
        WHERE imported_at IS NULL AND import_error IS NULL AND received_at < now() - interval '1 hour'),
    orphans AS (
        SELECT 'activity without member row' AS check_name, 'info' AS severity,
               CASE WHEN count(*) > 0 THEN 'found' ELSE 'ok' END AS status,
               count(*) || ' users are active but have no raw_member_events row (joined before tracking began?)' AS detail
        -- The people build_members() has seen, each probed in the raw tables through their
        -- (guild_id, user_id, time) indexes, instead of every raw row made distinct.
        FROM @extschema@.members x
        WHERE NOT EXISTS (SELECT 1 FROM @extschema@.raw_member_events m
                           WHERE m.guild_id = x.guild_id AND m.user_id = x.user_id)
          AND (EXISTS (SELECT 1 FROM @extschema@.raw_voice_events v
                        WHERE v.guild_id = x.guild_id AND v.user_id = x.user_id AND v.channel_id IS NOT NULL)
               OR EXISTS (SELECT 1 FROM @extschema@.raw_messages r
                           WHERE r.guild_id = x.guild_id AND r.user_id = x.user_id AND NOT r.is_bot)
               OR EXISTS (SELECT 1 FROM @extschema@.raw_point_transactions t
                           WHERE t.guild_id = x.guild_id AND t.user_id = x.user_id))),
    -- Each server's last hour through the (server, polled_at) key: the servers found by skipping
    -- through it, not by reading every poll ever made.
    polls AS (
        SELECT 'game server: ' || l.server AS check_name, 'warning' AS severity,
               CASE WHEN x.failed * 2 > x.n THEN 'down'
                    WHEN x.failed > 0 THEN 'degraded' ELSE 'ok' END AS status,
               x.failed || ' of ' || x.n || ' polls failed in the last hour of data' AS detail
        FROM (WITH RECURSIVE servers AS (
                  SELECT (SELECT min(s.server) FROM @extschema@.raw_server_polls s) AS server
                  UNION ALL
                  SELECT (SELECT min(s.server) FROM @extschema@.raw_server_polls s WHERE s.server > v.server)
                  FROM servers v WHERE v.server IS NOT NULL)
              SELECT servers.server FROM servers WHERE servers.server IS NOT NULL) l
        CROSS JOIN LATERAL (SELECT max(q.polled_at) AS last_poll FROM @extschema@.raw_server_polls q
                             WHERE q.server = l.server) m
        CROSS JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE NOT p.ok) AS failed
                              FROM @extschema@.raw_server_polls p
                             WHERE p.server = l.server AND p.polled_at > m.last_poll - interval '1 hour') x),
    -- Counted up to 100,000 per raw table, each table found by skipping through the
    -- (source_table, row_hash) key: an exact count of millions of set-aside rows (a replay of
    -- far-future data) would cost seconds on every dashboard refresh and say no more.
    quarantined AS (
        SELECT 'quarantined rows' AS check_name, 'warning' AS severity,
               CASE WHEN sum(n) > 0 THEN 'found' ELSE 'ok' END AS status,
               CASE WHEN bool_or(n > 100000) THEN 'over ' ELSE '' END || coalesce(sum(least(n, 100000)), 0)
               || ' raw rows are in quarantine (dated too far ahead of their arrival, or set aside by an upgrade)'
               || coalesce(' (' || string_agg(source_table || ': ' || CASE WHEN n > 100000 THEN 'over 100000' ELSE n::text END,
                                              ', ' ORDER BY source_table) || ')', '') AS detail
        FROM (WITH RECURSIVE sources AS (
                  SELECT (SELECT min(q.source_table) FROM @extschema@.quarantine q) AS source_table
                  UNION ALL
                  SELECT (SELECT min(q.source_table) FROM @extschema@.quarantine q WHERE q.source_table > s.source_table)
                  FROM sources s WHERE s.source_table IS NOT NULL)
              SELECT s.source_table, c.n
              FROM sources s
              CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM @extschema@.quarantine q
                                                               WHERE q.source_table = s.source_table LIMIT 100001) x) c
              WHERE s.source_table IS NOT NULL) per_table),
    -- Who holds the builders' locks (rows of builder_locks, locked FOR UPDATE: a RowShareLock on
    -- the table, which only roles with UPDATE on it can take). A build holds them for seconds; a
    -- transaction that holds one for minutes keeps every build skipped and erase_member()
    -- waiting. The transaction's age is visible to superusers and pg_read_all_stats members.
    lock_holders AS (
        SELECT l.pid, a.xact_start
        FROM (SELECT DISTINCT k.pid FROM pg_catalog.pg_locks k
               WHERE k.locktype = 'relation' AND k.relation = '@extschema@.builder_locks'::regclass
                 AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                 AND k.mode = 'RowShareLock' AND k.granted AND k.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()) l
        LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid),
    builder_locks AS (
        SELECT 'builder locks' AS check_name, 'warning' AS severity,
               CASE WHEN bool_or(h.xact_start < now() - interval '5 minutes') THEN 'stuck'
                    WHEN count(*) > 0 THEN 'busy' ELSE 'ok' END AS status,
               coalesce('held by pid ' || string_agg(h.pid || coalesce(' since ' || to_char(h.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', ''),
                                                   ', ' ORDER BY h.pid)
                        || '; while held, builds are skipped and erase_member() waits',
                        'no builder lock is held') AS detail
        FROM lock_holders h)
    SELECT * FROM freshness
    UNION ALL SELECT * FROM beats
    UNION ALL SELECT * FROM et
    UNION ALL SELECT * FROM orphans
    UNION ALL SELECT * FROM polls
    UNION ALL SELECT * FROM quarantined
    UNION ALL SELECT * FROM builder_locks
    ORDER BY 1
$$;
COMMENT ON FUNCTION health() IS
    'Data-quality checks, one row each (check_name, severity, status, detail): freshness of every raw table (its latest arrival by ingest_id; stale after 15 minutes for heartbeats and polls, a day for the rest), missing heartbeats per ingester and guild (none for 5 minutes), ET stats files that failed to import or wait unimported for over an hour, users active (voice, messages, points) without any member row (among the people build_members() has seen), failed game-server polls in the last hour of data, raw rows set aside in quarantine (dated too far ahead of their arrival; counted up to 100,000 per raw table, "over 100000" beyond), and who holds the builders'' locks (busy while a build runs, stuck when a transaction has held one for over 5 minutes, naming its pid). status ok means nothing to do.';

UPDATE builders SET reads = '{raw_messages,raw_voice_events,raw_point_transactions,raw_server_polls,raw_member_events,raw_heartbeats,raw_et_stats_files,settings,members,voice_session_changes,voice_build_guilds,voice_sessions,events,event_attendance,member_voice_daily,member_engagement_weekly,member_monthly_status,member_active_days,guild_activity_daily,chat_channel_daily,chat_activity_5min,guild_voice_hourly,member_points_daily,economy_daily,member_point_balances,guild_points_reason_daily,member_points_monthly,guild_monthly_status,server_polls_hourly,ingest_lag_rollup}' WHERE name = 'build_rollups';
SELECT count(@extschema@.isolate_by_guild(t))
  FROM unnest(ARRAY['@extschema@.member_point_balances', '@extschema@.guild_points_reason_daily',
                    '@extschema@.member_points_monthly', '@extschema@.guild_monthly_status',
                    'guildstats_mart.economy_reasons_daily', 'guildstats_mart.member_status_counts_monthly',
                    'guildstats_mart.economy_members_monthly']::regclass[]) AS t;
-- ==== end of BI speed

-- ==== command speed, part 2 (issue 14, item 4): command_community reads the rollups of
-- ==== build_rollups() (as of its last run, built_through) instead of recomputing activity,
-- ==== retention and the economy; command_server finds each server's latest poll by a walk
-- ==== over the (server, polled_at) key. Same statements as sql/extension/commands.sql.
CREATE OR REPLACE FUNCTION command_server(guild_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    servers jsonb;
BEGIN
    -- Who is in voice: an open, non-AFK voice session of a member linked to a GUID that used
    -- the name the server lists (colour codes stripped; A2S and q3 give no ids).
    -- The latest poll per server: a walk over the (server, polled_at) key, one index step per
    -- server and one for its newest poll, instead of sorting every poll ever made.
    WITH RECURSIVE servers AS (
        (SELECT p.server FROM @extschema@.raw_server_polls p ORDER BY p.server LIMIT 1)
        UNION ALL
        SELECT (SELECT p.server FROM @extschema@.raw_server_polls p
                 WHERE p.server > s.server ORDER BY p.server LIMIT 1)
        FROM servers s WHERE s.server IS NOT NULL
    ), latest AS (
        SELECT la.*
        FROM servers s
        CROSS JOIN LATERAL (SELECT p.* FROM @extschema@.raw_server_polls p
                             WHERE p.server = s.server ORDER BY p.polled_at DESC LIMIT 1) la
    ), in_voice AS (
        -- From the guild's links to their GUIDs' rounds (by the guid index), not from every
        -- round played: a guild links far fewer GUIDs than the servers have seen.
        SELECT DISTINCT ON (lower(n.clean_name)) lower(n.clean_name) AS name, l.user_id
        FROM @extschema@.et_guid_links l
        JOIN @extschema@.et_player_rounds n ON n.guid = l.guid AND NOT n.is_bot
        WHERE l.guild_id = command_server.guild_id
        ORDER BY lower(n.clean_name), l.user_id
    ), listed AS (
        SELECT sp.server, sp.polled_at, sp.player_index, @extschema@.et_clean_name(sp.name) AS name,
               sp.score, sp.ping_ms, iv.user_id,
               EXISTS (SELECT 1 FROM @extschema@.voice_sessions v
                        WHERE v.guild_id = command_server.guild_id AND v.user_id = iv.user_id
                          AND v.ended_at IS NULL AND NOT v.is_afk) AS in_voice
        FROM latest la
        JOIN @extschema@.raw_server_players sp ON sp.server = la.server AND sp.polled_at = la.polled_at
        LEFT JOIN in_voice iv ON iv.name = lower(@extschema@.et_clean_name(sp.name))
    )
    SELECT jsonb_agg(jsonb_build_object(
               'server', la.server, 'name', @extschema@.et_clean_name(la.server_name), 'map', la.map,
               'polled_at', la.polled_at, 'ok', la.ok, 'error', la.error, 'max_players', la.max_players,
               'players', coalesce((SELECT jsonb_agg(jsonb_build_object(
                               'name', li.name, 'score', li.score, 'ping', li.ping_ms,
                               'in_voice', li.in_voice, 'user_id', li.user_id::text)
                           ORDER BY li.score DESC NULLS LAST, li.player_index)
                           FROM listed li WHERE li.server = la.server), '[]'))
           ORDER BY la.server)
      INTO servers
      FROM latest la;
    IF servers IS NULL THEN
        RETURN @extschema@._command_error('No game server has been polled yet.');
    END IF;
    RETURN jsonb_build_object('ok', true, 'servers', servers);
END
$$;
COMMENT ON FUNCTION command_server(bigint) IS
    'The /server answer: the latest poll of each game server (ok false with the error when it failed), its map and players (colour codes stripped, best score first), and for each player whether a member of the guild linked to a GUID that used that name is in voice now (an open, non-AFK voice session). Example: SELECT jsonb_pretty(guildstats.command_server(1234));';

CREATE OR REPLACE FUNCTION command_community(guild_id bigint, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
-- health()'s plan is estimated dear enough to be JIT-compiled, which took 1.4 s of its 1.5 s
-- on the benchmark community; run, it reads a few index entries per check.
SET jit = off
AS $$
DECLARE
    at_time timestamptz := coalesce(as_of, now());
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(command_community.guild_id) s);
    today date := (at_time AT TIME ZONE tz)::date;
    last_day date;
    day_row record;
    last_economy record;
    answer jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @extschema@.activity_events e
                    WHERE e.guild_id = command_community.guild_id AND e.kind <> 'member') THEN
        RETURN @extschema@._command_error('No activity recorded for this guild yet.');
    END IF;
    -- Recomputing activity, retention and the economy from the raw rows took half a minute at
    -- 30,000 members; build_rollups() keeps all three per day, so the answer reads those rows
    -- and is as of its last run (built_through).
    SELECT max(a.day) INTO last_day FROM @extschema@.member_active_days a
     WHERE a.guild_id = command_community.guild_id;
    SELECT g.dau, g.mau INTO day_row FROM @extschema@.guild_activity_daily g
     WHERE g.guild_id = command_community.guild_id AND g.day = today;
    IF NOT FOUND THEN
        -- The rollup stops at the last active day; a later day has no active user but still
        -- the users of the 30 days before it.
        SELECT 0::bigint AS dau, count(DISTINCT a.user_id) AS mau INTO day_row
          FROM @extschema@.member_active_days a
         WHERE a.guild_id = command_community.guild_id AND a.day BETWEEN today - 29 AND today;
    END IF;
    -- economy_daily stops at the last day with transactions; balances, and so the Gini alert,
    -- stay as they were on the days after it.
    SELECT e.day, e.alert_gini, e.alerts INTO last_economy FROM @extschema@.economy_daily e
     WHERE e.guild_id = command_community.guild_id AND e.day <= today
     ORDER BY e.day DESC LIMIT 1;
    SELECT jsonb_build_object(
        'ok', true,
        'day', today,
        'built_through', (SELECT max(p.updated_at) FROM @extschema@.build_progress p WHERE p.builder = 'build_rollups'),
        'dau', coalesce(day_row.dau, 0),
        'mau', coalesce(day_row.mau, 0),
        'dau_mau', round((day_row.dau::double precision / nullif(day_row.mau, 0))::numeric, 3)::double precision,
        -- As retention_dn: the cohorts whose day N is not after the last active day.
        'd7', (SELECT round((sum(g.d7_retained)::double precision / nullif(sum(g.new_users), 0))::numeric, 3)::double precision
                 FROM @extschema@.guild_activity_daily g
                WHERE g.guild_id = command_community.guild_id AND g.day <= last_day - 7),
        'd30', (SELECT round((sum(g.d30_retained)::double precision / nullif(sum(g.new_users), 0))::numeric, 3)::double precision
                  FROM @extschema@.guild_activity_daily g
                 WHERE g.guild_id = command_community.guild_id AND g.day <= last_day - 30),
        'economy_alerts', coalesce((SELECT jsonb_agg(jsonb_build_object('day', x.day, 'alert', x.alert) ORDER BY x.day DESC, x.alert)
                                    FROM (SELECT e.day, al.alert
                                            FROM @extschema@.economy_daily e, unnest(e.alerts) AS al(alert)
                                           WHERE e.guild_id = command_community.guild_id AND e.day BETWEEN today - 29 AND today
                                          UNION ALL
                                          SELECT g::date, last_economy.alerts[array_upper(last_economy.alerts, 1)]
                                            FROM generate_series(greatest(last_economy.day + 1, today - 29)::timestamp, today::timestamp, interval '1 day') g
                                           WHERE last_economy.alert_gini) x), '[]'),
        'health_problems', coalesce((SELECT jsonb_agg(h.severity || ': ' || h.check_name || ' ' || h.status || coalesce(' (' || h.detail || ')', '')
                                                      ORDER BY h.severity, h.check_name)
                                     FROM @extschema@.health() h WHERE h.status <> 'ok'), '[]'))
      INTO answer;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION command_community(bigint, timestamptz) IS
    'The /community answer (for admins; the bot checks who asks), as of the last run of build_rollups() (built_through: when it last recorded progress; build_all() runs it): DAU, MAU and DAU/MAU on as_of''s calendar day (default today) from guild_activity_daily, D7 and D30 retention (as retention_dn: of the users first active at least N days before the last active day, the share active exactly N days after their first day), the points economy''s alerts of the last 30 days (economy_daily, the rows of economy_health) and every health() check that is not ok. Example: SELECT jsonb_pretty(guildstats.command_community(1234));';
-- ==== end of command speed, part 2

-- ==== the commands refuse an infinite as_of (issue 10, "Done when"): sql/extension/commands.sql
CREATE OR REPLACE FUNCTION _command_as_of(as_of timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- Periods, weeks and months are counted back from as_of: an infinite one has none of them
    -- (the answer would be for the day "infinity"), so it is refused by name.
    IF as_of IS NOT NULL AND NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of => %: the commands answer at a finite time (leave it NULL for now)', as_of
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN coalesce(as_of, now());
END
$$;
COMMENT ON FUNCTION _command_as_of(timestamptz) IS
    'Internal: the time a command answers at: as_of, or now() when it is NULL; an infinite as_of is an error naming it.';

CREATE OR REPLACE FUNCTION command_stats(guild_id bigint, player text DEFAULT NULL, user_id bigint DEFAULT NULL,
                              as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    at_time timestamptz := @extschema@._command_as_of(as_of);
    cfg record;
    found_guid text;
    linked_user bigint;
    problem text;
    candidates jsonb;
    local_now timestamp;
    answer jsonb;
BEGIN
    SELECT * INTO cfg FROM @extschema@.command_settings_for(command_stats.guild_id);
    local_now := at_time AT TIME ZONE cfg.calendar_time_zone;
    IF command_stats.user_id IS NULL THEN
        problem := @extschema@._command_name_problem(player);
        IF problem IS NOT NULL THEN
            RETURN @extschema@._command_error(problem);
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds) THEN
        RETURN @extschema@._command_error('No ET:Legacy rounds have been imported yet.');
    END IF;
    IF command_stats.user_id IS NOT NULL THEN
        SELECT l.guid INTO found_guid
          FROM @extschema@.et_guid_links l
          LEFT JOIN LATERAL (SELECT count(*) AS n FROM @extschema@.et_counted_player_rounds p WHERE p.guid = l.guid) c ON true
         WHERE l.guild_id = command_stats.guild_id AND l.user_id = command_stats.user_id
         ORDER BY c.n DESC, l.guid LIMIT 1;
        IF found_guid IS NULL THEN
            RETURN @extschema@._command_error('This member has not linked an ET:Legacy GUID yet: use /link.');
        END IF;
    ELSE
        SELECT jsonb_agg(jsonb_build_object('name', f.player_name, 'guid', f.guid, 'rounds', f.rounds)
                         ORDER BY f.score DESC NULLS LAST, f.rounds DESC, f.guid), min(f.guid)
          INTO candidates, found_guid
          FROM (SELECT * FROM @extschema@.command_find_player(player) LIMIT 10) f;
        IF candidates IS NULL THEN
            RETURN @extschema@._command_error(format('No ET:Legacy player is called anything like "%s".', left(player, 64)));
        ELSIF jsonb_array_length(candidates) > 1 THEN
            RETURN @extschema@._command_error(format('Several players match "%s": pick one.', left(player, 64)),
                                              jsonb_build_object('candidates', candidates));
        END IF;
    END IF;
    SELECT l.user_id INTO linked_user FROM @extschema@.et_guid_links l
     WHERE l.guid = found_guid AND l.guild_id = command_stats.guild_id;

    WITH mine AS (
        -- Only the columns used: a player round carries its weapon stats too, many times wider.
        SELECT p.clean_name, p.saved_at, p.et_session_id, p.kills, p.deaths, p.damage_given,
               p.time_played_seconds, p.gibs
        FROM @extschema@.et_counted_player_rounds p WHERE p.guid = found_guid
    ), split AS (
        SELECT m.saved_at >= local_now - interval '30 days' AS recent, count(*) AS rounds,
               sum(m.kills) AS kills, sum(m.deaths) AS deaths, sum(m.damage_given) AS damage,
               sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL) AS damage_seconds
        FROM mine m GROUP BY 1
    ), sessions AS (
        SELECT m.et_session_id, min(m.saved_at) AS first_round,
               sum(m.kills) AS kills, sum(m.deaths) AS deaths, sum(m.damage_given) AS damage,
               sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL) AS damage_seconds
        FROM mine m GROUP BY m.et_session_id ORDER BY min(m.saved_at) DESC LIMIT 20
    ), ranked_players AS (
        SELECT p.guid, sum(p.kills)::double precision AS kills,
               sum(p.damage_given) * 60.0 / nullif(sum(p.time_played_seconds) FILTER (WHERE p.damage_given IS NOT NULL), 0) AS dpm,
               CASE WHEN sum(p.deaths) = 0 THEN sum(p.kills)::double precision
                    ELSE sum(p.kills)::double precision / sum(p.deaths) END AS kd
        FROM @extschema@.et_counted_player_rounds p
        WHERE NOT p.is_bot
        GROUP BY p.guid
        HAVING count(*) >= cfg.top_min_rounds
    ), metric_values AS (
        SELECT mt.metric, mt.ord, rp.guid,
               CASE mt.metric WHEN 'kills' THEN rp.kills WHEN 'dpm' THEN rp.dpm ELSE rp.kd END AS v
        FROM unnest(ARRAY['kills', 'dpm', 'kd']) WITH ORDINALITY AS mt(metric, ord)
        CROSS JOIN ranked_players rp
    ), ranks AS (
        -- As et_leaderboard ranks: 1 + the players with a higher value; null when not ranked.
        SELECT a.metric, a.ord, a.of,
               CASE WHEN a.mine IS NOT NULL THEN 1 + (SELECT count(*) FROM metric_values b WHERE b.metric = a.metric AND b.v > a.mine) END AS rank
        FROM (SELECT mv.metric, mv.ord, count(mv.v) AS of, max(mv.v) FILTER (WHERE mv.guid = found_guid) AS mine
              FROM metric_values mv GROUP BY mv.metric, mv.ord) a
    ), voice AS (
        SELECT (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id,
                    @extschema@._command_period_start(command_stats.guild_id, 'week', at_time), at_time) v
                 WHERE v.user_id = linked_user) AS week,
               (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id,
                    @extschema@._command_period_start(command_stats.guild_id, 'month', at_time), at_time) v
                 WHERE v.user_id = linked_user) AS month,
               (SELECT v.seconds FROM @extschema@._voice_seconds(command_stats.guild_id, '-infinity', at_time) v
                 WHERE v.user_id = linked_user) AS total
    )
    SELECT jsonb_build_object(
        'ok', true,
        'player', jsonb_build_object('name', (SELECT (array_agg(m.clean_name ORDER BY m.saved_at DESC))[1] FROM mine m),
                                     'guid', found_guid, 'user_id', linked_user::text),
        'totals', (SELECT jsonb_build_object(
                        'rounds', count(*), 'kills', sum(m.kills), 'deaths', sum(m.deaths),
                        'kd', @extschema@._command_ratio(sum(m.kills), sum(m.deaths)),
                        'dpm', @extschema@._command_dpm(sum(m.damage_given), sum(m.time_played_seconds) FILTER (WHERE m.damage_given IS NOT NULL)),
                        'damage_given', sum(m.damage_given), 'gibs', sum(m.gibs),
                        'time_played_s', sum(m.time_played_seconds))
                   FROM mine m),
        'form', jsonb_build_object(
                    'last_30_days', (SELECT jsonb_build_object('rounds', coalesce(max(s.rounds), 0),
                                        'kd', @extschema@._command_ratio(max(s.kills), max(s.deaths)),
                                        'dpm', @extschema@._command_dpm(max(s.damage), max(s.damage_seconds)))
                                     FROM split s WHERE s.recent),
                    'before', (SELECT jsonb_build_object('rounds', coalesce(max(s.rounds), 0),
                                        'kd', @extschema@._command_ratio(max(s.kills), max(s.deaths)),
                                        'dpm', @extschema@._command_dpm(max(s.damage), max(s.damage_seconds)))
                               FROM split s WHERE NOT s.recent)),
        'voice_hours', CASE WHEN linked_user IS NOT NULL THEN
                           (SELECT jsonb_build_object('week', round(coalesce(v.week, 0)::numeric / 3600, 1)::double precision,
                                                      'month', round(coalesce(v.month, 0)::numeric / 3600, 1)::double precision,
                                                      'all', round(coalesce(v.total, 0)::numeric / 3600, 1)::double precision) FROM voice v) END,
        'events_attended', CASE WHEN linked_user IS NOT NULL THEN
                               (SELECT count(*) FROM @extschema@.event_attendance a
                                 WHERE a.guild_id = command_stats.guild_id AND a.user_id = linked_user) END,
        'ranks', (SELECT jsonb_agg(jsonb_build_object('metric', r.metric, 'rank', r.rank, 'of', r.of) ORDER BY r.ord)
                  FROM ranks r),
        'sessions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'session_id', s.et_session_id, 'date', s.first_round::date,
                        'kills', s.kills, 'deaths', s.deaths,
                        'kd', @extschema@._command_ratio(s.kills, s.deaths),
                        'dpm', @extschema@._command_dpm(s.damage, s.damage_seconds))
                    ORDER BY s.first_round) FROM sessions s), '[]'))
      INTO answer;
    RETURN answer;
END
$$;

CREATE OR REPLACE FUNCTION command_top(guild_id bigint, metric text, period text DEFAULT 'all', map text DEFAULT NULL,
                            max_rows integer DEFAULT 10, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    metrics constant text[] := ARRAY['kills', 'dpm', 'kd', 'damage', 'gibs', 'time', 'voice_hours', 'messages'];
    periods constant text[] := ARRAY['week', 'month', 'season', 'all'];
    at_time timestamptz := @extschema@._command_as_of(as_of);
    cfg record;
    since timestamptz;
    wanted_map text := nullif(btrim(map), '');
    rows_out jsonb;
BEGIN
    IF metric IS NULL OR NOT lower(metric) = ANY (metrics) THEN
        RETURN @extschema@._command_error(format('Unknown metric "%s": use one of %s.', left(coalesce(metric, ''), 64), array_to_string(metrics, ', ')));
    END IF;
    IF period IS NULL OR NOT lower(period) = ANY (periods) THEN
        RETURN @extschema@._command_error(format('Unknown period "%s": use one of %s.', left(coalesce(period, ''), 64), array_to_string(periods, ', ')));
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 100 THEN
        RETURN @extschema@._command_error('max_rows must be between 1 and 100.');
    END IF;
    IF length(wanted_map) > 64 THEN
        RETURN @extschema@._command_error(format('A map name is at most 64 characters; this one has %s.', length(wanted_map)));
    END IF;
    metric := lower(metric);
    period := lower(period);
    SELECT * INTO cfg FROM @extschema@.command_settings_for(command_top.guild_id);
    since := @extschema@._command_period_start(command_top.guild_id, period, at_time);

    IF metric = 'voice_hours' AND NOT EXISTS (SELECT 1 FROM @extschema@.voice_sessions v WHERE v.guild_id = command_top.guild_id) THEN
        RETURN @extschema@._command_error('No voice time has been recorded in this guild yet.');
    ELSIF metric = 'messages' AND NOT EXISTS (SELECT 1 FROM @extschema@.raw_messages m WHERE m.guild_id = command_top.guild_id) THEN
        RETURN @extschema@._command_error('No message has been recorded in this guild yet.');
    ELSIF metric NOT IN ('voice_hours', 'messages') AND NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds) THEN
        RETURN @extschema@._command_error('No ET:Legacy rounds have been imported yet.');
    END IF;

    IF metric IN ('voice_hours', 'messages') THEN
        WITH scores AS (
            SELECT v.user_id, v.seconds / 3600.0 AS value
            FROM @extschema@._voice_seconds(command_top.guild_id, since, at_time) v
            WHERE metric = 'voice_hours' AND v.seconds > 0
            UNION ALL
            SELECT m.user_id, count(*)
            FROM @extschema@.raw_messages m
            WHERE metric = 'messages' AND m.guild_id = command_top.guild_id AND NOT m.is_bot
              AND m.sent_at >= since AND m.sent_at < at_time
            GROUP BY m.user_id
        ), ranked AS (
            SELECT rank() OVER (ORDER BY s.value DESC) AS rank, s.* FROM scores s
            ORDER BY s.value DESC, s.user_id LIMIT max_rows
        )
        SELECT jsonb_agg(jsonb_build_object(
                   'rank', r.rank, 'name', mb.display_name, 'guid', NULL, 'user_id', r.user_id::text,
                   'value', round(r.value::numeric, CASE WHEN metric = 'voice_hours' THEN 1 ELSE 0 END)::double precision, 'rounds', NULL)
               ORDER BY r.rank, r.user_id)
          INTO rows_out
          FROM ranked r
          LEFT JOIN @extschema@.members mb ON mb.guild_id = command_top.guild_id AND mb.user_id = r.user_id;
    ELSE
        SELECT jsonb_agg(jsonb_build_object(
                   'rank', l.rank, 'name', l.name, 'guid', l.guid, 'user_id', k.user_id::text,
                   'value', round(l.value::numeric, CASE WHEN metric IN ('kd', 'dpm') THEN 2 ELSE 0 END)::double precision,
                   'rounds', l.rounds)
               ORDER BY l.rank, l.guid)
          INTO rows_out
          FROM @extschema@.et_leaderboard(
                   CASE metric WHEN 'time' THEN 'time_played' ELSE metric END,
                   since => CASE WHEN since = '-infinity' THEN NULL ELSE since AT TIME ZONE cfg.calendar_time_zone END,
                   until => at_time AT TIME ZONE cfg.calendar_time_zone,
                   map => wanted_map, min_rounds => cfg.top_min_rounds, top => max_rows) l
          LEFT JOIN @extschema@.et_guid_links k ON k.guid = l.guid AND k.guild_id = command_top.guild_id;
    END IF;
    RETURN jsonb_build_object(
        'ok', true, 'metric', metric, 'period', period, 'map', wanted_map,
        'since', CASE WHEN since = '-infinity' THEN NULL ELSE since END,
        'min_rounds', CASE WHEN metric IN ('voice_hours', 'messages') THEN NULL ELSE cfg.top_min_rounds END,
        'rows', coalesce(rows_out, '[]'));
END
$$;

CREATE OR REPLACE FUNCTION command_voice(guild_id bigint, user_id bigint, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    at_time timestamptz := @extschema@._command_as_of(as_of);
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(command_voice.guild_id) s);
    wk_from timestamptz := @extschema@._command_period_start(command_voice.guild_id, 'week', at_time);
    mo_from timestamptz := @extschema@._command_period_start(command_voice.guild_id, 'month', at_time);
    answer jsonb;
BEGIN
    IF command_voice.user_id IS NULL THEN
        RETURN @extschema@._command_error('Name a member.');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.voice_sessions v
                    WHERE v.guild_id = command_voice.guild_id AND v.user_id = command_voice.user_id AND v.started_at < at_time) THEN
        RETURN @extschema@._command_error('No voice time recorded for this member yet.');
    END IF;
    WITH wk AS (
        SELECT w.*, rank() OVER (ORDER BY w.seconds DESC) AS rank
        FROM @extschema@._voice_seconds(command_voice.guild_id, wk_from, at_time) w WHERE w.seconds > 0
    ), mo AS (
        SELECT m.*, rank() OVER (ORDER BY m.seconds DESC) AS rank
        FROM @extschema@._voice_seconds(command_voice.guild_id, mo_from, at_time) m WHERE m.seconds > 0
    ), weeks AS (
        SELECT g.week_start, (SELECT w.seconds FROM @extschema@._voice_seconds(command_voice.guild_id,
                                   g.week_start, least(g.week_start + interval '7 days', at_time)) w
                               WHERE w.user_id = command_voice.user_id) AS seconds
        FROM (SELECT (date_trunc('week', at_time AT TIME ZONE tz) - n * interval '7 days') AT TIME ZONE tz AS week_start
              FROM generate_series(0, 11) n) g
    )
    SELECT jsonb_build_object(
        'ok', true,
        'user_id', command_voice.user_id::text,
        'name', (SELECT mb.display_name FROM @extschema@.members mb
                  WHERE mb.guild_id = command_voice.guild_id AND mb.user_id = command_voice.user_id),
        'hours_week', round(coalesce((SELECT w.seconds FROM wk w WHERE w.user_id = command_voice.user_id), 0)::numeric / 3600, 1)::double precision,
        'hours_month', round(coalesce((SELECT m.seconds FROM mo m WHERE m.user_id = command_voice.user_id), 0)::numeric / 3600, 1)::double precision,
        'rank_week', (SELECT w.rank FROM wk w WHERE w.user_id = command_voice.user_id),
        'rank_month', (SELECT m.rank FROM mo m WHERE m.user_id = command_voice.user_id),
        'members_ranked', (SELECT count(*) FROM mo),
        'members_ranked_week', (SELECT count(*) FROM wk),
        -- Partners from the co-presence builder (build_voice_copresence, run by build_all):
        -- shared minutes per pair and calendar day, the last 30 days including today.
        'partners', coalesce((SELECT jsonb_agg(jsonb_build_object('user_id', tp.partner_id::text, 'name', tp.partner_name,
                                                                  'shared_minutes', round(tp.shared_minutes)::bigint,
                                                                  'days_together', tp.days_together)
                                               ORDER BY tp.shared_minutes DESC, tp.partner_id)
                              FROM @extschema@.voice_top_partners(command_voice.guild_id, command_voice.user_id,
                                                                  from_day => (at_time AT TIME ZONE tz)::date - 29,
                                                                  to_day => (at_time AT TIME ZONE tz)::date,
                                                                  max_rows => 5) tp
                              WHERE tp.shared_minutes >= 1), '[]'),
        'weeks', (SELECT jsonb_agg(jsonb_build_object('week_start', (w.week_start AT TIME ZONE tz)::date,
                                                      'hours', round(coalesce(w.seconds, 0)::numeric / 3600, 1)::double precision)
                                   ORDER BY w.week_start) FROM weeks w))
      INTO answer;
    RETURN answer;
END
$$;

CREATE OR REPLACE FUNCTION command_community(guild_id bigint, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
-- health()'s plan is estimated dear enough to be JIT-compiled, which took 1.4 s of its 1.5 s
-- on the benchmark community; run, it reads a few index entries per check.
SET jit = off
AS $$
DECLARE
    at_time timestamptz := @extschema@._command_as_of(as_of);
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(command_community.guild_id) s);
    today date := (at_time AT TIME ZONE tz)::date;
    last_day date;
    day_row record;
    last_economy record;
    answer jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @extschema@.activity_events e
                    WHERE e.guild_id = command_community.guild_id AND e.kind <> 'member') THEN
        RETURN @extschema@._command_error('No activity recorded for this guild yet.');
    END IF;
    -- Recomputing activity, retention and the economy from the raw rows took half a minute at
    -- 30,000 members; build_rollups() keeps all three per day, so the answer reads those rows
    -- and is as of its last run (built_through).
    SELECT max(a.day) INTO last_day FROM @extschema@.member_active_days a
     WHERE a.guild_id = command_community.guild_id;
    SELECT g.dau, g.mau INTO day_row FROM @extschema@.guild_activity_daily g
     WHERE g.guild_id = command_community.guild_id AND g.day = today;
    IF NOT FOUND THEN
        -- The rollup stops at the last active day; a later day has no active user but still
        -- the users of the 30 days before it.
        SELECT 0::bigint AS dau, count(DISTINCT a.user_id) AS mau INTO day_row
          FROM @extschema@.member_active_days a
         WHERE a.guild_id = command_community.guild_id AND a.day BETWEEN today - 29 AND today;
    END IF;
    -- economy_daily stops at the last day with transactions; balances, and so the Gini alert,
    -- stay as they were on the days after it.
    SELECT e.day, e.alert_gini, e.alerts INTO last_economy FROM @extschema@.economy_daily e
     WHERE e.guild_id = command_community.guild_id AND e.day <= today
     ORDER BY e.day DESC LIMIT 1;
    SELECT jsonb_build_object(
        'ok', true,
        'day', today,
        'built_through', (SELECT max(p.updated_at) FROM @extschema@.build_progress p WHERE p.builder = 'build_rollups'),
        'dau', coalesce(day_row.dau, 0),
        'mau', coalesce(day_row.mau, 0),
        'dau_mau', round((day_row.dau::double precision / nullif(day_row.mau, 0))::numeric, 3)::double precision,
        -- As retention_dn: the cohorts whose day N is not after the last active day.
        'd7', (SELECT round((sum(g.d7_retained)::double precision / nullif(sum(g.new_users), 0))::numeric, 3)::double precision
                 FROM @extschema@.guild_activity_daily g
                WHERE g.guild_id = command_community.guild_id AND g.day <= last_day - 7),
        'd30', (SELECT round((sum(g.d30_retained)::double precision / nullif(sum(g.new_users), 0))::numeric, 3)::double precision
                  FROM @extschema@.guild_activity_daily g
                 WHERE g.guild_id = command_community.guild_id AND g.day <= last_day - 30),
        'economy_alerts', coalesce((SELECT jsonb_agg(jsonb_build_object('day', x.day, 'alert', x.alert) ORDER BY x.day DESC, x.alert)
                                    FROM (SELECT e.day, al.alert
                                            FROM @extschema@.economy_daily e, unnest(e.alerts) AS al(alert)
                                           WHERE e.guild_id = command_community.guild_id AND e.day BETWEEN today - 29 AND today
                                          UNION ALL
                                          SELECT g::date, last_economy.alerts[array_upper(last_economy.alerts, 1)]
                                            FROM generate_series(greatest(last_economy.day + 1, today - 29)::timestamp, today::timestamp, interval '1 day') g
                                           WHERE last_economy.alert_gini) x), '[]'),
        'health_problems', coalesce((SELECT jsonb_agg(h.severity || ': ' || h.check_name || ' ' || h.status || coalesce(' (' || h.detail || ')', '')
                                                      ORDER BY h.severity, h.check_name)
                                     FROM @extschema@.health() h WHERE h.status <> 'ok'), '[]'))
      INTO answer;
    RETURN answer;
END
$$;

-- ==== end of the commands' as_of

-- ==== ET ratings list their games in one pass (issue 13, item 3): et_rating_games() told
-- ==== maps with humans on both sides by a window, not a subquery per map. Same statement as
-- ==== sql/extension/et_ratings.sql.
CREATE OR REPLACE FUNCTION et_rating_games()
RETURNS TABLE (match_id text, started_at timestamp, outcome text, guid text, side smallint, share double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH maps AS (
        SELECT m.match_id, m.started_at, m.outcome, m.round1_id, m.round2_id
        FROM @extschema@.et_matches m
        JOIN @extschema@.et_rounds r1 ON r1.round_id = m.round1_id
        JOIN @extschema@.et_rounds r2 ON r2.round_id = m.round2_id
        WHERE m.outcome IN ('round1_attackers', 'round2_attackers', 'draw')
          AND r1.restart_kind IS DISTINCT FROM 'cancelled'
          AND r2.restart_kind IS DISTINCT FROM 'cancelled'
    ), played AS (
        -- Side 1 is whoever attacked in round 1: attackers then, defenders in round 2.
        SELECT mp.match_id, p.round_id, p.guid, p.is_bot, p.time_played_seconds,
               CASE WHEN (p.round_id = mp.round1_id) = (p.team <> r.defender_team) THEN 1 ELSE 2 END::smallint AS side
        FROM maps mp
        JOIN @extschema@.et_player_rounds p ON p.round_id IN (mp.round1_id, mp.round2_id)
        JOIN @extschema@.et_rounds r ON r.round_id = p.round_id
        WHERE p.team IN (1, 2)
    ), lengths AS (
        -- A round lasts as long as its longest-playing player; a file without times counts
        -- every player present as there for the whole round.
        SELECT pl.round_id, max(pl.time_played_seconds) AS seconds FROM played pl GROUP BY pl.round_id
    ), per_side AS (
        SELECT pl.match_id, pl.guid, pl.side,
               sum(CASE WHEN l.seconds > 0 THEN coalesce(pl.time_played_seconds, l.seconds)::double precision / l.seconds ELSE 1 END) / 2 AS share
        FROM played pl JOIN lengths l USING (round_id)
        WHERE NOT pl.is_bot
        GROUP BY pl.match_id, pl.guid, pl.side
    ), chosen AS (
        -- A player who switched sides mid-map counts for the side they played longer.
        SELECT DISTINCT ON (ps.match_id, ps.guid) ps.*
        FROM per_side ps
        WHERE ps.share > 0
        ORDER BY ps.match_id, ps.guid, ps.share DESC, ps.side
    ), sided AS (
        -- Humans on both sides, per map in one pass (a subquery per map read every map's
        -- players again: quadratic in the maps, 18 s at 4,500).
        SELECT ch.*, min(ch.side) OVER (PARTITION BY ch.match_id) <> max(ch.side) OVER (PARTITION BY ch.match_id) AS both_sides
        FROM chosen ch
    )
    SELECT mp.match_id, mp.started_at, mp.outcome, sd.guid, sd.side, least(sd.share, 1.0)
    FROM maps mp JOIN sided sd USING (match_id)
    WHERE sd.both_sides
    ORDER BY mp.started_at, mp.match_id, sd.side, sd.guid;
END;

-- ==== end of the ratings listing

-- ==== #13 voice write floor (issue 13, item 8): a full voice rebuild by the owner of voice_sessions
-- drops its indexes in the builder's plan and builds them once in the builder's new finish,
-- after the last guild's step (every guild's rows go in without them, not only the first
-- guild's). Same statements as sql/extension/builders.sql, voice_sessions.sql and
-- build_all.sql.
ALTER TABLE @extschema@.builders ADD COLUMN finish regprocedure;

COMMENT ON COLUMN @extschema@.builders.finish IS 'f(claims jsonb, full boolean, plan jsonb) RETURNS jsonb, run once after the last step with what the plan returned: work that spans every guild''s step, such as building a table''s indexes once after a full rebuild wrote all its rows. NULL: none.';


CREATE OR REPLACE FUNCTION @extschema@._builders_check()
RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID);
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = NEW.step AND p.prorettype = 'jsonb'::regtype
                      AND pg_catalog.oidvectortypes(p.proargtypes) = 'bigint, jsonb, boolean') THEN
        RAISE EXCEPTION 'guildstats: builder %: step % must be f(guild bigint, claims jsonb, full boolean) RETURNS jsonb',
            NEW.name, NEW.step;
    END IF;
    IF NEW.plan IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = NEW.plan AND p.prorettype = 'jsonb'::regtype
           AND pg_catalog.oidvectortypes(p.proargtypes) = 'jsonb, boolean') THEN
        RAISE EXCEPTION 'guildstats: builder %: plan % must be f(claims jsonb, full boolean) RETURNS jsonb',
            NEW.name, NEW.plan;
    END IF;
    IF NEW.finish IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = NEW.finish AND p.prorettype = 'jsonb'::regtype
           AND pg_catalog.oidvectortypes(p.proargtypes) = 'jsonb, boolean, jsonb') THEN
        RAISE EXCEPTION 'guildstats: builder %: finish % must be f(claims jsonb, full boolean, plan jsonb) RETURNS jsonb',
            NEW.name, NEW.finish;
    END IF;
    IF NEW.per = 'guild' AND NEW.plan IS NULL THEN
        RAISE EXCEPTION 'guildstats: builder % is per guild but has no plan to list the guilds', NEW.name;
    END IF;
    -- build_all() runs with the rights of whoever calls it, pg_cron's job owner included.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid IN (NEW.step, NEW.plan, NEW.finish) AND p.proowner <> owner) THEN
        RAISE EXCEPTION 'guildstats: builder %: its functions must belong to %, the owner of guildstats.builders',
            NEW.name, owner::regrole;
    END IF;
    FOREACH t IN ARRAY NEW.claims LOOP
        IF NOT EXISTS (SELECT 1 FROM unnest(NEW.reads) r WHERE r = pg_catalog.to_regclass(format('@extschema@.%I', t))) THEN
            RAISE EXCEPTION 'guildstats: builder % claims %, which is not among the tables it reads', NEW.name, t;
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION @extschema@._builders_check() IS
    'Internal: refuses a builders row whose plan, step or finish has the wrong signature or another owner, or that claims a table it does not read.';


CREATE OR REPLACE FUNCTION @extschema@._run_builder(builder text, full boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := clock_timestamp();
    b        @extschema@.builders;
    claims   jsonb := '{}';
    result   jsonb;
    part     jsonb;
    planned  jsonb;
    status   text;
    t        text;
    guild    bigint;
BEGIN
    SELECT * INTO b FROM @extschema@.builders r WHERE r.name = _run_builder.builder;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'guildstats: no builder is named %', builder
            USING HINT = 'SELECT name FROM guildstats.builders lists them.';
    END IF;
    result := (SELECT jsonb_object_agg(c, 0) FROM unnest(b.counters) c);
    IF NOT @extschema@._try_builder_lock(builder) THEN
        RETURN result || jsonb_build_object(
            'elapsed', clock_timestamp() - started,
            'status', 'skipped: another ' || builder || '() is running' || coalesce(b.skipped_note, ''));
    END IF;
    IF _run_builder.full THEN
        PERFORM @extschema@._reset_progress(builder);
    END IF;
    FOREACH t IN ARRAY b.claims LOOP
        claims := claims || jsonb_build_object(t, @extschema@._claim_ingest_ids(builder, t));
    END LOOP;

    part := '{}';
    IF b.plan IS NOT NULL THEN
        EXECUTE format('SELECT %s($1, $2)', @extschema@._function_name(b.plan)) INTO part USING claims, _run_builder.full;
        result := @extschema@._add_counters(result, part, b.counters);
        status := part->>'status';
    END IF;
    planned := part;
    FOR guild IN
        SELECT g::bigint FROM jsonb_array_elements_text(part->'guilds') g WHERE b.per = 'guild'
        UNION ALL
        SELECT NULL WHERE b.per = 'all'
    LOOP
        EXECUTE format('SELECT %s($1, $2, $3)', @extschema@._function_name(b.step)) INTO part USING guild, claims, _run_builder.full;
        result := @extschema@._add_counters(result, part, b.counters);
        status := coalesce(part->>'status', status);
    END LOOP;
    IF b.finish IS NOT NULL THEN
        EXECUTE format('SELECT %s($1, $2, $3)', @extschema@._function_name(b.finish)) INTO part USING claims, _run_builder.full, planned;
        result := @extschema@._add_counters(result, part, b.counters);
        status := coalesce(part->>'status', status);
    END IF;
    RETURN result || jsonb_build_object(
        'elapsed', clock_timestamp() - started,
        'status', coalesce(status, CASE WHEN _run_builder.full THEN 'ok: full rebuild' ELSE 'ok' END));
END
$$;
COMMENT ON FUNCTION @extschema@._run_builder(text, boolean) IS
    'Runs one builder of the registry in the caller''s transaction: takes its lock (or answers skipped), forgets its progress on full, claims its new raw rows, runs its plan, then its step for each guild (or once), then its finish, and returns its counters with elapsed and status as one JSON object. The public builder functions are this, turned into their rows.';


DROP FUNCTION @extschema@._voice_write_sessions(bigint, timestamptz, bigint[], timestamptz[]);

CREATE FUNCTION @extschema@._voice_write_sessions(guild_id bigint, horizon timestamptz,
                                      users bigint[], dirty_from timestamptz[],
                                      fresh boolean DEFAULT false,
                                      OUT users_rebuilt bigint, OUT sessions_opened bigint,
                                      OUT sessions_closed bigint, OUT sessions_updated bigint,
                                      OUT sessions_removed bigint, OUT changed_from timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g       bigint := _voice_write_sessions.guild_id;
    s       record;
    old     @extschema@.voice_sessions[];
    restart_users bigint[];
    restart_at    timestamptz[];
    marks_from    timestamptz;
    a_user        bigint[];
    a_channel     bigint[];
    a_start       timestamptz[];
    a_end         timestamptz[];
    a_start_reason text[];
    a_end_reason  text[];
    a_afk         boolean[];
    a_capped      boolean[];
    a_mute        double precision[];
    a_deaf        double precision[];
BEGIN
    SELECT * INTO s FROM @extschema@.settings_for(g);
    IF users IS NULL THEN
        -- The whole guild. A full rebuild's plan has emptied the table (fresh): nothing to
        -- delete, and with the indexes dropped until the builder's finish, looking would read
        -- every guild written so far.
        IF NOT fresh THEN
            DELETE FROM @extschema@.voice_sessions v WHERE v.guild_id = g;
        END IF;
        -- The sessions come as one row of column arrays that the insert unnests in its select
        -- list: returned a row at a time, or read from a function in FROM (which stores its
        -- whole result first), they cost more than the writing itself.
        SELECT (a.x).users, (a.x).user_id, (a.x).channel_id, (a.x).started_at, (a.x).ended_at,
               (a.x).start_reason, (a.x).end_reason, (a.x).is_afk, (a.x).capped,
               (a.x).self_mute_seconds, (a.x).self_deaf_seconds
          INTO users_rebuilt, a_user, a_channel, a_start, a_end, a_start_reason, a_end_reason,
               a_afk, a_capped, a_mute, a_deaf
          FROM (SELECT @extschema@._voice_sessionize_arrays(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                            s.session_cap, s.outage_after) AS x
                OFFSET 0) a;
        INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
        SELECT g, unnest(a_user), unnest(a_channel), unnest(a_start), unnest(a_end), unnest(a_end_reason),
               unnest(a_afk), unnest(a_start_reason), unnest(a_capped), unnest(a_mute), unnest(a_deaf);
        GET DIAGNOSTICS sessions_opened = ROW_COUNT;
        sessions_closed := 0; sessions_updated := 0; sessions_removed := 0;
        changed_from := '-infinity';
        RETURN;
    END IF;

    -- Each touched user is walked again from their last leave before the earliest instant the
    -- new rows touch: after a leave the user is out of voice whatever came before, so the
    -- walk can restart there from an empty state. Their sessions from that leave on are
    -- replaced. (Restarting at the touched instant itself would not do: the user may be in a
    -- session there, even one an outage made the old walk drop.) A user who never left starts
    -- at their first observation: their first event or, for one a snapshot listed first, their
    -- first session (a listing that opened none left them out of voice, as if unseen).
    --
    -- One index probe per user (two for a user who never left); none reads the history.
    SELECT array_agg(a.user_id ORDER BY a.user_id), array_agg(a.restart ORDER BY a.user_id)
      INTO restart_users, restart_at
      FROM (SELECT t.user_id, r.restart
              FROM (SELECT x.user_id, min(x.at) AS touched_at
                      FROM unnest(users, dirty_from) AS x(user_id, at)
                     GROUP BY x.user_id) t
              CROSS JOIN LATERAL (
                  SELECT coalesce((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e
                                    WHERE e.guild_id = g AND e.user_id = t.user_id
                                      AND e.channel_id IS NULL AND e.event_ts < t.touched_at),
                                  least((SELECT min(e.event_ts) FROM @extschema@.raw_voice_events e
                                          WHERE e.guild_id = g AND e.user_id = t.user_id),
                                        (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                          WHERE v.guild_id = g AND v.user_id = t.user_id),
                                        t.touched_at)) AS restart) r) a;
    restart_users := coalesce(restart_users, '{}');
    restart_at := coalesce(restart_at, '{}');

    -- By row address, each user's sessions found through the primary key: a join the planner
    -- may turn into a scan of the whole table would cost the history.
    WITH removed AS (
        DELETE FROM @extschema@.voice_sessions v
        WHERE v.ctid = ANY (ARRAY(
            SELECT d.ctid
              FROM unnest(restart_users, restart_at) AS r(user_id, restart)
              CROSS JOIN LATERAL (SELECT o.ctid FROM @extschema@.voice_sessions o
                                   WHERE o.guild_id = g AND o.user_id = r.user_id AND o.started_at >= r.restart
                                  OFFSET 0) d))
        RETURNING v.*
    )
    SELECT coalesce(array_agg(d), '{}') INTO old FROM removed d;

    -- Guild-wide marks (heartbeats, snapshots) matter to a user only while they are in a
    -- channel, so the walk needs them from the user's first entry after the restart, not from
    -- the restart: a user back after months away needs the marks since their return, not the
    -- months. That entry is an event entering a channel (_voice_sessionize finds the first
    -- among the events it reads), an old session (a snapshot listing that opened one: the
    -- sessions just removed are those from the restarts on), or comes at the touched instant.
    marks_from := least((SELECT min(x.at) FROM unnest(dirty_from) AS x(at)),
                        (SELECT min(o.started_at) FROM unnest(old) o));

    users_rebuilt := coalesce(cardinality(restart_users), 0);

    WITH fresh AS (
        INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
        SELECT g, n.user_id, n.channel_id, n.started_at, n.ended_at, n.end_reason,
               n.is_afk, n.start_reason, n.capped, n.self_mute_seconds, n.self_deaf_seconds
        FROM @extschema@._voice_sessionize(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                           s.session_cap, s.outage_after, restart_users, restart_at, marks_from) n
        RETURNING *
    ), compared AS (
        SELECT f.started_at AS new_start, f.ended_at AS new_end, o.started_at AS old_start, o.ended_at AS old_end,
               (f.*)::text IS DISTINCT FROM (o.*)::text AS changed
        FROM fresh f
        LEFT JOIN unnest(old) o ON o.user_id = f.user_id AND o.started_at = f.started_at
    )
    SELECT count(*) FILTER (WHERE old_start IS NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND old_end IS NULL AND new_end IS NOT NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND changed AND NOT (old_end IS NULL AND new_end IS NOT NULL)),
           cardinality(old) - count(old_start),
           least(min(new_start) FILTER (WHERE old_start IS NULL OR changed),
                 (SELECT min(o.started_at) FROM unnest(old) o
                   WHERE NOT EXISTS (SELECT 1 FROM compared c WHERE c.old_start = o.started_at AND c.new_start = o.started_at
                                       AND NOT c.changed)))
      INTO sessions_opened, sessions_closed, sessions_updated, sessions_removed, changed_from
      FROM compared;
END
$$;
COMMENT ON FUNCTION @extschema@._voice_write_sessions(bigint, timestamptz, bigint[], timestamptz[], boolean) IS
    'Internal to build_voice_sessions(): rewrites the sessions of a whole guild (users NULL) or of the listed users from their last leave before dirty_from on, counts what changed, and returns the earliest start of a changed session. fresh: the guild has no sessions (a full rebuild emptied the table), so there is nothing to delete.';


CREATE OR REPLACE FUNCTION @extschema@._build_voice_sessions_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    event_ids        int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    snapshot_ids     int8multirange := @extschema@._claimed(claims, 'raw_voice_snapshots');
    beat_ids         int8multirange := @extschema@._claimed(claims, 'raw_heartbeats');
    events_read      bigint;
    snapshots_read   bigint;
    heartbeats_read  bigint;
    event_guilds     bigint[];
    snapshot_guilds  bigint[];
    beat_guilds      bigint[];
    caller_jit       text := pg_catalog.current_setting('jit');
    guilds           jsonb;
    index_ddl        text[];
    drop_ddl         text[];
    ddl              text;
    commented        boolean;
    indexes_to_create jsonb := '[]';
BEGIN
    IF _build_voice_sessions_plan.full THEN
        DELETE FROM @extschema@.voice_build_guilds;
        TRUNCATE @extschema@.voice_sessions;
        -- Every guild's rows go into the table that the TRUNCATE left empty and that this
        -- transaction holds exclusively, without its indexes: _build_voice_sessions_finish
        -- builds them once from all the rows after the last guild's step, which costs a
        -- fraction of maintaining them row by row. No other transaction can see the table in
        -- between, and a rollback brings the indexes back. Only a role that owns the table
        -- may drop and create its indexes; any other caller writes through them. One catalog
        -- read gives both the drop and the create statements.
        SELECT coalesce(array_agg(CASE WHEN c.oid IS NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid)
                                       ELSE format('ALTER TABLE @extschema@.voice_sessions ADD CONSTRAINT %I %s',
                                                   c.conname, pg_catalog.pg_get_constraintdef(c.oid)) END
                                  ORDER BY x.relname), '{}'),
               coalesce(array_agg(CASE WHEN c.oid IS NULL THEN format('DROP INDEX @extschema@.%I', x.relname)
                                       ELSE format('ALTER TABLE @extschema@.voice_sessions DROP CONSTRAINT %I', c.conname) END
                                  ORDER BY x.relname), '{}'),
               -- A comment on an index or its constraint would not survive the drop.
               bool_or(pg_catalog.obj_description(i.indexrelid, 'pg_class') IS NOT NULL
                       OR pg_catalog.obj_description(c.oid, 'pg_constraint') IS NOT NULL)
          INTO index_ddl, drop_ddl, commented
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid
          LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
         WHERE i.indrelid = '@extschema@.voice_sessions'::regclass;
        IF cardinality(index_ddl) > 0 AND NOT commented
           AND pg_catalog.pg_has_role((SELECT t.relowner FROM pg_catalog.pg_class t
                                        WHERE t.oid = '@extschema@.voice_sessions'::regclass), 'USAGE') THEN
            FOREACH ddl IN ARRAY drop_ddl LOOP
                EXECUTE ddl;
            END LOOP;
            indexes_to_create := to_jsonb(index_ddl);
        END IF;
    ELSE
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    -- One pass over each claim: how many rows, and which guilds they touch.
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO events_read, event_guilds
      FROM (SELECT e.guild_id, count(*) AS n FROM @extschema@.raw_voice_events e
             WHERE e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
               AND (event_ids = int8multirange(range_merge(event_ids)) OR e.ingest_id <@ event_ids)
             GROUP BY e.guild_id) c;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO snapshots_read, snapshot_guilds
      FROM (SELECT x.guild_id, count(*) AS n FROM @extschema@.raw_voice_snapshots x
             WHERE x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
               AND x.ingest_id <@ snapshot_ids
             GROUP BY x.guild_id) c;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO heartbeats_read, beat_guilds
      FROM (SELECT b.guild_id, count(*) AS n FROM @extschema@.raw_heartbeats b
             WHERE b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1 AND b.ingest_id <@ beat_ids
               AND b.source = 'discord' AND b.guild_id IS NOT NULL
             GROUP BY b.guild_id) c;

    SELECT coalesce(jsonb_agg(t.guild_id ORDER BY t.guild_id), '[]') INTO guilds FROM (
        SELECT DISTINCT t.guild_id FROM unnest(event_guilds || snapshot_guilds || beat_guilds) AS t(guild_id)
        UNION
        SELECT d.guild_id FROM @extschema@.voice_build_guilds d
         WHERE d.settings_fingerprint IS DISTINCT FROM @extschema@._voice_settings_fingerprint(d.guild_id)
        ORDER BY 1
    ) t;
    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    RETURN jsonb_build_object('events_read', events_read, 'snapshots_read', snapshots_read,
                              'heartbeats_read', heartbeats_read, 'guilds', guilds,
                              'indexes_to_create', indexes_to_create);
END
$$;
COMMENT ON FUNCTION @extschema@._build_voice_sessions_plan(jsonb, boolean) IS
    'Internal: the plan of build_voice_sessions (see guildstats.builders): empties the sessions on a full rebuild (and, for a caller who owns voice_sessions, drops its indexes, returning their statements as indexes_to_create for _build_voice_sessions_finish), counts the claimed rows and lists the guilds to build.';


CREATE FUNCTION @extschema@._build_voice_sessions_finish(claims jsonb, full boolean, plan jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ddl text;
BEGIN
    FOR ddl IN
        SELECT d FROM jsonb_array_elements_text(CASE jsonb_typeof(plan->'indexes_to_create')
                                                     WHEN 'array' THEN plan->'indexes_to_create' ELSE '[]' END) d
    LOOP
        -- Only what the plan can have written: an index or a constraint of voice_sessions.
        IF ddl !~ '^CREATE (UNIQUE )?INDEX \S+ ON @extschema@\.voice_sessions ' AND ddl !~ '^ALTER TABLE @extschema@\.voice_sessions ADD CONSTRAINT ' THEN
            RAISE EXCEPTION 'guildstats: _build_voice_sessions_finish: % is not an index of voice_sessions', ddl;
        END IF;
        EXECUTE ddl;
    END LOOP;
    RETURN '{}';
END
$$;
COMMENT ON FUNCTION @extschema@._build_voice_sessions_finish(jsonb, boolean, jsonb) IS
    'Internal: the finish of build_voice_sessions (see guildstats.builders): creates the indexes and constraints of voice_sessions that the plan dropped for a full rebuild (plan->indexes_to_create), after every guild''s rows are in.';


CREATE OR REPLACE FUNCTION @extschema@._build_voice_sessions_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g             bigint := _build_voice_sessions_step.guild;
    event_ids     int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    snapshot_ids  int8multirange := @extschema@._claimed(claims, 'raw_voice_snapshots');
    beat_ids      int8multirange := @extschema@._claimed(claims, 'raw_heartbeats');
    done          record;
    written       record;
    horizon       timestamptz;
    beats_exist   boolean;
    fingerprint   text;
    whole_guild   boolean;
    guild_dirty   timestamptz;
    users         bigint[];
    dirty_from    timestamptz[];
    changed       timestamptz;
    caller_jit    text := pg_catalog.current_setting('jit');
BEGIN
    IF NOT _build_voice_sessions_step.full THEN
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    SELECT max(b.beat_at) INTO horizon FROM @extschema@.raw_heartbeats b
     WHERE b.source = 'discord' AND b.guild_id = g;
    beats_exist := horizon IS NOT NULL;
    IF NOT beats_exist THEN
        SELECT greatest((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e WHERE e.guild_id = g),
                        (SELECT max(x.taken_at) FROM @extschema@.raw_voice_snapshots x WHERE x.guild_id = g))
          INTO horizon;
    END IF;
    IF horizon IS NULL THEN
        PERFORM pg_catalog.set_config('jit', caller_jit, true);
        RETURN '{}';  -- heartbeats of another source only: nothing to build
    END IF;
    fingerprint := @extschema@._voice_settings_fingerprint(g);
    SELECT * INTO done FROM @extschema@.voice_build_guilds d WHERE d.guild_id = g;
    whole_guild := done IS NULL OR done.settings_fingerprint IS DISTINCT FROM fingerprint
                   OR done.has_heartbeats IS DISTINCT FROM beats_exist OR horizon < done.horizon;

    IF whole_guild THEN
        users := NULL;
        dirty_from := NULL;
    ELSE
        -- Guild-wide changes reach every user in a session at or after them: a new snapshot,
        -- heartbeats that change the outages (from the last old beat before the earliest new
        -- one), and the move of the horizon itself.
        SELECT least(done.horizon,
                     (SELECT min(x.taken_at) FROM @extschema@.raw_voice_snapshots x
                       WHERE x.guild_id = g
                         AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                         AND x.ingest_id <@ snapshot_ids),
                     (SELECT coalesce((SELECT max(o.beat_at) FROM @extschema@.raw_heartbeats o
                                        WHERE o.source = 'discord' AND o.guild_id = g
                                          AND o.beat_at < nb.first_new
                                          AND NOT (o.ingest_id <@ beat_ids)),
                                      nb.first_new)
                        FROM (SELECT min(b.beat_at) AS first_new FROM @extschema@.raw_heartbeats b
                               WHERE b.source = 'discord' AND b.guild_id = g
                                 AND b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1
                                 AND b.ingest_id <@ beat_ids) nb))
          INTO guild_dirty;
        SELECT array_agg(t.user_id), array_agg(t.at) INTO users, dirty_from
          FROM (SELECT e.user_id, min(e.event_ts) AS at FROM @extschema@.raw_voice_events e
                 WHERE e.guild_id = g
                   AND e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
                   AND e.ingest_id <@ event_ids
                 GROUP BY e.user_id
                UNION ALL
                SELECT v.user_id, x.taken_at
                  FROM @extschema@.raw_voice_snapshots x
                  CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                 WHERE x.guild_id = g
                   AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                   AND x.ingest_id <@ snapshot_ids
                UNION ALL
                -- Sessions that end after the change without an event of their user after
                -- it (a leave or a move is such an event, and is found just below).
                SELECT v.user_id, guild_dirty FROM @extschema@.voice_sessions v
                 WHERE v.guild_id = g AND (v.ended_at >= guild_dirty OR v.ended_at IS NULL)
                   AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))
                UNION ALL
                -- Users seen after a guild-wide change may have had sessions the old walk
                -- dropped (begun inside what looked like an outage): walk them again too.
                SELECT DISTINCT e.user_id, guild_dirty FROM @extschema@.raw_voice_events e
                 WHERE e.guild_id = g AND e.event_ts >= guild_dirty
                UNION ALL
                SELECT DISTINCT v.user_id, guild_dirty
                  FROM @extschema@.raw_voice_snapshots x
                  CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                 WHERE x.guild_id = g AND x.taken_at >= guild_dirty
               ) t;
        users := coalesce(users, '{}');
        dirty_from := coalesce(dirty_from, '{}');
    END IF;

    SELECT w.* INTO written
      FROM @extschema@._voice_write_sessions(g, horizon, users, dirty_from,
                                             _build_voice_sessions_step.full) w;
    changed := written.changed_from;
    -- Open sessions grow with the horizon even when nothing else changed. (Nothing starts
    -- before a whole guild's '-infinity', and during a full rebuild the table may have no
    -- index to find them by.)
    IF changed IS DISTINCT FROM '-infinity' THEN
        SELECT least(changed, (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                WHERE v.guild_id = g AND v.ended_at IS NULL
                                  AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))))
          INTO changed;
    END IF;
    PERFORM @extschema@._note_voice_change(g, changed);

    INSERT INTO @extschema@.voice_build_guilds AS d (guild_id, horizon, has_heartbeats, settings_fingerprint, built_at)
    VALUES (g, horizon, beats_exist, fingerprint, now())
    ON CONFLICT (guild_id) DO UPDATE
       SET horizon = EXCLUDED.horizon, has_heartbeats = EXCLUDED.has_heartbeats,
           settings_fingerprint = EXCLUDED.settings_fingerprint, built_at = EXCLUDED.built_at;

    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    RETURN jsonb_build_object('guilds_built', 1, 'users_rebuilt', written.users_rebuilt,
                              'sessions_opened', written.sessions_opened, 'sessions_closed', written.sessions_closed,
                              'sessions_updated', written.sessions_updated, 'sessions_removed', written.sessions_removed);
END
$$;
COMMENT ON FUNCTION @extschema@._build_voice_sessions_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_voice_sessions (see guildstats.builders): rewrites one guild''s sessions from its earliest new observation on, or all of them when its settings, heartbeats or horizon changed, and tells the downstream builders from when.';



UPDATE @extschema@.builders SET finish = '@extschema@._build_voice_sessions_finish(jsonb, boolean, jsonb)'
 WHERE name = 'build_voice_sessions';
-- ==== end of #13 voice write floor

-- ==== #14 commands: /top messages from a per-member message rollup (issue 14, item 4).
-- ==== build_rollups() keeps member_messages_daily and member_messages_monthly (the raw rows it
-- ==== has processed); command_top reads them plus the raw rows not processed yet and as_of's
-- ==== own day. command_voice ranks the week and the month in one pass over the sessions and
-- ==== reads the member's own sessions for the 12 weeks. Same statements as
-- ==== sql/extension/rollups.sql, build_all.sql and commands.sql.
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

-- The rows processed so far, as build_rollups() would have counted them: the raw rows it has
-- not processed stay command_top's raw tail until its next run.
INSERT INTO member_messages_daily (guild_id, day, user_id, messages)
SELECT m.guild_id, (m.sent_at AT TIME ZONE s.calendar_time_zone)::date, m.user_id, count(*)
FROM raw_messages m
CROSS JOIN LATERAL settings_for(m.guild_id) s
JOIN build_progress p ON p.builder = 'build_rollups' AND p.source_table = 'raw_messages'
WHERE m.guild_id IS NOT NULL AND NOT m.is_bot AND m.ingest_id <= p.processed_through AND NOT m.ingest_id <@ p.pending_ids
GROUP BY 1, 2, 3;
INSERT INTO member_messages_monthly (guild_id, month, user_id, messages)
SELECT d.guild_id, date_trunc('month', d.day)::date, d.user_id, sum(d.messages)
FROM member_messages_daily d
GROUP BY 1, 2, 3;
SELECT count(@extschema@.isolate_by_guild(t))
  FROM unnest(ARRAY['@extschema@.member_messages_daily', '@extschema@.member_messages_monthly']::regclass[]) AS t;
UPDATE builders SET reads = '{raw_messages,raw_voice_events,raw_point_transactions,raw_server_polls,raw_member_events,raw_heartbeats,raw_et_stats_files,settings,members,voice_session_changes,voice_build_guilds,voice_sessions,events,event_attendance,member_voice_daily,member_engagement_weekly,member_monthly_status,member_active_days,guild_activity_daily,chat_channel_daily,chat_activity_5min,guild_voice_hourly,member_points_daily,economy_daily,member_point_balances,guild_points_reason_daily,member_points_monthly,guild_monthly_status,member_messages_daily,member_messages_monthly,server_polls_hourly,ingest_lag_rollup}' WHERE name = 'build_rollups';

CREATE OR REPLACE FUNCTION _build_rollups_plan(claims jsonb, full boolean)
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

CREATE OR REPLACE FUNCTION _rollup_dashboards(guild_id bigint, tz text, horizon timestamptz, voice_from timestamptz,
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

COMMENT ON FUNCTION build_rollups(boolean) IS
    'Refreshes member_voice_daily, member_engagement_weekly and member_monthly_status from the first day that changed (voice sessions rewritten by build_voice_sessions(), attendance, new messages) on, per guild, in the guild''s calendar time zone. Returns one summary row; full => true starts over. Also keeps the dashboard rollups the BI mart reads (member_active_days, guild_activity_daily, chat_channel_daily, chat_activity_5min, guild_voice_hourly, member_points_daily, economy_daily, server_polls_hourly, ingest_lag_rollup) and the message counts /top messages reads (member_messages_daily, member_messages_monthly). build_all() runs it last.';

CREATE OR REPLACE FUNCTION command_top(guild_id bigint, metric text, period text DEFAULT 'all', map text DEFAULT NULL,
                            max_rows integer DEFAULT 10, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
-- The messages tail is a narrow range of ingest ids or of one day, where a generic plan
-- (estimated for any bounds) would read the whole raw table.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    metrics constant text[] := ARRAY['kills', 'dpm', 'kd', 'damage', 'gibs', 'time', 'voice_hours', 'messages'];
    periods constant text[] := ARRAY['week', 'month', 'season', 'all'];
    at_time timestamptz := @extschema@._command_as_of(as_of);
    cfg record;
    since timestamptz;
    wanted_map text := nullif(btrim(map), '');
    rows_out jsonb;
    at_day date;
    at_day_start timestamptz;
    since_day date;
    month_lo date;
    month_hi date;
    done_through bigint;
    done_pending int8multirange;
BEGIN
    IF metric IS NULL OR NOT lower(metric) = ANY (metrics) THEN
        RETURN @extschema@._command_error(format('Unknown metric "%s": use one of %s.', left(coalesce(metric, ''), 64), array_to_string(metrics, ', ')));
    END IF;
    IF period IS NULL OR NOT lower(period) = ANY (periods) THEN
        RETURN @extschema@._command_error(format('Unknown period "%s": use one of %s.', left(coalesce(period, ''), 64), array_to_string(periods, ', ')));
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 100 THEN
        RETURN @extschema@._command_error('max_rows must be between 1 and 100.');
    END IF;
    IF length(wanted_map) > 64 THEN
        RETURN @extschema@._command_error(format('A map name is at most 64 characters; this one has %s.', length(wanted_map)));
    END IF;
    metric := lower(metric);
    period := lower(period);
    SELECT * INTO cfg FROM @extschema@.command_settings_for(command_top.guild_id);
    since := @extschema@._command_period_start(command_top.guild_id, period, at_time);

    IF metric = 'voice_hours' AND NOT EXISTS (SELECT 1 FROM @extschema@.voice_sessions v WHERE v.guild_id = command_top.guild_id) THEN
        RETURN @extschema@._command_error('No voice time has been recorded in this guild yet.');
    ELSIF metric = 'messages' AND NOT EXISTS (SELECT 1 FROM @extschema@.raw_messages m WHERE m.guild_id = command_top.guild_id) THEN
        RETURN @extschema@._command_error('No message has been recorded in this guild yet.');
    ELSIF metric NOT IN ('voice_hours', 'messages') AND NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds) THEN
        RETURN @extschema@._command_error('No ET:Legacy rounds have been imported yet.');
    END IF;

    IF metric = 'messages' THEN
        -- Counting the raw rows took 2 s at 5M messages. build_rollups() keeps the processed
        -- rows per member and day and month: whole months from the monthly rollup, the other
        -- days before as_of's from the daily one; from the raw table as_of's own day (the
        -- rollup counts it whole) and the rows the rollup has not processed yet. Those sets do
        -- not overlap, so the answer is the count of the raw rows.
        at_day := (at_time AT TIME ZONE cfg.calendar_time_zone)::date;
        at_day_start := at_day::timestamp AT TIME ZONE cfg.calendar_time_zone;
        since_day := (since AT TIME ZONE cfg.calendar_time_zone)::date;
        month_lo := CASE WHEN since_day = date_trunc('month', since_day)::date THEN since_day
                         ELSE (date_trunc('month', since_day) + interval '1 month')::date END;
        month_hi := date_trunc('month', at_day)::date;
        IF month_lo >= month_hi THEN
            month_lo := greatest(since_day, at_day);
            month_hi := month_lo;
        END IF;
        SELECT p.processed_through, p.pending_ids INTO done_through, done_pending
          FROM @extschema@.build_progress p
         WHERE p.builder = 'build_rollups' AND p.source_table = 'raw_messages';
        done_through := coalesce(done_through, 0);
        done_pending := coalesce(done_pending, '{}');
    END IF;

    IF metric IN ('voice_hours', 'messages') THEN
        WITH scores AS (
            SELECT v.user_id, v.seconds / 3600.0 AS value
            FROM @extschema@._voice_seconds(command_top.guild_id, since, at_time) v
            WHERE metric = 'voice_hours' AND v.seconds > 0
            UNION ALL
            SELECT x.user_id, sum(x.messages)
            FROM (SELECT d.user_id, d.messages FROM @extschema@.member_messages_daily d
                   WHERE d.guild_id = command_top.guild_id AND d.day >= since_day AND d.day < month_lo
                  UNION ALL
                  SELECT m.user_id, m.messages FROM @extschema@.member_messages_monthly m
                   WHERE m.guild_id = command_top.guild_id AND m.month >= month_lo AND m.month < month_hi
                  UNION ALL
                  SELECT d.user_id, d.messages FROM @extschema@.member_messages_daily d
                   WHERE d.guild_id = command_top.guild_id AND d.day >= month_hi AND d.day < at_day
                  UNION ALL
                  SELECT r.user_id, 1 FROM @extschema@.raw_messages r
                   WHERE r.guild_id = command_top.guild_id AND NOT r.is_bot
                     AND r.sent_at >= greatest(since, at_day_start) AND r.sent_at < at_time
                  UNION ALL
                  SELECT r.user_id, 1 FROM @extschema@.raw_messages r
                   WHERE r.ingest_id > done_through
                     AND r.guild_id = command_top.guild_id AND NOT r.is_bot
                     AND r.sent_at >= since AND r.sent_at < at_day_start
                  UNION ALL
                  SELECT r.user_id, 1 FROM @extschema@.raw_messages r
                   WHERE r.ingest_id BETWEEN lower(done_pending) AND upper(done_pending) - 1
                     AND r.ingest_id <@ done_pending
                     AND r.guild_id = command_top.guild_id AND NOT r.is_bot
                     AND r.sent_at >= since AND r.sent_at < at_day_start) x
            WHERE metric = 'messages'
            GROUP BY x.user_id
        ), ranked AS (
            SELECT rank() OVER (ORDER BY s.value DESC) AS rank, s.* FROM scores s
            ORDER BY s.value DESC, s.user_id LIMIT max_rows
        )
        SELECT jsonb_agg(jsonb_build_object(
                   'rank', r.rank, 'name', mb.display_name, 'guid', NULL, 'user_id', r.user_id::text,
                   'value', round(r.value::numeric, CASE WHEN metric = 'voice_hours' THEN 1 ELSE 0 END)::double precision, 'rounds', NULL)
               ORDER BY r.rank, r.user_id)
          INTO rows_out
          FROM ranked r
          LEFT JOIN @extschema@.members mb ON mb.guild_id = command_top.guild_id AND mb.user_id = r.user_id;
    ELSE
        SELECT jsonb_agg(jsonb_build_object(
                   'rank', l.rank, 'name', l.name, 'guid', l.guid, 'user_id', k.user_id::text,
                   'value', round(l.value::numeric, CASE WHEN metric IN ('kd', 'dpm') THEN 2 ELSE 0 END)::double precision,
                   'rounds', l.rounds)
               ORDER BY l.rank, l.guid)
          INTO rows_out
          FROM @extschema@.et_leaderboard(
                   CASE metric WHEN 'time' THEN 'time_played' ELSE metric END,
                   since => CASE WHEN since = '-infinity' THEN NULL ELSE since AT TIME ZONE cfg.calendar_time_zone END,
                   until => at_time AT TIME ZONE cfg.calendar_time_zone,
                   map => wanted_map, min_rounds => cfg.top_min_rounds, top => max_rows) l
          LEFT JOIN @extschema@.et_guid_links k ON k.guid = l.guid AND k.guild_id = command_top.guild_id;
    END IF;
    RETURN jsonb_build_object(
        'ok', true, 'metric', metric, 'period', period, 'map', wanted_map,
        'since', CASE WHEN since = '-infinity' THEN NULL ELSE since END,
        'min_rounds', CASE WHEN metric IN ('voice_hours', 'messages') THEN NULL ELSE cfg.top_min_rounds END,
        'rows', coalesce(rows_out, '[]'));
END
$$;
COMMENT ON FUNCTION command_top(bigint, text, text, text, integer, timestamptz) IS
    'The /top answer: a leaderboard of metric kills, dpm, kd, damage, gibs, time (ET:Legacy, counted rounds, players with at least command_settings.top_min_rounds rounds in the period, optionally on one map) or voice_hours, messages (Discord members of the guild; AFK and bots left out; messages from build_rollups()''s member_messages_daily and member_messages_monthly plus the raw rows it has not processed yet and as_of''s own day, so the same count as the raw messages) over period week (since Monday), month (since the 1st), season (since command_settings.season_start) or all, in the guild''s calendar time zone, up to as_of (default now). Times are hours for voice_hours and seconds for time. Example: SELECT jsonb_pretty(guildstats.command_top(1234, ''kills'', ''all'', max_rows => 3));';

CREATE OR REPLACE FUNCTION command_voice(guild_id bigint, user_id bigint, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    at_time timestamptz := @extschema@._command_as_of(as_of);
    tz text := (SELECT s.calendar_time_zone FROM @extschema@.settings_for(command_voice.guild_id) s);
    wk_from timestamptz := @extschema@._command_period_start(command_voice.guild_id, 'week', at_time);
    mo_from timestamptz := @extschema@._command_period_start(command_voice.guild_id, 'month', at_time);
    answer jsonb;
BEGIN
    IF command_voice.user_id IS NULL THEN
        RETURN @extschema@._command_error('Name a member.');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.voice_sessions v
                    WHERE v.guild_id = command_voice.guild_id AND v.user_id = command_voice.user_id AND v.started_at < at_time) THEN
        RETURN @extschema@._command_error('No voice time recorded for this member yet.');
    END IF;
    -- The week's and the month's ranks need every member's time: one pass over the guild's
    -- sessions for both (voice_sessions has no time index: each pass reads them all), with the
    -- sums of _voice_seconds. The 12 weeks are the member's own sessions only (the key).
    WITH both_periods AS (
        SELECT v.user_id,
               sum(extract(epoch FROM least(coalesce(v.ended_at, at_time), at_time) - greatest(v.started_at, wk_from)))
                   FILTER (WHERE coalesce(v.ended_at, 'infinity') > wk_from)::double precision AS wk_seconds,
               sum(extract(epoch FROM least(coalesce(v.ended_at, at_time), at_time) - greatest(v.started_at, mo_from)))
                   FILTER (WHERE coalesce(v.ended_at, 'infinity') > mo_from)::double precision AS mo_seconds
        FROM @extschema@.voice_sessions v
        WHERE v.guild_id = command_voice.guild_id AND NOT v.is_afk
          AND v.started_at < at_time AND coalesce(v.ended_at, 'infinity') > least(wk_from, mo_from)
        GROUP BY v.user_id
    ), wk AS (
        SELECT b.user_id, b.wk_seconds AS seconds, rank() OVER (ORDER BY b.wk_seconds DESC) AS rank
        FROM both_periods b WHERE b.wk_seconds > 0
    ), mo AS (
        SELECT b.user_id, b.mo_seconds AS seconds, rank() OVER (ORDER BY b.mo_seconds DESC) AS rank
        FROM both_periods b WHERE b.mo_seconds > 0
    ), weeks AS (
        SELECT g.week_start,
               (SELECT sum(extract(epoch FROM least(coalesce(v.ended_at, g.week_end), g.week_end) - greatest(v.started_at, g.week_start)))
                  FROM @extschema@.voice_sessions v
                 WHERE v.guild_id = command_voice.guild_id AND v.user_id = command_voice.user_id AND NOT v.is_afk
                   AND v.started_at < g.week_end AND coalesce(v.ended_at, 'infinity') > g.week_start) AS seconds
        FROM (SELECT s.week_start, least(s.week_start + interval '7 days', at_time) AS week_end
              FROM (SELECT (date_trunc('week', at_time AT TIME ZONE tz) - n * interval '7 days') AT TIME ZONE tz AS week_start
                    FROM generate_series(0, 11) n) s) g
    )
    SELECT jsonb_build_object(
        'ok', true,
        'user_id', command_voice.user_id::text,
        'name', (SELECT mb.display_name FROM @extschema@.members mb
                  WHERE mb.guild_id = command_voice.guild_id AND mb.user_id = command_voice.user_id),
        'hours_week', round(coalesce((SELECT w.seconds FROM wk w WHERE w.user_id = command_voice.user_id), 0)::numeric / 3600, 1)::double precision,
        'hours_month', round(coalesce((SELECT m.seconds FROM mo m WHERE m.user_id = command_voice.user_id), 0)::numeric / 3600, 1)::double precision,
        'rank_week', (SELECT w.rank FROM wk w WHERE w.user_id = command_voice.user_id),
        'rank_month', (SELECT m.rank FROM mo m WHERE m.user_id = command_voice.user_id),
        'members_ranked', (SELECT count(*) FROM mo),
        'members_ranked_week', (SELECT count(*) FROM wk),
        -- Partners from the co-presence builder (build_voice_copresence, run by build_all):
        -- shared minutes per pair and calendar day, the last 30 days including today.
        'partners', coalesce((SELECT jsonb_agg(jsonb_build_object('user_id', tp.partner_id::text, 'name', tp.partner_name,
                                                                  'shared_minutes', round(tp.shared_minutes)::bigint,
                                                                  'days_together', tp.days_together)
                                               ORDER BY tp.shared_minutes DESC, tp.partner_id)
                              FROM @extschema@.voice_top_partners(command_voice.guild_id, command_voice.user_id,
                                                                  from_day => (at_time AT TIME ZONE tz)::date - 29,
                                                                  to_day => (at_time AT TIME ZONE tz)::date,
                                                                  max_rows => 5) tp
                              WHERE tp.shared_minutes >= 1), '[]'),
        'weeks', (SELECT jsonb_agg(jsonb_build_object('week_start', (w.week_start AT TIME ZONE tz)::date,
                                                      'hours', round(coalesce(w.seconds, 0)::numeric / 3600, 1)::double precision)
                                   ORDER BY w.week_start) FROM weeks w))
      INTO answer;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION command_voice(bigint, bigint, timestamptz) IS
    'The /voice answer for a member at as_of (default now): voice hours this calendar week and month (guild time zone, AFK excluded, open sessions up to as_of), rank among the members with voice time in that week and month (members_ranked counts the month''s), the top 5 partners by minutes shared in the same channel on the last 30 calendar days (voice_top_partners, from the co-presence builder; at least one minute), and the hours of each of the last 12 weeks, oldest first. Example: SELECT jsonb_pretty(guildstats.command_voice(1234, 42));';
-- ==== end of #14 commands: /top messages and /voice

-- ==== #11 chart speed (issue 11: 6): guild-level rollups for the voice, engagement and cohort
-- ==== charts (guild_voice_daily, member_voice_monthly, guild_engagement_weekly,
-- ==== member_engagement_monthly, guild_retention_cohorts, kept by build_rollups() through _rollup_charts()), the mart views
-- ==== that read them, and health() finding each heartbeat pair through the key instead of
-- ==== grouping every beat. Same statements as sql/extension/rollups.sql, mart.sql and activity.sql.
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

CREATE OR REPLACE FUNCTION _build_rollups_step(guild bigint, claims jsonb, full boolean)
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

CREATE OR REPLACE VIEW guildstats_mart.retention_cohorts AS
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

CREATE OR REPLACE FUNCTION health()
RETURNS TABLE (check_name text, severity text, status text, detail text)
LANGUAGE sql STABLE
-- Its plan is estimated dear (a probe per member, a count per quarantined table) though it
-- reads a few index entries per check: JIT compiling it took over 3 of its 3.5 s on the
-- benchmark community, on every dashboard refresh.
SET jit = off
AS $$
    -- The latest arrival is the row with the highest ingest_id (arrival order): one step down
    -- the primary key instead of reading every received_at of tables of millions of rows.
    WITH latest AS (
        SELECT 'raw_heartbeats' AS source_table,
               (SELECT t.received_at FROM @extschema@.raw_heartbeats t ORDER BY t.ingest_id DESC LIMIT 1) AS last_row
        UNION ALL SELECT 'raw_voice_events',
               (SELECT t.received_at FROM @extschema@.raw_voice_events t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_messages',
               (SELECT t.received_at FROM @extschema@.raw_messages t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_member_events',
               (SELECT t.received_at FROM @extschema@.raw_member_events t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_server_polls',
               (SELECT t.received_at FROM @extschema@.raw_server_polls t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_point_transactions',
               (SELECT t.received_at FROM @extschema@.raw_point_transactions t ORDER BY t.ingest_id DESC LIMIT 1)
        UNION ALL SELECT 'raw_et_stats_files',
               (SELECT t.received_at FROM @extschema@.raw_et_stats_files t ORDER BY t.ingest_id DESC LIMIT 1)),
    freshness AS (
        SELECT 'freshness: ' || source_table AS check_name,
               CASE WHEN source_table IN ('raw_heartbeats', 'raw_server_polls') THEN 'critical' ELSE 'warning' END AS severity,
               CASE WHEN last_row IS NULL THEN 'no data'
                    WHEN now() - last_row > CASE WHEN source_table IN ('raw_heartbeats', 'raw_server_polls')
                                                 THEN interval '15 minutes' ELSE interval '1 day' END THEN 'stale'
                    ELSE 'ok' END AS status,
               coalesce('last row received ' || to_char(last_row AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC',
                        'no rows yet') AS detail
        FROM latest),
    -- Each (source, guild) pair found by skipping through the (source, guild_id, beat_at) key
    -- (a guild of NULL sorts after the others), and its last beat one step down it, instead of
    -- grouping every beat ever received (a year of beats is millions of rows).
    beat_pairs AS (
        WITH RECURSIVE pairs AS (
            (SELECT h.source, h.guild_id FROM @extschema@.raw_heartbeats h ORDER BY h.source, h.guild_id LIMIT 1)
            UNION ALL
            SELECT n.source, n.guild_id
            FROM pairs p
            CROSS JOIN LATERAL (
                (SELECT h.source, h.guild_id FROM @extschema@.raw_heartbeats h
                  WHERE h.source = p.source AND h.guild_id > p.guild_id ORDER BY h.guild_id LIMIT 1)
                UNION ALL
                (SELECT h.source, h.guild_id FROM @extschema@.raw_heartbeats h
                  WHERE h.source = p.source AND h.guild_id IS NULL AND p.guild_id IS NOT NULL LIMIT 1)
                UNION ALL
                (SELECT h.source, h.guild_id FROM @extschema@.raw_heartbeats h
                  WHERE h.source > p.source ORDER BY h.source, h.guild_id LIMIT 1)
                LIMIT 1) n)
        SELECT p.source, p.guild_id,
               CASE WHEN p.guild_id IS NULL
                    -- Backwards, the rows of no guild come first, each guild's latest beat first.
                    THEN (SELECT h.beat_at FROM @extschema@.raw_heartbeats h WHERE h.source = p.source
                           ORDER BY h.guild_id DESC NULLS FIRST, h.beat_at DESC LIMIT 1)
                    ELSE (SELECT h.beat_at FROM @extschema@.raw_heartbeats h
                           WHERE h.source = p.source AND h.guild_id = p.guild_id ORDER BY h.beat_at DESC LIMIT 1)
               END AS last_beat
        FROM pairs p),
    beats AS (
        SELECT 'heartbeat: ' || source || coalesce(' guild ' || guild_id, '') AS check_name, 'critical' AS severity,
               CASE WHEN now() - last_beat > interval '5 minutes' THEN 'missing' ELSE 'ok' END AS status,
               'last beat ' || to_char(last_beat AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS detail
        FROM beat_pairs),
    et AS (
        SELECT 'et files: failed imports' AS check_name, 'warning' AS severity,
               CASE WHEN count(*) FILTER (WHERE import_error IS NOT NULL) > 0 THEN 'failing' ELSE 'ok' END AS status,
               count(*) FILTER (WHERE import_error IS NOT NULL) || ' of ' || count(*) || ' files have an import_error' AS detail
        FROM @extschema@.raw_et_stats_files
        UNION ALL
        SELECT 'et files: not imported', 'warning',
               CASE WHEN count(*) > 0 THEN 'pending' ELSE 'ok' END,
               count(*) || ' files received over an hour ago are not imported yet'
        FROM @extschema@.raw_et_stats_files
        WHERE imported_at IS NULL AND import_error IS NULL AND received_at < now() - interval '1 hour'),
    orphans AS (
        SELECT 'activity without member row' AS check_name, 'info' AS severity,
               CASE WHEN count(*) > 0 THEN 'found' ELSE 'ok' END AS status,
               count(*) || ' users are active but have no raw_member_events row (joined before tracking began?)' AS detail
        -- The people build_members() has seen, each probed in the raw tables through their
        -- (guild_id, user_id, time) indexes, instead of every raw row made distinct.
        FROM @extschema@.members x
        WHERE NOT EXISTS (SELECT 1 FROM @extschema@.raw_member_events m
                           WHERE m.guild_id = x.guild_id AND m.user_id = x.user_id)
          AND (EXISTS (SELECT 1 FROM @extschema@.raw_voice_events v
                        WHERE v.guild_id = x.guild_id AND v.user_id = x.user_id AND v.channel_id IS NOT NULL)
               OR EXISTS (SELECT 1 FROM @extschema@.raw_messages r
                           WHERE r.guild_id = x.guild_id AND r.user_id = x.user_id AND NOT r.is_bot)
               OR EXISTS (SELECT 1 FROM @extschema@.raw_point_transactions t
                           WHERE t.guild_id = x.guild_id AND t.user_id = x.user_id))),
    -- Each server's last hour through the (server, polled_at) key: the servers found by skipping
    -- through it, not by reading every poll ever made.
    polls AS (
        SELECT 'game server: ' || l.server AS check_name, 'warning' AS severity,
               CASE WHEN x.failed * 2 > x.n THEN 'down'
                    WHEN x.failed > 0 THEN 'degraded' ELSE 'ok' END AS status,
               x.failed || ' of ' || x.n || ' polls failed in the last hour of data' AS detail
        FROM (WITH RECURSIVE servers AS (
                  SELECT (SELECT min(s.server) FROM @extschema@.raw_server_polls s) AS server
                  UNION ALL
                  SELECT (SELECT min(s.server) FROM @extschema@.raw_server_polls s WHERE s.server > v.server)
                  FROM servers v WHERE v.server IS NOT NULL)
              SELECT servers.server FROM servers WHERE servers.server IS NOT NULL) l
        CROSS JOIN LATERAL (SELECT max(q.polled_at) AS last_poll FROM @extschema@.raw_server_polls q
                             WHERE q.server = l.server) m
        CROSS JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE NOT p.ok) AS failed
                              FROM @extschema@.raw_server_polls p
                             WHERE p.server = l.server AND p.polled_at > m.last_poll - interval '1 hour') x),
    -- Counted up to 100,000 per raw table, each table found by skipping through the
    -- (source_table, row_hash) key: an exact count of millions of set-aside rows (a replay of
    -- far-future data) would cost seconds on every dashboard refresh and say no more.
    quarantined AS (
        SELECT 'quarantined rows' AS check_name, 'warning' AS severity,
               CASE WHEN sum(n) > 0 THEN 'found' ELSE 'ok' END AS status,
               CASE WHEN bool_or(n > 100000) THEN 'over ' ELSE '' END || coalesce(sum(least(n, 100000)), 0)
               || ' raw rows are in quarantine (dated too far ahead of their arrival, or set aside by an upgrade)'
               || coalesce(' (' || string_agg(source_table || ': ' || CASE WHEN n > 100000 THEN 'over 100000' ELSE n::text END,
                                              ', ' ORDER BY source_table) || ')', '') AS detail
        FROM (WITH RECURSIVE sources AS (
                  SELECT (SELECT min(q.source_table) FROM @extschema@.quarantine q) AS source_table
                  UNION ALL
                  SELECT (SELECT min(q.source_table) FROM @extschema@.quarantine q WHERE q.source_table > s.source_table)
                  FROM sources s WHERE s.source_table IS NOT NULL)
              SELECT s.source_table, c.n
              FROM sources s
              CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM @extschema@.quarantine q
                                                               WHERE q.source_table = s.source_table LIMIT 100001) x) c
              WHERE s.source_table IS NOT NULL) per_table),
    -- Who holds the builders' locks (rows of builder_locks, locked FOR UPDATE: a RowShareLock on
    -- the table, which only roles with UPDATE on it can take). A build holds them for seconds; a
    -- transaction that holds one for minutes keeps every build skipped and erase_member()
    -- waiting. The transaction's age is visible to superusers and pg_read_all_stats members.
    lock_holders AS (
        SELECT l.pid, a.xact_start
        FROM (SELECT DISTINCT k.pid FROM pg_catalog.pg_locks k
               WHERE k.locktype = 'relation' AND k.relation = '@extschema@.builder_locks'::regclass
                 AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                 AND k.mode = 'RowShareLock' AND k.granted AND k.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()) l
        LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid),
    builder_locks AS (
        SELECT 'builder locks' AS check_name, 'warning' AS severity,
               CASE WHEN bool_or(h.xact_start < now() - interval '5 minutes') THEN 'stuck'
                    WHEN count(*) > 0 THEN 'busy' ELSE 'ok' END AS status,
               coalesce('held by pid ' || string_agg(h.pid || coalesce(' since ' || to_char(h.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', ''),
                                                   ', ' ORDER BY h.pid)
                        || '; while held, builds are skipped and erase_member() waits',
                        'no builder lock is held') AS detail
        FROM lock_holders h)
    SELECT * FROM freshness
    UNION ALL SELECT * FROM beats
    UNION ALL SELECT * FROM et
    UNION ALL SELECT * FROM orphans
    UNION ALL SELECT * FROM polls
    UNION ALL SELECT * FROM quarantined
    UNION ALL SELECT * FROM builder_locks
    ORDER BY 1
$$;
COMMENT ON FUNCTION health() IS
    'Data-quality checks, one row each (check_name, severity, status, detail): freshness of every raw table (its latest arrival by ingest_id; stale after 15 minutes for heartbeats and polls, a day for the rest), missing heartbeats per ingester and guild (none for 5 minutes), ET stats files that failed to import or wait unimported for over an hour, users active (voice, messages, points) without any member row (among the people build_members() has seen), failed game-server polls in the last hour of data, raw rows set aside in quarantine (dated too far ahead of their arrival; counted up to 100,000 per raw table, "over 100000" beyond), and who holds the builders'' locks (busy while a build runs, stuck when a transaction has held one for over 5 minutes, naming its pid). status ok means nothing to do.';

UPDATE builders SET reads = '{raw_messages,raw_voice_events,raw_point_transactions,raw_server_polls,raw_member_events,raw_heartbeats,raw_et_stats_files,settings,members,voice_session_changes,voice_build_guilds,voice_sessions,events,event_attendance,member_voice_daily,member_engagement_weekly,member_monthly_status,member_active_days,guild_activity_daily,chat_channel_daily,chat_activity_5min,guild_voice_hourly,member_points_daily,economy_daily,member_point_balances,guild_points_reason_daily,member_points_monthly,guild_monthly_status,server_polls_hourly,ingest_lag_rollup,guild_voice_daily,member_voice_monthly,guild_engagement_weekly,member_engagement_monthly,guild_retention_cohorts}' WHERE name = 'build_rollups';
SELECT count(@extschema@.isolate_by_guild(t))
  FROM unnest(ARRAY['@extschema@.guild_voice_daily', '@extschema@.member_voice_monthly',
                    '@extschema@.guild_engagement_weekly', '@extschema@.member_engagement_monthly',
                    '@extschema@.guild_retention_cohorts', 'guildstats_mart.member_engagement_monthly',
                    'guildstats_mart.retention_cohorts', 'guildstats_mart.voice_daily',
                    'guildstats_mart.member_voice_monthly', 'guildstats_mart.engagement_levels_weekly']::regclass[]) AS t;
-- ==== end of #11 chart speed

-- ==== build_rollups reads the tables of both #14 commands and #11 chart speed (each section
-- ==== above set the list it knew). Same list as sql/extension/build_all.sql.
UPDATE builders SET reads = '{raw_messages,raw_voice_events,raw_point_transactions,raw_server_polls,raw_member_events,raw_heartbeats,raw_et_stats_files,settings,members,voice_session_changes,voice_build_guilds,voice_sessions,events,event_attendance,member_voice_daily,member_engagement_weekly,member_monthly_status,member_active_days,guild_activity_daily,chat_channel_daily,chat_activity_5min,guild_voice_hourly,member_points_daily,economy_daily,member_point_balances,guild_points_reason_daily,member_points_monthly,guild_monthly_status,member_messages_daily,member_messages_monthly,server_polls_hourly,ingest_lag_rollup,guild_voice_daily,member_voice_monthly,guild_engagement_weekly,member_engagement_monthly,guild_retention_cohorts}' WHERE name = 'build_rollups';
-- ==== end of the merged build_rollups reads

-- ==== #14 commands, part 2: /top voice_hours reads build_rollups()'s member_voice_daily for the
-- ==== whole days it has seen and voice_sessions for the rest (the builder's pending change for
-- ==== the rollups, a session still open, as_of's own day). Same statement as
-- ==== sql/extension/commands.sql.
CREATE OR REPLACE FUNCTION command_top(guild_id bigint, metric text, period text DEFAULT 'all', map text DEFAULT NULL,
                            max_rows integer DEFAULT 10, as_of timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
-- The messages tail is a narrow range of ingest ids or of one day, where a generic plan
-- (estimated for any bounds) would read the whole raw table.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    metrics constant text[] := ARRAY['kills', 'dpm', 'kd', 'damage', 'gibs', 'time', 'voice_hours', 'messages'];
    periods constant text[] := ARRAY['week', 'month', 'season', 'all'];
    at_time timestamptz := @extschema@._command_as_of(as_of);
    cfg record;
    since timestamptz;
    wanted_map text := nullif(btrim(map), '');
    rows_out jsonb;
    at_day date;
    at_day_start timestamptz;
    since_day date;
    month_lo date;
    month_hi date;
    done_through bigint;
    done_pending int8multirange;
    voice_cut timestamptz;
    cut_day date;
    cut_start timestamptz;
BEGIN
    IF metric IS NULL OR NOT lower(metric) = ANY (metrics) THEN
        RETURN @extschema@._command_error(format('Unknown metric "%s": use one of %s.', left(coalesce(metric, ''), 64), array_to_string(metrics, ', ')));
    END IF;
    IF period IS NULL OR NOT lower(period) = ANY (periods) THEN
        RETURN @extschema@._command_error(format('Unknown period "%s": use one of %s.', left(coalesce(period, ''), 64), array_to_string(periods, ', ')));
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 100 THEN
        RETURN @extschema@._command_error('max_rows must be between 1 and 100.');
    END IF;
    IF length(wanted_map) > 64 THEN
        RETURN @extschema@._command_error(format('A map name is at most 64 characters; this one has %s.', length(wanted_map)));
    END IF;
    metric := lower(metric);
    period := lower(period);
    SELECT * INTO cfg FROM @extschema@.command_settings_for(command_top.guild_id);
    since := @extschema@._command_period_start(command_top.guild_id, period, at_time);

    IF metric = 'voice_hours' AND NOT EXISTS (SELECT 1 FROM @extschema@.voice_sessions v WHERE v.guild_id = command_top.guild_id) THEN
        RETURN @extschema@._command_error('No voice time has been recorded in this guild yet.');
    ELSIF metric = 'messages' AND NOT EXISTS (SELECT 1 FROM @extschema@.raw_messages m WHERE m.guild_id = command_top.guild_id) THEN
        RETURN @extschema@._command_error('No message has been recorded in this guild yet.');
    ELSIF metric NOT IN ('voice_hours', 'messages') AND NOT EXISTS (SELECT 1 FROM @extschema@.et_rounds) THEN
        RETURN @extschema@._command_error('No ET:Legacy rounds have been imported yet.');
    END IF;

    IF metric = 'voice_hours' THEN
        -- Summing every session of the guild took 240-390 ms at 30K members. build_rollups()
        -- keeps the active seconds per member and calendar day (member_voice_daily): whole days
        -- from there, the rest from the sessions. The rollup's days are exact up to the first
        -- instant of sessions it has not seen yet (the voice builder's pending change for it),
        -- the start of a session still open (the rollup counted it up to the voice horizon of
        -- its build) and as_of's own day. A guild whose sessions the voice builder never made
        -- (written by hand) has no rollup to trust: all from the sessions.
        at_day := (at_time AT TIME ZONE cfg.calendar_time_zone)::date;
        since_day := (since AT TIME ZONE cfg.calendar_time_zone)::date;
        IF EXISTS (SELECT 1 FROM @extschema@.voice_build_guilds b WHERE b.guild_id = command_top.guild_id) THEN
            voice_cut := least(at_time,
                (SELECT c.changed_from FROM @extschema@.voice_session_changes c
                  WHERE c.consumer = 'build_rollups' AND c.guild_id = command_top.guild_id),
                (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                  WHERE v.guild_id = command_top.guild_id AND v.ended_at IS NULL AND v.end_reason IS NULL));
            cut_day := greatest((voice_cut AT TIME ZONE cfg.calendar_time_zone)::date, since_day);
        ELSE
            cut_day := since_day;
        END IF;
        cut_start := CASE WHEN cut_day = since_day THEN since
                          ELSE cut_day::timestamp AT TIME ZONE cfg.calendar_time_zone END;
    END IF;

    IF metric = 'messages' THEN
        -- Counting the raw rows took 2 s at 5M messages. build_rollups() keeps the processed
        -- rows per member and day and month: whole months from the monthly rollup, the other
        -- days before as_of's from the daily one; from the raw table as_of's own day (the
        -- rollup counts it whole) and the rows the rollup has not processed yet. Those sets do
        -- not overlap, so the answer is the count of the raw rows.
        at_day := (at_time AT TIME ZONE cfg.calendar_time_zone)::date;
        at_day_start := at_day::timestamp AT TIME ZONE cfg.calendar_time_zone;
        since_day := (since AT TIME ZONE cfg.calendar_time_zone)::date;
        month_lo := CASE WHEN since_day = date_trunc('month', since_day)::date THEN since_day
                         ELSE (date_trunc('month', since_day) + interval '1 month')::date END;
        month_hi := date_trunc('month', at_day)::date;
        IF month_lo >= month_hi THEN
            month_lo := greatest(since_day, at_day);
            month_hi := month_lo;
        END IF;
        SELECT p.processed_through, p.pending_ids INTO done_through, done_pending
          FROM @extschema@.build_progress p
         WHERE p.builder = 'build_rollups' AND p.source_table = 'raw_messages';
        done_through := coalesce(done_through, 0);
        done_pending := coalesce(done_pending, '{}');
    END IF;

    IF metric IN ('voice_hours', 'messages') THEN
        WITH scores AS (
            -- Ranked on whole milliseconds: the days' sums and the sessions' differ in the last
            -- bits of a double.
            SELECT y.user_id, round(sum(y.seconds)::numeric, 3)::double precision / 3600.0 AS value
            FROM (SELECT d.user_id, d.active_seconds AS seconds FROM @extschema@.member_voice_daily d
                   WHERE d.guild_id = command_top.guild_id AND d.day >= since_day AND d.day < cut_day
                  UNION ALL
                  SELECT v.user_id, v.seconds FROM @extschema@._voice_seconds(command_top.guild_id, cut_start, at_time) v) y
            WHERE metric = 'voice_hours'
            GROUP BY y.user_id
            HAVING round(sum(y.seconds)::numeric, 3) > 0
            UNION ALL
            SELECT x.user_id, sum(x.messages)
            FROM (SELECT d.user_id, d.messages FROM @extschema@.member_messages_daily d
                   WHERE d.guild_id = command_top.guild_id AND d.day >= since_day AND d.day < month_lo
                  UNION ALL
                  SELECT m.user_id, m.messages FROM @extschema@.member_messages_monthly m
                   WHERE m.guild_id = command_top.guild_id AND m.month >= month_lo AND m.month < month_hi
                  UNION ALL
                  SELECT d.user_id, d.messages FROM @extschema@.member_messages_daily d
                   WHERE d.guild_id = command_top.guild_id AND d.day >= month_hi AND d.day < at_day
                  UNION ALL
                  SELECT r.user_id, 1 FROM @extschema@.raw_messages r
                   WHERE r.guild_id = command_top.guild_id AND NOT r.is_bot
                     AND r.sent_at >= greatest(since, at_day_start) AND r.sent_at < at_time
                  UNION ALL
                  SELECT r.user_id, 1 FROM @extschema@.raw_messages r
                   WHERE r.ingest_id > done_through
                     AND r.guild_id = command_top.guild_id AND NOT r.is_bot
                     AND r.sent_at >= since AND r.sent_at < at_day_start
                  UNION ALL
                  SELECT r.user_id, 1 FROM @extschema@.raw_messages r
                   WHERE r.ingest_id BETWEEN lower(done_pending) AND upper(done_pending) - 1
                     AND r.ingest_id <@ done_pending
                     AND r.guild_id = command_top.guild_id AND NOT r.is_bot
                     AND r.sent_at >= since AND r.sent_at < at_day_start) x
            WHERE metric = 'messages'
            GROUP BY x.user_id
        ), ranked AS (
            SELECT rank() OVER (ORDER BY s.value DESC) AS rank, s.* FROM scores s
            ORDER BY s.value DESC, s.user_id LIMIT max_rows
        )
        SELECT jsonb_agg(jsonb_build_object(
                   'rank', r.rank, 'name', mb.display_name, 'guid', NULL, 'user_id', r.user_id::text,
                   'value', round(r.value::numeric, CASE WHEN metric = 'voice_hours' THEN 1 ELSE 0 END)::double precision, 'rounds', NULL)
               ORDER BY r.rank, r.user_id)
          INTO rows_out
          FROM ranked r
          LEFT JOIN @extschema@.members mb ON mb.guild_id = command_top.guild_id AND mb.user_id = r.user_id;
    ELSE
        SELECT jsonb_agg(jsonb_build_object(
                   'rank', l.rank, 'name', l.name, 'guid', l.guid, 'user_id', k.user_id::text,
                   'value', round(l.value::numeric, CASE WHEN metric IN ('kd', 'dpm') THEN 2 ELSE 0 END)::double precision,
                   'rounds', l.rounds)
               ORDER BY l.rank, l.guid)
          INTO rows_out
          FROM @extschema@.et_leaderboard(
                   CASE metric WHEN 'time' THEN 'time_played' ELSE metric END,
                   since => CASE WHEN since = '-infinity' THEN NULL ELSE since AT TIME ZONE cfg.calendar_time_zone END,
                   until => at_time AT TIME ZONE cfg.calendar_time_zone,
                   map => wanted_map, min_rounds => cfg.top_min_rounds, top => max_rows) l
          LEFT JOIN @extschema@.et_guid_links k ON k.guid = l.guid AND k.guild_id = command_top.guild_id;
    END IF;
    RETURN jsonb_build_object(
        'ok', true, 'metric', metric, 'period', period, 'map', wanted_map,
        'since', CASE WHEN since = '-infinity' THEN NULL ELSE since END,
        'min_rounds', CASE WHEN metric IN ('voice_hours', 'messages') THEN NULL ELSE cfg.top_min_rounds END,
        'rows', coalesce(rows_out, '[]'));
END
$$;
COMMENT ON FUNCTION command_top(bigint, text, text, text, integer, timestamptz) IS
    'The /top answer: a leaderboard of metric kills, dpm, kd, damage, gibs, time (ET:Legacy, counted rounds, players with at least command_settings.top_min_rounds rounds in the period, optionally on one map) or voice_hours, messages (Discord members of the guild; AFK and bots left out; voice hours from build_rollups()''s member_voice_daily for the whole days it has seen, the rest from voice_sessions, so the same hours as the sessions; messages from build_rollups()''s member_messages_daily and member_messages_monthly plus the raw rows it has not processed yet and as_of''s own day, so the same count as the raw messages) over period week (since Monday), month (since the 1st), season (since command_settings.season_start) or all, in the guild''s calendar time zone, up to as_of (default now). Times are hours for voice_hours and seconds for time. Example: SELECT jsonb_pretty(guildstats.command_top(1234, ''kills'', ''all'', max_rows => 3));';
-- ==== end of #14 commands, part 2

-- ==== #13 voice write floor, part 2 (issue 13, item 8): a full voice rebuild counts the events
-- its steps read instead of counting the claimed ones in its plan (_voice_sessionize_arrays
-- and _voice_write_sessions return events_read; the plan lists the guilds by index probes).
-- Same statements as sql/extension/voice_sessions.sql and extension/src/voice.rs.
DROP FUNCTION @extschema@._voice_write_sessions(bigint, timestamptz, bigint[], timestamptz[], boolean);
DROP FUNCTION @extschema@._voice_sessionize_arrays(bigint, timestamptz, bigint, bigint[], interval, interval);

CREATE FUNCTION @extschema@."_voice_sessionize_arrays"(
	"guild_id" bigint, /* i64 */
	"horizon" timestamp with time zone, /* TimestampWithTimeZone */
	"afk_channel_id" bigint, /* Option < i64 > */
	"ignored_channel_ids" bigint[], /* :: std :: option :: Option < Vec < Option < i64 > > > */
	"session_cap" interval, /* Interval */
	"outage_after" interval /* Interval */
) RETURNS TABLE (
	"users" bigint,  /* i64 */
	"events_read" bigint,  /* i64 */
	"user_id" bigint[],  /* BuiltArray < i64 > */
	"channel_id" bigint[],  /* BuiltArray < i64 > */
	"started_at" timestamp with time zone[],  /* BuiltArray < TimestampWithTimeZone > */
	"ended_at" timestamp with time zone[],  /* BuiltArray < TimestampWithTimeZone > */
	"start_reason" TEXT[],  /* BuiltArray < & '_ str > */
	"end_reason" TEXT[],  /* BuiltArray < & '_ str > */
	"is_afk" bool[],  /* BuiltArray < bool > */
	"capped" bool[],  /* BuiltArray < bool > */
	"self_mute_seconds" double precision[],  /* BuiltArray < f64 > */
	"self_deaf_seconds" double precision[]  /* BuiltArray < f64 > */
)
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'voice_sessionize_arrays_wrapper';
COMMENT ON FUNCTION @extschema@._voice_sessionize_arrays(bigint, timestamptz, bigint, bigint[], interval, interval) IS
    'Internal to build_voice_sessions(): the voice sessions of a whole guild, as _voice_sessionize(...) with users NULL gives them, in one row: the number of distinct users, the number of raw voice events read, then one array per column, element i of each making session i. A full rebuild unnests them into its insert and reports the events read. Writes nothing.';

CREATE FUNCTION @extschema@._voice_write_sessions(guild_id bigint, horizon timestamptz,
                                      users bigint[], dirty_from timestamptz[],
                                      fresh boolean DEFAULT false,
                                      OUT users_rebuilt bigint, OUT events_read bigint, OUT sessions_opened bigint,
                                      OUT sessions_closed bigint, OUT sessions_updated bigint,
                                      OUT sessions_removed bigint, OUT changed_from timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g       bigint := _voice_write_sessions.guild_id;
    s       record;
    old     @extschema@.voice_sessions[];
    restart_users bigint[];
    restart_at    timestamptz[];
    marks_from    timestamptz;
    a_user        bigint[];
    a_channel     bigint[];
    a_start       timestamptz[];
    a_end         timestamptz[];
    a_start_reason text[];
    a_end_reason  text[];
    a_afk         boolean[];
    a_capped      boolean[];
    a_mute        double precision[];
    a_deaf        double precision[];
BEGIN
    SELECT * INTO s FROM @extschema@.settings_for(g);
    IF users IS NULL THEN
        -- The whole guild. A full rebuild's plan has emptied the table (fresh): nothing to
        -- delete, and with the indexes dropped until the builder's finish, looking would read
        -- every guild written so far.
        IF NOT fresh THEN
            DELETE FROM @extschema@.voice_sessions v WHERE v.guild_id = g;
        END IF;
        -- The sessions come as one row of column arrays that the insert unnests in its select
        -- list: returned a row at a time, or read from a function in FROM (which stores its
        -- whole result first), they cost more than the writing itself.
        SELECT (a.x).users, (a.x).events_read, (a.x).user_id, (a.x).channel_id, (a.x).started_at, (a.x).ended_at,
               (a.x).start_reason, (a.x).end_reason, (a.x).is_afk, (a.x).capped,
               (a.x).self_mute_seconds, (a.x).self_deaf_seconds
          INTO users_rebuilt, events_read, a_user, a_channel, a_start, a_end, a_start_reason, a_end_reason,
               a_afk, a_capped, a_mute, a_deaf
          FROM (SELECT @extschema@._voice_sessionize_arrays(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                            s.session_cap, s.outage_after) AS x
                OFFSET 0) a;
        INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
        SELECT g, unnest(a_user), unnest(a_channel), unnest(a_start), unnest(a_end), unnest(a_end_reason),
               unnest(a_afk), unnest(a_start_reason), unnest(a_capped), unnest(a_mute), unnest(a_deaf);
        GET DIAGNOSTICS sessions_opened = ROW_COUNT;
        sessions_closed := 0; sessions_updated := 0; sessions_removed := 0;
        changed_from := '-infinity';
        RETURN;
    END IF;

    -- Each touched user is walked again from their last leave before the earliest instant the
    -- new rows touch: after a leave the user is out of voice whatever came before, so the
    -- walk can restart there from an empty state. Their sessions from that leave on are
    -- replaced. (Restarting at the touched instant itself would not do: the user may be in a
    -- session there, even one an outage made the old walk drop.) A user who never left starts
    -- at their first observation: their first event or, for one a snapshot listed first, their
    -- first session (a listing that opened none left them out of voice, as if unseen).
    --
    -- One index probe per user (two for a user who never left); none reads the history.
    SELECT array_agg(a.user_id ORDER BY a.user_id), array_agg(a.restart ORDER BY a.user_id)
      INTO restart_users, restart_at
      FROM (SELECT t.user_id, r.restart
              FROM (SELECT x.user_id, min(x.at) AS touched_at
                      FROM unnest(users, dirty_from) AS x(user_id, at)
                     GROUP BY x.user_id) t
              CROSS JOIN LATERAL (
                  SELECT coalesce((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e
                                    WHERE e.guild_id = g AND e.user_id = t.user_id
                                      AND e.channel_id IS NULL AND e.event_ts < t.touched_at),
                                  least((SELECT min(e.event_ts) FROM @extschema@.raw_voice_events e
                                          WHERE e.guild_id = g AND e.user_id = t.user_id),
                                        (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                          WHERE v.guild_id = g AND v.user_id = t.user_id),
                                        t.touched_at)) AS restart) r) a;
    restart_users := coalesce(restart_users, '{}');
    restart_at := coalesce(restart_at, '{}');

    -- By row address, each user's sessions found through the primary key: a join the planner
    -- may turn into a scan of the whole table would cost the history.
    WITH removed AS (
        DELETE FROM @extschema@.voice_sessions v
        WHERE v.ctid = ANY (ARRAY(
            SELECT d.ctid
              FROM unnest(restart_users, restart_at) AS r(user_id, restart)
              CROSS JOIN LATERAL (SELECT o.ctid FROM @extschema@.voice_sessions o
                                   WHERE o.guild_id = g AND o.user_id = r.user_id AND o.started_at >= r.restart
                                  OFFSET 0) d))
        RETURNING v.*
    )
    SELECT coalesce(array_agg(d), '{}') INTO old FROM removed d;

    -- Guild-wide marks (heartbeats, snapshots) matter to a user only while they are in a
    -- channel, so the walk needs them from the user's first entry after the restart, not from
    -- the restart: a user back after months away needs the marks since their return, not the
    -- months. That entry is an event entering a channel (_voice_sessionize finds the first
    -- among the events it reads), an old session (a snapshot listing that opened one: the
    -- sessions just removed are those from the restarts on), or comes at the touched instant.
    marks_from := least((SELECT min(x.at) FROM unnest(dirty_from) AS x(at)),
                        (SELECT min(o.started_at) FROM unnest(old) o));

    users_rebuilt := coalesce(cardinality(restart_users), 0);
    events_read := NULL;  -- the plan of an incremental build counts the claimed events

    WITH fresh AS (
        INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
        SELECT g, n.user_id, n.channel_id, n.started_at, n.ended_at, n.end_reason,
               n.is_afk, n.start_reason, n.capped, n.self_mute_seconds, n.self_deaf_seconds
        FROM @extschema@._voice_sessionize(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                           s.session_cap, s.outage_after, restart_users, restart_at, marks_from) n
        RETURNING *
    ), compared AS (
        SELECT f.started_at AS new_start, f.ended_at AS new_end, o.started_at AS old_start, o.ended_at AS old_end,
               (f.*)::text IS DISTINCT FROM (o.*)::text AS changed
        FROM fresh f
        LEFT JOIN unnest(old) o ON o.user_id = f.user_id AND o.started_at = f.started_at
    )
    SELECT count(*) FILTER (WHERE old_start IS NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND old_end IS NULL AND new_end IS NOT NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND changed AND NOT (old_end IS NULL AND new_end IS NOT NULL)),
           cardinality(old) - count(old_start),
           least(min(new_start) FILTER (WHERE old_start IS NULL OR changed),
                 (SELECT min(o.started_at) FROM unnest(old) o
                   WHERE NOT EXISTS (SELECT 1 FROM compared c WHERE c.old_start = o.started_at AND c.new_start = o.started_at
                                       AND NOT c.changed)))
      INTO sessions_opened, sessions_closed, sessions_updated, sessions_removed, changed_from
      FROM compared;
END
$$;
COMMENT ON FUNCTION @extschema@._voice_write_sessions(bigint, timestamptz, bigint[], timestamptz[], boolean) IS
    'Internal to build_voice_sessions(): rewrites the sessions of a whole guild (users NULL) or of the listed users from their last leave before dirty_from on, counts what changed, and returns the earliest start of a changed session; for a whole guild, also the number of raw voice events it read (NULL otherwise). fresh: the guild has no sessions (a full rebuild emptied the table), so there is nothing to delete.';

CREATE OR REPLACE FUNCTION @extschema@._build_voice_sessions_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    event_ids        int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    snapshot_ids     int8multirange := @extschema@._claimed(claims, 'raw_voice_snapshots');
    beat_ids         int8multirange := @extschema@._claimed(claims, 'raw_heartbeats');
    events_read      bigint;
    snapshots_read   bigint;
    heartbeats_read  bigint;
    event_guilds     bigint[];
    snapshot_guilds  bigint[];
    beat_guilds      bigint[];
    caller_jit       text := pg_catalog.current_setting('jit');
    guilds           jsonb;
    index_ddl        text[];
    drop_ddl         text[];
    ddl              text;
    commented        boolean;
    indexes_to_create jsonb := '[]';
BEGIN
    IF _build_voice_sessions_plan.full THEN
        DELETE FROM @extschema@.voice_build_guilds;
        TRUNCATE @extschema@.voice_sessions;
        -- Every guild's rows go into the table that the TRUNCATE left empty and that this
        -- transaction holds exclusively, without its indexes: _build_voice_sessions_finish
        -- builds them once from all the rows after the last guild's step, which costs a
        -- fraction of maintaining them row by row. No other transaction can see the table in
        -- between, and a rollback brings the indexes back. Only a role that owns the table
        -- may drop and create its indexes; any other caller writes through them. One catalog
        -- read gives both the drop and the create statements.
        SELECT coalesce(array_agg(CASE WHEN c.oid IS NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid)
                                       ELSE format('ALTER TABLE @extschema@.voice_sessions ADD CONSTRAINT %I %s',
                                                   c.conname, pg_catalog.pg_get_constraintdef(c.oid)) END
                                  ORDER BY x.relname), '{}'),
               coalesce(array_agg(CASE WHEN c.oid IS NULL THEN format('DROP INDEX @extschema@.%I', x.relname)
                                       ELSE format('ALTER TABLE @extschema@.voice_sessions DROP CONSTRAINT %I', c.conname) END
                                  ORDER BY x.relname), '{}'),
               -- A comment on an index or its constraint would not survive the drop.
               bool_or(pg_catalog.obj_description(i.indexrelid, 'pg_class') IS NOT NULL
                       OR pg_catalog.obj_description(c.oid, 'pg_constraint') IS NOT NULL)
          INTO index_ddl, drop_ddl, commented
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid
          LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
         WHERE i.indrelid = '@extschema@.voice_sessions'::regclass;
        IF cardinality(index_ddl) > 0 AND NOT commented
           AND pg_catalog.pg_has_role((SELECT t.relowner FROM pg_catalog.pg_class t
                                        WHERE t.oid = '@extschema@.voice_sessions'::regclass), 'USAGE') THEN
            FOREACH ddl IN ARRAY drop_ddl LOOP
                EXECUTE ddl;
            END LOOP;
            indexes_to_create := to_jsonb(index_ddl);
        END IF;
    ELSE
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    -- One pass over each claim: how many rows, and which guilds they touch. A full rebuild
    -- claims every event and its steps read them all anyway: they count them (events_read),
    -- and the guilds come from one index probe per guild rather than a pass over the events.
    IF _build_voice_sessions_plan.full THEN
        events_read := 0;
        WITH RECURSIVE g(guild_id) AS (
            SELECT min(e.guild_id) FROM @extschema@.raw_voice_events e
            UNION ALL
            SELECT (SELECT min(e.guild_id) FROM @extschema@.raw_voice_events e WHERE e.guild_id > g.guild_id)
              FROM g WHERE g.guild_id IS NOT NULL)
        SELECT coalesce(array_agg(g.guild_id), '{}') INTO event_guilds FROM g WHERE g.guild_id IS NOT NULL;
    ELSE
        SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO events_read, event_guilds
          FROM (SELECT e.guild_id, count(*) AS n FROM @extschema@.raw_voice_events e
                 WHERE e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
                   AND (event_ids = int8multirange(range_merge(event_ids)) OR e.ingest_id <@ event_ids)
                 GROUP BY e.guild_id) c;
    END IF;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO snapshots_read, snapshot_guilds
      FROM (SELECT x.guild_id, count(*) AS n FROM @extschema@.raw_voice_snapshots x
             WHERE x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
               AND x.ingest_id <@ snapshot_ids
             GROUP BY x.guild_id) c;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO heartbeats_read, beat_guilds
      FROM (SELECT b.guild_id, count(*) AS n FROM @extschema@.raw_heartbeats b
             WHERE b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1 AND b.ingest_id <@ beat_ids
               AND b.source = 'discord' AND b.guild_id IS NOT NULL
             GROUP BY b.guild_id) c;

    SELECT coalesce(jsonb_agg(t.guild_id ORDER BY t.guild_id), '[]') INTO guilds FROM (
        SELECT DISTINCT t.guild_id FROM unnest(event_guilds || snapshot_guilds || beat_guilds) AS t(guild_id)
        UNION
        SELECT d.guild_id FROM @extschema@.voice_build_guilds d
         WHERE d.settings_fingerprint IS DISTINCT FROM @extschema@._voice_settings_fingerprint(d.guild_id)
        ORDER BY 1
    ) t;
    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    RETURN jsonb_build_object('events_read', events_read, 'snapshots_read', snapshots_read,
                              'heartbeats_read', heartbeats_read, 'guilds', guilds,
                              'indexes_to_create', indexes_to_create);
END
$$;
COMMENT ON FUNCTION @extschema@._build_voice_sessions_plan(jsonb, boolean) IS
    'Internal: the plan of build_voice_sessions (see guildstats.builders): empties the sessions on a full rebuild (and, for a caller who owns voice_sessions, drops its indexes, returning their statements as indexes_to_create for _build_voice_sessions_finish), counts the claimed rows (on a full rebuild, the steps count the events they read) and lists the guilds to build.';

CREATE OR REPLACE FUNCTION @extschema@._build_voice_sessions_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g             bigint := _build_voice_sessions_step.guild;
    event_ids     int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    snapshot_ids  int8multirange := @extschema@._claimed(claims, 'raw_voice_snapshots');
    beat_ids      int8multirange := @extschema@._claimed(claims, 'raw_heartbeats');
    done          record;
    written       record;
    horizon       timestamptz;
    beats_exist   boolean;
    fingerprint   text;
    whole_guild   boolean;
    guild_dirty   timestamptz;
    users         bigint[];
    dirty_from    timestamptz[];
    changed       timestamptz;
    caller_jit    text := pg_catalog.current_setting('jit');
BEGIN
    IF NOT _build_voice_sessions_step.full THEN
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    SELECT max(b.beat_at) INTO horizon FROM @extschema@.raw_heartbeats b
     WHERE b.source = 'discord' AND b.guild_id = g;
    beats_exist := horizon IS NOT NULL;
    IF NOT beats_exist THEN
        SELECT greatest((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e WHERE e.guild_id = g),
                        (SELECT max(x.taken_at) FROM @extschema@.raw_voice_snapshots x WHERE x.guild_id = g))
          INTO horizon;
    END IF;
    IF horizon IS NULL THEN
        PERFORM pg_catalog.set_config('jit', caller_jit, true);
        RETURN '{}';  -- heartbeats of another source only: nothing to build
    END IF;
    fingerprint := @extschema@._voice_settings_fingerprint(g);
    SELECT * INTO done FROM @extschema@.voice_build_guilds d WHERE d.guild_id = g;
    whole_guild := done IS NULL OR done.settings_fingerprint IS DISTINCT FROM fingerprint
                   OR done.has_heartbeats IS DISTINCT FROM beats_exist OR horizon < done.horizon;

    IF whole_guild THEN
        users := NULL;
        dirty_from := NULL;
    ELSE
        -- Guild-wide changes reach every user in a session at or after them: a new snapshot,
        -- heartbeats that change the outages (from the last old beat before the earliest new
        -- one), and the move of the horizon itself.
        SELECT least(done.horizon,
                     (SELECT min(x.taken_at) FROM @extschema@.raw_voice_snapshots x
                       WHERE x.guild_id = g
                         AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                         AND x.ingest_id <@ snapshot_ids),
                     (SELECT coalesce((SELECT max(o.beat_at) FROM @extschema@.raw_heartbeats o
                                        WHERE o.source = 'discord' AND o.guild_id = g
                                          AND o.beat_at < nb.first_new
                                          AND NOT (o.ingest_id <@ beat_ids)),
                                      nb.first_new)
                        FROM (SELECT min(b.beat_at) AS first_new FROM @extschema@.raw_heartbeats b
                               WHERE b.source = 'discord' AND b.guild_id = g
                                 AND b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1
                                 AND b.ingest_id <@ beat_ids) nb))
          INTO guild_dirty;
        SELECT array_agg(t.user_id), array_agg(t.at) INTO users, dirty_from
          FROM (SELECT e.user_id, min(e.event_ts) AS at FROM @extschema@.raw_voice_events e
                 WHERE e.guild_id = g
                   AND e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
                   AND e.ingest_id <@ event_ids
                 GROUP BY e.user_id
                UNION ALL
                SELECT v.user_id, x.taken_at
                  FROM @extschema@.raw_voice_snapshots x
                  CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                 WHERE x.guild_id = g
                   AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                   AND x.ingest_id <@ snapshot_ids
                UNION ALL
                -- Sessions that end after the change without an event of their user after
                -- it (a leave or a move is such an event, and is found just below).
                SELECT v.user_id, guild_dirty FROM @extschema@.voice_sessions v
                 WHERE v.guild_id = g AND (v.ended_at >= guild_dirty OR v.ended_at IS NULL)
                   AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))
                UNION ALL
                -- Users seen after a guild-wide change may have had sessions the old walk
                -- dropped (begun inside what looked like an outage): walk them again too.
                SELECT DISTINCT e.user_id, guild_dirty FROM @extschema@.raw_voice_events e
                 WHERE e.guild_id = g AND e.event_ts >= guild_dirty
                UNION ALL
                SELECT DISTINCT v.user_id, guild_dirty
                  FROM @extschema@.raw_voice_snapshots x
                  CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                 WHERE x.guild_id = g AND x.taken_at >= guild_dirty
               ) t;
        users := coalesce(users, '{}');
        dirty_from := coalesce(dirty_from, '{}');
    END IF;

    SELECT w.* INTO written
      FROM @extschema@._voice_write_sessions(g, horizon, users, dirty_from,
                                             _build_voice_sessions_step.full) w;
    changed := written.changed_from;
    -- Open sessions grow with the horizon even when nothing else changed. (Nothing starts
    -- before a whole guild's '-infinity', and during a full rebuild the table may have no
    -- index to find them by.)
    IF changed IS DISTINCT FROM '-infinity' THEN
        SELECT least(changed, (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                WHERE v.guild_id = g AND v.ended_at IS NULL
                                  AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))))
          INTO changed;
    END IF;
    PERFORM @extschema@._note_voice_change(g, changed);

    INSERT INTO @extschema@.voice_build_guilds AS d (guild_id, horizon, has_heartbeats, settings_fingerprint, built_at)
    VALUES (g, horizon, beats_exist, fingerprint, now())
    ON CONFLICT (guild_id) DO UPDATE
       SET horizon = EXCLUDED.horizon, has_heartbeats = EXCLUDED.has_heartbeats,
           settings_fingerprint = EXCLUDED.settings_fingerprint, built_at = EXCLUDED.built_at;

    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    -- A full rebuild's plan leaves the events to count to the steps, which read them all.
    RETURN CASE WHEN _build_voice_sessions_step.full
                THEN jsonb_build_object('events_read', coalesce(written.events_read, 0)) ELSE '{}' END
        || jsonb_build_object('guilds_built', 1, 'users_rebuilt', written.users_rebuilt,
                              'sessions_opened', written.sessions_opened, 'sessions_closed', written.sessions_closed,
                              'sessions_updated', written.sessions_updated, 'sessions_removed', written.sessions_removed);
END
$$;
COMMENT ON FUNCTION @extschema@._build_voice_sessions_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_voice_sessions (see guildstats.builders): rewrites one guild''s sessions from its earliest new observation on, or all of them when its settings, heartbeats or horizon changed, and tells the downstream builders from when.';
-- ==== end of #13 voice write floor, part 2

-- ==== #13 voice write floor, part 3 (issue 13, item 8): a full rebuild's step computes a whole
-- guild's sessions and writes them itself through COPY's bulk write
-- (_voice_write_guild_sessions); a caller under row-level security still inserts the column
-- arrays. Same statements as sql/extension/voice_sessions.sql and extension/src/voice.rs.
CREATE FUNCTION @extschema@."_voice_write_guild_sessions"(
	"guild_id" bigint, /* i64 */
	"horizon" timestamp with time zone, /* TimestampWithTimeZone */
	"afk_channel_id" bigint, /* Option < i64 > */
	"ignored_channel_ids" bigint[], /* :: std :: option :: Option < Vec < Option < i64 > > > */
	"session_cap" interval, /* Interval */
	"outage_after" interval /* Interval */
) RETURNS TABLE (
	"users" bigint,  /* i64 */
	"events_read" bigint,  /* i64 */
	"sessions_written" bigint  /* i64 */
)
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'voice_write_guild_sessions_wrapper';
COMMENT ON FUNCTION @extschema@._voice_write_guild_sessions(bigint, timestamptz, bigint, bigint[], interval, interval) IS
    'Internal to build_voice_sessions(): computes the voice sessions of a whole guild (as _voice_sessionize_arrays) and writes them into voice_sessions through COPY''s bulk write, which checks INSERT privilege and enforces the constraints, indexes and triggers as an INSERT would; the caller has emptied the guild''s sessions. Returns the number of distinct users, of raw voice events read, and of sessions written. Refuses a table under row-level security for the current user (the caller then inserts _voice_sessionize_arrays'' rows).';

CREATE OR REPLACE FUNCTION @extschema@._voice_write_sessions(guild_id bigint, horizon timestamptz,
                                      users bigint[], dirty_from timestamptz[],
                                      fresh boolean DEFAULT false,
                                      OUT users_rebuilt bigint, OUT events_read bigint, OUT sessions_opened bigint,
                                      OUT sessions_closed bigint, OUT sessions_updated bigint,
                                      OUT sessions_removed bigint, OUT changed_from timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g       bigint := _voice_write_sessions.guild_id;
    s       record;
    old     @extschema@.voice_sessions[];
    restart_users bigint[];
    restart_at    timestamptz[];
    marks_from    timestamptz;
    a_user        bigint[];
    a_channel     bigint[];
    a_start       timestamptz[];
    a_end         timestamptz[];
    a_start_reason text[];
    a_end_reason  text[];
    a_afk         boolean[];
    a_capped      boolean[];
    a_mute        double precision[];
    a_deaf        double precision[];
BEGIN
    SELECT * INTO s FROM @extschema@.settings_for(g);
    IF users IS NULL THEN
        -- The whole guild. A full rebuild's plan has emptied the table (fresh): nothing to
        -- delete, and with the indexes dropped until the builder's finish, looking would read
        -- every guild written so far.
        IF NOT fresh THEN
            DELETE FROM @extschema@.voice_sessions v WHERE v.guild_id = g;
        END IF;
        -- Computed and written by the Rust step through COPY's bulk write (multi-row writes,
        -- constraints, indexes and triggers as an INSERT). COPY knows nothing of row-level
        -- security: under a policy that applies to the caller, the rows come as column arrays
        -- and an INSERT writes them through the policy.
        IF NOT pg_catalog.row_security_active('@extschema@.voice_sessions') THEN
            SELECT w.users, w.events_read, w.sessions_written INTO users_rebuilt, events_read, sessions_opened
              FROM @extschema@._voice_write_guild_sessions(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                           s.session_cap, s.outage_after) w;
        ELSE
            -- The sessions come as one row of column arrays that the insert unnests in its select
            -- list: returned a row at a time, or read from a function in FROM (which stores its
            -- whole result first), they cost more than the writing itself.
            SELECT (a.x).users, (a.x).events_read, (a.x).user_id, (a.x).channel_id, (a.x).started_at, (a.x).ended_at,
                   (a.x).start_reason, (a.x).end_reason, (a.x).is_afk, (a.x).capped,
                   (a.x).self_mute_seconds, (a.x).self_deaf_seconds
              INTO users_rebuilt, events_read, a_user, a_channel, a_start, a_end, a_start_reason, a_end_reason,
                   a_afk, a_capped, a_mute, a_deaf
              FROM (SELECT @extschema@._voice_sessionize_arrays(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                                s.session_cap, s.outage_after) AS x
                    OFFSET 0) a;
            INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                    is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
            SELECT g, unnest(a_user), unnest(a_channel), unnest(a_start), unnest(a_end), unnest(a_end_reason),
                   unnest(a_afk), unnest(a_start_reason), unnest(a_capped), unnest(a_mute), unnest(a_deaf);
            GET DIAGNOSTICS sessions_opened = ROW_COUNT;
        END IF;
        sessions_closed := 0; sessions_updated := 0; sessions_removed := 0;
        changed_from := '-infinity';
        RETURN;
    END IF;

    -- Each touched user is walked again from their last leave before the earliest instant the
    -- new rows touch: after a leave the user is out of voice whatever came before, so the
    -- walk can restart there from an empty state. Their sessions from that leave on are
    -- replaced. (Restarting at the touched instant itself would not do: the user may be in a
    -- session there, even one an outage made the old walk drop.) A user who never left starts
    -- at their first observation: their first event or, for one a snapshot listed first, their
    -- first session (a listing that opened none left them out of voice, as if unseen).
    --
    -- One index probe per user (two for a user who never left); none reads the history.
    SELECT array_agg(a.user_id ORDER BY a.user_id), array_agg(a.restart ORDER BY a.user_id)
      INTO restart_users, restart_at
      FROM (SELECT t.user_id, r.restart
              FROM (SELECT x.user_id, min(x.at) AS touched_at
                      FROM unnest(users, dirty_from) AS x(user_id, at)
                     GROUP BY x.user_id) t
              CROSS JOIN LATERAL (
                  SELECT coalesce((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e
                                    WHERE e.guild_id = g AND e.user_id = t.user_id
                                      AND e.channel_id IS NULL AND e.event_ts < t.touched_at),
                                  least((SELECT min(e.event_ts) FROM @extschema@.raw_voice_events e
                                          WHERE e.guild_id = g AND e.user_id = t.user_id),
                                        (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                          WHERE v.guild_id = g AND v.user_id = t.user_id),
                                        t.touched_at)) AS restart) r) a;
    restart_users := coalesce(restart_users, '{}');
    restart_at := coalesce(restart_at, '{}');

    -- By row address, each user's sessions found through the primary key: a join the planner
    -- may turn into a scan of the whole table would cost the history.
    WITH removed AS (
        DELETE FROM @extschema@.voice_sessions v
        WHERE v.ctid = ANY (ARRAY(
            SELECT d.ctid
              FROM unnest(restart_users, restart_at) AS r(user_id, restart)
              CROSS JOIN LATERAL (SELECT o.ctid FROM @extschema@.voice_sessions o
                                   WHERE o.guild_id = g AND o.user_id = r.user_id AND o.started_at >= r.restart
                                  OFFSET 0) d))
        RETURNING v.*
    )
    SELECT coalesce(array_agg(d), '{}') INTO old FROM removed d;

    -- Guild-wide marks (heartbeats, snapshots) matter to a user only while they are in a
    -- channel, so the walk needs them from the user's first entry after the restart, not from
    -- the restart: a user back after months away needs the marks since their return, not the
    -- months. That entry is an event entering a channel (_voice_sessionize finds the first
    -- among the events it reads), an old session (a snapshot listing that opened one: the
    -- sessions just removed are those from the restarts on), or comes at the touched instant.
    marks_from := least((SELECT min(x.at) FROM unnest(dirty_from) AS x(at)),
                        (SELECT min(o.started_at) FROM unnest(old) o));

    users_rebuilt := coalesce(cardinality(restart_users), 0);
    events_read := NULL;  -- the plan of an incremental build counts the claimed events

    WITH fresh AS (
        INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
        SELECT g, n.user_id, n.channel_id, n.started_at, n.ended_at, n.end_reason,
               n.is_afk, n.start_reason, n.capped, n.self_mute_seconds, n.self_deaf_seconds
        FROM @extschema@._voice_sessionize(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                           s.session_cap, s.outage_after, restart_users, restart_at, marks_from) n
        RETURNING *
    ), compared AS (
        SELECT f.started_at AS new_start, f.ended_at AS new_end, o.started_at AS old_start, o.ended_at AS old_end,
               (f.*)::text IS DISTINCT FROM (o.*)::text AS changed
        FROM fresh f
        LEFT JOIN unnest(old) o ON o.user_id = f.user_id AND o.started_at = f.started_at
    )
    SELECT count(*) FILTER (WHERE old_start IS NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND old_end IS NULL AND new_end IS NOT NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND changed AND NOT (old_end IS NULL AND new_end IS NOT NULL)),
           cardinality(old) - count(old_start),
           least(min(new_start) FILTER (WHERE old_start IS NULL OR changed),
                 (SELECT min(o.started_at) FROM unnest(old) o
                   WHERE NOT EXISTS (SELECT 1 FROM compared c WHERE c.old_start = o.started_at AND c.new_start = o.started_at
                                       AND NOT c.changed)))
      INTO sessions_opened, sessions_closed, sessions_updated, sessions_removed, changed_from
      FROM compared;
END
$$;
-- ==== end of #13 voice write floor, part 3
