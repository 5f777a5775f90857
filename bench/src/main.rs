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
            let load_before = load_average();
            let timed = time_interleaved(&mut client, case.as_ref(), args.runs)
                .map_err(|e| format!("case {}: {e}", case.name()))?;
            let load = format!("{load_before} -> {}", load_average());
            if timed.extension_answer != timed.baseline_answer {
                return Err(format!(
                    "case {}: the extension and the baseline disagree: {} vs {}",
                    case.name(),
                    timed.extension_answer,
                    timed.baseline_answer
                ));
            }
            results.push(Measurement {
                case: match workers {
                    Some(workers) => format!("{} (workers {workers})", case.name()),
                    None => case.name().to_string(),
                },
                rows,
                extension_ms: timed.extension_ms,
                baseline_ms: timed.baseline_ms,
                floor: case.baseline_is_write_floor(),
                note: case.note().map(str::to_string),
                load_average: load,
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

/// The medians of both sides of a case, and their answers.
struct Timed {
    extension_ms: f64,
    baseline_ms: f64,
    extension_answer: String,
    baseline_answer: String,
}

/// Runs the extension and the baseline `runs` times each, alternately (each after the case's
/// untimed reset), and returns each side's median. On a machine shared with other work the
/// load changes within a case: alternating lets both sides meet the same load, where all the
/// runs of one side and then all of the other would compare two different machines.
fn time_interleaved(
    client: &mut Client,
    case: &dyn cases::Case,
    runs: usize,
) -> Result<Timed, String> {
    let mut extension = Vec::with_capacity(runs.max(1));
    let mut baseline = Vec::with_capacity(runs.max(1));
    let mut timed = Timed {
        extension_ms: 0.0,
        baseline_ms: 0.0,
        extension_answer: String::new(),
        baseline_answer: String::new(),
    };
    for _ in 0..runs.max(1) {
        let (ms, answer) = time_one(client, case, Side::Extension)
            .map_err(|e| format!("extension failed: {e}"))?;
        extension.push(ms);
        timed.extension_answer = answer;
        let (ms, answer) =
            time_one(client, case, Side::Baseline).map_err(|e| format!("baseline failed: {e}"))?;
        baseline.push(ms);
        timed.baseline_answer = answer;
    }
    timed.extension_ms = median(&mut extension);
    timed.baseline_ms = median(&mut baseline);
    Ok(timed)
}

/// One timed run of one side after the case's untimed reset: milliseconds and the answer.
fn time_one(
    client: &mut Client,
    case: &dyn cases::Case,
    side: Side,
) -> Result<(f64, String), String> {
    case.reset(client)?;
    let started = Instant::now();
    let mut answer = match side {
        Side::Extension => case.run_extension(client)?,
        Side::Baseline => case.run_baseline(client)?,
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(summary) = case.answer_after(client, side)? {
        answer = summary;
    }
    Ok((ms, answer))
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The machine's 1-minute load average (from /proc/loadavg), "?" where there is none.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}
