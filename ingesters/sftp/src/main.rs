//! guildstats-sftp: pulls ET:Legacy stats files over SFTP (or backfills a local directory)
//! into raw_et_stats_files.

use clap::Parser;
use guildstats_ingest::heartbeat::spawn_heartbeat;
use guildstats_ingest::Sink;
use guildstats_sftp::backfill::Backfill;
use guildstats_sftp::cli::Args;
use guildstats_sftp::pull::Puller;
use guildstats_sftp::stop::Stop;
use guildstats_sftp::{check, ledger};
use std::process::ExitCode;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    guildstats_ingest::logging::init();
    let args = Args::parse();
    if args.check {
        return if check::run(&args).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Before anything slow: a TERM from here on is never lost.
    guildstats_ingest::shutdown::listen();
    let options = args.sink.options()?;
    // Settings errors first, before anything is started.
    let pull_settings = match &args.backfill {
        Some(_) => None,
        None => Some(args.pull_settings()?),
    };
    let source = match (&args.backfill, &pull_settings) {
        (Some(dir), _) => args.backfill_source(dir),
        (None, Some(settings)) => settings.source.clone(),
        (None, None) => unreachable!("pull settings exist without --backfill"),
    };
    let sink = Sink::start(options.clone()).map_err(|e| {
        format!(
            "cannot open the spool {}: {e}",
            options.spool_path.display()
        )
    })?;
    let beat = spawn_heartbeat(
        sink.handle(),
        "sftp".into(),
        None,
        args.sink.heartbeat_every(),
        sink.shutdown_signal(),
    );
    let stop = Stop::default();
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            guildstats_ingest::shutdown::requested().await;
            tracing::info!("stopping");
            stop.request();
        })
    };
    let result = async {
        let Some(stored) = ledger::stored_names_patiently(&options, &source, &stop).await? else {
            return Ok(());
        };
        let handle = sink.handle();
        let runtime = tokio::runtime::Handle::current();
        let worker_stop = stop.clone();
        let task = match (args.backfill.clone(), pull_settings) {
            (Some(dir), _) => {
                let filter = args.filter();
                let max = args.max_file_bytes;
                tokio::task::spawn_blocking(move || {
                    let backfill = Backfill {
                        source: &source,
                        filter: &filter,
                        max_file_bytes: max,
                        stored: &stored,
                    };
                    let summary = backfill.run(&dir, &handle, &runtime, &worker_stop)?;
                    tracing::info!(
                        files = summary.matching,
                        already_stored = summary.already_stored,
                        queued = summary.queued,
                        failed = summary.failed,
                        "backfill done"
                    );
                    if summary.failed > 0 {
                        return Err(format!(
                            "{} files of {} could not be imported (see above)",
                            summary.failed,
                            dir.display()
                        ));
                    }
                    Ok(())
                })
            }
            (None, Some(settings)) => tokio::task::spawn_blocking(move || {
                Puller::new(settings, stored, handle, runtime, worker_stop).run()
            }),
            (None, None) => unreachable!("pull settings exist without --backfill"),
        };
        task.await
            .map_err(|e| format!("the worker thread failed: {e}"))?
    }
    .await;
    watcher.abort();
    // Writes what is queued; whatever the database does not take stays in the spool.
    sink.shutdown_within(guildstats_ingest::sink::SHUTDOWN_GRACE)
        .await;
    let _ = beat.await;
    result
}
