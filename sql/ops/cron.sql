-- Optional: run every guildstats builder once a minute with pg_cron.
--
-- Needs pg_cron in shared_preload_libraries and `cron.database_name` set to this database
-- (pg_cron runs jobs in that one database), then, as a superuser:
--
--   psql -d yourdb -v ON_ERROR_STOP=1 -f sql/ops/cron.sql
--
-- Safe to run again: the job is (re)scheduled under the same name. pg_cron never runs two
-- instances of one job at a time, and each builder locks its row of guildstats.builder_locks
-- (which only guildstats_admin can lock), so a manual call that overlaps the schedule returns
-- status 'skipped: ...' instead of waiting.
-- Remove the schedule with: SELECT cron.unschedule('guildstats-build-all');

CREATE EXTENSION IF NOT EXISTS pg_cron;

SELECT cron.schedule('guildstats-build-all', '* * * * *', 'SELECT * FROM guildstats.build_all()');
