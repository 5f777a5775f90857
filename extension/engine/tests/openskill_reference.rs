//! The rating engine against the reference: the PyPI package openskill 6.0.2, the published
//! implementation of Weng–Lin Plackett–Luce, run on the same games through
//! tests/reference/openskill_rate.py. Full-time players only: openskill's `weights` mean
//! something else (see src/rating.rs), so the weighted case is checked by hand in the unit tests.
//!
//! Needs python3 with openskill (scripts/lib.sh gs_ensure_python_tools installs it). Without it
//! the test is skipped, except on CI (`CI=true`), where it fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use guildstats_engine::rating::{
    predict_win, rate_two_teams, Outcome, Params, Participant, Rating,
};

/// A fixed pseudo-random league: 14 players, teams of 1 to 6, some draws, some repeat line-ups.
fn games() -> Vec<(Outcome, Vec<String>, Vec<String>)> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    (0..300)
        .map(|_| {
            let mut pool: Vec<String> = (0..14).map(|p| format!("p{p:02}")).collect();
            let mut teams = [Vec::new(), Vec::new()];
            for team in &mut teams {
                for _ in 0..1 + next(6) {
                    team.push(pool.remove(next(pool.len() as u64) as usize));
                }
            }
            let [first, second] = teams;
            // Low-numbered players win more often, so ratings spread out.
            let strength = |t: &[String]| {
                t.iter()
                    .map(|p| 14 - p[1..].parse::<u64>().unwrap())
                    .sum::<u64>()
                    / t.len() as u64
            };
            let outcome = match next(10) {
                0 => Outcome::Draw,
                r if r < 3 + strength(&first) / 3 => Outcome::FirstWins,
                _ => Outcome::SecondWins,
            };
            (outcome, first, second)
        })
        .collect()
}

#[test]
fn matches_openskill_6_0_2() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/openskill_rate.py"
    );
    let has_reference = Command::new("python3")
        .args([
            "-c",
            "import openskill, sys; sys.exit(openskill.__version__ != '6.0.2')",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !has_reference {
        let message = "python3 with openskill 6.0.2 not found (scripts/lib.sh gs_ensure_python_tools installs it)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
        return;
    }
    let games = games();
    let input: String = games
        .iter()
        .map(|(o, a, b)| {
            let o = match o {
                Outcome::FirstWins => 1,
                Outcome::SecondWins => 2,
                Outcome::Draw => 0,
            };
            format!("{o}\t{}\t{}\n", a.join(","), b.join(","))
        })
        .collect();
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "reference script failed");
    let text = String::from_utf8(output.stdout).unwrap();

    let params = Params::default();
    let mut ratings: BTreeMap<String, Rating> = BTreeMap::new();
    let mut expected_p = Vec::new();
    for (outcome, first, second) in &games {
        let team = |names: &[String], ratings: &mut BTreeMap<String, Rating>| -> Vec<Rating> {
            names
                .iter()
                .map(|p| *ratings.entry(p.clone()).or_insert(Rating::new(&params)))
                .collect()
        };
        let a = team(first, &mut ratings);
        let b = team(second, &mut ratings);
        expected_p.push(predict_win(&params, &a, &b));
        let full = |t: &[Rating]| {
            t.iter()
                .map(|&rating| Participant {
                    rating,
                    weight: 1.0,
                })
                .collect::<Vec<_>>()
        };
        let [na, nb] = rate_two_teams(&params, &full(&a), &full(&b), *outcome).unwrap();
        for (p, r) in first.iter().zip(na).chain(second.iter().zip(nb)) {
            ratings.insert(p.clone(), r);
        }
    }

    let mut games_seen = 0;
    let mut players_seen = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "game" => {
                let n: usize = f[1].parse().unwrap();
                let p: f64 = f[2].parse().unwrap();
                assert!(
                    (p - expected_p[n - 1]).abs() < 1e-9,
                    "game {n}: predict_win {p} vs {}",
                    expected_p[n - 1]
                );
                games_seen += 1;
            }
            "player" => {
                let ours = ratings[f[1]];
                let (mu, sigma): (f64, f64) = (f[2].parse().unwrap(), f[3].parse().unwrap());
                assert!(
                    (mu - ours.mu).abs() < 1e-9,
                    "{}: mu {mu} vs ours {}",
                    f[1],
                    ours.mu
                );
                assert!(
                    (sigma - ours.sigma).abs() < 1e-9,
                    "{}: sigma {sigma} vs ours {}",
                    f[1],
                    ours.sigma
                );
                players_seen += 1;
            }
            other => panic!("unexpected reference line {other}"),
        }
    }
    assert_eq!(games_seen, games.len());
    assert_eq!(players_seen, ratings.len());
    // The league did spread: the check is not comparing 25s with 25s.
    let spread = ratings.values().map(|r| r.mu).fold(f64::MIN, f64::max)
        - ratings.values().map(|r| r.mu).fold(f64::MAX, f64::min);
    assert!(spread > 5.0, "ratings spread only {spread}");
}
