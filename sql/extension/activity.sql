-- Activity metrics over activity_events (daily active users and friends, engagement
-- segments, chat per channel, moderation), game-server windows and data-quality checks.
-- Calendar days are in settings_for(guild_id).calendar_time_zone.

-- A caller's day range becomes one row per day: an infinite or far-off day would make the series
-- run until the disk holds no more temp files. Within 100 years, as economy_health() allows.
CREATE FUNCTION _day_series(caller text, from_day date, to_day date)
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
COMMENT ON FUNCTION _day_series(text, date, date) IS
    'Internal: every day from from_day to to_day (none when either is NULL or to_day comes first); an error naming the caller when a day is infinite or the days span more than 100 years (36,600 days).';

CREATE FUNCTION activity_daily(guild_id bigint, from_day date DEFAULT NULL, to_day date DEFAULT NULL)
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
COMMENT ON FUNCTION activity_daily(bigint, date, date) IS
    'Per calendar day of a guild (its calendar time zone), from activity_events (voice, messages, points; member joins and renames are not activity): dau, wau (7 days ending that day), mau (30 days), dau_mau (stickiness), new_users (first activity ever that day), returning_users (active that day, seen before), churned_users (last seen exactly 30 days earlier, not since). Days default to the first and last day with activity; the days from the earlier of from_day and the first day with activity to to_day must be finite and at most 100 years apart. Example: SELECT * FROM guildstats.activity_daily(1234, ''2026-03-01'', ''2026-03-31'');';

CREATE FUNCTION engagement_segments(guild_id bigint, as_of date DEFAULT NULL)
RETURNS TABLE (segment text, users bigint, description text)
LANGUAGE sql STABLE
AS $$
    WITH zone AS (SELECT s.calendar_time_zone AS tz FROM @extschema@.settings_for(engagement_segments.guild_id) s),
    active AS (
        SELECT DISTINCT e.user_id, (e.activity_at AT TIME ZONE zone.tz)::date AS d
        FROM @extschema@.activity_events e, zone
        WHERE e.guild_id = engagement_segments.guild_id AND e.kind <> 'member'),
    ref AS (SELECT coalesce(engagement_segments.as_of, max(d)) AS as_of FROM active),
    per_user AS (
        SELECT a.user_id, min(a.d) AS first_d,
               count(*) FILTER (WHERE a.d > ref.as_of - 28) AS recent_days,
               count(*) FILTER (WHERE a.d <= ref.as_of - 28 AND a.d > ref.as_of - 56) AS previous_days
        FROM active a, ref WHERE a.d <= ref.as_of
        GROUP BY a.user_id),
    labelled AS (
        SELECT CASE
                   WHEN p.first_d > ref.as_of - 7 THEN 'new'
                   WHEN p.previous_days >= 4 AND p.recent_days * 2 < p.previous_days THEN 'fading'
                   WHEN p.recent_days >= 12 THEN 'core'
                   WHEN p.recent_days >= 1 THEN 'casual'
               END AS segment
        FROM per_user p, ref)
    SELECT s.segment, count(l.segment), s.description
    FROM (VALUES (1, 'new', 'first activity in the last 7 days'),
                 (2, 'core', 'active on 12 or more of the last 28 days'),
                 (3, 'casual', 'active on 1 to 11 of the last 28 days'),
                 (4, 'fading', 'active on fewer than half as many days as in the 28 days before (which had 4 or more)'))
         AS s(ord, segment, description)
    LEFT JOIN labelled l ON l.segment = s.segment
    GROUP BY s.ord, s.segment, s.description
    ORDER BY s.ord
$$;
COMMENT ON FUNCTION engagement_segments(bigint, date) IS
    'Users of a guild by engagement as of a day (default: the last day with activity), from activity_events without member events: new (first activity in the last 7 days), core (active on 12+ of the last 28 days), casual (1-11 days), fading (fewer than half the active days of the 28 days before, which had 4+). A user is in one segment (first match in that order); users inactive in both windows are in none.';

CREATE VIEW chat_activity_daily AS
SELECT m.guild_id, (m.sent_at AT TIME ZONE z.tz)::date AS day, m.channel_id,
       (SELECT c.name FROM @extschema@.raw_channels c WHERE c.channel_id = m.channel_id
        ORDER BY c.observed_at DESC, c.ingest_id DESC LIMIT 1) AS channel_name,
       count(*) AS messages, count(DISTINCT m.user_id) AS authors, sum(m.char_count) AS characters,
       count(*) FILTER (WHERE m.attachment_count > 0) AS with_attachments,
       count(*) FILTER (WHERE m.is_reply) AS replies
FROM @extschema@.raw_messages m
JOIN LATERAL (SELECT s.calendar_time_zone AS tz FROM @extschema@.settings_for(m.guild_id) s) z ON true
WHERE NOT m.is_bot
GROUP BY m.guild_id, 2, m.channel_id;
COMMENT ON VIEW chat_activity_daily IS
    'Chat per guild, calendar day (guild time zone) and channel, bots excluded: messages, distinct authors, characters, messages with attachments, replies, and the channel''s latest known name.';

CREATE VIEW moderation_daily AS
SELECT e.guild_id, (e.event_ts AT TIME ZONE z.tz)::date AS day,
       count(*) FILTER (WHERE e.event_type = 'join') AS joins,
       count(*) FILTER (WHERE e.event_type = 'leave') AS leaves,
       count(*) FILTER (WHERE e.event_type = 'ban') AS bans,
       count(*) FILTER (WHERE e.event_type = 'unban') AS unbans
FROM @extschema@.raw_member_events e
JOIN LATERAL (SELECT s.calendar_time_zone AS tz FROM @extschema@.settings_for(e.guild_id) s) z ON true
GROUP BY e.guild_id, 2;
COMMENT ON VIEW moderation_daily IS
    'Membership and moderation per guild and calendar day (guild time zone): joins, leaves, bans, unbans from raw_member_events.';

CREATE VIEW server_activity_5min AS
WITH polls AS (
    SELECT server, date_bin(interval '5 minutes', polled_at, timestamptz '2000-01-01 00:00+00') AS window_start,
           count(*) AS polls, count(*) FILTER (WHERE ok) AS ok_polls,
           max(player_count) FILTER (WHERE ok) AS max_players_seen,
           avg(player_count) FILTER (WHERE ok) AS avg_players
    FROM @extschema@.raw_server_polls GROUP BY 1, 2),
players AS (
    SELECT server, date_bin(interval '5 minutes', polled_at, timestamptz '2000-01-01 00:00+00') AS window_start,
           count(DISTINCT name) AS distinct_players
    FROM @extschema@.raw_server_players GROUP BY 1, 2)
SELECT p.server, p.window_start, p.polls, p.ok_polls, p.max_players_seen, p.avg_players,
       coalesce(pl.distinct_players, 0) AS distinct_players
FROM polls p LEFT JOIN players pl USING (server, window_start);
COMMENT ON VIEW server_activity_5min IS
    'Game-server activity per server and 5-minute window (UTC-aligned): polls, successful polls, the most and average players reported, and distinct player names listed.';

CREATE VIEW server_activity_hourly AS
SELECT p.server, date_trunc('hour', p.polled_at) AS hour,
       count(*) AS polls, count(*) FILTER (WHERE p.ok) AS ok_polls,
       count(*) FILTER (WHERE p.ok)::double precision / count(*) AS uptime,
       avg(p.player_count) FILTER (WHERE p.ok) AS avg_players,
       max(p.player_count) FILTER (WHERE p.ok) AS max_players_seen,
       max(p.max_players) FILTER (WHERE p.ok) AS slots,
       avg(p.player_count::double precision / nullif(p.max_players, 0)) FILTER (WHERE p.ok) AS utilization
FROM @extschema@.raw_server_polls p
GROUP BY p.server, 2;
COMMENT ON VIEW server_activity_hourly IS
    'Game-server activity per server and hour (UTC): polls, successful polls, uptime (share of successful polls; a failed poll is a row), average and most players, slots, and utilization (players / slots, averaged over successful polls).';

CREATE VIEW ingest_lag_hourly AS
SELECT source_table, date_trunc('hour', event_at) AS hour, count(*) AS rows,
       avg(received_at - event_at) AS avg_lag,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - event_at)) AS p95_lag_seconds,
       max(received_at - event_at) AS max_lag
FROM (SELECT 'raw_voice_events'::text AS source_table, event_ts AS event_at, received_at FROM @extschema@.raw_voice_events
      UNION ALL SELECT 'raw_messages', sent_at, received_at FROM @extschema@.raw_messages
      UNION ALL SELECT 'raw_member_events', event_ts, received_at FROM @extschema@.raw_member_events
      UNION ALL SELECT 'raw_heartbeats', beat_at, received_at FROM @extschema@.raw_heartbeats
      UNION ALL SELECT 'raw_server_polls', polled_at, received_at FROM @extschema@.raw_server_polls
      UNION ALL SELECT 'raw_point_transactions', tx_ts, received_at FROM @extschema@.raw_point_transactions
      UNION ALL SELECT 'raw_et_stats_files', fetched_at, received_at FROM @extschema@.raw_et_stats_files) s
GROUP BY 1, 2;
COMMENT ON VIEW ingest_lag_hourly IS
    'Processing lag per raw table and hour of event time: how long after the event the database stored the row (received_at - event time): average, 95th percentile in seconds, maximum. Replayed history shows as large lag.';

CREATE FUNCTION health()
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
