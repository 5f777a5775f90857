//! Colour-code stripping of ET:Legacy player names: `et_clean_name(name)` against the regular
//! expression a SQL user would write for the same rule.

use super::{copy_rows, Case};
use postgres::Client;
use std::io::Write;

pub struct EtCleanName;

impl Case for EtCleanName {
    fn name(&self) -> &'static str {
        "et_clean_name"
    }

    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String> {
        client
            .batch_execute(
                "DROP TABLE IF EXISTS bench_et_names;
                 CREATE UNLOGGED TABLE bench_et_names (id bigint PRIMARY KEY, name text NOT NULL);",
            )
            .map_err(|e| e.to_string())?;
        copy_rows(
            client,
            "COPY bench_et_names (id, name) FROM STDIN",
            guildstats_synth::et_names::player_names(seed, scale as usize)
                .into_iter()
                .enumerate(),
            |buf, (id, name)| writeln!(buf, "{id}\t{}", guildstats_synth::copy::escape_text(&name)),
        )?;
        client
            .batch_execute("ANALYZE bench_et_names")
            .map_err(|e| e.to_string())?;
        Ok(scale)
    }

    fn extension_sql(&self) -> &'static str {
        "SELECT md5(string_agg(guildstats.et_clean_name(name), E'\\n' ORDER BY id)) FROM bench_et_names"
    }

    fn baseline_sql(&self) -> &'static str {
        // `^` followed by any character but `^` is a colour code; a `^` before `^` or at the end
        // stays. Non-overlapping left-to-right matching gives exactly that rule.
        "SELECT md5(string_agg(regexp_replace(name, '\\^[^^]', '', 'g'), E'\\n' ORDER BY id)) FROM bench_et_names"
    }
}
