-- erase_member(): a member of guild 1 (user 42) is forgotten everywhere; the other member of
-- guild 1 (user 43) and the same user id in guild 2 are untouched. Hand-built rows, then every
-- builder, then the erasure.
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
    (1, 42, 100, '2026-03-01 20:00+00'), (1, 42, NULL, '2026-03-01 21:00+00'),
    (1, 43, 100, '2026-03-01 20:10+00'), (1, 43, NULL, '2026-03-01 20:40+00'),
    (2, 42, 200, '2026-03-01 20:00+00'), (2, 42, NULL, '2026-03-01 20:30+00');
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES
    (1, '2026-03-01 20:20+00', '[{"user_id": "42", "channel_id": "100"}, {"user_id": "43", "channel_id": "100"}]'),
    (2, '2026-03-01 20:20+00', '[{"user_id": "42", "channel_id": "200"}]');
INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at, char_count) VALUES
    (1, 100, 42, 1, '2026-03-01 20:05+00', 10), (1, 100, 43, 2, '2026-03-01 20:06+00', 12),
    (2, 200, 42, 3, '2026-03-01 20:07+00', 14);
INSERT INTO guildstats.raw_member_events (guild_id, user_id, event_type, event_ts) VALUES
    (1, 42, 'join', '2026-02-01 12:00+00'), (1, 43, 'join', '2026-02-02 12:00+00'),
    (2, 42, 'join', '2026-02-03 12:00+00');
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key) VALUES
    (1, 42, 25, 'daily', '2026-03-01 20:00+00', 'a'), (1, 43, 5, 'daily', '2026-03-01 20:00+00', 'b'),
    (2, 42, 7, 'daily', '2026-03-01 20:00+00', 'c');
INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, name, channel_id, status, creator_id, scheduled_start)
VALUES (1, 5000, '2026-03-01 19:00+00', 'Game night', 100, 'scheduled', 42, '2026-03-01 20:00+00'),
       (2, 6000, '2026-03-01 19:00+00', 'Other night', 200, 'scheduled', 42, '2026-03-01 20:00+00');
INSERT INTO guildstats.raw_scheduled_event_users (guild_id, event_id, user_id, action, observed_at) VALUES
    (1, 5000, 42, 'add', '2026-03-01 19:30+00'), (1, 5000, 43, 'add', '2026-03-01 19:31+00'),
    (2, 6000, 42, 'add', '2026-03-01 19:32+00');
INSERT INTO guildstats.et_guid_links (guid, guild_id, user_id) VALUES
    ('AAAA0000AAAA0000AAAA0000AAAA0000', 1, 42), ('BBBB0000BBBB0000BBBB0000BBBB0000', 2, 42);
SELECT count(*) AS builders_ok FROM guildstats.build_all() WHERE status = 'ok';

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

SELECT table_name, rows_changed FROM guildstats.erase_member(guild_id => 1, user_id => 42)
 WHERE rows_changed > 0 ORDER BY table_name;
SELECT pg_temp.count_member_rows('after');

-- Nothing of user 42 is left in guild 1:
SELECT table_name, n FROM member_rows WHERE stage = 'after' AND guild_id = 1 AND user_id = 42;
-- and every other (guild, user) has exactly the rows it had:
SELECT b.table_name, b.guild_id, b.user_id, b.n AS before, a.n AS after
  FROM member_rows b
  LEFT JOIN member_rows a ON a.stage = 'after' AND (a.table_name, a.guild_id, a.user_id) = (b.table_name, b.guild_id, b.user_id)
 WHERE b.stage = 'before' AND NOT (b.guild_id = 1 AND b.user_id = 42) AND a.n IS DISTINCT FROM b.n;
SELECT count(DISTINCT table_name) >= 10 AS tables_checked FROM member_rows WHERE stage = 'before';

-- The snapshot keeps the other member; the event stays, without its creator.
SELECT guild_id, voice_states FROM guildstats.raw_voice_snapshots ORDER BY guild_id;
SELECT guild_id, event_id, creator_id FROM guildstats.raw_scheduled_events ORDER BY guild_id;

-- A later build does not bring the member back, and the erasure can be repeated.
SELECT count(*) AS builders_ok FROM guildstats.build_all() WHERE status = 'ok';
SELECT count(*) AS sessions_of_42_in_guild_1 FROM guildstats.voice_sessions WHERE guild_id = 1 AND user_id = 42;
SELECT sum(rows_changed) AS changed_again FROM guildstats.erase_member(1, 42);

-- Both arguments are required.
SELECT * FROM guildstats.erase_member(NULL, 42);
ROLLBACK;
