//! Renders the documentation images from the hand-written fixtures in tests/fixtures.
//!
//!   cargo run -p guildstats-charts --example render_examples -- OUT_DIR
//!
//! scripts/render-chart-examples calls it with docs/images.

use guildstats_charts::{last_session_png, stats_form_png, voice_weekly_png, Theme};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "docs/images".into()),
    );
    std::fs::create_dir_all(&out).expect("cannot create the output directory");
    for (theme, suffix) in [(Theme::Dark, ""), (Theme::Light, "-light")] {
        let images = [
            (
                "commands-last-session",
                last_session_png(&fixture("last_session.json"), theme),
            ),
            (
                "commands-stats",
                stats_form_png(&fixture("stats.json"), theme),
            ),
            (
                "commands-voice",
                voice_weekly_png(&fixture("voice.json"), Some("Quickfire"), theme),
            ),
        ];
        for (name, png) in images {
            let png = png.unwrap_or_else(|e| panic!("{name}: {e}"));
            let path = out.join(format!("{name}{suffix}.png"));
            std::fs::write(&path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            println!("{} ({} bytes)", path.display(), png.len());
        }
    }
}
