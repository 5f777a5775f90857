-- Events, attendance and the rollups, hand-worked.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
-- Earlier tests leave raw rows behind: build them first, so the counts below are ours alone.
SELECT count(*) AS builders FROM guildstats.build_all();

-- Guild 104, AFK channel 490. Event 9000 in channel 400 runs 20:00-21:00 (grace: 10 minutes).
-- Event 9001 names no channel (external): any voice channel counts. Event 9002 is cancelled.
INSERT INTO guildstats.settings (guild_id, afk_channel_id) VALUES (104, 490);
INSERT INTO guildstats.raw_scheduled_events (guild_id, event_id, observed_at, name, channel_id, entity_type, status, scheduled_start) VALUES
    (104, 9000, '2026-03-01 12:00', 'Game night', 400, 'voice', 'scheduled', '2026-03-01 20:00'),
    (104, 9000, '2026-03-01 20:00', 'Game night', 400, 'voice', 'active', '2026-03-01 20:00'),
    (104, 9000, '2026-03-01 21:00', 'Game night', 400, 'voice', 'completed', '2026-03-01 20:00'),
    (104, 9001, '2026-03-01 12:00', 'Twitch cup', NULL, 'external', 'scheduled', '2026-03-01 20:00'),
    (104, 9001, '2026-03-01 20:00', 'Twitch cup', NULL, 'external', 'active', '2026-03-01 20:00'),
    (104, 9001, '2026-03-01 20:30', 'Twitch cup', NULL, 'external', 'completed', '2026-03-01 20:00'),
    (104, 9002, '2026-03-01 12:00', 'Town hall', 410, 'stage', 'scheduled', '2026-03-01 22:00'),
    (104, 9002, '2026-03-01 18:00', 'Town hall', 410, 'stage', 'canceled', '2026-03-01 22:00');
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (104, 40, 400, '2026-03-01 19:55'), (104, 40, NULL, '2026-03-01 20:30'),  -- early: on time
    (104, 41, 400, '2026-03-01 20:20'), (104, 41, NULL, '2026-03-01 21:30'),  -- late
    (104, 42, 490, '2026-03-01 19:00'), (104, 42, NULL, '2026-03-01 22:00'),  -- AFK all along
    (104, 43, 401, '2026-03-01 20:05'), (104, 43, NULL, '2026-03-01 20:25');  -- elsewhere
SELECT builder, status FROM guildstats.build_all() ORDER BY builder;
SELECT event_id, name, status, is_cancelled, actual_start, actual_end FROM guildstats.events WHERE guild_id = 104 ORDER BY event_id;
SELECT event_id, user_id, first_join, last_leave, overlap_seconds, joined_on_time
FROM guildstats.event_attendance WHERE guild_id = 104 ORDER BY event_id, user_id;

-- Weekly engagement: voice seconds and events attended (week of Monday 2026-02-23).
SELECT user_id, week, voice_seconds, events_attended, distinct_event_types
FROM guildstats.member_engagement_weekly WHERE guild_id = 104 ORDER BY user_id;

-- Guild 105 keeps its calendar in Europe/Berlin. A session from Saturday 23:00 to Monday 01:30
-- local time crosses two midnights and the DST change (Sunday 2026-03-29 has 23 hours);
-- an AFK stint on Monday counts as AFK only. (The 26-hour stint needs a cap above 12 hours.)
INSERT INTO guildstats.settings (guild_id, calendar_time_zone, afk_channel_id, session_cap)
VALUES (105, 'Europe/Berlin', 590, '30 hours');
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES
    (105, 50, 500, '2026-03-28 22:00+00'), (105, 50, 590, '2026-03-29 23:30+00'), (105, 50, NULL, '2026-03-30 00:00+00');
SELECT builder, status FROM guildstats.build_all() ORDER BY builder;
SELECT day, active_seconds, afk_seconds, active_seconds / 3600 AS active_hours
FROM guildstats.member_voice_daily WHERE guild_id = 105 ORDER BY day;
SELECT user_id, month, was_active, active_by_voice, active_by_messages, active_by_attendance
FROM guildstats.member_monthly_status WHERE guild_id IN (104, 105) ORDER BY user_id, month;

-- A late leave for user 41 (they left at 20:40 after all) updates attendance and the rollups.
INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts) VALUES (104, 41, NULL, '2026-03-01 20:40');
SELECT builder, status FROM guildstats.build_all() ORDER BY builder;
SELECT event_id, user_id, last_leave, overlap_seconds FROM guildstats.event_attendance WHERE guild_id = 104 AND user_id = 41 ORDER BY event_id;
SELECT user_id, week, voice_seconds FROM guildstats.member_engagement_weekly WHERE guild_id = 104 AND user_id = 41;
