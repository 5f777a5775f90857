//! Snapshot tests that survive font rasterisation changes: each image of a hand-written fixture
//! is held to a file in tests/snapshots giving its size, the colour of pixels sampled away from
//! text (backgrounds, bars, chips, at positions worked out from the layout), and a perceptual
//! hash with the number of bits it may differ by.
//!
//! After an intended change of layout, look at the new images (scripts/render-chart-examples)
//! and copy the hash the failure prints into the file.

mod common;

use common::{fixture, hamming, hash_hex, Image};
use guildstats_charts::{last_session_png, stats_form_png, voice_weekly_png, Theme};
use std::path::PathBuf;

/// Colour channels may differ this much (a bar's edge blended by another renderer).
const CHANNEL_TOLERANCE: i32 = 6;

fn check(snapshot: &str, png: Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(snapshot);
    let spec = std::fs::read_to_string(&path).expect("snapshot file");
    let image = Image::decode(&png);
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in spec
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "size" => {
                let want: (u32, u32) = (words[1].parse().unwrap(), words[2].parse().unwrap());
                if (image.width, image.height) != want {
                    failures.push(format!(
                        "size {}x{}, want {}x{}",
                        image.width, image.height, want.0, want.1
                    ));
                }
            }
            "pixel" => {
                let (x, y): (u32, u32) = (words[1].parse().unwrap(), words[2].parse().unwrap());
                let want = u32::from_str_radix(words[3], 16).unwrap();
                let want = [(want >> 16) as u8, (want >> 8) as u8, want as u8];
                if x >= image.width || y >= image.height {
                    failures.push(format!("pixel {x},{y} is outside the image"));
                    continue;
                }
                let got = image.pixel(x, y);
                let off = got
                    .iter()
                    .zip(want)
                    .any(|(g, w)| (i32::from(*g) - i32::from(w)).abs() > CHANNEL_TOLERANCE);
                if off {
                    failures.push(format!(
                        "pixel {x},{y} ({}) is {:02x}{:02x}{:02x}, want {}",
                        words[4..].join(" "),
                        got[0],
                        got[1],
                        got[2],
                        words[3]
                    ));
                }
            }
            "dhash" => {
                let allowed: u32 = words[2].parse().unwrap();
                let distance = hamming(image.dhash(), words[1]);
                if distance > allowed {
                    failures.push(format!(
                        "perceptual hash differs by {distance} bits (allowed {allowed}): now {}",
                        hash_hex(image.dhash())
                    ));
                }
            }
            other => panic!("{snapshot}: unknown line kind {other}"),
        }
        checked += 1;
    }
    assert!(checked >= 3, "{snapshot}: too few checks");
    assert!(
        failures.is_empty(),
        "{snapshot}:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn last_session_dark() {
    check(
        "last_session-dark.txt",
        last_session_png(&fixture("last_session.json"), Theme::Dark).unwrap(),
    );
}

#[test]
fn last_session_light() {
    check(
        "last_session-light.txt",
        last_session_png(&fixture("last_session.json"), Theme::Light).unwrap(),
    );
}

#[test]
fn stats_form_dark() {
    check(
        "stats-dark.txt",
        stats_form_png(&fixture("stats.json"), Theme::Dark).unwrap(),
    );
}

#[test]
fn voice_weekly_dark() {
    check(
        "voice-dark.txt",
        voice_weekly_png(&fixture("voice.json"), Some("Quickfire"), Theme::Dark).unwrap(),
    );
}

#[test]
fn voice_weekly_light() {
    check(
        "voice-light.txt",
        voice_weekly_png(&fixture("voice.json"), Some("Quickfire"), Theme::Light).unwrap(),
    );
}

/// The hash tolerance is not so loose that it passes another picture of the same size: the
/// same players in reverse order (short bars on top) must fall outside it.
#[test]
fn the_hash_tolerance_still_tells_images_apart() {
    let mut doc = fixture("last_session.json");
    doc["players"].as_array_mut().unwrap().reverse();
    let reversed = Image::decode(&last_session_png(&doc, Theme::Dark).unwrap()).dhash();
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/last_session-dark.txt");
    let spec = std::fs::read_to_string(path).unwrap();
    let line = spec.lines().find(|l| l.starts_with("dhash ")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let distance = hamming(reversed, words[1]);
    let allowed: u32 = words[2].parse().unwrap();
    assert!(
        distance > 2 * allowed,
        "reversed players differ by only {distance} bits"
    );
    eprintln!("reversed players: {distance} bits");
}
