//! One poll of one server, turned into raw rows: always a raw_server_polls row (ok = false with
//! the error when the server did not answer properly), plus one raw_server_players row per player.

use crate::query;
use crate::servers::{Protocol, Server};
use guildstats_ingest::raw_tables::{RAW_SERVER_PLAYERS, RAW_SERVER_POLLS};
use guildstats_ingest::Row;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// What a successful poll found, independent of the protocol.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub server_name: String,
    pub map: String,
    pub game: String,
    pub player_count: i64,
    pub max_players: i64,
    pub bot_count: Option<i64>,
    pub rules_count: Option<usize>,
    pub players: Vec<PlayerSnapshot>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlayerSnapshot {
    pub name: String,
    pub score: i64,
    pub connected_seconds: Option<f32>,
    pub ping_ms: Option<i64>,
}

async fn resolve(address: &str) -> Result<SocketAddr, String> {
    tokio::net::lookup_host(address)
        .await
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolves to nothing"))
}

pub async fn snapshot(server: &Server, timeout: Duration) -> Result<Snapshot, String> {
    let addr = resolve(&server.address).await?;
    match server.protocol {
        Protocol::A2s => {
            let r = query::query_a2s(addr, timeout).await?;
            Ok(Snapshot {
                server_name: r.info.name,
                map: r.info.map,
                game: r.info.game,
                player_count: r.info.players.into(),
                max_players: r.info.max_players.into(),
                bot_count: Some(r.info.bots.into()),
                rules_count: r.rules.as_ref().map(Vec::len),
                players: r
                    .players
                    .into_iter()
                    .map(|p| PlayerSnapshot {
                        name: p.name,
                        score: p.score.into(),
                        connected_seconds: Some(p.duration),
                        ping_ms: None,
                    })
                    .collect(),
            })
        }
        Protocol::Q3 => {
            let s = query::query_q3(addr, timeout).await?;
            let get = |k: &str| s.var(k).unwrap_or("").to_string();
            Ok(Snapshot {
                server_name: get("sv_hostname"),
                map: get("mapname"),
                game: s
                    .var("gamename")
                    .or(s.var("fs_game"))
                    .unwrap_or("")
                    .to_string(),
                player_count: s.players.len() as i64,
                max_players: get("sv_maxclients").parse().unwrap_or(0),
                bot_count: None,
                rules_count: Some(s.vars.len()),
                players: s
                    .players
                    .iter()
                    .map(|p| PlayerSnapshot {
                        name: p.name.clone(),
                        score: p.score.into(),
                        connected_seconds: None,
                        ping_ms: Some(p.ping.into()),
                    })
                    .collect(),
            })
        }
    }
}

/// Polls once and returns the rows to write (never fails: a failure is a row too).
pub async fn poll_rows(server: &Server, timeout: Duration) -> (Vec<Row>, Result<Snapshot, String>) {
    let polled_at = guildstats_ingest::time::rfc3339(SystemTime::now());
    let started = Instant::now();
    let result = snapshot(server, timeout).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let base = Row::new(&RAW_SERVER_POLLS)
        .set("server", server.address.as_str())
        .set("polled_at", polled_at.as_str())
        .set("protocol", server.protocol.as_str());
    let mut rows = Vec::new();
    match &result {
        Ok(s) => {
            let mut poll = base
                .set("ok", true)
                .set("server_name", s.server_name.as_str())
                .set("map", s.map.as_str())
                .set("game", s.game.as_str())
                .set("player_count", s.player_count)
                .set("max_players", s.max_players)
                .set("latency_ms", latency_ms);
            if let Some(b) = s.bot_count {
                poll = poll.set("bot_count", b);
            }
            rows.push(poll);
            for (i, p) in s.players.iter().enumerate() {
                let mut row = Row::new(&RAW_SERVER_PLAYERS)
                    .set("server", server.address.as_str())
                    .set("polled_at", polled_at.as_str())
                    .set("player_index", i as i64)
                    .set("name", p.name.as_str())
                    .set("score", p.score);
                if let Some(c) = p.connected_seconds.filter(|c| c.is_finite()) {
                    row = row.set("connected_seconds", c as f64);
                }
                if let Some(ping) = p.ping_ms {
                    row = row.set("ping_ms", ping);
                }
                rows.push(row);
            }
        }
        Err(e) => rows.push(base.set("ok", false).set("error", e.as_str())),
    }
    (rows, result)
}
