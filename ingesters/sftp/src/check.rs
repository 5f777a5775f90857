//! `--check`: tries everything the puller needs (database, SFTP with the host key, the remote
//! directory) without writing anything anywhere, and says what a run would do.

use crate::cli::Args;
use crate::hostkey::HostKeyPolicy;
use crate::ledger;
use crate::remote::Remote;
use std::collections::HashSet;

/// Prints one line per check to stdout; true when all passed.
pub async fn run(args: &Args) -> bool {
    let mut ok = true;
    let mut report = |passed: bool, line: String| {
        ok &= passed;
        println!("{} {line}", if passed { "ok  " } else { "FAIL" });
    };

    let settings = match args.pull_settings() {
        Ok(s) => s,
        Err(why) => {
            report(false, format!("settings: {why}"));
            return false;
        }
    };
    println!(
        "source {:?}; remote {} port {}; include {:?}; poll every {} ms",
        settings.source,
        settings.remote.describe(),
        settings.remote.port,
        args.include,
        settings.poll.as_millis()
    );

    let mut stored: Option<HashSet<String>> = None;
    match args.sink.options() {
        Err(why) => report(false, format!("database: {why}")),
        Ok(options) => match ledger::connect(&options).await {
            Err(why) => report(false, format!("database: {why}")),
            Ok(client) => {
                match guildstats_ingest::check::tls(&client, &options).await {
                    Ok(line) => report(true, format!("database: {line}")),
                    Err(why) => report(false, why),
                }
                let can_insert = client
                    .query_one(
                        "SELECT has_any_column_privilege('guildstats.raw_et_stats_files', 'INSERT')",
                        &[],
                    )
                    .await
                    .map(|r| r.get::<_, bool>(0));
                match can_insert {
                    Ok(true) => report(true, "database: connected, may insert into raw_et_stats_files".into()),
                    Ok(false) => report(false, "database: connected, but may NOT insert into raw_et_stats_files (grant guildstats_ingest)".into()),
                    Err(e) => report(false, format!("database: {}", ledger::error_text(&e))),
                }
                match ledger::stored_names(&options, &settings.source).await {
                    Ok(names) => {
                        report(
                            true,
                            format!(
                                "database: {} files already stored for this source",
                                names.len()
                            ),
                        );
                        stored = Some(names);
                    }
                    Err(
                        ledger::LedgerError::Setup(why) | ledger::LedgerError::Unreachable(why),
                    ) => report(false, format!("database: {why}")),
                }
            }
        },
    }

    // Never pin a key from --check: it only says what a run would do.
    let mut remote_config = settings.remote.clone();
    let accept_new = remote_config.host_key_policy == HostKeyPolicy::AcceptNew;
    remote_config.host_key_policy = HostKeyPolicy::Strict;
    let listing = tokio::task::spawn_blocking(move || {
        let remote = Remote::connect(&remote_config)?;
        let note = remote.host_key_note.clone();
        let listing = remote.list();
        remote.close();
        listing.map(|l| (note, l))
    })
    .await;
    match listing {
        Err(e) => report(false, format!("sftp: {e}")),
        Ok(Err(e)) => {
            let hint = if accept_new && e.to_string().contains("is not in known_hosts") {
                " (with --host-key-policy accept-new a run would pin this key on first contact)"
            } else {
                ""
            };
            report(false, format!("sftp: {e}{hint}"))
        }
        Ok(Ok((note, files))) => {
            report(true, format!("sftp: connected and authenticated; {note}"));
            let matching: Vec<_> = files
                .iter()
                .filter(|f| settings.filter.matches(&f.name))
                .collect();
            report(
                true,
                format!(
                    "sftp: {} lists {} files, {} matching {:?}",
                    settings.remote.dir,
                    files.len(),
                    matching.len(),
                    args.include
                ),
            );
            let empty = HashSet::new();
            let known = stored.as_ref().unwrap_or(&empty);
            let mut new: Vec<&str> = matching
                .iter()
                .filter(|f| !known.contains(&f.name))
                .map(|f| f.name.as_str())
                .collect();
            new.sort_unstable();
            let range = match (new.first(), new.last()) {
                (Some(first), Some(last)) => format!(" ({first} .. {last})"),
                _ => String::new(),
            };
            println!(
                "plan: would fetch {} new files{range} once each is complete, skip {} already stored, then look again every {} ms",
                new.len(),
                matching.len() - new.len(),
                settings.poll.as_millis()
            );
        }
    }
    match args
        .sink
        .options()
        .and_then(|o| guildstats_ingest::check::spool(&o))
    {
        Ok(line) => println!("{line}"),
        Err(why) => report(false, why),
    }
    ok
}
