-- The show-up funnel of scheduled events: who said they would come, who came into voice, who was
-- seen on a game server, who played ET:Legacy rounds, and whether those who came stay around.
--
-- Views, not a builder: every stage reads tables the builders already keep (events,
-- event_attendance, game_sessions, et_player_rounds) or the small interest table, through
-- indexes, per event and per candidate member. Presence in voice is event_attendance itself, so
-- the funnel and the attendance figures cannot disagree; and erase_member() needs nothing more
-- (every row here comes from a table it already empties).
--
-- The stages, for an event that started (events.actual_start), over its window
-- [actual_start, actual_end), a running event up to its guild's voice horizon:
--   interested  the member's latest interest action (raw_scheduled_event_users) observed no
--               later than the end of the window is 'add';
--   in voice    the member has a row in event_attendance (the event's channel, any voice
--               channel for events without one, AFK excluded);
--   on server   a game session (any server: game servers belong to no guild) under one of the
--               member's names overlaps the window (a visit seen by a single poll counts at that
--               poll), or the member played a counted round in it;
--   played      a counted ET:Legacy round (et_counted_player_rounds) of a GUID linked to the
--               member in this guild (et_guid_links) overlaps the window: the round ran from
--               saved_at - time_used_seconds to saved_at, the server's local time read in the
--               guild's calendar time zone (as guildstats_mart.et_player_rounds reads it).
-- A member's names: their latest display name (members.display_name) and every name their
-- linked GUIDs played under. Names compare by _player_name_key(); a key that names more than
-- one member of the guild names nobody.

CREATE FUNCTION _player_name_key(name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(lower(btrim(regexp_replace(name, '\^.', '', 'g'))), '');
COMMENT ON FUNCTION _player_name_key(text) IS
    'Internal to the event funnel: the form in which a game-server player name and a member''s name are compared: ET colour codes (a ^ and the character after it) removed, surrounding spaces trimmed, lower case; NULL for a name that is nothing else.';

-- The funnel looks up the sessions that overlap an event, across servers. An open session
-- counts up to its last poll, as in the other session views; the range is closed, so that a
-- visit seen by one poll only (joined and left at that poll) still counts at that instant.
CREATE INDEX game_sessions_span_idx ON game_sessions USING gist (tstzrange(joined_at, coalesce(left_at, last_seen), '[]'));

CREATE VIEW event_member_names AS
SELECT n.guild_id, n.name_key, min(n.user_id) AS user_id,
       bool_or(n.by_guid) AS by_guid, bool_or(NOT n.by_guid) AS by_display_name
FROM (SELECT m.guild_id, m.user_id, @extschema@._player_name_key(m.display_name) AS name_key, false AS by_guid
        FROM @extschema@.members m
       WHERE m.display_name IS NOT NULL AND NOT m.is_bot
      UNION
      SELECT l.guild_id, l.user_id, @extschema@._player_name_key(p.clean_name), true
        FROM @extschema@.et_guid_links l
        JOIN @extschema@.et_player_rounds p ON p.guid = l.guid) n
WHERE n.name_key IS NOT NULL
GROUP BY n.guild_id, n.name_key
HAVING count(DISTINCT n.user_id) = 1;
COMMENT ON VIEW event_member_names IS
    'The names under which a member is recognised on a game server, per guild: their latest display name and every name their linked ET:Legacy GUIDs played under, as _player_name_key(); a key that would name two members of the guild is left out.';
COMMENT ON COLUMN event_member_names.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_member_names.name_key IS 'The name as _player_name_key() gives it.';
COMMENT ON COLUMN event_member_names.user_id IS 'The one member of the guild the name stands for.';
COMMENT ON COLUMN event_member_names.by_guid IS 'A GUID linked to the member (et_guid_links) played under this name.';
COMMENT ON COLUMN event_member_names.by_display_name IS 'It is the member''s latest display name.';

CREATE VIEW event_funnel_members AS
WITH w AS (
    SELECT e.guild_id, e.event_id, e.actual_start,
           coalesce(e.actual_end, b.horizon, now()) AS window_end,
           st.calendar_time_zone
      FROM @extschema@.events e
      LEFT JOIN @extschema@.voice_build_guilds b ON b.guild_id = e.guild_id
     CROSS JOIN LATERAL @extschema@.settings_for(e.guild_id) st
     WHERE e.actual_start IS NOT NULL
), names_seen AS MATERIALIZED (
    -- The names on a game server during each event: the sessions that overlap it first (a few
    -- per event, by the range index), each name made a key once; only then the members.
    SELECT DISTINCT w.event_id, w.guild_id, @extschema@._player_name_key(g.player_name) AS name_key
      FROM w
      JOIN @extschema@.game_sessions g
        ON tstzrange(g.joined_at, coalesce(g.left_at, g.last_seen), '[]') && tstzrange(w.actual_start, w.window_end)
), seen AS (
    SELECT DISTINCT ON (x.event_id, n.user_id) x.event_id, n.user_id, n.name_key
      FROM names_seen x
      JOIN @extschema@.event_member_names n ON n.guild_id = x.guild_id AND n.name_key = x.name_key
     ORDER BY x.event_id, n.user_id, n.name_key
)
SELECT w.guild_id, w.event_id, c.user_id, c.interested,
       a.user_id IS NOT NULL AS in_voice,
       coalesce(a.overlap_seconds, 0) / 60.0::double precision AS voice_minutes,
       s.name_key IS NOT NULL OR r.rounds > 0 AS on_server,
       s.name_key AS server_name_key,
       r.rounds > 0 AS played,
       r.rounds AS rounds_played
FROM w
-- The candidates: interested by the end of the event, or in voice during it.
CROSS JOIN LATERAL (
    SELECT x.user_id, bool_or(x.interested) AS interested
      FROM (SELECT i.user_id, true AS interested
              FROM (SELECT DISTINCT ON (u.user_id) u.user_id, u.action
                      FROM @extschema@.raw_scheduled_event_users u
                     WHERE u.event_id = w.event_id AND u.guild_id = w.guild_id AND u.observed_at <= w.window_end
                     ORDER BY u.user_id, u.observed_at DESC, u.ingest_id DESC) i
             WHERE i.action = 'add'
            UNION ALL
            SELECT a.user_id, false FROM @extschema@.event_attendance a WHERE a.event_id = w.event_id) x
     GROUP BY x.user_id) c
LEFT JOIN @extschema@.event_attendance a ON a.event_id = w.event_id AND a.user_id = c.user_id
LEFT JOIN seen s ON s.event_id = w.event_id AND s.user_id = c.user_id
CROSS JOIN LATERAL (
    SELECT count(DISTINCT p.round_id)::integer AS rounds
      FROM @extschema@.et_guid_links l
      JOIN @extschema@.et_counted_player_rounds p ON p.guid = l.guid
      JOIN @extschema@.et_rounds t ON t.round_id = p.round_id
     WHERE l.guild_id = w.guild_id AND l.user_id = c.user_id
       AND (p.saved_at - make_interval(secs => coalesce(t.time_used_seconds, 0))) AT TIME ZONE w.calendar_time_zone < w.window_end
       AND p.saved_at AT TIME ZONE w.calendar_time_zone > w.actual_start) r;
COMMENT ON VIEW event_funnel_members IS
    'The show-up funnel per started scheduled event and member: one row per member who was interested in the event (latest interest action by the end of the event is add) or attended it in voice (event_attendance), with each stage: in voice, seen on a game server under one of their names (event_member_names) or playing, and ET:Legacy rounds played through their linked GUIDs, all within the event''s window [actual_start, actual_end). Events that never started (cancelled before) have no rows.';
COMMENT ON COLUMN event_funnel_members.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_funnel_members.event_id IS 'The event (events.event_id).';
COMMENT ON COLUMN event_funnel_members.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN event_funnel_members.interested IS 'The member''s latest interest action observed by the end of the event is add.';
COMMENT ON COLUMN event_funnel_members.in_voice IS 'The member attended in voice (a row in event_attendance).';
COMMENT ON COLUMN event_funnel_members.voice_minutes IS 'Minutes in the event''s voice channel while it ran (event_attendance.overlap_seconds / 60); 0 when absent.';
COMMENT ON COLUMN event_funnel_members.on_server IS 'A game session under one of the member''s names overlapped the event, or the member played a counted round during it.';
COMMENT ON COLUMN event_funnel_members.server_name_key IS 'The name (as _player_name_key()) under which a game session was seen; NULL when none was (on_server may still be true through played rounds).';
COMMENT ON COLUMN event_funnel_members.played IS 'A GUID linked to the member played a counted ET:Legacy round during the event.';
COMMENT ON COLUMN event_funnel_members.rounds_played IS 'Counted ET:Legacy rounds during the event in which a linked GUID played.';

CREATE VIEW event_funnel AS
SELECT e.guild_id, e.event_id, e.name, e.status, e.is_cancelled, e.actual_start IS NOT NULL AS started,
       coalesce(e.actual_start, e.scheduled_start, e.first_observed_at) AS start_time,
       coalesce(f.interested, 0) AS interested,
       coalesce(f.in_voice, 0) AS in_voice,
       coalesce(f.on_server, 0) AS on_server,
       coalesce(f.played, 0) AS played,
       coalesce(f.attendees, 0) AS attendees,
       coalesce(f.walk_ins, 0) AS walk_ins,
       f.in_voice::double precision / nullif(f.interested, 0) AS voice_rate,
       (f.interested - f.in_voice)::double precision / nullif(f.interested, 0) AS no_show_rate,
       f.on_server::double precision / nullif(f.in_voice, 0) AS server_rate,
       f.played::double precision / nullif(f.on_server, 0) AS play_rate
FROM @extschema@.events e
LEFT JOIN (SELECT m.event_id,
                  count(*) FILTER (WHERE m.interested) AS interested,
                  count(*) FILTER (WHERE m.interested AND m.in_voice) AS in_voice,
                  count(*) FILTER (WHERE m.interested AND m.in_voice AND m.on_server) AS on_server,
                  count(*) FILTER (WHERE m.interested AND m.in_voice AND m.on_server AND m.played) AS played,
                  count(*) FILTER (WHERE m.in_voice) AS attendees,
                  count(*) FILTER (WHERE m.in_voice AND NOT m.interested) AS walk_ins
             FROM @extschema@.event_funnel_members m GROUP BY m.event_id) f ON f.event_id = e.event_id;
COMMENT ON VIEW event_funnel IS
    'The show-up funnel per scheduled event (from event_funnel_members): interested members, then of those the ones in voice, then also on a game server, then also playing ET:Legacy rounds, with the conversion from each stage to the next and the no-show rate (interested but not in voice). Events that never started keep their row with zero counts and NULL rates.';
COMMENT ON COLUMN event_funnel.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_funnel.event_id IS 'Discord scheduled-event snowflake.';
COMMENT ON COLUMN event_funnel.name IS 'Title, as last observed.';
COMMENT ON COLUMN event_funnel.status IS 'scheduled, active, completed or canceled.';
COMMENT ON COLUMN event_funnel.is_cancelled IS 'The event was cancelled (before it started: no funnel; after: the funnel up to the cancellation).';
COMMENT ON COLUMN event_funnel.started IS 'The event started (events.actual_start is known); only started events have a funnel.';
COMMENT ON COLUMN event_funnel.start_time IS 'Actual start, else the announced start, else the first observation.';
COMMENT ON COLUMN event_funnel.interested IS 'Stage 1: members interested in the event.';
COMMENT ON COLUMN event_funnel.in_voice IS 'Stage 2: interested members who attended in voice.';
COMMENT ON COLUMN event_funnel.on_server IS 'Stage 3: of those, members also seen on a game server during the event.';
COMMENT ON COLUMN event_funnel.played IS 'Stage 4: of those, members who also played ET:Legacy rounds during the event.';
COMMENT ON COLUMN event_funnel.attendees IS 'Every member in voice during the event, interested or not (as event_attendance counts them).';
COMMENT ON COLUMN event_funnel.walk_ins IS 'Members in voice during the event who had not marked themselves interested.';
COMMENT ON COLUMN event_funnel.voice_rate IS 'in_voice / interested; NULL without interested members.';
COMMENT ON COLUMN event_funnel.no_show_rate IS '(interested - in_voice) / interested: interested members who did not come into voice; NULL without interested members.';
COMMENT ON COLUMN event_funnel.server_rate IS 'on_server / in_voice; NULL when nobody interested came into voice.';
COMMENT ON COLUMN event_funnel.play_rate IS 'played / on_server; NULL when nobody reached the server stage.';

CREATE VIEW member_event_funnel AS
SELECT m.guild_id, m.user_id,
       count(*) FILTER (WHERE m.interested)::integer AS events_interested,
       count(*) FILTER (WHERE m.interested AND m.in_voice)::integer AS events_attended,
       count(*) FILTER (WHERE m.interested AND NOT m.in_voice)::integer AS no_shows,
       count(*) FILTER (WHERE m.in_voice AND NOT m.interested)::integer AS walk_ins,
       count(*) FILTER (WHERE m.interested AND NOT m.in_voice)::double precision
           / nullif(count(*) FILTER (WHERE m.interested), 0) AS no_show_rate,
       min(e.actual_start) AS first_event_start,
       max(e.actual_start) AS last_event_start
FROM @extschema@.event_funnel_members m
JOIN @extschema@.events e ON e.event_id = m.event_id
GROUP BY m.guild_id, m.user_id;
COMMENT ON VIEW member_event_funnel IS
    'Per member, over the started scheduled events of their guild (event_funnel_members): events they were interested in, of those the ones they attended in voice and the no-shows, events they attended without having marked interest (walk-ins), and their no-show rate.';
COMMENT ON COLUMN member_event_funnel.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN member_event_funnel.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN member_event_funnel.events_interested IS 'Started events the member was interested in.';
COMMENT ON COLUMN member_event_funnel.events_attended IS 'Of those, events the member attended in voice.';
COMMENT ON COLUMN member_event_funnel.no_shows IS 'Of those, events the member did not attend in voice.';
COMMENT ON COLUMN member_event_funnel.walk_ins IS 'Events the member attended in voice without having marked interest.';
COMMENT ON COLUMN member_event_funnel.no_show_rate IS 'no_shows / events_interested; NULL when never interested.';
COMMENT ON COLUMN member_event_funnel.first_event_start IS 'Actual start of the member''s first event in the funnel (interested or attended).';
COMMENT ON COLUMN member_event_funnel.last_event_start IS 'Actual start of the member''s latest event in the funnel.';

-- D30 of attendees vs non-attendees, one cohort entry per member: their first started event in
-- the funnel (interested or in voice). Counting every (member, event) pair would weigh regulars, who are
-- interested in many events, many times over.
CREATE VIEW event_retention_d30 AS
SELECT f.guild_id, f.user_id, f.event_id, f.event_day,
       CASE WHEN NOT f.interested THEN 'walk_in' WHEN f.in_voice THEN 'attended' ELSE 'absent' END AS cohort,
       coalesce((b.horizon AT TIME ZONE f.calendar_time_zone)::date >= f.event_day + 30, false) AS eligible,
       EXISTS (SELECT 1 FROM @extschema@.voice_sessions v
                WHERE v.guild_id = f.guild_id AND v.user_id = f.user_id AND v.started_at >= f.day_30)
       OR EXISTS (SELECT 1 FROM @extschema@.raw_messages x
                   WHERE x.guild_id = f.guild_id AND x.user_id = f.user_id AND x.sent_at >= f.day_30 AND NOT x.is_bot)
       OR EXISTS (SELECT 1 FROM @extschema@.raw_point_transactions x
                   WHERE x.guild_id = f.guild_id AND x.user_id = f.user_id AND x.tx_ts >= f.day_30) AS retained_d30
FROM (SELECT DISTINCT ON (m.guild_id, m.user_id) m.guild_id, m.user_id, m.event_id, m.interested, m.in_voice,
             st.calendar_time_zone, d.event_day,
             (d.event_day + 30)::timestamp AT TIME ZONE st.calendar_time_zone AS day_30
        FROM @extschema@.event_funnel_members m
        JOIN @extschema@.events e ON e.event_id = m.event_id
       CROSS JOIN LATERAL @extschema@.settings_for(m.guild_id) st
       CROSS JOIN LATERAL (SELECT (e.actual_start AT TIME ZONE st.calendar_time_zone)::date AS event_day) d
       ORDER BY m.guild_id, m.user_id, e.actual_start, m.event_id) f
LEFT JOIN @extschema@.voice_build_guilds b ON b.guild_id = f.guild_id;
COMMENT ON VIEW event_retention_d30 IS
    'Do members who attend keep coming? One row per member of the funnel (event_funnel_members): their first started event there, whether they were interested and attended it in voice (cohort attended), interested but not in voice (absent) or in voice without interest (walk_in), and D30: retained_d30 is true when they started a voice session (voice_sessions, AFK included), sent a message or made a point transaction on the 30th calendar day after that event''s day (guild time zone) or later. eligible is false while the guild''s data (its voice horizon, voice_build_guilds.horizon) does not reach that 30th day: those rows cannot show retention yet and are left out of rates. Compare with: SELECT cohort, avg(retained_d30::int) FROM guildstats.event_retention_d30 WHERE eligible GROUP BY cohort;';
COMMENT ON COLUMN event_retention_d30.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_retention_d30.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN event_retention_d30.event_id IS 'The member''s first started event in the funnel (interested in it or in voice during it).';
COMMENT ON COLUMN event_retention_d30.event_day IS 'Calendar day of that event''s actual start in the guild''s time zone.';
COMMENT ON COLUMN event_retention_d30.cohort IS 'attended (interested and in voice at that event), absent (interested, not in voice) or walk_in (in voice without having marked interest).';
COMMENT ON COLUMN event_retention_d30.eligible IS 'The guild''s voice horizon (voice_build_guilds.horizon, its latest heartbeat) is on event_day + 30 or later, so retention can be observed.';
COMMENT ON COLUMN event_retention_d30.retained_d30 IS 'The member started a voice session, sent a message (not as a bot) or made a point transaction on event_day + 30 or any later day.';
