-- erase_member(), export_member() and opt_out: a member of guild 1 (user 4242424242) is exported,
-- then forgotten everywhere; the other member of guild 1 (user 43) and the same user id in guild 2
-- are untouched. Then a second member (4343434343) opts out, and their later rows are never
-- stored or built. Hand-built rows, then every builder.
-- All in one transaction, rolled back at the end: the suites share one database.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
BEGIN;
SET LOCAL client_min_messages = warning;

INSERT INTO guildstats.raw_guilds (guild_id, observed_at, name, afk_channel_id)
VALUES (1, '2026-03-01 18:00+00', 'One', 999), (2, '2026-03-01 18:00+00', 'Two', 999);
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', g, t
  FROM generate_series(1, 2) g,
       generate_series(timestamptz '2026-03-01 18:00+00', '2026-03-01 23:00+00', interval '1 minute') t;
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (1, 4242424242, 100, '2026-03-01 20:00+00'), (1, 4242424242, NULL, '2026-03-01 21:00+00'),
    (1, 43, 100, '2026-03-01 20:10+00'), (1, 43, NULL, '2026-03-01 20:40+00'),
    (2, 4242424242, 200, '2026-03-01 20:00+00'), (2, 4242424242, NULL, '2026-03-01 20:30+00');
-- Snapshots in every spelling the column comment allows, and some it does not: a string with a
-- leading zero, a number, an entry without a readable user_id, a document that is not an array.
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES
    (1, '2026-03-01 20:20+00', '[{"user_id": "04242424242", "channel_id": "100"}, {"user_id": "43", "channel_id": "100"}]'),
    (1, '2026-03-01 21:30+00', '[{"user_id": 4242424242, "channel_id": 100, "self_mute": true}]'),
    (1, '2026-03-01 21:40+00', '[{"user": {"id": "4242424242"}, "channel_id": 100}, {"user_id": 43, "channel_id": 100}]'),
    (1, '2026-03-01 21:50+00', '{"user_id": "4242424242", "channel_id": 100}'),
    (2, '2026-03-01 20:20+00', '[{"user_id": "4242424242", "channel_id": "200"}]');
-- Stored canonically: ids as numbers, unreadable entries and non-arrays as they came.
SELECT guild_id, taken_at, voice_states FROM guildstats.raw_voice_snapshots ORDER BY guild_id, taken_at;
-- A row stored before 0.2.0, which had no canonical form (the trigger is bypassed to make it).
ALTER TABLE guildstats.raw_voice_snapshots DISABLE TRIGGER raw_voice_snapshots_canonical;
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES
    (1, '2026-03-01 22:10+00', '[{"user_id": "0004242424242", "channel_id": "100"}]');
ALTER TABLE guildstats.raw_voice_snapshots ENABLE TRIGGER raw_voice_snapshots_canonical;
-- A snapshot from a clock far ahead is set aside in quarantine; it names the member and 43.
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES
    (1, now() + interval '400 days', '[{"user_id": "04242424242", "channel_id": "100"}, {"user_id": "43", "channel_id": "100"}]');
SELECT source_table, guild_id, user_id FROM guildstats.quarantine;
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at, char_count) VALUES
    (1, 100, 4242424242, 1, '2026-03-01 20:05+00', 10), (1, 100, 43, 2, '2026-03-01 20:06+00', 12),
    (2, 200, 4242424242, 3, '2026-03-01 20:07+00', 14);
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts, display_name) VALUES
    (1, 4242424242, 'join', '2026-02-01 12:00+00', 'Erased Person'), (1, 43, 'join', '2026-02-02 12:00+00', 'Kept'),
    (2, 4242424242, 'join', '2026-02-03 12:00+00', 'Same Person Elsewhere');
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key) VALUES
    (1, 4242424242, 25, 'daily', '2026-03-01 20:00+00', 'a'), (1, 43, 5, 'daily', '2026-03-01 20:00+00', 'b'),
    (2, 4242424242, 7, 'daily', '2026-03-01 20:00+00', 'c');
INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, name, channel_id, status, creator_id, scheduled_start)
VALUES (1, 5000, '2026-03-01 19:00+00', 'Game night', 100, 'scheduled', 4242424242, '2026-03-01 20:00+00'),
       (1, 5000, '2026-03-01 20:00+00', 'Game night', 100, 'active', 4242424242, '2026-03-01 20:00+00'),
       (2, 6000, '2026-03-01 19:00+00', 'Other night', 200, 'scheduled', 4242424242, '2026-03-01 20:00+00');
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at) VALUES
    (1, 5000, 4242424242, 'add', '2026-03-01 19:30+00'), (1, 5000, 43, 'add', '2026-03-01 19:31+00'),
    (2, 6000, 4242424242, 'add', '2026-03-01 19:32+00');
INSERT INTO guildstats.et_guid_links (guid, guild_id, user_id) VALUES
    ('AAAA0000AAAA0000AAAA0000AAAA0000', 1, 4242424242), ('BBBB0000BBBB0000BBBB0000BBBB0000', 2, 4242424242);
SELECT count(*) AS builders_ok FROM guildstats.build_all() WHERE status = 'ok';

-- Every build, from scratch.
CREATE FUNCTION pg_temp.rebuild_everything() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM guildstats.rebuild_voice_sessions();
    PERFORM guildstats.build_members(true);
    PERFORM guildstats.build_event_attendance(true);
    PERFORM guildstats.build_rollups(true);
    PERFORM guildstats.import_et_rounds();
    PERFORM guildstats.build_all();
END $$;
SELECT pg_temp.rebuild_everything();

-- The full search: every row of every table in every guildstats schema (found by catalog) that
-- holds the id in a bigint column, a bigint array, a text column (as a number of its own) or
-- anywhere in a JSON document (number or string of digits), restricted to the guild in tables
-- that have a guild_id (the same user id in another guild is another membership).
CREATE FUNCTION pg_temp.find_id(guild bigint, id bigint)
RETURNS TABLE (table_name text, found jsonb) LANGUAGE plpgsql AS $$
DECLARE rel record; cond text;
BEGIN
    FOR rel IN SELECT c.oid, format('%I.%I', s.nspname, c.relname) AS qualified, c.relname::text AS name
                 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                WHERE s.nspname LIKE 'guildstats%' AND c.relkind IN ('r', 'p', 'm') ORDER BY 2
    LOOP
        SELECT string_agg(CASE
                   WHEN a.atttypid = 'bigint'::regtype THEN format('t.%I = $2', a.attname)
                   WHEN a.atttypid = 'bigint[]'::regtype THEN format('$2 = ANY (t.%I)', a.attname)
                   WHEN a.atttypid IN ('text'::regtype, 'varchar'::regtype)
                       THEN format('t.%I ~ (''(^|[^0-9])0*'' || $2 || ''([^0-9]|$)'')', a.attname)
                   WHEN a.atttypid IN ('jsonb'::regtype, 'json'::regtype)
                       THEN format('guildstats._mentions_id(t.%I::jsonb, $2)', a.attname) END, ' OR ')
          INTO cond
          FROM pg_attribute a
         WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
           AND a.atttypid IN ('bigint'::regtype, 'bigint[]'::regtype, 'text'::regtype, 'varchar'::regtype,
                              'jsonb'::regtype, 'json'::regtype)
           AND a.attname <> 'guild_id';
        CONTINUE WHEN cond IS NULL;
        IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel.oid AND a.attname = 'guild_id') THEN
            cond := format('(%s) AND t.guild_id = $1', cond);
        END IF;
        RETURN QUERY EXECUTE format('SELECT %L, to_jsonb(t) FROM %s t WHERE %s', rel.name, rel.qualified, cond)
            USING guild, id;
    END LOOP;
END $$;

-- Before: the search finds the member in many tables ...
SELECT table_name, count(*) AS rows_found FROM pg_temp.find_id(1, 4242424242) GROUP BY 1 ORDER BY 1;
-- ... and the export holds every row it finds (a snapshot by its own entry: the others in it
-- are not the member's to see).
CREATE TEMP TABLE export AS SELECT guildstats.export_member(guild_id => 1, user_id => 4242424242) AS doc;
SELECT f.table_name, f.found AS missing_from_export
  FROM pg_temp.find_id(1, 4242424242) f, export e
 WHERE NOT coalesce(e.doc -> 'tables' -> f.table_name @> CASE f.table_name
           WHEN 'raw_voice_snapshots' THEN jsonb_build_array(jsonb_build_object('ingest_id', f.found -> 'ingest_id'))
           WHEN 'quarantine' THEN jsonb_build_array(jsonb_build_object('quarantine_id', f.found -> 'quarantine_id'))
           ELSE jsonb_build_array(f.found) END, false);
SELECT key AS export_table, jsonb_array_length(value) AS export_rows
  FROM export, jsonb_each(doc -> 'tables') WHERE jsonb_array_length(value) > 0 ORDER BY 1;
-- The snapshot entries the export gives, and nobody else's.
SELECT s ->> 'taken_at' AS taken_at, s -> 'voice_state' AS voice_state
  FROM export, jsonb_array_elements(doc -> 'tables' -> 'raw_voice_snapshots') s ORDER BY 1;
-- The quarantined snapshot by the member's own entry too.
SELECT q -> 'row_data' -> 'voice_states' AS quarantined_voice_states
  FROM export, jsonb_array_elements(doc -> 'tables' -> 'quarantine') q;
SELECT doc -> 'guild_id' AS guild_id, doc -> 'user_id' AS user_id FROM export;

-- Rows per (table, guild, user) in every table that names a member, before and after.
CREATE TEMP TABLE member_rows (stage text, table_name text, guild_id bigint, user_id bigint, n bigint);
CREATE FUNCTION pg_temp.count_member_rows(stage text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
              WHERE s.nspname = 'guildstats' AND c.relkind = 'r'
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id')
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id')
    LOOP
        EXECUTE format('INSERT INTO member_rows SELECT %L, %L, guild_id, user_id, count(*)
                          FROM guildstats.%I GROUP BY guild_id, user_id', stage, t, t);
    END LOOP;
END $$;
SELECT pg_temp.count_member_rows('before');
CREATE TEMP TABLE other_snapshots AS
SELECT ingest_id, voice_states FROM guildstats.raw_voice_snapshots WHERE guild_id <> 1;

SELECT table_name, rows_changed FROM guildstats.erase_member(guild_id => 1, user_id => 4242424242)
 WHERE rows_changed > 0 ORDER BY table_name;
-- Everything rebuilt from scratch after the erasure, then searched again: nothing is left.
SELECT pg_temp.rebuild_everything();
SELECT table_name, found FROM pg_temp.find_id(1, 4242424242);
SELECT count(*) AS sessions_in_guild_1 FROM guildstats.voice_sessions WHERE guild_id = 1 AND user_id = 4242424242;
SELECT pg_temp.count_member_rows('after');

-- Every other (guild, user) has exactly the rows it had:
SELECT b.table_name, b.guild_id, b.user_id, b.n AS before, a.n AS after
  FROM member_rows b
  LEFT JOIN member_rows a ON a.stage = 'after' AND (a.table_name, a.guild_id, a.user_id) = (b.table_name, b.guild_id, b.user_id)
 WHERE b.stage = 'before' AND NOT (b.guild_id = 1 AND b.user_id = 4242424242) AND a.n IS DISTINCT FROM b.n;
SELECT count(DISTINCT table_name) >= 10 AS tables_checked FROM member_rows WHERE stage = 'before';

-- The snapshots keep the other member; the document that was not an array is blanked; guild
-- 2's snapshot is untouched. The event stays, without its creator.
SELECT guild_id, taken_at, voice_states FROM guildstats.raw_voice_snapshots ORDER BY guild_id, taken_at;
SELECT count(*) AS other_guild_snapshots_changed
  FROM other_snapshots o JOIN guildstats.raw_voice_snapshots s USING (ingest_id)
 WHERE s.voice_states IS DISTINCT FROM o.voice_states;
SELECT guild_id, event_id, observed_at, creator_id FROM guildstats.raw_scheduled_events ORDER BY guild_id, observed_at;

-- The erasure can be repeated; both arguments are required, for the export too.
SELECT sum(rows_changed) AS changed_again FROM guildstats.erase_member(1, 4242424242);
SELECT count(*) AS rows_exported_after_erasure
  FROM jsonb_each(guildstats.export_member(1, 4242424242) -> 'tables') t, jsonb_array_elements(t.value);
SAVEPOINT before_error;
SELECT * FROM guildstats.erase_member(NULL, 4242424242);
ROLLBACK TO before_error;
SELECT guildstats.export_member(1, NULL);
ROLLBACK TO before_error;

-- Opt-out. Member 4343434343 of guild 1 has rows, built; then opts out.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (1, 4343434343, 100, '2026-03-01 20:00+00'), (1, 4343434343, NULL, '2026-03-01 20:45+00');
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
    (1, 100, 4343434343, 10, '2026-03-01 20:05+00');
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts) VALUES
    (1, 4343434343, 'join', '2026-02-01 12:00+00');
SELECT count(*) AS builders_ok FROM guildstats.build_all() WHERE status = 'ok';
SELECT count(*) > 3 AS found_before_opt_out FROM pg_temp.find_id(1, 4343434343);
INSERT INTO guildstats.opt_out (guild_id, user_id, since) VALUES (1, 4343434343, '2026-03-02 00:00+00');
-- The opt-out erased them: only the list's own row names them.
SELECT table_name, found FROM pg_temp.find_id(1, 4343434343);
SELECT guildstats.is_opted_out(guild_id => 1, user_id => 4343434343) AS opted_out_in_1,
       guildstats.is_opted_out(guild_id => 2, user_id => 4343434343) AS opted_out_in_2;

-- An ingester with a stale list goes on sending their rows, in every table and spelling, next to
-- rows of member 43 and of the same user id in guild 2.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (1, 4343434343, 100, '2026-03-03 20:00+00'), (1, 4343434343, NULL, '2026-03-03 21:00+00'),
    (1, 43, 100, '2026-03-03 20:00+00'), (1, 43, NULL, '2026-03-03 20:30+00'),
    (2, 4343434343, 200, '2026-03-03 20:00+00'), (2, 4343434343, NULL, '2026-03-03 20:30+00');
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES
    (1, '2026-03-03 20:10+00', '[{"user_id": "04343434343", "channel_id": "100"}, {"user_id": "43", "channel_id": "100"}, {"member": 4343434343}]');
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
    (1, 100, 4343434343, 11, '2026-03-03 20:05+00'), (1, 100, 43, 12, '2026-03-03 20:06+00');
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts) VALUES
    (1, 4343434343, 'update', '2026-03-03 12:00+00');
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key) VALUES
    (1, 4343434343, 3, '2026-03-03 20:00+00', 'o1');
INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, name, channel_id, status, creator_id)
VALUES (1, 7000, '2026-03-03 19:00+00', 'Later night', 100, 'scheduled', 4343434343);
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at) VALUES
    (1, 7000, 4343434343, 'add', '2026-03-03 19:30+00') ON CONFLICT DO NOTHING;
INSERT INTO guildstats.et_guid_links (guid, guild_id, user_id) VALUES ('CCCC0000CCCC0000CCCC0000CCCC0000', 1, 4343434343);
SELECT pg_temp.rebuild_everything();
-- None of it was stored or built; member 43 and guild 2 were.
SELECT table_name, found FROM pg_temp.find_id(1, 4343434343) WHERE table_name <> 'opt_out';
SELECT voice_states FROM guildstats.raw_voice_snapshots WHERE taken_at = '2026-03-03 20:10+00';
SELECT guild_id, user_id, count(*) AS sessions FROM guildstats.voice_sessions
 WHERE started_at >= '2026-03-03' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT event_id, creator_id FROM guildstats.raw_scheduled_events WHERE event_id = 7000;

-- Every raw table that names a member (found by catalog) drops an opted-out member's rows.
SELECT c.relname AS member_table_without_opt_out_trigger
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname = 'guildstats' AND c.relkind = 'r' AND c.relname LIKE 'raw\_%'
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id')
   AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid
                    AND t.tgfoid = 'guildstats._drop_opted_out_row()'::regprocedure);

-- Opting back in: rows are stored again from then on.
DELETE FROM guildstats.opt_out WHERE guild_id = 1 AND user_id = 4343434343;
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
    (1, 100, 4343434343, 13, '2026-03-04 20:05+00');
SELECT message_id FROM guildstats.raw_messages WHERE user_id = 4343434343;
ROLLBACK;
