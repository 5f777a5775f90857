-- guildstats roles. Roles belong to the whole cluster, so CREATE EXTENSION cannot make them:
-- run this file once per database that has the extension, as a superuser, after
-- CREATE EXTENSION guildstats (and again after ALTER EXTENSION guildstats UPDATE, so that new
-- objects get their grants). It is safe to run any number of times.
--
--   psql -d yourdb -v ON_ERROR_STOP=1 -f sql/ops/roles.sql
--
-- Three group roles (NOLOGIN); give them to login roles with GRANT:
--   guildstats_ingest  the ingesters: INSERT into the raw tables' contract columns. Not even SELECT:
--                      `INSERT ... ON CONFLICT DO NOTHING` needs no read access. One exception:
--                      the SFTP puller reads raw_et_stats_files (file_name, source), the names
--                      it has already stored, so that a restart resumes instead of downloading
--                      every file again; the files' contents stay unreadable. And the poller
--                      reads game_servers, the servers an admin listed for it.
--   guildstats_reader  BI tools (Superset, Metabase, Grafana) and analysts: read everything,
--                      the BI views of schema guildstats_mart included, of the guilds
--                      guildstats.reader_guilds binds the login to (NULL: every guild); an
--                      unbound login sees no guild's rows (row-level security).
--   guildstats_admin   operators: read and write every guildstats table, run the builders,
--                      change settings.
--   guildstats_commands the Discord bot's slash commands (a second login, not the ingest one):
--                      the reader role plus EXECUTE on the command_* functions, of which only
--                      command_link writes (SECURITY DEFINER, it checks its input itself). Bind
--                      the login to its guilds in reader_guilds like any reader.
-- Example:
--   CREATE ROLE discord_bot LOGIN PASSWORD '...' IN ROLE guildstats_ingest;
--   CREATE ROLE superset LOGIN PASSWORD '...' IN ROLE guildstats_reader;
--   CREATE ROLE discord_commands LOGIN PASSWORD '...' IN ROLE guildstats_commands;
--   INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('discord_commands', 1234);
--   INSERT INTO guildstats.reader_guilds (role_name, guild_id) VALUES ('superset', NULL);

DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['guildstats_ingest', 'guildstats_reader', 'guildstats_admin', 'guildstats_commands'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;
END
$roles$;

COMMENT ON ROLE guildstats_ingest IS 'guildstats ingesters: INSERT into the contract columns of guildstats.raw_* only (and the names of the stored ET stats files, for the SFTP puller).';
COMMENT ON ROLE guildstats_reader IS 'guildstats readers (BI tools, analysts): SELECT on everything in schemas guildstats and guildstats_mart (the BI views), limited by row-level security to the guilds guildstats.reader_guilds binds the login to.';
COMMENT ON ROLE guildstats_commands IS 'guildstats Discord slash commands: guildstats_reader plus EXECUTE on the command_* functions (command_link is the only write, through itself).';
COMMENT ON ROLE guildstats_admin IS 'guildstats operators: all guildstats tables, builders and settings.';

-- Functions are executable by PUBLIC by default. The builders change tables and must stay
-- with the admin; the ingest role gets no function at all.
REVOKE ALL ON SCHEMA guildstats FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA guildstats FROM PUBLIC;

-- Ingest: the raw tables, INSERT only, and only into the contract columns. The columns the
-- database assigns (ingest_id, received_at, the ET import's imported_at, import_error and
-- import_warning, and generated ones) stay out of reach: an ingest_id ahead of the sequence would later make an
-- honest insert collide and be dropped, and imported_at set by a client would keep a file from
-- ever being imported. Table-level INSERT is revoked first (which also revokes the column
-- grants), so that an earlier run's grants never outlive a column's change of status.
GRANT USAGE ON SCHEMA guildstats TO guildstats_ingest;
DO $ingest$
DECLARE
    raw_table regclass;
    contract text;
BEGIN
    FOR raw_table, contract IN
        SELECT c.oid::regclass, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                           AND a.attgenerated = ''
                           AND a.attname NOT IN ('ingest_id', 'received_at', 'imported_at', 'import_error', 'import_warning')
        WHERE n.nspname = 'guildstats' AND c.relkind IN ('r', 'p') AND c.relname LIKE 'raw\_%'
        GROUP BY c.oid
    LOOP
        EXECUTE format('REVOKE INSERT ON %s FROM guildstats_ingest', raw_table);
        EXECUTE format('GRANT INSERT (%s) ON %s TO guildstats_ingest', contract, raw_table);
    END LOOP;
END
$ingest$;
-- Column-level, so the puller learns which files it has without reading any of their contents.
GRANT SELECT (file_name, source) ON guildstats.raw_et_stats_files TO guildstats_ingest;
-- The game-server poller reads the servers an admin listed in the database.
GRANT SELECT ON guildstats.game_servers TO guildstats_ingest;
-- The Discord bot reads the opt-out list, so that opted-out members are not even sent (the
-- database drops their rows anyway). Reading it goes through the per-guild isolation policy,
-- whose subquery reads reader_guilds (an ingester sees no binding of its own there).
GRANT SELECT ON guildstats.opt_out, guildstats.reader_guilds TO guildstats_ingest;

-- Reader: every table and view, and the functions (read-only ones work; builders fail for
-- lack of write rights, with a permission error that says so).
GRANT USAGE ON SCHEMA guildstats TO guildstats_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA guildstats TO guildstats_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA guildstats TO guildstats_reader;
-- The BI mart: what dashboards read. Only the reader (and so the admin) sees it.
REVOKE ALL ON SCHEMA guildstats_mart FROM PUBLIC;
GRANT USAGE ON SCHEMA guildstats_mart TO guildstats_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA guildstats_mart TO guildstats_reader;

-- Admin: everything in the schema.
GRANT USAGE ON SCHEMA guildstats TO guildstats_admin;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA guildstats TO guildstats_admin;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA guildstats TO guildstats_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA guildstats TO guildstats_admin;
GRANT guildstats_reader TO guildstats_admin;

-- Commands: the reader plus the command functions. command_link writes links: a plain reader
-- (a BI tool) has no business calling it, so only the command role and the admin may.
GRANT guildstats_reader TO guildstats_commands;
REVOKE EXECUTE ON FUNCTION guildstats.command_link(bigint, bigint, text, bigint) FROM guildstats_reader;
DO $commands$
DECLARE
    command regprocedure;
BEGIN
    FOR command IN
        SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'guildstats' AND p.proname LIKE 'command\_%'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO guildstats_commands', command);
    END LOOP;
END
$commands$;
