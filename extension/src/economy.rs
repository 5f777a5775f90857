//! `economy_health(guild_id, from_day, to_day)`: the points economy day by day.
//!
//! SQL sums the ledger per user and calendar day (in the guild's time zone) and streams it in
//! day order; `guildstats_engine::economy` walks it. Days before `from_day` are folded into one
//! opening bucket (three days before it, so the negative-net streak is still exact).

use guildstats_engine::economy::{
    economy_health, economy_health_continued, Flow, HealthDay, Opening, Thresholds,
};
use pgrx::datum::Date;
use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/extension/economy.sql",
    name = "economy",
    requires = ["gini", _economy_health, _economy_health_continued]
);

/// The flows of the days a continued walk rewrites, from the member_points_daily rollup.
const ROLLUP_FLOWS: &str = "
SELECT (p.day - DATE '2000-01-01')::int4 AS day, p.user_id,
       sum(p.earned)::int8 AS earned, sum(p.spent)::int8 AS spent
FROM guildstats.member_points_daily p
WHERE p.guild_id = $1 AND p.day BETWEEN $2 AND $3
GROUP BY 1, 2
ORDER BY 1";

const OPENING: &str = "
SELECT b.user_id, b.balance FROM guildstats.member_point_balances b WHERE b.guild_id = $1";

/// One row of economy_health(), in the order of the signatures below.
type HealthRow = (
    Date,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i32,
    bool,
    bool,
    bool,
    Vec<String>,
);

const FLOWS: &str = "
WITH zone AS (SELECT calendar_time_zone AS tz FROM guildstats.settings_for($1))
SELECT (greatest((t.tx_ts AT TIME ZONE zone.tz)::date, $2 - 3) - DATE '2000-01-01')::int4 AS day,
       t.user_id,
       coalesce(sum(t.amount) FILTER (WHERE t.amount > 0), 0)::int8 AS earned,
       coalesce(-sum(t.amount) FILTER (WHERE t.amount < 0), 0)::int8 AS spent
FROM guildstats.raw_point_transactions t, zone
WHERE t.guild_id = $1 AND t.tx_ts < (($3 + 1)::timestamp AT TIME ZONE zone.tz)
GROUP BY 1, 2
ORDER BY 1";

/// Internal: the walk behind `economy_health`; see sql/extension/economy.sql.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, strict, parallel_restricted)]
fn _economy_health(
    guild_id: i64,
    from_day: Date,
    to_day: Date,
) -> TableIterator<
    'static,
    (
        name!(day, Date),
        name!(circulation, i64),
        name!(earned, i64),
        name!(spent, i64),
        name!(net, i64),
        name!(accounts, i64),
        name!(users_with_points, i64),
        name!(median_balance, Option<f64>),
        name!(top1_share, Option<f64>),
        name!(gini, Option<f64>),
        name!(inflation, Option<f64>),
        name!(negative_streak, i32),
        name!(alert_inflation, bool),
        name!(alert_net_negative, bool),
        name!(alert_gini, bool),
        name!(alerts, Vec<String>),
    ),
> {
    let (from, to) = checked_days(from_day, to_day);
    let flows = Spi::connect(|client| read_flows(client, FLOWS, guild_id, from_day, to_day))
        .unwrap_or_else(|e| {
            crate::error::raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("economy_health: reading the ledger failed: {e}"),
            )
        });
    let days = economy_health(flows, from, to, Thresholds::default());
    TableIterator::new(days.into_iter().map(health_row))
}

/// Internal: economy_health()'s days from_day..to_day for build_rollups(), continued from
/// member_point_balances (every balance at the end of the day before from_day) and the
/// negative-net streak of that day, reading only the rewritten days' flows from
/// member_points_daily; see sql/extension/rollups.sql.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, strict, parallel_restricted)]
fn _economy_health_continued(
    guild_id: i64,
    from_day: Date,
    to_day: Date,
    streak_before: i32,
) -> TableIterator<
    'static,
    (
        name!(day, Date),
        name!(circulation, i64),
        name!(earned, i64),
        name!(spent, i64),
        name!(net, i64),
        name!(accounts, i64),
        name!(users_with_points, i64),
        name!(median_balance, Option<f64>),
        name!(top1_share, Option<f64>),
        name!(gini, Option<f64>),
        name!(inflation, Option<f64>),
        name!(negative_streak, i32),
        name!(alert_inflation, bool),
        name!(alert_net_negative, bool),
        name!(alert_gini, bool),
        name!(alerts, Vec<String>),
    ),
> {
    let (from, to) = checked_days(from_day, to_day);
    let (balances, flows) = Spi::connect(|client| -> Result<_, pgrx::spi::Error> {
        let mut balances = Vec::new();
        for row in client.select(OPENING, None, &[guild_id.into()])? {
            balances.push((
                row.get::<i64>(1)?.unwrap_or_default(),
                row.get::<i64>(2)?.unwrap_or_default(),
            ));
        }
        let flows = read_flows(client, ROLLUP_FLOWS, guild_id, from_day, to_day)?;
        Ok((balances, flows))
    })
    .unwrap_or_else(|e| {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("economy_health: reading the rollups failed: {e}"),
        )
    });
    let opening = Opening {
        balances,
        streak: u32::try_from(streak_before).unwrap_or(0),
    };
    let days = economy_health_continued(opening, flows, from, to, Thresholds::default());
    TableIterator::new(days.into_iter().map(health_row))
}

fn checked_days(from_day: Date, to_day: Date) -> (i32, i32) {
    if !from_day.is_finite() || !to_day.is_finite() {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "economy_health: from_day and to_day must be finite dates",
        );
    }
    let (from, to) = (from_day.to_pg_epoch_days(), to_day.to_pg_epoch_days());
    if to < from || to - from > 36_600 {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("economy_health: need from_day <= to_day within 100 years, got {from_day} .. {to_day}"),
        );
    }
    (from, to)
}

/// Per user and day flows (day, user_id, earned, spent), in day order, from `query($1 guild, $2 from, $3 to)`.
fn read_flows(
    client: &pgrx::spi::SpiClient<'_>,
    query: &str,
    guild_id: i64,
    from_day: Date,
    to_day: Date,
) -> Result<Vec<Flow>, pgrx::spi::Error> {
    let mut flows = Vec::new();
    let mut cursor = client.open_cursor(query, &[guild_id.into(), from_day.into(), to_day.into()]);
    loop {
        let batch = cursor.fetch(10_000)?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            flows.push(Flow {
                day: row.get::<i32>(1)?.unwrap_or_default(),
                user_id: row.get::<i64>(2)?.unwrap_or_default(),
                earned: row.get::<i64>(3)?.unwrap_or_default(),
                spent: row.get::<i64>(4)?.unwrap_or_default(),
            });
        }
    }
    Ok(flows)
}

fn health_row(d: HealthDay) -> HealthRow {
    let alerts = d.alerts().into_iter().map(str::to_owned).collect();
    (
        // SAFETY: the days lie between two finite dates checked by checked_days().
        unsafe { Date::from_pg_epoch_days(d.day) },
        d.circulation,
        d.earned,
        d.spent,
        d.net,
        d.accounts,
        d.users_with_points,
        d.median_balance,
        d.top1_share,
        d.gini,
        d.inflation,
        d.negative_streak.min(i32::MAX as u32) as i32,
        d.alert_inflation,
        d.alert_net_negative,
        d.alert_gini,
        alerts,
    )
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn balances_as_of_each_day_in_the_guild_time_zone() {
        Spi::run(
            "INSERT INTO guildstats.settings (guild_id, calendar_time_zone) VALUES (1, 'Europe/Berlin');
             INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, tx_ts, tx_key) VALUES
               (1, 10, 100, '2026-03-01 10:00+00', 'a'),
               (1, 11, 100, '2026-03-01 23:30+00', 'b'),  -- 2026-03-02 in Berlin
               (1, 10, -40, '2026-03-03 12:00+00', 'c'),
               (2, 10, 999, '2026-03-01 12:00+00', 'other guild');",
        )
        .expect("insert");
        let rows = Spi::get_one::<String>(
            "SELECT string_agg(format('%s %s %s %s %s', day, circulation, earned, spent, users_with_points), '; ' ORDER BY day)
             FROM guildstats.economy_health(1)",
        )
        .expect("SPI");
        assert_eq!(
            rows.as_deref(),
            Some("2026-03-01 100 100 0 1; 2026-03-02 200 100 0 2; 2026-03-03 160 0 40 2")
        );
    }
}
