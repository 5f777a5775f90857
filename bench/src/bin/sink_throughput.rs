//! The ingest sink's throughput into `raw_voice_events` on loopback, beside the fastest way to
//! put the same rows there (one COPY) measured in the same run. Producers send one event at a
//! time from many tasks, as gateway event handlers do; the clock stops when a graceful shutdown
//! has committed every row. `scripts/bench` runs it after the cases.
//!
//!   sink_throughput --dsn DSN [--events N] [--producers P]

use clap::Parser;
use guildstats_ingest::raw_tables::RAW_VOICE_EVENTS;
use guildstats_ingest::{Row, Sink, SinkOptions};
use guildstats_synth::copy::{column_list, write_row};
use guildstats_synth::{CollectSink, Community, CommunityConfig, Table, VoiceEventRow};
use postgres::{Client, NoTls};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// libpq connection string of a database with the guildstats extension (its voice events
    /// table is emptied).
    #[arg(long)]
    dsn: String,
    /// Voice events to send.
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    /// Rows per database batch (the ingesters' --batch-size and its default).
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
    /// Concurrent producer tasks, each sending its share one row at a time; one run per count.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 1024])]
    producers: Vec<usize>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("sink_throughput: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let mut client =
        Client::connect(&args.dsn, NoTls).map_err(|e| format!("cannot connect: {e}"))?;
    let mut config = CommunityConfig::demo();
    config.outages = 0;
    let community =
        Community::new(config.with_target_voice_events(args.events)).map_err(|e| describe(&e))?;
    let mut collected = CollectSink::new();
    community
        .generate(&mut collected)
        .map_err(|e| describe(&e))?;
    // The generator repeats some events on purpose (late duplicates); COPY would refuse them.
    let mut seen = std::collections::HashSet::new();
    let events: Vec<VoiceEventRow> = collected
        .voice_events
        .into_iter()
        .filter(|e| seen.insert((e.guild_id, e.user_id, e.event_ts)))
        .collect();
    let n = events.len();

    let empty = |client: &mut Client| {
        client
            .batch_execute("TRUNCATE guildstats.raw_voice_events")
            .map_err(|e| describe(&e))
    };
    empty(&mut client)?;
    let started = Instant::now();
    let copy_sql = format!(
        "COPY guildstats.raw_voice_events ({}) FROM STDIN",
        column_list(Table::VoiceEvents)
    );
    let mut buf = Vec::with_capacity(n * 64);
    for e in &events {
        write_row(&mut buf, guildstats_synth::Row::VoiceEvent(e));
    }
    {
        use std::io::Write;
        let mut writer = client.copy_in(&copy_sql).map_err(|e| describe(&e))?;
        writer.write_all(&buf).map_err(|e| describe(&e))?;
        writer.finish().map_err(|e| describe(&e))?;
    }
    let copy_secs = started.elapsed().as_secs_f64();
    let copied = count(&mut client)?;

    println!("sink throughput: {n} voice events into raw_voice_events, one at a time per producer");
    println!(
        "  COPY of the same rows   {:>8.0} events/s ({:.2} s)",
        n as f64 / copy_secs,
        copy_secs
    );
    let rows: Vec<Row> = events.iter().map(voice_row).collect();
    for &producers in &args.producers {
        empty(&mut client)?;
        let sink_secs = through_sink(&args.dsn, args.batch_size, producers, &rows)?;
        let stored = count(&mut client)?;
        if stored != copied || stored != n as i64 {
            return Err(format!(
                "rows differ: {n} generated, {copied} copied, {stored} through the sink"
            ));
        }
        println!(
            "  sink, {producers:>4} producers   {:>8.0} events/s ({:.2} s)   sink/COPY {:.2}",
            n as f64 / sink_secs,
            sink_secs,
            copy_secs / sink_secs
        );
    }
    Ok(())
}

/// Seconds from the first send until a graceful shutdown has committed every row.
fn through_sink(
    dsn: &str,
    batch_size: usize,
    producers: usize,
    rows: &[Row],
) -> Result<f64, String> {
    let spool = std::env::temp_dir().join(format!("guildstats-bench-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let mut options = SinkOptions::new(dsn.to_string(), &spool);
    options.max_batch = batch_size;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| describe(&e))?;
    let started = Instant::now();
    runtime.block_on(async {
        let sink = Sink::start(options).map_err(|e| describe(&e))?;
        let mut tasks = tokio::task::JoinSet::new();
        let per = rows.len().div_ceil(producers.max(1));
        for share in rows.chunks(per.max(1)) {
            let handle = sink.handle();
            let share = share.to_vec();
            tasks.spawn(async move {
                for row in share {
                    handle.send(row).await.map_err(|e| describe(&e))?;
                }
                Ok::<(), String>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| describe(&e))??;
        }
        sink.shutdown().await;
        Ok::<(), String>(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&spool);
    Ok(secs)
}

fn count(client: &mut Client) -> Result<i64, String> {
    client
        .query_one("SELECT count(*) FROM guildstats.raw_voice_events", &[])
        .map(|r| r.get(0))
        .map_err(|e| describe(&e))
}

/// The row the Discord bot sends for a voice state change.
fn voice_row(e: &VoiceEventRow) -> Row {
    Row::new(&RAW_VOICE_EVENTS)
        .set("guild_id", e.guild_id)
        .set("user_id", e.user_id)
        .set("event_ts", e.event_ts.to_string())
        .set("self_mute", e.flags.self_mute)
        .set("self_deaf", e.flags.self_deaf)
        .set("server_mute", e.flags.server_mute)
        .set("server_deaf", e.flags.server_deaf)
        .set("self_stream", e.flags.self_stream)
        .set("self_video", e.flags.self_video)
        .set("channel_id", e.channel_id)
}

/// An error with its cause: PostgreSQL's own message is in the source, not the display text.
fn describe(e: &dyn std::error::Error) -> String {
    match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
