-- Voice sessions: one stint of one user in one voice channel, built from raw_voice_events,
-- raw_voice_snapshots and raw_heartbeats by build_voice_sessions(). The rules are those of the
-- Rust sessionizer (guildstats_engine::voice); this file holds the tables and the incremental
-- bookkeeping around it.

CREATE TABLE voice_sessions (
    guild_id           bigint           NOT NULL,
    user_id            bigint           NOT NULL,
    channel_id         bigint           NOT NULL,
    started_at         timestamptz      NOT NULL,
    ended_at           timestamptz,
    end_reason         text,
    is_afk             boolean          NOT NULL,
    start_reason       text             NOT NULL,
    capped             boolean          NOT NULL,
    self_mute_seconds  double precision NOT NULL,
    self_deaf_seconds  double precision NOT NULL,
    PRIMARY KEY (guild_id, user_id, started_at),
    CONSTRAINT voice_sessions_end_after_start CHECK (ended_at > started_at),
    CONSTRAINT voice_sessions_end_reason_known
        CHECK (end_reason IN ('leave', 'move', 'outage', 'snapshot', 'cap')),
    CONSTRAINT voice_sessions_start_reason_known CHECK (start_reason IN ('join', 'move', 'snapshot')),
    CONSTRAINT voice_sessions_open_has_no_end_reason CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
-- Sessions whose end no raw event shows (open, or ended by an outage, a snapshot or the cap):
-- the few a guild-wide change (a late heartbeat, a snapshot) can reach without any event of
-- their user after it. Kept small on purpose: every index on this table is paid for by every
-- build's writes.
CREATE INDEX voice_sessions_unobserved_end_idx ON voice_sessions (guild_id, ended_at)
    WHERE end_reason IS NULL OR end_reason IN ('outage', 'snapshot', 'cap');

COMMENT ON TABLE voice_sessions IS
    'One stint of one user in one voice channel. A move ends one session and starts the next at the same instant; sessions in the AFK channel are flagged is_afk and never count as active time; ignored channels have none. Open sessions have ended_at NULL and are rewritten by the next build. Built by build_voice_sessions(); never edit by hand.';
COMMENT ON COLUMN voice_sessions.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN voice_sessions.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN voice_sessions.channel_id IS 'The voice channel.';
COMMENT ON COLUMN voice_sessions.started_at IS 'When the stint began (a join, a move, or a reconnect snapshot that listed the user).';
COMMENT ON COLUMN voice_sessions.ended_at IS 'When the stint ended; NULL while it is still open at the build''s horizon (the guild''s latest heartbeat).';
COMMENT ON COLUMN voice_sessions.end_reason IS 'leave (left voice or went to an ignored channel), move (to another channel; the next session starts at ended_at), outage (the bot went silent: ends at the last heartbeat before the silence), snapshot (a reconnect snapshot did not list the user here), cap (open longer than settings.session_cap); NULL while open.';
COMMENT ON COLUMN voice_sessions.is_afk IS 'The channel is the guild''s AFK channel: the time never counts as active.';
COMMENT ON COLUMN voice_sessions.start_reason IS 'join, move (from the session that ended at started_at) or snapshot (a reconnect snapshot listed the user).';
COMMENT ON COLUMN voice_sessions.capped IS 'Closed by the session cap rather than by anything observed.';
COMMENT ON COLUMN voice_sessions.self_mute_seconds IS 'Seconds of the session with the microphone self-muted (for an open session, up to the horizon).';
COMMENT ON COLUMN voice_sessions.self_deaf_seconds IS 'Seconds of the session self-deafened, hearing nothing (for an open session, up to the horizon).';

SELECT pg_catalog.pg_extension_config_dump('voice_sessions', '');

CREATE TABLE voice_build_guilds (
    guild_id              bigint      PRIMARY KEY,
    horizon               timestamptz NOT NULL,
    has_heartbeats        boolean     NOT NULL,
    settings_fingerprint  text        NOT NULL,
    built_at              timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE voice_build_guilds IS
    'What build_voice_sessions() last built per guild: the next build rebuilds only what new raw rows touch, unless the settings changed (then the guild is rebuilt whole).';
COMMENT ON COLUMN voice_build_guilds.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN voice_build_guilds.horizon IS 'The build''s "now" for the guild: its latest discord heartbeat, or without heartbeats its latest voice event or snapshot. Open sessions are open at this instant.';
COMMENT ON COLUMN voice_build_guilds.has_heartbeats IS 'The guild had heartbeats at the last build (when they first appear, the guild is rebuilt whole).';
COMMENT ON COLUMN voice_build_guilds.settings_fingerprint IS 'The voice settings the sessions were built with (AFK channel, ignored channels, cap, outage threshold), as text; a change rebuilds the guild.';
COMMENT ON COLUMN voice_build_guilds.built_at IS 'When the guild was last built.';

SELECT pg_catalog.pg_extension_config_dump('voice_build_guilds', '');

-- The voice states a snapshot lists, read defensively: a raw row holds what the gateway sent,
-- and one malformed entry must not stop every build. Entries that are not objects, or whose
-- user or channel is not a snowflake (a number, or a string of digits, within bigint), are
-- skipped; flags that are not JSON booleans count as false.
CREATE FUNCTION _snapshot_states(voice_states jsonb)
RETURNS TABLE (user_id bigint, channel_id bigint, self_mute boolean, self_deaf boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT u.id, c.id,
           coalesce(CASE jsonb_typeof(v->'self_mute') WHEN 'boolean' THEN (v->'self_mute')::boolean END, false),
           coalesce(CASE jsonb_typeof(v->'self_deaf') WHEN 'boolean' THEN (v->'self_deaf')::boolean END, false)
    FROM jsonb_array_elements(CASE jsonb_typeof(voice_states) WHEN 'array' THEN voice_states ELSE '[]' END) v
    CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(v) = 'object' AND (v->>'user_id') ~ '^[0-9]{1,19}$'
                                     AND (v->>'user_id')::numeric <= 9223372036854775807
                                    THEN (v->>'user_id')::bigint END AS id) u
    CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(v) = 'object' AND (v->>'channel_id') ~ '^[0-9]{1,19}$'
                                     AND (v->>'channel_id')::numeric <= 9223372036854775807
                                    THEN (v->>'channel_id')::bigint END AS id) c
    WHERE u.id IS NOT NULL AND c.id IS NOT NULL
$$;
COMMENT ON FUNCTION _snapshot_states(jsonb) IS
    'Internal to build_voice_sessions(): the (user, channel, self_mute, self_deaf) entries of a raw_voice_snapshots.voice_states array; malformed entries are skipped so that they cannot stop the builds.';

CREATE FUNCTION _voice_settings_fingerprint(guild_id bigint)
RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT concat_ws('|', s.afk_channel_id,
                     array_to_string(ARRAY(SELECT DISTINCT c FROM unnest(s.ignored_channel_ids) c ORDER BY c), ','),
                     extract(epoch FROM s.session_cap), extract(epoch FROM s.outage_after))
    FROM @extschema@.settings_for(_voice_settings_fingerprint.guild_id) s;
END;
COMMENT ON FUNCTION _voice_settings_fingerprint(bigint) IS
    'Internal to build_voice_sessions(): the voice settings in force for a guild as one text value, to notice when they change.';

-- Rebuilds one guild (or some of its users) and reports what changed. Internal.
CREATE FUNCTION _voice_write_sessions(guild_id bigint, horizon timestamptz,
                                      users bigint[], dirty_from timestamptz[],
                                      fresh boolean DEFAULT false,
                                      OUT users_rebuilt bigint, OUT events_read bigint, OUT sessions_opened bigint,
                                      OUT sessions_closed bigint, OUT sessions_updated bigint,
                                      OUT sessions_removed bigint, OUT changed_from timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g       bigint := _voice_write_sessions.guild_id;
    s       record;
    old     @extschema@.voice_sessions[];
    restart_users bigint[];
    restart_at    timestamptz[];
    marks_from    timestamptz;
    a_user        bigint[];
    a_channel     bigint[];
    a_start       timestamptz[];
    a_end         timestamptz[];
    a_start_reason text[];
    a_end_reason  text[];
    a_afk         boolean[];
    a_capped      boolean[];
    a_mute        double precision[];
    a_deaf        double precision[];
BEGIN
    SELECT * INTO s FROM @extschema@.settings_for(g);
    IF users IS NULL THEN
        -- The whole guild. A full rebuild's plan has emptied the table (fresh): nothing to
        -- delete, and with the indexes dropped until the builder's finish, looking would read
        -- every guild written so far.
        IF NOT fresh THEN
            DELETE FROM @extschema@.voice_sessions v WHERE v.guild_id = g;
        END IF;
        -- Computed and written by the Rust step through COPY's bulk write (multi-row writes,
        -- constraints, indexes and triggers as an INSERT). COPY knows nothing of row-level
        -- security: under a policy that applies to the caller, the rows come as column arrays
        -- and an INSERT writes them through the policy.
        IF NOT pg_catalog.row_security_active('@extschema@.voice_sessions') THEN
            SELECT w.users, w.events_read, w.sessions_written INTO users_rebuilt, events_read, sessions_opened
              FROM @extschema@._voice_write_guild_sessions(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                           s.session_cap, s.outage_after) w;
        ELSE
            -- The sessions come as one row of column arrays that the insert unnests in its select
            -- list: returned a row at a time, or read from a function in FROM (which stores its
            -- whole result first), they cost more than the writing itself.
            SELECT (a.x).users, (a.x).events_read, (a.x).user_id, (a.x).channel_id, (a.x).started_at, (a.x).ended_at,
                   (a.x).start_reason, (a.x).end_reason, (a.x).is_afk, (a.x).capped,
                   (a.x).self_mute_seconds, (a.x).self_deaf_seconds
              INTO users_rebuilt, events_read, a_user, a_channel, a_start, a_end, a_start_reason, a_end_reason,
                   a_afk, a_capped, a_mute, a_deaf
              FROM (SELECT @extschema@._voice_sessionize_arrays(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                                                s.session_cap, s.outage_after) AS x
                    OFFSET 0) a;
            INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                    is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
            SELECT g, unnest(a_user), unnest(a_channel), unnest(a_start), unnest(a_end), unnest(a_end_reason),
                   unnest(a_afk), unnest(a_start_reason), unnest(a_capped), unnest(a_mute), unnest(a_deaf);
            GET DIAGNOSTICS sessions_opened = ROW_COUNT;
        END IF;
        sessions_closed := 0; sessions_updated := 0; sessions_removed := 0;
        changed_from := '-infinity';
        RETURN;
    END IF;

    -- Each touched user is walked again from their last leave before the earliest instant the
    -- new rows touch: after a leave the user is out of voice whatever came before, so the
    -- walk can restart there from an empty state. Their sessions from that leave on are
    -- replaced. (Restarting at the touched instant itself would not do: the user may be in a
    -- session there, even one an outage made the old walk drop.) A user who never left starts
    -- at their first observation: their first event or, for one a snapshot listed first, their
    -- first session (a listing that opened none left them out of voice, as if unseen).
    --
    -- One index probe per user (two for a user who never left); none reads the history.
    SELECT array_agg(a.user_id ORDER BY a.user_id), array_agg(a.restart ORDER BY a.user_id)
      INTO restart_users, restart_at
      FROM (SELECT t.user_id, r.restart
              FROM (SELECT x.user_id, min(x.at) AS touched_at
                      FROM unnest(users, dirty_from) AS x(user_id, at)
                     GROUP BY x.user_id) t
              CROSS JOIN LATERAL (
                  SELECT coalesce((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e
                                    WHERE e.guild_id = g AND e.user_id = t.user_id
                                      AND e.channel_id IS NULL AND e.event_ts < t.touched_at),
                                  least((SELECT min(e.event_ts) FROM @extschema@.raw_voice_events e
                                          WHERE e.guild_id = g AND e.user_id = t.user_id),
                                        (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                          WHERE v.guild_id = g AND v.user_id = t.user_id),
                                        t.touched_at)) AS restart) r) a;
    restart_users := coalesce(restart_users, '{}');
    restart_at := coalesce(restart_at, '{}');

    -- By row address, each user's sessions found through the primary key: a join the planner
    -- may turn into a scan of the whole table would cost the history.
    WITH removed AS (
        DELETE FROM @extschema@.voice_sessions v
        WHERE v.ctid = ANY (ARRAY(
            SELECT d.ctid
              FROM unnest(restart_users, restart_at) AS r(user_id, restart)
              CROSS JOIN LATERAL (SELECT o.ctid FROM @extschema@.voice_sessions o
                                   WHERE o.guild_id = g AND o.user_id = r.user_id AND o.started_at >= r.restart
                                  OFFSET 0) d))
        RETURNING v.*
    )
    SELECT coalesce(array_agg(d), '{}') INTO old FROM removed d;

    -- Guild-wide marks (heartbeats, snapshots) matter to a user only while they are in a
    -- channel, so the walk needs them from the user's first entry after the restart, not from
    -- the restart: a user back after months away needs the marks since their return, not the
    -- months. That entry is an event entering a channel (_voice_sessionize finds the first
    -- among the events it reads), an old session (a snapshot listing that opened one: the
    -- sessions just removed are those from the restarts on), or comes at the touched instant.
    marks_from := least((SELECT min(x.at) FROM unnest(dirty_from) AS x(at)),
                        (SELECT min(o.started_at) FROM unnest(old) o));

    users_rebuilt := coalesce(cardinality(restart_users), 0);
    events_read := NULL;  -- the plan of an incremental build counts the claimed events

    WITH fresh AS (
        INSERT INTO @extschema@.voice_sessions (guild_id, user_id, channel_id, started_at, ended_at, end_reason,
                                                is_afk, start_reason, capped, self_mute_seconds, self_deaf_seconds)
        SELECT g, n.user_id, n.channel_id, n.started_at, n.ended_at, n.end_reason,
               n.is_afk, n.start_reason, n.capped, n.self_mute_seconds, n.self_deaf_seconds
        FROM @extschema@._voice_sessionize(g, horizon, s.afk_channel_id, s.ignored_channel_ids,
                                           s.session_cap, s.outage_after, restart_users, restart_at, marks_from) n
        RETURNING *
    ), compared AS (
        SELECT f.started_at AS new_start, f.ended_at AS new_end, o.started_at AS old_start, o.ended_at AS old_end,
               (f.*)::text IS DISTINCT FROM (o.*)::text AS changed
        FROM fresh f
        LEFT JOIN unnest(old) o ON o.user_id = f.user_id AND o.started_at = f.started_at
    )
    SELECT count(*) FILTER (WHERE old_start IS NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND old_end IS NULL AND new_end IS NOT NULL),
           count(*) FILTER (WHERE old_start IS NOT NULL AND changed AND NOT (old_end IS NULL AND new_end IS NOT NULL)),
           cardinality(old) - count(old_start),
           least(min(new_start) FILTER (WHERE old_start IS NULL OR changed),
                 (SELECT min(o.started_at) FROM unnest(old) o
                   WHERE NOT EXISTS (SELECT 1 FROM compared c WHERE c.old_start = o.started_at AND c.new_start = o.started_at
                                       AND NOT c.changed)))
      INTO sessions_opened, sessions_closed, sessions_updated, sessions_removed, changed_from
      FROM compared;
END
$$;
COMMENT ON FUNCTION _voice_write_sessions(bigint, timestamptz, bigint[], timestamptz[], boolean) IS
    'Internal to build_voice_sessions(): rewrites the sessions of a whole guild (users NULL) or of the listed users from their last leave before dirty_from on, counts what changed, and returns the earliest start of a changed session; for a whole guild, also the number of raw voice events it read (NULL otherwise). fresh: the guild has no sessions (a full rebuild emptied the table), so there is nothing to delete.';

-- An incremental build is thousands of index probes that the planner costs as if they read
-- every row they might: JIT-compiling them took longer than running them. (A full build scans,
-- where JIT may pay.) The plan and each step turn it off for themselves and restore the caller's.

-- What the claims hold, and the guilds to build: those with new rows and those whose settings
-- changed since their last build.
CREATE FUNCTION _build_voice_sessions_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    event_ids        int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    snapshot_ids     int8multirange := @extschema@._claimed(claims, 'raw_voice_snapshots');
    beat_ids         int8multirange := @extschema@._claimed(claims, 'raw_heartbeats');
    events_read      bigint;
    snapshots_read   bigint;
    heartbeats_read  bigint;
    event_guilds     bigint[];
    snapshot_guilds  bigint[];
    beat_guilds      bigint[];
    caller_jit       text := pg_catalog.current_setting('jit');
    guilds           jsonb;
    index_ddl        text[];
    drop_ddl         text[];
    ddl              text;
    commented        boolean;
    indexes_to_create jsonb := '[]';
BEGIN
    IF _build_voice_sessions_plan.full THEN
        DELETE FROM @extschema@.voice_build_guilds;
        TRUNCATE @extschema@.voice_sessions;
        -- Every guild's rows go into the table that the TRUNCATE left empty and that this
        -- transaction holds exclusively, without its indexes: _build_voice_sessions_finish
        -- builds them once from all the rows after the last guild's step, which costs a
        -- fraction of maintaining them row by row. No other transaction can see the table in
        -- between, and a rollback brings the indexes back. Only a role that owns the table
        -- may drop and create its indexes; any other caller writes through them. One catalog
        -- read gives both the drop and the create statements.
        SELECT coalesce(array_agg(CASE WHEN c.oid IS NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid)
                                       ELSE format('ALTER TABLE @extschema@.voice_sessions ADD CONSTRAINT %I %s',
                                                   c.conname, pg_catalog.pg_get_constraintdef(c.oid)) END
                                  ORDER BY x.relname), '{}'),
               coalesce(array_agg(CASE WHEN c.oid IS NULL THEN format('DROP INDEX @extschema@.%I', x.relname)
                                       ELSE format('ALTER TABLE @extschema@.voice_sessions DROP CONSTRAINT %I', c.conname) END
                                  ORDER BY x.relname), '{}'),
               -- A comment on an index or its constraint would not survive the drop.
               bool_or(pg_catalog.obj_description(i.indexrelid, 'pg_class') IS NOT NULL
                       OR pg_catalog.obj_description(c.oid, 'pg_constraint') IS NOT NULL)
          INTO index_ddl, drop_ddl, commented
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid
          LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
         WHERE i.indrelid = '@extschema@.voice_sessions'::regclass;
        IF cardinality(index_ddl) > 0 AND NOT commented
           AND pg_catalog.pg_has_role((SELECT t.relowner FROM pg_catalog.pg_class t
                                        WHERE t.oid = '@extschema@.voice_sessions'::regclass), 'USAGE') THEN
            FOREACH ddl IN ARRAY drop_ddl LOOP
                EXECUTE ddl;
            END LOOP;
            indexes_to_create := to_jsonb(index_ddl);
        END IF;
    ELSE
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    -- One pass over each claim: how many rows, and which guilds they touch. A full rebuild
    -- claims every event and its steps read them all anyway: they count them (events_read),
    -- and the guilds come from one index probe per guild rather than a pass over the events.
    IF _build_voice_sessions_plan.full THEN
        events_read := 0;
        WITH RECURSIVE g(guild_id) AS (
            SELECT min(e.guild_id) FROM @extschema@.raw_voice_events e
            UNION ALL
            SELECT (SELECT min(e.guild_id) FROM @extschema@.raw_voice_events e WHERE e.guild_id > g.guild_id)
              FROM g WHERE g.guild_id IS NOT NULL)
        SELECT coalesce(array_agg(g.guild_id), '{}') INTO event_guilds FROM g WHERE g.guild_id IS NOT NULL;
    ELSE
        SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO events_read, event_guilds
          FROM (SELECT e.guild_id, count(*) AS n FROM @extschema@.raw_voice_events e
                 WHERE e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
                   AND (event_ids = int8multirange(range_merge(event_ids)) OR e.ingest_id <@ event_ids)
                 GROUP BY e.guild_id) c;
    END IF;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO snapshots_read, snapshot_guilds
      FROM (SELECT x.guild_id, count(*) AS n FROM @extschema@.raw_voice_snapshots x
             WHERE x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
               AND x.ingest_id <@ snapshot_ids
             GROUP BY x.guild_id) c;
    SELECT coalesce(sum(c.n), 0), coalesce(array_agg(c.guild_id), '{}') INTO heartbeats_read, beat_guilds
      FROM (SELECT b.guild_id, count(*) AS n FROM @extschema@.raw_heartbeats b
             WHERE b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1 AND b.ingest_id <@ beat_ids
               AND b.source = 'discord' AND b.guild_id IS NOT NULL
             GROUP BY b.guild_id) c;

    SELECT coalesce(jsonb_agg(t.guild_id ORDER BY t.guild_id), '[]') INTO guilds FROM (
        SELECT DISTINCT t.guild_id FROM unnest(event_guilds || snapshot_guilds || beat_guilds) AS t(guild_id)
        UNION
        SELECT d.guild_id FROM @extschema@.voice_build_guilds d
         WHERE d.settings_fingerprint IS DISTINCT FROM @extschema@._voice_settings_fingerprint(d.guild_id)
        ORDER BY 1
    ) t;
    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    RETURN jsonb_build_object('events_read', events_read, 'snapshots_read', snapshots_read,
                              'heartbeats_read', heartbeats_read, 'guilds', guilds,
                              'indexes_to_create', indexes_to_create);
END
$$;
COMMENT ON FUNCTION _build_voice_sessions_plan(jsonb, boolean) IS
    'Internal: the plan of build_voice_sessions (see guildstats.builders): empties the sessions on a full rebuild (and, for a caller who owns voice_sessions, drops its indexes, returning their statements as indexes_to_create for _build_voice_sessions_finish), counts the claimed rows (on a full rebuild, the steps count the events they read) and lists the guilds to build.';

-- After the last guild's step: the indexes the plan dropped, built from all the rows at once.
CREATE FUNCTION _build_voice_sessions_finish(claims jsonb, full boolean, plan jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ddl text;
BEGIN
    FOR ddl IN
        SELECT d FROM jsonb_array_elements_text(CASE jsonb_typeof(plan->'indexes_to_create')
                                                     WHEN 'array' THEN plan->'indexes_to_create' ELSE '[]' END) d
    LOOP
        -- Only what the plan can have written: an index or a constraint of voice_sessions.
        IF ddl !~ '^CREATE (UNIQUE )?INDEX \S+ ON @extschema@\.voice_sessions ' AND ddl !~ '^ALTER TABLE @extschema@\.voice_sessions ADD CONSTRAINT ' THEN
            RAISE EXCEPTION 'guildstats: _build_voice_sessions_finish: % is not an index of voice_sessions', ddl;
        END IF;
        EXECUTE ddl;
    END LOOP;
    RETURN '{}';
END
$$;
COMMENT ON FUNCTION _build_voice_sessions_finish(jsonb, boolean, jsonb) IS
    'Internal: the finish of build_voice_sessions (see guildstats.builders): creates the indexes and constraints of voice_sessions that the plan dropped for a full rebuild (plan->indexes_to_create), after every guild''s rows are in.';

CREATE FUNCTION _build_voice_sessions_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g             bigint := _build_voice_sessions_step.guild;
    event_ids     int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    snapshot_ids  int8multirange := @extschema@._claimed(claims, 'raw_voice_snapshots');
    beat_ids      int8multirange := @extschema@._claimed(claims, 'raw_heartbeats');
    done          record;
    written       record;
    horizon       timestamptz;
    beats_exist   boolean;
    fingerprint   text;
    whole_guild   boolean;
    guild_dirty   timestamptz;
    users         bigint[];
    dirty_from    timestamptz[];
    changed       timestamptz;
    caller_jit    text := pg_catalog.current_setting('jit');
BEGIN
    IF NOT _build_voice_sessions_step.full THEN
        PERFORM pg_catalog.set_config('jit', 'off', true);
    END IF;
    SELECT max(b.beat_at) INTO horizon FROM @extschema@.raw_heartbeats b
     WHERE b.source = 'discord' AND b.guild_id = g;
    beats_exist := horizon IS NOT NULL;
    IF NOT beats_exist THEN
        SELECT greatest((SELECT max(e.event_ts) FROM @extschema@.raw_voice_events e WHERE e.guild_id = g),
                        (SELECT max(x.taken_at) FROM @extschema@.raw_voice_snapshots x WHERE x.guild_id = g))
          INTO horizon;
    END IF;
    IF horizon IS NULL THEN
        PERFORM pg_catalog.set_config('jit', caller_jit, true);
        RETURN '{}';  -- heartbeats of another source only: nothing to build
    END IF;
    fingerprint := @extschema@._voice_settings_fingerprint(g);
    SELECT * INTO done FROM @extschema@.voice_build_guilds d WHERE d.guild_id = g;
    whole_guild := done IS NULL OR done.settings_fingerprint IS DISTINCT FROM fingerprint
                   OR done.has_heartbeats IS DISTINCT FROM beats_exist OR horizon < done.horizon;

    IF whole_guild THEN
        users := NULL;
        dirty_from := NULL;
    ELSE
        -- Guild-wide changes reach every user in a session at or after them: a new snapshot,
        -- heartbeats that change the outages (from the last old beat before the earliest new
        -- one), and the move of the horizon itself.
        SELECT least(done.horizon,
                     (SELECT min(x.taken_at) FROM @extschema@.raw_voice_snapshots x
                       WHERE x.guild_id = g
                         AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                         AND x.ingest_id <@ snapshot_ids),
                     (SELECT coalesce((SELECT max(o.beat_at) FROM @extschema@.raw_heartbeats o
                                        WHERE o.source = 'discord' AND o.guild_id = g
                                          AND o.beat_at < nb.first_new
                                          AND NOT (o.ingest_id <@ beat_ids)),
                                      nb.first_new)
                        FROM (SELECT min(b.beat_at) AS first_new FROM @extschema@.raw_heartbeats b
                               WHERE b.source = 'discord' AND b.guild_id = g
                                 AND b.ingest_id BETWEEN lower(beat_ids) AND upper(beat_ids) - 1
                                 AND b.ingest_id <@ beat_ids) nb))
          INTO guild_dirty;
        SELECT array_agg(t.user_id), array_agg(t.at) INTO users, dirty_from
          FROM (SELECT e.user_id, min(e.event_ts) AS at FROM @extschema@.raw_voice_events e
                 WHERE e.guild_id = g
                   AND e.ingest_id BETWEEN lower(event_ids) AND upper(event_ids) - 1
                   AND e.ingest_id <@ event_ids
                 GROUP BY e.user_id
                UNION ALL
                SELECT v.user_id, x.taken_at
                  FROM @extschema@.raw_voice_snapshots x
                  CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                 WHERE x.guild_id = g
                   AND x.ingest_id BETWEEN lower(snapshot_ids) AND upper(snapshot_ids) - 1
                   AND x.ingest_id <@ snapshot_ids
                UNION ALL
                -- Sessions that end after the change without an event of their user after
                -- it (a leave or a move is such an event, and is found just below).
                SELECT v.user_id, guild_dirty FROM @extschema@.voice_sessions v
                 WHERE v.guild_id = g AND (v.ended_at >= guild_dirty OR v.ended_at IS NULL)
                   AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))
                UNION ALL
                -- Users seen after a guild-wide change may have had sessions the old walk
                -- dropped (begun inside what looked like an outage): walk them again too.
                SELECT DISTINCT e.user_id, guild_dirty FROM @extschema@.raw_voice_events e
                 WHERE e.guild_id = g AND e.event_ts >= guild_dirty
                UNION ALL
                SELECT DISTINCT v.user_id, guild_dirty
                  FROM @extschema@.raw_voice_snapshots x
                  CROSS JOIN LATERAL @extschema@._snapshot_states(x.voice_states) v
                 WHERE x.guild_id = g AND x.taken_at >= guild_dirty
               ) t;
        users := coalesce(users, '{}');
        dirty_from := coalesce(dirty_from, '{}');
    END IF;

    SELECT w.* INTO written
      FROM @extschema@._voice_write_sessions(g, horizon, users, dirty_from,
                                             _build_voice_sessions_step.full) w;
    changed := written.changed_from;
    -- Open sessions grow with the horizon even when nothing else changed. (Nothing starts
    -- before a whole guild's '-infinity', and during a full rebuild the table may have no
    -- index to find them by.)
    IF changed IS DISTINCT FROM '-infinity' THEN
        SELECT least(changed, (SELECT min(v.started_at) FROM @extschema@.voice_sessions v
                                WHERE v.guild_id = g AND v.ended_at IS NULL
                                  AND (v.end_reason IS NULL OR v.end_reason IN ('outage', 'snapshot', 'cap'))))
          INTO changed;
    END IF;
    PERFORM @extschema@._note_voice_change(g, changed);

    INSERT INTO @extschema@.voice_build_guilds AS d (guild_id, horizon, has_heartbeats, settings_fingerprint, built_at)
    VALUES (g, horizon, beats_exist, fingerprint, now())
    ON CONFLICT (guild_id) DO UPDATE
       SET horizon = EXCLUDED.horizon, has_heartbeats = EXCLUDED.has_heartbeats,
           settings_fingerprint = EXCLUDED.settings_fingerprint, built_at = EXCLUDED.built_at;

    PERFORM pg_catalog.set_config('jit', caller_jit, true);
    -- A full rebuild's plan leaves the events to count to the steps, which read them all.
    RETURN CASE WHEN _build_voice_sessions_step.full
                THEN jsonb_build_object('events_read', coalesce(written.events_read, 0)) ELSE '{}' END
        || jsonb_build_object('guilds_built', 1, 'users_rebuilt', written.users_rebuilt,
                              'sessions_opened', written.sessions_opened, 'sessions_closed', written.sessions_closed,
                              'sessions_updated', written.sessions_updated, 'sessions_removed', written.sessions_removed);
END
$$;
COMMENT ON FUNCTION _build_voice_sessions_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_voice_sessions (see guildstats.builders): rewrites one guild''s sessions from its earliest new observation on, or all of them when its settings, heartbeats or horizon changed, and tells the downstream builders from when.';

CREATE FUNCTION build_voice_sessions(full boolean DEFAULT false)
RETURNS TABLE (events_read bigint, snapshots_read bigint, heartbeats_read bigint,
               guilds_built integer, users_rebuilt bigint, sessions_opened bigint,
               sessions_closed bigint, sessions_updated bigint, sessions_removed bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_voice_sessions', $1))
        AS r(events_read bigint, snapshots_read bigint, heartbeats_read bigint,
             guilds_built integer, users_rebuilt bigint, sessions_opened bigint,
             sessions_closed bigint, sessions_updated bigint, sessions_removed bigint,
             elapsed interval, status text)
$$;
COMMENT ON FUNCTION build_voice_sessions(boolean) IS
    'Builds guildstats.voice_sessions from the raw voice events, snapshots and discord heartbeats that arrived since the last call, and returns one summary row. Incremental and exactly once: for every user a new observation touches, it rewrites the sessions from the earliest new observation on; the result never depends on arrival order and equals a full rebuild (full => true, or rebuild_voice_sessions()). Safe to call concurrently: a second caller gets status ''skipped: ...''. Must run in READ COMMITTED.';

CREATE FUNCTION rebuild_voice_sessions()
RETURNS TABLE (events_read bigint, snapshots_read bigint, heartbeats_read bigint,
               guilds_built integer, users_rebuilt bigint, sessions_opened bigint,
               sessions_closed bigint, sessions_updated bigint, sessions_removed bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT * FROM @extschema@.build_voice_sessions(full => true);
END;
COMMENT ON FUNCTION rebuild_voice_sessions() IS
    'Throws away every voice session and builds them again from all raw rows (the same as build_voice_sessions(full => true)).';
