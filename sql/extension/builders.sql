-- The registry of builders and the one runner every builder goes through.
--
-- A builder used to open with the same dozen lines as every other (its lock, the "skipped"
-- answer, the reset on full, its progress claims) and build_all() named each one. Now a builder
-- is a row here: what it reads, which builders must run before it, and the functions that do its
-- own work. _run_builder() does the rest, so the progress claims commit or roll back with the
-- work they describe, and build_all() derives its order from the rows.
--
-- The work is cut per guild where the builder allows it (per = 'guild'): plan finds the guilds
-- that have something to do, step does one guild and touches only that guild's rows. That is
-- the unit a Citus cluster can run on the node holding the guild's shard (docs/operations.md).

CREATE TABLE builders (
    name          text         PRIMARY KEY,
    registered    integer      GENERATED ALWAYS AS IDENTITY,
    reads         regclass[]   NOT NULL,
    claims        text[]       NOT NULL DEFAULT '{}',
    depends_on    text[]       NOT NULL DEFAULT '{}',
    per           text         NOT NULL CHECK (per IN ('guild', 'all')),
    plan          regprocedure,
    step          regprocedure NOT NULL,
    counters      text[]       NOT NULL,
    skipped_note  text,
    finish        regprocedure
);
COMMENT ON TABLE builders IS
    'The registry of builders: one row per builder, run by _run_builder() (its lock, progress claims, reset on full and status) and by build_all() in dependency order. Readable by every role; only the extension owner can register a builder, since build_all() runs every step with its caller''s rights. See DEVELOPERS.md, "How to add a builder".';
COMMENT ON COLUMN builders.name IS 'The builder, named after its public function (e.g. build_voice_sessions); also its row of builder_locks and its build_progress.builder.';
COMMENT ON COLUMN builders.registered IS 'Registration order: breaks ties in the dependency order, so that builders independent of each other run in the order they were registered.';
COMMENT ON COLUMN builders.reads IS 'Every table the builder reads, raw and core.';
COMMENT ON COLUMN builders.claims IS 'The raw tables whose new ingest ids the runner claims for the builder (build_progress) before its plan runs, in this order; each a table of reads.';
COMMENT ON COLUMN builders.depends_on IS 'The builders whose output it reads: build_all() runs them first, and skips this one when one of them failed.';
COMMENT ON COLUMN builders.per IS 'guild: plan lists the guilds to build and step builds one guild, touching only its rows; all: one step over everything (its tables carry no guild).';
COMMENT ON COLUMN builders.plan IS 'f(claims jsonb, full boolean) RETURNS jsonb, run once under the lock: the work of a full rebuild''s reset, the counters it can tell at once, and for per = guild the guilds to build under the key "guilds". NULL for per = all.';
COMMENT ON COLUMN builders.step IS 'f(guild bigint, claims jsonb, full boolean) RETURNS jsonb: builds one guild (guild NULL for per = all) and returns its counters, optionally a "status" to report instead of ok.';
COMMENT ON COLUMN builders.counters IS 'The numeric columns of the builder''s result, in order: summed over its plan and steps, zero when it is skipped.';
COMMENT ON COLUMN builders.skipped_note IS 'Appended to the status of a call skipped because another call of the builder is running.';
COMMENT ON COLUMN builders.finish IS 'f(claims jsonb, full boolean, plan jsonb) RETURNS jsonb, run once after the last step with what the plan returned: work that spans every guild''s step, such as building a table''s indexes once after a full rebuild wrote all its rows. NULL: none.';

-- builder_locks came first (build_progress.sql); each of its rows is a builder's now.
ALTER TABLE builder_locks ADD FOREIGN KEY (builder) REFERENCES builders (name) ON DELETE CASCADE;

-- Validates a registration when it is made rather than when pg_cron first trips over it.
CREATE FUNCTION _builders_check()
RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID);
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = NEW.step AND p.prorettype = 'jsonb'::regtype
                      AND pg_catalog.oidvectortypes(p.proargtypes) = 'bigint, jsonb, boolean') THEN
        RAISE EXCEPTION 'guildstats: builder %: step % must be f(guild bigint, claims jsonb, full boolean) RETURNS jsonb',
            NEW.name, NEW.step;
    END IF;
    IF NEW.plan IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = NEW.plan AND p.prorettype = 'jsonb'::regtype
           AND pg_catalog.oidvectortypes(p.proargtypes) = 'jsonb, boolean') THEN
        RAISE EXCEPTION 'guildstats: builder %: plan % must be f(claims jsonb, full boolean) RETURNS jsonb',
            NEW.name, NEW.plan;
    END IF;
    IF NEW.finish IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = NEW.finish AND p.prorettype = 'jsonb'::regtype
           AND pg_catalog.oidvectortypes(p.proargtypes) = 'jsonb, boolean, jsonb') THEN
        RAISE EXCEPTION 'guildstats: builder %: finish % must be f(claims jsonb, full boolean, plan jsonb) RETURNS jsonb',
            NEW.name, NEW.finish;
    END IF;
    IF NEW.per = 'guild' AND NEW.plan IS NULL THEN
        RAISE EXCEPTION 'guildstats: builder % is per guild but has no plan to list the guilds', NEW.name;
    END IF;
    -- build_all() runs with the rights of whoever calls it, pg_cron's job owner included.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid IN (NEW.step, NEW.plan, NEW.finish) AND p.proowner <> owner) THEN
        RAISE EXCEPTION 'guildstats: builder %: its functions must belong to %, the owner of guildstats.builders',
            NEW.name, owner::regrole;
    END IF;
    FOREACH t IN ARRAY NEW.claims LOOP
        IF NOT EXISTS (SELECT 1 FROM unnest(NEW.reads) r WHERE r = pg_catalog.to_regclass(format('@extschema@.%I', t))) THEN
            RAISE EXCEPTION 'guildstats: builder % claims %, which is not among the tables it reads', NEW.name, t;
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION _builders_check() IS
    'Internal: refuses a builders row whose plan, step or finish has the wrong signature or another owner, or that claims a table it does not read.';
CREATE TRIGGER builders_check BEFORE INSERT OR UPDATE ON builders
    FOR EACH ROW EXECUTE FUNCTION _builders_check();
COMMENT ON TRIGGER builders_check ON builders IS 'Checks each registration (see _builders_check).';

-- The order in which build_all() runs the builders: a topological order of depends_on (Kahn's
-- algorithm), ties going to the builder registered first.
CREATE FUNCTION builder_order()
RETURNS TABLE (run_order integer, name text, depends_on text[])
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    done    text[] := '{}';
    nxt     record;
    missing record;
BEGIN
    SELECT b.name, d INTO missing FROM @extschema@.builders b, unnest(b.depends_on) d
     WHERE d NOT IN (SELECT x.name FROM @extschema@.builders x) ORDER BY 1, 2 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'guildstats: builder % depends on %, which is not a builder', missing.name, missing.d
            USING HINT = 'Register it first, or correct depends_on in guildstats.builders.';
    END IF;
    run_order := 0;
    LOOP
        SELECT b.name, b.depends_on INTO nxt FROM @extschema@.builders b
         WHERE b.name <> ALL (done) AND b.depends_on <@ done
         ORDER BY b.registered LIMIT 1;
        EXIT WHEN NOT FOUND;
        run_order := run_order + 1; name := nxt.name; depends_on := nxt.depends_on;
        done := done || nxt.name;
        RETURN NEXT;
    END LOOP;
    IF (SELECT count(*) FROM @extschema@.builders) > cardinality(done) THEN
        RAISE EXCEPTION 'guildstats: the builders % depend on each other in a cycle, so none of them can run first',
            (SELECT string_agg(b.name || ' (after ' || array_to_string(b.depends_on, ', ') || ')', ', ' ORDER BY b.name)
               FROM @extschema@.builders b WHERE b.name <> ALL (done))
            USING HINT = 'Remove one of the dependencies from guildstats.builders.depends_on.';
    END IF;
END
$$;
COMMENT ON FUNCTION builder_order() IS
    'The builders in the order build_all() runs them: each after every builder it depends on, ties in registration order. Raises an error naming the builders involved when their dependencies form a cycle or name no builder. Example: SELECT * FROM guildstats.builder_order();';

CREATE FUNCTION _builders_order_check()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM @extschema@.builder_order();
    -- Every builder has its lock row (builder_locks references builders, so none is left over).
    INSERT INTO @extschema@.builder_locks (builder)
    SELECT b.name FROM @extschema@.builders b ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION _builders_order_check() IS
    'Internal: after a change of builders, refuses a dependency cycle or an unknown dependency and gives every builder its row of builder_locks.';
CREATE TRIGGER builders_order_check AFTER INSERT OR UPDATE OR DELETE ON builders
    FOR EACH STATEMENT EXECUTE FUNCTION _builders_order_check();
COMMENT ON TRIGGER builders_order_check ON builders IS 'Keeps the registry runnable (see _builders_order_check).';

CREATE FUNCTION _run_builder(builder text, full boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := clock_timestamp();
    b        @extschema@.builders;
    claims   jsonb := '{}';
    result   jsonb;
    part     jsonb;
    planned  jsonb;
    status   text;
    t        text;
    guild    bigint;
BEGIN
    SELECT * INTO b FROM @extschema@.builders r WHERE r.name = _run_builder.builder;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'guildstats: no builder is named %', builder
            USING HINT = 'SELECT name FROM guildstats.builders lists them.';
    END IF;
    result := (SELECT jsonb_object_agg(c, 0) FROM unnest(b.counters) c);
    IF NOT @extschema@._try_builder_lock(builder) THEN
        RETURN result || jsonb_build_object(
            'elapsed', clock_timestamp() - started,
            'status', 'skipped: another ' || builder || '() is running' || coalesce(b.skipped_note, ''));
    END IF;
    IF _run_builder.full THEN
        PERFORM @extschema@._reset_progress(builder);
    END IF;
    FOREACH t IN ARRAY b.claims LOOP
        claims := claims || jsonb_build_object(t, @extschema@._claim_ingest_ids(builder, t));
    END LOOP;

    part := '{}';
    IF b.plan IS NOT NULL THEN
        EXECUTE format('SELECT %s($1, $2)', @extschema@._function_name(b.plan)) INTO part USING claims, _run_builder.full;
        result := @extschema@._add_counters(result, part, b.counters);
        status := part->>'status';
    END IF;
    planned := part;
    FOR guild IN
        SELECT g::bigint FROM jsonb_array_elements_text(part->'guilds') g WHERE b.per = 'guild'
        UNION ALL
        SELECT NULL WHERE b.per = 'all'
    LOOP
        EXECUTE format('SELECT %s($1, $2, $3)', @extschema@._function_name(b.step)) INTO part USING guild, claims, _run_builder.full;
        result := @extschema@._add_counters(result, part, b.counters);
        status := coalesce(part->>'status', status);
    END LOOP;
    IF b.finish IS NOT NULL THEN
        EXECUTE format('SELECT %s($1, $2, $3)', @extschema@._function_name(b.finish)) INTO part USING claims, _run_builder.full, planned;
        result := @extschema@._add_counters(result, part, b.counters);
        status := coalesce(part->>'status', status);
    END IF;
    RETURN result || jsonb_build_object(
        'elapsed', clock_timestamp() - started,
        'status', coalesce(status, CASE WHEN _run_builder.full THEN 'ok: full rebuild' ELSE 'ok' END));
END
$$;
COMMENT ON FUNCTION _run_builder(text, boolean) IS
    'Runs one builder of the registry in the caller''s transaction: takes its lock (or answers skipped), forgets its progress on full, claims its new raw rows, runs its plan, then its step for each guild (or once), then its finish, and returns its counters with elapsed and status as one JSON object. The public builder functions are this, turned into their rows.';

CREATE FUNCTION _add_counters(total jsonb, part jsonb, counters text[])
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT total || coalesce(jsonb_object_agg(c, coalesce((total->>c)::numeric, 0) + (part->>c)::numeric), '{}')
      FROM unnest(counters) c WHERE part ? c
$$;
COMMENT ON FUNCTION _add_counters(jsonb, jsonb, text[]) IS
    'Internal to _run_builder(): total with each of counters increased by its value in part.';

CREATE FUNCTION _function_name(f regprocedure)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('%I.%I', n.nspname, p.proname)
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.oid = f
$$;
COMMENT ON FUNCTION _function_name(regprocedure) IS
    'Internal to _run_builder(): the schema-qualified name to call a registered function by (its argument types pick the overload).';

CREATE FUNCTION _claimed(claims jsonb, source_table text)
RETURNS int8multirange
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((claims->>source_table)::int8multirange, '{}')
$$;
COMMENT ON FUNCTION _claimed(jsonb, text) IS
    'Internal to the builders'' plans and steps: the ingest ids of source_table that the runner claimed for this run.';
