-- One call that runs every builder in order: what pg_cron schedules (sql/ops/cron.sql).

CREATE FUNCTION build_all()
RETURNS TABLE (builder text, status text, elapsed interval)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@.import_et_rounds();
    builder := 'import_et_rounds'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_et_ratings();
    builder := 'build_et_ratings'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_members();
    builder := 'build_members'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_voice_sessions();
    builder := 'build_voice_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_voice_copresence();
    builder := 'build_voice_copresence'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_event_attendance();
    builder := 'build_event_attendance'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_game_sessions();
    builder := 'build_game_sessions'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
    SELECT * INTO r FROM @extschema@.build_rollups();
    builder := 'build_rollups'; status := r.status; elapsed := r.elapsed;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION build_all() IS
    'Runs every builder in dependency order (import_et_rounds, build_et_ratings, build_members, build_voice_sessions, build_voice_copresence, build_event_attendance, build_game_sessions, build_rollups) in the caller''s transaction and returns one row per builder with its status. What pg_cron runs every minute (sql/ops/cron.sql).';
