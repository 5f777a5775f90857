-- Run every guildstats builder once a minute with pg_cron, in THIS database.
--
-- Needs pg_cron in shared_preload_libraries. pg_cron keeps its jobs in one database of the
-- cluster (the setting cron.database_name, 'postgres' by default); this script schedules
-- the job there with cron.schedule_in_database, so the guildstats database does not have to
-- be that one. Run it with psql (it uses \gset and \connect), as a superuser, in the database
-- that has the extension:
--
--   psql -d yourdb -v ON_ERROR_STOP=1 -f sql/ops/cron.sql
--
-- It schedules two named jobs:
--   guildstats-build-all:DB   SELECT * FROM guildstats.build_all() in DB, every minute. One job
--                             per guildstats database, so several can share a cluster.
--   guildstats-purge-run-details  daily, deletes cron.job_run_details rows older than 7 days
--                             (at one run a minute the history grows by 1,440 rows a day).
--
-- Safe to run again: a job scheduled under an existing name is updated in place (same jobid),
-- so a second run changes nothing. pg_cron never runs two instances of one job at a time, and
-- each builder locks its row of guildstats.builder_locks (which only guildstats_admin can
-- lock), so a manual call that overlaps the schedule returns
-- status 'skipped: ...' instead of waiting. Sockets only (listen_addresses = '')? pg_cron's
-- jobs connect over TCP to cron.host unless cron.use_background_workers = on.
--
-- Remove the schedule (in the cron database):
--   SELECT cron.unschedule('guildstats-build-all:yourdb');

SELECT current_database() AS gs_database,
       coalesce(current_setting('cron.database_name', true), '') AS gs_cron_database
\gset

SELECT :'gs_cron_database' <> '' AS gs_has_cron \gset
\if :gs_has_cron
\else
    \echo 'pg_cron is not loaded: add pg_cron to shared_preload_libraries and restart PostgreSQL'
    SELECT 1 / 0 AS pg_cron_is_not_in_shared_preload_libraries;
\endif

SELECT count(*) = 1 AS gs_has_extension FROM pg_extension WHERE extname = 'guildstats' \gset
\if :gs_has_extension
\else
    \echo 'guildstats is not installed in this database: run CREATE EXTENSION guildstats first'
    SELECT 1 / 0 AS guildstats_is_not_installed_here;
\endif

\connect :"gs_cron_database"
CREATE EXTENSION IF NOT EXISTS pg_cron;

SELECT cron.schedule_in_database(
    'guildstats-build-all:' || :'gs_database',
    '* * * * *',
    'SELECT * FROM guildstats.build_all()',
    :'gs_database'
) AS build_all_jobid;

SELECT cron.schedule(
    'guildstats-purge-run-details',
    '17 3 * * *',
    $$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days'$$
) AS purge_jobid;

-- Back where we started, so that a following -f script runs in the guildstats database.
\connect :"gs_database"
