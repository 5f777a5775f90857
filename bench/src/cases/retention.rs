//! Weekly retention cohorts over raw activity rows: `retention_agg` + `retention_rows` against
//! the best plain-SQL cohort query we know (distinct user-weeks, first week per user, offsets,
//! then exact counts and "that week or later" counts from each user's last offset, with a
//! generated grid of offsets so empty cells appear too). Both read local timestamps.

use super::{copy_rows, Case};
use postgres::Client;
use std::io::Write;

pub struct Retention;

impl Case for Retention {
    fn compares_parallel_plans(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "retention"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        client
            .batch_execute(
                "DROP TABLE IF EXISTS bench_activity;
                 CREATE UNLOGGED TABLE bench_activity (user_id bigint NOT NULL, activity_at timestamp NOT NULL);",
            )
            .map_err(|e| e.to_string())?;
        copy_rows(
            client,
            "COPY bench_activity (user_id, activity_at) FROM STDIN",
            guildstats_synth::activity::activity(seed, scale as usize),
            |buf, (user, at)| {
                write!(buf, "{user}\t")?;
                at.write_pg(buf);
                buf.push(b'\n');
                Ok(())
            },
        )?;
        client
            .batch_execute("VACUUM ANALYZE bench_activity")
            .map_err(|e| e.to_string())?;
        Ok(scale)
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT md5(string_agg(format('%s %s %s %s %s', r.cohort_start, r.cohort_size, r.period_offset,
                                      r.retained, r.retained_or_later), ',' ORDER BY r.cohort_start, r.period_offset))
         FROM (SELECT guildstats.retention_agg(user_id, NULL, activity_at, 'week') AS s FROM bench_activity) a,
              guildstats.retention_rows(a.s) r"
    }

    fn baseline_sql(&self) -> &'static str {
        "WITH weeks AS (SELECT DISTINCT user_id, date_trunc('week', activity_at)::date AS wk FROM bench_activity),
              users AS (SELECT user_id, min(wk) AS cohort, max(wk) AS last_wk FROM weeks GROUP BY user_id),
              exact AS (SELECT u.cohort, (w.wk - u.cohort) / 7 AS k, count(*) AS retained
                        FROM weeks w JOIN users u USING (user_id) GROUP BY 1, 2),
              last_k AS (SELECT cohort, (last_wk - cohort) / 7 AS k, count(*) AS users
                         FROM users GROUP BY 1, 2),
              sizes AS (SELECT cohort, count(*) AS size FROM users GROUP BY cohort),
              grid AS (SELECT s.cohort, s.size, g.k
                       FROM sizes s, (SELECT max(wk) AS h FROM weeks) h,
                            generate_series(0, (h.h - s.cohort) / 7) g(k)),
              cells AS (SELECT g.cohort, g.size, g.k, coalesce(e.retained, 0) AS retained,
                               sum(coalesce(l.users, 0)) OVER (PARTITION BY g.cohort ORDER BY g.k DESC) AS or_later
                        FROM grid g
                        LEFT JOIN exact e ON e.cohort = g.cohort AND e.k = g.k
                        LEFT JOIN last_k l ON l.cohort = g.cohort AND l.k = g.k)
         SELECT md5(string_agg(format('%s %s %s %s %s', cohort, size, k, retained, or_later), ','
                               ORDER BY cohort, k))
         FROM cells"
    }
}
