//! The ET:Legacy parser alone, in files per second: every fixture file parsed repeatedly in
//! this process, with no database and no JSON. `scripts/bench` runs it after the cases.
//!
//!   et_parser_throughput [DIR] [ROUNDS]    DIR defaults to ../shared/fixtures/et/real

use guildstats_engine::et::parse_round;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::var("GUILDSTATS_FIXTURES_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
            })
            .join("et/real")
    });
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "et_parser_throughput: no fixtures at {}: skipped",
            dir.display()
        );
        return;
    };
    let files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.ends_with(".txt")
                .then(|| std::fs::read(e.path()).ok().map(|c| (name, c)))
                .flatten()
        })
        .collect();
    let bytes: usize = files.iter().map(|(_, c)| c.len()).sum();
    let mut players = 0usize;
    let started = Instant::now();
    for _ in 0..rounds {
        for (name, content) in &files {
            if let Ok(round) = parse_round(name, content) {
                players += round.players.len();
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let parsed = files.len() * rounds;
    println!(
        "et parser: {parsed} files ({players} player lines, {:.1} MB) in {:.0} ms: {:.0} files/s, {:.1} MB/s",
        (bytes * rounds) as f64 / 1e6,
        seconds * 1000.0,
        parsed as f64 / seconds,
        (bytes * rounds) as f64 / 1e6 / seconds
    );
}
