-- How much guildstats stores: rows and disk per table, scaled to a day and a year per 1,000
-- members, from the data already in this database. docs/operations.md quotes its output on the
-- synthetic demo community. Run with psql in the guildstats database:
--
--   psql -d yourdb -f sql/ops/sizing.sql
--
-- Days: from the first to the last voice event or message. Members: rows of guildstats.members
-- that are not bots (everyone ever seen). Disk: pg_total_relation_size (table, indexes,
-- TOAST); run VACUUM ANALYZE first for settled numbers. Exact row counts: it reads every table.

SELECT greatest(extract(epoch FROM max(ts) - min(ts)) / 86400, 1) AS sizing_days
FROM (SELECT event_ts AS ts FROM guildstats.raw_voice_events
      UNION ALL SELECT sent_at FROM guildstats.raw_messages) a
\gset
SELECT greatest(count(*), 1) AS sizing_members FROM guildstats.members WHERE NOT is_bot \gset

\echo 'days of data:' :sizing_days ' members:' :sizing_members
WITH tables AS (
    SELECT c.oid::regclass AS rel, c.relname,
           (xpath('/row/n/text()',
                  query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text::bigint AS n_rows,
           pg_total_relation_size(c.oid) AS bytes
    FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
    WHERE ns.nspname = 'guildstats' AND c.relkind IN ('r', 'p', 'm')),
per AS (
    SELECT relname, n_rows, bytes,
           n_rows / :sizing_days * 1000 / :sizing_members AS rows_day,
           bytes / :sizing_days * 365 * 1000 / :sizing_members AS bytes_year
    FROM tables)
SELECT coalesce(relname, 'total') AS table_name,
       sum(n_rows) AS rows,
       round(sum(rows_day)) AS rows_per_day_per_1000_members,
       pg_size_pretty(sum(bytes)) AS disk_now,
       pg_size_pretty(round(sum(bytes_year))) AS disk_per_year_per_1000_members
FROM per
GROUP BY ROLLUP (relname)
HAVING sum(n_rows) > 0 OR relname IS NULL
ORDER BY relname IS NULL, sum(bytes) DESC;
