//! Any bytes, under any of a few file names, must parse or fail with an error: never panic,
//! never hang. A parsed round must also survive the round-2 differential against itself and
//! the pairing logic, which read every field the parser fills.
#![no_main]

use guildstats_engine::et::{pair_rounds, parse_round, round2_differential, RoundDescriptor};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = [
    "2025-10-12-213000-supply-round-1.txt",
    "2025-10-12-214000-supply-round-2.txt",
    "2024-02-29-000000-te_escape2-round-2.txt",
    "not-a-stats-file.txt",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(selector) % NAMES.len()];
    if let Ok(round) = parse_round(name, content) {
        let _ = round2_differential(&round, &round);
        let descriptor = RoundDescriptor::from_parsed(&round);
        let _ = pair_rounds(&[descriptor.clone(), descriptor]);
    }
});
