-- Exactly-once progress of the incremental builders over the raw tables.
--
-- A builder processes each raw row once, by ingest_id, and records how far it got in this
-- table in the SAME transaction as the work: a build that fails or is rolled back leaves no
-- trace, the next one starts from the same place.
--
-- The subtle part is a writer still in flight. Identity values are handed out when a row is
-- inserted, not when it commits: while transaction X holding ingest_id 105 is still open, 106
-- may already be committed and visible. A builder that stepped past 106 would never see 105.
-- _claim_ingest_ids() therefore:
--   1. reads the last ingest_id handed out so far (the identity sequence, non-transactional);
--   2. then looks in pg_locks for other transactions holding a write lock on the table. Every
--      inserter takes its lock when its statement starts, before it draws an id, and keeps it
--      until it ends; so if none is there, every id drawn in step 1 is final: committed (and
--      visible to the statements that follow) or never coming (rolled back, or burnt by
--      ON CONFLICT DO NOTHING).
--   3. claims every id up to that value. If writers were in flight, the ids of the claimed
--      range that are not visible yet stay "pending", with the writers' virtual transaction
--      ids; later runs look at pending ids again and drop them once none of those
--      transactions is left (their rows, if any, are then visible and processed).
-- Builders must run in READ COMMITTED (the default), so that their reads come after step 2.
-- Processing a row twice is harmless (the builders recompute from the raw rows); skipping
-- one is what this prevents.

CREATE TABLE build_progress (
    builder            text           NOT NULL,
    source_table       text           NOT NULL,
    processed_through  bigint         NOT NULL DEFAULT 0,
    pending_ids        int8multirange NOT NULL DEFAULT '{}',
    pending_writers    text[]         NOT NULL DEFAULT '{}',
    updated_at         timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (builder, source_table)
);

COMMENT ON TABLE build_progress IS
    'How far each incremental builder has processed each raw table, by ingest_id; written in the same transaction as the builder''s work (exactly once). Delete a builder''s rows, or call its rebuild function, to make it start over.';
COMMENT ON COLUMN build_progress.builder IS 'The builder function, e.g. build_voice_sessions.';
COMMENT ON COLUMN build_progress.source_table IS 'The raw table, e.g. raw_voice_events.';
COMMENT ON COLUMN build_progress.processed_through IS 'Every ingest_id up to this one has been processed, except those in pending_ids.';
COMMENT ON COLUMN build_progress.pending_ids IS 'Ingest ids at or below processed_through that were handed to transactions still in flight at the last build; looked at again by every build until those transactions are gone.';
COMMENT ON COLUMN build_progress.pending_writers IS 'Virtual transaction ids (pg_locks.virtualtransaction) of the writers that may still fill pending_ids.';
COMMENT ON COLUMN build_progress.updated_at IS 'When the builder last recorded progress here.';

SELECT pg_catalog.pg_extension_config_dump('build_progress', '');

CREATE FUNCTION _claim_ingest_ids(builder text, source_table text)
RETURNS int8multirange
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    source           regclass := format('@extschema@.%I', source_table)::regclass;
    last_handed_out  bigint;
    writers          text[];
    progress         @extschema@.build_progress;
    claim            int8multirange;
    fresh            int8multirange;
    still_pending    int8multirange := '{}';
    still_writers    text[] := '{}';
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'guildstats: % must run in READ COMMITTED isolation, not %',
            builder, current_setting('transaction_isolation')
            USING HINT = 'Call it outside an explicit REPEATABLE READ or SERIALIZABLE transaction.';
    END IF;
    -- 1. The last id handed out (is_called is false only before the first one).
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s',
                   pg_catalog.pg_get_serial_sequence(source::text, 'ingest_id'))
        INTO last_handed_out;
    -- 2. Writers in flight: other transactions holding a lock that allows INSERT.
    SELECT coalesce(array_agg(DISTINCT l.virtualtransaction ORDER BY l.virtualtransaction), '{}')
      INTO writers
      FROM pg_catalog.pg_locks l
     WHERE l.locktype = 'relation' AND l.relation = source AND l.granted
       AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
       AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock');

    INSERT INTO @extschema@.build_progress AS p (builder, source_table)
    VALUES (_claim_ingest_ids.builder, _claim_ingest_ids.source_table)
    ON CONFLICT DO NOTHING;
    SELECT * INTO progress FROM @extschema@.build_progress p
     WHERE p.builder = _claim_ingest_ids.builder AND p.source_table = _claim_ingest_ids.source_table
       FOR UPDATE;

    fresh := CASE WHEN last_handed_out > progress.processed_through
                  THEN int8multirange(int8range(progress.processed_through, last_handed_out, '(]'))
                  ELSE '{}' END;
    claim := progress.pending_ids + fresh;

    -- 3. What may still be filled later: old pending ids while any of their writers is left,
    --    fresh ids while writers are in flight now; minus what is visible already.
    IF NOT isempty(progress.pending_ids) AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l WHERE l.virtualtransaction = ANY (progress.pending_writers)) THEN
        still_pending := progress.pending_ids;
        still_writers := progress.pending_writers;
    END IF;
    IF cardinality(writers) > 0 THEN
        still_pending := still_pending + fresh;
        still_writers := ARRAY(SELECT DISTINCT w FROM unnest(still_writers || writers) w ORDER BY w);
    END IF;
    IF NOT isempty(still_pending) THEN
        EXECUTE format('SELECT coalesce(range_agg(int8range(ingest_id, ingest_id, ''[]'')), ''{}'')
                          FROM %s WHERE ingest_id BETWEEN $1 AND $2 AND ingest_id <@ $3',
                       source)
           INTO fresh
          USING lower(still_pending), upper(still_pending) - 1, still_pending;
        still_pending := still_pending - fresh;
        IF isempty(still_pending) THEN
            still_writers := '{}';
        END IF;
    END IF;

    UPDATE @extschema@.build_progress p
       SET processed_through = greatest(progress.processed_through, last_handed_out),
           pending_ids = still_pending,
           pending_writers = still_writers,
           updated_at = now()
     WHERE p.builder = _claim_ingest_ids.builder AND p.source_table = _claim_ingest_ids.source_table;
    RETURN claim;
END
$$;
COMMENT ON FUNCTION _claim_ingest_ids(text, text) IS
    'Internal to the builders: the ingest ids of source_table that builder has not processed yet (new ones, and earlier ones whose writers were still in flight), recording the progress in build_progress in the caller''s transaction. See the header of build_progress.sql for why no row is ever skipped.';

CREATE FUNCTION _reset_progress(builder text)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    DELETE FROM @extschema@.build_progress p WHERE p.builder = _reset_progress.builder;
END;
COMMENT ON FUNCTION _reset_progress(text) IS
    'Internal to the rebuild functions: forgets a builder''s progress, so that its next claim covers every raw row.';

-- One row per builder: a builder runs only while it holds its row locked, so two calls of the
-- same builder never overlap, and erase_member() locks them all to keep builds out while it
-- works. A row lock and not an advisory lock: any login may take any advisory lock key, and a
-- reader holding a builder's key made every build report "skipped" and erase_member() wait
-- forever. Locking a row needs UPDATE on the table, which only guildstats_admin (and the
-- owner) has (sql/ops/roles.sql). The rows come with the registry (builders.sql), which adds one
-- for each builder registered; pg_dump leaves them out.
CREATE TABLE builder_locks (
    builder  text PRIMARY KEY
);
COMMENT ON TABLE builder_locks IS
    'One row per builder of guildstats.builders (registering a builder adds it); a builder runs while it holds its row locked (SELECT ... FOR UPDATE SKIP LOCKED), and erase_member() locks every row. Only roles with UPDATE on this table (guildstats_admin) can hold them. Do not edit.';
COMMENT ON COLUMN builder_locks.builder IS 'The builder function, e.g. build_voice_sessions.';

CREATE FUNCTION _try_builder_lock(builder text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM @extschema@.builder_locks l WHERE l.builder = _try_builder_lock.builder
        FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.builder_locks l WHERE l.builder = _try_builder_lock.builder) THEN
        RAISE EXCEPTION 'guildstats: builder_locks has no row for %', builder
            USING HINT = 'Reinstall the row: INSERT INTO guildstats.builder_locks VALUES (''' || builder || ''').';
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION _try_builder_lock(text) IS
    'Internal to the builders: locks the builder''s row of builder_locks until the end of the transaction and returns true, or returns false at once when another transaction holds it.';
