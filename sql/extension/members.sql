-- Members: one row per (guild, user) ever seen, kept current by build_members().

CREATE TABLE members (
    guild_id      bigint      NOT NULL,
    user_id       bigint      NOT NULL,
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    joined_at     timestamptz,
    left_at       timestamptz,
    is_active     boolean     NOT NULL,
    display_name  text,
    is_bot        boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (guild_id, user_id)
);

COMMENT ON TABLE members IS
    'One row per user ever seen in a guild (voice, messages, membership changes, points), kept current by build_members().';
COMMENT ON COLUMN members.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN members.user_id IS 'Discord user snowflake.';
COMMENT ON COLUMN members.first_seen IS 'Earliest activity of any kind: a voice event, a message, a membership change or a point transaction.';
COMMENT ON COLUMN members.last_seen IS 'Latest activity of any kind.';
COMMENT ON COLUMN members.joined_at IS 'The latest join (raw_member_events); NULL if no join was ever recorded (e.g. a member from before tracking began).';
COMMENT ON COLUMN members.left_at IS 'The latest leave or ban after the latest join; NULL while the user is a member.';
COMMENT ON COLUMN members.is_active IS 'The user is a member now: no leave or ban after their latest join.';
COMMENT ON COLUMN members.display_name IS 'The latest display name a membership change reported, if any.';
COMMENT ON COLUMN members.is_bot IS 'A membership change reported the account as a bot.';

SELECT pg_catalog.pg_extension_config_dump('members', '');

-- The guilds with new rows; a full rebuild starts from an empty table.
CREATE FUNCTION _build_members_plan(claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    voice_ids    int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    message_ids  int8multirange := @extschema@._claimed(claims, 'raw_messages');
    member_ids   int8multirange := @extschema@._claimed(claims, 'raw_member_events');
    point_ids    int8multirange := @extschema@._claimed(claims, 'raw_point_transactions');
BEGIN
    IF _build_members_plan.full THEN
        TRUNCATE @extschema@.members;
    END IF;
    RETURN jsonb_build_object('guilds', coalesce((SELECT jsonb_agg(DISTINCT a.guild_id ORDER BY a.guild_id) FROM (
        SELECT e.guild_id FROM @extschema@.raw_voice_events e
         WHERE e.ingest_id BETWEEN lower(voice_ids) AND upper(voice_ids) - 1 AND e.ingest_id <@ voice_ids
        UNION
        SELECT m.guild_id FROM @extschema@.raw_messages m
         WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1 AND m.ingest_id <@ message_ids
        UNION
        SELECT x.guild_id FROM @extschema@.raw_member_events x
         WHERE x.ingest_id BETWEEN lower(member_ids) AND upper(member_ids) - 1 AND x.ingest_id <@ member_ids
        UNION
        SELECT p.guild_id FROM @extschema@.raw_point_transactions p
         WHERE p.ingest_id BETWEEN lower(point_ids) AND upper(point_ids) - 1 AND p.ingest_id <@ point_ids) a), '[]'));
END
$$;
COMMENT ON FUNCTION _build_members_plan(jsonb, boolean) IS
    'Internal: the plan of build_members (see guildstats.builders): empties members on a full rebuild and lists the guilds with new raw rows.';

CREATE FUNCTION _build_members_step(guild bigint, claims jsonb, full boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    g            bigint := _build_members_step.guild;
    voice_ids    int8multirange := @extschema@._claimed(claims, 'raw_voice_events');
    message_ids  int8multirange := @extschema@._claimed(claims, 'raw_messages');
    member_ids   int8multirange := @extschema@._claimed(claims, 'raw_member_events');
    point_ids    int8multirange := @extschema@._claimed(claims, 'raw_point_transactions');
    rows_read        bigint;
    members_added    bigint;
    members_updated  bigint;
BEGIN
    -- Once per transaction: IF NOT EXISTS would say so in a NOTICE for every further guild.
    IF pg_catalog.to_regclass('pg_temp._guildstats_member_activity') IS NULL THEN
        CREATE TEMP TABLE _guildstats_member_activity (
            guild_id bigint, user_id bigint, first_seen timestamptz, last_seen timestamptz, rows bigint
        ) ON COMMIT DROP;
    END IF;
    TRUNCATE _guildstats_member_activity;
    INSERT INTO _guildstats_member_activity
    SELECT g, a.user_id, min(a.first_seen), max(a.last_seen), sum(a.n)
    FROM (SELECT e.user_id, min(e.event_ts) AS first_seen, max(e.event_ts) AS last_seen, count(*) AS n
            FROM @extschema@.raw_voice_events e
           WHERE e.ingest_id BETWEEN lower(voice_ids) AND upper(voice_ids) - 1 AND e.ingest_id <@ voice_ids
             AND e.guild_id = g
           GROUP BY 1
          UNION ALL
          SELECT m.user_id, min(m.sent_at), max(m.sent_at), count(*)
            FROM @extschema@.raw_messages m
           WHERE m.ingest_id BETWEEN lower(message_ids) AND upper(message_ids) - 1 AND m.ingest_id <@ message_ids
             AND m.guild_id = g
           GROUP BY 1
          UNION ALL
          SELECT x.user_id, min(x.event_ts), max(x.event_ts), count(*)
            FROM @extschema@.raw_member_events x
           WHERE x.ingest_id BETWEEN lower(member_ids) AND upper(member_ids) - 1 AND x.ingest_id <@ member_ids
             AND x.guild_id = g
           GROUP BY 1
          UNION ALL
          SELECT p.user_id, min(p.tx_ts), max(p.tx_ts), count(*)
            FROM @extschema@.raw_point_transactions p
           WHERE p.ingest_id BETWEEN lower(point_ids) AND upper(point_ids) - 1 AND p.ingest_id <@ point_ids
             AND p.guild_id = g
           GROUP BY 1) a
    GROUP BY a.user_id;
    SELECT coalesce(sum(a.rows), 0) INTO rows_read FROM _guildstats_member_activity a;

    -- Activity: earliest and latest of whatever arrived, merged with what is known.
    WITH upserted AS (
        INSERT INTO @extschema@.members AS m (guild_id, user_id, first_seen, last_seen, is_active)
        SELECT a.guild_id, a.user_id, a.first_seen, a.last_seen, true
        FROM _guildstats_member_activity a
        ON CONFLICT (guild_id, user_id) DO UPDATE
           SET first_seen = least(m.first_seen, EXCLUDED.first_seen),
               last_seen = greatest(m.last_seen, EXCLUDED.last_seen)
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
      INTO members_added, members_updated FROM upserted;

    -- Membership: recomputed from all membership changes of the users that have new ones.
    UPDATE @extschema@.members m
       SET joined_at = s.joined_at,
           left_at = s.left_at,
           is_active = s.left_at IS NULL,
           display_name = coalesce(s.display_name, m.display_name),
           is_bot = s.is_bot
      FROM (SELECT t.guild_id, t.user_id, j.joined_at,
                   (SELECT max(x.event_ts) FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id
                       AND x.event_type IN ('leave', 'ban')
                       AND (j.joined_at IS NULL OR x.event_ts > j.joined_at)) AS left_at,
                   (SELECT x.display_name FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id AND x.display_name IS NOT NULL
                     ORDER BY x.event_ts DESC, x.ingest_id DESC LIMIT 1) AS display_name,
                   (SELECT bool_or(x.is_bot) FROM @extschema@.raw_member_events x
                     WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id) AS is_bot
              FROM (SELECT DISTINCT x.guild_id, x.user_id FROM @extschema@.raw_member_events x
                     WHERE x.ingest_id BETWEEN lower(member_ids) AND upper(member_ids) - 1
                       AND x.ingest_id <@ member_ids AND x.guild_id = g) t
              CROSS JOIN LATERAL (SELECT max(x.event_ts) AS joined_at FROM @extschema@.raw_member_events x
                                   WHERE x.guild_id = t.guild_id AND x.user_id = t.user_id
                                     AND x.event_type = 'join') j) s
     WHERE m.guild_id = s.guild_id AND m.user_id = s.user_id;

    RETURN jsonb_build_object('rows_read', rows_read, 'members_added', members_added,
                              'members_updated', members_updated);
END
$$;
COMMENT ON FUNCTION _build_members_step(bigint, jsonb, boolean) IS
    'Internal: the step of build_members (see guildstats.builders): merges one guild''s new raw rows into members.';

CREATE FUNCTION build_members(full boolean DEFAULT false)
RETURNS TABLE (rows_read bigint, members_added bigint, members_updated bigint,
               elapsed interval, status text)
LANGUAGE sql VOLATILE AS $$
    SELECT r.* FROM jsonb_to_record(@extschema@._run_builder('build_members', $1))
        AS r(rows_read bigint, members_added bigint, members_updated bigint, elapsed interval, status text)
$$;
COMMENT ON FUNCTION build_members(boolean) IS
    'Brings guildstats.members up to date with the raw rows that arrived since the last call (exactly once, like every builder) and returns one summary row; full => true starts from scratch. Safe to call concurrently: a second caller gets status ''skipped: ...''.';
