//! Property tests: the parser and the round logic never panic, whatever the input.

mod common;

use common::fixture_bytes;
use guildstats_engine::et::{
    detect_restarts, group_sessions, pair_rounds, parse_round, round2_differential,
    RoundDescriptor, SESSION_GAP,
};
use proptest::prelude::*;

const VALID: [&str; 7] = [
    "2025-10-19-234500-supply-round-1.txt",
    "2025-10-20-000300-supply-round-2.txt",
    "2024-05-09-200616-oasis-round-1.txt",
    "2025-01-06-221847-supply-round-2.txt",
    "2025-06-01-210000-etl_frostbite-round-1.txt",
    "2024-03-01-200000-radar-round-1.txt",
    "2025-10-26-200001-etl_sp_delivery-round-2.txt",
];

/// Bytes that matter to the format, so that mutations hit separators often.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(b'\\'),
        Just(b'\t'),
        Just(b'\n'),
        Just(b'\r'),
        Just(b' '),
        Just(b'^'),
        Just(b':'),
        Just(b'.'),
        Just(b'-'),
        b'0'..=b'9',
        any::<u8>(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    DuplicateLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match *mutation {
        Mutation::Replace(at, b) => bytes[at % len] = b,
        Mutation::Insert(at, b) => bytes.insert(at % (len + 1), b),
        Mutation::Delete(at) => {
            bytes.remove(at % len);
        }
        Mutation::Truncate(at) => bytes.truncate(at % len),
        Mutation::DuplicateLine(at) => {
            let lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            let line = lines[at % lines.len()].clone();
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
        }
    }
}

/// Runs everything downstream of a successful parse, to catch panics there too.
fn exercise(content: &[u8], name: &str) {
    if let Ok(round) = parse_round(name, content) {
        for p in &round.players {
            let _ = (
                p.kd(),
                p.dpm(),
                p.accuracy(),
                p.efficiency(),
                p.headshot_rate(),
            );
        }
        let diff = round2_differential(&round, &round);
        for p in &diff.players {
            let _ = (p.round2_only.dpm(), p.round2_only.time_played_seconds());
        }
        let descriptors = vec![RoundDescriptor::from_parsed(&round)];
        let _ = pair_rounds(&descriptors);
        let _ = group_sessions(&descriptors, SESSION_GAP);
        let _ = detect_restarts(&descriptors, SESSION_GAP);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(content in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&content, "2025-10-19-234500-supply-round-1.txt");
    }

    #[test]
    fn arbitrary_lines_of_format_bytes_never_panic(
        content in proptest::collection::vec(interesting_byte(), 0..1024)
    ) {
        exercise(&content, "2025-10-19-234500-supply-round-2.txt");
    }

    #[test]
    fn arbitrary_file_names_never_panic(name in ".{0,80}", round in 0u8..4) {
        let _ = parse_round(&name, b"x");
        let _ = parse_round(&format!("2025-10-19-234500-{name}-round-{round}.txt"), b"x");
    }

    #[test]
    fn mutated_valid_files_never_panic(
        file in 0..VALID.len(),
        mutations in proptest::collection::vec(mutation(), 1..8),
        other in 0..VALID.len(),
    ) {
        let name = VALID[file];
        let mut bytes = fixture_bytes(name);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        exercise(&bytes, name);
        // Differencing two unrelated (possibly mutated) rounds must not panic either.
        if let (Ok(a), Ok(b)) = (
            parse_round(name, &bytes),
            parse_round(VALID[other], &fixture_bytes(VALID[other])),
        ) {
            let _ = round2_differential(&a, &b);
            let _ = round2_differential(&b, &a);
            let rounds = [RoundDescriptor::from_parsed(&a), RoundDescriptor::from_parsed(&b)];
            let _ = detect_restarts(&rounds, SESSION_GAP);
        }
    }
}

#[test]
fn huge_numbers_do_not_overflow() {
    let name = "2025-10-19-234500-supply-round-1.txt";
    let content = String::from_utf8(fixture_bytes(name)).unwrap();
    // Every weapon number of Alpha's MP40, damage and time played at the largest values the
    // range rule allows (i32::MAX; minutes such that the seconds still fit).
    let max = i32::MAX.to_string();
    // (Alpha's syringe numbers go to 0 so that the totals over weapons fit too.)
    let largest = content
        .replacen(
            " 10 40 3 2 4 2 2 0 0 0 ",
            &format!(" {max} {max} {max} {max} {max} 0 0 0 0 0 "),
            1,
        )
        .replacen("\t500\t", &format!("\t{max}\t"), 1)
        .replacen("\t10.0\t", "\t35791394.0\t", 1)
        .replacen("10:00", "35791394:07", 1);
    let round = parse_round(name, largest.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let alpha = round.player("AAAAAAAA").unwrap();
    assert_eq!(alpha.kills(), u64::from(i32::MAX.unsigned_abs()));
    assert_eq!(alpha.time_played_seconds(), Some(2_147_483_640));
    assert_eq!(round.header.time_limit_seconds, Some(2_147_483_647));
    exercise(largest.as_bytes(), name);
    let plain = parse_round(name, content.as_bytes()).unwrap();
    let _ = round2_differential(&round, &plain);
    let _ = round2_differential(&plain, &round);

    // One past, and far past: an error naming the field, never a wrapped or clamped value.
    let past = (i64::from(i32::MAX) + 1).to_string();
    for (from, to, field) in [
        (
            " 10 40 3 2 4 ",
            format!(" {past} 40 3 2 4 "),
            "hits for weapon 4 (MP40)",
        ),
        ("\t500\t", format!("\t{past}\t"), "extended field"),
        ("\t500\t", format!("\t{}\t", i64::MAX), "extended field"),
        ("\t500\t", format!("\t{}\t", i64::MIN), "extended field"),
        (
            "\t10.0\t",
            "\t99999999999999999999.9\t".to_string(),
            "extended field",
        ),
    ] {
        let bad = content.replacen(from, &to, 1);
        let message = parse_round(name, bad.as_bytes()).unwrap_err().to_string();
        assert!(
            message.contains(field) && message.contains("is out of range"),
            "{message}"
        );
        exercise(bad.as_bytes(), name);
    }
    // A time too long for the column is an impossible time, like 0:00: unknown.
    let long = content.replacen("10:00", "4294967295:59", 1);
    let round = parse_round(name, long.as_bytes()).unwrap();
    assert_eq!(round.header.time_limit_seconds, None);
}
