//! guildstats-gameserver: polls game servers every interval and pushes raw rows.

use clap::Parser;
use guildstats_gameserver::{cycle, poll, servers};
use guildstats_ingest::config::SinkArgs;
use guildstats_ingest::heartbeat::spawn_heartbeat;
use guildstats_ingest::raw_tables::{RAW_HEARTBEATS, RAW_SERVER_PLAYERS, RAW_SERVER_POLLS};
use guildstats_ingest::{check, shutdown, Sink};
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
    /// Also poll the enabled rows of guildstats.game_servers, reread every cycle.
    #[arg(long, env = "GUILDSTATS_SERVERS_TABLE")]
    servers_table: bool,
    /// Seconds between polls.
    #[arg(long, env = "GUILDSTATS_POLL_INTERVAL", default_value_t = 60)]
    interval_secs: u64,
    /// Per-query timeout in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Poll every server once, flush and exit.
    #[arg(long)]
    once: bool,
    /// Check the database, the spool and every server once, print what would run, and exit
    /// (nothing is written).
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    sink: SinkArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    guildstats_ingest::logging::init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Before anything slow: a TERM from here on is never lost.
    shutdown::listen();
    let mut list = Vec::new();
    for s in &args.servers {
        list.push(s.parse::<servers::Server>()?);
    }
    if let Some(file) = &args.servers_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        list.extend(servers::parse_list(&text)?);
    }
    if list.is_empty() && !args.servers_table {
        return Err("no servers: use --server, --servers-file or --servers-table".into());
    }
    if args.check {
        return check(&args, &list).await;
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
    tracing::info!(
        configured = list.len(),
        table = args.servers_table,
        "polling"
    );
    let options = args.sink.options()?;
    // The table's list as last read: while the database is away, polling goes on with it.
    let mut listed: Vec<servers::Server> = Vec::new();
    let mut tally = cycle::Tally::default();
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            // A stop requested during the last cycle wins over the next tick.
            biased;
            _ = shutdown::requested() => break,
            _ = ticker.tick() => {}
        }
        // Every server concurrently; each poll is bounded by the timeout.
        let mut set = tokio::task::JoinSet::new();
        if args.servers_table {
            // Bounded, so that an unreachable database never delays the polls themselves.
            let read = tokio::time::timeout(Duration::from_secs(2), servers::from_table(&options));
            match read
                .await
                .unwrap_or_else(|_| Err("the database did not answer in 2 s".into()))
            {
                Ok(now) => {
                    if now != listed {
                        tracing::info!(servers = now.len(), "game_servers changed");
                    }
                    listed = now;
                }
                Err(e) => tracing::warn!(error = %e, "polling the servers last read"),
            }
        }
        for server in servers::merge(&list, &listed) {
            set.spawn(async move {
                let (rows, result) = poll::poll_rows(&server, timeout).await;
                if let Err(e) = &result {
                    tracing::warn!(server = %server, error = %e, "poll failed");
                }
                let polled_at = rows
                    .first()
                    .and_then(|r| r.values.get("polled_at"))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                (server, polled_at, rows)
            });
        }
        if let Err(e) = cycle::store(&mut set, &sink.handle(), &mut tally).await {
            outcome = Err(e);
            break;
        }
        if args.once {
            break;
        }
    }
    sink.shutdown_within(guildstats_ingest::sink::SHUTDOWN_GRACE)
        .await;
    let _ = beat.await;
    outcome
}

/// `--check`: every line of what the poller would do, or the first thing that stops it.
async fn check(args: &Args, configured: &[servers::Server]) -> Result<(), String> {
    let options = args.sink.options()?;
    let tables = [&RAW_SERVER_POLLS, &RAW_SERVER_PLAYERS, &RAW_HEARTBEATS];
    for line in check::database(&options, &tables).await? {
        println!("{line}");
    }
    println!("{}", check::spool(&options)?);
    let listed = if args.servers_table {
        let listed = servers::from_table(&options).await?;
        println!("game_servers: {} enabled servers", listed.len());
        listed
    } else {
        Vec::new()
    };
    let list = servers::merge(configured, &listed);
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let mut failed = 0;
    for server in &list {
        match poll::snapshot(server, timeout).await {
            Ok(s) => println!(
                "server {server}: answers: {:?} on {}, {}/{} players",
                s.server_name, s.map, s.player_count, s.max_players
            ),
            Err(e) => {
                failed += 1;
                println!(
                    "server {server}: no answer: {e} (still polled: failed polls are rows too)"
                );
            }
        }
    }
    println!(
        "would poll {} servers every {} s (timeout {} ms), {} answering now",
        list.len(),
        args.interval_secs.max(1),
        args.timeout_ms.max(1),
        list.len() - failed
    );
    Ok(())
}
