-- Economy health: balances as of each day, flows, alerts; cross-checked against plain SQL.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SET extra_float_digits = 0;
INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (77, 'Europe/Berlin');
-- Ten holders get 1000 (one) or 10 (nine) on day 1; +25 % on day 2; three days of spending;
-- a quiet day; a transaction at 23:30 UTC that is the next day in Berlin; another guild.
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
SELECT 77, u, CASE WHEN u = 1 THEN 1000 ELSE 10 END, 'welcome', '2026-03-01 12:00+00', 'w' || u
FROM generate_series(1, 10) u;
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key) VALUES
    (77, 2, 273, 'event', '2026-03-02 18:00+00', 'e1'),
    (77, 1, -50, 'shop', '2026-03-03 18:00+00', 's1'),
    (77, 2, -20, 'shop', '2026-03-04 18:00+00', 's2'),
    (77, 3, -5, 'shop', '2026-03-05 10:00+00', 's3'),
    (77, 4, 7, 'daily', '2026-03-06 23:30+00', 'late'),
    (78, 1, 5000, 'welcome', '2026-03-03 12:00+00', 'other');
SELECT day, circulation, earned, spent, net, accounts, users_with_points AS with_points,
       median_balance AS median, round(top1_share::numeric, 4) AS top1,
       round(gini::numeric, 4) AS gini, round(inflation::numeric, 4) AS inflation,
       negative_streak AS streak, alerts
FROM guildstats.economy_health(77) ORDER BY day;
-- A window inside the data: opening balances come from before it.
SELECT day, circulation, earned, net, negative_streak, alerts
FROM guildstats.economy_health(77, '2026-03-05', '2026-03-08') ORDER BY day;
-- A guild without transactions has no days unless asked for.
SELECT count(*) AS no_days FROM guildstats.economy_health(999);
SELECT day, circulation, gini FROM guildstats.economy_health(999, '2026-03-01', '2026-03-02');
SELECT * FROM guildstats.economy_health(77, '2026-03-05', '2026-03-01');
-- Cross-check with plain SQL: balances as of each day for every account, then the gini
-- aggregate and percentile_cont over them.
WITH days AS (SELECT d::date AS day FROM generate_series(date '2026-03-01', date '2026-03-07', '1 day') d),
local AS (SELECT user_id, amount, (tx_ts AT TIME ZONE 'Europe/Berlin')::date AS day
          FROM guildstats.raw_point_transactions WHERE guild_id = 77),
balances AS (SELECT days.day, l.user_id, sum(l.amount) AS balance
             FROM days JOIN local l ON l.day <= days.day GROUP BY days.day, l.user_id),
plain AS (SELECT day, sum(balance)::bigint AS circulation,
                 guildstats.gini(greatest(balance, 0)) AS gini,
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(balance, 0)) AS median
          FROM balances GROUP BY day)
SELECT bool_and(p.circulation = h.circulation AND abs(p.gini - h.gini) < 1e-12
                AND p.median = h.median_balance) AS matches_plain_sql, count(*) AS days
FROM plain p JOIN guildstats.economy_health(77, '2026-03-01', '2026-03-07') h USING (day);
-- Leave the shared regression database as we found it.
TRUNCATE guildstats.raw_point_transactions;
DELETE FROM guildstats.settings WHERE guild_id = 77;
