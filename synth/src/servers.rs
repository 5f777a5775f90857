//! Game servers as the poller sees them: one A2S (Source) server and one Quake 3 protocol
//! (ET:Legacy) server, polled every `poll_interval_s`.
//!
//! Each server runs a small population model: arrivals follow a local evening curve,
//! players stay for an exponential while, scores grow and reset on map changes. A2S reports
//! connected seconds but no ids, Quake 3 reports pings but no connected time; generic names
//! ("Player", "ETPlayer") make two players share a name in one poll now and then. Some polls
//! fail (timeouts, a malformed reply, a maintenance window) and are written with `ok = false`.

use std::io;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::CommunityConfig;
use crate::rhythm::{local_hour, weekday_factor};
use crate::rng::{exponential, lognormal, poisson, stream_rng, Stream};
use crate::rows::{Row, ServerPlayerRow, ServerPollRow};
use crate::sink::Sink;
use crate::time::Ts;

struct Spec {
    address: &'static str,
    protocol: &'static str,
    game: &'static str,
    server_name: &'static str,
    max_players: usize,
    peak_players: f64,
    maps: &'static [&'static str],
    map_minutes: f64,
    default_name: &'static str,
    names: &'static [&'static str],
}

const SERVERS: [Spec; 2] = [
    Spec {
        address: "cs2.nordlicht.example:27015",
        protocol: "a2s",
        game: "Counter-Strike 2",
        server_name: "Nordlicht | Casual | 24/7",
        max_players: 20,
        peak_players: 15.0,
        maps: &[
            "de_dust2",
            "de_mirage",
            "de_inferno",
            "de_nuke",
            "de_ancient",
            "cs_office",
        ],
        map_minutes: 35.0,
        default_name: "Player",
        names: &[
            "s1mple_fan",
            "Hans",
            "KnifeOnly",
            "dust2enjoyer",
            "Wurstbrot",
            "AWPacabra",
            "Kalle",
            "ruski",
            "Mölle",
            "xXx",
            "bombsite_b",
            "Flashbang",
            "Tuxedo",
            "Eco_round",
            "noscope",
            "Jens",
            "FragMaster",
            "Lurker",
            "Rasenmäher",
            "Pingu",
        ],
    },
    Spec {
        address: "et.nordlicht.example:27960",
        protocol: "q3",
        game: "legacy",
        server_name: "^7Nordlicht ^1ET^7:^4Legacy ^7| Stopwatch",
        max_players: 24,
        peak_players: 11.0,
        maps: &[
            "supply",
            "goldrush",
            "radar",
            "oasis",
            "battery",
            "fueldump",
            "frostbite",
        ],
        map_minutes: 25.0,
        default_name: "ETPlayer",
        names: &[
            "^1Red^7Baron",
            "^4blue^7fox",
            "Panzerfaust",
            "^3Medic^7!",
            "olz",
            "^2s^7nipe",
            "Garand",
            "^0dark^7ness",
            "Engi",
            "^5cov^7ops",
            "fieldops",
            "^1\\m/^7Rocker",
            "Stielhandgranate",
            "^6pink^7ish",
            "Mortar",
            "^9grey",
            "allied",
            "axis4life",
        ],
    },
];

const ERRORS: [&str; 3] = [
    "timeout: no reply within 1500 ms",
    "malformed reply: truncated packet",
    "connection refused",
];

struct Player {
    name: &'static str,
    joined_at: Ts,
    score: i32,
    ping: i32,
}

struct ServerSim<'a> {
    spec: &'a Spec,
    rng: ChaCha8Rng,
    players: Vec<Player>,
    map: usize,
    next_map_at: Ts,
    /// Planned maintenance (every poll inside fails).
    maintenance: (Ts, Ts),
}

/// Generates every poll of every server for the period.
pub(crate) fn generate(config: &CommunityConfig, sink: &mut dyn Sink) -> io::Result<()> {
    if config.poll_interval_s == 0 {
        return Ok(());
    }
    let start = config.start;
    let end = config.end();
    let interval_us = i64::from(config.poll_interval_s) * 1_000_000;
    let dt = f64::from(config.poll_interval_s);
    let mut sims: Vec<ServerSim<'_>> = SERVERS
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut rng = stream_rng(config.seed, Stream::Server, i as u64, 0);
            let day = rng.gen_range(0..config.days.max(1));
            let m_start =
                start.add_secs(i64::from(day) * 86_400 + rng.gen_range(2 * 3600..5 * 3600));
            let m_end = m_start.add_secs(rng.gen_range(1800..5400));
            ServerSim {
                spec,
                rng,
                players: Vec::new(),
                map: 0,
                next_map_at: start,
                maintenance: (m_start, m_end),
            }
        })
        .collect();
    let polls = (end.micros() - start.micros()) / interval_us;
    let want_polls = sink.wants(crate::rows::Table::ServerPolls);
    let want_players = sink.wants(crate::rows::Table::ServerPlayers);
    for k in 0..polls {
        for (i, sim) in sims.iter_mut().enumerate() {
            // Servers are polled a little apart, each with its own jitter.
            let polled_at = start
                .add_micros(k * interval_us + i as i64 * 1_500_000 + sim.rng.gen_range(0..300_000));
            sim.step(config, polled_at, dt);
            let in_maintenance = polled_at >= sim.maintenance.0 && polled_at < sim.maintenance.1;
            let failed = if in_maintenance {
                Some(ERRORS[2])
            } else if sim.rng.gen::<f64>() < 0.004 {
                Some(ERRORS[sim.rng.gen_range(0..2)])
            } else {
                None
            };
            let spec = sim.spec;
            let poll = match failed {
                Some(error) => ServerPollRow {
                    server: spec.address.to_owned(),
                    polled_at,
                    ok: false,
                    protocol: spec.protocol,
                    error: Some(error),
                    server_name: None,
                    map: None,
                    game: None,
                    player_count: None,
                    max_players: None,
                    bot_count: None,
                    latency_ms: None,
                },
                None => ServerPollRow {
                    server: spec.address.to_owned(),
                    polled_at,
                    ok: true,
                    protocol: spec.protocol,
                    error: None,
                    server_name: Some(spec.server_name.to_owned()),
                    map: Some(spec.maps[sim.map]),
                    game: Some(spec.game),
                    player_count: Some(sim.players.len() as i32),
                    max_players: Some(spec.max_players as i32),
                    bot_count: (spec.protocol == "a2s").then_some(0),
                    latency_ms: Some(lognormal(&mut sim.rng, 28.0, 0.25) as f32),
                },
            };
            if want_polls {
                sink.row(Row::ServerPoll(&poll))?;
            }
            // Player rows are drawn even when not wanted: skipping the draws would change the
            // random numbers of later polls (and so the polls table) between runs.
            if poll.ok {
                for (idx, p) in sim.players.iter().enumerate() {
                    let a2s = spec.protocol == "a2s";
                    let connected = polled_at.secs_since(p.joined_at) + sim.rng.gen::<f64>();
                    let jitter = sim.rng.gen_range(-5..=5);
                    let row = ServerPlayerRow {
                        server: spec.address.to_owned(),
                        polled_at,
                        player_index: idx as i32,
                        name: p.name.to_owned(),
                        score: Some(p.score),
                        connected_seconds: a2s.then_some(connected as f32),
                        ping_ms: (!a2s).then_some((p.ping + jitter).max(5)),
                    };
                    if want_players {
                        sink.row(Row::ServerPlayer(&row))?;
                    }
                }
            }
        }
    }
    Ok(())
}

impl ServerSim<'_> {
    /// Advances the population by `dt` seconds to `now`.
    fn step(&mut self, config: &CommunityConfig, now: Ts, dt: f64) {
        let spec = self.spec;
        let rng = &mut self.rng;
        if now >= self.next_map_at {
            self.map = rng.gen_range(0..spec.maps.len());
            self.next_map_at = now
                .add_micros((exponential(rng, spec.map_minutes * 60.0) * 1e6) as i64 + 600_000_000);
            for p in &mut self.players {
                p.score = 0;
            }
        }
        let stay_s = 50.0 * 60.0;
        self.players
            .retain(|_| rng.gen::<f64>() >= 1.0 - (-dt / stay_s).exp());
        let h = local_hour(config.zone, now);
        let weekday = config.zone.to_local(now).weekday();
        // Evening bell around 21:00 local plus a small floor of night owls.
        let d = (h - 21.0 + 12.0).rem_euclid(24.0) - 12.0;
        let target = spec.peak_players * weekday_factor(weekday) * (0.08 + (-d * d / 10.0).exp());
        let arrivals = poisson(rng, target * dt / stay_s);
        for _ in 0..arrivals {
            if self.players.len() >= spec.max_players {
                break;
            }
            let name = if rng.gen::<f64>() < 0.08 {
                spec.default_name
            } else {
                spec.names[rng.gen_range(0..spec.names.len())]
            };
            self.players.push(Player {
                name,
                joined_at: now.add_micros(-rng.gen_range(0..(dt * 1e6) as i64 + 1)),
                score: 0,
                ping: rng.gen_range(15..140),
            });
        }
        let frag_rate = if spec.protocol == "a2s" { 0.5 } else { 4.0 };
        for p in &mut self.players {
            p.score += poisson(rng, frag_rate * dt / 60.0) as i32;
        }
    }
}
