-- The full voice rebuild's fast path (issue 13, item 8): the sessions of a whole guild come
-- as column arrays, and a rebuild by the table's owner builds voice_sessions' indexes after
-- its rows. Both must leave exactly what the row-by-row path leaves.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SELECT count(*) AS builders FROM guildstats.build_all();

-- Guild 601: moves, an AFK stint, an open session and a user who only ever left.
INSERT INTO guildstats.settings (guild_id, afk_channel_id) VALUES (601, 69);
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf) VALUES
    (601, 1, 61, '2026-04-01 20:00', false, false),
    (601, 1, 62, '2026-04-01 20:30', true,  false),
    (601, 1, NULL, '2026-04-01 21:00', false, false),
    (601, 2, 61, '2026-04-01 20:10', false, false),
    (601, 2, 69, '2026-04-01 20:50', false, false),
    (601, 2, NULL, '2026-04-01 22:00', false, false),
    (601, 3, 62, '2026-04-01 21:30', false, true),
    (601, 4, NULL, '2026-04-01 20:05', false, false);
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', 601, t FROM generate_series(timestamptz '2026-04-01 19:55', '2026-04-01 22:30', '1 minute') t;
SELECT guilds_built, users_rebuilt, sessions_opened FROM guildstats.build_voice_sessions();

-- The arrays hold, element by element, the rows _voice_sessionize returns, and the number of
-- distinct users among them.
SELECT g.guild_id,
       (SELECT count(*) FROM (
            (SELECT * FROM guildstats._voice_sessionize(g.guild_id, g.horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                        s.session_cap, s.outage_after)
             EXCEPT ALL
             SELECT unnest((a.x).user_id), unnest((a.x).channel_id), unnest((a.x).started_at), unnest((a.x).ended_at),
                    unnest((a.x).start_reason), unnest((a.x).end_reason), unnest((a.x).is_afk), unnest((a.x).capped),
                    unnest((a.x).self_mute_seconds), unnest((a.x).self_deaf_seconds)
               FROM (SELECT guildstats._voice_sessionize_arrays(g.guild_id, g.horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                                s.session_cap, s.outage_after) AS x) a)
            UNION ALL
            (SELECT unnest((a.x).user_id), unnest((a.x).channel_id), unnest((a.x).started_at), unnest((a.x).ended_at),
                    unnest((a.x).start_reason), unnest((a.x).end_reason), unnest((a.x).is_afk), unnest((a.x).capped),
                    unnest((a.x).self_mute_seconds), unnest((a.x).self_deaf_seconds)
               FROM (SELECT guildstats._voice_sessionize_arrays(g.guild_id, g.horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                                s.session_cap, s.outage_after) AS x) a
             EXCEPT ALL
             SELECT * FROM guildstats._voice_sessionize(g.guild_id, g.horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                        s.session_cap, s.outage_after))) d) AS differences,
       (SELECT (x).users FROM (SELECT guildstats._voice_sessionize_arrays(g.guild_id, g.horizon, s.afk_channel_id,
                                     s.ignored_channel_ids, s.session_cap, s.outage_after) AS x) a)
         = (SELECT count(DISTINCT user_id) FROM guildstats.voice_sessions v WHERE v.guild_id = g.guild_id) AS users_agree
FROM guildstats.voice_build_guilds g
CROSS JOIN LATERAL guildstats.settings_for(g.guild_id) s
WHERE g.guild_id = 601;
SELECT (x).users, cardinality((x).user_id) AS sessions
FROM (SELECT guildstats._voice_sessionize_arrays(601, '2026-04-01 22:30', 69, NULL, '12 hours', '5 minutes') AS x) a;

CREATE TEMP TABLE built AS SELECT * FROM guildstats.voice_sessions;
CREATE TEMP TABLE indexes_before AS
SELECT c.relname, c.oid AS index_oid, pg_get_indexdef(i.indexrelid) AS definition,
       (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conindid = i.indexrelid) AS constraint_definition
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'guildstats.voice_sessions'::regclass;
SELECT relname, definition, constraint_definition FROM indexes_before ORDER BY relname;

-- Every session and every index definition comes back after a full rebuild, and the result
-- still equals what the incremental builds made.
CREATE FUNCTION pg_temp.compare(label text) RETURNS TABLE (rebuilt_by text, differences bigint, same_indexes boolean, indexes_rebuilt boolean)
LANGUAGE sql AS $$
    SELECT label,
           (SELECT count(*) FROM ((SELECT * FROM built EXCEPT ALL SELECT * FROM guildstats.voice_sessions)
                                  UNION ALL (SELECT * FROM guildstats.voice_sessions EXCEPT ALL SELECT * FROM built)) d),
           NOT EXISTS ((SELECT relname, definition, constraint_definition FROM indexes_before
                        EXCEPT SELECT c.relname, pg_get_indexdef(i.indexrelid),
                                      (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conindid = i.indexrelid)
                                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                WHERE i.indrelid = 'guildstats.voice_sessions'::regclass)
                       UNION ALL
                       (SELECT c.relname, pg_get_indexdef(i.indexrelid),
                               (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conindid = i.indexrelid)
                          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                         WHERE i.indrelid = 'guildstats.voice_sessions'::regclass
                        EXCEPT SELECT relname, definition, constraint_definition FROM indexes_before)),
           -- The owner's rebuild builds the indexes anew (new relations); anybody else's
           -- writes through the existing ones.
           NOT EXISTS (SELECT 1 FROM indexes_before b
                        JOIN pg_index i ON i.indexrelid = b.index_oid
                       WHERE i.indrelid = 'guildstats.voice_sessions'::regclass)
$$;

-- The owner (here a superuser): the indexes are built after the rows.
SELECT status FROM guildstats.rebuild_voice_sessions();
SELECT * FROM pg_temp.compare('owner');
-- The primary key is enforced again.
INSERT INTO guildstats.voice_sessions SELECT * FROM built WHERE guild_id = 601 LIMIT 1;
-- And the next incremental build finds its indexes.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
VALUES (601, 3, NULL, '2026-04-01 22:20', false, true);
SELECT users_rebuilt, sessions_closed, status FROM guildstats.build_voice_sessions();
DELETE FROM built WHERE guild_id = 601 AND user_id = 3;
INSERT INTO built SELECT * FROM guildstats.voice_sessions WHERE guild_id = 601 AND user_id = 3;

-- An operator who does not own the table: the rows go in through the indexes, same result.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'guildstats_admin') THEN CREATE ROLE guildstats_admin NOLOGIN; END IF;
END $$;
CREATE ROLE voice_rebuild_operator LOGIN IN ROLE guildstats_admin;
GRANT USAGE ON SCHEMA guildstats TO voice_rebuild_operator;
GRANT ALL ON ALL TABLES IN SCHEMA guildstats TO voice_rebuild_operator;
GRANT ALL ON ALL SEQUENCES IN SCHEMA guildstats TO voice_rebuild_operator;
DELETE FROM indexes_before;
INSERT INTO indexes_before
SELECT c.relname, c.oid, pg_get_indexdef(i.indexrelid),
       (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conindid = i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'guildstats.voice_sessions'::regclass;
SET ROLE voice_rebuild_operator;
SELECT status FROM guildstats.rebuild_voice_sessions();
RESET ROLE;
SELECT * FROM pg_temp.compare('operator');

-- A rebuild rolled back leaves the indexes as they were.
BEGIN;
SELECT status FROM guildstats.rebuild_voice_sessions();
SELECT count(*) AS indexes_inside FROM pg_index WHERE indrelid = 'guildstats.voice_sessions'::regclass;
ROLLBACK;
SELECT * FROM pg_temp.compare('rolled back');

-- Which write each of those rebuilds took. The owner's and the operator's steps differ:
-- row-level security (guild_isolation) applies to the operator, whose rows therefore go in by
-- INSERT, through the policy; the Rust step's bulk write (COPY) refuses such a caller, and
-- for anybody else writes the very rows the incremental builds made.
BEGIN;
DELETE FROM guildstats.voice_sessions WHERE guild_id = 601;
SELECT * FROM guildstats._voice_write_guild_sessions(601, '2026-04-01 22:30', 69, NULL, '12 hours', '5 minutes');
SELECT count(*) AS differences
  FROM ((SELECT * FROM built WHERE guild_id = 601 EXCEPT ALL SELECT * FROM guildstats.voice_sessions WHERE guild_id = 601)
        UNION ALL
        (SELECT * FROM guildstats.voice_sessions WHERE guild_id = 601 EXCEPT ALL SELECT * FROM built WHERE guild_id = 601)) d;
ROLLBACK;
-- The bulk write of guild 601, or the error that refused it.
CREATE FUNCTION pg_temp.bulk_write_601() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM guildstats._voice_write_guild_sessions(601, '2026-04-01 22:30', 69, NULL, '12 hours', '5 minutes');
    RETURN 'written';
EXCEPTION WHEN insufficient_privilege THEN
    RETURN SQLERRM;
END $$;
SET ROLE voice_rebuild_operator;
SELECT pg_catalog.row_security_active('guildstats.voice_sessions') AS operator_under_policy;
SELECT pg_temp.bulk_write_601() AS operator_write;
RESET ROLE;

-- A non-owner past the policies (BYPASSRLS) writes by COPY through the existing indexes: the
-- same rows again.
CREATE ROLE voice_copy_operator LOGIN BYPASSRLS IN ROLE guildstats_admin;
GRANT USAGE ON SCHEMA guildstats TO voice_copy_operator;
GRANT ALL ON ALL TABLES IN SCHEMA guildstats TO voice_copy_operator;
GRANT ALL ON ALL SEQUENCES IN SCHEMA guildstats TO voice_copy_operator;
SET ROLE voice_copy_operator;
SELECT pg_catalog.row_security_active('guildstats.voice_sessions') AS copy_operator_under_policy;
SELECT status FROM guildstats.rebuild_voice_sessions();
RESET ROLE;
SELECT * FROM pg_temp.compare('bypassrls operator');

-- COPY checks no privileges itself: without INSERT on voice_sessions, the bulk write fails as
-- an INSERT would, and writes nothing.
REVOKE INSERT ON guildstats.voice_sessions FROM voice_copy_operator;
SET ROLE voice_copy_operator;
BEGIN;
DELETE FROM guildstats.voice_sessions WHERE guild_id = 601;
SELECT pg_temp.bulk_write_601() AS write_without_insert;
SELECT count(*) AS sessions_of_601 FROM guildstats.voice_sessions WHERE guild_id = 601;
ROLLBACK;
RESET ROLE;

-- A row the table refuses (here a CHECK added NOT VALID, which holds for new rows only) stops
-- the rebuild with the table's own error, whichever write it takes, and the rollback leaves
-- every session and index as it was.
ALTER TABLE guildstats.voice_sessions ADD CONSTRAINT voice_sessions_test_no_user_3 CHECK (user_id <> 3) NOT VALID;
CREATE FUNCTION pg_temp.refused_rebuild() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM guildstats.rebuild_voice_sessions();
    RETURN 'written';
EXCEPTION WHEN check_violation THEN
    RETURN SQLERRM;
END $$;
SELECT pg_temp.refused_rebuild() AS owner_rebuild;
SET ROLE voice_rebuild_operator;
SELECT pg_temp.refused_rebuild() AS operator_rebuild;
RESET ROLE;
SELECT * FROM pg_temp.compare('refused');
ALTER TABLE guildstats.voice_sessions DROP CONSTRAINT voice_sessions_test_no_user_3;
REVOKE ALL ON ALL TABLES IN SCHEMA guildstats FROM voice_copy_operator;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA guildstats FROM voice_copy_operator;
REVOKE USAGE ON SCHEMA guildstats FROM voice_copy_operator;
DROP ROLE voice_copy_operator;

REVOKE ALL ON ALL TABLES IN SCHEMA guildstats FROM voice_rebuild_operator;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA guildstats FROM voice_rebuild_operator;
REVOKE USAGE ON SCHEMA guildstats FROM voice_rebuild_operator;
DROP ROLE voice_rebuild_operator;
