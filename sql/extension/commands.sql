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

-- The commands read player rounds by GUID and name and sum a handful of their numbers, over
-- every round (/stats' ranks, /top over all time, name matching); a player round's row also
-- carries its weapon stats, about 1.8 kB, so those reads go through this narrow copy instead
-- (an index-only scan reads a twentieth of the pages).
CREATE INDEX et_player_rounds_totals_idx ON et_player_rounds (guid, clean_name)
    INCLUDE (round_id, is_bot, kills, deaths, damage_given, time_played_seconds, gibs, hits, shots,
             headshots, revives_given, xp);
COMMENT ON INDEX et_player_rounds_totals_idx IS
    'Covers what the command functions and et_leaderboard read of a player round (GUID, name, bot flag, the summed numbers), so that they scan it instead of the wide rows.';

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

CREATE FUNCTION _command_as_of(as_of timestamptz)
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
COMMENT ON FUNCTION command_stats(bigint, text, bigint, timestamptz) IS
    'The /stats answer for one ET:Legacy player, found by a Discord member''s GUID link (user_id; the linked GUID with the most rounds) or by name (colour codes stripped, case ignored: exact, prefix, substring, then similar spelling; several matches answer ok false with candidates): totals over counted rounds, form in the 30 days before as_of (default now) against before, voice hours (week, month, all; null when the GUID is linked to nobody in the guild), events attended, all-time rank for kills, dpm and kd among the players with at least command_settings.top_min_rounds rounds, as command_top ranks them (null when under the minimum), and the last 20 sessions played, oldest first. Example: SELECT jsonb_pretty(guildstats.command_stats(1234, player => ''lu''));';

CREATE FUNCTION command_top(guild_id bigint, metric text, period text DEFAULT 'all', map text DEFAULT NULL,
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

CREATE FUNCTION command_voice(guild_id bigint, user_id bigint, as_of timestamptz DEFAULT NULL)
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

CREATE FUNCTION command_community(guild_id bigint, as_of timestamptz DEFAULT NULL)
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
COMMENT ON FUNCTION command_community(bigint, timestamptz) IS
    'The /community answer (for admins; the bot checks who asks), as of the last run of build_rollups() (built_through: when it last recorded progress; build_all() runs it): DAU, MAU and DAU/MAU on as_of''s calendar day (default today) from guild_activity_daily, D7 and D30 retention (as retention_dn: of the users first active at least N days before the last active day, the share active exactly N days after their first day), the points economy''s alerts of the last 30 days (economy_daily, the rows of economy_health) and every health() check that is not ok. Example: SELECT jsonb_pretty(guildstats.command_community(1234));';
