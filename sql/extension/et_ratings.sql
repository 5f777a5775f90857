-- ET:Legacy skill ratings: Weng–Lin (OpenSkill) Plackett–Luce from stopwatch maps.
--
-- Every finished stopwatch map with a result (round-1 attackers' time stood, was beaten, or a
-- double fullhold: a draw) is one game between two sides, told apart by who played together
-- (team numbers swap between rounds). A player counts by the share of the map they played,
-- from time_played_seconds. The update is the Rust engine's (extension/engine/src/rating.rs,
-- checked against the PyPI openskill package), written again here in PL/pgSQL; the e2e test
-- tests/tests/et_ratings.rs compares the two on the real fixtures.
--
-- Incremental rule: ratings depend on the order of the maps, so each build lists the rateable
-- maps in order (started_at, match_id) with a fingerprint of their sides, shares and result,
-- finds the first position where that list differs from the maps already rated, drops the
-- history from there and replays the maps from that point. A map arriving on time is one step;
-- a late earlier map (or a round 1 that pairs late and changes a map) replays what follows it.
-- Listing the maps reads every finished map each call: cheap at ET volumes (0.4 s for 4,500
-- maps, `scripts/bench --only et_ratings`).

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
COMMENT ON FUNCTION et_rating_games() IS
    'The games build_et_ratings() rates, one row per player and map in rating order: finished stopwatch maps with a result (not cancelled by a restart) and humans on both sides; side 1 attacked in round 1; share is the player''s seconds over the two rounds'' lengths (the longest time played in each), capped at 1.';

-- ET:Legacy rounds carry no guild: one step over every map (per = all).
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

CREATE FUNCTION build_et_ratings(full boolean DEFAULT false)
RETURNS TABLE (maps_rated integer, maps_replayed integer, players_rated integer,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_et_ratings', $1))
        AS r(maps_rated integer, maps_replayed integer, players_rated integer,
               elapsed interval, status text)
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
COMMENT ON FUNCTION et_balance_teams(text[]) IS
    'Proposes two teams from the given GUIDs with the closest predicted win chance (et_ratings; a GUID without a rating counts as a new player): 2 to 64 GUIDs, each once; every split for up to 12 players; beyond, strongest first to the weaker side, then the best swaps while they narrow the gap (close, not always the best). Returns the GUIDs and latest names of each team, team A''s predicted win probability and the method. Example: SELECT * FROM guildstats.et_balance_teams(ARRAY[''AAAA0001'', ''BBBB0002'', ''CCCC0003'', ''DDDD0004'']);';
