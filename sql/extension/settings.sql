-- Settings for the builders: one row per guild that overrides something, plus at most one
-- row with guild_id NULL that overrides the built-in defaults for every guild. A NULL
-- column means "not overridden here". settings_for() resolves the chain
-- guild row -> global row -> built-in default.
--
-- The built-in defaults live in settings_for(), not in a row the extension inserts: a row
-- created by CREATE EXTENSION would clash with the same row coming back from pg_dump.

CREATE FUNCTION _is_valid_time_zone(time_zone text) RETURNS boolean
LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
    PERFORM now() AT TIME ZONE time_zone;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END
$$;
COMMENT ON FUNCTION _is_valid_time_zone(text) IS
    'Internal: true when PostgreSQL knows the time zone name (used by the settings table''s CHECK).';

CREATE TABLE settings (
    guild_id             bigint,
    afk_channel_id       bigint,
    ignored_channel_ids  bigint[],
    session_cap          interval,
    event_grace          interval,
    calendar_time_zone   text,
    et_session_gap       interval,
    et_min_rounds        integer,
    outage_after         interval,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- Last, after updated_at: 0.2.0 added it, and an upgraded table must equal a fresh one.
    future_tolerance     interval,
    game_session_gap     interval,
    regular_min_minutes  integer,
    regular_window_days  integer,
    CONSTRAINT settings_guild_key UNIQUE NULLS NOT DISTINCT (guild_id),
    CONSTRAINT settings_session_cap_positive CHECK (session_cap > interval '0'),
    CONSTRAINT settings_event_grace_not_negative CHECK (event_grace >= interval '0'),
    CONSTRAINT settings_et_session_gap_positive CHECK (et_session_gap > interval '0'),
    CONSTRAINT settings_et_min_rounds_not_negative CHECK (et_min_rounds >= 0),
    CONSTRAINT settings_outage_after_positive CHECK (outage_after > interval '0'),
    CONSTRAINT settings_future_tolerance_not_negative CHECK (future_tolerance >= interval '0'),
    CONSTRAINT settings_game_session_gap_positive CHECK (game_session_gap > interval '0'),
    CONSTRAINT settings_regular_min_minutes_positive CHECK (regular_min_minutes > 0),
    CONSTRAINT settings_regular_window_days_positive CHECK (regular_window_days > 0),
    -- Upper bounds too: a setting is arithmetic in the builders (a window of 2^31 days is a
    -- date out of range in the middle of a build), so an absurd value is refused where it is set.
    CONSTRAINT settings_session_cap_at_most_a_year CHECK (session_cap <= interval '366 days'),
    CONSTRAINT settings_event_grace_at_most_a_week CHECK (event_grace <= interval '7 days'),
    CONSTRAINT settings_et_session_gap_at_most_30_days CHECK (et_session_gap <= interval '30 days'),
    CONSTRAINT settings_et_min_rounds_at_most_100000 CHECK (et_min_rounds <= 100000),
    CONSTRAINT settings_outage_after_at_most_30_days CHECK (outage_after <= interval '30 days'),
    CONSTRAINT settings_future_tolerance_at_most_a_year CHECK (future_tolerance <= interval '366 days'),
    CONSTRAINT settings_game_session_gap_at_most_a_week CHECK (game_session_gap <= interval '7 days'),
    CONSTRAINT settings_regular_min_minutes_at_most_a_year CHECK (regular_min_minutes <= 525600),
    CONSTRAINT settings_regular_window_days_at_most_10_years CHECK (regular_window_days <= 3660),
    CONSTRAINT settings_calendar_time_zone_known CHECK (_is_valid_time_zone(calendar_time_zone)),
    CONSTRAINT settings_afk_only_per_guild CHECK (guild_id IS NOT NULL OR afk_channel_id IS NULL)
);

COMMENT ON TABLE settings IS
    'Builder settings. A row with a guild_id overrides settings for that guild; the row with guild_id NULL overrides the built-in defaults for all guilds. NULL columns inherit. Read the resolved values with settings_for(guild_id).';
COMMENT ON COLUMN settings.guild_id IS 'The guild these settings apply to; NULL for the global row.';
COMMENT ON COLUMN settings.afk_channel_id IS 'Overrides the AFK channel Discord reports for the guild (raw_guilds). Only on guild rows.';
COMMENT ON COLUMN settings.ignored_channel_ids IS 'Voice channels whose sessions are not counted at all (e.g. music bots'' channels).';
COMMENT ON COLUMN settings.session_cap IS 'A voice session open longer than this is closed and flagged (built-in default 12 hours).';
COMMENT ON COLUMN settings.event_grace IS 'How late after an event''s start a member may join and still count as on time (built-in default 10 minutes).';
COMMENT ON COLUMN settings.calendar_time_zone IS 'Time zone of calendar days, weeks and months in the rollups (built-in default UTC).';
COMMENT ON COLUMN settings.et_session_gap IS 'ET:Legacy rounds further apart than this start a new gaming session (built-in default 60 minutes).';
COMMENT ON COLUMN settings.et_min_rounds IS 'ET:Legacy leaderboards rank only players with at least this many rounds in the period (built-in default 5; ET servers belong to no guild, so the global row sets it).';
COMMENT ON COLUMN settings.outage_after IS 'A silence in the discord heartbeats longer than this is a bot outage: voice sessions open across it end at the last heartbeat before it (built-in default 3 minutes, three missed beats).';
COMMENT ON COLUMN settings.future_tolerance IS 'How far after its arrival a raw row may be dated (a clock running ahead) before it goes to quarantine instead of its raw table (built-in default 1 day). Read it with future_tolerance_for(guild_id); guild-less rows (game servers, ET files) use the global row.';
COMMENT ON COLUMN settings.game_session_gap IS 'Two polls of a game server further apart than this end the player sessions open at the first one, at that poll (built-in default 5 minutes). Game servers belong to no guild: only the global row sets it; read it with game_session_gap().';
COMMENT ON COLUMN settings.regular_min_minutes IS 'Two members are regulars of each other with at least this many minutes of shared voice within regular_window_days (built-in default 60). Read it with regulars_threshold_for(guild_id).';
COMMENT ON COLUMN settings.regular_window_days IS 'The window, in days, of regular_min_minutes (built-in default 28).';
COMMENT ON COLUMN settings.updated_at IS 'When the row was last written by whoever set it.';

SELECT pg_catalog.pg_extension_config_dump('settings', '');

-- The game servers the poller polls, kept in the database so that an admin adds one with an
-- INSERT instead of editing the poller's configuration; it rereads the table every cycle.
CREATE TABLE game_servers (
    address    text        PRIMARY KEY,
    protocol   text        NOT NULL,
    enabled    boolean     NOT NULL DEFAULT true,
    label      text,
    added_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT game_servers_address_is_host_port CHECK (address ~ '^[^[:space:]:]+:[0-9]{1,5}$'),
    CONSTRAINT game_servers_protocol_known CHECK (protocol IN ('a2s', 'q3'))
);

COMMENT ON TABLE game_servers IS
    'Game servers for the poller (guildstats-gameserver --servers-table), besides any in its own configuration. It rereads the enabled rows every poll cycle.';
COMMENT ON COLUMN game_servers.address IS 'host:port of the query port, as raw_server_polls.server records it.';
COMMENT ON COLUMN game_servers.protocol IS 'a2s (Source engine A2S queries) or q3 (Quake 3 getstatus, as ET:Legacy speaks it).';
COMMENT ON COLUMN game_servers.enabled IS 'false pauses polling without losing the row.';
COMMENT ON COLUMN game_servers.label IS 'A name for people; the poller does not use it.';
COMMENT ON COLUMN game_servers.added_at IS 'When the row was added.';

SELECT pg_catalog.pg_extension_config_dump('game_servers', '');

CREATE FUNCTION settings_for(guild_id bigint)
RETURNS TABLE (
    afk_channel_id       bigint,
    ignored_channel_ids  bigint[],
    session_cap          interval,
    event_grace          interval,
    calendar_time_zone   text,
    et_session_gap       interval,
    et_min_rounds        integer,
    outage_after         interval
)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT COALESCE(g.afk_channel_id,
                    (SELECT rg.afk_channel_id FROM @extschema@.raw_guilds rg
                      WHERE rg.guild_id = settings_for.guild_id
                      ORDER BY rg.observed_at DESC, rg.ingest_id DESC LIMIT 1)),
           COALESCE(g.ignored_channel_ids, d.ignored_channel_ids, '{}'::bigint[]),
           COALESCE(g.session_cap, d.session_cap, interval '12 hours'),
           COALESCE(g.event_grace, d.event_grace, interval '10 minutes'),
           COALESCE(g.calendar_time_zone, d.calendar_time_zone, 'UTC'),
           COALESCE(g.et_session_gap, d.et_session_gap, interval '60 minutes'),
           COALESCE(g.et_min_rounds, d.et_min_rounds, 5),
           COALESCE(g.outage_after, d.outage_after, interval '3 minutes')
    FROM (SELECT 1) AS one
    LEFT JOIN @extschema@.settings d ON d.guild_id IS NULL
    LEFT JOIN @extschema@.settings g ON g.guild_id = settings_for.guild_id;
END;
COMMENT ON FUNCTION settings_for(bigint) IS
    'The settings in force for a guild: its own row, else the global row (guild_id NULL), else the built-in default. The AFK channel comes from the guild row, else from the latest raw_guilds state. Example: SELECT * FROM guildstats.settings_for(1234);';

CREATE VIEW effective_settings AS
SELECT known.guild_id, s.*
FROM (SELECT guild_id FROM @extschema@.raw_guilds
      UNION
      SELECT guild_id FROM @extschema@.settings WHERE guild_id IS NOT NULL) AS known,
     LATERAL @extschema@.settings_for(known.guild_id) AS s;
COMMENT ON VIEW effective_settings IS
    'The settings in force for every known guild (seen in raw_guilds or named in settings), with defaults resolved.';

-- Resolved on its own, not in settings_for(): the raw tables' insert trigger calls it on every
-- row dated after now(), and it must stay a two-probe lookup.
CREATE FUNCTION future_tolerance_for(guild_id bigint)
RETURNS interval
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce((SELECT s.future_tolerance FROM @extschema@.settings s
                      WHERE s.guild_id = future_tolerance_for.guild_id),
                    (SELECT s.future_tolerance FROM @extschema@.settings s WHERE s.guild_id IS NULL),
                    interval '1 day');
END;
COMMENT ON FUNCTION future_tolerance_for(bigint) IS
    'The future tolerance in force for a guild (NULL: rows without a guild): its settings row, else the global row, else 1 day. A raw row dated further than this after its arrival goes to quarantine. Example: SELECT guildstats.future_tolerance_for(1234);';
