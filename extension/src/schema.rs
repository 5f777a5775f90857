//! The extension's tables and views, in the order they must be created.

use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/extension/raw_tables.sql",
    name = "raw_tables",
    bootstrap
);
extension_sql_file!(
    "../../sql/extension/settings.sql",
    name = "settings",
    requires = ["raw_tables"]
);
extension_sql_file!(
    "../../sql/extension/et.sql",
    name = "et",
    // The comment blocks are created right after the Rust functions the SQL calls.
    requires = [
        "settings",
        "builders",
        "et_function_comments",
        "et_link_comment",
        "et_import_batch_comment"
    ]
);
extension_sql_file!(
    "../../sql/extension/et_reports.sql",
    name = "et_reports",
    requires = ["et"]
);
extension_sql_file!(
    "../../sql/extension/et_ratings.sql",
    name = "et_ratings",
    requires = ["et_reports", "builders"]
);
extension_sql_file!(
    "../../sql/extension/build_progress.sql",
    name = "build_progress",
    requires = ["raw_tables"]
);
// The registry and its runner: every builder's public function calls the runner.
extension_sql_file!(
    "../../sql/extension/builders.sql",
    name = "builders",
    requires = ["build_progress"]
);
extension_sql_file!(
    "../../sql/extension/members.sql",
    name = "members",
    requires = ["builders"]
);
extension_sql_file!(
    "../../sql/extension/voice_sessions.sql",
    name = "voice_sessions",
    requires = ["settings", "builders"]
);
extension_sql_file!(
    "../../sql/extension/events.sql",
    name = "events",
    requires = ["voice_sessions"]
);
extension_sql_file!(
    "../../sql/extension/rollups.sql",
    name = "rollups",
    requires = ["members", "events"]
);
extension_sql_file!(
    "../../sql/extension/privacy.sql",
    name = "privacy",
    requires = [
        "builders",
        "et_reports",
        "members",
        "voice_sessions",
        "events",
        "rollups"
    ]
);
extension_sql_file!(
    "../../sql/extension/game_sessions.sql",
    name = "game_sessions",
    requires = ["settings", "builders"]
);
extension_sql_file!(
    "../../sql/extension/funnel.sql",
    name = "funnel",
    requires = ["members", "events", "game_sessions", "et_reports"]
);
extension_sql_file!(
    "../../sql/extension/copresence.sql",
    name = "copresence",
    requires = [
        "settings",
        "members",
        "voice_sessions",
        "events",
        "retention"
    ]
);
extension_sql_file!(
    "../../sql/extension/build_all.sql",
    name = "build_all",
    requires = [
        "et",
        "et_ratings",
        "members",
        "voice_sessions",
        "events",
        "game_sessions",
        "rollups",
        "copresence"
    ]
);

extension_sql_file!(
    "../../sql/extension/mart.sql",
    name = "mart",
    // The BI views read every part of the schema.
    requires = [
        "activity",
        "economy",
        "et_reports",
        "rollups",
        "build_all",
        "game_sessions",
        "funnel",
        "copresence"
    ]
);

// The Discord commands' answers read every part of the schema (issue 14).
extension_sql_file!(
    "../../sql/extension/commands.sql",
    name = "commands",
    requires = [
        "activity",
        "economy",
        "retention",
        "et_reports",
        "members",
        "events",
        "game_sessions",
        "privacy",
        "copresence"
    ]
);

// Last of all (finalize): it puts every table with a guild_id and every view, whichever file
// made them, under per-guild isolation.
extension_sql_file!(
    "../../sql/extension/isolation.sql",
    name = "isolation",
    finalize
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    // Which raw tables exist is checked against the ingesters' catalogue end to end
    // (tests/tests/raw_contract.rs); a list here would be one more copy to keep in step.

    #[pg_test]
    fn the_same_voice_event_twice_leaves_one_row() {
        Spi::run(
            "INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
             VALUES (1, 2, 3, '2026-01-01 20:00+00', false, false) ON CONFLICT DO NOTHING;
             INSERT INTO guildstats.raw_voice_events (guild_id, user_id, channel_id, event_ts, self_mute, self_deaf)
             VALUES (1, 2, 3, '2026-01-01 20:00+00', false, false) ON CONFLICT DO NOTHING;",
        )
        .expect("insert");
        let rows = Spi::get_one::<i64>("SELECT count(*) FROM guildstats.raw_voice_events")
            .expect("SPI")
            .unwrap_or_default();
        assert_eq!(rows, 1);
    }

    #[pg_test]
    fn et_file_hash_is_computed_by_the_database() {
        let matches = Spi::get_one::<bool>(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
             VALUES ('2026-01-01-200000-supply-round-1.txt', 'test', 'abc'::bytea)
             RETURNING sha256 = sha256('abc'::bytea)",
        )
        .expect("SPI")
        .unwrap_or(false);
        assert!(matches);
    }

    #[pg_test]
    fn settings_resolve_guild_then_global_then_builtin() {
        Spi::run(
            "INSERT INTO guildstats.settings (guild_id, session_cap) VALUES (NULL, '8 hours');
             INSERT INTO guildstats.settings (guild_id, event_grace) VALUES (7, '5 minutes');",
        )
        .expect("insert settings");
        let (cap, grace, tz) = Spi::get_three::<String, String, String>(
            "SELECT session_cap::text, event_grace::text, calendar_time_zone
             FROM guildstats.settings_for(7)",
        )
        .expect("SPI");
        assert_eq!(cap.as_deref(), Some("08:00:00"));
        assert_eq!(grace.as_deref(), Some("00:05:00"));
        assert_eq!(tz.as_deref(), Some("UTC"));
    }

    #[pg_test(
        error = "new row for relation \"settings\" violates check constraint \"settings_calendar_time_zone_known\""
    )]
    fn an_unknown_time_zone_is_refused() {
        Spi::run("INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (1, 'Mars/Olympus')")
            .expect("insert");
    }
}
