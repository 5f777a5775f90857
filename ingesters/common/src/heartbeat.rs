//! Liveness: a raw_heartbeats row every interval, through the same sink as the data, so that a
//! beat is only recorded when the path the data takes works too.

use crate::raw_tables::RAW_HEARTBEATS;
use crate::row::Row;
use crate::sink::SinkHandle;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub fn heartbeat_row(source: &str, guild_id: Option<i64>) -> Row {
    let row = Row::new(&RAW_HEARTBEATS)
        .set("source", source)
        .set("beat_at", crate::time::now());
    match guild_id {
        Some(g) => row.set("guild_id", g),
        None => row,
    }
}

/// Beats every `every` until `stop` turns true.
pub fn spawn_heartbeat(
    sink: SinkHandle,
    source: String,
    guild_id: Option<i64>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(e) = sink.send(heartbeat_row(&source, guild_id)).await {
                        tracing::warn!(error = %e, "heartbeat not recorded");
                        return;
                    }
                }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    })
}
