//! `gini(balance)` over one balance per account against the best plain-SQL Gini we know:
//! group equal balances, then one window pass over the distinct values
//! (`Σ c·(before·v - prefix) / (n·S)`, exact in numeric). The textbook form
//! (`row_number() OVER (ORDER BY balance)` over every row) sorts all rows and is slower still.

use super::{copy_rows, Case};
use postgres::Client;
use std::io::Write;

pub struct Gini;

impl Case for Gini {
    fn compares_parallel_plans(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "gini"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        client
            .batch_execute(
                "DROP TABLE IF EXISTS bench_gini;
                 CREATE UNLOGGED TABLE bench_gini (user_id bigint NOT NULL, balance bigint NOT NULL);",
            )
            .map_err(|e| e.to_string())?;
        copy_rows(
            client,
            "COPY bench_gini (user_id, balance) FROM STDIN",
            guildstats_synth::balances::balances(seed, scale as usize).enumerate(),
            |buf, (id, balance)| writeln!(buf, "{id}\t{balance}"),
        )?;
        client
            .batch_execute("VACUUM ANALYZE bench_gini")
            .map_err(|e| e.to_string())?;
        Ok(scale)
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT round(guildstats.gini(balance)::numeric, 10)::text FROM bench_gini"
    }

    fn baseline_sql(&self) -> &'static str {
        "WITH counted AS (SELECT balance AS v, count(*) AS c FROM bench_gini GROUP BY balance),
              running AS (SELECT v, c, sum(c) OVER w - c AS before, sum(v * c) OVER w - v * c AS prefix
                          FROM counted WINDOW w AS (ORDER BY v))
         SELECT round(sum(c * (before * v - prefix)) / (sum(c) * sum(v * c)), 10)::text FROM running"
    }
}
