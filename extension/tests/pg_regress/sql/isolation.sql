-- Per-guild isolation: a login bound to guild 1 in reader_guilds sees nothing of guild 2 in any
-- relation of any guildstats schema (found by catalog), through views and functions too; an
-- unbound reader sees no guild's rows; the admin, the ingest role and a reader bound to every
-- guild see what the superuser sees.
-- All in one transaction, rolled back at the end (roles included): the suites share a database.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
BEGIN;
SET LOCAL client_min_messages = warning;

-- Two guilds with the same shape of data, built.
INSERT INTO guildstats.raw_guilds (guild_id, observed_at, name) SELECT g, '2026-03-01 18:00+00', 'Guild ' || g FROM generate_series(1, 2) g;
INSERT INTO guildstats.raw_channels (guild_id, channel_id, observed_at, name, kind) SELECT g, 100 * g, '2026-03-01 18:00+00', 'voice', 'voice' FROM generate_series(1, 2) g;
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', g, t FROM generate_series(1, 2) g,
       generate_series(timestamptz '2026-03-01 18:00+00', '2026-03-01 23:00+00', interval '1 minute') t;
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at) VALUES ('gameserver', NULL, '2026-03-01 18:00+00');
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts)
SELECT g, u, CASE WHEN k = 0 THEN 100 * g END, '2026-03-01 20:00+00'::timestamptz + (u * 10 + k * 30) * interval '1 minute'
  FROM generate_series(1, 2) g, generate_series(1, 3) u, generate_series(0, 1) k;
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states)
SELECT g, '2026-03-01 20:15+00', jsonb_build_array(jsonb_build_object('user_id', 1, 'channel_id', 100 * g)) FROM generate_series(1, 2) g;
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at)
SELECT g, 100 * g, u, 10 * g + u, '2026-03-01 20:05+00' FROM generate_series(1, 2) g, generate_series(1, 3) u;
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts)
SELECT g, u, 'join', '2026-02-01 12:00+00' FROM generate_series(1, 2) g, generate_series(1, 3) u;
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key)
SELECT g, u, 10, '2026-03-01 20:00+00', g || '-' || u FROM generate_series(1, 2) g, generate_series(1, 3) u;
INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, name, channel_id, status, creator_id)
SELECT g, 5000 + g, '2026-03-01 19:00+00', 'Night', 100 * g, 'scheduled', 1 FROM generate_series(1, 2) g;
-- Started, so that the event funnel has rows in both guilds.
INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, name, channel_id, status, creator_id)
SELECT g, 5000 + g, '2026-03-01 20:00+00', 'Night', 100 * g, 'active', 1 FROM generate_series(1, 2) g;
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at)
SELECT g, 5000 + g, 2, 'add', '2026-03-01 19:30+00' FROM generate_series(1, 2) g;
INSERT INTO guildstats.settings (guild_id, session_cap) VALUES (NULL, '8 hours'), (1, '6 hours'), (2, '7 hours');
INSERT INTO guildstats.et_guid_links (guid, guild_id, user_id) VALUES ('AAAA0000', 1, 1), ('BBBB0000', 2, 1);
INSERT INTO guildstats.opt_out (guild_id, user_id) VALUES (1, 99), (2, 99);
SELECT count(*) AS builders_ok FROM guildstats.build_all() WHERE status = 'ok';

-- Logins: bound to guild 1, bound to every guild, bound to nothing; the admin and ingest roles.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'guildstats_admin') THEN CREATE ROLE guildstats_admin NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'guildstats_ingest') THEN CREATE ROLE guildstats_ingest NOLOGIN; END IF;
END $$;
CREATE ROLE iso_reader_one LOGIN;
CREATE ROLE iso_reader_all LOGIN;
CREATE ROLE iso_reader_none LOGIN;
CREATE ROLE iso_admin LOGIN IN ROLE guildstats_admin;
CREATE ROLE iso_ingest LOGIN IN ROLE guildstats_ingest;
GRANT USAGE ON SCHEMA guildstats TO iso_reader_one, iso_reader_all, iso_reader_none, iso_admin, iso_ingest;
GRANT SELECT ON ALL TABLES IN SCHEMA guildstats TO iso_reader_one, iso_reader_all, iso_reader_none, iso_admin, iso_ingest;
GRANT USAGE ON SCHEMA guildstats_mart TO iso_reader_one, iso_reader_all, iso_reader_none, iso_admin, iso_ingest;
GRANT SELECT ON ALL TABLES IN SCHEMA guildstats_mart TO iso_reader_one, iso_reader_all, iso_reader_none, iso_admin, iso_ingest;
INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES
    ('iso_reader_one', 1), ('iso_reader_all', NULL), ('someone_else', 2);

-- Rows per (relation, guild) of every relation with a guild_id in every guildstats schema, as
-- whoever runs it.
CREATE TEMP TABLE seen (who text, relation text, guild_id bigint, n bigint);
GRANT ALL ON seen TO PUBLIC;
CREATE FUNCTION pg_temp.count_seen() RETURNS void LANGUAGE plpgsql AS $$
DECLARE rel text;
BEGIN
    FOR rel IN SELECT format('%I.%I', s.nspname, c.relname)
                 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                WHERE s.nspname LIKE 'guildstats%' AND c.relkind IN ('r', 'p', 'v', 'm')
                  AND c.relname <> 'reader_guilds'  -- its own policy, checked below
                  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
    LOOP
        EXECUTE format('INSERT INTO seen SELECT current_user, %L, guild_id, count(*) FROM %s GROUP BY guild_id', rel, rel);
    END LOOP;
END $$;
SELECT pg_temp.count_seen();
SET ROLE iso_reader_one; SELECT pg_temp.count_seen(); RESET ROLE;
SET ROLE iso_reader_all; SELECT pg_temp.count_seen(); RESET ROLE;
SET ROLE iso_reader_none; SELECT pg_temp.count_seen(); RESET ROLE;
SET ROLE iso_admin; SELECT pg_temp.count_seen(); RESET ROLE;

-- Every relation has rows of both guilds to hide (else the check below proves nothing) ...
SELECT relation AS relation_without_both_guilds FROM seen WHERE who = current_user
 GROUP BY relation HAVING count(*) FILTER (WHERE guild_id = 1) = 0 OR count(*) FILTER (WHERE guild_id = 2) = 0
 ORDER BY 1;
SELECT count(DISTINCT relation) AS relations_checked FROM seen WHERE who = current_user;
-- ... and each login sees exactly what it should: the rows of its guilds and of no guild.
WITH expected AS (
    SELECT w.who, s.relation, s.guild_id, s.n
      FROM seen s
     CROSS JOIN (VALUES ('iso_reader_one', ARRAY[1]::bigint[]), ('iso_reader_all', NULL), ('iso_reader_none', '{}'),
                        ('iso_admin', NULL)) AS w(who, guilds)
     WHERE s.who = current_user
       AND (s.guild_id IS NULL OR w.guilds IS NULL OR s.guild_id = ANY (w.guilds)))
SELECT coalesce(e.who, s.who) AS who, coalesce(e.relation, s.relation) AS relation,
       coalesce(e.guild_id, s.guild_id) AS guild_id, e.n AS expected, s.n AS seen
  FROM expected e
  FULL JOIN (SELECT * FROM seen WHERE who <> current_user) s
    ON (s.who, s.relation) = (e.who, e.relation) AND s.guild_id IS NOT DISTINCT FROM e.guild_id
 WHERE e.n IS DISTINCT FROM s.n
   -- data_health repeats the database-wide health() checks for each guild; a reader's checks
   -- run over the rows it may see, so which checks report can differ (never another guild's rows).
   AND coalesce(e.relation, s.relation) <> 'guildstats_mart.data_health'
 ORDER BY 1, 2, 3;

-- Functions read through the same policies.
SET ROLE iso_reader_one;
SELECT count(*) AS guild_2_activity_days FROM guildstats.activity_daily(2);
SELECT count(*) > 0 AS guild_1_activity_days FROM guildstats.activity_daily(1);
SELECT count(*) AS guild_2_economy_days FROM guildstats.economy_health(2);
SELECT NOT jsonb_path_exists(guildstats.export_member(2, 1) -> 'tables', '$.* ? (@.size() > 0)') AS export_of_guild_2_is_empty,
       jsonb_path_exists(guildstats.export_member(1, 1) -> 'tables', '$.* ? (@.size() > 0)') AS export_of_guild_1_has_rows;
-- A login sees its own bindings only.
SELECT role_name, guild_id FROM guildstats.reader_guilds;
RESET ROLE;

-- The ingest role reads the whole opt-out list (the Discord bot does).
SET ROLE iso_ingest;
SELECT guild_id, user_id FROM guildstats.opt_out ORDER BY 1;
RESET ROLE;

-- The rules hold by catalog, for the mart too: every table with a guild_id in a guildstats
-- schema has row-level security with the guild_isolation policy, every view runs with the
-- caller's rights (reader_guilds has a policy of its own), and no function a reader can call runs with its owner's (trigger functions
-- cannot be called). The one SECURITY DEFINER function, command_link, is the Discord commands'
-- only write: roles.sql keeps it from readers, and it checks the caller's binding itself.
SELECT format('%I.%I', s.nspname, c.relname) AS not_isolated
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname LIKE 'guildstats%'
   AND CASE WHEN c.relkind = 'v' THEN NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
            WHEN c.relkind IN ('r', 'p') AND c.relname <> 'reader_guilds' THEN
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
                AND NOT (c.relrowsecurity AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'guild_isolation'))
            WHEN c.relkind = 'm' THEN true
            ELSE false END;
SELECT p.oid::regprocedure AS security_definer_function
  FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace
 WHERE s.nspname LIKE 'guildstats%' AND p.prosecdef AND p.prorettype <> 'trigger'::regtype;
-- Relations without a guild_id are community-wide and not filtered:
SELECT c.relname AS community_wide
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname LIKE 'guildstats%' AND c.relkind IN ('r', 'p', 'v', 'm')
   AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
 ORDER BY 1;

-- isolate_by_guild() refuses what it cannot isolate, by name.
SAVEPOINT before_error;
CREATE MATERIALIZED VIEW public.iso_mv AS SELECT 1::bigint AS guild_id;
SELECT guildstats.isolate_by_guild('public.iso_mv');
ROLLBACK TO before_error;
SELECT guildstats.isolate_by_guild('guildstats.game_servers');
ROLLBACK TO before_error;
ROLLBACK;
