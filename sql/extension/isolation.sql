-- Per-guild isolation for readers. A login bound to guilds in reader_guilds sees, in every table
-- that has a guild_id, only the rows of those guilds (and rows of no guild, such as the default
-- settings); a login bound to nothing sees no guild's rows. The admin and ingest roles, and
-- superusers (the builders run as one of these), see everything. Tables without a guild_id (game
-- servers, ET:Legacy rounds, build bookkeeping) are community-wide and not filtered.
--
-- The BI views of guildstats_mart run with the caller's rights too, so a reader bound to one
-- guild sees only that guild through every dashboard.
--
-- Enforced by row-level security, so that it holds for every client (Superset, psql, a
-- notebook): views run with the caller's rights (security_invoker), and the reader-callable
-- functions are SECURITY INVOKER, so they read through the same policies.

CREATE TABLE reader_guilds (
    role_name  name        NOT NULL,
    guild_id   bigint,
    added_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reader_guilds_key UNIQUE NULLS NOT DISTINCT (role_name, guild_id)
);
COMMENT ON TABLE reader_guilds IS
    'Which guilds a login may read: one row per (login role, guild); guild_id NULL means every guild. A login with no row sees no guild''s rows. Members of guildstats_admin and guildstats_ingest, and superusers, see everything. Each login sees only its own rows here.';
COMMENT ON COLUMN reader_guilds.role_name IS 'The login role (current_user) the row binds; compared by name, so a renamed role must be bound again.';
COMMENT ON COLUMN reader_guilds.guild_id IS 'A guild the role may read; NULL: every guild.';
COMMENT ON COLUMN reader_guilds.added_at IS 'When the binding was made.';
SELECT pg_catalog.pg_extension_config_dump('reader_guilds', '');

ALTER TABLE reader_guilds ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_guilds_own ON reader_guilds
    USING (role_name = current_user
           OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                       WHERE r.rolname = 'guildstats_admin' AND pg_catalog.pg_has_role(r.oid, 'MEMBER')));
COMMENT ON POLICY reader_guilds_own ON reader_guilds IS
    'A login sees its own bindings; the admin sees and manages all of them.';

-- The one policy, written once. Every part is uncorrelated except guild_id, so PostgreSQL
-- evaluates the role checks once per query (InitPlans) and the guild list as a hashed subplan;
-- a reader's own `WHERE guild_id = ...` still uses the guild indexes (int8 equality is
-- leakproof, so it may run before the policy).
CREATE FUNCTION isolate_by_guild(relation regclass)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
    has_guild boolean;
BEGIN
    SELECT c.relkind,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
      INTO kind, has_guild
      FROM pg_class c WHERE c.oid = relation;
    IF kind IN ('v') THEN
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', relation);
        RETURN format('%s: view runs with the caller''s rights', relation);
    ELSIF kind = 'm' THEN
        RAISE EXCEPTION 'isolate_by_guild(%): a materialized view cannot carry row-level security', relation
            USING HINT = 'Store the rows in a table (refreshed by a function) or put a view over it, then isolate that.';
    ELSIF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'isolate_by_guild(%): only tables and views can be isolated', relation;
    ELSIF NOT has_guild THEN
        RAISE EXCEPTION 'isolate_by_guild(%): the table has no guild_id column', relation;
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', relation);
    IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = relation AND p.polname = 'guild_isolation') THEN
        EXECUTE format($policy$
            CREATE POLICY guild_isolation ON %s
                USING (guild_id IS NULL
                       OR guild_id IN (SELECT b.guild_id FROM @extschema@.reader_guilds b WHERE b.role_name = current_user)
                       OR EXISTS (SELECT 1 FROM @extschema@.reader_guilds b WHERE b.role_name = current_user AND b.guild_id IS NULL)
                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                                   WHERE r.rolname IN ('guildstats_admin', 'guildstats_ingest')
                                     AND pg_catalog.pg_has_role(r.oid, 'MEMBER')))
                WITH CHECK (true)$policy$, relation);
        EXECUTE format('COMMENT ON POLICY guild_isolation ON %s IS %L', relation,
                       'Readers see the rows of the guilds reader_guilds binds them to; admin and ingest see all. Writes are governed by the grants.');
    END IF;
    RETURN format('%s: rows filtered by reader_guilds', relation);
END
$$;
COMMENT ON FUNCTION isolate_by_guild(regclass) IS
    'Puts a table or view under per-guild isolation: a table with a guild_id gets row-level security with the guild_isolation policy (readers see the guilds reader_guilds binds them to), a view runs with the caller''s rights so the policies of the tables below apply. Idempotent. For relations created outside the extension, e.g. a BI mart; run as their owner. Example: SELECT guildstats.isolate_by_guild(''guildstats.voice_sessions'');';

SELECT count(@extschema@.isolate_by_guild(c.oid))
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE (s.nspname = '@extschema@' OR (s.nspname = 'guildstats_mart' AND c.relkind = 'v'))
   AND (c.relkind = 'v'
        OR (c.relkind IN ('r', 'p') AND c.relname <> 'reader_guilds'
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)));
