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

CREATE FUNCTION build_voice_copresence(full boolean DEFAULT false)
RETURNS TABLE (guilds_refreshed integer, pair_rows bigint, elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_voice_copresence', $1))
        AS r(guilds_refreshed integer, pair_rows bigint, elapsed interval, status text)
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
    -- greatest() skips a NULL: max_rows NULL would have answered no partner at all.
    LIMIT CASE WHEN voice_top_partners.max_rows IS NOT NULL THEN greatest(voice_top_partners.max_rows, 0) END;
END;
COMMENT ON FUNCTION voice_top_partners(bigint, bigint, date, date, integer) IS
    'A member''s top voice partners in a guild: the members they shared a (non-AFK) voice channel with most, with the shared minutes and the number of days together, between from_day and to_day inclusive (calendar days in the guild''s time zone; NULL: unbounded), most shared first, at most max_rows (NULL: all of them; 0 or less: none). partner_name is the latest display name, if any. Reads voice_copresence_daily. Example: SELECT * FROM guildstats.voice_top_partners(guild_id => 1, user_id => 42);';

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
