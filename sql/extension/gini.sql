-- Gini coefficient: gini(x) for bigint, numeric and double precision, and the two-step form
-- gini_agg(x) -> gini_state -> gini(state), top_share(state, fraction), median(state),
-- rollup(state). The C functions are in extension/src/gini; the maths in
-- extension/engine/src/gini.
--
-- The state is a concrete, versioned type (not internal), so the aggregates run in parallel with
-- a combine function alone (EXPLAIN shows Partial and Finalize Aggregate), states can be stored
-- in tables and re-aggregated, and Citus can push partial aggregation down to its workers. While
-- an aggregate runs, the state is an expanded object updated in place: one hash-map update
-- per row, no per-row copy.

CREATE TYPE gini_state;

CREATE FUNCTION gini_state_in(cstring) RETURNS gini_state
    AS 'MODULE_PATHNAME', 'gs_gini_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gini_state_in(cstring) IS
    'Input function of gini_state: reads {"version":1,"values":[[value,count],...]}.';

CREATE FUNCTION gini_state_out(gini_state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'gs_gini_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gini_state_out(gini_state) IS
    'Output function of gini_state: {"version":1,"values":[[value,count],...]}, values ascending.';

CREATE FUNCTION gini_state_recv(internal) RETURNS gini_state
    AS 'MODULE_PATHNAME', 'gs_gini_state_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gini_state_recv(internal) IS
    'Binary input function of gini_state (COPY BINARY, binary protocol); the bytes are checked.';

CREATE FUNCTION gini_state_send(gini_state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'gs_gini_state_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gini_state_send(gini_state) IS
    'Binary output function of gini_state: the versioned binary form.';

CREATE TYPE gini_state (
    INPUT = gini_state_in,
    OUTPUT = gini_state_out,
    RECEIVE = gini_state_recv,
    SEND = gini_state_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);
COMMENT ON TYPE gini_state IS
    'A multiset of non-negative values (distinct value -> count), built by gini_agg(x) and read by gini(state), top_share(state, fraction) and median(state); rollup(state) merges states. Versioned binary form (first byte: version 1); text form {"version":1,"values":[[value,count],...]}.';

CREATE FUNCTION gini_trans(gini_state, bigint) RETURNS gini_state
    AS 'MODULE_PATHNAME', 'gs_gini_trans_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gini_trans(gini_state, bigint) IS
    'Internal: transition function of gini(bigint) and gini_agg(bigint). Errors on negative values; skips NULL.';

CREATE FUNCTION gini_trans(gini_state, double precision) RETURNS gini_state
    AS 'MODULE_PATHNAME', 'gs_gini_trans_float8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gini_trans(gini_state, double precision) IS
    'Internal: transition function of gini(double precision) and gini_agg(double precision). Errors on negative, NaN or infinite values; skips NULL.';

CREATE FUNCTION gini_trans(gini_state, numeric) RETURNS gini_state
    AS 'MODULE_PATHNAME', 'gs_gini_trans_numeric' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gini_trans(gini_state, numeric) IS
    'Internal: transition function of gini(numeric) and gini_agg(numeric); values are read as double precision (whole numbers up to 2^53 stay exact). Errors on negative or NaN values; skips NULL.';

CREATE FUNCTION gini_combine(gini_state, gini_state) RETURNS gini_state
    AS 'MODULE_PATHNAME', 'gs_gini_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gini_combine(gini_state, gini_state) IS
    'Internal: merges two gini states (counts add up). Combine function of the gini aggregates (parallel plans) and transition function of rollup(gini_state).';

CREATE FUNCTION gini(gini_state) RETURNS double precision
    AS 'MODULE_PATHNAME', 'gs_gini_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gini(gini_state) IS
    'Gini coefficient of the values in the state: sum over pairs of |x_i - x_j| divided by 2 n^2 mean (0 = all equal, (n-1)/n = one holder of everything). NULL when the state is empty or its values sum to 0. Example: SELECT guildstats.gini(guildstats.gini_agg(balance)) FROM balances;';

CREATE FUNCTION top_share(gini_state, fraction double precision) RETURNS double precision
    AS 'MODULE_PATHNAME', 'gs_gini_top_share' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION top_share(gini_state, double precision) IS
    'Share of the total held by the largest ceil(fraction * n) values, fraction between 0 and 1 (top_share(s, 0.01): what the top 1 % hold). NULL when the values sum to 0.';

CREATE FUNCTION median(gini_state) RETURNS double precision
    AS 'MODULE_PATHNAME', 'gs_gini_median' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION median(gini_state) IS
    'Median of the values in the state (mean of the two middle values for an even count, like percentile_cont(0.5)). NULL when the state is empty.';

CREATE AGGREGATE gini(bigint) (
    SFUNC = gini_trans, STYPE = gini_state, COMBINEFUNC = gini_combine, FINALFUNC = gini,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gini(bigint) IS
    'Exact Gini coefficient of non-negative values (0 = perfect equality, towards 1 = one holder has everything). NULLs are skipped; no values or an all-zero total give NULL; a negative value is an error. Runs in parallel. Example: SELECT guildstats.gini(balance) FROM balances;';

CREATE AGGREGATE gini(double precision) (
    SFUNC = gini_trans, STYPE = gini_state, COMBINEFUNC = gini_combine, FINALFUNC = gini,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gini(double precision) IS
    'Exact Gini coefficient of non-negative finite values; see gini(bigint). Whole values up to 2^53 are counted exactly.';

CREATE AGGREGATE gini(numeric) (
    SFUNC = gini_trans, STYPE = gini_state, COMBINEFUNC = gini_combine, FINALFUNC = gini,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gini(numeric) IS
    'Gini coefficient of non-negative values; see gini(bigint). Values are read as double precision (whole numbers up to 2^53 exactly).';

CREATE AGGREGATE gini_agg(bigint) (
    SFUNC = gini_trans, STYPE = gini_state, COMBINEFUNC = gini_combine, PARALLEL = SAFE
);
COMMENT ON AGGREGATE gini_agg(bigint) IS
    'The values as a gini_state, for several accessors over one scan (gini, top_share, median) or for storing and re-aggregating with rollup(). NULL when every value is NULL.';

CREATE AGGREGATE gini_agg(double precision) (
    SFUNC = gini_trans, STYPE = gini_state, COMBINEFUNC = gini_combine, PARALLEL = SAFE
);
COMMENT ON AGGREGATE gini_agg(double precision) IS
    'The values as a gini_state; see gini_agg(bigint).';

CREATE AGGREGATE gini_agg(numeric) (
    SFUNC = gini_trans, STYPE = gini_state, COMBINEFUNC = gini_combine, PARALLEL = SAFE
);
COMMENT ON AGGREGATE gini_agg(numeric) IS
    'The values as a gini_state (read as double precision); see gini_agg(bigint).';

CREATE AGGREGATE rollup(gini_state) (
    SFUNC = gini_combine, STYPE = gini_state, COMBINEFUNC = gini_combine, PARALLEL = SAFE
);
COMMENT ON AGGREGATE rollup(gini_state) IS
    'Merges gini states (for example daily states into a month) into one, exactly: gini(rollup(s)) equals gini over all the underlying values.';
