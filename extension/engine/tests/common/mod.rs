//! Helpers shared by the integration tests.

// Each test binary compiles this module and uses only some of the helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use guildstats_engine::et::{parse_round, ParsedRound};

/// The hand-written fixtures of this crate.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/et")
}

/// Reads a fixture's bytes; `name` is relative to [`fixture_dir`].
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Parses a fixture that must be valid.
pub fn parse_fixture(name: &str) -> ParsedRound {
    let base = name.rsplit('/').next().unwrap_or(name);
    parse_round(base, &fixture_bytes(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Float comparison for hand-worked values.
#[track_caller]
pub fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}
