//! The Discord commands' chart images: render time per image (p50, p95, max over many renders
//! in this process) and the process's memory before and after (VmRSS now, VmHWM the peak, from
//! /proc). Documents are built here at the largest expected size: 24 players and 6 maps, 20
//! sessions, 12 weeks. `scripts/bench` runs it after the cases; it prints, never fails on the
//! numbers. The bot's budget for a whole answer is p95 < 300 ms and RSS < 40 MB.
//!
//!   chart_render [RENDERS]    renders per image, default 200

use guildstats_charts::{last_session_png, stats_form_png, voice_weekly_png, Theme};
use serde_json::{json, Value};
use std::time::Instant;

fn last_session() -> Value {
    let players: Vec<Value> = (0..24u32)
        .map(|i| {
            let kills = 70 - 2 * i;
            json!({"name": format!("{}player {i}", "^".repeat(i as usize % 4) + if i % 5 == 0 { "a rather long clan tag | " } else { "" }),
                   "team": if i % 2 == 0 { "a" } else { "b" }, "kills": kills, "deaths": 30 + i,
                   "kd": f64::from(kills) / f64::from(30 + i), "dpm": 320.0 - 6.5 * f64::from(i),
                   "damage_given": 17000 - 400 * i, "damage_received": 11000 + 150 * i, "gibs": 20 - i / 2,
                   "time_played_s": 5400 - 60 * i})
        })
        .collect();
    let maps: Vec<Value> = [
        "supply",
        "adlernest",
        "radar",
        "goldrush",
        "frostbite",
        "braundorf",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| {
        json!({"map": m, "round1_time_s": 400 + 30 * i, "round2_time_s": 380 + 40 * i,
                             "result": format!("team {} wins", if i % 2 == 0 { "A" } else { "B" }),
                             "winner_team": if i % 2 == 0 { "a" } else { "b" }})
    })
    .collect();
    let awards: Vec<Value> = (0..8)
        .map(|i| json!({"award": format!("award {i}"), "name": format!("player {i}"), "value": i}))
        .collect();
    json!({"ok": true, "players": players, "maps": maps, "awards": awards,
           "session": {"started_at": "2026-11-28T20:05:00+01:00", "ended_at": "2026-11-28T23:10:00+01:00",
                       "server": "et.example.org:27960", "rounds": 12},
           "mvp": {"name": "player 0", "reason": "highest MVP score 31.6 (K/D x 10 + efficiency + damage / 100)"}})
}

fn stats() -> Value {
    let sessions: Vec<Value> = (0..20)
        .map(|i| {
            json!({"date": format!("2026-{:02}-{:02}", 6 + i / 4, 1 + 7 * (i % 4)),
                        "kd": 0.8 + f64::from(i % 7) * 0.1, "dpm": 200.0 + f64::from(i * 37 % 100)})
        })
        .collect();
    json!({"ok": true, "player": {"name": "player 0"}, "sessions": sessions,
           "form": {"last_30_days": {"rounds": 20, "kd": 1.2, "dpm": 260.0}, "before": {"rounds": 200, "kd": 1.1, "dpm": 240.0}}})
}

fn voice() -> Value {
    let weeks: Vec<Value> = (0..12)
        .map(|i| json!({"week_start": format!("2026-{:02}-{:02}", 9 + i / 4, 1 + 7 * (i % 4)), "hours": f64::from(i * 13 % 9)}))
        .collect();
    json!({"ok": true, "name": "player 0", "hours_week": 4.5, "hours_month": 20.0, "rank_week": 3,
           "rank_month": 2, "members_ranked": 120, "members_ranked_week": 80, "weeks": weeks})
}

/// VmRSS and VmHWM of this process in MB, if /proc has them.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let renders: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(200)
        .max(1);
    let docs = [
        ("last_session", last_session()),
        ("stats", stats()),
        ("voice", voice()),
    ];
    let (rss_before, peak_before) = memory();
    println!("\nchart images ({renders} renders each, one thread; budget for a whole answer: p95 < 300 ms)");
    println!(
        "  {:<14} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "image", "size", "p50 ms", "p95 ms", "max ms", "PNG KB"
    );
    for (name, doc) in &docs {
        let render = || match *name {
            "last_session" => last_session_png(doc, Theme::Dark),
            "stats" => stats_form_png(doc, Theme::Dark),
            _ => voice_weekly_png(doc, None, Theme::Dark),
        };
        let mut times = Vec::with_capacity(renders);
        let mut png = Vec::new();
        for _ in 0..renders {
            let started = Instant::now();
            png = render().unwrap_or_else(|e| panic!("chart_render: {name}: {e}"));
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let at =
            |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        // Width and height from the PNG header (bytes 16..24), to show what was measured.
        let dim = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
        println!(
            "  {:<14} {:>10} {:>8.1} {:>8.1} {:>8.1} {:>8.0}",
            name,
            format!("{}x{}", dim(16), dim(20)),
            at(0.5),
            at(0.95),
            times[times.len() - 1],
            png.len() as f64 / 1024.0
        );
    }
    let (rss_after, peak_after) = memory();
    println!(
        "  memory: RSS {rss_before:.1} MB before, {rss_after:.1} MB after; peak {peak_after:.1} MB \
         ({:+.1} MB over the peak before rendering)",
        peak_after - peak_before
    );
}
