-- Erasure: a member who asks to be forgotten is removed from every table that names them, raw
-- and derived, in one transaction. The builders' locks (builder_locks) are taken first (waiting,
-- not trying), so no build in flight can write the member back from rows it read before the
-- erasure.
--
-- Snapshots are rewritten without the member's entry rather than deleted: the other people in
-- voice at that moment are still true. A scheduled event the member created keeps existing
-- without its creator. ET:Legacy rounds are the game server's public record under a nickname and
-- are kept; the member's links to their GUIDs (et_guid_links) go with the other tables.

-- Snowflakes in JSON documents. The ingesters may send a user id as a number or as a string of
-- digits; "04242" and 4242 are the same member. Everything that looks for a member in a document
-- compares through _snowflake(), and snapshots are stored in one canonical form (numbers), so
-- that erasure, export and opt-out cannot miss an entry because of how it was spelled.
CREATE FUNCTION _snowflake(value jsonb)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT CASE
        WHEN jsonb_typeof(value) = 'string' AND (value #>> '{}') ~ '^0*[0-9]{1,19}$'
             AND (value #>> '{}')::numeric <= 9223372036854775807
            THEN (value #>> '{}')::numeric::bigint
        WHEN jsonb_typeof(value) = 'number' AND (value #>> '{}')::numeric BETWEEN 0 AND 9223372036854775807
             AND (value #>> '{}')::numeric = trunc((value #>> '{}')::numeric)
            THEN (value #>> '{}')::numeric::bigint
    END
$$;
COMMENT ON FUNCTION _snowflake(jsonb) IS
    'Internal: the Discord id a JSON value holds (a whole number, or a string of digits with any leading zeros, within bigint); NULL for anything else.';

CREATE FUNCTION _mentions_id(document jsonb, id bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT EXISTS (
        SELECT 1 FROM jsonb_path_query(document, 'strict $.**') v
         WHERE jsonb_typeof(v) IN ('number', 'string') AND @extschema@._snowflake(v) = id)
$$;
COMMENT ON FUNCTION _mentions_id(jsonb, bigint) IS
    'Internal: the JSON document holds the id anywhere, at any depth, as a number or a string of digits.';

-- The canonical voice_states: the same array with every user_id and channel_id that is a
-- snowflake written as a JSON number. Entries the builders cannot read stay as they came (they
-- are skipped at build time and still found by erasure). A document that is not an array is not
-- a snapshot (the builders ignore it); it is kept as sent, and erase_member() blanks it to JSON
-- null when it mentions the member anywhere.
CREATE FUNCTION _canonical_voice_states(voice_states jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT CASE jsonb_typeof(voice_states)
        WHEN 'array' THEN (
            SELECT coalesce(jsonb_agg(
                       CASE WHEN jsonb_typeof(v) = 'object'
                            THEN v || jsonb_strip_nulls(jsonb_build_object(
                                          'user_id', @extschema@._snowflake(v -> 'user_id'),
                                          'channel_id', @extschema@._snowflake(v -> 'channel_id')))
                            ELSE v END
                       ORDER BY n), '[]'::jsonb)
              FROM jsonb_array_elements(voice_states) WITH ORDINALITY AS e(v, n))
        ELSE voice_states END
$$;
COMMENT ON FUNCTION _canonical_voice_states(jsonb) IS
    'Internal: a raw_voice_snapshots.voice_states array with every user_id and channel_id that is a snowflake written as a JSON number ("04242" becomes 4242); other entries and non-array documents unchanged.';

CREATE FUNCTION _voice_state_is_member(entry jsonb, user_id bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT coalesce(@extschema@._snowflake(entry -> 'user_id') = user_id,
                    @extschema@._mentions_id(entry, user_id))
$$;
COMMENT ON FUNCTION _voice_state_is_member(jsonb, bigint) IS
    'Internal: a voice_states entry is the member''s: its user_id is theirs however spelled, or, when it has no readable user_id, it mentions their id anywhere.';

-- Every table of the extension that names a member by (guild_id, user_id), found by catalog so
-- that a new one cannot be forgotten by erasure, export or opt-out. Raw tables first.
CREATE FUNCTION _member_tables()
RETURNS SETOF text
LANGUAGE sql STABLE
AS $$
    SELECT c.relname::text
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
     WHERE s.nspname = '@extschema@' AND c.relkind = 'r'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'guild_id' AND NOT a.attisdropped)
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
     ORDER BY c.relname NOT LIKE 'raw\_%', c.relname
$$;
COMMENT ON FUNCTION _member_tables() IS
    'Internal: the extension''s tables that have both guild_id and user_id, raw tables first.';

-- Opt-out: one list in the database, read by the Discord bot too. Inserting a member erases
-- everything stored about them in that guild; from then on the raw tables drop their rows on
-- arrival (a BEFORE trigger), whichever ingester sends them and however stale its own list is,
-- so the builders never see them. Deleting the row opts the member back in, from then on.
CREATE TABLE opt_out (
    guild_id  bigint      NOT NULL,
    user_id   bigint      NOT NULL,
    since     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);
COMMENT ON TABLE opt_out IS
    'Members who opted out of tracking, per guild. Inserting a row erases the member''s stored rows in that guild (erase_member) and makes every raw table drop their later rows on arrival; the Discord bot reads the same list and does not even send them. Delete the row to opt back in.';
COMMENT ON COLUMN opt_out.guild_id IS 'Discord guild snowflake.';
COMMENT ON COLUMN opt_out.user_id IS 'Discord user snowflake of the member who opted out.';
COMMENT ON COLUMN opt_out.since IS 'When the opt-out was recorded.';
SELECT pg_catalog.pg_extension_config_dump('opt_out', '');

CREATE FUNCTION is_opted_out(guild_id bigint, user_id bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@.opt_out o
                    WHERE o.guild_id = is_opted_out.guild_id AND o.user_id = is_opted_out.user_id)
$$;
COMMENT ON FUNCTION is_opted_out(bigint, bigint) IS
    'The member opted out of tracking in the guild (has a row in opt_out). Example: SELECT guildstats.is_opted_out(guild_id => 1, user_id => 42);';

-- Raw tables that name a member by (guild_id, user_id): a row of an opted-out member is dropped
-- (RETURN NULL), not refused, so that the rest of the ingester's batch goes on. The trigger
-- functions are SECURITY DEFINER because the ingest role may execute no function of its own;
-- they touch nothing but the row and the list.
CREATE FUNCTION _drop_opted_out_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF @extschema@.is_opted_out(NEW.guild_id, NEW.user_id) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION _drop_opted_out_row() IS
    'Internal trigger function: drops an arriving raw row whose (guild_id, user_id) is in opt_out.';

CREATE FUNCTION _scheduled_event_without_opted_out()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.creator_id IS NOT NULL AND @extschema@.is_opted_out(NEW.guild_id, NEW.creator_id) THEN
        NEW.creator_id := NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION _scheduled_event_without_opted_out() IS
    'Internal trigger function: an arriving scheduled event keeps no creator who opted out.';

CREATE FUNCTION _canonical_snapshot()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.voice_states := @extschema@._canonical_voice_states(NEW.voice_states);
    IF jsonb_typeof(NEW.voice_states) = 'array'
       AND EXISTS (SELECT 1 FROM @extschema@.opt_out o WHERE o.guild_id = NEW.guild_id) THEN
        NEW.voice_states := (
            SELECT coalesce(jsonb_agg(v ORDER BY n), '[]'::jsonb)
              FROM jsonb_array_elements(NEW.voice_states) WITH ORDINALITY AS e(v, n)
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.opt_out o
                                WHERE o.guild_id = NEW.guild_id
                                  AND @extschema@._voice_state_is_member(v, o.user_id)));
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION _canonical_snapshot() IS
    'Internal trigger function: stores raw_voice_snapshots.voice_states in canonical form (_canonical_voice_states) without the entries of members who opted out.';

CREATE TRIGGER raw_voice_snapshots_canonical
BEFORE INSERT OR UPDATE OF voice_states, guild_id ON raw_voice_snapshots
FOR EACH ROW EXECUTE FUNCTION _canonical_snapshot();
COMMENT ON TRIGGER raw_voice_snapshots_canonical ON raw_voice_snapshots IS
    'Writes user and channel ids as JSON numbers and leaves out members who opted out, so that erasure, export and the builders see one spelling.';

CREATE TRIGGER raw_scheduled_events_opt_out
BEFORE INSERT OR UPDATE OF creator_id, guild_id ON raw_scheduled_events
FOR EACH ROW EXECUTE FUNCTION _scheduled_event_without_opted_out();
COMMENT ON TRIGGER raw_scheduled_events_opt_out ON raw_scheduled_events IS
    'A scheduled event created by a member who opted out is stored without its creator.';

-- One trigger per table that names a member, found by catalog so that a new raw table cannot be
-- forgotten (the regression test checks every such table has it).
DO $opt_out_triggers$
DECLARE
    member_table text;
BEGIN
    FOR member_table IN
        SELECT t FROM @extschema@._member_tables() t WHERE t LIKE 'raw\_%' OR t = 'et_guid_links'
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF guild_id, user_id ON @extschema@.%I
                        FOR EACH ROW EXECUTE FUNCTION @extschema@._drop_opted_out_row()',
                       member_table || '_opt_out', member_table);
        EXECUTE format('COMMENT ON TRIGGER %I ON @extschema@.%I IS %L',
                       member_table || '_opt_out', member_table,
                       'Drops an arriving row of a member who opted out (see opt_out).');
    END LOOP;
END
$opt_out_triggers$;

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
        -- Every builder of the registry, so that one registered later is kept out too.
        PERFORM 1 FROM @extschema@.builder_locks l JOIN @extschema@.builders b ON b.name = l.builder
         ORDER BY l.builder FOR UPDATE OF l;
        PERFORM set_config('lock_timeout', lock_wait, true);
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'erase_member(guild_id => %, user_id => %): a build held the builders'' locks for longer than lock_timeout (%); nothing was erased',
            erase_member.guild_id, erase_member.user_id, CASE lock_wait WHEN '0' THEN '30s' ELSE lock_wait END
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Retry when the build has committed; pg_stat_activity shows the transaction holding guildstats.builder_locks.';
    END;

    -- Every table with a (guild_id, user_id) pair, raw first.
    FOR table_name IN
        -- The list itself must survive the erasure it causes.
        SELECT t FROM @extschema@._member_tables() t WHERE t <> 'opt_out'
    LOOP
        EXECUTE format('DELETE FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2', table_name)
            USING erase_member.guild_id, erase_member.user_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        rows_changed := n;
        RETURN NEXT;
    END LOOP;

    -- Pairs name the member as user_a or user_b, not user_id.
    DELETE FROM @extschema@.voice_copresence_daily p
     WHERE p.guild_id = erase_member.guild_id
       AND (p.user_a = erase_member.user_id OR p.user_b = erase_member.user_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'voice_copresence_daily'; rows_changed := n; RETURN NEXT;

    -- Snapshots in every form: entries whose user_id is the member, however spelled; entries
    -- the builders cannot read that mention the member anywhere; and documents that are not
    -- arrays (not snapshots at all) that mention the member, blanked to JSON null.
    UPDATE @extschema@.raw_voice_snapshots s
       SET voice_states = CASE jsonb_typeof(s.voice_states)
               WHEN 'array' THEN (
                   SELECT coalesce(jsonb_agg(v ORDER BY o), '[]'::jsonb)
                     FROM jsonb_array_elements(s.voice_states) WITH ORDINALITY AS e(v, o)
                    WHERE NOT @extschema@._voice_state_is_member(v, erase_member.user_id))
               ELSE 'null'::jsonb END
     WHERE s.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(s.voice_states, erase_member.user_id)
       AND (jsonb_typeof(s.voice_states) <> 'array'
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(s.voice_states) v
                        WHERE @extschema@._voice_state_is_member(v, erase_member.user_id)));
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_voice_snapshots'; rows_changed := n; RETURN NEXT;

    UPDATE @extschema@.raw_scheduled_events e
       SET creator_id = NULL
     WHERE e.guild_id = erase_member.guild_id AND e.creator_id = erase_member.user_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'raw_scheduled_events'; rows_changed := n; RETURN NEXT;

    -- Quarantined raw rows are kept whole, so they name members inside row_data too (a
    -- snapshot's voice states, an event's creator). Those that mention the member go whole:
    -- nothing is built from them, and a redacted copy would no longer be the row that came.
    DELETE FROM @extschema@.quarantine q
     WHERE q.guild_id = erase_member.guild_id
       AND @extschema@._mentions_id(q.row_data, erase_member.user_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'quarantine (row_data)'; rows_changed := n; RETURN NEXT;
END
$$;

COMMENT ON FUNCTION erase_member(bigint, bigint) IS
    'Forgets a member of a guild: deletes their rows from every raw and derived table that has (guild_id, user_id) (opt_out excepted) and their pairs from voice_copresence_daily, removes their entries from voice snapshots however the id is spelled (a document that is not an array and mentions them becomes JSON null), clears them as creator of scheduled events and unlinks their ET:Legacy GUIDs. Returns the rows changed per table. To keep their later rows out too, insert them into opt_out instead (which calls this). Example: SELECT * FROM guildstats.erase_member(guild_id => 1, user_id => 42);';
-- The opt-out takes effect in the transaction that records it. The member tables are locked
-- against inserts first (SHARE waits for inserts in flight and holds new ones until commit), so
-- no row of the member can slip in between the erasure and the commit of the list's row.
CREATE FUNCTION _opt_out_erase()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    member_table regclass;
BEGIN
    FOR member_table IN
        SELECT c.oid::regclass FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         WHERE t.tgfoid IN ('@extschema@._drop_opted_out_row()'::regprocedure,
                            '@extschema@._canonical_snapshot()'::regprocedure,
                            '@extschema@._scheduled_event_without_opted_out()'::regprocedure)
         ORDER BY c.oid
    LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', member_table);
    END LOOP;
    PERFORM @extschema@.erase_member(NEW.guild_id, NEW.user_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION _opt_out_erase() IS
    'Internal trigger function: a member who opts out is erased (erase_member) in the same transaction, with the member tables locked against inserts until it commits.';

CREATE TRIGGER opt_out_erase
AFTER INSERT OR UPDATE OF guild_id, user_id ON opt_out
FOR EACH ROW EXECUTE FUNCTION _opt_out_erase();
COMMENT ON TRIGGER opt_out_erase ON opt_out IS
    'Erases the member''s stored rows when they opt out.';

-- Access: everything stored about a member, as one document (the GDPR right of access). Built as
-- one query, so that every part comes from the same snapshot of the database. Other members'
-- entries in a voice snapshot are left out: only the member's own entry, with its snapshot's
-- identity and time, is theirs to see.
CREATE FUNCTION export_member(guild_id bigint, user_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[] := ARRAY[]::text[];
    member_table text;
    document jsonb;
BEGIN
    IF export_member.guild_id IS NULL OR export_member.user_id IS NULL THEN
        RAISE EXCEPTION 'export_member(guild_id => %, user_id => %): both are required', export_member.guild_id, export_member.user_id
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Every table with a (guild_id, user_id) pair, the same set erase_member() empties.
    FOR member_table IN
        SELECT t FROM @extschema@._member_tables() t WHERE t <> 'quarantine'
    LOOP
        parts := array_append(parts, format(
            '%L, (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)), ''[]'') FROM @extschema@.%I t WHERE t.guild_id = $1 AND t.user_id = $2)',
            member_table, member_table));
    END LOOP;
    parts := array_append(parts, $part$'raw_voice_snapshots', (
        SELECT coalesce(jsonb_agg(jsonb_build_object('ingest_id', s.ingest_id, 'guild_id', s.guild_id,
                                                     'taken_at', s.taken_at, 'source', s.source,
                                                     'received_at', s.received_at, 'voice_state', e.v)
                                  ORDER BY s.taken_at, e.n), '[]')
          FROM @extschema@.raw_voice_snapshots s
          CROSS JOIN LATERAL (SELECT v, n FROM jsonb_array_elements(
                                  CASE jsonb_typeof(s.voice_states) WHEN 'array' THEN s.voice_states
                                       ELSE jsonb_build_array(s.voice_states) END) WITH ORDINALITY AS x(v, n)) e
         WHERE s.guild_id = $1 AND @extschema@._voice_state_is_member(e.v, $2))$part$);
    -- Rows set aside on arrival: the member's own, and those that name them inside row_data (a
    -- quarantined snapshot, the same set erase_member() deletes). A snapshot shows only the
    -- member's entries, as the stored snapshots do.
    parts := array_append(parts, $part$'quarantine', (
        SELECT coalesce(jsonb_agg(CASE WHEN q.user_id IS NULL AND q.row_data ? 'voice_states'
                   THEN to_jsonb(q) || jsonb_build_object('row_data', q.row_data || jsonb_build_object('voice_states', (
                            SELECT coalesce(jsonb_agg(e.v ORDER BY e.n), '[]')
                              FROM jsonb_array_elements(CASE jsonb_typeof(q.row_data -> 'voice_states')
                                                             WHEN 'array' THEN q.row_data -> 'voice_states'
                                                             ELSE jsonb_build_array(q.row_data -> 'voice_states') END)
                                   WITH ORDINALITY AS e(v, n)
                             WHERE @extschema@._voice_state_is_member(e.v, $2))))
                   ELSE to_jsonb(q) END ORDER BY q.quarantine_id), '[]')
          FROM @extschema@.quarantine q
         WHERE q.guild_id = $1 AND (q.user_id = $2 OR @extschema@._mentions_id(q.row_data, $2)))$part$);
    -- The member's pairs of shared voice time, from either side of the pair.
    parts := array_append(parts, $part$'voice_copresence_daily', (
        SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.day, p.user_a, p.user_b), '[]')
          FROM @extschema@.voice_copresence_daily p
         WHERE p.guild_id = $1 AND (p.user_a = $2 OR p.user_b = $2))$part$);
    parts := array_append(parts, $part$'raw_scheduled_events', (
        SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.observed_at, e.event_id), '[]')
          FROM @extschema@.raw_scheduled_events e WHERE e.guild_id = $1 AND e.creator_id = $2)$part$);
    -- The member's ET:Legacy rounds, through the GUIDs linked to them.
    parts := array_append(parts, $part$'et_player_rounds', (
        SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.round_id, p.guid), '[]')
          FROM @extschema@.et_player_rounds p
         WHERE p.guid IN (SELECT l.guid FROM @extschema@.et_guid_links l WHERE l.guild_id = $1 AND l.user_id = $2))$part$);
    EXECUTE format('SELECT jsonb_build_object(''guild_id'', $1, ''user_id'', $2, ''exported_at'', now(), ''tables'', jsonb_build_object(%s))',
                   array_to_string(parts, ', '))
       INTO document
      USING export_member.guild_id, export_member.user_id;
    RETURN document;
END
$$;
COMMENT ON FUNCTION export_member(bigint, bigint) IS
    'Everything stored about a member of a guild, raw and derived, as one JSON document (the GDPR right of access): {guild_id, user_id, exported_at, tables: {table: [rows]}} with every row of every table that has (guild_id, user_id), the member''s own entries of voice snapshots (others in the same snapshot are left out), their pairs of shared voice time (voice_copresence_daily), the scheduled events they created, the rows set aside in quarantine that are theirs or name them (a snapshot by their own entries), and their ET:Legacy rounds through linked GUIDs. Example: SELECT guildstats.export_member(guild_id => 1, user_id => 42);';
