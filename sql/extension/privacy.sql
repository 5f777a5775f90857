-- Erasure: a member who asks to be forgotten is removed from every table that names them, raw
-- and derived, in one transaction. The builders' locks (builder_locks) are taken first (waiting,
-- not trying), so no build in flight can write the member back from rows it read before the
-- erasure.
--
-- Snapshots are rewritten without the member's entry rather than deleted: the other people in
-- voice at that moment are still true. A scheduled event the member created keeps existing
-- without its creator. ET:Legacy rounds are the game server's public record under a nickname and
-- are kept; the member's links to their GUIDs (et_guid_links) go with the other tables.

CREATE FUNCTION erase_member(guild_id bigint, user_id bigint)
RETURNS TABLE (table_name text, rows_changed bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lock_wait text;
    n bigint;
BEGIN
    IF erase_member.guild_id IS NULL OR erase_member.user_id IS NULL THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): both are required', erase_member.guild_id, erase_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Waits for builds in flight, but not forever: a transaction left open holding a builder's
    -- lock gets a clear error instead of a hang (the caller's lock_timeout, else 30 seconds).
    lock_wait := current_setting('lock_timeout');
    BEGIN
        IF lock_wait = '0' THEN
            PERFORM set_config('lock_timeout', '30s', true);
        END IF;
        PERFORM 1 FROM @extschema@.builder_locks l ORDER BY l.builder FOR UPDATE;
        PERFORM set_config('lock_timeout', lock_wait, true);
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): a build held the builders'' locks for longer than lock_timeout (%); nothing was erased',
            erase_member.guild_id, erase_member.user_id, CASE lock_wait WHEN '0' THEN '30s' ELSE lock_wait END
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Retry when the build has committed; pg_stat_activity shows the transaction holding guildstats.builder_locks.';
    END;

    -- Every table with a (guild_id, user_id) pair, raw first.
    FOR table_name IN
        SELECT c.relname::text
          FROM pg_class c
          JOIN pg_namespace s ON s.oid = c.relnamespace
         WHERE s.nspname = '@extschema@' AND c.relkind = 'r'
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
         ORDER BY c.relname NOT LIKE 'raw\_%', c.relname
    LOOP
        EXECUTE format('DELETE FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2', table_name)
            USING erase_member.guild_id, erase_member.user_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        rows_changed := n;
        RETURN NEXT;
    END LOOP;

    UPDATE @extschema@.raw_voice_snapshots s
       SET voice_states = (SELECT coalesce(jsonb_agg(v ORDER BY o), '[]'::jsonb)
                             FROM jsonb_array_elements(s.voice_states) WITH ORDINALITY AS e(v, o)
                            WHERE (v->>'user_id') IS DISTINCT FROM erase_member.user_id::text)
     WHERE s.guild_id = erase_member.guild_id
       AND jsonb_typeof(s.voice_states) = 'array'
       AND EXISTS (SELECT 1 FROM jsonb_array_elements(s.voice_states) v
                    WHERE v->>'user_id' = erase_member.user_id::text);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_voice_snapshots'; rows_changed := n; RETURN NEXT;

    UPDATE @extschema@.raw_scheduled_events e
       SET creator_id = NULL
     WHERE e.guild_id = erase_member.guild_id AND e.creator_id = erase_member.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_scheduled_events'; rows_changed := n; RETURN NEXT;

END
$$;

COMMENT ON FUNCTION erase_member(bigint, bigint) IS
    'Forgets a member of a guild: deletes their rows from every raw and derived table that has (guild_id, user_id), removes them from voice snapshots, clears them as creator of scheduled events and unlinks their ET:Legacy GUIDs. Returns the rows changed per table. Add them to the Discord bot''s opt-out list first, or the next events bring them back.';
