-- What an ET:Legacy community's stats bot answers, as SQL: players, leaderboards, the last
-- session, awards. Only rounds that count are used: orphan round 2s (their values are
-- cumulative over two rounds) and rounds cancelled by a restart are left out.

CREATE TABLE et_guid_links (
    guid       text        PRIMARY KEY,
    guild_id   bigint      NOT NULL,
    user_id    bigint      NOT NULL,
    linked_at  timestamptz NOT NULL DEFAULT now(),
    note       text
);
CREATE INDEX et_guid_links_user_idx ON et_guid_links (guild_id, user_id);
COMMENT ON TABLE et_guid_links IS 'Which Discord member plays under which ET:Legacy GUID, so that community views can join game and voice activity. A member may have several GUIDs.';
COMMENT ON COLUMN et_guid_links.guid IS 'ET:Legacy GUID as in et_player_rounds (first 8 hex characters of cl_guid).';
COMMENT ON COLUMN et_guid_links.guild_id IS 'Discord guild of the member.';
COMMENT ON COLUMN et_guid_links.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN et_guid_links.linked_at IS 'When the link was made.';
COMMENT ON COLUMN et_guid_links.note IS 'Free text, e.g. who confirmed the link.';
SELECT pg_catalog.pg_extension_config_dump('et_guid_links', '');

CREATE VIEW et_counted_player_rounds AS
SELECT p.*, r.saved_at, r.map, r.round_number, r.match_id, r.et_session_id
FROM @extschema@.et_player_rounds p
JOIN @extschema@.et_rounds r USING (round_id)
WHERE NOT r.is_orphan AND r.restart_kind IS DISTINCT FROM 'cancelled';
COMMENT ON VIEW et_counted_player_rounds IS
    'Player rounds that count towards statistics, with their round''s time, map, match and session: orphan round 2s and cancelled (restarted) rounds are left out.';

CREATE VIEW et_players AS
SELECT p.guid,
       (array_agg(p.clean_name ORDER BY p.saved_at DESC))[1] AS name,
       array_agg(DISTINCT p.clean_name) AS names,
       bool_or(p.is_bot) AS is_bot,
       count(*)::integer AS rounds,
       min(p.saved_at) AS first_seen,
       max(p.saved_at) AS last_seen,
       sum(p.kills)::bigint AS kills,
       sum(p.deaths)::bigint AS deaths,
       CASE WHEN sum(p.deaths) = 0 THEN sum(p.kills)::double precision
            ELSE sum(p.kills)::double precision / sum(p.deaths) END AS kd,
       sum(p.damage_given) * 60.0 / nullif(sum(p.time_played_seconds) FILTER (WHERE p.damage_given IS NOT NULL), 0) AS dpm,
       100.0 * sum(p.hits) / nullif(sum(p.shots), 0) AS accuracy,
       sum(p.headshots)::bigint AS headshots,
       sum(p.revives_given)::bigint AS revives,
       sum(p.gibs)::bigint AS gibs,
       sum(p.xp)::bigint AS xp,
       sum(p.damage_given)::bigint AS damage_given,
       sum(p.time_played_seconds)::bigint AS time_played_seconds,
       l.guild_id AS discord_guild_id,
       l.user_id AS discord_user_id
FROM @extschema@.et_counted_player_rounds p
LEFT JOIN @extschema@.et_guid_links l ON l.guid = p.guid
GROUP BY p.guid, l.guild_id, l.user_id;
COMMENT ON VIEW et_players IS
    'One row per ET:Legacy player (GUID) over all counted rounds: latest and every name used, totals, K/D, DPM (damage * 60 / seconds played), accuracy, and the linked Discord member if any.';

CREATE FUNCTION et_player_summary(guid text)
RETURNS SETOF @extschema@.et_players
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT * FROM @extschema@.et_players p WHERE p.guid = et_player_summary.guid;
END;
COMMENT ON FUNCTION et_player_summary(text) IS
    'One ET:Legacy player by GUID: every name used, totals, ratios and Discord link. Example: SELECT * FROM guildstats.et_player_summary(''0A26D447'');';

CREATE FUNCTION et_leaderboard(
    metric      text,
    since       timestamp DEFAULT NULL,
    until       timestamp DEFAULT NULL,
    map         text DEFAULT NULL,
    min_rounds  integer DEFAULT NULL,
    top         integer DEFAULT 10
)
RETURNS TABLE (rank bigint, guid text, name text, rounds integer, value double precision)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    metrics constant text[] := ARRAY['kills', 'deaths', 'kd', 'dpm', 'accuracy', 'headshots',
                                     'revives', 'gibs', 'xp', 'time_played', 'damage', 'efficiency'];
    minimum integer;
BEGIN
    IF NOT metric = ANY (metrics) THEN
        RAISE EXCEPTION 'et_leaderboard: unknown metric "%"', metric
            USING HINT = 'Use one of: ' || array_to_string(metrics, ', ') || '.',
                  ERRCODE = 'invalid_parameter_value';
    END IF;
    minimum := coalesce(min_rounds, (SELECT s.et_min_rounds FROM @extschema@.settings_for(NULL) s));
    RETURN QUERY
    WITH per_player AS (
        SELECT p.guid,
               (array_agg(p.clean_name ORDER BY p.saved_at DESC))[1] AS name,
               count(*)::integer AS rounds,
               sum(p.kills) AS kills, sum(p.deaths) AS deaths,
               sum(p.hits) AS hits, sum(p.shots) AS shots, sum(p.headshots) AS headshots,
               sum(p.revives_given) AS revives, sum(p.gibs) AS gibs, sum(p.xp) AS xp,
               sum(p.damage_given) AS damage,
               sum(p.time_played_seconds) AS seconds,
               sum(p.time_played_seconds) FILTER (WHERE p.damage_given IS NOT NULL) AS damage_seconds
        FROM @extschema@.et_counted_player_rounds p
        WHERE NOT p.is_bot
          AND (et_leaderboard.since IS NULL OR p.saved_at >= et_leaderboard.since)
          AND (et_leaderboard.until IS NULL OR p.saved_at < et_leaderboard.until)
          AND (et_leaderboard.map IS NULL OR p.map = et_leaderboard.map)
        GROUP BY p.guid
        HAVING count(*) >= minimum
    ), scored AS (
        SELECT pp.guid, pp.name, pp.rounds,
               CASE metric
                   WHEN 'kills' THEN pp.kills::double precision
                   WHEN 'deaths' THEN pp.deaths::double precision
                   WHEN 'kd' THEN CASE WHEN pp.deaths = 0 THEN pp.kills::double precision
                                       ELSE pp.kills::double precision / pp.deaths END
                   WHEN 'dpm' THEN pp.damage * 60.0 / nullif(pp.damage_seconds, 0)
                   WHEN 'accuracy' THEN 100.0 * pp.hits / nullif(pp.shots, 0)
                   WHEN 'headshots' THEN pp.headshots::double precision
                   WHEN 'revives' THEN pp.revives::double precision
                   WHEN 'gibs' THEN pp.gibs::double precision
                   WHEN 'xp' THEN pp.xp::double precision
                   WHEN 'time_played' THEN pp.seconds::double precision
                   WHEN 'damage' THEN pp.damage::double precision
                   WHEN 'efficiency' THEN 100.0 * pp.kills / nullif(pp.kills + pp.deaths, 0)
               END AS value
        FROM per_player pp
    )
    SELECT rank() OVER (ORDER BY s.value DESC), s.guid, s.name, s.rounds, s.value
    FROM scored s
    WHERE s.value IS NOT NULL
    ORDER BY s.value DESC, s.guid
    LIMIT top;
END
$$;
COMMENT ON FUNCTION et_leaderboard(text, timestamp, timestamp, text, integer, integer) IS
    'ET:Legacy leaderboard for one metric (kills, deaths, kd, dpm, accuracy, headshots, revives, gibs, xp, time_played, damage, efficiency) over counted rounds, optionally within [since, until) (server local time) and on one map; players with fewer than min_rounds rounds (default: the et_min_rounds setting) are not ranked; bots never are. Ratios are computed from the period''s sums, never averaged. Example: SELECT * FROM guildstats.et_leaderboard(''dpm'', since => ''2025-10-01'', top => 5);';

CREATE FUNCTION et_last_session_id()
RETURNS bigint
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT s.et_session_id FROM @extschema@.et_sessions s ORDER BY s.started_at DESC LIMIT 1;
END;
COMMENT ON FUNCTION et_last_session_id() IS 'The most recent ET:Legacy gaming session (et_sessions.et_session_id), or NULL when there is none.';

CREATE FUNCTION et_session_summary(et_session_id bigint DEFAULT NULL)
RETURNS TABLE (
    guid text, name text, rounds integer, kills bigint, deaths bigint, kd double precision,
    efficiency double precision, damage_given bigint, dpm double precision, gibs bigint,
    revives bigint, xp bigint, mvp_score double precision, is_mvp boolean
)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH totals AS (
        SELECT p.guid,
               (array_agg(p.clean_name ORDER BY p.saved_at DESC))[1] AS name,
               count(*)::integer AS rounds,
               sum(p.kills)::bigint AS kills, sum(p.deaths)::bigint AS deaths,
               coalesce(sum(p.damage_given), 0)::bigint AS damage_given,
               sum(p.damage_given) * 60.0 / nullif(sum(p.time_played_seconds) FILTER (WHERE p.damage_given IS NOT NULL), 0) AS dpm,
               coalesce(sum(p.gibs), 0)::bigint AS gibs,
               coalesce(sum(p.revives_given), 0)::bigint AS revives,
               coalesce(sum(p.xp), 0)::bigint AS xp
        FROM @extschema@.et_counted_player_rounds p
        WHERE p.et_session_id = coalesce(et_session_summary.et_session_id, @extschema@.et_last_session_id())
          AND NOT p.is_bot
        GROUP BY p.guid
    ), scored AS (
        SELECT t.*,
               CASE WHEN t.deaths = 0 THEN t.kills::double precision ELSE t.kills::double precision / t.deaths END AS kd,
               coalesce(100.0 * t.kills / nullif(t.kills + t.deaths, 0), 0) AS efficiency
        FROM totals t
    ), mvp AS (
        SELECT s.*, s.kd * 10 + s.efficiency + s.damage_given / 100.0 AS mvp_score FROM scored s
    )
    SELECT m.guid, m.name, m.rounds, m.kills, m.deaths, m.kd, m.efficiency, m.damage_given, m.dpm,
           m.gibs, m.revives, m.xp, m.mvp_score, m.mvp_score = max(m.mvp_score) OVER ()
    FROM mvp m
    ORDER BY m.mvp_score DESC, m.guid;
END;
COMMENT ON FUNCTION et_session_summary(bigint) IS
    'Per-player totals of one ET:Legacy gaming session (default: the last one) with the MVP score (K/D * 10 + efficiency + damage / 100) and the MVP flagged. Example: SELECT name, kills, deaths, round(dpm) AS dpm, is_mvp FROM guildstats.et_session_summary();';

CREATE FUNCTION et_session_maps(et_session_id bigint DEFAULT NULL)
RETURNS TABLE (
    match_id text, map text, started_at timestamp, time_to_beat_seconds integer,
    round1_defence_held boolean, round2_defence_held boolean, outcome text,
    winners text[], losers text[]
)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH sides AS (
        -- The people on each side, by GUID: round-1 attackers and round-1 defenders. Team
        -- numbers swap between rounds, people do not.
        SELECT m.match_id,
               array_agg(p.clean_name ORDER BY p.clean_name) FILTER (WHERE p.team IN (1, 2) AND p.team <> r1.defender_team) AS r1_attackers,
               array_agg(p.clean_name ORDER BY p.clean_name) FILTER (WHERE p.team = r1.defender_team) AS r1_defenders
        FROM @extschema@.et_matches m
        JOIN @extschema@.et_rounds r1 ON r1.round_id = m.round1_id
        JOIN @extschema@.et_player_rounds p ON p.round_id = m.round1_id
        WHERE m.et_session_id = coalesce(et_session_maps.et_session_id, @extschema@.et_last_session_id())
        GROUP BY m.match_id
    )
    SELECT m.match_id, m.map, m.started_at, m.time_to_beat_seconds, m.round1_defence_held,
           m.round2_defence_held, coalesce(m.outcome, 'unfinished'),
           CASE m.outcome WHEN 'round1_attackers' THEN s.r1_attackers WHEN 'round2_attackers' THEN s.r1_defenders END,
           CASE m.outcome WHEN 'round1_attackers' THEN s.r1_defenders WHEN 'round2_attackers' THEN s.r1_attackers END
    FROM @extschema@.et_matches m
    LEFT JOIN sides s ON s.match_id = m.match_id
    WHERE m.et_session_id = coalesce(et_session_maps.et_session_id, @extschema@.et_last_session_id())
    ORDER BY m.started_at;
END;
COMMENT ON FUNCTION et_session_maps(bigint) IS
    'The maps of one ET:Legacy session (default: the last one) in order, with the stopwatch result and the winning and losing players by name (sides are told apart by who played together, since team numbers swap between rounds).';

CREATE FUNCTION et_session_teams(et_session_id bigint DEFAULT NULL)
RETURNS TABLE (players text[], guids text[], maps_won bigint, maps_lost bigint, maps_drawn bigint)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH sides AS (
        SELECT m.match_id, m.outcome,
               array_agg(p.guid ORDER BY p.guid) FILTER (WHERE p.team IN (1, 2) AND p.team <> r1.defender_team) AS attackers,
               array_agg(p.guid ORDER BY p.guid) FILTER (WHERE p.team = r1.defender_team) AS defenders
        FROM @extschema@.et_matches m
        JOIN @extschema@.et_rounds r1 ON r1.round_id = m.round1_id
        JOIN @extschema@.et_player_rounds p ON p.round_id = m.round1_id
        WHERE m.et_session_id = coalesce(et_session_teams.et_session_id, @extschema@.et_last_session_id())
          AND m.outcome IS NOT NULL AND m.outcome <> 'unknown'
        GROUP BY m.match_id, m.outcome
    ), results AS (
        SELECT s.attackers AS team, s.outcome = 'round1_attackers' AS won, s.outcome = 'round2_attackers' AS lost, s.outcome = 'draw' AS drawn FROM sides s
        UNION ALL
        SELECT s.defenders, s.outcome = 'round2_attackers', s.outcome = 'round1_attackers', s.outcome = 'draw' FROM sides s
    )
    SELECT (SELECT array_agg(pl.name ORDER BY pl.name) FROM @extschema@.et_players pl WHERE pl.guid = ANY (r.team)),
           r.team, count(*) FILTER (WHERE r.won), count(*) FILTER (WHERE r.lost), count(*) FILTER (WHERE r.drawn)
    FROM results r
    WHERE r.team IS NOT NULL
    GROUP BY r.team
    ORDER BY count(*) FILTER (WHERE r.won) DESC, count(*) FILTER (WHERE r.lost), r.team;
END;
COMMENT ON FUNCTION et_session_teams(bigint) IS
    'Team results of one ET:Legacy session (default: the last one): each distinct set of players who played a map together (by GUID), with maps won, lost and drawn.';

CREATE FUNCTION et_awards(et_session_id bigint DEFAULT NULL)
RETURNS TABLE (award text, guid text, name text, value double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH scope AS (
        SELECT p.* FROM @extschema@.et_counted_player_rounds p
        WHERE p.et_session_id = coalesce(et_awards.et_session_id, @extschema@.et_last_session_id())
          AND NOT p.is_bot
    ), totals AS (
        SELECT s.guid, (array_agg(s.clean_name ORDER BY s.saved_at DESC))[1] AS name,
               sum(s.kills) AS kills, sum(s.deaths) AS deaths, sum(s.damage_given) AS damage,
               sum(s.revives_given) AS revives, sum(s.gibs) AS gibs, sum(s.headshots) AS headshots,
               sum(s.xp) AS xp, 100.0 * sum(s.hits) / nullif(sum(s.shots), 0) AS accuracy,
               sum(s.team_kills) AS team_kills, max(s.killing_spree) AS spree
        FROM scope s GROUP BY s.guid
    ), candidates AS (
        SELECT 'Most kills' AS award, t.guid, t.name, t.kills::double precision AS value, true AS high FROM totals t
        UNION ALL SELECT 'Most damage given', t.guid, t.name, t.damage, true FROM totals t
        UNION ALL SELECT 'Most revives', t.guid, t.name, t.revives, true FROM totals t
        UNION ALL SELECT 'Most gibs', t.guid, t.name, t.gibs, true FROM totals t
        UNION ALL SELECT 'Most headshots', t.guid, t.name, t.headshots, true FROM totals t
        UNION ALL SELECT 'Most XP', t.guid, t.name, t.xp, true FROM totals t
        UNION ALL SELECT 'Best accuracy', t.guid, t.name, t.accuracy, true FROM totals t
        UNION ALL SELECT 'Longest killing spree', t.guid, t.name, t.spree, true FROM totals t
        UNION ALL SELECT 'Most team kills', t.guid, t.name, t.team_kills, true FROM totals t
        UNION ALL SELECT 'Fewest deaths', t.guid, t.name, t.deaths, false FROM totals t
        UNION ALL
        SELECT 'Most kills with ' || w.weapon, w.guid, t.name, sum(w.kills), true
        FROM @extschema@.et_weapon_rounds w
        JOIN scope s ON s.round_id = w.round_id AND s.guid = w.guid
        JOIN totals t ON t.guid = w.guid
        GROUP BY w.weapon, w.guid, t.name
    ), ranked AS (
        SELECT c.*, rank() OVER (PARTITION BY c.award
                                 ORDER BY CASE WHEN c.high THEN -c.value ELSE c.value END) AS place
        FROM candidates c
        WHERE c.value IS NOT NULL AND (NOT c.high OR c.value > 0)
    )
    SELECT r.award, r.guid, r.name, r.value FROM ranked r WHERE r.place = 1
    ORDER BY r.award LIKE 'Most kills with %', r.award, r.guid;
END;
COMMENT ON FUNCTION et_awards(bigint) IS
    'Awards of one ET:Legacy session (default: the last one): most kills, damage, revives, gibs, headshots, XP, best accuracy, longest spree, most team kills, fewest deaths, and most kills with each weapon; ties share an award.';
