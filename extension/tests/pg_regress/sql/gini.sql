-- Gini coefficient: hand-worked values, NULL rules, errors, the two-step form, an independent
-- plain-SQL Gini on random data, and identical results with and without parallel workers.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SET extra_float_digits = 0;

-- All equal: 0. One holder among n: (n-1)/n. Textbook 1..5: 20/75.
SELECT guildstats.gini(x) AS all_equal FROM (VALUES (5::bigint), (5), (5)) v(x);
SELECT n, guildstats.gini(CASE WHEN i = n THEN 1000 ELSE 0 END::bigint) = (n - 1)::float8 / n AS one_holder
FROM generate_series(1, 6) n, generate_series(1, n) i GROUP BY n ORDER BY n;
SELECT guildstats.gini(x::bigint) AS one_to_five, 20.0 / 75 AS expected FROM generate_series(1, 5) x;
SELECT guildstats.gini(x) AS two_halves FROM (VALUES (0::bigint), (0), (1), (1)) v(x);

-- The three input types agree on whole numbers; fractions work.
SELECT guildstats.gini(x::bigint) AS int8, guildstats.gini(x::numeric) AS num,
       guildstats.gini(x::float8) AS float8
FROM generate_series(0, 30) x;
SELECT guildstats.gini(x) AS fractions FROM (VALUES (0.5::numeric), (1.0), (1.5), (2.0)) v(x);

-- NULLs are skipped; nothing, or a zero total, gives NULL.
SELECT guildstats.gini(x) IS NULL AS no_rows FROM (SELECT 1::bigint WHERE false) v(x);
SELECT guildstats.gini(x) IS NULL AS only_nulls FROM (VALUES (NULL::bigint), (NULL)) v(x);
SELECT guildstats.gini(x) IS NULL AS all_zero FROM (VALUES (0::bigint), (0), (NULL)) v(x);
SELECT guildstats.gini(x) AS nulls_skipped FROM (VALUES (NULL::bigint), (0), (NULL), (10)) v(x);

-- Negative, NaN and infinite values are errors.
SELECT guildstats.gini(x) FROM (VALUES (3::bigint), (-1)) v(x);
SELECT guildstats.gini(x) FROM (VALUES (1::float8), ('NaN')) v(x);
SELECT guildstats.gini(x) FROM (VALUES (1::float8), ('Infinity')) v(x);
SELECT guildstats.gini(x) FROM (VALUES (1::numeric), ('NaN')) v(x);

-- Two steps: one scan, several accessors; states stored, re-read and rolled up.
SELECT guildstats.gini_agg(x) AS state FROM (VALUES (0::bigint), (0), (7), (2.5::float8::bigint)) v(x);
SELECT guildstats.gini_agg(x) AS state FROM (VALUES (0.25::float8), (3), (3)) v(x);
WITH s AS (SELECT guildstats.gini_agg(x::bigint) AS st FROM generate_series(1, 100) x)
SELECT guildstats.gini(st), guildstats.median(st), guildstats.top_share(st, 0.01) AS top_1pct,
       guildstats.top_share(st, 0.1) AS top_10pct
FROM s;
SELECT guildstats.median(guildstats.gini_agg(x)) AS even_median FROM (VALUES (1::bigint), (2), (3), (10)) v(x);
SELECT guildstats.top_share(guildstats.gini_agg(x::bigint), 2) FROM generate_series(1, 3) x;
CREATE TABLE gini_daily (day int, st guildstats.gini_state);
INSERT INTO gini_daily SELECT x % 7, guildstats.gini_agg((x * 37 % 101)::bigint) FROM generate_series(1, 700) x GROUP BY x % 7;
SELECT guildstats.gini(guildstats.rollup(st)) = (SELECT guildstats.gini((x * 37 % 101)::bigint) FROM generate_series(1, 700) x)
       AS rollup_is_exact
FROM gini_daily;
SELECT bool_and(st::text::guildstats.gini_state::text = st::text) AS text_round_trip FROM gini_daily;
SELECT '{"version":1,"values":[[3,2],[0,1]]}'::guildstats.gini_state;
SELECT '{"version":2,"values":[]}'::guildstats.gini_state;
SELECT '{"version":1,"values":[[-3,2]]}'::guildstats.gini_state;
SELECT guildstats.gini(NULL::guildstats.gini_state) IS NULL AS null_state;
SELECT guildstats.gini_trans(NULL::guildstats.gini_state, 1::bigint);

-- As a window aggregate (running Gini).
SELECT x, guildstats.gini(x::bigint) OVER (ORDER BY x) FROM generate_series(1, 4) x;

-- Random balances of 5000 users against an independent plain-SQL Gini (window functions):
-- G = sum((2i - n - 1) x_i) / (n sum(x)) over the sorted values.
SELECT setseed(0.42);
CREATE TABLE gini_balances AS
SELECT u AS user_id, floor(1000 * random() * random() * random())::bigint AS balance
FROM generate_series(1, 5000) u;
ANALYZE gini_balances;
WITH ranked AS (
    SELECT balance, row_number() OVER (ORDER BY balance) AS i, count(*) OVER () AS n
    FROM gini_balances)
SELECT abs((SELECT guildstats.gini(balance) FROM gini_balances)
           - (sum((2 * i - n - 1) * balance)::numeric / (max(n) * sum(balance)))::float8) < 1e-12
       AS matches_plain_sql
FROM ranked;

-- Parallel plans: Partial and Finalize Aggregate, and the same answers as a serial run.
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT guildstats.gini(balance) FROM gini_balances;
EXPLAIN (COSTS OFF) SELECT guildstats.gini_agg(balance::float8) FROM gini_balances;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT guildstats.gini(balance) FROM gini_balances;
SET extra_float_digits = 1;  -- compare every bit
SELECT guildstats.gini(balance) AS p_g, guildstats.gini(balance::float8 / 3) AS p_gf,
       guildstats.gini_agg(balance)::text AS p_st,
       guildstats.median(guildstats.gini_agg(balance)) AS p_med
FROM gini_balances \gset
SET max_parallel_workers_per_gather = 0;
SELECT :'p_g' = guildstats.gini(balance)::text AS same_gini,
       :'p_gf' = guildstats.gini(balance::float8 / 3)::text AS same_float_gini,
       :'p_st' = guildstats.gini_agg(balance)::text AS same_state,
       :'p_med' = guildstats.median(guildstats.gini_agg(balance))::text AS same_median
FROM gini_balances;
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE gini_balances, gini_daily;
