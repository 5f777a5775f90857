-- Voice sessions, hand-worked: one guild per rule, so each expectation can be checked by eye.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
-- Earlier tests leave raw rows behind: build them first, so the counts below are ours alone.
SELECT count(*) AS builders FROM guildstats.build_all();

-- Rebuilds every session from scratch and counts the rows that differ from what the
-- incremental builds had made.
CREATE FUNCTION pg_temp.differences_from_full_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE differences bigint;
BEGIN
    CREATE TEMP TABLE incremental AS SELECT * FROM guildstats.voice_sessions;
    PERFORM guildstats.rebuild_voice_sessions();
    SELECT count(*) INTO differences FROM (
        (SELECT * FROM incremental EXCEPT SELECT * FROM guildstats.voice_sessions)
        UNION ALL
        (SELECT * FROM guildstats.voice_sessions EXCEPT SELECT * FROM incremental)) d;
    DROP TABLE incremental;
    RETURN differences;
END $$;

-- Guild 101: join, flag change, move, leave; AFK channel 900; ignored channel 777; an open session.
INSERT INTO guildstats.settings (guild_id, afk_channel_id, ignored_channel_ids) VALUES (101, 900, '{777}');
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf) VALUES
    (101, 10, 100, '2026-03-01 20:00', false, false),  -- join
    (101, 10, 100, '2026-03-01 20:10', true,  false),  -- mutes: same session
    (101, 10, 101, '2026-03-01 20:30', true,  true),   -- moves (muted and deafened)
    (101, 10, NULL, '2026-03-01 21:00', false, false), -- leaves
    (101, 11, 100, '2026-03-01 20:00', false, false),
    (101, 11, 900, '2026-03-01 20:45', false, false),  -- idle: moved to AFK
    (101, 11, NULL, '2026-03-01 21:15', false, false),
    (101, 12, 777, '2026-03-01 20:00', false, false),  -- ignored channel: no session
    (101, 12, 100, '2026-03-01 20:20', false, false),  -- so this is a join
    (101, 12, NULL, '2026-03-01 20:40', false, false),
    (101, 13, 100, '2026-03-01 21:30', false, false);  -- still in voice
SELECT events_read, guilds_built, users_rebuilt, sessions_opened, status FROM guildstats.build_voice_sessions();
SELECT user_id, channel_id, started_at, ended_at, start_reason, end_reason, is_afk, capped,
       self_mute_seconds, self_deaf_seconds
FROM guildstats.voice_sessions WHERE guild_id = 101 ORDER BY user_id, started_at;

-- The same events again change nothing; a second build has nothing to do.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
VALUES (101, 10, 100, '2026-03-01 20:00', false, false), (101, 12, NULL, '2026-03-01 20:40', false, false)
ON CONFLICT DO NOTHING;
SELECT events_read, users_rebuilt, sessions_opened, sessions_closed, sessions_updated, status
FROM guildstats.build_voice_sessions();

-- A late event: user 10 was really in channel 102 from 20:15 to 20:30. Only user 10 is walked
-- again (and user 13, whose session is open), and the result equals a full rebuild.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
VALUES (101, 10, 102, '2026-03-01 20:15', true, false);
SELECT events_read, users_rebuilt, sessions_opened, sessions_updated, sessions_removed, status
FROM guildstats.build_voice_sessions();
SELECT user_id, channel_id, started_at, ended_at, start_reason, end_reason, self_mute_seconds
FROM guildstats.voice_sessions WHERE guild_id = 101 AND user_id = 10 ORDER BY started_at;
SELECT pg_temp.differences_from_full_rebuild();

-- Guild 102: a bot outage. Heartbeats every minute 20:00-20:30, silence, then 21:00-21:10.
-- User 20 was in voice when the bot went away: the session ends at the last beat (20:30);
-- the reconnect snapshot at 21:00 lists them in channel 201: a new session from there.
-- User 21 left before the outage: untouched. User 22 joined at 21:02 and is missing from the
-- snapshot at 21:05: that session ends there.
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', 102, t FROM generate_series(timestamptz '2026-03-01 20:00', '2026-03-01 20:30', '1 minute') t
UNION ALL
SELECT 'discord', 102, t FROM generate_series(timestamptz '2026-03-01 21:00', '2026-03-01 21:10', '1 minute') t;
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (102, 20, 200, '2026-03-01 20:05'),
    (102, 21, 200, '2026-03-01 20:06'), (102, 21, NULL, '2026-03-01 20:20'),
    (102, 22, 201, '2026-03-01 21:02');
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES
    (102, '2026-03-01 21:00', '[{"user_id": 20, "channel_id": "201", "self_mute": true}]'),
    (102, '2026-03-01 21:05', '[{"user_id": "20", "channel_id": 201, "self_mute": true}]');
SELECT events_read, snapshots_read, heartbeats_read, status FROM guildstats.build_voice_sessions();
SELECT user_id, channel_id, started_at, ended_at, start_reason, end_reason, self_mute_seconds
FROM guildstats.voice_sessions WHERE guild_id = 102 ORDER BY user_id, started_at;
SELECT horizon, has_heartbeats FROM guildstats.voice_build_guilds WHERE guild_id = 102;

-- Heartbeats from 20:31 to 20:59 arrive late: there was no outage after all, so user 20's
-- session runs on until the snapshot moved them to 201.
INSERT INTO guildstats.raw_heartbeats (source, guild_id, beat_at)
SELECT 'discord', 102, t FROM generate_series(timestamptz '2026-03-01 20:31', '2026-03-01 20:59', '1 minute') t;
SELECT heartbeats_read, users_rebuilt, status FROM guildstats.build_voice_sessions();
SELECT user_id, channel_id, started_at, ended_at, start_reason, end_reason
FROM guildstats.voice_sessions WHERE guild_id = 102 ORDER BY user_id, started_at;

-- Guild 103: the cap. With a 2-hour cap, a 5-hour stint is closed at 2 hours and flagged.
INSERT INTO guildstats.settings (guild_id, session_cap) VALUES (103, '2 hours');
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (103, 30, 300, '2026-03-01 10:00'), (103, 30, NULL, '2026-03-01 15:00');
SELECT status FROM guildstats.build_voice_sessions();
SELECT user_id, started_at, ended_at, end_reason, capped
FROM guildstats.voice_sessions WHERE guild_id = 103;
-- Changing a setting rebuilds the guild at the next build.
UPDATE guildstats.settings SET session_cap = '8 hours' WHERE guild_id = 103;
SELECT guilds_built, status FROM guildstats.build_voice_sessions();
SELECT user_id, started_at, ended_at, end_reason, capped
FROM guildstats.voice_sessions WHERE guild_id = 103;

-- Guild 106: a snapshot with malformed entries. They are skipped; the well-formed one counts
-- (its self_mute "yes" is not a JSON boolean, so it counts as not muted). A "snapshot" that is
-- not a list at all is no snapshot: it does not end the session.
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES
    (106, '2026-03-01 20:00', '[{"user_id": 60, "channel_id": 600, "self_mute": "yes"},
                                {"user_id": "abc", "channel_id": 600}, {"user_id": 61},
                                {"user_id": 62, "channel_id": 99999999999999999999}, "x", 7, null]'),
    (106, '2026-03-01 20:30', '{"not": "an array"}');
SELECT * FROM guildstats._snapshot_states('[{"user_id": "60", "channel_id": 600, "self_deaf": true}, {"user_id": -1, "channel_id": 1}]');
SELECT snapshots_read, status FROM guildstats.build_voice_sessions();
SELECT user_id, channel_id, started_at, ended_at, start_reason, end_reason, self_mute_seconds
FROM guildstats.voice_sessions WHERE guild_id = 106;

-- Guild 107: an incremental build reads the guild's snapshots from a user's first entry after
-- their last leave, not from the leave. User 70 left at 10:30; a snapshot at 12:00 put them in
-- channel 701 and an empty one at 12:30 took them out. Their mute at 12:15 arrives late: the
-- walk from 10:30 must still see the 12:00 snapshot (12:00-12:30, muted for 900 s), and the
-- result equals a full rebuild.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (107, 70, 700, '2026-03-01 10:00'), (107, 70, NULL, '2026-03-01 10:30'),
    (107, 71, 700, '2026-03-01 14:00'), (107, 71, NULL, '2026-03-01 14:10');
INSERT INTO guildstats.raw_voice_snapshots (guild_id, taken_at, voice_states) VALUES
    (107, '2026-03-01 12:00', '[{"user_id": 70, "channel_id": 701}]'),
    (107, '2026-03-01 12:30', '[]');
SELECT status FROM guildstats.build_voice_sessions();
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute)
VALUES (107, 70, 701, '2026-03-01 12:15', true);
SELECT events_read, users_rebuilt, status FROM guildstats.build_voice_sessions();
SELECT user_id, channel_id, started_at, ended_at, start_reason, end_reason, self_mute_seconds
FROM guildstats.voice_sessions WHERE guild_id = 107 ORDER BY user_id, started_at;
SELECT pg_temp.differences_from_full_rebuild();

-- Progress is recorded per raw table, in the same transaction as the work.
SELECT builder, source_table, processed_through > 0 AS has_progress, pending_ids
FROM guildstats.build_progress WHERE builder = 'build_voice_sessions' ORDER BY source_table;

-- In REPEATABLE READ a builder could miss rows of writers in flight: it refuses.
\set VERBOSITY terse
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT status FROM guildstats.build_voice_sessions();
ROLLBACK;
\set VERBOSITY default
