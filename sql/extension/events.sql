-- Scheduled events and who attended them, built by build_event_attendance().

-- What changed in voice_sessions since a downstream builder last looked, per guild: the voice
-- builder records the earliest instant it rewrote; attendance and rollups recompute from there.
CREATE TABLE voice_session_changes (
    consumer      text        NOT NULL,
    guild_id      bigint      NOT NULL,
    changed_from  timestamptz NOT NULL,
    PRIMARY KEY (consumer, guild_id)
);
COMMENT ON TABLE voice_session_changes IS
    'Work queue between builders: build_voice_sessions() records, per downstream builder (consumer) and guild, the earliest instant at which it rewrote sessions; the consumer recomputes from there and deletes the row in the same transaction.';
COMMENT ON COLUMN voice_session_changes.consumer IS 'The downstream builder: build_event_attendance, build_rollups or build_voice_copresence.';
COMMENT ON COLUMN voice_session_changes.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN voice_session_changes.changed_from IS 'Sessions overlapping this instant or later may have changed.';
SELECT pg_catalog.pg_extension_config_dump('voice_session_changes', '');

CREATE FUNCTION _note_voice_change(guild_id bigint, changed_from timestamptz)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO @extschema@.voice_session_changes AS c (consumer, guild_id, changed_from)
    SELECT consumer, _note_voice_change.guild_id, _note_voice_change.changed_from
    FROM unnest(ARRAY['build_event_attendance', 'build_rollups', 'build_voice_copresence']) AS consumer
    WHERE _note_voice_change.changed_from IS NOT NULL
    ON CONFLICT (consumer, guild_id) DO UPDATE SET changed_from = least(c.changed_from, EXCLUDED.changed_from);
END;
COMMENT ON FUNCTION _note_voice_change(bigint, timestamptz) IS
    'Internal to the builders: tells the downstream builders that a guild''s voice sessions from changed_from on may have changed.';

CREATE TABLE events (
    guild_id           bigint      NOT NULL,
    event_id           bigint      PRIMARY KEY,
    name               text        NOT NULL,
    entity_type        text        NOT NULL,
    channel_id         bigint,
    status             text        NOT NULL,
    is_cancelled       boolean     NOT NULL,
    scheduled_start    timestamptz,
    scheduled_end      timestamptz,
    actual_start       timestamptz,
    actual_end         timestamptz,
    first_observed_at  timestamptz NOT NULL,
    last_observed_at   timestamptz NOT NULL
);
CREATE INDEX events_guild_start_idx ON events (guild_id, actual_start);

COMMENT ON TABLE events IS
    'One row per Discord scheduled event, in its latest observed state, with when it really started and ended. Built by build_event_attendance() from raw_scheduled_events.';
COMMENT ON COLUMN events.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN events.event_id IS 'Discord scheduled-event snowflake.';
COMMENT ON COLUMN events.name IS 'Title, as last observed.';
COMMENT ON COLUMN events.entity_type IS 'voice, stage or external, as last observed.';
COMMENT ON COLUMN events.channel_id IS 'The event''s channel as last observed; NULL (external events): time in any voice channel of the guild counts.';
COMMENT ON COLUMN events.status IS 'scheduled, active, completed or canceled: the latest observed status.';
COMMENT ON COLUMN events.is_cancelled IS 'The event was cancelled (it is kept, with no attendance unless it had started).';
COMMENT ON COLUMN events.scheduled_start IS 'Announced start, as last observed.';
COMMENT ON COLUMN events.scheduled_end IS 'Announced end, as last observed.';
COMMENT ON COLUMN events.actual_start IS 'The first observation with status active; NULL if it never started.';
COMMENT ON COLUMN events.actual_end IS 'The first observation with status completed or canceled after the actual start; NULL while running.';
COMMENT ON COLUMN events.first_observed_at IS 'First observation of the event.';
COMMENT ON COLUMN events.last_observed_at IS 'Latest observation of the event.';
SELECT pg_catalog.pg_extension_config_dump('events', '');

CREATE TABLE event_attendance (
    event_id         bigint           NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    guild_id         bigint           NOT NULL,
    user_id          bigint           NOT NULL,
    first_join       timestamptz      NOT NULL,
    last_leave       timestamptz,
    overlap_seconds  double precision NOT NULL,
    joined_on_time   boolean          NOT NULL,
    PRIMARY KEY (event_id, user_id)
);
CREATE INDEX event_attendance_user_idx ON event_attendance (guild_id, user_id);

COMMENT ON TABLE event_attendance IS
    'One row per member who spent time in an event''s channel (any voice channel of the guild for events without one) while it ran. AFK time never counts.';
COMMENT ON COLUMN event_attendance.event_id IS 'The event (events.event_id).';
COMMENT ON COLUMN event_attendance.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN event_attendance.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN event_attendance.first_join IS 'Start of the member''s first voice session that overlaps the event (may be before the event started).';
COMMENT ON COLUMN event_attendance.last_leave IS 'End of the member''s last voice session that overlaps the event; NULL while still in it.';
COMMENT ON COLUMN event_attendance.overlap_seconds IS 'Seconds the member was in the event''s channel while the event ran (a running event counts up to the voice horizon).';
COMMENT ON COLUMN event_attendance.joined_on_time IS 'The member was there at the actual start or joined within settings.event_grace of it.';
SELECT pg_catalog.pg_extension_config_dump('event_attendance', '');

-- The guilds to build: those with new observations, every guild when starting over, and those
-- whose voice sessions changed.
CREATE FUNCTION _build_event_attendance_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    event_ids  int8multirange := @extschema@._claimed(claims, 'raw_scheduled_events');
BEGIN
    IF _build_event_attendance_plan.full THEN
        DELETE FROM @extschema@.voice_session_changes c WHERE c.consumer = 'build_event_attendance';
        TRUNCATE @extschema@.event_attendance, @extschema@.events;
    END IF;
    RETURN jsonb_build_object(
        'observations_read',
        (SELECT count(*) FROM @extschema@.raw_scheduled_events r
          WHERE r.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1 AND r.ingest_id <@ event_ids),
        'guilds', coalesce((SELECT jsonb_agg(DISTINCT t.guild_id ORDER BY t.guild_id) FROM (
            SELECT r.guild_id FROM @extschema@.raw_scheduled_events r
             WHERE r.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1 AND r.ingest_id <@ event_ids
            UNION
            SELECT r.guild_id FROM @extschema@.raw_scheduled_events r WHERE _build_event_attendance_plan.full
            UNION
            SELECT c.guild_id FROM @extschema@.voice_session_changes c
             WHERE c.consumer = 'build_event_attendance') t), '[]'));
END
$$;
COMMENT ON FUNCTION _build_event_attendance_plan(jsonb, boolean) IS
    'Internal: the plan of build_event_attendance (see guildstats.builders): empties events and attendance on a full rebuild, counts the claimed observations and lists the guilds to build.';

CREATE FUNCTION _build_event_attendance_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    event_ids        int8multirange := @extschema@._claimed(claims, 'raw_scheduled_events');
    touched          bigint[];
    events_built     bigint;
    attendance_rows  bigint;
BEGIN
    -- The guild's events with new observations, all of them when starting over, and those whose
    -- window reaches into changed voice sessions (running events always do).
    SELECT array_agg(DISTINCT t.event_id) INTO touched FROM (
        SELECT r.event_id FROM @extschema@.raw_scheduled_events r
         WHERE r.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1 AND r.ingest_id <@ event_ids
           AND r.guild_id = _build_event_attendance_step.guild
        UNION ALL
        SELECT r.event_id FROM @extschema@.raw_scheduled_events r
         WHERE _build_event_attendance_step.full AND r.guild_id = _build_event_attendance_step.guild
        UNION ALL
        SELECT e.event_id FROM @extschema@.events e
          JOIN @extschema@.voice_session_changes c
            ON c.consumer = 'build_event_attendance' AND c.guild_id = e.guild_id
         WHERE e.guild_id = _build_event_attendance_step.guild
           AND e.actual_start IS NOT NULL AND (e.actual_end IS NULL OR e.actual_end > c.changed_from)
    ) t;
    DELETE FROM @extschema@.voice_session_changes c
     WHERE c.consumer = 'build_event_attendance' AND c.guild_id = _build_event_attendance_step.guild;
    touched := coalesce(touched, '{}');

    -- Latest state, and actual start and end from the status changes.
    INSERT INTO @extschema@.events AS ev (guild_id, event_id, name, entity_type, channel_id, status, is_cancelled,
                                          scheduled_start, scheduled_end, actual_start, actual_end,
                                          first_observed_at, last_observed_at)
    SELECT l.guild_id, l.event_id, l.name, l.entity_type, l.channel_id, l.status, l.status = 'canceled',
           l.scheduled_start, l.scheduled_end, s.actual_start,
           (SELECT min(r.observed_at) FROM @extschema@.raw_scheduled_events r
             WHERE r.event_id = l.event_id AND r.status IN ('completed', 'canceled')
               AND r.observed_at > s.actual_start),
           s.first_observed_at, s.last_observed_at
    FROM unnest(touched) AS t(event_id)
    CROSS JOIN LATERAL (SELECT * FROM @extschema@.raw_scheduled_events r WHERE r.event_id = t.event_id
                        ORDER BY r.observed_at DESC, r.ingest_id DESC LIMIT 1) l
    CROSS JOIN LATERAL (SELECT min(r.observed_at) FILTER (WHERE r.status = 'active') AS actual_start,
                               min(r.observed_at) AS first_observed_at, max(r.observed_at) AS last_observed_at
                        FROM @extschema@.raw_scheduled_events r WHERE r.event_id = t.event_id) s
    ON CONFLICT (event_id) DO UPDATE
       SET guild_id = EXCLUDED.guild_id, name = EXCLUDED.name, entity_type = EXCLUDED.entity_type,
           channel_id = EXCLUDED.channel_id, status = EXCLUDED.status, is_cancelled = EXCLUDED.is_cancelled,
           scheduled_start = EXCLUDED.scheduled_start, scheduled_end = EXCLUDED.scheduled_end,
           actual_start = EXCLUDED.actual_start, actual_end = EXCLUDED.actual_end,
           first_observed_at = EXCLUDED.first_observed_at, last_observed_at = EXCLUDED.last_observed_at;
    GET DIAGNOSTICS events_built = ROW_COUNT;

    DELETE FROM @extschema@.event_attendance a WHERE a.event_id = ANY (touched);
    INSERT INTO @extschema@.event_attendance (event_id, guild_id, user_id, first_join, last_leave,
                                              overlap_seconds, joined_on_time)
    SELECT w.event_id, w.guild_id, v.user_id, min(v.started_at),
           CASE WHEN bool_or(v.ended_at IS NULL) THEN NULL ELSE max(v.ended_at) END,
           sum(extract(epoch FROM least(coalesce(v.ended_at, w.horizon), w.window_end)
                                  - greatest(v.started_at, w.actual_start)))::double precision,
           min(v.started_at) <= w.actual_start + w.event_grace
    FROM (SELECT e.event_id, e.guild_id, e.channel_id, e.actual_start, st.event_grace, b.horizon,
                 coalesce(e.actual_end, b.horizon) AS window_end
            FROM @extschema@.events e
            JOIN @extschema@.voice_build_guilds b ON b.guild_id = e.guild_id
            CROSS JOIN LATERAL @extschema@.settings_for(e.guild_id) st
           WHERE e.event_id = ANY (touched) AND e.actual_start IS NOT NULL) w
    JOIN @extschema@.voice_sessions v
      ON v.guild_id = w.guild_id AND NOT v.is_afk
     AND (w.channel_id IS NULL OR v.channel_id = w.channel_id)
     AND v.started_at < w.window_end
     AND coalesce(v.ended_at, w.horizon) > w.actual_start
    GROUP BY w.event_id, w.guild_id, v.user_id, w.actual_start, w.event_grace
    HAVING sum(extract(epoch FROM least(coalesce(v.ended_at, w.horizon), w.window_end)
                                  - greatest(v.started_at, w.actual_start))) > 0;
    GET DIAGNOSTICS attendance_rows = ROW_COUNT;

    -- The weekly and monthly rollups count attendance: refresh them from these events on.
    INSERT INTO @extschema@.voice_session_changes AS c (consumer, guild_id, changed_from)
    SELECT 'build_rollups', e.guild_id, min(coalesce(e.actual_start, e.first_observed_at))
    FROM @extschema@.events e WHERE e.event_id = ANY (touched)
    GROUP BY e.guild_id
    ON CONFLICT (consumer, guild_id) DO UPDATE SET changed_from = least(c.changed_from, EXCLUDED.changed_from);

    RETURN jsonb_build_object('events_built', events_built, 'attendance_rows', attendance_rows);
END
$$;
COMMENT ON FUNCTION _build_event_attendance_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_event_attendance (see guildstats.builders): rebuilds one guild''s events that have new observations or overlap changed voice sessions, and their attendance.';

CREATE FUNCTION build_event_attendance(full boolean DEFAULT false)
RETURNS TABLE (observations_read bigint, events_built bigint, attendance_rows bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_event_attendance', $1))
        AS r(observations_read bigint, events_built bigint, attendance_rows bigint, elapsed interval, status text)
$$;
COMMENT ON FUNCTION build_event_attendance(boolean) IS
    'Builds guildstats.events from the scheduled-event observations that arrived since the last call and recomputes event_attendance for those events and for events whose time overlaps voice sessions build_voice_sessions() changed. Returns one summary row; full => true starts over. Run it after build_voice_sessions() (build_all() does).';
