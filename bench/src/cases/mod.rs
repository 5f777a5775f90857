//! Benchmark cases. Each one prepares its data, then names two queries that compute the same
//! thing, one with the extension and one in plain SQL, each returning a single text value that
//! summarises the whole answer (so that the harness can check they agree).

mod et_clean_name;
mod gini;
mod retention;

use postgres::Client;

pub trait Case {
    fn name(&self) -> &'static str;
    /// Creates the case's tables from the shared generator; returns the number of input rows.
    fn prepare(&self, client: &mut Client, scale: u64, seed: u64) -> Result<u64, String>;
    fn extension_sql(&self) -> &'static str;
    fn baseline_sql(&self) -> &'static str;
}

pub fn all() -> Vec<Box<dyn Case>> {
    vec![
        Box::new(et_clean_name::EtCleanName),
        Box::new(gini::Gini),
        Box::new(retention::Retention),
    ]
}
