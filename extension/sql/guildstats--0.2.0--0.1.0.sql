-- guildstats 0.2.0 -> 0.1.0: refused, with a message that says what to do instead.
--
-- Without this file PostgreSQL would only say that no update path exists, which reads like a
-- packaging mistake. An upgrade changes tables and their rows in place, so no script can go back
-- without losing what 0.2.0 added; the way back is the backup taken before the upgrade.
\echo Use "ALTER EXTENSION guildstats UPDATE TO '0.1.0'" to load this file. \quit

DO $refuse$
BEGIN
    RAISE EXCEPTION 'guildstats cannot be downgraded from 0.2.0 to 0.1.0'
        USING ERRCODE = 'feature_not_supported',
              DETAIL = 'Upgrades change tables and rows in place; going back would lose data, so no downgrade script exists.',
              HINT = 'To run 0.1.0 again, install the 0.1.0 packages and restore the pg_dump taken before ALTER EXTENSION guildstats UPDATE.';
END
$refuse$;
