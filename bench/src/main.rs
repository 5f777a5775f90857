//! `guildstats-bench`: runs each benchmark case on deterministic data in a database that has
//! the extension, times the extension beside the best plain-SQL baseline we know for the same
//! computation, checks that both give the same answer, and prints a table (and JSON).
//!
//! Times are medians of several runs; what matters is the ratio, measured in the same run on
//! the same data. Nothing here asserts a time.

mod cases;
mod report;

use cases::Side;
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
        if rows == 0 {
            continue;
        }
        // Aggregates twice: serial, then with up to two parallel workers per query (the
        // planner still decides whether a parallel plan pays off). Other cases once.
        let worker_settings: &[Option<u32>] = if case.compares_parallel_plans() {
            &[Some(0), Some(2)]
        } else {
            &[None]
        };
        for &workers in worker_settings {
            if let Some(workers) = workers {
                client
                    .batch_execute(&format!("SET max_parallel_workers_per_gather = {workers}"))
                    .map_err(|e| format!("cannot set parallel workers: {e}"))?;
            }
            let (extension_ms, extension_answer) =
                time_runs(&mut client, case.as_ref(), args.runs, Side::Extension)
                    .map_err(|e| format!("case {}: extension failed: {e}", case.name()))?;
            let (baseline_ms, baseline_answer) =
                time_runs(&mut client, case.as_ref(), args.runs, Side::Baseline)
                    .map_err(|e| format!("case {}: baseline failed: {e}", case.name()))?;
            if extension_answer != baseline_answer {
                return Err(format!(
                    "case {}: the extension and the baseline disagree: {extension_answer} vs {baseline_answer}",
                    case.name()
                ));
            }
            results.push(Measurement {
                case: match workers {
                    Some(workers) => format!("{} (workers {workers})", case.name()),
                    None => case.name().to_string(),
                },
                rows,
                extension_ms,
                baseline_ms,
                floor: case.baseline_is_write_floor(),
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

/// Runs one side of a case `runs` times (each after the case's untimed reset) and returns the
/// median time in milliseconds with the answer.
fn time_runs(
    client: &mut Client,
    case: &dyn cases::Case,
    runs: usize,
    side: Side,
) -> Result<(f64, String), String> {
    let mut times = Vec::with_capacity(runs.max(1));
    let mut answer = String::new();
    for _ in 0..runs.max(1) {
        case.reset(client)?;
        let started = Instant::now();
        answer = match side {
            Side::Extension => case.run_extension(client)?,
            Side::Baseline => case.run_baseline(client)?,
        };
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(summary) = case.answer_after(client, side)? {
            answer = summary;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], answer))
}
