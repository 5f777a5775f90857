-- Settings: guild row, then global row, then built-in defaults.
SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres';
SELECT * FROM guildstats.settings_for(guild_id => 1);

INSERT INTO guildstats.raw_guilds (guild_id, observed_at, name, afk_channel_id)
VALUES (1, '2026-03-01 00:00+00', 'Guild One', 900),
       (1, '2026-03-02 00:00+00', 'Guild One', 901);
INSERT INTO guildstats.settings (guild_id, session_cap, calendar_time_zone)
VALUES (NULL, '8 hours', 'Europe/Berlin');
INSERT INTO guildstats.settings (guild_id, event_grace, ignored_channel_ids)
VALUES (2, '5 minutes', '{700,701}');

-- Guild 1: AFK channel from its latest raw_guilds row, the rest from the global row.
SELECT * FROM guildstats.settings_for(1);
-- Guild 2: its own grace and ignored channels, the global cap and time zone.
SELECT * FROM guildstats.settings_for(2);
-- The AFK override wins over what Discord reports.
INSERT INTO guildstats.settings (guild_id, afk_channel_id) VALUES (1, 950);
SELECT guild_id, afk_channel_id, session_cap, calendar_time_zone
FROM guildstats.effective_settings ORDER BY guild_id;

-- Bad settings are refused with the rule they break.
\set VERBOSITY terse
INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (3, 'Mars/Olympus_Mons');
INSERT INTO guildstats.settings (guild_id, session_cap) VALUES (3, '-1 hour');
-- ... and absurdly large ones too (a window of 2^31 days was a date out of range inside
-- voice_newcomer_integration, for every reader of the guild).
INSERT INTO guildstats.settings (guild_id, regular_window_days) VALUES (3, 2147483647);
INSERT INTO guildstats.settings (guild_id, session_cap) VALUES (3, '1000 years');
INSERT INTO guildstats.settings (guild_id, future_tolerance) VALUES (3, '178000000 years');
INSERT INTO guildstats.settings (guild_id, et_min_rounds) VALUES (NULL, 2147483647)
ON CONFLICT (guild_id) DO UPDATE SET et_min_rounds = EXCLUDED.et_min_rounds;
INSERT INTO guildstats.settings (guild_id, afk_channel_id) VALUES (NULL, 5)
ON CONFLICT (guild_id) DO UPDATE SET afk_channel_id = EXCLUDED.afk_channel_id;
INSERT INTO guildstats.settings (guild_id, session_cap) VALUES (2, '1 hour');
