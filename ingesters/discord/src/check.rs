//! `--check`: what the ingester would do, and whether it can: the database (and the INSERT
//! privilege on every table it writes), the token against Discord's REST API, the opt-out list.
//! Prints a report on stdout; never prints a secret.

use crate::config::{intent_names, Args};
use crate::opt_out::OptOutList;
use guildstats_ingest::raw_tables::{self, RawTable};
use serenity::http::Http;
use std::fmt::Write as _;

/// The tables the bot writes to.
pub const TABLES: [RawTable; 9] = [
    raw_tables::RAW_VOICE_EVENTS,
    raw_tables::RAW_VOICE_SNAPSHOTS,
    raw_tables::RAW_HEARTBEATS,
    raw_tables::RAW_MESSAGES,
    raw_tables::RAW_MEMBER_EVENTS,
    raw_tables::RAW_GUILDS,
    raw_tables::RAW_CHANNELS,
    raw_tables::RAW_SCHEDULED_EVENTS,
    raw_tables::RAW_SCHEDULED_EVENT_USERS,
];

/// Runs every check, prints the report, and fails when one failed.
pub async fn run(args: &Args, opt_out: &OptOutList, http: &Http) -> Result<(), String> {
    let mut report = String::new();
    let mut failed = Vec::new();
    let _ = writeln!(report, "guildstats-discord --check");
    let _ = writeln!(report, "intents: {}", intent_names());
    let guilds = if args.guilds.is_empty() {
        "every guild the bot is in".to_string()
    } else {
        format!("{:?}", args.guilds)
    };
    let _ = writeln!(report, "guilds: {guilds}");
    let _ = writeln!(
        report,
        "opt-out: {} users never recorded in any guild ({} from flags{})",
        opt_out.current().len(),
        args.opt_out.len(),
        opt_out
            .file()
            .map(|f| format!(
                ", file {} re-read every {} s",
                f.display(),
                args.opt_out_reload_secs
            ))
            .unwrap_or_default()
    );
    match args.sink.options() {
        Ok(options) => match opt_out.refresh_from_database(&options).await {
            Ok(_) => {
                let _ = writeln!(
                    report,
                    "opt-out table: ok ({} members from guildstats.opt_out, re-read every {} s)",
                    opt_out.current().members_len(),
                    args.opt_out_reload_secs
                );
            }
            Err(e) => {
                let _ = writeln!(report, "opt-out table: FAILED: {e}");
                failed.push("opt-out table");
            }
        },
        Err(e) => {
            let _ = writeln!(report, "opt-out table: FAILED: {e}");
            failed.push("opt-out table");
        }
    }
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    let _ = writeln!(report, "writes: {}", names.join(", "));
    let _ = writeln!(
        report,
        "spool: {} ({}); batches of {} rows or {} ms; heartbeats every {} s per guild",
        args.sink.spool.display(),
        match std::fs::metadata(&args.sink.spool) {
            Ok(m) => format!("{} bytes waiting from a previous run", m.len()),
            Err(_) => "empty".into(),
        },
        args.sink.batch_size,
        args.sink.batch_ms,
        args.sink.heartbeat_secs
    );

    match database(args, &names).await {
        Ok((line, tls)) => {
            let _ = writeln!(report, "database: ok ({line})");
            let _ = writeln!(report, "database: {tls}");
        }
        Err(e) => {
            let _ = writeln!(report, "database: FAILED: {e}");
            failed.push("database");
        }
    }
    match http.get_bot_gateway().await {
        Ok(g) => {
            let _ = writeln!(
                report,
                "discord: ok (token accepted; gateway {}, {} shard(s) recommended, {} sessions left)",
                g.url, g.shards, g.session_start_limit.remaining
            );
        }
        Err(e) => {
            let _ = writeln!(report, "discord: FAILED: {}", with_causes(&e));
            failed.push("discord");
        }
    }
    print!("{report}");
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("check failed: {}", failed.join(", ")))
    }
}

async fn database(args: &Args, tables: &[&str]) -> Result<(String, String), String> {
    let options = args.sink.options()?;
    let client = guildstats_ingest::sink::connect(&options)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let tls = guildstats_ingest::check::tls(&client, &options).await?;
    let qualified: Vec<String> = tables.iter().map(|t| format!("guildstats.{t}")).collect();
    let row = client
        .query_one(
            "SELECT current_user::text,
                    coalesce(array_agg(t) FILTER (WHERE to_regclass(t) IS NULL
                                                  OR NOT has_any_column_privilege(t, 'INSERT')), '{}')
             FROM unnest($1::text[]) AS t",
            &[&qualified],
        )
        .await
        .map_err(|e| format!("cannot query: {}", with_causes(&e)))?;
    let user: String = row.get(0);
    let missing: Vec<String> = row.get(1);
    if missing.is_empty() {
        Ok((
            format!("connected as {user}; may INSERT into every table above"),
            tls,
        ))
    } else {
        Err(format!(
            "connected as {user}, but missing or not insertable: {}",
            missing.join(", ")
        ))
    }
}

/// An error with what caused it: the top-level messages of both clients ("db error", "error
/// sending request") say too little to act on.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    let mut last = text.clone();
    while let Some(e) = cause {
        let message = e.to_string();
        if message != last {
            text.push_str(": ");
            text.push_str(&message);
        }
        last = message;
        cause = e.source();
    }
    text
}
