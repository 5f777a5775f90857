-- The builders this extension ships, registered in the order build_all() ran them before it
-- derived the order from depends_on (registration breaks ties), and the one call that runs them
-- all: what pg_cron schedules (sql/ops/cron.sql). DEVELOPERS.md: "How to add a builder".

INSERT INTO builders (name, reads, claims, depends_on, per, plan, step, counters, skipped_note) VALUES
    ('import_et_rounds',
     '{raw_et_stats_files,et_rounds,et_player_rounds,et_matches,et_sessions,et_link_state,settings}',
     '{}', '{}', 'all', NULL,
     '_import_et_rounds_step(bigint, jsonb, boolean)',
     '{files_read,rounds_imported,files_failed,rounds_linked,round2_recomputed,orphan_round2,sessions}',
     '; its results will be there when it commits'),
    ('build_et_ratings',
     '{raw_et_stats_files,et_rounds,et_player_rounds,et_matches,et_rated_maps,et_rating_history,et_ratings}',
     '{raw_et_stats_files}', '{import_et_rounds}', 'all', NULL,
     '_build_et_ratings_step(bigint, jsonb, boolean)',
     '{maps_rated,maps_replayed,players_rated}', NULL),
    ('build_members',
     '{raw_voice_events,raw_messages,raw_member_events,raw_point_transactions,members}',
     '{raw_voice_events,raw_messages,raw_member_events,raw_point_transactions}', '{}', 'guild',
     '_build_members_plan(jsonb, boolean)', '_build_members_step(bigint, jsonb, boolean)',
     '{rows_read,members_added,members_updated}', NULL),
    ('build_voice_sessions',
     '{raw_voice_events,raw_voice_snapshots,raw_heartbeats,settings,voice_build_guilds,voice_sessions}',
     '{raw_voice_events,raw_voice_snapshots,raw_heartbeats}', '{}', 'guild',
     '_build_voice_sessions_plan(jsonb, boolean)', '_build_voice_sessions_step(bigint, jsonb, boolean)',
     '{events_read,snapshots_read,heartbeats_read,guilds_built,users_rebuilt,sessions_opened,sessions_closed,sessions_updated,sessions_removed}',
     NULL),
    ('build_voice_copresence',
     '{settings,voice_session_changes,voice_build_guilds,voice_sessions,voice_copresence_guilds,voice_copresence_daily}',
     '{}', '{build_voice_sessions}', 'guild',
     '_build_voice_copresence_plan(jsonb, boolean)', '_build_voice_copresence_step(bigint, jsonb, boolean)',
     '{guilds_refreshed,pair_rows}', NULL),
    ('build_event_attendance',
     '{raw_scheduled_events,settings,voice_session_changes,voice_build_guilds,voice_sessions,events,event_attendance}',
     '{raw_scheduled_events}', '{build_voice_sessions}', 'guild',
     '_build_event_attendance_plan(jsonb, boolean)', '_build_event_attendance_step(bigint, jsonb, boolean)',
     '{observations_read,events_built,attendance_rows}', NULL),
    ('build_game_sessions',
     '{raw_server_polls,raw_server_players,settings,game_sessions}',
     '{raw_server_polls,raw_server_players}', '{}', 'all', NULL,
     '_build_game_sessions_step(bigint, jsonb, boolean)',
     '{rows_read,servers_rebuilt,sessions_removed,sessions_written}', NULL),
    ('build_rollups',
     '{raw_messages,raw_voice_events,raw_point_transactions,raw_server_polls,raw_member_events,raw_heartbeats,raw_et_stats_files,settings,members,voice_session_changes,voice_build_guilds,voice_sessions,events,event_attendance,member_voice_daily,member_engagement_weekly,member_monthly_status,member_active_days,guild_activity_daily,chat_channel_daily,chat_activity_5min,guild_voice_hourly,member_points_daily,economy_daily,member_point_balances,guild_points_reason_daily,member_points_monthly,guild_monthly_status,member_messages_daily,member_messages_monthly,server_polls_hourly,ingest_lag_rollup,guild_voice_daily,member_voice_monthly,guild_engagement_weekly,member_engagement_monthly,guild_retention_cohorts}',
     '{raw_messages,raw_voice_events,raw_point_transactions,raw_server_polls,raw_member_events,raw_heartbeats,raw_et_stats_files}', '{build_members,build_voice_sessions,build_event_attendance}', 'guild',
     '_build_rollups_plan(jsonb, boolean)', '_build_rollups_step(bigint, jsonb, boolean)',
     '{guilds_refreshed,daily_rows,weekly_rows,monthly_rows}', NULL);

-- A full voice rebuild writes every guild's sessions before voice_sessions has its indexes back
-- (issue 13, item 8): the plan drops them, the finish builds them after the last guild.
UPDATE builders SET finish = '_build_voice_sessions_finish(jsonb, boolean, jsonb)'
 WHERE name = 'build_voice_sessions';

-- Each builder in its own subtransaction: one that fails rolls back its own work and progress
-- and is reported, the others keep theirs, and those that read its output wait for the next run.
CREATE FUNCTION build_all()
RETURNS TABLE (builder text, status text, elapsed interval)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    b       record;
    r       jsonb;
    failed  text[] := '{}';
    started timestamptz;
BEGIN
    FOR b IN SELECT o.name, o.depends_on FROM @extschema@.builder_order() o ORDER BY o.run_order LOOP
        builder := b.name;
        IF b.depends_on && failed THEN
            status := 'not run: ' || array_to_string(ARRAY(SELECT unnest(b.depends_on) INTERSECT SELECT unnest(failed) ORDER BY 1), ', ')
                      || ' failed';
            elapsed := interval '0';
            failed := failed || b.name;
            RETURN NEXT;
            CONTINUE;
        END IF;
        started := clock_timestamp();
        BEGIN
            r := @extschema@._run_builder(b.name);
            status := r->>'status';
            elapsed := (r->>'elapsed')::interval;
        EXCEPTION WHEN OTHERS THEN
            status := 'error: ' || SQLERRM;
            elapsed := clock_timestamp() - started;
            failed := failed || b.name;
            RAISE WARNING 'guildstats: build_all(): % failed: %', b.name, SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION build_all() IS
    'Runs every builder of guildstats.builders in dependency order (builder_order()) in the caller''s transaction and returns one row per builder with its status: ok, skipped while another call runs it, error: and the message when it failed (its work and progress are rolled back, the others keep theirs), or not run when a builder it depends on failed. What pg_cron runs every minute (sql/ops/cron.sql).';
