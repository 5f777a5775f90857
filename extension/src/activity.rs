//! Activity metrics, game-server windows and `health()`: plain SQL over the raw tables and the
//! `activity_events` view, in `sql/extension/activity.sql`. Nothing here needs Rust yet; the
//! module keeps the SQL file's place in the creation order and its in-database tests.

use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/extension/activity.sql",
    name = "activity",
    requires = ["retention"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn dau_wau_mau_count_distinct_users() {
        Spi::run(
            "INSERT INTO guildstats.raw_messages (guild_id, channel_id, user_id, message_id, sent_at) VALUES
               (1, 1, 10, 1, '2026-03-01 10:00+00'), (1, 1, 10, 2, '2026-03-01 11:00+00'),
               (1, 1, 11, 3, '2026-03-03 10:00+00'), (1, 1, 10, 4, '2026-03-09 10:00+00');",
        )
        .expect("insert");
        let rows = Spi::get_one::<String>(
            "SELECT string_agg(format('%s:%s/%s/%s/%s', day, dau, wau, mau, new_users), ' ' ORDER BY day)
             FROM guildstats.activity_daily(1, '2026-03-01', '2026-03-09')
             WHERE day IN ('2026-03-01', '2026-03-03', '2026-03-08', '2026-03-09')",
        )
        .expect("SPI");
        assert_eq!(
            rows.as_deref(),
            Some("2026-03-01:1/1/1/1 2026-03-03:1/2/2/1 2026-03-08:0/1/2/0 2026-03-09:1/2/2/0")
        );
    }
}
