-- A full voice rebuild over several guilds (issue 13, item 8): the plan drops voice_sessions'
-- indexes once, every guild's step writes without them, and the builder's finish builds them
-- after the last guild. The result must equal what incremental builds made, guild by guild,
-- and the indexes must come back with their names and definitions.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SELECT count(*) AS builders FROM guildstats.build_all();

-- Three guilds: moves and an AFK stint (701), an open session (702), an outage that ends a
-- session without an event (703).
INSERT INTO guildstats.settings (guild_id, afk_channel_id) VALUES (701, 79);
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf) VALUES
    (701, 1, 71, '2026-05-01 20:00', false, false),
    (701, 1, 72, '2026-05-01 20:30', true,  false),
    (701, 2, 79, '2026-05-01 20:10', false, false),
    (702, 1, 81, '2026-05-01 20:00', false, true),
    (703, 5, 91, '2026-05-01 20:00', false, false);
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', g, t FROM unnest(ARRAY[701, 702]) g,
       generate_series(timestamptz '2026-05-01 19:55', '2026-05-01 21:00', '1 minute') t;
-- 703's bot is silent from 20:20 to 20:50: an outage.
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', 703, t FROM generate_series(timestamptz '2026-05-01 19:55', '2026-05-01 21:00', '1 minute') t
WHERE t <= '2026-05-01 20:20' OR t >= '2026-05-01 20:50';
SELECT guilds_built, sessions_opened FROM guildstats.build_voice_sessions();
-- More rows arrive; the incremental build rewrites what they touch.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf) VALUES
    (701, 1, NULL, '2026-05-01 21:10', false, false),
    (701, 2, NULL, '2026-05-01 21:05', false, false),
    (702, 2, 82, '2026-05-01 20:40', false, false),
    (703, 6, 91, '2026-05-01 20:55', false, false);
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', g, t FROM unnest(ARRAY[701, 702, 703]) g,
       generate_series(timestamptz '2026-05-01 21:01', '2026-05-01 21:30', '1 minute') t;
SELECT guilds_built, sessions_opened, sessions_closed FROM guildstats.build_voice_sessions();

CREATE TEMP TABLE incremental AS SELECT * FROM guildstats.voice_sessions;
SELECT guild_id, count(*) AS sessions, count(*) FILTER (WHERE ended_at IS NULL) AS open,
       count(*) FILTER (WHERE end_reason = 'outage') AS outages, count(*) FILTER (WHERE is_afk) AS afk
FROM incremental WHERE guild_id IN (701, 702, 703) GROUP BY guild_id ORDER BY guild_id;
CREATE TEMP TABLE indexes_before AS
SELECT c.relname, c.oid AS index_oid, pg_get_indexdef(i.indexrelid) AS definition,
       (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conindid = i.indexrelid) AS constraint_definition
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'guildstats.voice_sessions'::regclass;
CREATE FUNCTION pg_temp.indexes_now() RETURNS TABLE (relname name, definition text, constraint_definition text)
LANGUAGE sql AS $$
    SELECT c.relname, pg_get_indexdef(i.indexrelid),
           (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'guildstats.voice_sessions'::regclass
$$;

-- Inside a full rebuild by the owner: no index from the plan until the finish, whatever the
-- number of guilds (before, the first guild's step built them again and the next guilds
-- wrote through them).
BEGIN;
SELECT guildstats._build_voice_sessions_plan('{}', true) AS plan \gset
SELECT count(*) AS indexes_after_plan FROM pg_index WHERE indrelid = 'guildstats.voice_sessions'::regclass;
SELECT g AS guild, guildstats._build_voice_sessions_step(g, '{}', true)->>'sessions_opened' AS sessions_opened,
       (SELECT count(*) FROM pg_index WHERE indrelid = 'guildstats.voice_sessions'::regclass) AS indexes_after_step
FROM unnest(ARRAY[701, 702, 703]::bigint[]) g;
SELECT guildstats._build_voice_sessions_finish('{}', true, :'plan') AS finish;
SELECT relname, definition, constraint_definition FROM pg_temp.indexes_now() ORDER BY relname;
ROLLBACK;

-- The public rebuild: the same rows as the incremental builds, the same indexes (new ones).
-- Its steps count the events they read (the plan no longer counts the claimed ones): every
-- raw event of every guild (earlier suites' too), counted here another way.
SELECT status, events_read = (SELECT count(*) FROM guildstats.raw_voice_events) AS every_event_counted,
       guilds_built = (SELECT count(*) FROM (SELECT e.guild_id FROM guildstats.raw_voice_events e
                                             UNION SELECT x.guild_id FROM guildstats.raw_voice_snapshots x
                                             UNION SELECT b.guild_id FROM guildstats.raw_heartbeats b
                                                    WHERE b.source = 'discord' AND b.guild_id IS NOT NULL) g) AS every_guild_built
FROM guildstats.rebuild_voice_sessions();
SELECT count(*) AS differences
FROM ((SELECT * FROM incremental EXCEPT ALL SELECT * FROM guildstats.voice_sessions)
      UNION ALL (SELECT * FROM guildstats.voice_sessions EXCEPT ALL SELECT * FROM incremental)) d;
SELECT count(*) AS index_differences
FROM ((SELECT relname, definition, constraint_definition FROM indexes_before EXCEPT SELECT * FROM pg_temp.indexes_now())
      UNION ALL (SELECT * FROM pg_temp.indexes_now() EXCEPT SELECT relname, definition, constraint_definition FROM indexes_before)) d;
SELECT NOT EXISTS (SELECT 1 FROM indexes_before b JOIN pg_index i ON i.indexrelid = b.index_oid) AS indexes_rebuilt;
-- The primary key is enforced again, and the next incremental build uses the indexes.
INSERT INTO guildstats.voice_sessions SELECT * FROM incremental WHERE guild_id = 702 LIMIT 1;
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
VALUES (702, 1, NULL, '2026-05-01 21:20', false, false);
SELECT users_rebuilt, sessions_closed, status FROM guildstats.build_voice_sessions();

-- The finish runs only what the plan can have written.
SELECT guildstats._build_voice_sessions_finish('{}', true, '{"indexes_to_create": ["DROP TABLE guildstats.voice_sessions"]}');
-- A builder's finish must have the finish's signature.
UPDATE guildstats.builders SET finish = 'guildstats._build_voice_sessions_plan(jsonb, boolean)' WHERE name = 'build_voice_sessions';
