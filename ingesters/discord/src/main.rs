//! guildstats-discord: the Discord bot ingester.

use clap::Parser;
use guildstats_discord::commands::Commands;
use guildstats_discord::config::{intent_names, intents, Args, Token};
use guildstats_discord::handler::Handler;
use guildstats_discord::heartbeats::Heartbeats;
use guildstats_discord::opt_out::OptOutList;
use guildstats_ingest::sink::SHUTDOWN_GRACE;
use guildstats_ingest::Sink;
use serenity::client::ClientBuilder;
use serenity::http::{Http, HttpBuilder};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const OPT_OUT_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> std::process::ExitCode {
    one_heap();
    guildstats_ingest::logging::init();
    let args = Args::parse();
    // One thread: serenity starts a task per event, and on one thread they start in arrival
    // order, so receipt times follow the gateway's order. It is also the smallest footprint.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One malloc arena for every thread. glibc gives each new thread (the blocking pool that draws
/// the charts, the sink's writer) an arena of its own, whose freed memory stays resident; the
/// bot's threads rarely allocate at the same time, so sharing one costs no speed and saves
/// megabytes of resident size.
fn one_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing, before any other thread exists; mallopt only sets a limit.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn http(token: &Token, proxy: Option<&str>) -> Http {
    let builder = HttpBuilder::new(token.expose());
    match proxy {
        Some(url) => builder.proxy(url).ratelimiter_disabled(true).build(),
        None => builder.build(),
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Before anything slow: a TERM from here on is never lost.
    guildstats_ingest::shutdown::listen();
    let token = args.token()?;
    let opt_out = Arc::new(OptOutList::load(
        args.opt_out.clone(),
        args.opt_out_file.clone(),
    )?);
    let http = http(&token, args.api_proxy.as_deref());
    if args.check {
        return guildstats_discord::check::run(&args, &opt_out, &http).await;
    }

    let commands = args
        .command_settings()?
        .map(|settings| Arc::new(Commands::new(settings)));
    let sink =
        Sink::start(args.sink.options()?).map_err(|e| format!("cannot open the spool: {e}"))?;
    let (fatal, mut fatal_rx) = mpsc::unbounded_channel();
    let handler = Arc::new(
        Handler::new(
            sink.handle(),
            opt_out.clone(),
            args.guilds.iter().copied(),
            Heartbeats::new(sink.handle(), args.sink.heartbeat_every()),
            fatal,
        )
        .with_commands(commands.clone()),
    );
    let mut client = ClientBuilder::new_with_http(http, intents())
        .event_handler_arc(handler.clone())
        .await
        .map_err(|e| format!("cannot build the Discord client: {e}"))?;
    let shards = client.shard_manager.clone();
    let mut gateway = tokio::spawn(async move { client.start().await });

    let reload_every = Duration::from_secs(args.opt_out_reload_secs.max(1));
    let reloader = opt_out.clone();
    let db_options = args.sink.options()?;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(reload_every);
        loop {
            // The first tick is immediate: the database's list is read at start.
            ticker.tick().await;
            match reloader.reload_if_changed() {
                Ok(true) => {
                    tracing::info!(entries = reloader.current().len(), "opt-out file reloaded")
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("{e}; the previous opt-out list stays in force"),
            }
            // Bounded: an unreachable database must not stall the reloads of the file.
            match tokio::time::timeout(OPT_OUT_READ_TIMEOUT, reloader.refresh_from_database(&db_options)).await {
                Ok(Ok(true)) => tracing::info!(
                    members = reloader.current().members_len(),
                    "opt-out list read from guildstats.opt_out"
                ),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(
                    "{e}; the previous opt-out list stays in force (the database drops opted-out members' rows anyway)"
                ),
                Err(_) => tracing::warn!(
                    "reading guildstats.opt_out timed out; the previous opt-out list stays in force"
                ),
            }
        }
    });

    tracing::info!(intents = %intent_names(), commands = commands.is_some(), "starting");
    let outcome = tokio::select! {
        _ = guildstats_ingest::shutdown::requested() => Ok(()),
        Some(why) = fatal_rx.recv() => Err(why),
        ended = &mut gateway => match ended {
            Ok(Ok(())) => Err("the gateway connection ended".to_string()),
            Ok(Err(e)) => Err(format!("the gateway connection failed: {e}")),
            Err(e) => Err(format!("the gateway task failed: {e}")),
        },
    };
    tracing::info!("stopping: flushing what is spooled");
    shards.shutdown_all().await;
    handler.beats.disconnected();
    // While the database is away the writer keeps retrying its batch; every row is in the spool
    // already, so waiting longer would only delay the restart that replays it.
    sink.shutdown_within(SHUTDOWN_GRACE).await;
    outcome
}
