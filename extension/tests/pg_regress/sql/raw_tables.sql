-- Raw tables: contract columns only, replays ignored, database-side hashes.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
VALUES (1, 10, 100, '2026-03-01 20:00:00+00', false, false),
       (1, 10, 101, '2026-03-01 20:30:00+00', true, false),
       (1, 10, NULL, '2026-03-01 21:00:00+00', false, false)
ON CONFLICT DO NOTHING;
-- The same leave again (a replay after a reconnect): nothing new.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
VALUES (1, 10, NULL, '2026-03-01 21:00:00+00', false, false)
ON CONFLICT DO NOTHING;
SELECT user_id, channel_id, event_ts, self_mute, server_mute, source
FROM guildstats.raw_voice_events ORDER BY event_ts;

-- Heartbeats of an ingester not tied to a guild are deduplicated too (NULL guild_id).
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
VALUES ('gameserver', NULL, '2026-03-01 20:00:00+00'), ('gameserver', NULL, '2026-03-01 20:00:00+00')
ON CONFLICT DO NOTHING;
SELECT source, guild_id, beat_at FROM guildstats.raw_heartbeats;

-- ET files: the database computes the hash and the size; identical bytes are one file.
-- Inserting imports nothing; import_et_rounds() (build_all() every minute) does, and a
-- header-only round imports as a round without players.
INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
VALUES ('2026-03-01-203000-supply-round-1.txt', 'sftp://et1/gamestats', convert_to(E'server\\supply\\legacy3\\1\\1\\2\\10:00\\7:12\n', 'UTF8'))
ON CONFLICT DO NOTHING;
INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
VALUES ('copy-of-the-same-round-1.txt', 'sftp://et2/gamestats', convert_to(E'server\\supply\\legacy3\\1\\1\\2\\10:00\\7:12\n', 'UTF8'))
ON CONFLICT DO NOTHING;
SELECT file_name, size_bytes, encode(sha256, 'hex') = encode(sha256(content), 'hex') AS hash_ok,
       imported_at IS NOT NULL AS imported, import_error
FROM guildstats.raw_et_stats_files;
SELECT files_read, rounds_imported, files_failed FROM guildstats.import_et_rounds();
SELECT file_name, imported_at IS NOT NULL AS imported, import_error, import_warning
FROM guildstats.raw_et_stats_files;

-- Point ledger: tx_key makes a replay harmless.
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
VALUES (1, 10, 50, 'daily', '2026-03-01 08:00+00', 'daily:10:2026-03-01'),
       (1, 10, -30, 'shop', '2026-03-01 09:00+00', 'shop:77')
ON CONFLICT DO NOTHING;
INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
VALUES (1, 10, 50, 'daily', '2026-03-01 08:00+00', 'daily:10:2026-03-01')
ON CONFLICT DO NOTHING;
SELECT user_id, sum(amount) AS balance, count(*) AS transactions
FROM guildstats.raw_point_transactions GROUP BY user_id;

-- Every raw table is a configuration table of the extension, so pg_dump keeps its rows.
SELECT count(*) AS dumped_tables
FROM pg_extension e, unnest(e.extconfig) AS t(oid)
JOIN pg_class c ON c.oid = t.oid
WHERE e.extname = 'guildstats' AND c.relkind = 'r';
