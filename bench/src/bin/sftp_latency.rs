//! guildstats-sftp with its production defaults, against a real sshd (sftp-server.sh) and the
//! benchmark cluster: the time from a stats file landing in the remote directory to its rows
//! in et_player_rounds, with import_et_rounds() called every 10 ms while waiting (standing in
//! for build_all(), which pg_cron runs only every minute: that wait is not measured), beside
//! a direct INSERT and import of a file (the import's own cost) measured in the same run, and the puller's resident memory idle and at its peak over a busy pull,
//! beside the 30 MB budget. Prints measurements; asserts nothing. `scripts/bench` runs it.
//!
//!   sftp_latency --dsn DSN --puller PATH [--fixtures DIR] [--samples N] [--busy N]
//!
//! DSN must name a database of its own with the extension (the files must be new to it).

use clap::Parser;
use guildstats_e2e::sftp::{wait_until, Puller, SshServer};
use postgres::{Client, NoTls};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    dsn: String,
    /// The guildstats-sftp binary to measure.
    #[arg(long)]
    puller: PathBuf,
    /// The real ET:Legacy files [default: $GUILDSTATS_FIXTURES_DIR/et/real].
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Files timed one at a time, through the puller and directly.
    #[arg(long, default_value_t = 8)]
    samples: usize,
    /// Files dropped at once for the busy phase.
    #[arg(long, default_value_t = 200)]
    busy: usize,
}

const BUDGET_MB: f64 = 30.0;
const PATIENCE: Duration = Duration::from_secs(120);

fn main() {
    let args = Args::parse();
    let fixtures = args.fixtures.clone().unwrap_or_else(|| {
        std::env::var("GUILDSTATS_FIXTURES_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
            })
            .join("et/real")
    });
    let Ok(entries) = std::fs::read_dir(&fixtures) else {
        println!(
            "sftp latency: no fixtures at {}: skipped",
            fixtures.display()
        );
        return;
    };
    let Some(server) = SshServer::start("sftp_latency") else {
        println!("sftp latency: no sshd (needs root and ../shared/tools): skipped");
        return;
    };
    // Round files with players, so that rows appear in et_player_rounds.
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let content = std::fs::read(e.path()).ok()?;
            (name.ends_with(".txt") && content.len() > 300).then_some((name, content))
        })
        .collect();
    files.sort();
    let samples = args.samples.max(1);
    assert!(
        files.len() > 2 * samples,
        "not enough fixture files for {samples} samples"
    );
    let (direct_files, rest) = files.split_at(samples);
    let (pulled_files, busy_files) = rest.split_at(samples);
    let busy_files = &busy_files[..args.busy.min(busy_files.len())];
    let mut db = Client::connect(&args.dsn, NoTls).expect("benchmark database");

    // Baseline: the same kind of file inserted straight into the table, as a client would.
    let mut direct = Vec::new();
    for (name, content) in direct_files {
        let started = Instant::now();
        db.execute(
            "INSERT INTO guildstats.raw_et_stats_files (file_name, source, content)
             VALUES ($1, 'bench-direct', $2) ON CONFLICT DO NOTHING",
            &[name, content],
        )
        .expect("direct insert");
        wait_for_rows(&mut db, name);
        direct.push(started.elapsed());
    }

    let work = std::env::temp_dir().join(format!("gs-bench-sftp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let mut puller_args = server.puller_args();
    puller_args.extend([
        "--spool".to_string(),
        work.join("spool").display().to_string(),
    ]);
    let mut puller = Puller::spawn_binary(
        &args.puller,
        &puller_args,
        &args.dsn,
        &work.join("pull.log"),
    );
    wait_until(
        "the puller's first connection",
        PATIENCE,
        || puller.log_text().contains("connected host_key"),
        || puller.log_text(),
    );
    std::thread::sleep(Duration::from_secs(3));

    // Files land at different moments of the poll cycle.
    let mut pulled = Vec::new();
    for (i, (name, content)) in pulled_files.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(500 + (i as u64 * 730) % 2000));
        let started = Instant::now();
        server.drop_file(name, content);
        wait_for_rows(&mut db, name);
        pulled.push(started.elapsed());
    }
    std::thread::sleep(Duration::from_secs(3));
    let idle = memory_kb(puller.pid(), "VmRSS:");

    let before = stored(&mut db);
    let started = Instant::now();
    for (name, content) in busy_files {
        server.drop_file(name, content);
    }
    let want = before + busy_files.len() as i64;
    wait_until(
        "the busy pull",
        PATIENCE,
        || stored(&mut db) >= want,
        || puller.log_text(),
    );
    let busy_seconds = started.elapsed().as_secs_f64();
    let peak = memory_kb(puller.pid(), "VmHWM:");
    puller.terminate();
    let _ = std::fs::remove_dir_all(&work);

    let (pulled_median, direct_median) = (median(&mut pulled), median(&mut direct));
    println!(
        "sftp file-to-rows latency (defaults: poll 2000 ms, settle 1000 ms, batch 1000 ms): \
         median {} ms (min {} ms, max {} ms) over {} files; direct INSERT {} ms; ratio {:.0}x",
        pulled_median.as_millis(),
        pulled.iter().min().unwrap_or(&Duration::ZERO).as_millis(),
        pulled.iter().max().unwrap_or(&Duration::ZERO).as_millis(),
        pulled.len(),
        direct_median.as_millis(),
        pulled_median.as_secs_f64() / direct_median.as_secs_f64().max(1e-6)
    );
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "sftp puller memory: idle RSS {:.1} MB ({:.0}% of the {BUDGET_MB} MB budget); peak RSS {:.1} MB \
         ({:.0}%) over a busy pull of {} files in {:.1} s",
        mb(idle),
        100.0 * mb(idle) / BUDGET_MB,
        mb(peak),
        100.0 * mb(peak) / BUDGET_MB,
        busy_files.len(),
        busy_seconds
    );
}

/// Imports and polls until the file's player rows are visible (inserting imports nothing).
fn wait_for_rows(db: &mut Client, file_name: &str) {
    let until = Instant::now() + PATIENCE;
    loop {
        db.batch_execute("SELECT * FROM guildstats.import_et_rounds()")
            .expect("import");
        let rows: i64 = db
            .query_one(
                "SELECT count(*) FROM guildstats.et_player_rounds p
                 JOIN guildstats.et_rounds r USING (round_id) WHERE r.file_name = $1",
                &[&file_name],
            )
            .expect("rows")
            .get(0);
        if rows > 0 {
            return;
        }
        assert!(Instant::now() < until, "no rows for {file_name}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stored(db: &mut Client) -> i64 {
    db.query_one("SELECT count(*) FROM guildstats.raw_et_stats_files", &[])
        .expect("count")
        .get(0)
}

/// A line of /proc/PID/status, in kB.
fn memory_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}
