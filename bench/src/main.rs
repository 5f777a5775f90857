//! `guildstats-bench`: runs each benchmark case on deterministic data in a database that has
//! the extension, times the extension beside the best plain-SQL baseline we know for the same
//! computation, checks that both give the same answer, and prints a table (and JSON).
//!
//! Times are medians of several runs; what matters is the ratio, measured in the same run on
//! the same data. Nothing here asserts a time.

mod cases;
mod report;

use clap::Parser;
use postgres::{Client, NoTls};
use report::Measurement;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Benchmark guildstats functions against plain-SQL baselines")]
struct Args {
    /// libpq connection string of a database with the guildstats extension.
    #[arg(long)]
    dsn: String,
    /// Rows (or events) per case; each case scales its data from this number.
    #[arg(long, default_value_t = 1_000_000)]
    scale: u64,
    /// Seed of the data generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Timed runs per query; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only the cases whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    if let Err(message) = run(&args) {
        eprintln!("guildstats-bench: {message}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut client = Client::connect(&args.dsn, NoTls)
        .map_err(|e| format!("cannot connect to {}: {e}", args.dsn))?;
    let mut results = Vec::new();
    for case in cases::all() {
        if let Some(only) = &args.only {
            if !case.name().contains(only.as_str()) {
                continue;
            }
        }
        eprintln!(
            "case {}: preparing {} rows (seed {})",
            case.name(),
            args.scale,
            args.seed
        );
        let rows = case
            .prepare(&mut client, args.scale, args.seed)
            .map_err(|e| format!("case {}: preparing data failed: {e}", case.name()))?;
        // Each case twice: serial, then with up to two parallel workers per query (the
        // planner still decides whether a parallel plan pays off).
        for workers in [0, 2] {
            client
                .batch_execute(&format!("SET max_parallel_workers_per_gather = {workers}"))
                .map_err(|e| format!("cannot set parallel workers: {e}"))?;
            let (extension_ms, extension_answer) =
                time_query(&mut client, case.extension_sql(), args.runs)
                    .map_err(|e| format!("case {}: extension query failed: {e}", case.name()))?;
            let (baseline_ms, baseline_answer) =
                time_query(&mut client, case.baseline_sql(), args.runs)
                    .map_err(|e| format!("case {}: baseline query failed: {e}", case.name()))?;
            if extension_answer != baseline_answer {
                return Err(format!(
                    "case {}: the extension and the baseline disagree: {extension_answer} vs {baseline_answer}",
                    case.name()
                ));
            }
            results.push(Measurement {
                case: format!("{} (workers {workers})", case.name()),
                rows,
                extension_ms,
                baseline_ms,
            });
        }
    }
    print!("{}", report::table(&results));
    if let Some(path) = &args.json {
        std::fs::write(path, report::json(&results))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs `sql` (which must return one text value summarising its answer) `runs` times and
/// returns the median time in milliseconds with the answer.
fn time_query(
    client: &mut Client,
    sql: &str,
    runs: usize,
) -> Result<(f64, String), postgres::Error> {
    let mut times = Vec::with_capacity(runs.max(1));
    let mut answer = String::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let row = client.query_one(sql, &[])?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        answer = row.get::<_, Option<String>>(0).unwrap_or_default();
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], answer))
}
