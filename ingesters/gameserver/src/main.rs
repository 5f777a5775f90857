//! guildstats-gameserver: polls game servers every interval and pushes raw rows.

use clap::Parser;
use guildstats_gameserver::{poll, servers};
use guildstats_ingest::config::SinkArgs;
use guildstats_ingest::heartbeat::spawn_heartbeat;
use guildstats_ingest::Sink;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Polls Source (A2S) and Quake 3 / ET:Legacy servers into guildstats"
)]
struct Args {
    /// A server to poll: `a2s host:port` or `q3 host:port` (repeatable).
    #[arg(long = "server", env = "GUILDSTATS_SERVERS", value_delimiter = ',')]
    servers: Vec<String>,
    /// File listing servers, one `protocol host:port` per line (# comments).
    #[arg(long, env = "GUILDSTATS_SERVERS_FILE")]
    servers_file: Option<PathBuf>,
    /// Seconds between polls.
    #[arg(long, env = "GUILDSTATS_POLL_INTERVAL", default_value_t = 60)]
    interval_secs: u64,
    /// Per-query timeout in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Poll every server once, flush and exit.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    sink: SinkArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut list = Vec::new();
    for s in &args.servers {
        list.push(s.parse::<servers::Server>()?);
    }
    if let Some(file) = &args.servers_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        list.extend(servers::parse_list(&text)?);
    }
    if list.is_empty() {
        return Err("no servers: use --server or --servers-file".into());
    }
    let sink =
        Sink::start(args.sink.options()?).map_err(|e| format!("cannot open the spool: {e}"))?;
    let beat = spawn_heartbeat(
        sink.handle(),
        "gameserver".into(),
        None,
        args.sink.heartbeat_every(),
        sink.shutdown_signal(),
    );
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let mut ticker = tokio::time::interval(Duration::from_secs(args.interval_secs.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tracing::info!(servers = list.len(), "polling");
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        // Every server concurrently; each poll is bounded by the timeout.
        let mut set = tokio::task::JoinSet::new();
        for server in list.clone() {
            set.spawn(async move {
                let (rows, result) = poll::poll_rows(&server, timeout).await;
                if let Err(e) = &result {
                    tracing::warn!(server = %server, error = %e, "poll failed");
                }
                rows
            });
        }
        while let Some(done) = set.join_next().await {
            if let Ok(rows) = done {
                sink.handle()
                    .send_all(rows)
                    .await
                    .map_err(|e| format!("cannot queue rows: {e}"))?;
            }
        }
        if args.once {
            break;
        }
    }
    sink.shutdown().await;
    let _ = beat.await;
    Ok(())
}
